//! Folders, versions, dedup, resume through a real daemon and server:
//! upload_many, the journal across `kill -9`, and the `transfers` CLI.

mod common;

use std::path::Path;

use common::transfers::{
    assert_completed_with, download_ok, setup, start_chunked_download, start_upload, upload_ok,
    wait_done, wait_progress,
};
use common::{fresh_user, read, test_bytes, RpcClient, TestDaemon, TestServer};
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// `count` files of `len` bytes named `<prefix>NN.bin` in `dir`, as
/// `asset.upload_many` items of personal assets of `uid` titled `<prefix>N`.
fn upload_many_items(dir: &Path, prefix: &str, count: u8, len: usize, uid: &str) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let p = dir.join(format!("{prefix}{i:02}.bin"));
            write(&p, &test_bytes(len, i));
            json!({"local_path": p, "title": format!("{prefix}{i}"), "owner_type": "user", "owner_id": uid})
        })
        .collect()
}

/// How many personal assets `uid` has.
fn personal_assets(c: &mut RpcClient, uid: &str) -> u64 {
    let page = c.ok("asset.list", json!({"owner_type": "user", "owner_id": uid}));
    page["total"].as_u64().expect("asset.list answers a total")
}

#[test]
fn folder_round_trip_restores_the_tree_and_refuses_escapes() {
    let server = TestServer::start_temp();
    let (side, mut c, uid) = setup(&server, "fox@example.org");
    let root = side.work.path().join("run42");
    let files = [
        ("a.txt", test_bytes(10, 1)),
        ("raw/frame-0001.bin", test_bytes(3 * MIB + 5, 2)),
        ("raw/deep/er/meta.json", b"{}".to_vec()),
        ("raw/empty.dat", Vec::new()),
    ];
    for (name, data) in &files {
        write(&root.join(name), data);
    }
    std::fs::create_dir_all(root.join("nothing-here")).unwrap();
    std::os::unix::fs::symlink("raw/deep/er/meta.json", root.join("meta-link.json")).unwrap();

    let r = start_upload(&mut c, &uid, &root, json!({"chunk_size_mb": 1}));
    assert_eq!(r["file_count"], 5);
    let up = wait_done(&mut c, r["transfer_id"].as_str().unwrap());
    assert_eq!(up["state"], "completed", "{up}");
    let names: Vec<&str> = up["result"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "a.txt",
            "meta-link.json",
            "raw/deep/er/meta.json",
            "raw/empty.dat",
            "raw/frame-0001.bin"
        ]
    );
    assert_eq!(up["file_count"], 5);

    let dest = side.work.path().join("back");
    let down = download_ok(
        &mut c,
        json!({"asset_id": up["asset_id"], "dest_dir": dest, "chunk_size_mb": 1}),
    );
    assert_eq!(down["files"].as_array().unwrap().len(), 5);
    for (name, data) in &files {
        assert_eq!(&read(dest.join(name)), data, "{name}");
    }
    assert_eq!(read(dest.join("meta-link.json")), b"{}");

    // A symlink out of the tree refuses the whole upload; nothing is created.
    let outside = side.work.path().join("secret.txt");
    write(&outside, b"secret");
    std::os::unix::fs::symlink(&outside, root.join("raw/leak")).unwrap();
    let before = personal_assets(&mut c, &uid);
    let (_, code) = c.err(
        "asset.upload",
        json!({"local_path": root, "title": "x", "owner_type": "user", "owner_id": uid}),
    );
    assert_eq!(code, "ERR_INVALID_INPUT");
    assert_eq!(personal_assets(&mut c, &uid), before);
    // So does an empty directory.
    let empty = side.work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (_, code) = c.err(
        "asset.upload",
        json!({"local_path": empty, "title": "x", "owner_type": "user", "owner_id": uid}),
    );
    assert_eq!(code, "ERR_INVALID_INPUT");

    // The CLI uploads a directory too.
    std::fs::remove_file(root.join("raw/leak")).unwrap();
    let cli = side.user.upload_json(&root, "cli", &[]);
    assert_eq!(cli["file_count"], 5);
}

#[test]
fn versions_and_dedup() {
    let server = TestServer::start_temp();
    let (side, mut c, uid) = setup(&server, "gus@example.org");
    let v1 = test_bytes(2 * MIB + 1, 3);
    let v2 = test_bytes(MIB + 7, 4);
    let p1 = side.work.path().join("v1/data.bin");
    let p2 = side.work.path().join("v2/data.bin");
    write(&p1, &v1);
    write(&p2, &v2);

    let first = upload_ok(&mut c, &uid, &p1, json!({"chunk_size_mb": 1}));
    assert_eq!(first["bytes_sent"], v1.len());
    assert_eq!(first["files"][0]["deduplicated"], false);
    let asset = first["asset_id"].clone();
    let sent_before = server.metric("dataerai_upload_bytes_total");
    assert_eq!(sent_before, v1.len() as u64);

    // New version of the same asset.
    let r = c.ok("asset.upload", json!({"local_path": p2, "asset_id": asset}));
    let second = wait_done(&mut c, r["transfer_id"].as_str().unwrap());
    assert_eq!(second["state"], "completed", "{second}");
    assert_eq!(second["result"]["asset_id"], asset);
    let (_, code) = c.err(
        "asset.upload",
        json!({"local_path": p2, "asset_id": asset, "title": "no"}),
    );
    assert_eq!(code, "ERR_INVALID_INPUT");

    let versions = c.ok("asset.list_versions", json!({"asset_id": asset}));
    assert_eq!(versions["total"], 2);
    assert_eq!(
        versions["items"][0]["content_id"],
        second["result"]["content_id"]
    );
    assert_eq!(versions["items"][1]["content_id"], first["content_id"]);
    let cli = side.user.run_json(&["versions", asset.as_str().unwrap()]);
    assert_eq!(cli["total"], 2);

    let old = download_ok(
        &mut c,
        json!({"asset_id": asset, "dest_dir": side.work.path().join("old"), "content_id": first["content_id"]}),
    );
    assert_eq!(read(old["files"][0]["local_path"].as_str().unwrap()), v1);
    let latest = download_ok(
        &mut c,
        json!({"asset_id": asset, "dest_dir": side.work.path().join("new")}),
    );
    assert_eq!(read(latest["files"][0]["local_path"].as_str().unwrap()), v2);

    // The same bytes again, as another asset of the same owner: nothing is sent.
    let copy = side.work.path().join("copy.bin");
    write(&copy, &v1);
    let sent_before = server.metric("dataerai_upload_bytes_total");
    let r = start_upload(&mut c, &uid, &copy, json!({"title": "copy"}));
    let tid = r["transfer_id"].as_str().unwrap();
    assert_completed_with(&mut c, tid, &side.work.path().join("dedup"), &v1);
    let again = c.ok("transfer.get", json!({"transfer_id": tid}))["result"].clone();
    assert_eq!(again["files"][0]["deduplicated"], true, "{again}");
    assert_eq!(again["bytes_sent"], 0);
    assert_eq!(server.metric("dataerai_upload_bytes_total"), sent_before);
}

/// `asset.upload` of a small file opens its asset and session in one
/// request (`POST /uploads/batch`) and sends its bytes and completes in one
/// more (`POST /uploads/finish`): two requests to the server, no
/// `POST /assets` of its own.
#[test]
fn a_small_upload_is_one_request() {
    let server = TestServer::start_temp();
    let (side, mut c, uid) = setup(&server, "one@example.org");
    let post = "dataerai_http_requests_total{method=\"POST\",status=\"200\"}";
    let created = "dataerai_http_requests_total{method=\"POST\",status=\"201\"}";
    let sessions_before = server.metric("dataerai_upload_session_batches_total");
    let finishes_before = server.metric("dataerai_upload_finish_batches_total");
    let (posts_before, created_before) = (server.metric(post), server.metric(created));
    let p = side.work.path().join("one.bin");
    write(&p, &test_bytes(10 * 1024, 3));
    let result = upload_ok(&mut c, &uid, &p, json!({}));
    assert_eq!(result["total_bytes"], 10 * 1024);
    assert_eq!(result["bytes_sent"], 10 * 1024);
    assert_eq!(
        server.metric("dataerai_upload_session_batches_total") - sessions_before,
        0
    );
    assert_eq!(
        server.metric("dataerai_upload_finish_batches_total") - finishes_before,
        0
    );
    assert_eq!(
        server.metric(post) - posts_before,
        1,
        "POST /uploads/single"
    );
    assert_eq!(
        server.metric(created) - created_before,
        0,
        "no POST /assets"
    );
    assert_eq!(personal_assets(&mut c, &uid), 1);
    // The transfer is journaled completed, and its bytes come back.
    let t = c.ok(
        "transfer.get",
        json!({"transfer_id": result["transfer_id"]}),
    );
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(t["bytes_done"], 10 * 1024, "{t}");
}

/// A small file waiting to be sent gives its batch slot back, so the next
/// uploads of the batch join it: finish requests carry more files than the
/// batch's concurrency (one upload at a time here), and every file arrives.
#[test]
fn upload_many_finish_requests_carry_more_files_than_its_concurrency() {
    let server = TestServer::start_temp();
    let (side, mut c, uid) = setup(&server, "small@example.org");
    let items = upload_many_items(side.work.path(), "s", 64, 16 * 1024, &uid);
    let batches_before = server.metric("dataerai_upload_finish_batches_total");
    let items_before = server.metric("dataerai_upload_finish_batch_items_total");
    let r = c.ok(
        "asset.upload_many",
        json!({"items": items, "concurrency": 1}),
    );
    for item in r["items"].as_array().unwrap() {
        let t = wait_done(&mut c, item["transfer_id"].as_str().unwrap());
        assert_eq!(t["state"], "completed", "{t}");
    }
    let batches = server.metric("dataerai_upload_finish_batches_total") - batches_before;
    let files = server.metric("dataerai_upload_finish_batch_items_total") - items_before;
    assert_eq!(files, 64);
    assert!(
        batches < 32,
        "64 files at concurrency 1 went in {batches} finish requests"
    );
    assert_eq!(personal_assets(&mut c, &uid), 64);
}

/// The first groups of a big `upload_many` start while the later ones are
/// still being opened, but a client reads the reply (with every transfer id)
/// before any notification about those transfers, and every one completes.
#[test]
fn upload_many_replies_before_any_news_of_the_transfers_it_started() {
    let server = TestServer::start_temp();
    let (side, mut c, uid) = setup(&server, "early@example.org");
    let items: Vec<Value> = (0..600u32)
        .map(|i| {
            let p = side.work.path().join(format!("e{i:03}.bin"));
            let mut data = test_bytes(4096, (i % 251) as u8);
            data[..4].copy_from_slice(&i.to_le_bytes());
            write(&p, &data);
            json!({"local_path": p, "title": format!("e{i}"), "owner_type": "user", "owner_id": uid})
        })
        .collect();
    let r = c.ok(
        "asset.upload_many",
        json!({"items": items, "concurrency": 16}),
    );
    let ids: Vec<String> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["transfer_id"]
                .as_str()
                .expect("every item started")
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 600);
    let early: Vec<&Value> = c
        .notifications
        .iter()
        .filter(|n| {
            ids.iter()
                .any(|id| n["params"]["transfer_id"] == id.as_str())
        })
        .collect();
    assert!(
        early.is_empty(),
        "notifications before the reply: {early:?}"
    );
    for id in &ids {
        let end = c.wait_transfer_end(id);
        assert_eq!(end["method"], "transfer.completed", "{end}");
    }
    assert_eq!(personal_assets(&mut c, &uid), 600);
}

#[test]
fn upload_many_reports_the_bad_item_and_uploads_the_rest() {
    let server = TestServer::start_temp();
    let (side, mut c, uid) = setup(&server, "hugo@example.org");
    let mut items = upload_many_items(side.work.path(), "f", 30, 64 * 1024, &uid);
    items.insert(7, json!({"local_path": side.work.path().join("missing.bin"), "title": "m", "owner_type": "user", "owner_id": uid}));
    let r = c.ok(
        "asset.upload_many",
        json!({"items": items, "concurrency": 4}),
    );
    let got = r["items"].as_array().unwrap();
    assert_eq!(got.len(), 31);
    assert_eq!(got[7]["error"]["code"], "ERR_INVALID_INPUT");
    assert!(got[7]["transfer_id"].is_null());
    for (i, item) in got.iter().enumerate() {
        assert_eq!(item["index"], i);
        if i != 7 {
            let t = wait_done(&mut c, item["transfer_id"].as_str().unwrap());
            assert_eq!(t["state"], "completed", "{t}");
        }
    }
    assert_eq!(personal_assets(&mut c, &uid), 30);
    let (_, code) = c.err("asset.upload_many", json!({"items": []}));
    assert_eq!(code, "ERR_INVALID_INPUT");
    let (_, code) = c.err(
        "asset.upload_many",
        json!({"items": [items[0]], "concurrency": 0}),
    );
    assert_eq!(code, "ERR_INVALID_INPUT");
}

#[test]
fn download_survives_kill_9_and_fetches_only_missing_chunks() {
    let (server, user, work) = fresh_user("ida@example.org");
    let data = test_bytes(96 * MIB, 5);
    let up = user.upload_new_file(work.path(), "big.bin", &data);

    let mut daemon = TestDaemon::start(&user);
    let mut c = daemon.connect();
    let dest = work.path().join("dl");
    let tid = start_chunked_download(&mut c, &up["asset_id"], &dest);
    wait_progress(&mut c, &tid, 8 * MIB);
    daemon.kill9();
    assert_eq!(
        common::partial_files(&dest).len(),
        1,
        "the partial file is kept"
    );
    assert!(!dest.join("big.bin").exists());
    let moved_before = server.metric("dataerai_download_bytes_total");
    assert!(moved_before < data.len() as u64, "finished before the kill");

    daemon.restart(&user, &[], &[]);
    let mut c = daemon.connect();
    let t = wait_done(&mut c, &tid);
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(read(dest.join("big.bin")), data);
    assert!(common::partial_files(&dest).is_empty());
    // Only what was missing moved again, plus at most the chunks in flight at
    // the kill (4) and those written but not yet synced and journaled (4).
    let total = server.metric("dataerai_download_bytes_total");
    assert!(
        total <= data.len() as u64 + 8 * MIB as u64,
        "moved {total} bytes for a {} byte file",
        data.len()
    );
    // The journal keeps it across restarts, with its stable id.
    let listed = c.ok("transfer.list", json!({}));
    assert!(listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["transfer_id"] == tid.as_str()));
}

#[test]
fn transfers_cli_talks_to_the_daemon() {
    let server = TestServer::start_temp();
    let (side, mut c, uid) = setup(&server, "jan@example.org");
    let p = side.work.path().join("x.bin");
    write(&p, &test_bytes(1000, 6));
    let r = start_upload(&mut c, &uid, &p, json!({}));
    let tid = r["transfer_id"].as_str().unwrap();
    let sock = side.daemon.socket.to_str().unwrap();
    let waited = side
        .user
        .run_json(&["transfers", "--socket", sock, "wait", tid]);
    assert_eq!(waited["state"], "completed");
    let listed = side.user.run_json(&["transfers", "--socket", sock, "list"]);
    assert_eq!(listed["items"][0]["transfer_id"], tid);
    let shown = side
        .user
        .run_ok(&["transfers", "--socket", sock, "show", tid]);
    assert!(shown.contains("completed"), "{shown}");
    // Pausing a finished transfer is refused with its code.
    let out = side
        .user
        .run(&["transfers", "--socket", sock, "pause", tid]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERR_INVALID_INPUT"));
    let out = side
        .user
        .run(&["transfers", "--socket", sock, "show", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERR_NOT_FOUND"));
    // No daemon: a clear message and a non-zero exit.
    let gone = side.work.path().join("none.sock");
    let out = side
        .user
        .run(&["transfers", "--socket", gone.to_str().unwrap(), "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dataerai daemon is running"));
    let _: Value = waited;
}

/// A daemon killed between its one request for a small file and journaling
/// the transfer finds out at its restart, by the request's key, that the
/// server made the upload: it journals the transfer completed (shown by
/// `transfer.list`) and keeps no start row; the server holds one asset, not
/// two.
#[test]
fn daemon_killed_after_a_single_upload_settles_it_when_it_starts_again() {
    let server = TestServer::start_temp();
    let (mut side, mut c, uid) = common::transfers::setup_with(&server, "kai@example.org", |u| {
        TestDaemon::start_with_env(u, &[("DATAERAI_FAULTS", "abort_after_session_open=1")])
    });
    let p = side.work.path().join("k.bin");
    write(&p, &test_bytes(20 * 1024, 9));
    c.send(
        "asset.upload",
        json!({"local_path": p, "title": "k", "owner_type": "user", "owner_id": uid}),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let asset_id = loop {
        let log = common::daemon_log(&side.daemon);
        if let Some(line) = log.lines().find(|l| l.contains("fault: dying with asset")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "asset").unwrap();
            break words[at + 1].to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not die: {log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    side.daemon.restart(&side.user, &[], &[]);
    let mut c = side.daemon.connect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let settled = loop {
        let listed = c.ok("transfer.list", json!({}));
        let found = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["asset_id"] == asset_id.as_str())
            .cloned();
        if let Some(t) = found {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not settled: {listed}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(settled["state"], "completed", "{settled}");
    assert_eq!(
        settled["result"]["asset_id"],
        asset_id.as_str(),
        "{settled}"
    );
    assert_eq!(settled["result"]["total_bytes"], 20 * 1024, "{settled}");
    assert_eq!(personal_assets(&mut c, &uid), 1);
    assert!(common::daemon_log(&side.daemon).contains("journaled it completed"));
}
