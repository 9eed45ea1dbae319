//! Background upkeep of the stores, run by every replica on a timer and
//! safe to run on several at once:
//!
//! - **Upload expiry** (`[uploads]`): an open session with no request for
//!   `session_idle_s` is aborted — its reservation released, the asset its
//!   user created for it removed when nothing else lives there. Any request on
//!   the session (a chunk, a status query, completion) counts as activity, so
//!   a daemon resuming a journaled upload (it first asks which chunks the
//!   server holds) keeps its session. The store re-checks the idle time under
//!   the session's row lock, so a request racing the expiry wins and two
//!   replicas abort a session once.
//! - **Chunk garbage collection** (`[gc]`, and `dataerai-server admin gc`):
//!   the blob store lists its content ids with their newest write time, the
//!   metadata store answers which of them no pending or complete content
//!   version (or dedup pointer) uses, and those are deleted — bytes of
//!   aborted and expired sessions, deleted assets, and chunks stored by a
//!   request that crashed before recording them. A content id written to
//!   within `grace_s` is never collected: its upload may be in flight (a
//!   chunk lands under the id of a session the request has just checked) or
//!   its metadata not yet visible to this replica. A content version is
//!   created (pending) before any of its chunks can be stored and never comes
//!   back from `aborted`, so an id found unreferenced stays unreferenced; the
//!   grace period covers what is in flight around that decision.

use std::time::Duration;

use chrono::{DateTime, Utc};
use dataerai_store::meta::ExpiredUpload;
use dataerai_store::{BlobStore, MetadataStore, StoreError};
use serde::Deserialize;

use crate::state::AppState;

/// The `[uploads]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadSettings {
    /// Seconds without any request after which an open session is aborted.
    pub session_idle_s: u64,
    /// Seconds between two expiry scans.
    pub expiry_interval_s: u64,
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            session_idle_s: 24 * 3600,
            expiry_interval_s: 300,
        }
    }
}

/// The `[gc]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcSettings {
    /// Seconds between two collections; 0 turns the periodic collection off
    /// (`admin gc` still works).
    pub interval_s: u64,
    /// Content ids written to within this many seconds are never collected.
    pub grace_s: u64,
}

impl Default for GcSettings {
    fn default() -> Self {
        Self {
            interval_s: 3600,
            grace_s: 3600,
        }
    }
}

impl UploadSettings {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.session_idle_s >= 1 && self.expiry_interval_s >= 1,
            "[uploads] session_idle_s and expiry_interval_s must be at least 1 second"
        );
        Ok(())
    }
}

/// Most sessions one expiry query picks up (the scan repeats until done).
const EXPIRY_BATCH: u64 = 100;

/// Abort every open session idle since before `now - idle`.
pub async fn expire_idle_uploads(
    meta: &dyn MetadataStore,
    idle: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<ExpiredUpload>, StoreError> {
    let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
    let cutoff = now
        .checked_sub_signed(idle)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut expired = Vec::new();
    loop {
        let idle_ids = meta.idle_uploads(cutoff, EXPIRY_BATCH).await?;
        let mut progress = false;
        for upload_id in &idle_ids {
            if let Some(done) = meta.expire_upload(upload_id, cutoff).await? {
                progress = true;
                expired.push(done);
            }
        }
        // A short page was the last; a page of which nothing expired (every
        // session became active or closed meanwhile) would repeat forever.
        if (idle_ids.len() as u64) < EXPIRY_BATCH || !progress {
            return Ok(expired);
        }
    }
}

/// What one garbage collection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Content ids in the blob store.
    pub contents_scanned: u64,
    /// Unreferenced content ids, with their objects (chunks) and bytes.
    pub unreferenced_contents: u64,
    pub unreferenced_chunks: u64,
    pub unreferenced_bytes: u64,
    /// Of those, deleted (none in a dry run).
    pub reclaimed_chunks: u64,
    pub reclaimed_bytes: u64,
    /// Content ids written to within the grace period, not considered.
    pub recent_contents: u64,
}

impl GcReport {
    /// `key: value` lines (what `admin gc` prints).
    pub fn lines(&self, dry_run: bool) -> String {
        let mut out = format!(
            "contents_scanned: {}\nrecent_contents_kept: {}\nunreferenced_contents: {}\n\
             unreferenced_chunks: {}\nunreferenced_bytes: {}\nreclaimed_chunks: {}\nreclaimed_bytes: {}\n",
            self.contents_scanned,
            self.recent_contents,
            self.unreferenced_contents,
            self.unreferenced_chunks,
            self.unreferenced_bytes,
            self.reclaimed_chunks,
            self.reclaimed_bytes,
        );
        if dry_run {
            out.push_str("dry run: nothing was deleted\n");
        }
        out
    }
}

/// Delete the blobs of every content id no live version uses and nothing
/// wrote to within `grace` (nothing is deleted when `dry_run`).
pub async fn collect_garbage(
    meta: &dyn MetadataStore,
    blobs: &dyn BlobStore,
    grace: Duration,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<GcReport, StoreError> {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let settled_before = now
        .checked_sub_signed(grace)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let stored = blobs.list_contents().await?;
    let mut report = GcReport {
        contents_scanned: stored.len() as u64,
        ..Default::default()
    };
    let (settled, recent): (Vec<_>, Vec<_>) =
        stored.into_iter().partition(|c| c.newest < settled_before);
    report.recent_contents = recent.len() as u64;
    let candidates = settled.iter().map(|c| c.content_id.clone()).collect();
    let unreferenced: std::collections::HashSet<String> = meta
        .unreferenced_contents(candidates)
        .await?
        .into_iter()
        .collect();
    for content in settled
        .iter()
        .filter(|c| unreferenced.contains(&c.content_id))
    {
        report.unreferenced_contents += 1;
        report.unreferenced_chunks += content.objects;
        report.unreferenced_bytes += content.bytes;
        if dry_run {
            continue;
        }
        match blobs.delete_content(&content.content_id).await {
            Ok(()) => {
                report.reclaimed_chunks += content.objects;
                report.reclaimed_bytes += content.bytes;
                tracing::info!(content_id = %content.content_id, chunks = content.objects,
                    bytes = content.bytes, "garbage collector: reclaimed unreferenced chunks");
            }
            Err(e) => tracing::warn!(content_id = %content.content_id, error = %e,
                "garbage collector: cannot delete unreferenced chunks"),
        }
    }
    Ok(report)
}

/// Start the periodic expiry and collection on this replica.
pub fn spawn(state: &AppState, uploads: &UploadSettings, gc: &GcSettings) {
    let (expiry_state, idle) = (state.clone(), Duration::from_secs(uploads.session_idle_s));
    let every = Duration::from_secs(uploads.expiry_interval_s.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match expire_idle_uploads(expiry_state.meta.as_ref(), idle, Utc::now()).await {
                Ok(expired) => {
                    for e in &expired {
                        tracing::info!(upload_id = %e.upload_id, asset_id = %e.asset_id,
                            asset_deleted = e.asset_deleted, "upload session expired");
                    }
                    expiry_state.metrics.uploads_expired(expired.len() as u64);
                }
                Err(e) => tracing::warn!(error = %e, "upload expiry failed; retrying later"),
            }
            // Keeps search plans index-driven as the catalogue grows.
            if let Err(e) = expiry_state.meta.refresh_statistics().await {
                tracing::warn!(error = %e, "refreshing the planner statistics failed");
            }
        }
    });
    if gc.interval_s == 0 {
        return;
    }
    let (gc_state, grace) = (state.clone(), Duration::from_secs(gc.grace_s));
    let every = Duration::from_secs(gc.interval_s);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let done = collect_garbage(
                gc_state.meta.as_ref(),
                gc_state.blobs.as_ref(),
                grace,
                false,
                Utc::now(),
            )
            .await;
            match done {
                Ok(report) => gc_state
                    .metrics
                    .garbage_collected(report.reclaimed_chunks, report.reclaimed_bytes),
                Err(e) => tracing::warn!(error = %e, "garbage collection failed; retrying later"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_refuse_zero() {
        let u = UploadSettings::default();
        assert_eq!((u.session_idle_s, u.expiry_interval_s), (86_400, 300));
        assert!(u.validate().is_ok());
        let zero = UploadSettings {
            session_idle_s: 0,
            ..u
        };
        assert!(zero.validate().is_err());
        let gc: GcSettings = toml::from_str("grace_s = 5").unwrap();
        assert_eq!((gc.interval_s, gc.grace_s), (3600, 5));
        assert!(toml::from_str::<GcSettings>("grace = 5").is_err());
    }
}
