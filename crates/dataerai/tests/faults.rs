//! Fault tests (server and daemon built with `fault-injection`): a stalled,
//! killed or full server, a corrupted chunk, a full local disk, and control of
//! a transfer from a second connection.
#![cfg(feature = "fault-injection")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::transfers::{
    assert_completed_with, is_event, setup, start_chunked_download, start_chunked_upload,
    start_upload, wait_done,
};
use common::{fresh_user, read, test_bytes, TestDaemon, TestServer};
use serde_json::json;

const MIB: usize = 1024 * 1024;

fn fault_server(faults: &str) -> TestServer {
    TestServer::start_temp_with(|b| b.faults(faults))
}

#[test]
fn upload_survives_kill_9_and_sends_only_missing_chunks() {
    // The 3rd chunk PUT is answered 503 + Retry-After: the upload stalls there.
    let server = fault_server("unavailable_chunk=3");
    let (mut side, mut c, uid) = setup(&server, "kim@example.org");
    let data = test_bytes(16 * MIB + 3, 7);
    let tid = start_chunked_upload(&mut c, &uid, side.work.path(), "scan.bin", &data);
    let retrying = c.wait_for(|n| is_event(n, "transfer.retrying", &tid));
    assert!(
        retrying["params"]["delay_s"].as_f64().unwrap() >= 1.0,
        "Retry-After honoured: {retrying}"
    );
    side.daemon.kill9();
    // Chunk bodies the killed daemon had already handed to the kernel still
    // reach the server, which stores them (requests run to completion). Let
    // those settle before the new daemon asks what the server holds, so the
    // count below is exact.
    let before = dataerai_testkit::wait::wait_settled(
        "the server's received byte count",
        Duration::from_millis(300),
        Duration::from_secs(30),
        || server.metric("dataerai_upload_bytes_total"),
    );
    assert!(before < data.len() as u64);

    side.daemon.restart(&side.user, &[], &[]);
    let mut c = side.daemon.connect();
    assert_completed_with(&mut c, &tid, &side.work.path().join("dl"), &data);
    // Every byte crossed exactly once: the resumed daemon sent only what the
    // server did not hold.
    assert_eq!(
        server.metric("dataerai_upload_bytes_total"),
        data.len() as u64
    );
}

#[test]
fn server_stopped_and_restarted_mid_upload_completes() {
    let mut server = fault_server("unavailable_chunk=2");
    let (side, mut c, uid) = setup(&server, "lea@example.org");
    let data = test_bytes(12 * MIB, 8);
    let tid = start_chunked_upload(&mut c, &uid, side.work.path(), "run.bin", &data);
    // Stalled on the 503; now the server goes away altogether.
    c.wait_for(|n| is_event(n, "transfer.retrying", &tid));
    server.kill();
    // The 503 also reads ERR_SERVER_UNREACHABLE, and `wait_for` matches
    // notifications already seen: wait for a failure to connect.
    let down = c.wait_for(|n| {
        is_event(n, "transfer.retrying", &tid)
            && n["params"]["error"]["code"] == "ERR_SERVER_UNREACHABLE"
            && n["params"]["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot reach"))
    });
    assert!(down["params"]["attempt"].as_u64().unwrap() >= 1);
    // A chunk the server took just before the kill may still be acknowledged
    // after that (and say `running` again); then the next failure says
    // `retrying` for as long as the server is down.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let t = loop {
        let t = c.ok("transfer.get", json!({"transfer_id": tid}));
        if t["state"] == "retrying" || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(t["state"], "retrying", "{t}");
    assert_eq!(t["last_error"]["code"], "ERR_SERVER_UNREACHABLE");
    c.wait_for(|n| is_event(n, "transfer.state", &tid) && n["params"]["state"] == "retrying");

    server.restart(None);
    assert_completed_with(&mut c, &tid, &side.work.path().join("dl"), &data);
}

#[test]
fn chunk_corrupted_in_flight_is_resent() {
    let server = fault_server("corrupt_chunk=2");
    let (side, mut c, uid) = setup(&server, "max@example.org");
    let data = test_bytes(4 * MIB, 9);
    let tid = start_chunked_upload(&mut c, &uid, side.work.path(), "c.bin", &data);
    assert_completed_with(&mut c, &tid, &side.work.path().join("dl"), &data);
    assert_eq!(
        server.metric("dataerai_errors_total{code=\"ERR_INTEGRITY\"}"),
        1,
        "the server refused the corrupted chunk once"
    );
}

/// Behind something that drops request trailers (a proxy buffering bodies),
/// big chunks sent with their digest after the body are refused; the daemon
/// then sends each digest first, in the header, the upload completes intact,
/// and later uploads of that daemon do not try trailers again.
#[test]
fn big_chunks_get_through_when_trailers_are_dropped_on_the_way() {
    let server = fault_server("drop_chunk_trailers=1");
    let (side, mut c, uid) = setup(&server, "tia@example.org");
    let refused = || server.metric("dataerai_errors_total{code=\"ERR_INTEGRITY\"}");
    // 16 MiB chunks: two big ones (sent with a trailer where the server's
    // store takes one) and a short last one (its digest always first).
    let upload = |c: &mut common::RpcClient, name: &str, seed| {
        let data = test_bytes(32 * MIB + 5, seed);
        let src = side.work.path().join(name);
        std::fs::write(&src, &data).unwrap();
        let r = start_upload(c, &uid, &src, json!({"chunk_size_mb": 16}));
        let tid = r["transfer_id"].as_str().unwrap().to_string();
        assert_completed_with(c, &tid, &side.work.path().join(format!("dl-{name}")), &data);
    };
    upload(&mut c, "first.bin", 21);
    let first = refused();
    if dataerai_testkit::backends::scaleout() {
        // The S3 store does not take digests after the body (it would copy
        // each such chunk once more): the daemon never sends trailers there.
        assert_eq!(
            first, 0,
            "a trailer was sent to a server that did not ask for them"
        );
    } else {
        assert!(
            (1..=2).contains(&first),
            "the big chunks sent with a trailer were refused (at most both, in flight together): {first}"
        );
    }
    upload(&mut c, "second.bin", 22);
    assert_eq!(
        refused(),
        first,
        "the daemon sent digests first from then on"
    );
}

#[test]
fn full_server_disk_fails_with_no_space_then_resumes() {
    let mut server = fault_server(&format!("enospc_after_bytes={}", 3 * MIB));
    let (side, mut c, uid) = setup(&server, "ned@example.org");
    let data = test_bytes(8 * MIB, 10);
    let tid = start_chunked_upload(&mut c, &uid, side.work.path(), "s.bin", &data);
    let t = wait_done(&mut c, &tid);
    assert_eq!(t["state"], "failed", "{t}");
    assert_eq!(t["error"]["code"], "ERR_NO_SPACE");
    // Nothing was published.
    let a = c.ok("asset.get_metadata", json!({"asset_id": t["asset_id"]}));
    assert!(a["latest_content"].is_null(), "{a}");

    // Space freed (the server comes back without the fault): resume.
    server.restart(None);
    c.ok("transfer.resume", json!({"transfer_id": tid}));
    c.notifications.clear();
    assert_completed_with(&mut c, &tid, &side.work.path().join("dl"), &data);
}

#[test]
fn full_local_disk_fails_with_no_space_then_resumes() {
    let (server, user, work) = fresh_user("ola@example.org");
    let data = test_bytes(16 * MIB, 11);
    let up = user.upload_new_file(work.path(), "d.bin", &data);

    // 4 chunks are in flight, so a few may be cut short at the limit.
    let fault = format!("enospc_after_bytes={}", 10 * MIB);
    let mut daemon = TestDaemon::start_with_env(&user, &[("DATAERAI_FAULTS", &fault)]);
    let mut c = daemon.connect();
    let dest = work.path().join("dl");
    let tid = start_chunked_download(&mut c, &up["asset_id"], &dest);
    let t = wait_done(&mut c, &tid);
    assert_eq!(t["state"], "failed", "{t}");
    assert_eq!(t["error"]["code"], "ERR_NO_SPACE");
    assert!(
        !dest.join("d.bin").exists(),
        "nothing presented as complete"
    );
    assert!(
        common::partial_files(&dest).len() == 1,
        "partial kept for resume"
    );
    let first = server.metric("dataerai_download_bytes_total");

    // Space freed: a daemon without the fault resumes it from the journal.
    daemon.restart(&user, &[], &[]);
    let mut c = daemon.connect();
    c.ok("transfer.resume", json!({"transfer_id": tid}));
    let t = wait_done(&mut c, &tid);
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(read(dest.join("d.bin")), data);
    let second = server.metric("dataerai_download_bytes_total") - first;
    assert!(
        second < data.len() as u64,
        "resumed, not restarted: {second}"
    );
}

#[test]
fn pause_resume_and_cancel_from_a_second_connection() {
    // The first chunk PUT stalls (503, Retry-After: 1) so the transfer is
    // reliably still running when the second client acts.
    let server = fault_server("unavailable_chunk=1");
    let (side, mut c1, uid) = setup(&server, "pia@example.org");
    let mut c2 = side.daemon.connect();
    let a = side.work.path().join("a.bin");
    let b = side.work.path().join("b.bin");
    let data = test_bytes(4 * MIB, 12);
    std::fs::write(&a, &data).unwrap();
    std::fs::write(&b, test_bytes(1000, 13)).unwrap();
    let item =
        |p: &Path| json!({"local_path": p, "title": "x", "owner_type": "user", "owner_id": uid});
    let batch = c1.ok(
        "asset.upload_many",
        json!({"items": [item(&a), item(&b)], "concurrency": 1, "chunk_size_mb": 1}),
    );
    let ta = batch["items"][0]["transfer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tb = batch["items"][1]["transfer_id"]
        .as_str()
        .unwrap()
        .to_string();
    c2.wait_for(|n| is_event(n, "transfer.retrying", &ta));

    // Both within A's one-second wait: B (waiting for a slot) is cancelled, A paused.
    let t = c2.ok("transfer.get", json!({"transfer_id": tb}));
    assert_eq!(t["state"], "queued", "{t}");
    c2.ok("transfer.cancel", json!({"transfer_id": tb}));
    c2.ok("transfer.pause", json!({"transfer_id": ta}));

    let end = c2.wait_transfer_end(&tb);
    assert_eq!(end["params"]["error"]["code"], "ERR_CANCELLED");
    let (_, code) = c2.err(
        "asset.get_metadata",
        json!({"asset_id": batch["items"][1]["asset_id"]}),
    );
    assert_eq!(
        code, "ERR_NOT_FOUND",
        "the cancelled upload's asset is gone"
    );
    let (_, code) = c2.err("transfer.pause", json!({"transfer_id": tb}));
    assert_eq!(code, "ERR_INVALID_INPUT");

    c1.wait_for(|n| is_event(n, "transfer.state", &ta) && n["params"]["state"] == "paused");
    assert_eq!(
        c2.ok("transfer.get", json!({"transfer_id": ta}))["state"],
        "paused"
    );
    let (_, code) = c2.err("transfer.pause", json!({"transfer_id": "nope"}));
    assert_eq!(code, "ERR_NOT_FOUND");
    c2.ok("transfer.resume", json!({"transfer_id": ta}));
    assert_completed_with(&mut c1, &ta, &side.work.path().join("dl"), &data);
}
