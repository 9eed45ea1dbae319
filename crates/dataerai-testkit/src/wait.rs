//! Waiting for something to happen, with a deadline: tests synchronise on
//! events, never on a fixed sleep that is too short on a busy machine and
//! wasted time on an idle one.

use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(20);

/// Poll `ready` until it answers `Some`, for at most `timeout`; panics with
/// `what` when the deadline passes.
#[track_caller]
pub fn wait_until<T>(what: &str, timeout: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for async checks (the test's runtime keeps running).
pub async fn wait_until_async<T, F, Fut>(what: &str, timeout: Duration, mut ready: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Wait until `value` stops changing for `quiet` (e.g. a byte counter once
/// the requests in flight have landed); answers the settled value.
#[track_caller]
pub fn wait_settled(
    what: &str,
    quiet: Duration,
    timeout: Duration,
    mut value: impl FnMut() -> u64,
) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut last = value();
    let mut since = Instant::now();
    loop {
        std::thread::sleep(POLL);
        let now = value();
        if now != last {
            last = now;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what} to settle"
        );
    }
}
