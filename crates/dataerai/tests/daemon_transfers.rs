//! Transfers through a real daemon talking to a real server.

mod common;

use std::time::Duration;

use common::transfers::{setup, start_upload};
use common::{read, test_bytes, TestServer};
use serde_json::{json, Value};

fn events<'a>(notifications: &'a [Value], tid: &str, method: &str) -> Vec<&'a Value> {
    notifications
        .iter()
        .filter(|n| n["method"] == method && n["params"]["transfer_id"] == tid)
        .collect()
}

#[test]
fn upload_and_download_with_progress_seen_by_another_client() {
    let server = TestServer::start_temp();
    let (side, mut c1, user_id) = setup(&server, "eve@example.org");
    let mut watcher = side.daemon.connect();
    // A round trip makes sure the watcher's connection is fully set up.
    watcher.ok("daemon.ping", json!({}));

    let st = c1.ok("auth.status", json!({}));
    assert_eq!(st["signed_in"], true);
    assert_eq!(st["user_email"], "eve@example.org");
    assert_eq!(st["user_id"], user_id);

    let data = test_bytes(3 * 1024 * 1024 + 333, 7);
    let src = side.work.path().join("frames.raw");
    std::fs::write(&src, &data).unwrap();
    let started = c1.ok(
        "asset.upload",
        json!({"local_path": src, "title": "Frames", "owner_type": "user", "owner_id": user_id,
               "tags": ["a"], "metadata": {"fps": 120}, "chunk_size_mb": 1, "description": null}),
    );
    let tid = started["transfer_id"].as_str().unwrap().to_string();
    assert_eq!(started["kind"], "upload");
    assert_eq!(started["bytes_total"], data.len());
    assert_eq!(started["chunk_count"], 4);
    // The reply came before any notification about this transfer.
    assert!(events(&c1.notifications, &tid, "transfer.progress").is_empty());

    let end = watcher.wait_transfer_end(&tid);
    assert_eq!(end["method"], "transfer.completed", "{end}");
    let result = &end["params"]["result"];
    assert_eq!(result["asset_id"], started["asset_id"]);
    assert_eq!(result["transfer_id"], json!(tid));
    assert_eq!(result["total_bytes"], data.len());
    assert_eq!(result["chunk_count"], 4);
    assert_eq!(result["files"][0]["name"], "frames.raw");
    let progress = events(&watcher.notifications, &tid, "transfer.progress");
    assert_eq!(progress.len(), 4, "one event per chunk");
    let done: Vec<u64> = progress
        .iter()
        .map(|p| p["params"]["bytes_done"].as_u64().unwrap())
        .collect();
    assert!(done.windows(2).all(|w| w[0] < w[1]), "{done:?}");
    assert_eq!(*done.last().unwrap(), data.len() as u64);
    for p in &progress {
        let p = &p["params"];
        assert_eq!(p["kind"], "upload");
        assert_eq!(p["bytes_total"], data.len());
        assert_eq!(p["chunk_count"], 4);
        assert_eq!(p["file_index"], 0);
        assert_eq!(p["file_name"], "frames.raw");
        assert!(p["rate_bps"].as_f64().unwrap() >= 0.0);
    }
    // The starting client got them too, and the registry agrees.
    let end1 = c1.wait_transfer_end(&tid);
    assert_eq!(end1["method"], "transfer.completed");
    let t = c1.ok("transfer.get", json!({"transfer_id": tid}));
    assert_eq!(t["state"], "completed");
    assert_eq!(t["bytes_done"], data.len());
    assert_eq!(t["result"]["content_id"], result["content_id"]);
    assert!(t["error"].is_null());
    assert_eq!(
        c1.ok("transfer.list", json!(null))["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Download it back.
    let asset_id = result["asset_id"].as_str().unwrap().to_string();
    let dest = side.work.path().join("dl");
    let d = c1.ok(
        "asset.download",
        json!({"asset_id": asset_id, "dest_dir": dest, "chunk_size_mb": 1}),
    );
    assert_eq!(d["kind"], "download");
    assert_eq!(d["content_id"], result["content_id"]);
    assert_eq!(d["bytes_total"], data.len());
    let dtid = d["transfer_id"].as_str().unwrap().to_string();
    let end = c1.wait_transfer_end(&dtid);
    assert_eq!(end["method"], "transfer.completed", "{end}");
    let f = &end["params"]["result"]["files"][0];
    assert_eq!(f["filename"], "frames.raw");
    assert_eq!(f["size"], data.len());
    assert_eq!(read(f["local_path"].as_str().unwrap()), data);
    assert!(common::partial_files(&dest).is_empty());
    let dprog = events(&c1.notifications, &dtid, "transfer.progress");
    assert_eq!(dprog.last().unwrap()["params"]["bytes_done"], data.len());

    // Metadata through the daemon.
    let a = c1.ok("asset.get_metadata", json!({"asset_id": asset_id}));
    assert_eq!(a["metadata"]["fps"], 120);
    let a = c1.ok(
        "asset.set_metadata",
        json!({"asset_id": asset_id, "metadata": {"fps": null, "binning": 2}, "tags": ["b"]}),
    );
    assert!(a["metadata"].get("fps").is_none(), "{a}");
    assert_eq!(a["metadata"]["binning"], 2);
    assert_eq!(a["tags"], json!(["b"]));
    let (_, code) = c1.err(
        "asset.set_metadata",
        json!({"asset_id": asset_id, "colour": "red"}),
    );
    assert_eq!(code, "ERR_INVALID_INPUT");
    let (_, code) = c1.err(
        "asset.get_metadata",
        json!({"asset_id": "00000000-0000-0000-0000-000000000000"}),
    );
    assert_eq!(code, "ERR_NOT_FOUND");
}

/// A lone small file is uploaded while the call is prepared: the reply
/// carries the finished transfer's result (the caller need not wait for a
/// notification), and `transfer.completed` with the same result still
/// reaches every client after it.
#[test]
fn lone_small_upload_answers_with_its_result() {
    let server = TestServer::start_temp();
    let (side, mut c, user_id) = setup(&server, "una@example.org");
    let mut watcher = side.daemon.connect();
    watcher.ok("daemon.ping", json!({}));
    let src = side.work.path().join("small.bin");
    std::fs::write(&src, test_bytes(64 * 1024, 5)).unwrap();
    let started = start_upload(&mut c, &user_id, &src, json!({}));
    let tid = started["transfer_id"].as_str().unwrap().to_string();
    assert_eq!(started["state"], "completed", "{started}");
    let result = &started["result"];
    assert_eq!(result["transfer_id"], json!(tid));
    assert_eq!(result["asset_id"], started["asset_id"]);
    assert_eq!(result["content_id"], started["content_id"]);
    assert_eq!(result["total_bytes"], 64 * 1024);
    assert_eq!(result["files"][0]["name"], "small.bin");
    for client in [&mut c, &mut watcher] {
        let end = client.wait_transfer_end(&tid);
        assert_eq!(end["method"], "transfer.completed", "{end}");
        assert_eq!(&end["params"]["result"], result);
    }
    let t = c.ok("transfer.get", json!({"transfer_id": tid}));
    assert_eq!(t["state"], "completed");
    assert_eq!(&t["result"], result);
}

#[test]
fn projects_relationships_and_login_changes_without_restart() {
    let server = TestServer::start_temp();
    let (side, mut c, _) = setup(&server, "fay@example.org");

    let p = c.ok(
        "project.create",
        json!({"name": "Cryo", "description": "EM"}),
    );
    assert_eq!(p["name"], "Cryo");
    assert!(p["allocation"]["quota_bytes"].is_u64());
    let pid = p["project_id"].as_str().unwrap().to_string();
    let list = c.ok("project.list", json!({}));
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["project_id"] == json!(pid)));

    let mut ids = Vec::new();
    for name in ["raw.bin", "analysis.bin"] {
        let f = side.work.path().join(name);
        std::fs::write(&f, name.as_bytes()).unwrap();
        let r = c.ok(
            "asset.upload",
            json!({"local_path": f, "title": name, "owner_type": "project", "owner_id": pid}),
        );
        let end = c.wait_transfer_end(r["transfer_id"].as_str().unwrap());
        assert_eq!(end["method"], "transfer.completed", "{end}");
        ids.push(r["asset_id"].as_str().unwrap().to_string());
    }
    let assets = c.ok(
        "asset.list",
        json!({"owner_type": "project", "owner_id": pid}),
    );
    assert_eq!(assets["total"], 2);

    let rel = c.ok(
        "relationship.create",
        json!({"from_asset_id": ids[1], "to_asset_id": ids[0], "relationship_type": "analysis_of",
               "analysis_mode": "non_destructive", "qualifier_time": "2025-01-02", "qualifiers": {"tool": "x"}}),
    );
    assert_eq!(rel["type"], "analysis_of");
    assert_eq!(rel["related_asset"]["title"], "raw.bin");
    assert_eq!(rel["qualifiers"]["time"], "2025-01-02T00:00:00Z");
    assert_eq!(rel["qualifiers"]["tool"], "x");
    let (_, code) = c.err(
        "relationship.create",
        json!({"from_asset_id": ids[1], "to_asset_id": ids[0], "relationship_type": "analysis_of"}),
    );
    assert_eq!(code, "ERR_RELATIONSHIP_EXISTS");

    // Logout is picked up by the running daemon.
    side.user.run_ok(&["auth", "logout"]);
    let (_, code) = c.err("auth.status", json!({}));
    assert_eq!(code, "ERR_AUTH_REQUIRED");
    let (_, code) = c.err("project.list", json!({}));
    assert_eq!(code, "ERR_AUTH_REQUIRED");
}

#[test]
fn cancelled_upload_publishes_nothing() {
    let server = TestServer::start_temp();
    let (side, mut c, user_id) = setup(&server, "gus@example.org");

    let src = side.work.path().join("big.bin");
    std::fs::write(&src, test_bytes(96 * 1024 * 1024, 3)).unwrap();
    let r = start_upload(&mut c, &user_id, &src, json!({"chunk_size_mb": 1}));
    let tid = r["transfer_id"].as_str().unwrap().to_string();
    let t = c.ok("transfer.cancel", json!({"transfer_id": tid}));
    assert_eq!(t["transfer_id"], json!(tid));
    let end = c.wait_transfer_end(&tid);
    assert_eq!(end["method"], "transfer.failed", "{end}");
    assert_eq!(end["params"]["error"]["code"], "ERR_CANCELLED");
    let t = c.ok("transfer.get", json!({"transfer_id": tid}));
    assert_eq!(t["state"], "cancelled");
    assert_eq!(t["error"]["code"], "ERR_CANCELLED");
    // The asset made for the upload is gone again.
    common::wait_until(
        "the cancelled upload's asset to be deleted",
        Duration::from_secs(20),
        || {
            let v = c.call("asset.get_metadata", json!({"asset_id": r["asset_id"]}));
            (v["error"]["data"]["code"] == "ERR_NOT_FOUND").then_some(())
        },
    );
}

#[test]
fn quota_errors_are_synchronous_and_leave_no_asset() {
    let server = TestServer::start_temp();
    let (side, mut c, user_id) = setup(&server, "ivy@example.org");
    server.set_user_quota("ivy@example.org", 1000);

    let src = side.work.path().join("too-big.bin");
    std::fs::write(&src, test_bytes(5000, 4)).unwrap();
    let (code, data) = c.err(
        "asset.upload",
        json!({"local_path": src, "title": "Too big", "owner_type": "user", "owner_id": user_id}),
    );
    assert_eq!(code, -32000);
    assert_eq!(data, "ERR_QUOTA_EXCEEDED");
    // No transfer started and the asset created for it was removed.
    assert_eq!(c.ok("transfer.list", json!({}))["items"], json!([]));
    assert_eq!(
        c.ok(
            "asset.list",
            json!({"owner_type": "user", "owner_id": user_id})
        )["total"],
        0
    );

    // A file that fits still goes through.
    let small = side.work.path().join("small.bin");
    std::fs::write(&small, test_bytes(500, 5)).unwrap();
    let r = start_upload(&mut c, &user_id, &small, json!({}));
    let end = c.wait_transfer_end(r["transfer_id"].as_str().unwrap());
    assert_eq!(end["method"], "transfer.completed", "{end}");
}
