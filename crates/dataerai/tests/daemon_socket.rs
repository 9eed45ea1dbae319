//! The daemon's socket behaviour, with a real daemon process (no server needed:
//! these cover the protocol, socket handling and local validation).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::time::Duration;

use common::{write_file, TestDaemon, UserEnv};
use serde_json::json;

#[test]
fn ping_protocol_errors_and_connection_survives() {
    let user = UserEnv::new();
    let daemon = TestDaemon::start(&user);
    let mut c = daemon.connect();

    let r = c.ok("daemon.ping", json!(null));
    assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r["pid"], daemon.child.id());
    assert_eq!(r["socket_path"], daemon.socket.to_string_lossy().as_ref());
    // `{}` params work too; unknown params are refused with ERR_INVALID_INPUT.
    c.ok("daemon.ping", json!({}));
    let (_, code) = c.err("daemon.ping", json!({"bogus": 1}));
    assert_eq!(code, "ERR_INVALID_INPUT");

    // Bad JSON: parse error with a null id, connection stays usable.
    c.send_raw(b"{this is not json\n");
    let v = c.read_response();
    assert_eq!(v["error"]["code"], -32700);
    assert_eq!(v["error"]["data"]["code"], "ERR_INVALID_INPUT");
    assert!(v["id"].is_null());

    // Not a request object.
    c.send_raw(b"[1,2,3]\n");
    assert_eq!(c.read_response()["error"]["code"], -32600);

    // Oversized line (> 1 MiB): refused with -32600, then the connection still works.
    let mut big =
        b"{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"daemon.ping\",\"params\":{\"x\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1024 * 1024 + 10));
    big.extend_from_slice(b"\"}}\n");
    c.send_raw(&big);
    let v = c.read_response();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert_eq!(v["error"]["data"]["code"], "ERR_INVALID_INPUT");
    c.ok("daemon.ping", json!({}));

    // Unknown method.
    let (code, data) = c.err("no.such.method", json!({}));
    assert_eq!(code, -32601);
    assert_eq!(data, "ERR_INVALID_INPUT");

    // Params given as a list are refused.
    let (code, _) = c.err("daemon.ping", json!([1]));
    assert_eq!(code, -32602);

    // Several requests in flight at once on one connection: all answered.
    c.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"daemon.ping\"}\n{\"jsonrpc\":\"2.0\",\"id\":\"b\",\"method\":\"transfer.list\"}\n");
    let mut ids = vec![
        c.read_response()["id"].clone(),
        c.read_response()["id"].clone(),
    ];
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(ids, vec![json!("a"), json!("b")]);
}

#[test]
fn application_errors_carry_err_codes() {
    let user = UserEnv::new();
    let daemon = TestDaemon::start(&user);
    let mut c = daemon.connect();

    // Nobody signed in.
    let (code, data) = c.err("auth.status", json!({}));
    assert_eq!(code, -32000);
    assert_eq!(data, "ERR_AUTH_REQUIRED");
    let v = c.call("auth.status", json!({}));
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("dataerai auth login"));

    // Validation happens before anything else (and before the auth check).
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.bin");
    let v = c.call(
        "asset.upload",
        json!({"local_path": missing, "title": "t", "owner_type": "user", "owner_id": "u"}),
    );
    assert_eq!(v["error"]["data"]["code"], "ERR_INVALID_INPUT");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("file not found"),
        "{v}"
    );

    let file = write_file(tmp.path(), "f.bin", b"data");
    let base = json!({"local_path": file, "title": "t", "owner_type": "user", "owner_id": "u"});
    for (k, bad) in [
        ("owner_type", json!("team")),
        ("title", json!("")),
        ("metadata", json!("not an object")),
        ("chunk_size_mb", json!(0)),
        ("chunk_size_mb", json!(513)),
        ("unexpected", json!(1)),
    ] {
        let mut p = base.clone();
        p[k] = bad;
        let (_, data) = c.err("asset.upload", p.clone());
        assert_eq!(data, "ERR_INVALID_INPUT", "{p}");
    }
    // A missing required parameter.
    let (_, data) = c.err("asset.upload", json!({"local_path": file}));
    assert_eq!(data, "ERR_INVALID_INPUT");
    // Valid parameters, but not signed in.
    let (_, data) = c.err("asset.upload", base);
    assert_eq!(data, "ERR_AUTH_REQUIRED");

    // Download into something that is not a directory.
    let (_, data) = c.err("asset.download", json!({"asset_id": "x", "dest_dir": file}));
    assert_eq!(data, "ERR_INVALID_INPUT");

    let (_, data) = c.err(
        "relationship.create",
        json!({"from_asset_id": "a", "to_asset_id": "b", "relationship_type": "derived_from", "analysis_mode": "sideways"}),
    );
    assert_eq!(data, "ERR_INVALID_INPUT");

    let (_, data) = c.err("transfer.get", json!({"transfer_id": "nope"}));
    assert_eq!(data, "ERR_NOT_FOUND");
    assert_eq!(c.ok("transfer.list", json!({}))["items"], json!([]));
}

#[test]
fn socket_is_private_single_instance_and_cleaned_up() {
    let user = UserEnv::new();
    let mut daemon = TestDaemon::start(&user);
    let mode = std::fs::metadata(&daemon.socket)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let dmode = std::fs::metadata(daemon.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dmode & 0o777, 0o700);

    // A second daemon on the same socket refuses to start, with exit code 2.
    let out = user
        .cmd()
        .arg("daemon")
        .arg("--socket")
        .arg(&daemon.socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    // …and the first one still answers.
    daemon.connect().ok("daemon.ping", json!({}));

    // daemon.shutdown answers, removes the socket and exits 0.
    let mut c = daemon.connect();
    assert_eq!(
        c.ok("daemon.shutdown", json!({})),
        json!({"stopping": true})
    );
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!daemon.socket.exists());
}

#[test]
fn stale_socket_is_replaced_and_sigterm_cleans_up() {
    let user = UserEnv::new();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stale.sock");
    // A socket file nobody listens on any more.
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut daemon = TestDaemon::start_at(&user, dir, socket.clone());
    daemon.connect().ok("daemon.ping", json!({}));

    // SIGTERM: the socket file is removed.
    // SAFETY: kill(2) only sends a signal to our own child process.
    unsafe { libc::kill(daemon.child.id() as i32, libc::SIGTERM) };
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(!socket.exists());
}

#[test]
fn refuses_to_replace_a_regular_file() {
    let user = UserEnv::new();
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "not-a-socket", b"precious");
    let out = user
        .cmd()
        .arg("daemon")
        .arg("--socket")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}
