//! Transfers of this daemon's lifetime, for `transfer.list` / `get` / `cancel`.

use std::sync::Mutex;

use dataerai_proto::{ApiError, ErrorCode};
use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
}

/// The `Transfer` object of `docs/ipc.md`.
#[derive(Debug, Clone, Serialize)]
pub struct TransferInfo {
    pub transfer_id: String,
    pub kind: &'static str,
    /// `running`, `completed`, `failed` or `cancelled`.
    pub state: &'static str,
    pub asset_id: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub chunk_count: u64,
    pub result: Option<Value>,
    pub error: Option<ErrorInfo>,
}

struct Entry {
    info: TransferInfo,
    cancel: CancellationToken,
}

#[derive(Default)]
pub struct Registry {
    // A Vec keeps start order for `transfer.list`; a daemon runs few enough
    // transfers that a linear search is fine.
    entries: Mutex<Vec<Entry>>,
}

impl Registry {
    pub fn insert(&self, info: TransferInfo, cancel: CancellationToken) {
        self.lock().push(Entry { info, cancel });
    }

    pub fn list(&self) -> Vec<TransferInfo> {
        self.lock().iter().map(|e| e.info.clone()).collect()
    }

    pub fn get(&self, id: &str) -> Result<TransferInfo, ApiError> {
        self.with(id, |e| e.info.clone())
    }

    /// Ask a running transfer to stop; finished transfers are left as they are.
    pub fn cancel(&self, id: &str) -> Result<TransferInfo, ApiError> {
        self.with(id, |e| {
            if e.info.state == "running" {
                e.cancel.cancel();
            }
            e.info.clone()
        })
    }

    pub fn progress(&self, id: &str, bytes_done: u64) {
        let _ = self.with(id, |e| {
            e.info.bytes_done = e.info.bytes_done.max(bytes_done)
        });
    }

    pub fn finish(&self, id: &str, outcome: &Result<Value, ApiError>) {
        let _ = self.with(id, |e| match outcome {
            Ok(result) => {
                e.info.state = "completed";
                e.info.bytes_done = e.info.bytes_total;
                e.info.result = Some(result.clone());
            }
            Err(err) => {
                e.info.state = if err.code == ErrorCode::Cancelled {
                    "cancelled"
                } else {
                    "failed"
                };
                e.info.error = Some(ErrorInfo {
                    code: err.code,
                    message: err.message.clone(),
                });
            }
        });
    }

    fn with<T>(&self, id: &str, f: impl FnOnce(&mut Entry) -> T) -> Result<T, ApiError> {
        let mut entries = self.lock();
        match entries.iter_mut().find(|e| e.info.transfer_id == id) {
            Some(e) => Ok(f(e)),
            None => Err(ApiError::not_found(format!("transfer {id}"))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic while holding the lock cannot leave an Entry half-written in a
        // way that matters more than losing the daemon, so recover the data.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
