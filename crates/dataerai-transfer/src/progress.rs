//! What a running transfer reports besides its result: progress after every
//! chunk, waits before a retry, recovery. The engines call an [`Observer`];
//! the daemon turns it into notifications, the CLI into a progress bar.

use std::sync::Arc;
use std::time::Duration;

use dataerai_proto::ApiError;
use serde::{Deserialize, Serialize};

use crate::journal::TransferKind;

/// One `transfer.progress` notification (field names are the IPC contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressEvent {
    pub transfer_id: String,
    pub kind: TransferKind,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub rate_bps: f64,
    pub chunk_index: u64,
    pub chunk_count: u64,
    pub file_index: u32,
    pub file_name: String,
}

/// Where progress events go (CLI: a progress bar).
pub type ProgressSink = Arc<dyn Fn(ProgressEvent) + Send + Sync>;

/// What a running transfer reports besides its result (daemon: notifications;
/// CLI: a progress bar and stderr lines).
pub trait Observer: Send + Sync {
    fn progress(&self, ev: ProgressEvent);
    /// A step failed in a way worth retrying; the engine waits `delay` first.
    fn retrying(&self, attempt: u32, delay: Duration, error: &ApiError);
    /// A request succeeded again after one or more retries.
    fn recovered(&self);
}
