//! A transfer started while the server cannot be reached waits for it: the
//! daemon answers at once with a transfer id, announces `transfer.retrying`
//! while it keeps trying within its retry window (answering other requests
//! meanwhile), and starts the transfer once the server is back — or fails it
//! with `ERR_SERVER_UNREACHABLE` when the window is over. A daemon that
//! declined `daemon.shutdown` for such a transfer stops by itself once the
//! transfer has ended and no client is connected.

mod common;

use common::transfers::{is_event, setup_with, wait_done};
use common::{read, test_bytes, TestDaemon, TestServer};
use serde_json::json;

#[test]
fn an_upload_started_during_an_outage_completes_when_the_server_returns() {
    let mut server = TestServer::start_temp();
    let (side, mut c, uid) = setup_with(&server, "ann@lab.org", TestDaemon::start);
    let data = test_bytes(2 * 1024 * 1024 + 17, 8);
    let src = side.work.path().join("frames.raw");
    std::fs::write(&src, &data).unwrap();

    server.kill();
    let started = c.ok(
        "asset.upload",
        json!({"local_path": src, "title": "t", "owner_type": "user", "owner_id": uid,
               "chunk_size_mb": 1}),
    );
    assert_eq!(started["state"], "retrying", "{started}");
    let tid = started["transfer_id"].as_str().unwrap().to_string();
    c.wait_for(|n| {
        is_event(n, "transfer.retrying", &tid)
            && n["params"]["error"]["code"] == "ERR_SERVER_UNREACHABLE"
    });
    // The daemon answers other requests while it waits.
    assert!(c.ok("daemon.ping", json!({}))["pid"].as_u64().is_some());
    // A client that started the daemon cannot stop it now.
    let declined = c.ok("daemon.shutdown", json!({}));
    assert_eq!(declined["stopping"], false, "{declined}");
    assert_eq!(declined["running_transfers"], json!([tid]));
    assert_eq!(declined["exit_when_idle"], true, "{declined}");

    server.restart(None);
    let t = wait_done(&mut c, &tid);
    assert_eq!(t["state"], "completed", "{t}");
    let dest = side.work.path().join("back");
    let r = c.ok(
        "asset.download",
        json!({"asset_id": t["asset_id"], "dest_dir": dest}),
    );
    let back = wait_done(&mut c, r["transfer_id"].as_str().unwrap());
    assert_eq!(
        read(back["result"]["files"][0]["local_path"].as_str().unwrap()),
        data
    );
}

#[test]
fn a_batch_started_during_an_outage_waits_and_runs_within_its_concurrency() {
    let mut server = TestServer::start_temp();
    let (side, mut c, uid) = setup_with(&server, "bea@lab.org", TestDaemon::start);
    let items: Vec<_> = (0..5)
        .map(|i| {
            // Over 1 MiB: a smaller file is sent in one request and never
            // shows a running transfer to count.
            let src = side.work.path().join(format!("item{i}.bin"));
            std::fs::write(&src, test_bytes(1_100_000 + i, i as u8)).unwrap();
            json!({"local_path": src, "title": format!("item {i}"),
                   "owner_type": "user", "owner_id": uid})
        })
        .collect();

    server.kill();
    let answer = c.ok(
        "asset.upload_many",
        json!({"items": items, "concurrency": 2}),
    );
    let entries = answer["items"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "{answer}");
    let ids: Vec<String> = entries
        .iter()
        .map(|e| {
            // Every item waits for the server instead of failing.
            assert!(e["error"].is_null(), "{e}");
            assert_eq!(e["state"], "retrying", "{e}");
            e["transfer_id"].as_str().unwrap().to_string()
        })
        .collect();
    // Two of them (the batch's slots) keep trying; the others wait for a slot.
    c.wait_for(|n| {
        n["method"] == "transfer.retrying"
            && ids
                .iter()
                .any(|id| n["params"]["transfer_id"] == id.as_str())
            && n["params"]["error"]["code"] == "ERR_SERVER_UNREACHABLE"
    });

    server.restart(None);
    let mut assets = std::collections::HashSet::new();
    for id in &ids {
        let t = wait_done(&mut c, id);
        assert_eq!(t["state"], "completed", "{t}");
        assert!(assets.insert(t["asset_id"].as_str().unwrap().to_string()));
    }
    // Never more than `concurrency` of them running at once.
    let mut running = std::collections::HashSet::new();
    let mut most = 0;
    for n in &c.notifications {
        let id = n["params"]["transfer_id"].as_str().unwrap_or_default();
        match n["method"].as_str() {
            Some("transfer.state") if n["params"]["state"] == "running" => {
                running.insert(id.to_string());
            }
            Some("transfer.completed" | "transfer.failed") => {
                running.remove(id);
            }
            _ => {}
        }
        most = most.max(running.len());
    }
    assert!((1..=2).contains(&most), "{most} ran at once");
    let listed = c.ok("asset.list", json!({"owner_type": "user", "owner_id": uid}));
    assert_eq!(listed["total"], 5, "{listed}");
}

#[test]
fn a_daemon_that_declined_shutdown_stops_once_idle() {
    let mut server = TestServer::start_temp();
    let (mut side, c, uid) = setup_with(&server, "cid@lab.org", TestDaemon::start);
    let src = side.work.path().join("late.bin");
    std::fs::write(&src, test_bytes(300_000, 3)).unwrap();
    server.kill();
    let mut c = c;
    let started = c.ok(
        "asset.upload",
        json!({"local_path": src, "title": "late", "owner_type": "user", "owner_id": uid}),
    );
    let tid = started["transfer_id"].as_str().unwrap().to_string();
    assert_eq!(c.ok("daemon.shutdown", json!({}))["stopping"], false);
    // The client that asked goes; another follows the transfer.
    drop(c);
    let mut watcher = side.daemon.connect();
    server.restart(None);
    assert_eq!(wait_done(&mut watcher, &tid)["state"], "completed");
    // Idle but with a client connected: it keeps serving.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(watcher.ok("daemon.ping", json!({}))["pid"].is_u64());
    assert_eq!(side.daemon.wait_exit(std::time::Duration::ZERO), None);
    // The last client gone: it stops cleanly and removes its socket.
    drop(watcher);
    assert_eq!(
        side.daemon.wait_exit(std::time::Duration::from_secs(10)),
        Some(0)
    );
    assert!(!side.daemon.socket.exists());
}

#[test]
fn when_the_retry_window_ends_the_transfer_fails_as_unreachable() {
    let mut server = TestServer::start_temp();
    let (side, mut c, uid) = setup_with(&server, "bea@lab.org", |user| {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run").join("d.sock");
        TestDaemon::start_full(user, dir, socket, &["--retry-window-s", "2"], &[])
    });
    let src = side.work.path().join("x.bin");
    std::fs::write(&src, b"bytes").unwrap();
    server.kill();
    let started = c.ok(
        "asset.upload",
        json!({"local_path": src, "title": "t", "owner_type": "user", "owner_id": uid}),
    );
    let tid = started["transfer_id"].as_str().unwrap().to_string();
    let end = c.wait_transfer_end(&tid);
    assert_eq!(end["method"], "transfer.failed", "{end}");
    assert_eq!(end["params"]["error"]["code"], "ERR_SERVER_UNREACHABLE");
    // Nothing is left waiting: the daemon may stop again.
    assert_eq!(c.ok("daemon.shutdown", json!({}))["stopping"], true);
}
