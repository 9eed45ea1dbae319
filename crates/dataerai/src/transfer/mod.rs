//! Upload and download engines.
//!
//! Both engines move one file in fixed-size chunks with several chunks in
//! flight, verify everything with BLAKE3, retry transient failures, honour a
//! [`CancellationToken`], and report a [`ProgressEvent`] after every chunk.
//! Memory stays bounded by streaming each chunk from/to disk instead of
//! buffering it: what is in flight is a few small I/O buffers per chunk.
//!
//! - [`upload`]: prepare (validate, create asset + upload session) then run.
//! - [`download`]: prepare (validate destination, fetch content version) then run.

pub mod download;
pub mod upload;

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use dataerai_proto::{ApiError, ErrorCode};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Chunks in flight per transfer.
pub const PARALLEL_CHUNKS: usize = 4;
/// Attempts per chunk (first try included) for transient failures.
pub const MAX_ATTEMPTS: u32 = 5;
/// Read buffer for streaming a chunk from disk.
pub const IO_BUF: usize = 256 * 1024;

/// One `transfer.progress` notification (field names are the IPC contract).
#[derive(Debug, Clone, Serialize)]
pub struct ProgressEvent {
    pub transfer_id: String,
    pub kind: &'static str,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub rate_bps: f64,
    pub chunk_index: u64,
    pub chunk_count: u64,
    pub file_index: u32,
    pub file_name: String,
}

/// Where progress events go (daemon: broadcast; CLI: a progress bar).
pub type ProgressSink = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// Chunk size in bytes from the optional `chunk_size_mb` parameter (1..=512 MiB).
pub fn chunk_size_from_mb(chunk_size_mb: Option<i64>) -> Result<u64, ApiError> {
    match chunk_size_mb {
        None => Ok(dataerai_proto::api::DEFAULT_CHUNK_SIZE),
        Some(mb) if (1..=512).contains(&mb) => Ok(mb as u64 * 1024 * 1024),
        Some(mb) => Err(ApiError::invalid(format!(
            "chunk_size_mb must be between 1 and 512, got {mb}"
        ))),
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

/// Whether a failed chunk request is worth another try.
fn is_transient(e: &ApiError) -> bool {
    matches!(
        e.code,
        ErrorCode::ServerUnreachable | ErrorCode::Internal | ErrorCode::Integrity
    )
}

/// Run `op` until it succeeds, fails permanently, runs out of attempts or is cancelled.
/// Backoff: 250 ms × 2^attempt (capped at 8 s) with ±50 % jitter, so parallel
/// chunks that failed together do not hammer the server in lock step.
pub async fn with_retry<T, F, Fut>(cancel: &CancellationToken, mut op: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut attempt = 0u32;
    loop {
        let res = tokio::select! {
            _ = cancel.cancelled() => return Err(cancelled()),
            r = op() => r,
        };
        match res {
            Ok(v) => return Ok(v),
            Err(e) if is_transient(&e) && attempt + 1 < MAX_ATTEMPTS => {
                attempt += 1;
                let base = (250u64 << attempt).min(8_000);
                let jitter = rand::random::<f64>() + 0.5;
                let wait = Duration::from_millis((base as f64 * jitter) as u64);
                tracing::warn!(code = %e.code, attempt, "transient failure, retrying in {wait:?}: {}", e.message);
                tokio::select! {
                    _ = cancel.cancelled() => return Err(cancelled()),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => return Err(e),
        }
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

/// Stream-hash a whole file with BLAKE3 on a blocking thread; returns `blake3:<hex>`.
pub async fn hash_file(path: PathBuf, cancel: CancellationToken) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f = std::fs::File::open(&path)
            .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            if cancel.is_cancelled() {
                return Err(cancelled());
            }
            let n = f
                .read(&mut buf)
                .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(dataerai_proto::blake3_checksum(
            hasher.finalize().as_bytes(),
        ))
    })
    .await
    .map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))?
}

/// Tracks cumulative bytes and the average rate of one transfer.
pub struct RateMeter {
    started: std::time::Instant,
}

impl RateMeter {
    pub fn start() -> Self {
        RateMeter {
            started: std::time::Instant::now(),
        }
    }
    pub fn rate_bps(&self, bytes_done: u64) -> f64 {
        let secs = self.started.elapsed().as_secs_f64();
        if secs > 0.0 {
            bytes_done as f64 / secs
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
        for bad in [0, -1, 513] {
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

    #[tokio::test]
    async fn retry_stops_on_permanent_errors_and_retries_transient() {
        let cancel = CancellationToken::new();
        let mut calls = 0;
        let r: Result<(), _> = with_retry(&cancel, || {
            calls += 1;
            async { Err(ApiError::denied("no")) }
        })
        .await;
        assert_eq!(r.unwrap_err().code, ErrorCode::PermissionDenied);
        assert_eq!(calls, 1);

        let mut calls = 0;
        let r = with_retry(&cancel, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 2 {
                    Err(ApiError::internal("flaky"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 2);
    }

    #[tokio::test]
    async fn hash_file_matches_blake3() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let got = hash_file(p, CancellationToken::new()).await.unwrap();
        assert_eq!(
            got,
            dataerai_proto::blake3_checksum(blake3::hash(&data).as_bytes())
        );
    }
}
