//! Small files go together: the last step of every upload of one file of one
//! chunk (the bytes, then `complete`) is handed to a [`Finisher`], which sends
//! what the running uploads have handed it so far as one
//! `POST /uploads/finish` (one request and one server transaction for many
//! files instead of two each). Uploads still run, retry, pause and fail one by
//! one: each gets its own answer, and a request that fails as a whole fails
//! every item in it with the same (maybe retryable) error.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dataerai_proto::api::{ContentVersion, FinishItem, FinishManifest, MAX_BATCH_ITEMS};
use dataerai_proto::ApiError;
use tokio::sync::oneshot;

use dataerai_client::ApiClient;

/// Most file bytes in one request (the server takes up to `MAX_FINISH_BYTES`).
const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Most items in one request.
const BATCH_ITEMS: usize = 64;
/// Requests in flight at once: one is being answered while the next fills up.
const IN_FLIGHT: usize = 2;

const _: () = assert!(BATCH_ITEMS <= MAX_BATCH_ITEMS);

type Reply = oneshot::Sender<Result<ContentVersion, ApiError>>;

struct Waiting {
    item: FinishItem,
    data: Bytes,
    reply: Reply,
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
#[derive(Clone, Default)]
pub struct Finisher {
    queue: Arc<Mutex<Queue>>,
}

impl Finisher {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send `data` (the whole file of session `upload_id`, whose BLAKE3 is
    /// `checksum`) and complete the session; answers the published version.
    pub async fn finish(
        &self,
        client: &ApiClient,
        upload_id: &str,
        checksum: &str,
        data: Bytes,
    ) -> Result<ContentVersion, ApiError> {
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
