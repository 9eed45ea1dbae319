//! The retry backoff reflects one outage, not the number of chunk requests
//! that failed in it: after a short server outage an upload with several
//! chunks in flight goes on within a few seconds of the server's return.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::transfers::{is_event, setup_with, start_chunked_upload};
use common::{test_bytes, TestDaemon, TestServer};
use serde_json::Value;

const MIB: usize = 1024 * 1024;

#[test]
fn upload_resumes_within_seconds_after_a_short_outage() {
    let mut server = TestServer::start_temp();
    // Slow chunks keep 4 requests in flight for the whole outage.
    let (side, mut c, uid) = setup_with(&server, "olga@example.org", |u| {
        TestDaemon::start_with_env(u, &[("DATAERAI_FAULTS", "chunk_delay_ms=150")])
    });
    let data = test_bytes(40 * MIB, 3);
    let tid = start_chunked_upload(&mut c, &uid, side.work.path(), "o.bin", &data);
    // Every notification, with the moment it arrived.
    let (tx, rx) = mpsc::channel::<(Instant, Value)>();
    std::thread::spawn(move || loop {
        let n = c.read_message();
        if tx.send((Instant::now(), n)).is_err() {
            return;
        }
    });
    let next = |until: Instant| rx.recv_timeout(until.saturating_duration_since(Instant::now()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok((_, n)) = next(deadline) {
        if is_event(&n, "transfer.progress", &tid) {
            break;
        }
    }

    server.kill();
    std::thread::sleep(Duration::from_secs(4));
    server.restart(None);
    let back = Instant::now();

    let mut attempts = Vec::new();
    let mut resumed = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (at, n) = next(deadline).expect("the upload did not finish within 120 s");
        if is_event(&n, "transfer.retrying", &tid) {
            attempts.push(n["params"]["attempt"].as_u64().unwrap());
        }
        if resumed.is_none() && at > back && is_event(&n, "transfer.progress", &tid) {
            resumed = Some(at - back);
        }
        if is_event(&n, "transfer.failed", &tid) {
            panic!("the upload failed: {n}");
        }
        if is_event(&n, "transfer.completed", &tid) {
            break;
        }
    }
    let resumed = resumed.expect("no progress after the server came back");
    // One 4 s outage is about 4 rounds of 0.5, 1, 2 and 4 s (with jitter):
    // counting every failed chunk request took it to attempt 7 and 24 s.
    let most = attempts.iter().copied().max().unwrap_or(0);
    assert!(most <= 5, "attempts during one 4 s outage: {attempts:?}");
    assert!(
        resumed < Duration::from_secs(8),
        "the upload went on {resumed:?} after the server came back (attempts {attempts:?})"
    );
}
