//! The benchmark's rolling restart in restart mode at a small size: every member in turn
//! restarts and comes back, and no replica lands on another member.

use apportion_core::away::Holds;
use apportion_core::solver::scenario::{settle, RollingRestart, Shape};
use apportion_core::solver::{solve, Problem};

const SHAPE: Shape = Shape {
    items: 1000,
    members: 30,
    zones: 3,
    item_limit: 200,
    replication: 3,
};

fn settled() -> Problem {
    let mut p = SHAPE.empty();
    let sol = solve(&p).unwrap();
    settle(&mut p, &sol);
    p
}

fn primaries(p: &Problem, member: u32) -> u64 {
    let held = p
        .current
        .iter()
        .filter(|c| c.member == member && c.slot == 0);
    held.count() as u64
}

#[test]
fn every_member_gets_its_replicas_back_and_nothing_moves_elsewhere() {
    let mut p = settled();
    let start = p.clone();
    let mut restart = RollingRestart::begin(&p);
    for m in 0..SHAPE.members as u32 {
        let held = primaries(&p, m);
        let before = restart.primary_moves;
        restart.turn(&mut p, m, solve).unwrap();
        let moved = restart.primary_moves - before;
        // Each primary it held moves off and (about as many) come back: two per primary.
        // The solver balances primaries over every member besides, which moves a few
        // between the others while it is away (about a third more at this size).
        assert!(
            (held..=3 * held).contains(&moved),
            "member {m}: {moved} primary moves for {held} primaries"
        );
    }
    assert_eq!(restart.replica_moves, 0);
    assert_eq!(restart.returned, 3 * SHAPE.items as u64);
    assert_eq!(restart.removes, 0);
    // Every member holds what it held before, if not in the same slots.
    let pairs = |p: &Problem| {
        let mut pairs: Vec<(u32, u32)> = p.current.iter().map(|c| (c.item, c.member)).collect();
        pairs.sort_unstable();
        pairs
    };
    assert_eq!(pairs(&p), pairs(&start));
}

#[test]
fn a_restarting_member_keeps_its_copies_and_hands_over_its_primaries() {
    let p = settled();
    let holds = Holds::for_restart(&p, 0, 1);
    let held: Vec<u32> = p
        .current
        .iter()
        .filter(|c| c.member == 0)
        .map(|c| c.item)
        .collect();
    assert_eq!(holds.restarting, [0]);
    assert_eq!(holds.held_items(), held.len());
    assert!(holds.kept.iter().all(|&(_, m)| m == 0));
    assert_eq!(holds.kept.len(), held.len());
    let mut solving = p.clone();
    holds.apply(&mut solving);
    let desired = holds.desired(&solve(&solving).unwrap());
    for x in held {
        let wanted = desired.wanted(x as usize);
        assert_eq!(wanted.len(), 3, "item {x}: {wanted:?}");
        assert_ne!(
            wanted[0], 0,
            "item {x} kept its primary on the restarting member"
        );
        assert!(wanted.contains(&0), "item {x} lost its copy: {wanted:?}");
    }
}

#[test]
fn under_min_ready_nothing_is_held() {
    let mut p = settled();
    // Only the restarting member's copies are consistent: below min_ready 1 elsewhere.
    for c in &mut p.current {
        c.consistent = c.member == 0;
    }
    let holds = Holds::for_restart(&p, 0, 1);
    assert_eq!(holds.held_items(), 0);
    assert!(holds.kept.is_empty());
    assert_eq!(Holds::for_restart(&p, 0, 0).held_items(), 100);
}

#[test]
fn a_member_back_is_offered_only_what_has_a_free_slot() {
    let mut p = settled();
    let held: Vec<u32> = p
        .current
        .iter()
        .filter(|c| c.member == 0)
        .map(|c| c.item)
        .collect();
    p.current.retain(|c| c.member != 0);
    // One of its items was refilled meanwhile: no slot free for it.
    let refilled = held[0];
    let other = (1..SHAPE.members as u32)
        .find(|&m| {
            !p.current
                .iter()
                .any(|c| c.item == refilled && c.member == m)
        })
        .unwrap();
    p.current.push(apportion_core::solver::Current {
        item: refilled,
        member: other,
        slot: 3,
        consistent: true,
    });
    let holds = Holds::for_return(&p, 0, &held, 1);
    assert!(holds.restarting.is_empty() && holds.held.is_empty());
    let offered: Vec<u32> = holds.returning.iter().map(|&(x, _)| x).collect();
    assert_eq!(offered, held[1..]);
}
