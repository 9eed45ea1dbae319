//! Helpers shared by the resumable-transfer tests.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{json, Value};

use super::{RpcClient, TestDaemon, TestServer, UserEnv};

/// The signed-in user's id, through the daemon.
pub fn user_id(c: &mut RpcClient) -> String {
    c.ok("auth.status", json!({}))["user_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Start a personal upload of `path` with `extra` params; returns the reply.
pub fn start_upload(c: &mut RpcClient, uid: &str, path: &Path, extra: Value) -> Value {
    let mut p = json!({"local_path": path, "title": "t", "owner_type": "user", "owner_id": uid});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    c.ok("asset.upload", p)
}

/// Wait until the transfer is finished (whether its end was announced before
/// or after this call) and return its final Transfer object.
pub fn wait_done(c: &mut RpcClient, tid: &str) -> Value {
    let t = c.ok("transfer.get", json!({"transfer_id": tid}));
    if matches!(
        t["state"].as_str(),
        Some("completed" | "failed" | "cancelled")
    ) {
        return t;
    }
    c.wait_transfer_end(tid);
    c.ok("transfer.get", json!({"transfer_id": tid}))
}

/// Upload and wait; returns the completed result.
pub fn upload_ok(c: &mut RpcClient, uid: &str, path: &Path, extra: Value) -> Value {
    let r = start_upload(c, uid, path, extra);
    let t = wait_done(c, r["transfer_id"].as_str().unwrap());
    assert_eq!(t["state"], "completed", "{t}");
    t["result"].clone()
}

/// Download and wait; returns the completed result.
pub fn download_ok(c: &mut RpcClient, params: Value) -> Value {
    let r = c.ok("asset.download", params);
    let t = wait_done(c, r["transfer_id"].as_str().unwrap());
    assert_eq!(t["state"], "completed", "{t}");
    t["result"].clone()
}

/// Is this a `transfer.*` notification `method` about `tid`?
pub fn is_event(n: &Value, method: &str, tid: &str) -> bool {
    n["method"] == method && n["params"]["transfer_id"] == tid
}

/// Wait until transfer `tid` reported at least `bytes` done.
pub fn wait_progress(c: &mut RpcClient, tid: &str, bytes: usize) {
    c.wait_for(|n| {
        is_event(n, "transfer.progress", tid)
            && n["params"]["bytes_done"].as_u64().unwrap_or(0) >= bytes as u64
    });
}

/// The transfer `tid` completed and its asset downloads back as `expected`.
pub fn assert_completed_with(c: &mut RpcClient, tid: &str, dest: &Path, expected: &[u8]) {
    let t = wait_done(c, tid);
    assert_eq!(t["state"], "completed", "{t}");
    let back = download_ok(c, json!({"asset_id": t["asset_id"], "dest_dir": dest}));
    assert_eq!(
        super::read(back["files"][0]["local_path"].as_str().unwrap()),
        expected
    );
}

/// Write `data` to `dir/name` and start a personal upload of it in 1 MiB
/// chunks; returns the transfer id.
pub fn start_chunked_upload(
    c: &mut RpcClient,
    uid: &str,
    dir: &Path,
    name: &str,
    data: &[u8],
) -> String {
    let src = dir.join(name);
    std::fs::write(&src, data).unwrap();
    let r = start_upload(c, uid, &src, json!({"chunk_size_mb": 1}));
    r["transfer_id"].as_str().unwrap().to_string()
}

/// Start a download of `asset_id` into `dest` in 1 MiB chunks; returns the
/// transfer id.
pub fn start_chunked_download(c: &mut RpcClient, asset_id: &Value, dest: &Path) -> String {
    let params = json!({"asset_id": asset_id, "dest_dir": dest, "chunk_size_mb": 1});
    c.ok("asset.download", params)["transfer_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A signed-in user, the daemon started for them (running while this is
/// held) and a scratch directory for their files.
pub struct UserSide {
    pub user: UserEnv,
    pub daemon: TestDaemon,
    pub work: tempfile::TempDir,
}

/// A signed-in user on `server` with a daemon: the user's side, a connection
/// to the daemon and the user's id.
pub fn setup(server: &TestServer, email: &str) -> (UserSide, RpcClient, String) {
    setup_with(server, email, TestDaemon::start)
}

/// [`setup`] with the daemon started by `start` (to add faults, log levels…).
pub fn setup_with(
    server: &TestServer,
    email: &str,
    start: impl FnOnce(&UserEnv) -> TestDaemon,
) -> (UserSide, RpcClient, String) {
    let user = super::signed_in_user(server, email);
    let daemon = start(&user);
    let mut c = daemon.connect();
    let uid = user_id(&mut c);
    let work = tempfile::tempdir().unwrap();
    (UserSide { user, daemon, work }, c, uid)
}
