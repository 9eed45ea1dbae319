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
    /// Per-address limits of the device login ([`DeviceLimits`]).
    pub device_limits: Arc<DeviceLimits>,
    /// When this process began serving (the admin page's uptime).
    pub started_at: std::time::Instant,
}

/// Per client address, in this process: device codes requested (10 a
/// minute) and user codes looked up at `/device` (20, then one every 45 s).
/// With several replicas each keeps its own count; the pending-code cap
/// (`AuthSettings::max_pending_device_codes`) is global (the database).
pub struct DeviceLimits {
    pub codes: governor::DefaultKeyedRateLimiter<String>,
    pub lookups: governor::DefaultKeyedRateLimiter<String>,
}

impl Default for DeviceLimits {
    fn default() -> Self {
        use governor::{Quota, RateLimiter};
        use std::num::NonZeroU32;
        let ten = NonZeroU32::new(10).expect("non-zero");
        let twenty = NonZeroU32::new(20).expect("non-zero");
        let lookups = Quota::with_period(std::time::Duration::from_secs(45))
            .expect("non-zero period")
            .allow_burst(twenty);
        DeviceLimits {
            codes: RateLimiter::keyed(Quota::per_minute(ten)),
            lookups: RateLimiter::keyed(lookups),
        }
    }
}

impl DeviceLimits {
    /// `Err(seconds to wait)` when `addr` is over `limiter`'s quota. Old
    /// addresses are forgotten now and then, so the maps stay small.
    pub fn check(
        limiter: &governor::DefaultKeyedRateLimiter<String>,
        addr: &str,
    ) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&addr.to_string()).map_err(|not_until| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1)
        })
    }
}

/// Settings of sign-in and the device login.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub access_token_ttl_s: u64,
    pub device_poll_interval_s: u64,
    /// Device codes that may await a decision at once (all addresses).
    pub max_pending_device_codes: u64,
    /// Base URL for verification links; `None`: the address the client
    /// connected to (never the request's `Host` header).
    pub public_url: Option<String>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            access_token_ttl_s: 3600,
            device_poll_interval_s: 5,
            max_pending_device_codes: 10_000,
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
            device_limits: Default::default(),
            started_at: std::time::Instant::now(),
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
