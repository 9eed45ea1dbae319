//! Small files go together: the last step of every upload of one file of one
//! chunk (the bytes, then `complete`) is handed to a [`Finisher`], which sends
//! what the running uploads have handed it so far as one
//! `POST /uploads/finish` (one request and one server transaction for many
//! files instead of two each). Uploads still run, retry, pause and fail one by
//! one: each gets its own answer, and a request that fails as a whole fails
//! every item in it with the same (maybe retryable) error.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dataerai_proto::api::{
    ContentVersion, FinishItem, FinishManifest, MAX_BATCH_ITEMS, MAX_SMALL_FILE,
};
use dataerai_proto::ApiError;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use dataerai_client::ApiClient;

/// Most file bytes in one request (the server takes up to `MAX_FINISH_BYTES`).
const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Most items in one request.
const BATCH_ITEMS: usize = 64;
/// Requests in flight at once: one is being answered while the next fills up.
const IN_FLIGHT: usize = 2;

/// Most file bytes queued or in requests at once: the requests in flight
/// and the next one filling up.
const ROOM_BYTES: usize = (IN_FLIGHT + 1) * BATCH_BYTES;
/// Room is counted in KiB (a semaphore's permits).
const ROOM_UNIT: usize = 1024;

const _: () = assert!(BATCH_ITEMS <= MAX_BATCH_ITEMS);
const _: () = assert!(MAX_SMALL_FILE as usize <= ROOM_BYTES);

/// The slot of a batch (`upload_many`'s `concurrency`) one transfer runs in,
/// if it runs in one. Cheap to clone; the slot is given back by
/// [`Slot::release`] or when the last clone is dropped.
#[derive(Clone, Default)]
pub struct Slot(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl Slot {
    pub fn new(permit: Option<OwnedSemaphorePermit>) -> Slot {
        Slot(Arc::new(Mutex::new(permit)))
    }

    /// Give the slot back (once; later calls do nothing).
    pub fn release(&self) {
        drop(self.0.lock().unwrap_or_else(|p| p.into_inner()).take());
    }

    /// Whether the slot is still held (tests).
    pub fn is_held(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }
}

type Reply = oneshot::Sender<Result<ContentVersion, ApiError>>;

struct Waiting {
    item: FinishItem,
    data: Bytes,
    reply: Reply,
    /// This file's share of [`ROOM_BYTES`], given back with its answer.
    _room: OwnedSemaphorePermit,
}

impl Waiting {
    /// Hand the upload its answer. An upload that stopped waiting (its run
    /// was cancelled or paused meanwhile) learns the outcome on its next run
    /// from the server, so there is nobody to tell.
    fn answer(self, result: Result<ContentVersion, ApiError>) {
        if self.reply.send(result).is_err() {
            tracing::debug!(
                upload_id = %self.item.upload_id,
                "an upload stopped waiting for its batched finish"
            );
        }
    }
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    senders: usize,
}

/// Shared by every upload of a process (cheap to clone).
#[derive(Clone)]
pub struct Finisher {
    queue: Arc<Mutex<Queue>>,
    room: Arc<Semaphore>,
}

impl Default for Finisher {
    fn default() -> Self {
        Finisher {
            queue: Arc::default(),
            room: Arc::new(Semaphore::new(ROOM_BYTES / ROOM_UNIT)),
        }
    }
}

impl Finisher {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send `data` (the whole file of session `upload_id`, whose BLAKE3 is
    /// `checksum`) and complete the session; answers the published version.
    /// Once the file is queued, `slot` is given back (see the module notes).
    pub async fn finish(
        &self,
        client: &ApiClient,
        upload_id: &str,
        checksum: &str,
        data: Bytes,
        slot: &Slot,
    ) -> Result<ContentVersion, ApiError> {
        let units = data.len().div_ceil(ROOM_UNIT).max(1) as u32;
        let room = self
            .room
            .clone()
            .acquire_many_owned(units)
            .await
            .map_err(|_| ApiError::internal("the small-file queue is closed"))?;
        let (reply, answer) = oneshot::channel();
        let start_sender = {
            let mut q = self.queue();
            q.waiting.push(Waiting {
                item: FinishItem {
                    upload_id: upload_id.to_string(),
                    checksum: checksum.to_string(),
                },
                data,
                reply,
                _room: room,
            });
            let start = q.senders < IN_FLIGHT;
            if start {
                q.senders += 1;
            }
            start
        };
        if start_sender {
            // A task of its own: an upload that is cancelled while waiting
            // must not take the other uploads' request down with it.
            let (me, client) = (self.clone(), client.clone());
            tokio::spawn(async move { me.send_all(client).await });
        }
        slot.release();
        answer
            .await
            .unwrap_or_else(|_| Err(ApiError::internal("the small-file sender stopped")))
    }

    /// Send batches while anything waits.
    async fn send_all(self, client: ApiClient) {
        loop {
            let batch = {
                let mut q = self.queue();
                let (mut n, mut bytes) = (0, 0);
                while n < q.waiting.len() && n < BATCH_ITEMS {
                    bytes += q.waiting[n].data.len();
                    if n > 0 && bytes > BATCH_BYTES {
                        break;
                    }
                    n += 1;
                }
                if n == 0 {
                    q.senders -= 1;
                    return;
                }
                q.waiting.drain(..n).collect::<Vec<_>>()
            };
            let manifest = FinishManifest {
                items: batch.iter().map(|w| w.item.clone()).collect(),
            };
            let files = batch.iter().map(|w| w.data.clone()).collect();
            match client.finish_uploads(&manifest, files).await {
                Ok(answer) if answer.items.len() == batch.len() => {
                    for (w, item) in batch.into_iter().zip(answer.items) {
                        w.answer(item.into_result());
                    }
                }
                Ok(answer) => {
                    let e = ApiError::internal(format!(
                        "the server answered {} items for {} files",
                        answer.items.len(),
                        batch.len()
                    ));
                    for w in batch {
                        w.answer(Err(e.clone()));
                    }
                }
                Err(e) => {
                    for w in batch {
                        w.answer(Err(e.clone()));
                    }
                }
            }
        }
    }
}
