//! The benchmark scenarios at small sizes, with the exact moves each must make.

use apportion_core::solver::scenario::{remove_members, settle, stats, Shape};
use apportion_core::solver::{solve, Item, Member, Problem, Solution};

const SHAPE: Shape = Shape {
    items: 1000,
    members: 30,
    zones: 3,
    item_limit: 200,
    replication: 3,
};

fn settled(shape: Shape) -> Problem {
    let mut p = shape.empty();
    let sol = solve(&p).unwrap();
    settle(&mut p, &sol);
    p
}

fn loads(p: &Problem, sol: &Solution) -> Vec<u32> {
    let mut load = vec![0; p.members.len()];
    for r in &sol.replicas {
        load[r.member as usize] += 1;
    }
    load
}

#[test]
fn scratch_fills_spreads_and_balances_exactly() {
    let p = SHAPE.empty();
    let sol = solve(&p).unwrap();
    let s = stats(&p, &sol);
    assert_eq!((s.adds, s.removes, s.unfilled_slots), (3000, 0, 0));
    assert_eq!((s.min_load, s.max_load), (100, 100));
    assert_eq!(s.min_zones_per_item, 3);
    // 1000 primaries over 30 members: 33 or 34 each.
    assert_eq!((s.primaries_min, s.primaries_max), (33, 34));
}

#[test]
fn unchanged_moves_nothing() {
    let p = settled(SHAPE);
    let before = solve(&p).unwrap();
    let s = stats(&p, &before);
    assert_eq!((s.adds, s.removes, s.unfilled_slots), (0, 0, 0));
    let mut again = p.clone();
    settle(&mut again, &before);
    assert_eq!(
        solve(&again).unwrap(),
        before,
        "a settled solution is a fixed point"
    );
}

#[test]
fn member_loss_only_replaces_what_was_lost() {
    let mut p = settled(SHAPE);
    remove_members(&mut p, |m, _| m == 0);
    let sol = solve(&p).unwrap();
    let s = stats(&p, &sol);
    assert_eq!((s.adds, s.removes, s.unfilled_slots), (100, 0, 0));
    assert_eq!(s.min_zones_per_item, 3);
    // Zone 0 now has 9 members for 1000 replicas: 111 or 112 each.
    let load = loads(&p, &sol);
    for (m, &l) in load.iter().enumerate() {
        let want = if p.members[m].zone == 0 {
            111..=112
        } else {
            100..=100
        };
        assert!(want.contains(&l), "member {m} holds {l}");
    }
}

#[test]
fn member_exit_moves_exactly_its_replicas() {
    let mut p = settled(SHAPE);
    p.members[0].exiting = true;
    let sol = solve(&p).unwrap();
    let s = stats(&p, &sol);
    assert_eq!((s.adds, s.removes, s.unfilled_slots), (100, 100, 0));
    assert_eq!(loads(&p, &sol)[0], 0);
    assert_eq!(s.min_zones_per_item, 3);
}

#[test]
fn member_add_takes_its_share_of_its_zone_and_moves_only_that() {
    let mut p = settled(SHAPE);
    p.members.push(Member {
        zone: 0,
        item_limit: 200,
        exiting: false,
    });
    let sol = solve(&p).unwrap();
    let s = stats(&p, &sol);
    let load = loads(&p, &sol);
    let new = load[30];
    // Zone 0 holds one replica of every item over 11 members: 90 or 91 each.
    assert!((90..=91).contains(&new), "new member holds {new}");
    assert_eq!((s.adds, s.removes), (u64::from(new), u64::from(new)));
    assert_eq!(s.min_zones_per_item, 3);
}

#[test]
fn item_add_places_exactly_its_replicas() {
    let mut p = settled(SHAPE);
    p.items.push(Item { replication: 3 });
    let sol = solve(&p).unwrap();
    let s = stats(&p, &sol);
    assert_eq!((s.adds, s.removes, s.unfilled_slots), (3, 0, 0));
    assert_eq!(s.min_zones_per_item, 3);
}

#[test]
fn zone_loss_fills_what_capacity_allows_over_two_zones() {
    let mut p = settled(Shape {
        item_limit: 120,
        ..SHAPE
    });
    remove_members(&mut p, |_, m| m.zone == 2);
    let sol = solve(&p).unwrap();
    let s = stats(&p, &sol);
    // 20 members x 120 = 2400 of 3000 slots.
    assert_eq!(s.unfilled_slots, 600);
    assert_eq!((s.min_load, s.max_load), (120, 120));
    assert_eq!(s.adds, 2400 - 2000);
    assert_eq!(s.removes, 0);
    assert!(s.min_zones_per_item >= 1);
}

#[test]
fn rolling_deploy_moves_each_replica_about_once() {
    let mut p = settled(SHAPE);
    let (mut adds, mut removes) = (0, 0);
    for _ in 0..SHAPE.members {
        let zone = p.members[0].zone;
        p.members.push(Member {
            zone,
            item_limit: 200,
            exiting: false,
        });
        p.members[0].exiting = true;
        let sol = solve(&p).unwrap();
        let s = stats(&p, &sol);
        assert_eq!(s.unfilled_slots, 0);
        assert_eq!(s.min_zones_per_item, 3);
        adds += s.adds;
        removes += s.removes;
        settle(&mut p, &sol);
        remove_members(&mut p, |m, _| m == 0);
    }
    assert_eq!(adds, removes);
    assert!(adds <= 3300, "{adds} adds for 3000 slots");
}

#[test]
fn solving_twice_gives_the_same_answer() {
    let mut p = settled(SHAPE);
    remove_members(&mut p, |m, _| m % 7 == 0);
    assert_eq!(solve(&p).unwrap(), solve(&p).unwrap());
}
