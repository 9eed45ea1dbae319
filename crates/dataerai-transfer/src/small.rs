//! Small files go together: the last step of every upload of one file of one
//! chunk (the bytes, then `complete`) is handed to a [`Finisher`], which sends
//! what the running uploads have handed it so far as one
//! `POST /uploads/finish` (one request and one server transaction for many
//! files instead of two each). Uploads still run, retry, pause and fail one by
//! one: each gets its own answer, and a request that fails as a whole fails
//! every item in it with the same (maybe retryable) error.
//!
//! A lone `upload()` of a small file goes further: [`upload_single`] sends
//! the asset, the session, the bytes and the completion as one
//! `POST /uploads/single` (one request and one server transaction), keyed by
//! its journaled start id. `upload_many` keeps the batches: they already
//! share one request and one transaction among up to 64 files.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dataerai_proto::api::{
    ContentVersion, CreateUpload, FinishItem, FinishManifest, SingleUpload, SingleUploaded,
    UploadBatchItem, UploadFileSpec, MAX_BATCH_ITEMS, MAX_SMALL_FILE,
};
use dataerai_proto::digest;
use dataerai_proto::{ApiError, ErrorCode};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use dataerai_client::ApiClient;

use crate::journal::{NewTransfer, TransferKind, SINGLE_START};
use crate::scan::LocalFile;
use crate::upload::{
    SpecFile, StartLog, UploadRequest, UploadResult, UploadSpec, UploadTarget, UploadedFile,
};
use crate::Plan;

/// Most file bytes in one request (the server takes up to `MAX_FINISH_BYTES`).
const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Most items in one request.
const BATCH_ITEMS: usize = 64;
/// Requests in flight at once. Most of a request's time on the server is
/// spent waiting for fsyncs (its files, then their directories, then the
/// commit), so several in flight keep both the disk and the CPUs busy: one
/// request's files are written while another's directories are synced and a
/// third commits (docs/performance.md, "Small files: more finish requests in
/// flight…").
const IN_FLIGHT: usize = 4;

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

/// Whether `req` is a lone small file that [`upload_single`] sends in one
/// request: one file of at most [`MAX_SMALL_FILE`] bytes, in one chunk.
pub fn single_file(req: &UploadRequest) -> Option<LocalFile> {
    let meta = std::fs::metadata(&req.local_path).ok()?;
    if !meta.is_file() || meta.len() > MAX_SMALL_FILE || meta.len() > req.chunk_size {
        return None;
    }
    match crate::scan::scan(&req.local_path) {
        Ok(mut files) if files.len() == 1 => files.pop(),
        _ => None,
    }
}

/// A lone small file sent by [`upload_single`]: the journal row of its
/// transfer, completed.
pub struct SingleDone {
    pub spec: UploadSpec,
    pub result: UploadResult,
    /// The journaled start row, also the request's key.
    pub start_id: String,
}

impl SingleDone {
    /// The journal row of the completed transfer (which drops the start row
    /// in the same transaction).
    pub fn new_transfer(&self, batch_id: Option<String>) -> Result<NewTransfer, ApiError> {
        let mut t = self.spec.new_transfer(batch_id)?;
        t.spec[SINGLE_START] = serde_json::json!(self.start_id);
        t.completed = Some(
            serde_json::to_value(&self.result).map_err(|e| ApiError::internal(e.to_string()))?,
        );
        Ok(t)
    }
}

/// Send the lone small file `file` of `req` in one request
/// (`POST /uploads/single`: asset, session, bytes and version together),
/// its start journaled in `log` first with its id as the request's key, so a
/// daemon that dies before the transfer is journaled finds out at its
/// restart whether the server made the upload ([`settle_single`]). The file
/// is read once: hashed, and sent from memory.
///
/// `key` is the start id (a new one when `None`). Retries of one transfer
/// must pass the same key: when an answer never came the server may have
/// made the upload, and the same key makes it answer that upload again
/// instead of making a second asset.
pub async fn upload_single(
    client: &ApiClient,
    req: UploadRequest,
    file: LocalFile,
    log: Option<StartLog<'_>>,
    key: Option<String>,
) -> Result<SingleDone, ApiError> {
    let path = file.path.clone();
    let data = tokio::task::spawn_blocking(move || std::fs::read(&path))
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))?
        .map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", file.path.display())))?;
    if data.len() as u64 != file.size {
        return Err(ApiError::invalid(format!(
            "{} changed while it was read; start a new upload",
            file.path.display()
        )));
    }
    let hash = digest::ChunkDigest::of(file.size, req.chunk_size, 0).compute(&data);
    let checksum = dataerai_proto::blake3_checksum(&hash);
    let (asset, asset_id) = match &req.target {
        UploadTarget::NewAsset(a) => (Some(a.clone()), None),
        UploadTarget::Existing(id) => (None, Some(id.clone())),
    };
    let start_id = key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request = SingleUpload {
        key: start_id.clone(),
        item: UploadBatchItem {
            asset,
            asset_id: asset_id.clone(),
            upload: CreateUpload {
                files: vec![UploadFileSpec {
                    name: file.name.clone(),
                    size: file.size,
                    checksum: Some(checksum.clone()),
                }],
                chunk_size: Some(req.chunk_size),
                probe_dedup: false,
            },
        },
    };
    let local_path = req.local_path.to_string_lossy().into_owned();
    if let Some(log) = log {
        log.journal
            .begin_single_upload(log.owner, &start_id, asset_id.as_deref(), &local_path)
            .await?;
    }
    let sent = client.single_upload(&request, Bytes::from(data)).await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(e) => {
            if let Some(log) = log {
                // A refusal made nothing; otherwise the server may have made
                // it: the daemon's clean-up asks by the key later.
                let journaled = if refused(&e) {
                    log.journal.end_upload_start(&start_id).await
                } else {
                    log.journal.abandon_upload_start(&start_id).await
                };
                if let Err(j) = journaled {
                    tracing::warn!("cannot journal the end of upload start {start_id}: {j}");
                }
            }
            return Err(e);
        }
    };
    crate::faults::after_session_open(&answer.version.asset_id, &answer.upload_id);
    let spec = UploadSpec {
        upload_id: answer.upload_id.clone(),
        asset_id: answer.version.asset_id.clone(),
        content_id: answer.version.content_id.clone(),
        created_asset: asset_id.is_none(),
        chunk_size: req.chunk_size,
        local_path: req.local_path,
        files: vec![SpecFile {
            file_index: 0,
            name: file.name.clone(),
            path: file.path,
            size: file.size,
            mtime_ns: file.mtime_ns,
            checksum: Some(checksum.clone()),
            chunk_digests: Vec::new(),
            deduplicated: answer.deduplicated,
        }],
        // One small chunk, its digest known before it is sent.
        digest_after_body: false,
    };
    let result = single_result(&answer);
    Ok(SingleDone {
        spec,
        result,
        start_id,
    })
}

/// Whether the server refused a request outright (so it made nothing), as
/// opposed to an answer that never came.
fn refused(e: &ApiError) -> bool {
    !matches!(e.code, ErrorCode::ServerUnreachable | ErrorCode::Internal)
}

/// The `transfer.completed` result of a single upload (its transfer id is
/// set when it is journaled).
fn single_result(answer: &SingleUploaded) -> UploadResult {
    let v = &answer.version;
    UploadResult {
        asset_id: v.asset_id.clone(),
        content_id: v.content_id.clone(),
        transfer_id: String::new(),
        total_bytes: v.total_bytes,
        chunk_count: 1,
        file_count: v.files.len() as u64,
        bytes_sent: if answer.deduplicated {
            0
        } else {
            v.total_bytes
        },
        files: v
            .files
            .iter()
            .map(|f| UploadedFile {
                name: f.name.clone(),
                size: f.size,
                checksum: f.checksum.clone().unwrap_or_default(),
                deduplicated: answer.deduplicated,
            })
            .collect(),
    }
}

/// A single upload whose start row a daemon left behind: the transfer to
/// journal (completed) when the server made it, `None` when it did not (an
/// error when the server cannot tell yet).
pub async fn settle_single(
    client: &ApiClient,
    start_id: &str,
    local_path: &str,
) -> Result<Option<NewTransfer>, ApiError> {
    let answer = match client.get_single_upload(start_id).await {
        Ok(answer) => answer,
        Err(e) if e.code == ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let v = &answer.version;
    let mut result = serde_json::to_value(single_result(&answer))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    result["recovered"] = serde_json::json!(true);
    Ok(Some(NewTransfer {
        kind: TransferKind::Upload,
        asset_id: v.asset_id.clone(),
        content_id: Some(v.content_id.clone()),
        local_path: local_path.to_string(),
        bytes_total: v.total_bytes,
        chunk_count: 1,
        file_count: v.files.len() as u64,
        batch_id: None,
        spec: serde_json::json!({ "upload_id": answer.upload_id, SINGLE_START: start_id }),
        completed: Some(result),
    }))
}
