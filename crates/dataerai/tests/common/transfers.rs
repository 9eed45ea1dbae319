//! Helpers shared by the resumable-transfer tests.
#![allow(dead_code)]

use std::path::Path;

use serde_json::{json, Value};

use super::RpcClient;

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

/// A signed-in user with a daemon and a connection to it.
pub struct Setup {
    pub user: super::UserEnv,
    pub daemon: super::TestDaemon,
    pub c: RpcClient,
    pub uid: String,
}

pub fn setup(server: &super::TestServer, email: &str) -> Setup {
    let user = super::signed_in_user(server, email);
    let daemon = super::TestDaemon::start(&user);
    let mut c = daemon.connect();
    let uid = user_id(&mut c);
    Setup {
        user,
        daemon,
        c,
        uid,
    }
}
