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
