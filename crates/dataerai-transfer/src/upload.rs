//! Upload engine: a local file or directory becomes a new content version of a
//! new asset (or, with `asset_id`, of an existing one).
//!
//! [`prepare`] does everything that must be reported synchronously: scanning
//! the files, hashing them when the server may deduplicate them (each chunk's
//! digest, merged into the file's BLAKE3, see `dataerai_proto::digest`; files a
//! size probe shows cannot match anything stored are not hashed here),
//! creating the asset, and opening the upload session
//! (where the server checks the quota). If the session cannot be opened, an
//! asset created for it is deleted again. The result is an [`UploadSpec`] the
//! caller journals. [`run`] works from the spec alone: it checks that no source
//! file changed (size + mtime), asks the server which chunks it already holds,
//! sends only the others ([`PARALLEL_CHUNKS`] in flight), hashing each one
//! as it goes unless its digest is already known (a big chunk's digest
//! follows its body as an HTTP trailer, so it is read once), and completes the
//! session with each file's BLAKE3 merged from its chunk digests (no second
//! pass over the file). [`clean_up_start`] aborts the session and deletes an asset the upload made
//! (of a start that failed or a transfer that was cancelled).

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use dataerai_proto::api::{
    CompleteFile, CompleteUpload, CreateAsset, CreateUpload, CreateUploadBatch, UploadBatchItem,
    UploadFileSpec, UploadSession, UploadStatus, MAX_BATCH_ITEMS, MAX_SMALL_FILE,
};
use dataerai_proto::{ApiError, ErrorCode};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::scan::{self, LocalFile};
use super::{
    chunk_digest_blocking, io_error, plan_chunks, retry, run_chunks, shrank, Digests, Failure,
    Plan, Progress, RunContext, Stop,
};
use crate::journal::{Journal, TransferKind, UploadStart};
use dataerai_client::ApiClient;
use dataerai_proto::digest::{self, ChunkDigest};

/// Uploads up to this size (all files together) are hashed before the answer,
/// so the session can be opened with checksums and deduplicated. Bigger ones
/// are hashed while their chunks go out (answering must stay quick).
pub const SYNC_HASH_LIMIT: u64 = 1024 * 1024 * 1024;
/// Uploads of at most this many files probe for dedup candidates by size
/// before hashing (see [`prepare`]); bigger trees are hashed up front.
const PROBE_FILES: usize = 16;
/// Files up to this size are hashed on the calling thread (no thread hop).
const INLINE_HASH_LIMIT: u64 = 1024 * 1024;
/// Chunks up to this size are read once into memory, hashed and sent from there;
/// bigger ones are streamed from disk, hashed as they are read.
const IN_MEMORY_CHUNK: u64 = 8 * 1024 * 1024;
/// Bytes per read of a chunk streamed from disk.
const SEND_PIECE: u64 = 1024 * 1024;

/// Where the new content version goes.
#[derive(Debug, Clone)]
// One per upload request, never in a hot collection: boxing would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum UploadTarget {
    NewAsset(CreateAsset),
    /// A new version of this existing asset.
    Existing(String),
}

/// A validated upload request.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub local_path: PathBuf,
    pub target: UploadTarget,
    pub chunk_size: u64,
}

/// One file of an upload plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpecFile {
    pub file_index: u32,
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    /// Whole-file `blake3:<hex>`, when known.
    pub checksum: Option<String>,
    /// Hex digests of every chunk when they were computed with the checksum
    /// (files of several chunks only: a lone chunk's digest is the checksum).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunk_digests: Vec<String>,
    /// The server reused bytes it already holds: nothing to send.
    #[serde(default)]
    pub deduplicated: bool,
}

/// The journaled plan of an upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadSpec {
    pub upload_id: String,
    pub asset_id: String,
    pub content_id: String,
    /// Whether this upload created the asset (a cancelled upload deletes it again).
    pub created_asset: bool,
    pub chunk_size: u64,
    pub local_path: PathBuf,
    pub files: Vec<SpecFile>,
    /// The server takes a big chunk's digest after its body at no extra cost
    /// ([`UploadSession::digest_after_body`]): such chunks are read once, hashed
    /// as they are sent. Otherwise they are hashed first, then sent.
    #[serde(default)]
    pub digest_after_body: bool,
}

crate::impl_plan!(UploadSpec, TransferKind::Upload, local_path);

impl UploadSpec {
    /// A short name for progress output.
    pub fn label(&self) -> String {
        match self.files.as_slice() {
            [one] => one.name.clone(),
            _ => self
                .local_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| self.asset_id.clone()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadedFile {
    pub name: String,
    pub size: u64,
    pub checksum: String,
    pub deduplicated: bool,
}

/// `result` of `transfer.completed` for an upload.
#[derive(Debug, Clone, Serialize)]
pub struct UploadResult {
    pub asset_id: String,
    pub content_id: String,
    pub transfer_id: String,
    pub total_bytes: u64,
    pub chunk_count: u64,
    pub file_count: u64,
    /// Bytes that crossed the network (deduplicated files and chunks the server
    /// already held are not counted).
    pub bytes_sent: u64,
    pub files: Vec<UploadedFile>,
}

/// A file's checksum and, for a file of several chunks, its chunk digests.
#[derive(Debug, Clone)]
struct Hashed {
    checksum: String,
    chunk_digests: Vec<String>,
}

/// Hash every file chunk by chunk (blocking; small files only, or on a
/// blocking thread).
fn hash_all(files: &[LocalFile], chunk_size: u64) -> Result<Vec<Hashed>, ApiError> {
    let never = CancellationToken::new();
    files
        .iter()
        .map(|f| {
            let digests = (0..dataerai_proto::chunk_count(f.size, chunk_size))
                .map(|i| chunk_digest_blocking(&f.path, f.size, chunk_size, i, &never))
                .collect::<Result<Vec<_>, ApiError>>()?;
            let hash =
                digest::file_hash(f.size, chunk_size, &digests).map_err(ApiError::internal)?;
            Ok(Hashed {
                checksum: dataerai_proto::blake3_checksum(&hash),
                chunk_digests: if digests.len() > 1 {
                    digests.iter().map(hex::encode).collect()
                } else {
                    Vec::new()
                },
            })
        })
        .collect()
}

/// Scan and hash the local files, create the asset (if new) and open the session.
pub async fn prepare(client: &ApiClient, req: UploadRequest) -> Result<UploadSpec, ApiError> {
    prepare_journaled(client, req, None).await
}

/// Where a daemon journals the uploads it starts, before the server hears of
/// them (see [`Journal::begin_upload_start`]).
#[derive(Clone, Copy)]
pub struct StartLog<'a> {
    pub journal: &'a Journal,
    pub owner: &'a str,
}

/// One journaled start: mirrors its journal row, so a failed start knows
/// what to clean up.
struct Start<'a> {
    log: StartLog<'a>,
    row: std::sync::Mutex<UploadStart>,
}

impl<'a> Start<'a> {
    async fn begin(
        log: Option<StartLog<'a>>,
        target: &UploadTarget,
    ) -> Result<Option<Self>, ApiError> {
        let Some(log) = log else { return Ok(None) };
        let asset_id = match target {
            UploadTarget::NewAsset(_) => None,
            UploadTarget::Existing(id) => Some(id.clone()),
        };
        let start_id = uuid::Uuid::new_v4().to_string();
        log.journal
            .begin_upload_start(log.owner, &start_id, asset_id.as_deref())
            .await?;
        Ok(Some(Start {
            log,
            row: std::sync::Mutex::new(UploadStart {
                start_id,
                created_asset: asset_id.is_none(),
                asset_id,
                upload_id: None,
            }),
        }))
    }

    /// [`Start::begin`] for many targets, journaled in one transaction.
    async fn begin_many(
        log: Option<StartLog<'a>>,
        targets: impl Iterator<Item = &UploadTarget>,
    ) -> Result<Vec<Option<Self>>, ApiError> {
        let rows: Vec<UploadStart> = targets
            .map(|target| {
                let asset_id = match target {
                    UploadTarget::NewAsset(_) => None,
                    UploadTarget::Existing(id) => Some(id.clone()),
                };
                UploadStart {
                    start_id: uuid::Uuid::new_v4().to_string(),
                    created_asset: asset_id.is_none(),
                    asset_id,
                    upload_id: None,
                }
            })
            .collect();
        let Some(log) = log else {
            return Ok(rows.iter().map(|_| None).collect());
        };
        let journaled: Vec<(String, Option<String>)> = rows
            .iter()
            .map(|r| (r.start_id.clone(), r.asset_id.clone()))
            .collect();
        log.journal
            .begin_upload_starts(log.owner, &journaled)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                Some(Start {
                    log,
                    row: std::sync::Mutex::new(row),
                })
            })
            .collect())
    }

    fn row(&self) -> std::sync::MutexGuard<'_, UploadStart> {
        self.row.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn asset(&self, asset_id: &str) -> Result<(), ApiError> {
        self.row().asset_id = Some(asset_id.to_string());
        let id = self.row().start_id.clone();
        self.log.journal.set_start_asset(&id, asset_id).await
    }

    /// The asset and the session each start made, journaled together (one
    /// commit); answers, for each start, whether its session is journaled
    /// (an error also for a session that was not opened).
    async fn sessions(
        starts: &[Result<Option<Start<'a>>, ApiError>],
        sessions: &[Result<UploadSession, ApiError>],
    ) -> Vec<Result<(), ApiError>> {
        let mut rows = Vec::new();
        let mut log = None;
        for (start, session) in starts.iter().zip(sessions) {
            if let (Ok(Some(start)), Ok(s)) = (start, session) {
                let mut row = start.row();
                row.asset_id = Some(s.asset_id.clone());
                row.upload_id = Some(s.upload_id.clone());
                rows.push((
                    row.start_id.clone(),
                    s.asset_id.clone(),
                    s.upload_id.clone(),
                ));
                log = Some(start.log);
            }
        }
        let journaled = match log {
            Some(log) => log.journal.set_start_sessions(&rows).await,
            None => Ok(()),
        };
        sessions
            .iter()
            .map(|session| match (session, &journaled) {
                (Err(e), _) | (Ok(_), Err(e)) => Err(e.clone()),
                (Ok(_), Ok(())) => Ok(()),
            })
            .collect()
    }

    async fn upload(&self, upload_id: &str) -> Result<(), ApiError> {
        self.row().upload_id = Some(upload_id.to_string());
        let id = self.row().start_id.clone();
        self.log.journal.set_start_upload(&id, upload_id).await
    }

    /// The start failed: clean up what it made on the server now, or leave
    /// that to the daemon's clean-up (abandoned row) when the server cannot
    /// be reached.
    async fn give_up(&self, client: &ApiClient) {
        let row = self.row().clone();
        let journaled = match clean_up_start(client, &row).await {
            Ok(()) => self.log.journal.end_upload_start(&row.start_id).await,
            Err(e) => {
                tracing::warn!(
                    "could not clean up after a failed upload start (asset {:?}, session {:?}); \
                     trying again later: {e}",
                    row.asset_id,
                    row.upload_id
                );
                self.log.journal.abandon_upload_start(&row.start_id).await
            }
        };
        if let Err(e) = journaled {
            tracing::warn!(
                "cannot journal the clean-up of upload start {}: {e}",
                row.start_id
            );
        }
    }
}

/// Clean up after an upload start that was given up: abort its session and
/// delete the asset it created. Something already gone (404) counts as done.
pub async fn clean_up_start(client: &ApiClient, start: &UploadStart) -> Result<(), ApiError> {
    let gone = |r: Result<(), ApiError>| match r {
        Err(e) if e.code == ErrorCode::NotFound => Ok(()),
        other => other,
    };
    if let Some(e) = crate::faults::clean_up_error() {
        return Err(e);
    }
    if let Some(upload_id) = &start.upload_id {
        match client.abort_upload(upload_id).await {
            // A session that is no longer open holds nothing.
            Err(e) if e.code == ErrorCode::Conflict => {}
            other => gone(other)?,
        }
    }
    if start.created_asset {
        if let Some(asset_id) = &start.asset_id {
            gone(client.delete_asset(asset_id).await)?;
        }
    }
    Ok(())
}

/// [`prepare`], journaling the start in `log` first (when given) so a daemon
/// that dies meanwhile leaves a row to clean up from.
pub async fn prepare_journaled(
    client: &ApiClient,
    req: UploadRequest,
    log: Option<StartLog<'_>>,
) -> Result<UploadSpec, ApiError> {
    let root = req.local_path.clone();
    let files = if root.is_dir() {
        tokio::task::spawn_blocking(move || scan::scan(&root))
            .await
            .map_err(|e| ApiError::internal(format!("scan task failed: {e}")))??
    } else {
        scan::scan(&root)?
    };
    let total: u64 = files.iter().map(|f| f.size).sum();
    let chunk_size = req.chunk_size;
    // Small uploads are hashed at once. Bigger ones up to SYNC_HASH_LIMIT in a
    // few files first ask the server whether it stores a file of the same size
    // at all, and are hashed (and the session opened again with checksums)
    // only then: otherwise their digests are taken while the chunks go out.
    let probe = total > INLINE_HASH_LIMIT && total <= SYNC_HASH_LIMIT && files.len() <= PROBE_FILES;
    let checksums: Option<Vec<Hashed>> = if total <= INLINE_HASH_LIMIT {
        Some(hash_all(&files, chunk_size)?)
    } else if total <= SYNC_HASH_LIMIT && !probe {
        Some(hash_all_blocking(&files, chunk_size).await?)
    } else {
        None
    };

    // A small upload opens its asset and session in one request (the path
    // `upload_many` takes): one round trip and one server transaction
    // fewer than `POST /assets` then `POST /assets/{id}/uploads`.
    let checksums = match checksums {
        Some(hashed) if total <= INLINE_HASH_LIMIT => {
            let group = [(0, req, files, hashed)];
            return open_together(client, log, &group)
                .await
                .pop()
                .map(|(_, spec)| spec)
                .unwrap_or_else(|| Err(ApiError::internal("an upload was not prepared")));
        }
        other => other,
    };
    // Journaled before the server hears of the upload.
    let start = Start::begin(log, &req.target).await?;
    let created = match req.target {
        UploadTarget::NewAsset(create) => client
            .create_asset(&create)
            .await
            .map(|a| (a.asset_id, true)),
        UploadTarget::Existing(id) => Ok((id, false)),
    };
    let (asset_id, created_asset) = match created {
        Ok(c) => c,
        Err(e) => {
            if let Some(start) = &start {
                start.give_up(client).await;
            }
            return Err(e);
        }
    };
    let open = |checksums: Option<&Vec<Hashed>>, probe_dedup: bool| {
        let body = session_request(&files, checksums, chunk_size, probe_dedup);
        let asset_id = asset_id.clone();
        async move { client.create_upload(&asset_id, &body).await }
    };
    let opened = async {
        if let (Some(start), true) = (&start, created_asset) {
            start.asset(&asset_id).await?;
        }
        if let Some(e) = crate::faults::session_open_error() {
            return Err(e);
        }
        let session = open(checksums.as_ref(), probe).await?;
        if let Some(start) = &start {
            start.upload(&session.upload_id).await?;
        }
        crate::faults::after_session_open(&asset_id, &session.upload_id);
        if !session.files.iter().any(|f| f.dedup_candidate) {
            return Ok((session, checksums));
        }
        // A stored file has the same size: hash, and open the session again
        // with checksums so the server can deduplicate.
        let hashed = hash_all_blocking(&files, chunk_size).await;
        if let Err(e) = client.abort_upload(&session.upload_id).await {
            tracing::warn!("could not abort probe session {}: {e}", session.upload_id);
        }
        let hashed = hashed?;
        let session = open(Some(&hashed), false).await?;
        if let Some(start) = &start {
            start.upload(&session.upload_id).await?;
        }
        Ok((session, Some(hashed)))
    };
    let (session, checksums) = match opened.await {
        Ok(s) => s,
        Err(e) => {
            // E.g. quota exceeded: an asset made only for this upload goes again.
            match &start {
                Some(start) => start.give_up(client).await,
                None if created_asset => {
                    if let Err(del) = client.delete_asset(&asset_id).await {
                        tracing::warn!(
                            "could not delete asset {asset_id} after failed upload: {del}"
                        );
                    }
                }
                None => {}
            }
            return Err(e);
        }
    };
    Ok(spec_from_session(
        &session,
        files,
        checksums,
        created_asset,
        req.local_path,
    ))
}

/// Groups of `prepare_many` scanned, hashed and opened at once: while the
/// server opens one group's sessions, the next is scanned, hashed and its
/// starts journaled, so neither side waits for the other (the server's
/// write transactions still go one after the other).
const GROUPS_IN_FLIGHT: usize = 3;

/// Prepare many uploads, answering in request order. The requests go in
/// groups of `MAX_BATCH_ITEMS`, [`GROUPS_IN_FLIGHT`] groups at once; in each,
/// those of at most [`INLINE_HASH_LIMIT`] bytes in all are scanned and hashed
/// here and open their sessions together in one `POST /uploads/batch` (one
/// request and one server transaction instead of two each); the others go
/// through [`prepare`], `concurrency` at a time, once every group is open.
///
/// `on_open` (when given) is handed each group's prepared small uploads, by
/// index, as soon as their sessions are open, so the caller can start them
/// while the next groups are still being opened — only as long as no bigger
/// upload comes before them, so that uploads can still start in item order.
/// They are answered again at the end with the others.
pub async fn prepare_many(
    client: &ApiClient,
    reqs: Vec<UploadRequest>,
    concurrency: usize,
    log: Option<StartLog<'_>>,
    on_open: Option<&OnOpen<'_>>,
) -> Vec<Result<UploadSpec, ApiError>> {
    let n = reqs.len();
    let mut groups: Vec<Vec<(usize, UploadRequest)>> = Vec::new();
    for (i, req) in reqs.into_iter().enumerate() {
        match groups.last_mut() {
            Some(g) if g.len() < MAX_BATCH_ITEMS => g.push((i, req)),
            _ => groups.push(vec![(i, req)]),
        }
    }
    let mut opened = futures::stream::iter(groups)
        .map(|group| open_group(client, log, group))
        .buffered(GROUPS_IN_FLIGHT);
    let mut out: Vec<Option<Result<UploadSpec, ApiError>>> = (0..n).map(|_| None).collect();
    let mut big = Vec::new();
    while let Some(g) = opened.next().await {
        // Only while no bigger upload came before: those are prepared last,
        // and the caller starts uploads in item order.
        let in_order = big.is_empty() && g.big.is_empty();
        if let (Some(on_open), true) = (on_open, in_order) {
            on_open(
                g.done
                    .iter()
                    .filter_map(|(i, spec)| Some((*i, spec.as_ref().ok()?.clone())))
                    .collect(),
            );
        }
        for (i, spec) in g.done {
            out[i] = Some(spec);
        }
        big.extend(g.big);
    }
    let prepared: Vec<(usize, Result<UploadSpec, ApiError>)> = futures::stream::iter(big)
        .map(|(i, req)| async move { (i, prepare_journaled(client, req, log).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    for (i, r) in prepared {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ApiError::internal("an upload was not prepared"))))
        .collect()
}

/// What [`prepare_many`] hands its caller as each group opens: the group's
/// prepared small uploads, by index.
pub type OnOpen<'a> = dyn Fn(Vec<(usize, UploadSpec)>) + Send + Sync + 'a;

/// What [`open_group`] did with one group of `prepare_many`: the answers of
/// its small uploads (and of those that failed to scan or hash), by index,
/// and the bigger ones still to prepare.
struct GroupOpened {
    done: Vec<(usize, Result<UploadSpec, ApiError>)>,
    big: Vec<(usize, UploadRequest)>,
}

/// Scan and hash one group of `prepare_many` on a blocking thread, then open
/// its small uploads' sessions together.
async fn open_group(
    client: &ApiClient,
    log: Option<StartLog<'_>>,
    group: Vec<(usize, UploadRequest)>,
) -> GroupOpened {
    let indices: Vec<usize> = group.iter().map(|(i, _)| *i).collect();
    let scanned = tokio::task::spawn_blocking(move || {
        group
            .into_iter()
            .map(|(i, req)| {
                let scanned = scan::scan(&req.local_path).and_then(|files| {
                    let small = files.iter().map(|f| f.size).sum::<u64>() <= INLINE_HASH_LIMIT;
                    let hashed = small
                        .then(|| hash_all(&files, req.chunk_size))
                        .transpose()?;
                    Ok((files, hashed))
                });
                (i, req, scanned)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let mut opened = GroupOpened {
        done: Vec::new(),
        big: Vec::new(),
    };
    let scanned = match scanned {
        Ok(scanned) => scanned,
        Err(e) => {
            let e = ApiError::internal(format!("scan task failed: {e}"));
            opened.done = indices.into_iter().map(|i| (i, Err(e.clone()))).collect();
            return opened;
        }
    };
    let mut small = Vec::new();
    for (i, req, s) in scanned {
        match s {
            Ok((files, Some(hashed))) => small.push((i, req, files, hashed)),
            Ok((_, None)) => opened.big.push((i, req)),
            Err(e) => opened.done.push((i, Err(e))),
        }
    }
    if !small.is_empty() {
        opened.done.extend(open_together(client, log, &small).await);
    }
    opened
}

/// One small upload ready to open: its index, request, files and digests.
type SmallStart = (usize, UploadRequest, Vec<LocalFile>, Vec<Hashed>);

/// Open the sessions of small uploads (new assets or versions) in one
/// `POST /uploads/batch` (one request and one server transaction), journaled
/// before the server hears of them (one commit); answers each upload's spec
/// by its index.
async fn open_together(
    client: &ApiClient,
    log: Option<StartLog<'_>>,
    group: &[SmallStart],
) -> Vec<(usize, Result<UploadSpec, ApiError>)> {
    let mut out = Vec::with_capacity(group.len());
    let items = group
        .iter()
        .map(|(_, req, files, hashed)| {
            let (asset, asset_id) = match &req.target {
                UploadTarget::NewAsset(a) => (Some(a.clone()), None),
                UploadTarget::Existing(id) => (None, Some(id.clone())),
            };
            UploadBatchItem {
                asset,
                asset_id,
                upload: session_request(files, Some(hashed), req.chunk_size, false),
            }
        })
        .collect();
    // Journaled before the server hears of them (one commit for the group).
    let starts: Vec<Result<Option<Start>, ApiError>> =
        match Start::begin_many(log, group.iter().map(|(_, req, _, _)| &req.target)).await {
            Ok(starts) => starts.into_iter().map(Ok).collect(),
            Err(e) => group.iter().map(|_| Err(e.clone())).collect(),
        };
    let answer = match starts.iter().find_map(|s| s.as_ref().err()) {
        Some(e) => Err(e.clone()),
        None => client.create_uploads(&CreateUploadBatch { items }).await,
    };
    let mut answers = match answer {
        Ok(a) if a.items.len() == group.len() => Ok(a.items.into_iter()),
        Ok(_) => Err(ApiError::internal(
            "the server answered another number of items",
        )),
        Err(e) => Err(e),
    };
    let sessions: Vec<Result<UploadSession, ApiError>> = group
        .iter()
        .map(|_| match &mut answers {
            Ok(each) => each
                .next()
                .map(|a| a.into_result())
                .unwrap_or_else(|| Err(ApiError::internal("lost an item"))),
            Err(e) => Err(e.clone()),
        })
        .collect();
    // What the server made, journaled for every start at once (one commit).
    let journaled = Start::sessions(&starts, &sessions).await;
    for ((((i, req, files, hashed), start), session), journaled) in
        group.iter().zip(starts).zip(sessions).zip(journaled)
    {
        if let Ok(Some(start)) = &start {
            if let Err(e) = journaled {
                start.give_up(client).await;
                out.push((*i, Err(e)));
                continue;
            }
        }
        if let Ok(s) = &session {
            crate::faults::after_session_open(&s.asset_id, &s.upload_id);
            if let Some(e) = crate::faults::session_open_error() {
                if let Ok(Some(start)) = &start {
                    start.give_up(client).await;
                }
                out.push((*i, Err(e)));
                continue;
            }
        }
        let created_asset = matches!(req.target, UploadTarget::NewAsset(_));
        out.push((
            *i,
            session.map(|s| {
                spec_from_session(
                    &s,
                    files.clone(),
                    Some(hashed.clone()),
                    created_asset,
                    req.local_path.clone(),
                )
            }),
        ));
    }
    out
}

/// The `CreateUpload` for these files (with their checksums when known).
fn session_request(
    files: &[LocalFile],
    checksums: Option<&Vec<Hashed>>,
    chunk_size: u64,
    probe_dedup: bool,
) -> CreateUpload {
    let files = files
        .iter()
        .enumerate()
        .map(|(i, f)| UploadFileSpec {
            name: f.name.clone(),
            size: f.size,
            checksum: checksums.map(|c| c[i].checksum.clone()),
        })
        .collect();
    CreateUpload {
        files,
        chunk_size: Some(chunk_size),
        probe_dedup,
    }
}

/// [`hash_all`] on a blocking thread.
async fn hash_all_blocking(files: &[LocalFile], chunk_size: u64) -> Result<Vec<Hashed>, ApiError> {
    let fs = files.to_vec();
    tokio::task::spawn_blocking(move || hash_all(&fs, chunk_size))
        .await
        .map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))?
}

fn spec_from_session(
    session: &UploadSession,
    files: Vec<LocalFile>,
    checksums: Option<Vec<Hashed>>,
    created_asset: bool,
    local_path: PathBuf,
) -> UploadSpec {
    let files = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let state = session.files.iter().find(|s| s.name == f.name);
            let hashed = checksums.as_ref().map(|c| c[i].clone());
            SpecFile {
                file_index: state.map(|s| s.file_index).unwrap_or(i as u32),
                deduplicated: state.is_some_and(|s| s.deduplicated),
                checksum: hashed.as_ref().map(|h| h.checksum.clone()),
                chunk_digests: hashed.map(|h| h.chunk_digests).unwrap_or_default(),
                name: f.name,
                path: f.path,
                size: f.size,
                mtime_ns: f.mtime_ns,
            }
        })
        .collect();
    UploadSpec {
        upload_id: session.upload_id.clone(),
        asset_id: session.asset_id.clone(),
        content_id: session.content_id.clone(),
        created_asset,
        chunk_size: session.chunk_size.max(1),
        local_path,
        files,
        digest_after_body: session.digest_after_body,
    }
}

/// Refuse to go on when a source file changed since the upload started: mixing
/// chunks of two versions of a file must never happen silently.
fn check_unchanged(spec: &UploadSpec) -> Result<(), ApiError> {
    for f in &spec.files {
        let now = std::fs::metadata(&f.path).map(|m| scan::identity(&m)).ok();
        if now != Some((f.size, f.mtime_ns)) {
            return Err(ApiError::invalid(format!(
                "{} changed (or vanished) since the upload started; start a new upload",
                f.path.display()
            )));
        }
    }
    Ok(())
}

/// Send every missing chunk and complete the session.
pub async fn run(ctx: &RunContext, mut spec: UploadSpec) -> Result<UploadResult, Stop> {
    check_unchanged(&spec)?;
    // Chunks the server holds already, by file index. A session `prepare` has
    // just opened holds none (deduplicated files are marked in the spec).
    let mut held: std::collections::HashMap<u32, Vec<u64>> = Default::default();
    if !ctx.fresh {
        let session = retry(ctx, || async {
            Ok(ctx.client.get_upload(&spec.upload_id).await?)
        })
        .await?;
        match session.status {
            UploadStatus::Open => {}
            UploadStatus::Complete => return Ok(result(ctx, &spec, session.content_id).await?),
            other @ UploadStatus::Aborted => {
                return Err(ApiError::invalid(format!(
                    "upload session {} is {other}; start a new upload",
                    spec.upload_id
                ))
                .into())
            }
        }
        // The server may have changed (its store, its version) since.
        spec.digest_after_body = session.digest_after_body;
        for s in session.files {
            if let Some(f) = spec.files.iter_mut().find(|f| f.file_index == s.file_index) {
                f.deduplicated = s.deduplicated;
            }
            held.insert(s.file_index, s.received_chunks);
        }
    }
    let held =
        |f: &SpecFile| -> &[u64] { held.get(&f.file_index).map(Vec::as_slice).unwrap_or(&[]) };

    let mut pending = Vec::new();
    let mut already = 0u64;
    for (fi, f) in spec.files.iter().enumerate() {
        if f.deduplicated {
            already += f.size;
            continue;
        }
        let held = held(f);
        for (index, offset, len) in plan_chunks(f.size, spec.chunk_size) {
            if held.contains(&index) {
                already += len;
            } else {
                pending.push((fi, index, offset, len));
            }
        }
    }
    let progress = Progress::start(
        TransferKind::Upload,
        spec.bytes_total(),
        spec.chunk_size,
        already,
    );
    if let Some((content_id, sent)) = finish_small(ctx, &mut spec, &pending, &progress).await? {
        return Ok(result_sent(ctx, &spec, content_id, sent));
    }
    let digests = Digests::default();
    let spec_ref = &spec;
    run_chunks(ctx, pending, |(fi, index, offset, len)| {
        let (progress, digests) = (&progress, &digests);
        let f = &spec_ref.files[fi];
        async move {
            let digest = send_chunk(ctx, spec_ref, f, index, offset, len).await?;
            digests.put(f.file_index, index, digest);
            chunk_sent(ctx, f, index, len, progress).await
        }
    })
    .await?;
    ctx.check_stop()?;

    // Big files' checksums: merged from the digests of the chunks just sent.
    let mut hashed_now = false;
    for f in spec.files.iter_mut().filter(|f| f.checksum.is_none()) {
        let sum = digests
            .checksum(&f.path, f.file_index, f.size, spec.chunk_size, &ctx.cancel)
            .await?;
        f.checksum = Some(sum);
        hashed_now = true;
    }
    if hashed_now {
        let v = serde_json::to_value(&spec).map_err(|e| ApiError::internal(e.to_string()))?;
        ctx.journal.set_spec(&ctx.transfer_id, &v).await?;
    }
    let body = CompleteUpload {
        files: spec
            .files
            .iter()
            .map(|f| CompleteFile {
                file_index: f.file_index,
                checksum: f.checksum.clone().unwrap_or_default(),
            })
            .collect(),
    };
    let completed = retry(ctx, || async {
        match ctx.client.complete_upload(&spec.upload_id, &body).await {
            Ok(c) => Ok(c.content_id),
            // An earlier attempt may have completed it, its answer lost on the way.
            Err(e) if e.code == ErrorCode::InvalidInput => {
                match ctx.client.get_upload(&spec.upload_id).await {
                    Ok(s) if s.status == UploadStatus::Complete => Ok(s.content_id),
                    _ => Err(Failure::local(e)),
                }
            }
            Err(e) if e.code == ErrorCode::Integrity => Err(Failure::local(e)),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(result(ctx, &spec, completed).await?)
}

async fn result(
    ctx: &RunContext,
    spec: &UploadSpec,
    content_id: String,
) -> Result<UploadResult, ApiError> {
    let bytes_sent = ctx
        .journal
        .chunks(&ctx.transfer_id)
        .await?
        .iter()
        .map(|c| c.2)
        .sum();
    Ok(result_sent(ctx, spec, content_id, bytes_sent))
}

/// The result of an upload that sent `bytes_sent` bytes in all.
fn result_sent(
    ctx: &RunContext,
    spec: &UploadSpec,
    content_id: String,
    bytes_sent: u64,
) -> UploadResult {
    UploadResult {
        asset_id: spec.asset_id.clone(),
        content_id,
        transfer_id: ctx.transfer_id.clone(),
        total_bytes: spec.bytes_total(),
        chunk_count: spec.chunk_count(),
        file_count: spec.files.len() as u64,
        bytes_sent,
        files: spec
            .files
            .iter()
            .map(|f| UploadedFile {
                name: f.name.clone(),
                size: f.size,
                checksum: f.checksum.clone().unwrap_or_default(),
                deduplicated: f.deduplicated,
            })
            .collect(),
    }
}

/// Journal a chunk the server acknowledged and report the progress.
async fn chunk_sent(
    ctx: &RunContext,
    f: &SpecFile,
    index: u64,
    len: u64,
    progress: &Progress,
) -> Result<(), Stop> {
    ctx.journal
        .add_chunk(&ctx.transfer_id, f.file_index, index, len)
        .await?;
    let bytes_done = progress.chunk_done(ctx, f.file_index, &f.name, f.size, index, len);
    ctx.journal
        .set_bytes_done(&ctx.transfer_id, bytes_done)
        .await?;
    Ok(())
}

/// An upload of one file of one small chunk still to send: the bytes and
/// `complete` go in one request, together with other uploads' (see
/// [`super::small`]). Answers the published content id and the bytes sent,
/// or `None` for any other upload.
async fn finish_small(
    ctx: &RunContext,
    spec: &mut UploadSpec,
    pending: &[(usize, u64, u64, u64)],
    progress: &Progress,
) -> Result<Option<(String, u64)>, Stop> {
    let ([f], [(0, 0, 0, len)]) = (spec.files.as_slice(), pending) else {
        return Ok(None);
    };
    let len = *len;
    if len > MAX_SMALL_FILE || dataerai_proto::chunk_count(f.size, spec.chunk_size) != 1 {
        return Ok(None);
    }
    if ctx.pause.is_cancelled() {
        return Err(Stop::Paused);
    }
    let data = bytes::Bytes::from(read_range(f.path.clone(), 0, len).await?);
    let digest = known_digest(f, spec.chunk_size, 0)
        .unwrap_or_else(|| ChunkDigest::of(f.size, spec.chunk_size, 0).compute(&data));
    let checksum = dataerai_proto::blake3_checksum(&digest);
    let version = retry(ctx, || async {
        crate::faults::before_chunk().await;
        let finished = ctx.finisher.finish(
            &ctx.client,
            &spec.upload_id,
            &checksum,
            data.clone(),
            &ctx.slot,
        );
        Ok(finished.await?)
    })
    .await?;
    // No chunk row or `bytes_done` is journaled: the bytes and the
    // completion went in one server transaction, so the session is complete
    // now, which the completed state the daemon journals next records (a run
    // that stops before that finds the session complete on the server).
    progress.chunk_done(ctx, f.file_index, &f.name, f.size, 0, len);
    if f.checksum.is_none() {
        spec.files[0].checksum = Some(checksum);
        let v = serde_json::to_value(&*spec).map_err(|e| ApiError::internal(e.to_string()))?;
        ctx.journal.set_spec(&ctx.transfer_id, &v).await?;
    }
    Ok(Some((version.content_id, len)))
}

/// The digest of chunk `index` of `f` computed before the session opened, if any.
fn known_digest(f: &SpecFile, chunk_size: u64, index: u64) -> Option<[u8; 32]> {
    let lone = dataerai_proto::chunk_count(f.size, chunk_size) == 1;
    let hex_digest = match f.chunk_digests.as_slice() {
        [] if lone => f.checksum.as_deref()?.strip_prefix("blake3:")?,
        [] => return None,
        many => many.get(index as usize)?,
    };
    let mut d = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut d).ok()?;
    Some(d)
}

/// Send one chunk, with retries; answers its digest. Small chunks are read
/// once and sent from memory; big ones are streamed from disk on every
/// attempt, hashed as they are read unless their digest is known already,
/// with the digest sent after the body (a trailer): each byte is read and
/// hashed once.
async fn send_chunk(
    ctx: &RunContext,
    spec: &UploadSpec,
    f: &SpecFile,
    index: u64,
    offset: u64,
    len: u64,
) -> Result<[u8; 32], Stop> {
    let upload_id = spec.upload_id.as_str();
    let known = known_digest(f, spec.chunk_size, index);
    let digest = ChunkDigest::of(f.size, spec.chunk_size, index);
    if len <= IN_MEMORY_CHUNK {
        let data = read_range(f.path.clone(), offset, len).await?;
        let digest = known.unwrap_or_else(|| digest.compute(&data));
        let data = bytes::Bytes::from(data);
        return retry(ctx, || {
            let body = ChunkBody {
                body: reqwest::Body::from(data.clone()),
                digest: SentDigest::Before(digest),
            };
            put_verified(ctx, upload_id, f, index, len, body)
        })
        .await;
    }
    // Hashed first at most once, however many attempts send the chunk.
    let hashed_first = tokio::sync::OnceCell::new();
    retry(ctx, || async {
        // Digest first (a second read) where the server's store would copy
        // the chunk again to take it after the body, or trailers got lost.
        let known = match known {
            None if !spec.digest_after_body || TRAILERS_LOST.load(Ordering::Relaxed) => {
                let hashed = hashed_first.get_or_try_init(|| async {
                    let (path, size, chunk_size) = (f.path.clone(), f.size, spec.chunk_size);
                    let cancel = ctx.cancel.clone();
                    tokio::task::spawn_blocking(move || {
                        chunk_digest_blocking(&path, size, chunk_size, index, &cancel)
                    })
                    .await
                    .map_err(|e| ApiError::internal(format!("hashing failed: {e}")))?
                });
                Some(*hashed.await.map_err(Failure::local)?)
            }
            known => known,
        };
        let body = file_range_body(&f.path, offset, len, known, digest).map_err(Failure::local)?;
        let sent = put_verified(ctx, upload_id, f, index, len, body).await;
        if let (None, Err(failed)) = (known, &sent) {
            if failed.error.code == ErrorCode::Integrity {
                // E.g. a proxy that drops request trailers: the retry, and
                // every chunk after it, sends its digest in the header.
                tracing::warn!("a chunk sent with its digest after the body failed its check; sending digests first from now on: {}", failed.error.message);
                TRAILERS_LOST.store(true, Ordering::Relaxed);
            }
        }
        sent
    })
    .await
}

/// Set once a chunk sent with its digest in a trailer failed its integrity
/// check: something on the way (a proxy) may drop trailers, so this daemon
/// hashes big chunks before sending them from then on (two reads, as before
/// trailers), with the digest in the header.
static TRAILERS_LOST: AtomicBool = AtomicBool::new(false);

/// A chunk request's body and how its digest goes with it.
struct ChunkBody {
    body: reqwest::Body,
    digest: SentDigest,
}

enum SentDigest {
    /// Known before the body: sent in the request's header.
    Before([u8; 32]),
    /// Computed as the body is read, sent after it as a trailer; the
    /// receiver has it once the last byte was read.
    After(tokio::sync::oneshot::Receiver<[u8; 32]>),
}

/// PUT one chunk and check the server's acknowledgement against the length
/// and digest sent; answers the digest.
async fn put_verified(
    ctx: &RunContext,
    upload_id: &str,
    f: &SpecFile,
    index: u64,
    len: u64,
    chunk: ChunkBody,
) -> Result<[u8; 32], Failure> {
    crate::faults::before_chunk().await;
    let (file_index, client) = (f.file_index, &ctx.client);
    let (ack, digest) = match chunk.digest {
        SentDigest::Before(digest) => {
            let hex = hex::encode(digest);
            let ack = client
                .put_chunk(upload_id, file_index, index, &hex, len, chunk.body)
                .await?;
            (ack, Some(digest))
        }
        SentDigest::After(mut hashed) => {
            let ack = client
                .put_chunk_digest_after(upload_id, file_index, index, chunk.body)
                .await?;
            // Sent before the trailer, so before the server could answer.
            (ack, hashed.try_recv().ok())
        }
    };
    // The server verified the digest we sent; make sure it stored what we hashed.
    let sent = digest.map(|d| format!("blake3:{}", hex::encode(d)));
    match digest {
        Some(digest) if ack.size == len && Some(&ack.checksum) == sent.as_ref() => Ok(digest),
        _ => Err(ApiError::new(
            ErrorCode::Integrity,
            format!(
                "server acknowledged chunk {index} of {} as {} bytes {} but we sent {len} bytes {}",
                f.name,
                ack.size,
                ack.checksum,
                sent.as_deref().unwrap_or("(not all of them)")
            ),
        )
        .into()),
    }
}

/// `[offset, offset+len)` of a file as a request body: pieces of
/// [`SEND_PIECE`] bytes read with positional reads on a blocking thread, at
/// most two ahead of the socket (`tokio::fs::File` would copy every byte once
/// more, through a buffer of its own, and hop threads per read), into a few
/// buffers reused from piece to piece ([`PieceReader`]). Unless the chunk's
/// digest is `known`, each piece is hashed (as `digest` says) right after it
/// is read, and the digest follows the last piece as trailer
/// `x-dataerai-chunk-blake3` ([`SentDigest::After`]).
fn file_range_body(
    path: &std::path::Path,
    offset: u64,
    len: u64,
    known: Option<[u8; 32]>,
    digest: ChunkDigest,
) -> Result<ChunkBody, ApiError> {
    use http_body::Frame;
    let file = std::fs::File::open(path)
        .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Frame<bytes::Bytes>>>(2);
    let (hashed_tx, hashed) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let mut reader = PieceReader::new(file, offset, len);
        let mut hasher = known.is_none().then(|| digest.hasher());
        loop {
            let frame = match reader.next_piece() {
                Ok(Some(piece)) => {
                    if let Some(hasher) = &mut hasher {
                        hasher.update(&piece);
                    }
                    Ok(Frame::data(piece))
                }
                Ok(None) => {
                    let Some(hasher) = &hasher else {
                        return;
                    };
                    let hash = digest.finalize(hasher);
                    let _ = hashed_tx.send(hash);
                    let _ = tx.blocking_send(Ok(Frame::trailers(digest_trailer(hash))));
                    return;
                }
                Err(e) => Err(e),
            };
            let failed = frame.is_err();
            // A send fails once the request is gone: nothing left to read for.
            if tx.blocking_send(frame).is_err() || failed {
                return;
            }
        }
    });
    let frames = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(ChunkBody {
        body: reqwest::Body::wrap(http_body_util::StreamBody::new(frames)),
        digest: match known {
            Some(digest) => SentDigest::Before(digest),
            None => SentDigest::After(hashed),
        },
    })
}

/// The trailer carrying a chunk's digest.
fn digest_trailer(hash: [u8; 32]) -> reqwest::header::HeaderMap {
    let mut trailer = reqwest::header::HeaderMap::new();
    let value = reqwest::header::HeaderValue::from_str(&hex::encode(hash))
        .expect("hex digits are a valid header value");
    trailer.insert(dataerai_proto::CHUNK_HASH_HEADER, value);
    trailer
}

/// Pieces handed out that a [`PieceReader`] keeps an eye on, to read into
/// again once the socket is done with them: the two the body channel holds,
/// the one being sent and one to spare.
const REUSED_PIECES: usize = 4;

/// Reads `[offset, offset+len)` of a file in pieces of at most [`SEND_PIECE`]
/// bytes into reused buffers: a piece handed out is taken back for a later
/// read once nobody else holds it (the HTTP client dropped it after sending),
/// and read into over the bytes it held, without being cleared first. A fresh
/// zeroed buffer per piece cost a `memset` of every byte (7 % of the daemon's
/// cycles uploading from tmpfs: the allocator hands out reused heap memory,
/// which `calloc` clears) and new memory's page faults (docs/performance.md);
/// now only the first few buffers of a chunk are new.
struct PieceReader {
    file: std::fs::File,
    /// Where the next piece starts, and where the range ends.
    at: u64,
    end: u64,
    /// Pieces handed out, oldest first.
    out: std::collections::VecDeque<bytes::Bytes>,
}

impl PieceReader {
    fn new(file: std::fs::File, offset: u64, len: u64) -> PieceReader {
        PieceReader {
            file,
            at: offset,
            end: offset + len,
            out: Default::default(),
        }
    }

    /// The next piece, or `None` at the end of the range (blocking).
    fn next_piece(&mut self) -> std::io::Result<Option<bytes::Bytes>> {
        if self.at >= self.end {
            return Ok(None);
        }
        let n = (self.end - self.at).min(SEND_PIECE) as usize;
        let mut buf = self.buffer(n);
        self.file.read_exact_at(&mut buf, self.at)?;
        self.at += n as u64;
        let piece = buf.freeze();
        self.out.push_back(piece.clone());
        Ok(Some(piece))
    }

    /// A buffer of `n` bytes to read into: the oldest piece handed out if it
    /// came back (its old bytes are overwritten), else a new one.
    fn buffer(&mut self, n: usize) -> bytes::BytesMut {
        let oldest_back = self.out.front().is_some_and(|p| p.is_unique());
        if oldest_back || self.out.len() >= REUSED_PIECES {
            // When the oldest is still held although REUSED_PIECES are out,
            // it is let go (the HTTP client frees it) for a new buffer.
            let oldest = self.out.pop_front();
            if let Some(Ok(mut buf)) = oldest.map(bytes::Bytes::try_into_mut) {
                if buf.len() >= n {
                    buf.truncate(n);
                    return buf;
                }
            }
        }
        let mut buf = bytes::BytesMut::zeroed(SEND_PIECE as usize);
        buf.truncate(n);
        buf
    }
}

/// Read `[offset, offset+len)` of a file into memory (small ranges inline).
async fn read_range(path: PathBuf, offset: u64, len: u64) -> Result<Vec<u8>, ApiError> {
    let read = move || {
        let f = std::fs::File::open(&path)
            .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact_at(&mut buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                shrank(&path)
            } else {
                io_error(format!("cannot read {}", path.display()), e)
            }
        })?;
        Ok(buf)
    };
    if len <= INLINE_HASH_LIMIT {
        read()
    } else {
        tokio::task::spawn_blocking(read)
            .await
            .map_err(|e| ApiError::internal(format!("read task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A range read in pieces arrives whole; a piece still held (by the
    /// socket) is never read into again, and pieces that came back are: a
    /// few buffers serve the whole range.
    #[test]
    fn pieces_are_read_into_reused_buffers_never_into_held_ones() {
        let len = 5 * SEND_PIECE as usize + 100;
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &data).unwrap();
        let open = || std::fs::File::open(file.path()).unwrap();

        // Each piece dropped at once: one buffer for all.
        let mut reader = PieceReader::new(open(), 50, len as u64 - 50);
        let (mut got, mut buffers) = (Vec::new(), std::collections::HashSet::new());
        while let Some(piece) = reader.next_piece().unwrap() {
            buffers.insert(piece.as_ptr());
            got.extend_from_slice(&piece);
        }
        assert_eq!(got, &data[50..]);
        assert_eq!(buffers.len(), 1);

        // Two pieces held at a time, as the body channel does.
        let mut reader = PieceReader::new(open(), 0, len as u64);
        let (mut held, mut at) = (std::collections::VecDeque::new(), 0usize);
        let mut buffers = std::collections::HashSet::new();
        while let Some(piece) = reader.next_piece().unwrap() {
            buffers.insert(piece.as_ptr());
            held.push_back((at, piece.clone()));
            at += piece.len();
            if held.len() > 2 {
                let (from, old) = held.pop_front().unwrap();
                assert_eq!(
                    &old[..],
                    &data[from..from + old.len()],
                    "a held piece changed"
                );
            }
        }
        for (from, old) in held {
            assert_eq!(
                &old[..],
                &data[from..from + old.len()],
                "a held piece changed"
            );
        }
        assert_eq!(at, len);
        assert!(buffers.len() <= 3, "{} buffers for 6 pieces", buffers.len());
    }

    /// A file shorter than the range ends the body with an error.
    #[test]
    fn a_file_that_shrank_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), vec![7u8; 1000]).unwrap();
        let mut reader = PieceReader::new(std::fs::File::open(file.path()).unwrap(), 0, 2000);
        let err = reader.next_piece().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
