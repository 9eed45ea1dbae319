//! Shared state of the HTTP handlers: the two stores and the configuration.
//! Nothing about uploads or transfers lives here — it is all in the stores;
//! only process-wide counters (metrics) and the shutdown flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dataerai_store::{BlobStore, MetadataStore};

#[derive(Clone)]
pub struct AppState {
    pub meta: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// Quota of new projects' allocations (bytes).
    pub default_quota: u64,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Set once a shutdown signal arrived: new requests get 503 + `Retry-After`.
    pub stopping: Arc<AtomicBool>,
    pub auth: Arc<AuthSettings>,
    /// Password checks that may run at once ([`crate::auth::verify_password`]).
    pub password_checks: Arc<tokio::sync::Semaphore>,
}

/// Settings of sign-in and the device login.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub access_token_ttl_s: u64,
    pub device_poll_interval_s: u64,
    /// Base URL for verification links; `None`: the address the client
    /// connected to (never the request's `Host` header).
    pub public_url: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            access_token_ttl_s: 3600,
            device_poll_interval_s: 5,
            public_url: None,
        }
    }
}

impl AppState {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        default_quota: u64,
    ) -> Self {
        AppState {
            meta,
            blobs,
            default_quota,
            metrics: Default::default(),
            stopping: Default::default(),
            auth: Default::default(),
            password_checks: Arc::new(tokio::sync::Semaphore::new(
                crate::auth::password_check_slots(),
            )),
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
