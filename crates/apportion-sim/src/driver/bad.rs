//! Bad input (issue 7, part 3), written straight into the store as a careless client or
//! operator would: garbage under every kind of key, keys no kind accepts, huge values,
//! absurd replication.

use apportion::store::{KeyRange, LeaseId, Store};

use super::{pick_of, Driver, HUGE};
use crate::plan::{BadInput, ItemSpec};

impl Driver {
    /// Writes bad input; returns the key written.
    pub(super) async fn bad(&mut self, bad: &BadInput) -> Option<String> {
        let (key, value, lease) = match bad {
            BadInput::GarbageItem { id, value } => (
                format!("{}{id}", self.prefix.items_dir()),
                value.clone(),
                None,
            ),
            BadInput::GarbleItem { pick, value } => {
                let id = self.pick_item(*pick)?;
                (
                    format!("{}{id}", self.prefix.items_dir()),
                    value.clone(),
                    None,
                )
            }
            BadInput::GarbageMember { name, value } => (
                format!("{}{name}", self.prefix.members_dir()),
                value.clone(),
                None,
            ),
            BadInput::GarbleMember { pick, value } => {
                let kv = self.pick_key(&self.prefix.members_dir(), *pick).await?;
                (kv.0, value.clone(), Some(kv.1))
            }
            BadInput::GarbleAssignment { pick, value } => {
                let kv = self.pick_key(&self.prefix.assignments_dir(), *pick).await?;
                (kv.0, value.clone(), Some(kv.1))
            }
            BadInput::ForbiddenKey { key } => (
                format!("{}{key}", self.prefix.root_dir()),
                br#"{"replication": 1, "item_limit": 1}"#.to_vec(),
                None,
            ),
            BadInput::Huge { id, valid } => {
                let key = format!("{}{id}", self.prefix.items_dir());
                let value = if *valid {
                    self.items.insert(
                        id.clone(),
                        ItemSpec {
                            id: id.clone(),
                            replication: 1,
                        },
                    );
                    let pad = "x".repeat(HUGE);
                    format!(r#"{{"replication": 1, "pad": "{pad}"}}"#).into_bytes()
                } else {
                    vec![b'x'; HUGE]
                };
                (key, value, None)
            }
            BadInput::AbsurdReplication { id } => (
                format!("{}{id}", self.prefix.items_dir()),
                br#"{"replication": 65535}"#.to_vec(),
                None,
            ),
        };
        self.base.put(key.clone(), value, lease).await.ok()?;
        Some(key)
    }

    /// The `pick`-th key under `dir` that is held by a lease, with the lease.
    async fn pick_key(&self, dir: &str, pick: u64) -> Option<(String, LeaseId)> {
        let kvs = self.base.range_all(KeyRange::prefix(dir)).await.ok()?.kvs;
        let leased: Vec<(String, LeaseId)> = kvs
            .into_iter()
            .filter_map(|kv| Some((String::from_utf8_lossy(&kv.key).into_owned(), kv.lease?)))
            .collect();
        pick_of(&leased, pick).cloned()
    }
}
