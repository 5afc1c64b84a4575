//! The fewest ready copies any replicated item had while a phase ran: how close the phase
//! came to losing an item, which a settled state cannot show. A rolling restart that
//! drains each member keeps every item at its replication (each move is make-before-break);
//! one that restarts in place lets an item run one replica short while its member is away.
//!
//! Every state the story's view publishes is looked at as it comes, while the phase runs
//! ([`LowestReady::during`]). A view gathers a burst of changes into one state, so a dip
//! shorter than a burst can go unseen; the phase's changes come from the members' own
//! rounds and renewals, far slower than the story's 5 ms bursts.

use std::future::Future;

use apportion::cluster::{StateOf, Updates};
use apportion::core::values::{AssignmentValue, ItemValue, JsonDecoder};

/// The running minimum; see the module documentation.
pub struct LowestReady {
    states: Updates<JsonDecoder>,
    lowest: Option<u32>,
}

impl LowestReady {
    /// Starts from the state `states` shows now.
    pub fn watch(mut states: Updates<JsonDecoder>) -> Self {
        let lowest = fewest_ready(&states.current().state);
        LowestReady { states, lowest }
    }

    /// Runs `work` to its end, looking at every state the view publishes meanwhile, and
    /// at the last one.
    pub async fn during<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => {
                    let last = self.states.current();
                    self.see(&last.state);
                    return done;
                }
                changed = self.states.changed() => match changed {
                    Some(observed) => self.see(&observed.state),
                    // The view stopped: nothing more to see.
                    None => return work.await,
                },
            }
        }
    }

    /// The fewest ready copies seen; `None` if no state had a replicated item.
    pub fn lowest(&self) -> Option<u32> {
        self.lowest
    }

    fn see(&mut self, state: &StateOf<JsonDecoder>) {
        if let Some(fewest) = fewest_ready(state) {
            self.lowest = Some(self.lowest.map_or(fewest, |l| l.min(fewest)));
        }
    }
}

/// The fewest members holding a ready copy of any replicated item (not exclusive: an
/// exclusive item changes owner break-before-make, through zero, by design) in `state`;
/// `None` if it has no replicated item.
pub fn fewest_ready(state: &StateOf<JsonDecoder>) -> Option<u32> {
    let mut holders: Vec<&str> = Vec::new();
    (0..state.items().len())
        .filter(|&x| {
            let item = &state.items()[x].value;
            !item.is_exclusive() && item.copies_wanted() > 0
        })
        .map(|x| {
            holders.clear();
            let ready = state
                .item_assignments(x)
                .iter()
                .filter(|a| a.value.is_ready());
            holders.extend(ready.map(|a| a.key.member.as_str()));
            holders.sort_unstable();
            holders.dedup();
            holders.len() as u32
        })
        .min()
}
