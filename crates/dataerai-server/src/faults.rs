//! Test-only fault switch, compiled only with the cargo feature
//! `fault-injection` (on in `make test`, off in release and demo builds).
//!
//! `DATAERAI_FAULTS` is a comma-separated list read once at start; counters are
//! per process, so a restarted server starts counting again:
//! - `corrupt_chunk=N`: flip a byte of the N-th chunk body handed to the blob
//!   store (counting from 1), so its BLAKE3 check fails (422, nothing recorded);
//! - `unavailable_chunk=N`: answer the N-th chunk PUT with 503 + `Retry-After: 1`;
//! - `drop_chunk_trailers=N`: from the N-th chunk PUT on, the chunk route never
//!   sees a trailer (as behind a proxy that drops them);
//! - `enospc_after_bytes=N`: chunk writes fail with ENOSPC (507) once storing
//!   them would take the bytes stored by this process past N, like a disk
//!   with N bytes free;
//! - `max_crate_assets=N`: an RO-Crate export holds at most N assets (instead
//!   of 10,000), so the cap is tested without ten thousand assets.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use dataerai_store::blob::{ByteStream, PutOutcome};
use dataerai_store::{BlobStore, BodyCheck, ChunkKey, StoreError};
use futures::StreamExt;

use crate::error::AppError;
use crate::state::AppState;

/// The environment variable holding the faults.
pub const ENV: &str = "DATAERAI_FAULTS";

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Faults {
    corrupt_chunk: Option<u64>,
    unavailable_chunk: Option<u64>,
    drop_chunk_trailers: Option<u64>,
    enospc_after_bytes: Option<u64>,
    max_crate_assets: Option<u64>,
}

/// How many of each thing this process has seen.
#[derive(Debug, Default)]
struct Counters {
    chunk_puts: AtomicU64,
    chunk_bodies: AtomicU64,
    stored_bytes: AtomicU64,
}

static FAULTS: OnceLock<Faults> = OnceLock::new();
static COUNTERS: OnceLock<Counters> = OnceLock::new();

fn counters() -> &'static Counters {
    COUNTERS.get_or_init(Counters::default)
}

impl Faults {
    pub fn parse(spec: &str) -> Result<Faults, String> {
        let mut f = Faults::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{ENV}: {item:?} is not key=N"))?;
            let n: u64 = value
                .trim()
                .parse()
                .map_err(|_| format!("{ENV}: {key} needs a whole number, not {value:?}"))?;
            let slot = match key.trim() {
                "corrupt_chunk" => &mut f.corrupt_chunk,
                "unavailable_chunk" => &mut f.unavailable_chunk,
                "drop_chunk_trailers" => &mut f.drop_chunk_trailers,
                "enospc_after_bytes" => &mut f.enospc_after_bytes,
                "max_crate_assets" => &mut f.max_crate_assets,
                other => return Err(format!("{ENV}: unknown fault {other:?}")),
            };
            *slot = Some(n);
        }
        Ok(f)
    }
}

/// Read `DATAERAI_FAULTS` (once per process). A malformed value stops the
/// server: a test that thinks it injects a fault must not silently run without.
pub fn init_from_env() -> anyhow::Result<()> {
    let spec = std::env::var(ENV).unwrap_or_default();
    let faults = Faults::parse(&spec).map_err(anyhow::Error::msg)?;
    if faults != Faults::default() {
        tracing::warn!(?faults, "fault injection is ON ({ENV})");
    }
    let _ = FAULTS.set(faults);
    Ok(())
}

fn active() -> Option<&'static Faults> {
    FAULTS.get()
}

/// The `max_crate_assets` fault, when set.
pub fn max_crate_assets() -> Option<u64> {
    active().and_then(|f| f.max_crate_assets)
}

/// Put the `unavailable_chunk` and `drop_chunk_trailers` faults in front of
/// the chunk route.
pub fn guard_chunk_route(route: Router<AppState>) -> Router<AppState> {
    route.layer(axum::middleware::from_fn(chunk_put_faults))
}

async fn chunk_put_faults(request: Request, next: Next) -> Response {
    use http_body_util::BodyExt;

    let n = counters().chunk_puts.fetch_add(1, Ordering::SeqCst) + 1;
    let faults = active();
    if faults.and_then(|f| f.unavailable_chunk) == Some(n) {
        return AppError::unavailable(
            format!("fault injection: chunk PUT #{n} answered 503; send it again"),
            1,
        )
        .into_response();
    }
    if faults
        .and_then(|f| f.drop_chunk_trailers)
        .is_some_and(|from| n >= from)
    {
        // Trailers become empty data frames: the body's bytes are unchanged.
        let (parts, body) = request.into_parts();
        let body =
            body.map_frame(|frame| hyper::body::Frame::data(frame.into_data().unwrap_or_default()));
        return next
            .run(Request::from_parts(parts, axum::body::Body::new(body)))
            .await;
    }
    next.run(request).await
}

/// Wrap the blob store so chunk writes see `corrupt_chunk` and `enospc_after_bytes`.
pub fn wrap_blobs(inner: Arc<dyn BlobStore>) -> Arc<dyn BlobStore> {
    match active() {
        Some(f) if f.corrupt_chunk.is_some() || f.enospc_after_bytes.is_some() => {
            Arc::new(FaultyBlobs { inner, faults: f })
        }
        _ => inner,
    }
}

struct FaultyBlobs {
    inner: Arc<dyn BlobStore>,
    faults: &'static Faults,
}

/// Flip the first byte of the first non-empty piece of `body`.
fn corrupt(body: ByteStream) -> ByteStream {
    let done = Arc::new(AtomicBool::new(false));
    Box::pin(body.map(move |piece| {
        let piece = piece?;
        if piece.is_empty() || done.swap(true, Ordering::SeqCst) {
            return Ok(piece);
        }
        let mut bytes = piece.to_vec();
        bytes[0] ^= 0xff;
        Ok(Bytes::from(bytes))
    }))
}

#[async_trait]
impl BlobStore for FaultyBlobs {
    async fn put_chunk(
        &self,
        key: &ChunkKey,
        body: ByteStream,
        check: BodyCheck,
    ) -> dataerai_store::error::Result<PutOutcome> {
        let c = counters();
        let n = c.chunk_bodies.fetch_add(1, Ordering::SeqCst) + 1;
        let body = if self.faults.corrupt_chunk == Some(n) {
            tracing::warn!(chunk_body = n, "fault injection: corrupting a chunk body");
            corrupt(body)
        } else {
            body
        };
        let Some(limit) = self.faults.enospc_after_bytes else {
            return self.inner.put_chunk(key, body, check).await;
        };
        // Reserve the bytes first so concurrent PUTs cannot both squeeze in.
        let len = check.len;
        let before = c.stored_bytes.fetch_add(len, Ordering::SeqCst);
        if before + len > limit {
            c.stored_bytes.fetch_sub(len, Ordering::SeqCst);
            return Err(StoreError::Io(io::Error::from_raw_os_error(28)));
        }
        let out = self.inner.put_chunk(key, body, check).await;
        if !matches!(out, Ok(PutOutcome::Stored)) {
            c.stored_bytes.fetch_sub(len, Ordering::SeqCst);
        }
        out
    }

    async fn read_chunk(
        &self,
        key: &ChunkKey,
        digest: Option<&str>,
        offset: u64,
        len: u64,
    ) -> dataerai_store::error::Result<ByteStream> {
        self.inner.read_chunk(key, digest, offset, len).await
    }

    fn names_by_digest(&self) -> bool {
        self.inner.names_by_digest()
    }

    async fn discard_chunk(
        &self,
        key: &ChunkKey,
        hash: [u8; 32],
    ) -> dataerai_store::error::Result<()> {
        self.inner.discard_chunk(key, hash).await
    }

    async fn delete_content(&self, content_id: &str) -> dataerai_store::error::Result<()> {
        self.inner.delete_content(content_id).await
    }

    async fn check_writable(&self) -> dataerai_store::error::Result<()> {
        self.inner.check_writable().await
    }

    async fn list_contents(
        &self,
    ) -> dataerai_store::error::Result<Vec<dataerai_store::blob::StoredContent>> {
        self.inner.list_contents().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_switch() {
        assert_eq!(Faults::parse("").unwrap(), Faults::default());
        let f =
            Faults::parse("corrupt_chunk=2, unavailable_chunk=3,enospc_after_bytes=100").unwrap();
        assert_eq!(
            f,
            Faults {
                corrupt_chunk: Some(2),
                unavailable_chunk: Some(3),
                drop_chunk_trailers: None,
                enospc_after_bytes: Some(100),
                max_crate_assets: None,
            }
        );
        assert!(Faults::parse("corrupt_chunk").is_err());
        assert!(Faults::parse("corrupt_chunk=x").is_err());
        assert!(Faults::parse("explode=1").is_err());
    }
}
