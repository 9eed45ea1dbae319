//! Prometheus metrics at `GET /metrics` (text exposition format 0.0.4), kept
//! by hand: a few atomic counters and two small labelled maps are all we need,
//! and they stay exact (tests compare byte counts with what a transfer moved).
//!
//! Counters are per process (they start at zero when the server starts);
//! `dataerai_active_uploads` is read from the metadata store at scrape time, so
//! it also counts sessions opened before a restart.
//!
//! This module only counts and renders; the HTTP side (the middleware that
//! counts every answer and the `/metrics` endpoint) is `routes::metrics`, so
//! the handlers' state can hold the counters without a dependency cycle.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use dataerai_proto::ErrorCode;

#[derive(Debug, Default)]
pub struct Metrics {
    /// (method, status) → requests answered.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// `ERR_*` code → error answers.
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// Bytes of chunk PUTs acknowledged (stored, or re-sent and already held).
    upload_bytes: AtomicU64,
    upload_chunks: AtomicU64,
    /// Bytes of files the client did not have to send (deduplicated).
    dedup_bytes: AtomicU64,
    /// Bytes of content files streamed to clients.
    download_bytes: AtomicU64,
    /// Batch requests (`POST /uploads/batch`, `/uploads/finish`) and their items.
    session_batches: AtomicU64,
    session_batch_items: AtomicU64,
    finish_batches: AtomicU64,
    finish_batch_items: AtomicU64,
    /// Client connections open now, and those closed on accept at the cap.
    open_connections: AtomicU64,
    refused_connections: AtomicU64,
    /// Password checks running now and the most ever at once; sign-ins
    /// slowed down (a much-guessed email) or refused (a much-failing address).
    password_checks: AtomicU64,
    password_checks_peak: AtomicU64,
    sign_ins_slowed: AtomicU64,
    sign_ins_refused: AtomicU64,
    /// Upload sessions this process expired; chunks and bytes its garbage
    /// collector reclaimed (`housekeeping`).
    uploads_expired: AtomicU64,
    gc_chunks: AtomicU64,
    gc_bytes: AtomicU64,
}

/// Counts a running password check until dropped.
pub struct Running<'a>(&'a AtomicU64);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn chunk_accepted(&self, bytes: u64) {
        self.upload_chunks.fetch_add(1, Ordering::Relaxed);
        self.upload_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn deduplicated(&self, bytes: u64) {
        self.dedup_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A well-formed `POST /uploads/batch` of `items` items.
    pub fn session_batch(&self, items: usize) {
        self.session_batches.fetch_add(1, Ordering::Relaxed);
        self.session_batch_items
            .fetch_add(items as u64, Ordering::Relaxed);
    }

    /// A well-formed `POST /uploads/finish` of `items` items.
    pub fn finish_batch(&self, items: usize) {
        self.finish_batches.fetch_add(1, Ordering::Relaxed);
        self.finish_batch_items
            .fetch_add(items as u64, Ordering::Relaxed);
    }

    /// A client connection opened (`true`) or closed (`false`).
    pub fn connection(&self, opened: bool) {
        if opened {
            self.open_connections.fetch_add(1, Ordering::Relaxed);
        } else {
            self.open_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// A password check starts; it ends when the guard is dropped.
    pub fn password_check(&self) -> Running<'_> {
        let now = self.password_checks.fetch_add(1, Ordering::Relaxed) + 1;
        self.password_checks_peak.fetch_max(now, Ordering::Relaxed);
        Running(&self.password_checks)
    }

    pub fn sign_in_slowed(&self) {
        self.sign_ins_slowed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sign_in_refused(&self) {
        self.sign_ins_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection closed on accept because `max_connections` were open.
    pub fn connection_refused(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Idle upload sessions aborted by the expiry task.
    pub fn uploads_expired(&self, sessions: u64) {
        self.uploads_expired.fetch_add(sessions, Ordering::Relaxed);
    }

    /// Chunks (objects) and bytes the garbage collector deleted.
    pub fn garbage_collected(&self, chunks: u64, bytes: u64) {
        self.gc_chunks.fetch_add(chunks, Ordering::Relaxed);
        self.gc_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn downloaded(&self, bytes: u64) {
        self.download_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// One answer to a `method` request (a label from a bounded set).
    pub fn answered(&self, method: &'static str, status: u16, error: Option<ErrorCode>) {
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((method, status))
            .or_default() += 1;
        if let Some(code) = error {
            *self
                .errors
                .lock()
                .expect("metrics lock")
                .entry(code.as_str())
                .or_default() += 1;
        }
    }

    /// The exposition text; `active_uploads` comes from the metadata store.
    pub fn render(&self, active_uploads: u64) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "dataerai_http_requests_total",
            "counter",
            "HTTP requests answered, by method and status.",
        );
        for ((method, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "dataerai_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        family(
            &mut out,
            "dataerai_errors_total",
            "counter",
            "Error answers, by ERR_* code.",
        );
        for (code, n) in self.errors.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "dataerai_errors_total{{code=\"{code}\"}} {n}");
        }
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        for (name, kind, help, value) in [
            (
                "dataerai_upload_bytes_total",
                "counter",
                "Bytes of chunks accepted (acknowledged chunk PUTs).",
                load(&self.upload_bytes),
            ),
            (
                "dataerai_upload_chunks_total",
                "counter",
                "Chunks accepted (acknowledged chunk PUTs).",
                load(&self.upload_chunks),
            ),
            (
                "dataerai_dedup_bytes_total",
                "counter",
                "Bytes of files not uploaded because their owner already stores them.",
                load(&self.dedup_bytes),
            ),
            (
                "dataerai_download_bytes_total",
                "counter",
                "Bytes of content files sent to clients.",
                load(&self.download_bytes),
            ),
            (
                "dataerai_upload_session_batches_total",
                "counter",
                "POST /uploads/batch requests (many sessions opened at once).",
                load(&self.session_batches),
            ),
            (
                "dataerai_upload_session_batch_items_total",
                "counter",
                "Items of POST /uploads/batch requests.",
                load(&self.session_batch_items),
            ),
            (
                "dataerai_upload_finish_batches_total",
                "counter",
                "POST /uploads/finish requests (many small files stored and completed at once).",
                load(&self.finish_batches),
            ),
            (
                "dataerai_upload_finish_batch_items_total",
                "counter",
                "Items of POST /uploads/finish requests.",
                load(&self.finish_batch_items),
            ),
            (
                "dataerai_open_connections",
                "gauge",
                "Client connections open now.",
                load(&self.open_connections),
            ),
            (
                "dataerai_refused_connections_total",
                "counter",
                "Connections closed on accept because max_connections were open.",
                load(&self.refused_connections),
            ),
            (
                "dataerai_password_checks_peak",
                "gauge",
                "Most password checks (Argon2id) ever running at once.",
                load(&self.password_checks_peak),
            ),
            (
                "dataerai_sign_ins_slowed_total",
                "counter",
                "Sign-in attempts delayed because their email had too many recent failures.",
                load(&self.sign_ins_slowed),
            ),
            (
                "dataerai_sign_ins_refused_total",
                "counter",
                "Sign-in attempts refused (429) because their address had too many recent failures.",
                load(&self.sign_ins_refused),
            ),
            (
                "dataerai_uploads_expired_total",
                "counter",
                "Idle upload sessions aborted by the expiry task of this process.",
                load(&self.uploads_expired),
            ),
            (
                "dataerai_gc_reclaimed_chunks_total",
                "counter",
                "Unreferenced chunk objects deleted by the garbage collector of this process.",
                load(&self.gc_chunks),
            ),
            (
                "dataerai_gc_reclaimed_bytes_total",
                "counter",
                "Bytes of unreferenced chunks deleted by the garbage collector of this process.",
                load(&self.gc_bytes),
            ),
            (
                "dataerai_active_uploads",
                "gauge",
                "Upload sessions currently open.",
                active_uploads,
            ),
        ] {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

/// `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_exposition_format() {
        let m = Metrics::default();
        m.answered("GET", 200, None);
        m.answered("GET", 200, None);
        m.answered("PUT", 507, Some(ErrorCode::NoSpace));
        m.chunk_accepted(10);
        m.chunk_accepted(5);
        m.downloaded(7);
        let text = m.render(3);
        for line in [
            "dataerai_http_requests_total{method=\"GET\",status=\"200\"} 2",
            "dataerai_http_requests_total{method=\"PUT\",status=\"507\"} 1",
            "dataerai_errors_total{code=\"ERR_NO_SPACE\"} 1",
            "dataerai_upload_bytes_total 15",
            "dataerai_upload_chunks_total 2",
            "dataerai_download_bytes_total 7",
            "dataerai_dedup_bytes_total 0",
            "dataerai_active_uploads 3",
            "# TYPE dataerai_active_uploads gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
