//! Small-file finish batches that arrive while another one runs, run as one
//! transaction: group commit for [`MetadataStore::finish_small`] on
//! PostgreSQL.
//!
//! Why: a finish batch locks the allocations of its sessions' assets until it
//! commits (the quota check and the usage counters, see the lock order in
//! [`super::shared`]), so the finish batches of one owner run one after the
//! other however many arrive at once. Each pays, under that lock, a fixed
//! part — some fifteen statement round trips and a commit's WAL flush — on
//! top of its per-file work (docs/performance.md). The batches that would
//! have queued on the lock one by one instead wait here and go in the next
//! transaction together: fewer lock turns and commits for the same files.
//!
//! Every item still succeeds or fails on its own (the batch functions decide
//! per item). A combined transaction that fails as a whole is not charged to
//! every caller: each caller's own batch is then run again on its own, so a
//! caller sees the error its own batch gives, as without the queue.
//!
//! [`MetadataStore::finish_small`]: super::MetadataStore::finish_small

use tokio::sync::{oneshot, Mutex};

use super::shared::{finish_small_batch, Backend, Finished};
use super::SmallFinish;

/// At most this many items in one combined transaction (a caller's own
/// batch is never split: one bigger than this runs alone).
const MAX_ITEMS: usize = 512;

/// A caller's batch waiting for its turn.
struct Waiting {
    items: Vec<SmallFinish>,
    done: oneshot::Sender<Finished>,
}

/// The finish batches of one store waiting to run, and the turn to run them.
#[derive(Default)]
pub(crate) struct FinishQueue {
    waiting: std::sync::Mutex<Vec<Waiting>>,
    /// Held while a combined batch runs: one at a time per store, and whoever
    /// gets the turn takes every batch waiting.
    turn: Mutex<()>,
}

impl FinishQueue {
    /// [`finish_small_batch`] of `items`, together with whatever other
    /// batches wait at the same time.
    pub(crate) async fn finish<B: Backend>(&self, b: &B, items: &[SmallFinish]) -> Finished {
        let (done, answer) = oneshot::channel();
        self.lock_waiting().push(Waiting {
            items: items.to_vec(),
            done,
        });
        {
            let _turn = self.turn.lock().await;
            let group = self.take_group();
            if !group.is_empty() {
                run_group(b, group).await;
            }
        }
        match answer.await {
            Ok(finished) => finished,
            // The caller that took this batch stopped before answering it
            // (it panicked): run it here.
            Err(_) => finish_small_batch(b, items).await,
        }
    }

    fn lock_waiting(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The batches waiting, oldest first, up to [`MAX_ITEMS`] items (at least
    /// one batch); the rest stay for the next turn, which their own callers,
    /// still waiting for it, take.
    fn take_group(&self) -> Vec<Waiting> {
        let mut waiting = self.lock_waiting();
        let mut items = 0;
        let mut take = 0;
        for w in waiting.iter() {
            if take > 0 && items + w.items.len() > MAX_ITEMS {
                break;
            }
            items += w.items.len();
            take += 1;
        }
        waiting.drain(..take).collect()
    }
}

/// Run the batches of `group` as one transaction and answer each its items'
/// results; if that transaction fails as a whole, run each batch on its own.
async fn run_group<B: Backend>(b: &B, group: Vec<Waiting>) {
    if group.len() == 1 {
        let Waiting { items, done } = group.into_iter().next().expect("one batch");
        let _ = done.send(finish_small_batch(b, &items).await);
        return;
    }
    let all: Vec<SmallFinish> = group.iter().flat_map(|w| w.items.clone()).collect();
    match finish_small_batch(b, &all).await {
        Ok(results) => {
            let mut results = results.into_iter();
            for w in group {
                let mine: Vec<_> = results.by_ref().take(w.items.len()).collect();
                let _ = w.done.send(Ok(mine));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, batches = group.len(), "a combined finish batch failed; running its batches one by one");
            for w in group {
                let _ = w.done.send(finish_small_batch(b, &w.items).await);
            }
        }
    }
}
