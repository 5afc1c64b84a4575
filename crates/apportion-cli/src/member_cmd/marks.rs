//! Ready marks, written side by side.
//!
//! A member that is given thousands of items at once (a refill after another member died)
//! marks each ready as soon as it serves it. Awaited one after another in the event loop,
//! each mark costs a store round trip before the next can start, and the refill takes
//! thousands of round trips; written side by side, the library batches them into a few
//! transactions. Marks of one item must still land in the order they were asked for (a
//! process that starts and dies at once must end "not ready"), so an item has at most one
//! write in flight, and a mark asked for meanwhile is written after it, the newest only.

use std::collections::{BTreeMap, HashMap};

use apportion::core::keys::ItemId;
use apportion::core::values::JsonDecoder;
use apportion::store::EtcdStore;
use apportion::{Error, MemberHandle};
use tokio::task::{Id, JoinSet};

/// A finished write of a ready mark.
pub struct Written {
    /// The item marked.
    pub item: ItemId,
    /// The mark written.
    pub ready: bool,
    /// How the write went.
    pub result: Result<(), Error>,
}

/// The ready marks being written.
pub struct Marks {
    handle: MemberHandle<EtcdStore, JsonDecoder>,
    in_flight: JoinSet<Written>,
    /// The item each write in flight is for (to find it again if its task fails).
    tasks: HashMap<Id, ItemId>,
    /// Items with a write in flight, and the mark asked for since, if any.
    queued: BTreeMap<ItemId, Option<bool>>,
}

impl Marks {
    /// Writes through `handle`.
    pub fn new(handle: MemberHandle<EtcdStore, JsonDecoder>) -> Self {
        Marks {
            handle,
            in_flight: JoinSet::new(),
            tasks: HashMap::new(),
            queued: BTreeMap::new(),
        }
    }

    /// Marks `item` ready or not: at once, or after the item's write in flight.
    pub fn write(&mut self, item: ItemId, ready: bool) {
        match self.queued.get_mut(&item) {
            Some(next) => *next = Some(ready),
            None => self.spawn(item, ready),
        }
    }

    fn spawn(&mut self, item: ItemId, ready: bool) {
        let handle = self.handle.clone();
        self.queued.insert(item.clone(), None);
        let task_item = item.clone();
        let task = self.in_flight.spawn(async move {
            let result = if ready {
                handle.mark_ready(&task_item).await
            } else {
                handle.mark_not_ready(&task_item).await
            };
            Written {
                item: task_item,
                ready,
                result,
            }
        });
        self.tasks.insert(task.id(), item);
    }

    /// The next write that finished; never resolves while none is in flight (so it can
    /// sit in a `select!`). The item's next mark, if one was asked for, is started first.
    pub async fn next(&mut self) -> Written {
        loop {
            let Some(joined) = self.in_flight.join_next_with_id().await else {
                return std::future::pending().await;
            };
            let (id, written) = match joined {
                Ok((id, written)) => (id, Some(written)),
                Err(e) => (e.id(), None),
            };
            let Some(item) = self.tasks.remove(&id) else {
                continue;
            };
            let next = self.queued.remove(&item).flatten();
            let Some(written) = written else {
                // The task failed: write what was asked for last, if anything.
                if let Some(ready) = next {
                    self.spawn(item, ready);
                }
                continue;
            };
            if let Some(ready) = next.filter(|&ready| ready != written.ready) {
                self.spawn(item, ready);
            }
            return written;
        }
    }
}
