//! Transfers across interruptions, end to end with the real server and
//! daemon: the server stopped with SIGTERM in the middle of an upload, the
//! daemon stopped with SIGTERM while a transfer is paused, and one item of an
//! `upload_many` refused by the server while the others go through.
#![cfg(feature = "fault-injection")]

mod common;

use std::time::Duration;

use common::transfers::{
    assert_completed_with, is_event, setup, setup_with, start_chunked_upload, wait_done,
    wait_progress,
};
use common::{test_bytes, TestDaemon, TestServer};
use dataerai_testkit::wait::wait_settled;
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

/// A daemon whose chunk requests each wait `delay_ms` first, so a small
/// upload lasts long enough to interrupt it.
fn slow_daemon(delay_ms: u64) -> impl FnOnce(&common::UserEnv) -> TestDaemon {
    move |user| {
        let faults = format!("chunk_delay_ms={delay_ms}");
        TestDaemon::start_with_env(user, &[("DATAERAI_FAULTS", &faults)])
    }
}

#[test]
fn server_sigterm_mid_upload_drains_and_the_upload_completes_after_a_restart() {
    let mut server = TestServer::start_temp_with(|b| b.args(&["--shutdown-drain-ms", "1000"]));
    // 24 chunks, 4 in flight, 250 ms before each: about 1.5 s of upload.
    let (side, mut c, uid) = setup_with(&server, "sigterm-server@example.org", slow_daemon(250));
    let data = test_bytes(24 * MIB, 31);
    let tid = start_chunked_upload(&mut c, &uid, side.work.path(), "s.bin", &data);
    wait_progress(&mut c, &tid, 2 * MIB);

    // Requests in flight finish, then the process exits cleanly.
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("the server did not exit after SIGTERM");
    assert!(status.success(), "server exited with {status}");
    c.wait_for(|n| is_event(n, "transfer.retrying", &tid));
    let t = c.ok("transfer.get", json!({"transfer_id": tid}));
    assert_eq!(t["state"], "retrying", "{t}");

    server.restart(None);
    assert_completed_with(&mut c, &tid, &side.work.path().join("dl"), &data);
    // The chunks acknowledged before the stop were kept: the restarted
    // server received only the rest.
    let resent = server.metric("dataerai_upload_bytes_total");
    assert!(
        resent < data.len() as u64,
        "the upload started over after the restart ({resent} bytes)"
    );
}

#[test]
fn daemon_sigterm_keeps_a_paused_transfer_paused() {
    let server = TestServer::start_temp();
    let (mut side, mut c, uid) =
        setup_with(&server, "sigterm-daemon@example.org", slow_daemon(200));
    let data = test_bytes(16 * MIB, 32);
    let tid = start_chunked_upload(&mut c, &uid, side.work.path(), "p.bin", &data);
    wait_progress(&mut c, &tid, MIB);
    c.ok("transfer.pause", json!({"transfer_id": tid}));
    // Paused once the chunks in flight have finished.
    c.wait_for(|n| is_event(n, "transfer.state", &tid) && n["params"]["state"] == "paused");
    let t = c.ok("transfer.get", json!({"transfer_id": tid}));
    assert_eq!(t["state"], "paused", "{t}");

    side.daemon.terminate();
    let code = side.daemon.wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "the daemon did not exit cleanly on SIGTERM");
    // Chunks in flight at the pause have landed by now.
    let received = wait_settled(
        "the server's received byte count",
        Duration::from_millis(300),
        Duration::from_secs(30),
        || server.metric("dataerai_upload_bytes_total"),
    );
    assert!(received < data.len() as u64, "the upload was not paused");

    // A new daemon on the same journal does not resume it on its own.
    side.daemon.restart(&side.user, &[], &[]);
    let mut c = side.daemon.connect();
    let t = c.ok("transfer.get", json!({"transfer_id": tid}));
    assert_eq!(t["state"], "paused", "{t}");
    let still = wait_settled(
        "the server's received byte count",
        Duration::from_millis(500),
        Duration::from_secs(30),
        || server.metric("dataerai_upload_bytes_total"),
    );
    assert_eq!(
        still, received,
        "a paused transfer sent chunks after a restart"
    );
    let t = c.ok("transfer.get", json!({"transfer_id": tid}));
    assert_eq!(t["state"], "paused", "{t}");

    // Resuming it by hand finishes it.
    c.ok("transfer.resume", json!({"transfer_id": tid}));
    assert_completed_with(&mut c, &tid, &side.work.path().join("dl"), &data);
}

#[test]
fn upload_many_reports_the_item_the_server_refused_and_completes_the_others() {
    // The server's disk "fills up" after 64 KiB: the small items fit, every
    // chunk of the big one fails with ERR_NO_SPACE.
    let server = TestServer::start_temp_with(|b| b.faults("enospc_after_bytes=65536"));
    let (side, mut c, uid) = setup(&server, "many-full@example.org");
    let mut sources = Vec::new();
    for i in 0..4 {
        let (name, len) = if i == 2 {
            ("big.bin".to_string(), 2 * MIB + 1)
        } else {
            (format!("small-{i}.bin"), 100 + i * 50)
        };
        let path = side.work.path().join(name);
        let bytes = test_bytes(len, 40 + i as u8);
        std::fs::write(&path, &bytes).unwrap();
        sources.push((path, bytes));
    }
    let items: Vec<Value> = sources
        .iter()
        .map(|(p, _)| {
            json!({"local_path": p, "title": p.file_name().unwrap().to_str().unwrap(),
                   "owner_type": "user", "owner_id": uid})
        })
        .collect();
    let batch = c.ok(
        "asset.upload_many",
        json!({"items": items, "concurrency": 4, "chunk_size_mb": 1}),
    );
    let started = batch["items"].as_array().unwrap();
    assert_eq!(started.len(), 4, "{batch}");
    for (i, item) in started.iter().enumerate() {
        assert_eq!(item["index"], i, "{batch}");
        let tid = item["transfer_id"]
            .as_str()
            .unwrap_or_else(|| panic!("item {i} did not start: {batch}"));
        let t = wait_done(&mut c, tid);
        if i == 2 {
            assert_eq!(t["state"], "failed", "{t}");
            assert_eq!(t["error"]["code"], "ERR_NO_SPACE", "{t}");
            let a = c.ok("asset.get_metadata", json!({"asset_id": t["asset_id"]}));
            assert!(a["latest_content"].is_null(), "published anyway: {a}");
        } else {
            assert_eq!(t["state"], "completed", "{t}");
            assert_completed_with(
                &mut c,
                tid,
                &side.work.path().join(format!("dl-{i}")),
                &sources[i].1,
            );
        }
    }
    assert!(
        server.metric("dataerai_errors_total{code=\"ERR_NO_SPACE\"}") >= 1,
        "the server did not refuse anything"
    );
}
