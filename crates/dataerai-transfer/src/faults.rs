//! Test-only fault switch, compiled in only with the `fault-injection` feature.
//!
//! `DATAERAI_FAULTS=enospc_after_bytes=N` makes the download writer fail with
//! ENOSPC once this process has written N bytes, so tests can exercise a full
//! local disk without filling one. `DATAERAI_FAULTS=chunk_delay_ms=N` waits N ms
//! before each chunk request, so a small transfer lasts long enough for tests
//! of what happens meanwhile (e.g. an access token expiring). Without the
//! feature every hook is a no-op.

/// The value of `key=N` in `DATAERAI_FAULTS`.
#[cfg(feature = "fault-injection")]
fn fault_value(key: &str) -> Option<u64> {
    let spec = std::env::var("DATAERAI_FAULTS").unwrap_or_default();
    spec.split(',')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Called before each chunk request (upload or download).
#[cfg(feature = "fault-injection")]
pub async fn before_chunk() {
    static DELAY: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    if let Some(ms) = *DELAY.get_or_init(|| fault_value("chunk_delay_ms")) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// Called before each chunk request (upload or download).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub async fn before_chunk() {}

/// Called before writing `len` bytes of downloaded data.
#[cfg(feature = "fault-injection")]
pub fn before_write(len: usize) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    let limit = LIMIT.get_or_init(|| fault_value("enospc_after_bytes"));
    let Some(limit) = *limit else {
        return Ok(());
    };
    let before = WRITTEN.fetch_add(len as u64, Ordering::Relaxed);
    if before + len as u64 > limit {
        WRITTEN.fetch_sub(len as u64, Ordering::Relaxed);
        return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
    }
    Ok(())
}

/// Called before writing `len` bytes of downloaded data.
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn before_write(_len: usize) -> std::io::Result<()> {
    Ok(())
}

/// `abort_after_session_open=1`: the process dies (SIGABRT, as abrupt as
/// `kill -9`) right after the server opened an upload session, before the
/// transfer is journaled; the ids go to stderr first.
#[cfg(feature = "fault-injection")]
pub fn after_session_open(asset_id: &str, upload_id: &str) {
    if fault_value("abort_after_session_open") == Some(1) {
        eprintln!("fault: dying with asset {asset_id} session {upload_id} open");
        std::process::abort();
    }
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn after_session_open(_asset_id: &str, _upload_id: &str) {}

/// `fail_session_open=1`: opening an upload session fails (after a new asset
/// was created for it), as a full quota would.
#[cfg(feature = "fault-injection")]
pub fn session_open_error() -> Option<dataerai_proto::ApiError> {
    (fault_value("fail_session_open") == Some(1))
        .then(|| dataerai_proto::ApiError::internal("fault: opening the session failed"))
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn session_open_error() -> Option<dataerai_proto::ApiError> {
    None
}

/// `fail_cleanups=N`: the first N clean-ups of a given-up upload start fail
/// as if the server could not be reached.
#[cfg(feature = "fault-injection")]
pub fn clean_up_error() -> Option<dataerai_proto::ApiError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static FAILED: AtomicU64 = AtomicU64::new(0);
    let limit = fault_value("fail_cleanups")?;
    (FAILED.fetch_add(1, Ordering::Relaxed) < limit).then(|| {
        dataerai_proto::ApiError::new(
            dataerai_proto::ErrorCode::ServerUnreachable,
            "fault: the clean-up cannot reach the server",
        )
    })
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub fn clean_up_error() -> Option<dataerai_proto::ApiError> {
    None
}
