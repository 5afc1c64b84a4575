//! A small hand-written deployment, written straight into a store the way members and the
//! leader would have written it, for the tests of the admin commands on either backend.
//!
//! Under `/apportion`: three members in two zones, each under its own lease (`eu#h1` limit 4,
//! `eu#h2` limit 4, `us#h1` limit 8 with an extra field); items `orders` (2 copies, one not
//! ready yet), `payments` (3 copies wanted, exclusive, 2 placed) and `parked` (0 copies); an
//! assignment of the deleted item `gone`; and `members/eu#bad`, whose value is not JSON.
//! The members were announced in the order h1, h2, us, so `eu#h1` leads.

use std::collections::BTreeMap;

use apportion_store::{LeaseId, Store};

/// The prefix the deployment lives under (the commands' default).
pub const PREFIX: &str = "/apportion";

/// Writes the deployment; returns each member's lease, by member id.
pub async fn write<S: Store>(store: &S) -> BTreeMap<&'static str, LeaseId> {
    let mut leases = BTreeMap::new();
    for member in ["eu#h1", "eu#h2", "us#h1"] {
        leases.insert(member, store.grant(60).await.expect("grant a lease").id);
    }
    let keys: &[(&str, &str, Option<&str>)] = &[
        ("items/orders", r#"{"replication": 2}"#, None),
        (
            "items/payments",
            r#"{"replication": 3, "exclusive": true}"#,
            None,
        ),
        ("items/parked", r#"{"replication": 0}"#, None),
        ("members/eu#h1", r#"{"item_limit": 4}"#, Some("eu#h1")),
        ("members/eu#h2", r#"{"item_limit": 4}"#, Some("eu#h2")),
        (
            "members/us#h1",
            r#"{"item_limit": 8, "addr": "10.0.0.3"}"#,
            Some("us#h1"),
        ),
        ("members/eu#bad", "not json", None),
        (
            "assign/orders#eu#h1#00000",
            r#"{"ready": true}"#,
            Some("eu#h1"),
        ),
        ("assign/orders#us#h1#00001", "", Some("us#h1")),
        (
            "assign/payments#us#h1#00000",
            r#"{"ready": true}"#,
            Some("us#h1"),
        ),
        (
            "assign/payments#eu#h2#00001",
            r#"{"ready": true}"#,
            Some("eu#h2"),
        ),
        (
            "assign/gone#eu#h1#00000",
            r#"{"ready": true}"#,
            Some("eu#h1"),
        ),
    ];
    for &(key, value, member) in keys {
        let lease = member.map(|member| leases[member]);
        store
            .put(format!("{PREFIX}/{key}"), value.as_bytes(), lease)
            .await
            .expect("write a key");
    }
    leases
}
