//! `dataerai-transfer`: the resumable upload and download engines and the
//! journal that makes them resumable.
//!
//! - [`upload`] / [`download`]: the engines; [`small`] coalesces one-chunk
//!   uploads into one request; [`scan`] the directory rules of an upload.
//! - [`journal`]: the SQLite record of every transfer, its plan and every
//!   durable chunk (`journal.db`, versioned migrations).
//! - [`progress`]: [`Observer`], [`ProgressEvent`] and [`ProgressSink`], how a
//!   run reports what it does.
//! - This module: [`RunContext`], the retry loop and chunk arithmetic shared
//!   by both engines. `faults` (feature `fault-injection`, tests only)
//!   simulates a slow link or a full disk.
//!
//! This crate talks to the server only through [`dataerai_client::ApiClient`]
//! and must not know about the daemon's socket, the CLI or the terminal:
//! whoever runs a transfer supplies the [`Observer`] and decides what to print
//! or send.
//!
//! Both engines are *resumable*: [`upload::prepare`] / [`download::prepare`] do
//! everything that can fail fast (validation, asset and session creation) and
//! produce a plan (`spec`) that the caller stores in the [`Journal`]; `run` then
//! works only from that plan plus the journal's record of finished chunks, so
//! running it again after a crash, a pause or a failure moves only what is
//! missing. Several chunks are in flight; everything is verified with BLAKE3.
//!
//! Failures go through [`retry`]: a server that cannot be reached (or answers
//! 5xx / 503 + `Retry-After`) is retried with exponential backoff and jitter for
//! as long as the retry window allows, reporting each wait to the [`Observer`];
//! errors retrying cannot fix end the run at once. Memory stays bounded: big
//! chunks are streamed from/to disk, small ones are held once.

#![forbid(unsafe_code)]

pub mod download;
mod faults;
pub mod journal;
pub mod progress;
pub mod scan;
pub mod small;
pub mod upload;

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dataerai_client::ApiClient;
use dataerai_proto::digest::{self, ChunkDigest};
use dataerai_proto::{ApiError, ErrorCode};
use tokio_util::sync::CancellationToken;

use crate::journal::{ErrorInfo, Journal, NewTransfer, TransferKind, TransferState};
pub use crate::progress::{Observer, ProgressEvent, ProgressSink};

/// Chunks in flight per transfer.
pub const PARALLEL_CHUNKS: usize = 4;
/// Read buffer for streaming a chunk from disk.
pub const IO_BUF: usize = 256 * 1024;
/// Attempts for one chunk whose bytes keep failing verification.
pub const MAX_INTEGRITY_ATTEMPTS: u32 = 10;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Default retry window (`dataerai daemon --retry-window-s`).
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(3600);

/// Why a run stopped without a result.
#[derive(Debug)]
pub enum Stop {
    /// `transfer.pause`: chunks in flight finished, no new one started.
    Paused,
    Error(ApiError),
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Error(e)
    }
}

/// A failed step: the error, and whether trying again can help.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
    pub retryable: bool,
}

/// Errors from the server (the `?` conversion): unreachable, 5xx and a chunk
/// that failed verification in flight are worth another try; the rest are final.
impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        let retryable = matches!(
            error.code,
            ErrorCode::ServerUnreachable | ErrorCode::Internal | ErrorCode::Integrity
        );
        Failure { error, retryable }
    }
}

impl Failure {
    /// A failure on this machine (disk, file): retrying the request cannot fix it.
    pub fn local(error: ApiError) -> Failure {
        Failure {
            error,
            retryable: false,
        }
    }
}

/// Consecutive-failure bookkeeping shared by every step of one run.
#[derive(Default)]
struct RetryBook {
    first_failure: Option<Instant>,
    attempt: u32,
    /// When the requests of the current attempt are to be tried again: a
    /// request that fails before then failed in the same outage (other chunks
    /// in flight) and waits until then without counting another attempt.
    next_try: Option<Instant>,
}

/// Everything an engine needs while it runs.
pub struct RunContext {
    pub transfer_id: String,
    pub client: ApiClient,
    pub journal: Journal,
    pub cancel: CancellationToken,
    pub pause: CancellationToken,
    pub observer: Arc<dyn Observer>,
    pub retry_window: Duration,
    /// The first run right after `prepare` in this process: the server holds
    /// no chunk of the session but what `prepare` learnt (deduplicated files).
    pub fresh: bool,
    /// Sends the bytes of single-chunk files together (share one per process).
    pub finisher: small::Finisher,
    /// The batch slot this run holds, if any (given back while its small
    /// file waits to be sent, see [`small`]).
    pub slot: small::Slot,
    /// Locked across each state change it causes (see `succeeded`).
    book: tokio::sync::Mutex<RetryBook>,
}

impl RunContext {
    pub fn new(
        transfer_id: String,
        client: ApiClient,
        journal: Journal,
        observer: Arc<dyn Observer>,
        retry_window: Duration,
    ) -> RunContext {
        RunContext {
            transfer_id,
            client,
            journal,
            cancel: CancellationToken::new(),
            pause: CancellationToken::new(),
            observer,
            retry_window,
            fresh: false,
            finisher: small::Finisher::default(),
            slot: small::Slot::default(),
            book: Default::default(),
        }
    }

    async fn succeeded(&self) {
        // The book stays locked until the state is journaled and announced, so
        // concurrent chunks' transitions land in the order the book saw them
        // (a success just before a failure must not overwrite `retrying`).
        let mut b = self.book.lock().await;
        let was_retrying = b.first_failure.take().is_some();
        b.attempt = 0;
        b.next_try = None;
        if was_retrying {
            self.journal_state(TransferState::Running, 0, None).await;
            self.observer.recovered();
        }
    }

    /// Book a retryable failure: the attempt number and how long to wait, or the
    /// final error once failures have lasted longer than the retry window.
    async fn failed(&self, e: &ApiError) -> Result<(u32, Duration), ApiError> {
        let hint = self.client.take_retry_after();
        let mut b = self.book.lock().await;
        let first = *b.first_failure.get_or_insert_with(Instant::now);
        if first.elapsed() >= self.retry_window {
            return Err(ApiError::new(
                ErrorCode::ServerUnreachable,
                format!(
                    "gave up after {}s of failures (retry window): {}",
                    self.retry_window.as_secs(),
                    e.message
                ),
            ));
        }
        // The back-off grows once per round of failures, not per failed
        // request: with several chunks in flight, one outage fails them all.
        let now = Instant::now();
        if let Some(at) = b.next_try.filter(|at| *at > now) {
            let delay = hint.map_or(at - now, |h| (at - now).max(h.min(MAX_BACKOFF)));
            return Ok((b.attempt, delay));
        }
        b.attempt += 1;
        let (attempt, delay) = (b.attempt, backoff(b.attempt, hint));
        b.next_try = Some(now + delay);
        let info = ErrorInfo::from(e);
        self.journal_state(TransferState::Retrying, attempt, Some(&info))
            .await;
        self.observer.retrying(attempt, delay, e);
        Ok((attempt, delay))
    }

    /// Journal a state change in the middle of a run. The run goes on if that
    /// fails: the journal only shows a stale state until the run ends and
    /// journals its outcome.
    async fn journal_state(
        &self,
        state: TransferState,
        attempt: u32,
        last_error: Option<&ErrorInfo>,
    ) {
        let journaled = self
            .journal
            .set_state(&self.transfer_id, state, attempt, last_error, None, None)
            .await;
        if let Err(e) = journaled {
            tracing::warn!(
                transfer_id = %self.transfer_id,
                "cannot journal that the transfer is {state} (attempt {attempt}): {e}"
            );
        }
    }

    /// Stop promptly on cancel (an error) or pause.
    pub fn check_stop(&self) -> Result<(), Stop> {
        if self.cancel.is_cancelled() {
            return Err(cancelled().into());
        }
        if self.pause.is_cancelled() {
            return Err(Stop::Paused);
        }
        Ok(())
    }
}

/// Exponential backoff (0.5 s × 2^(attempt-1), capped at [`MAX_BACKOFF`]) with
/// jitter (×0.5–1.0) so parallel chunks that failed together do not come back
/// in lock step; a server's `Retry-After` is a lower bound.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let jittered = base.mul_f64(0.5 + rand::random::<f64>() * 0.5);
    match retry_after {
        Some(r) => jittered.max(r.min(MAX_BACKOFF)),
        None => jittered,
    }
}

/// Run `op` until it succeeds, fails for good, the window runs out, or the run
/// is cancelled / paused. Integrity failures (a chunk corrupted in flight) are
/// re-sent at once, at most [`MAX_INTEGRITY_ATTEMPTS`] times.
pub async fn retry<T, F, Fut>(ctx: &RunContext, mut op: F) -> Result<T, Stop>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut integrity_failures = 0u32;
    let mut auth_retried = false;
    loop {
        let res = tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(cancelled().into()),
            r = op() => r,
        };
        let f = match res {
            Ok(v) => {
                ctx.succeeded().await;
                return Ok(v);
            }
            Err(f) => f,
        };
        // A refused token was renewed by the client when the 401 came back (or
        // the renewal failed and says "sign in again"); a request whose body
        // was streamed could not be resent there, so send it once more here.
        if f.error.code == ErrorCode::AuthRequired && ctx.client.can_refresh() && !auth_retried {
            auth_retried = true;
            tracing::info!(transfer_id = %ctx.transfer_id, "sending again with a renewed token");
            continue;
        }
        if !f.retryable {
            return Err(f.error.into());
        }
        if f.error.code == ErrorCode::Integrity {
            integrity_failures += 1;
            if integrity_failures >= MAX_INTEGRITY_ATTEMPTS {
                return Err(f.error.into());
            }
            tracing::warn!(transfer_id = %ctx.transfer_id, "re-sending after an integrity failure: {}", f.error.message);
            continue;
        }
        let (attempt, delay) = ctx.failed(&f.error).await?;
        tracing::warn!(transfer_id = %ctx.transfer_id, attempt, code = %f.error.code,
            "retrying in {delay:?}: {}", f.error.message);
        tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(cancelled().into()),
            _ = ctx.pause.cancelled() => return Err(Stop::Paused),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Chunk size in bytes from the optional `chunk_size_mb` parameter (1..=512 MiB).
pub fn chunk_size_from_mb(chunk_size_mb: Option<i64>) -> Result<u64, ApiError> {
    match chunk_size_mb {
        None => Ok(dataerai_proto::api::DEFAULT_CHUNK_SIZE),
        Some(mb) if (1..=512).contains(&mb) && mb.count_ones() == 1 => Ok(mb.unsigned_abs() << 20),
        Some(mb) => Err(ApiError::invalid(format!(
            "chunk_size_mb must be a power of two from 1 to 512 (1, 2, 4, … 512), got {mb}"
        ))),
    }
}

/// Remove a file this run created and no longer needs (a partial download, a
/// probe). One that is already gone is fine; any other failure leaves litter
/// behind but must not fail the transfer, so it is logged.
pub async fn remove_leftover(path: &Path, what: &str) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove {what} {}: {e}", path.display()),
    }
}

/// The error every engine returns once its token is cancelled.
pub fn cancelled() -> ApiError {
    ApiError::new(ErrorCode::Cancelled, "transfer cancelled")
}

/// Map a local I/O error: a full disk keeps its own code, the rest is internal.
pub fn io_error(context: impl std::fmt::Display, e: std::io::Error) -> ApiError {
    if e.raw_os_error() == Some(libc::ENOSPC) {
        ApiError::new(
            ErrorCode::NoSpace,
            format!("{context}: no space left on device"),
        )
    } else {
        ApiError::internal(format!("{context}: {e}"))
    }
}

/// Join a server-supplied relative file name onto `dest`, refusing anything
/// that could escape it (absolute paths, `..`, empty names).
pub fn safe_join(dest: &Path, name: &str) -> Result<PathBuf, ApiError> {
    let bad = || ApiError::invalid(format!("refusing unsafe file name from server: {name:?}"));
    if name.is_empty() || name.contains('\0') || name.contains('\\') {
        return Err(bad());
    }
    let rel = Path::new(name);
    let mut out = dest.to_path_buf();
    let mut parts = 0;
    for c in rel.components() {
        match c {
            Component::Normal(p) => {
                out.push(p);
                parts += 1;
            }
            Component::CurDir => {}
            _ => return Err(bad()),
        }
    }
    if parts == 0 {
        return Err(bad());
    }
    Ok(out)
}

/// `(chunk_index, offset, len)` for every chunk of a file.
pub fn plan_chunks(size: u64, chunk_size: u64) -> Vec<(u64, u64, u64)> {
    (0..dataerai_proto::chunk_count(size, chunk_size))
        .map(|i| {
            (
                i,
                i * chunk_size,
                dataerai_proto::chunk_len(size, chunk_size, i),
            )
        })
        .collect()
}

/// Chunks in a plan of files of these sizes cut into `chunk_size`-byte chunks
/// (one for each empty file), shared by the upload and download plans.
pub fn total_chunks(sizes: impl Iterator<Item = u64>, chunk_size: u64) -> u64 {
    sizes
        .map(|size| dataerai_proto::chunk_count(size, chunk_size))
        .sum()
}

/// The digest of chunk `index` of a file of `size` bytes cut into
/// `chunk_size`-byte chunks (`dataerai_proto::digest`), read from `path`.
/// Blocking: call on a blocking thread, or for small chunks only.
pub fn chunk_digest_blocking(
    path: &Path,
    size: u64,
    chunk_size: u64,
    index: u64,
    cancel: &CancellationToken,
) -> Result<[u8; 32], ApiError> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)
        .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
    let digest = ChunkDigest::of(size, chunk_size, index);
    let (offset, len) = (
        index * chunk_size,
        dataerai_proto::chunk_len(size, chunk_size, index),
    );
    let mut hasher = digest.hasher();
    let mut buf = vec![0u8; IO_BUF.min(len as usize)];
    let mut pos = 0u64;
    while pos < len {
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let want = ((len - pos) as usize).min(buf.len());
        let n = file
            .read_at(&mut buf[..want], offset + pos)
            .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
        if n == 0 {
            return Err(shrank(path));
        }
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(digest.finalize(&hasher))
}

/// A local file ended before a chunk it should hold.
pub fn shrank(path: &Path) -> ApiError {
    ApiError::invalid(format!(
        "{} shrank while it was being transferred",
        path.display()
    ))
}

/// Chunk digests gathered while the chunks move, by `(file_index, chunk_index)`:
/// a file's BLAKE3 is merged from them instead of reading the file again.
#[derive(Default)]
pub struct Digests(Mutex<std::collections::HashMap<(u32, u64), [u8; 32]>>);

impl Digests {
    pub fn put(&self, file_index: u32, chunk_index: u64, digest: [u8; 32]) {
        self.0
            .lock()
            .expect("digests lock")
            .insert((file_index, chunk_index), digest);
    }

    /// `blake3:<hex>` of a file from the digests gathered; chunks that moved in
    /// an earlier run (before a pause or a crash) are read back from `path`.
    pub async fn checksum(
        &self,
        path: &Path,
        file_index: u32,
        size: u64,
        chunk_size: u64,
        cancel: &CancellationToken,
    ) -> Result<String, ApiError> {
        let known: Vec<Option<[u8; 32]>> = {
            let map = self.0.lock().expect("digests lock");
            (0..dataerai_proto::chunk_count(size, chunk_size))
                .map(|i| map.get(&(file_index, i)).copied())
                .collect()
        };
        let (path, cancel) = (path.to_path_buf(), cancel.clone());
        tokio::task::spawn_blocking(move || {
            let digests = known
                .into_iter()
                .enumerate()
                .map(|(i, d)| match d {
                    Some(d) => Ok(d),
                    None => chunk_digest_blocking(&path, size, chunk_size, i as u64, &cancel),
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            let hash = digest::file_hash(size, chunk_size, &digests).map_err(ApiError::internal)?;
            Ok(dataerai_proto::blake3_checksum(&hash))
        })
        .await
        .map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))?
    }
}

/// What the journaled plans of both engines ([`upload::UploadSpec`],
/// [`download::DownloadSpec`]) share: the counts of a Transfer object and the
/// journal row that runs them.
pub trait Plan: serde::Serialize {
    /// The engine that runs it.
    const KIND: TransferKind;
    fn asset_id(&self) -> &str;
    fn content_id(&self) -> &str;
    fn chunk_size(&self) -> u64;
    /// The local file or directory it reads from / writes into.
    fn local_path(&self) -> &Path;
    /// The size of every file, in plan order.
    fn sizes(&self) -> impl Iterator<Item = u64> + '_;

    fn bytes_total(&self) -> u64 {
        self.sizes().sum()
    }

    fn chunk_count(&self) -> u64 {
        total_chunks(self.sizes(), self.chunk_size())
    }

    fn file_count(&self) -> u64 {
        self.sizes().count() as u64
    }

    /// The journal row of a new transfer that runs this plan.
    fn new_transfer(&self, batch_id: Option<String>) -> Result<NewTransfer, ApiError> {
        Ok(NewTransfer {
            kind: Self::KIND,
            asset_id: self.asset_id().to_string(),
            content_id: Some(self.content_id().to_string()),
            local_path: self.local_path().to_string_lossy().into_owned(),
            bytes_total: self.bytes_total(),
            chunk_count: self.chunk_count(),
            file_count: self.file_count(),
            batch_id,
            spec: serde_json::to_value(self).map_err(|e| ApiError::internal(e.to_string()))?,
            completed: None,
        })
    }
}

/// [`Plan`] for a spec with the fields `asset_id`, `content_id`, `chunk_size`
/// and `files` (each with a `size`) and the named local path field.
macro_rules! impl_plan {
    ($spec:ty, $kind:expr, $local_path:ident) => {
        impl $crate::Plan for $spec {
            const KIND: $crate::journal::TransferKind = $kind;
            fn asset_id(&self) -> &str {
                &self.asset_id
            }
            fn content_id(&self) -> &str {
                &self.content_id
            }
            fn chunk_size(&self) -> u64 {
                self.chunk_size
            }
            fn local_path(&self) -> &std::path::Path {
                &self.$local_path
            }
            fn sizes(&self) -> impl Iterator<Item = u64> + '_ {
                self.files.iter().map(|f| f.size)
            }
        }
    };
}
pub(crate) use impl_plan;

/// Run `chunk` for every pending chunk, [`PARALLEL_CHUNKS`] at a time. They are
/// pulled lazily as slots free up, so a pause starts no new one; the chunks
/// already in flight finish (one whose retry wait was interrupted just stops).
/// Any other error ends the run at once. `Err(Stop::Paused)` unless every
/// chunk finished.
pub async fn run_chunks<T, F, Fut>(ctx: &RunContext, pending: Vec<T>, chunk: F) -> Result<(), Stop>
where
    F: FnMut(T) -> Fut,
    Fut: Future<Output = Result<(), Stop>>,
{
    use futures::StreamExt;
    let total = pending.len();
    let mut finished = 0;
    let mut chunks = futures::stream::iter(pending)
        .take_while(|_| std::future::ready(!ctx.pause.is_cancelled()))
        .map(chunk)
        .buffer_unordered(PARALLEL_CHUNKS);
    while let Some(r) = chunks.next().await {
        match r {
            Ok(()) => finished += 1,
            Err(Stop::Paused) => {}
            Err(e) => return Err(e),
        }
    }
    if finished < total {
        return Err(Stop::Paused);
    }
    Ok(())
}

/// The bytes one run has moved, reported as a [`ProgressEvent`] per chunk.
pub struct Progress {
    kind: TransferKind,
    bytes_total: u64,
    chunk_size: u64,
    done: AtomicU64,
    meter: RateMeter,
}

impl Progress {
    /// `already` bytes were done before this run.
    pub fn start(kind: TransferKind, bytes_total: u64, chunk_size: u64, already: u64) -> Progress {
        Progress {
            kind,
            bytes_total,
            chunk_size,
            done: AtomicU64::new(already),
            meter: RateMeter::start(already),
        }
    }

    /// Count chunk `index` (`len` bytes) of file `file_index` (`file_size`
    /// bytes) as done and report it; answers the bytes done now.
    pub fn chunk_done(
        &self,
        ctx: &RunContext,
        file_index: u32,
        file_name: &str,
        file_size: u64,
        index: u64,
        len: u64,
    ) -> u64 {
        // No await between counting and reporting: events leave in order.
        let bytes_done = self.done.fetch_add(len, Ordering::Relaxed) + len;
        ctx.observer.progress(ProgressEvent {
            transfer_id: ctx.transfer_id.clone(),
            kind: self.kind,
            bytes_done,
            bytes_total: self.bytes_total,
            rate_bps: self.meter.rate_bps(bytes_done),
            chunk_index: index,
            chunk_count: dataerai_proto::chunk_count(file_size, self.chunk_size),
            file_index,
            file_name: file_name.to_string(),
        });
        bytes_done
    }
}

/// Tracks the average rate of one run.
pub struct RateMeter {
    started: Instant,
    /// Bytes that were already done when this run started (not counted in the rate).
    base: u64,
}

impl RateMeter {
    pub fn start(base: u64) -> Self {
        RateMeter {
            started: Instant::now(),
            base,
        }
    }
    pub fn rate_bps(&self, bytes_done: u64) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            bytes_done.saturating_sub(self.base) as f64 / secs
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_plan_covers_file_exactly() {
        let plan = plan_chunks(25, 10);
        assert_eq!(plan, vec![(0, 0, 10), (1, 10, 10), (2, 20, 5)]);
        assert_eq!(plan_chunks(0, 10), vec![(0, 0, 0)]);
        assert_eq!(plan_chunks(20, 10).len(), 2);
        let total: u64 = plan_chunks(1_000_003, 4096).iter().map(|c| c.2).sum();
        assert_eq!(total, 1_000_003);
    }

    #[test]
    fn chunk_size_bounds() {
        assert_eq!(chunk_size_from_mb(None).unwrap(), 64 * 1024 * 1024);
        assert_eq!(chunk_size_from_mb(Some(1)).unwrap(), 1024 * 1024);
        assert_eq!(chunk_size_from_mb(Some(512)).unwrap(), 512 * 1024 * 1024);
        for bad in [0, -1, 513, 3, 100] {
            assert_eq!(
                chunk_size_from_mb(Some(bad)).unwrap_err().code,
                ErrorCode::InvalidInput
            );
        }
    }

    #[test]
    fn safe_join_refuses_escapes() {
        let d = Path::new("/dest");
        assert_eq!(safe_join(d, "a.bin").unwrap(), Path::new("/dest/a.bin"));
        assert_eq!(
            safe_join(d, "sub/./b.bin").unwrap(),
            Path::new("/dest/sub/b.bin")
        );
        for bad in [
            "",
            "..",
            "../x",
            "a/../../x",
            "/etc/passwd",
            ".",
            "a\\b",
            "x\0y",
        ] {
            assert!(safe_join(d, bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        for attempt in 1..40 {
            let d = backoff(attempt, None);
            let base = Duration::from_millis(500)
                .saturating_mul(1 << (attempt - 1).min(10))
                .min(MAX_BACKOFF);
            assert!(d <= base && d >= base / 2, "{attempt}: {d:?}");
        }
        assert!(backoff(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert!(backoff(1, Some(Duration::from_secs(3600))) <= MAX_BACKOFF);
    }

    struct Quiet;
    impl Observer for Quiet {
        fn progress(&self, _: ProgressEvent) {}
        fn retrying(&self, _: u32, _: Duration, _: &ApiError) {}
        fn recovered(&self) {}
    }

    async fn ctx(window: Duration) -> RunContext {
        RunContext::new(
            "t".into(),
            ApiClient::new("http://127.0.0.1:9", "x").unwrap(),
            Journal::in_memory().await.unwrap(),
            Arc::new(Quiet),
            window,
        )
    }

    #[tokio::test]
    async fn retry_stops_on_permanent_errors_and_retries_transient() {
        let c = ctx(DEFAULT_RETRY_WINDOW).await;
        let mut calls = 0;
        let r: Result<(), _> = retry(&c, || {
            calls += 1;
            async { Err(ApiError::denied("no").into()) }
        })
        .await;
        assert!(matches!(r, Err(Stop::Error(e)) if e.code == ErrorCode::PermissionDenied));
        assert_eq!(calls, 1);

        let mut calls = 0;
        let r = retry(&c, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 2 {
                    Err(ApiError::internal("flaky").into())
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 2);

        // Integrity failures: resent at once, at most 10 times.
        let mut calls = 0;
        let r: Result<(), _> = retry(&c, || {
            calls += 1;
            async { Err(ApiError::new(ErrorCode::Integrity, "bad").into()) }
        })
        .await;
        assert!(matches!(r, Err(Stop::Error(e)) if e.code == ErrorCode::Integrity));
        assert_eq!(calls, MAX_INTEGRITY_ATTEMPTS);
    }

    #[tokio::test]
    async fn parallel_failures_of_one_outage_count_one_attempt() {
        let c = ctx(DEFAULT_RETRY_WINDOW).await;
        let down = ApiError::new(ErrorCode::ServerUnreachable, "down");
        // Four chunks in flight fail together: one attempt, one wait.
        let mut booked = Vec::new();
        for _ in 0..PARALLEL_CHUNKS {
            booked.push(c.failed(&down).await.unwrap());
        }
        assert!(booked.iter().all(|(a, _)| *a == 1), "{booked:?}");
        assert!(booked.iter().all(|(_, d)| *d <= Duration::from_millis(500)));
        // Once that wait is over, failing again is the next attempt.
        tokio::time::sleep(booked[0].1).await;
        let (attempt, _) = c.failed(&down).await.unwrap();
        assert_eq!(attempt, 2);
        // A request that gets through ends the outage: the next one starts over.
        c.succeeded().await;
        assert_eq!(c.failed(&down).await.unwrap().0, 1);
    }

    #[tokio::test]
    async fn retry_window_ends_in_server_unreachable_and_pause_interrupts() {
        let c = ctx(Duration::ZERO).await;
        let r: Result<(), _> = retry(&c, || async {
            Err(ApiError::new(ErrorCode::ServerUnreachable, "down").into())
        })
        .await;
        assert!(
            matches!(r, Err(Stop::Error(e)) if e.code == ErrorCode::ServerUnreachable && e.message.contains("gave up"))
        );

        let c = ctx(DEFAULT_RETRY_WINDOW).await;
        c.pause.cancel();
        let r: Result<(), _> = retry(&c, || async {
            Err(ApiError::new(ErrorCode::ServerUnreachable, "down").into())
        })
        .await;
        assert!(matches!(r, Err(Stop::Paused)));
    }

    #[tokio::test]
    async fn file_checksum_from_gathered_and_read_back_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let cs = 1 << 20;
        let never = CancellationToken::new();
        let size = data.len() as u64;
        let want = dataerai_proto::blake3_checksum(blake3::hash(&data).as_bytes());
        // Nothing gathered: every chunk is read back.
        let digests = Digests::default();
        assert_eq!(
            digests.checksum(&p, 0, size, cs, &never).await.unwrap(),
            want
        );
        // Some gathered (as a run would), the others read back.
        let digests = Digests::default();
        for i in [0, 2] {
            let start = (i * cs) as usize;
            let end = (start + cs as usize).min(data.len());
            digests.put(
                0,
                i,
                ChunkDigest::of(size, cs, i).compute(&data[start..end]),
            );
        }
        assert_eq!(
            digests.checksum(&p, 0, size, cs, &never).await.unwrap(),
            want
        );
        // A wrong gathered digest gives another checksum, and a file shorter
        // than announced is an error.
        digests.put(0, 1, [0; 32]);
        assert_ne!(
            digests.checksum(&p, 0, size, cs, &never).await.unwrap(),
            want
        );
        let err = Digests::default()
            .checksum(&p, 0, size + 5 * cs, cs, &never)
            .await
            .unwrap_err();
        assert!(err.message.contains("shrank"), "{err:?}");
    }
}
