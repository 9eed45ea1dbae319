//! The daemon against hostile input with real processes: malformed and
//! oversized JSON-RPC lines get clean errors, tokens never reach the (debug)
//! log, and connections from another uid are refused.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::sign_in::{credentials, secrets};
use common::{daemon_log, debug_daemon, signed_in_user, TestDaemon, TestServer, UserEnv};
use serde_json::{json, Value};

#[test]
fn hostile_socket_input_gets_clean_errors_and_tokens_never_reach_the_log() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "hostile@example.org");
    let daemon = debug_daemon(&user);
    let mut c = daemon.connect();

    // Invalid UTF-8 in a line: a parse error, the connection survives.
    c.send_raw(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.\xff\xfe\"}\n");
    let v = c.read_response();
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert_eq!(v["error"]["data"]["code"], "ERR_INVALID_INPUT");
    assert!(v["error"]["message"].as_str().unwrap().contains("UTF-8"));

    // Deeply nested params: refused before parsing, not a stack overflow.
    let deep = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.ping\",\"params\":{{\"a\":{}{}}}}}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    c.send_raw(deep.as_bytes());
    let v = c.read_response();
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("nested"));

    // Nesting without the closing brackets (and no newline inside): same.
    c.send_raw(format!("{}\n", "{\"a\":".repeat(10_000)).as_bytes());
    assert_eq!(c.read_response()["error"]["code"], -32600);

    // Huge params under the line cap: an ordinary application error.
    let huge: serde_json::Map<String, Value> = (0..20_000)
        .map(|i| (format!("k{i}"), json!("v".repeat(20))))
        .collect();
    let (code, data) = c.err(
        "asset.set_metadata",
        json!({"asset_id": "00000000-0000-0000-0000-000000000000", "metadata": huge}),
    );
    assert!(code < 0);
    assert!(data.starts_with("ERR_"), "{data}");

    // Wrong types everywhere: invalid params, never a crash.
    for bad in [
        json!({"jsonrpc": "2.0", "id": 3, "method": "project.create", "params": {"name": 5}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "project.add_member", "params": {"project_id": [], "email": {}, "role": null}}),
        json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "daemon.ping"}),
        json!({"jsonrpc": "2.0", "id": 5, "method": null}),
        json!({"jsonrpc": "2.0", "id": 6, "method": "asset.upload", "params": "x"}),
    ] {
        c.send_raw(format!("{bad}\n").as_bytes());
        let v = c.read_response();
        assert!(v["error"]["code"].as_i64().unwrap() < 0, "{bad} → {v}");
        assert!(v["error"]["data"]["code"].is_string(), "{v}");
    }

    // A notification (no id) gets no answer; a batch of junk lines gets one
    // answer each and the connection still works afterwards.
    c.send_raw(b"{\"jsonrpc\":\"2.0\",\"method\":\"daemon.ping\"}\n");
    let junk: &[&[u8]] = &[
        b"\x00\x01\x02",
        b"}",
        b"\"str\"",
        b"1e999999",
        b"null",
        b"{\"jsonrpc\":\"2.0\"}",
    ];
    for j in junk {
        let mut line = j.to_vec();
        line.push(b'\n');
        c.send_raw(&line);
    }
    for _ in junk {
        let v = c.read_response();
        assert!(v["error"]["code"].as_i64().unwrap() < 0, "{v}");
    }
    let r = c.ok("daemon.ping", json!({}));
    assert_eq!(r["pid"], daemon.child.id());

    // Calls that send the token, then: the token is nowhere in the debug log.
    let st = c.ok("auth.status", json!({}));
    assert_eq!(st["token_kind"], "pat");
    assert_eq!(st["user_email"], "hostile@example.org");
    c.ok("project.create", json!({"name": "p"}));
    let creds = credentials(&user);
    let mode = std::fs::metadata(user.config_dir.path().join("credentials"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let log = daemon_log(&daemon);
    assert!(
        log.contains("DEBUG"),
        "the daemon did not log at debug level"
    );
    for s in secrets(&creds) {
        assert!(!log.contains(&s), "a token appears in the daemon log");
    }
}

#[test]
fn connections_from_another_uid_are_refused() {
    // SAFETY: getuid has no preconditions.
    let root = unsafe { libc::getuid() } == 0;
    let runuser = std::path::Path::new("/usr/sbin/runuser").exists()
        || std::path::Path::new("/sbin/runuser").exists();
    let python = std::process::Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .is_ok_and(|s| s.success());
    if !(root && runuser && python) {
        eprintln!("skipped: needs root, runuser and python3 to connect as another user");
        return;
    }
    let user = UserEnv::new();
    let daemon = TestDaemon::start(&user);
    // Open the way to the socket (the test is root): only the peer check is left.
    let run_dir = daemon.socket.parent().unwrap();
    for d in [daemon.dir.path(), run_dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"daemon.ping"}\n')
    data = s.recv(65536)
    print("GOT", repr(data))
except (ConnectionResetError, BrokenPipeError) as e:
    print("GOT", "reset")
"#;
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "python3", "-c", script])
        .arg(&daemon.socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("GOT b''") || stdout.contains("GOT reset"),
        "another uid got an answer: {stdout}"
    );
    // The owner is still served, and the refusal was logged.
    let mut c = daemon.connect();
    c.ok("daemon.ping", json!({}));
    let log = daemon_log(&daemon);
    assert!(log.contains("refused a connection from uid 65534"), "{log}");
}
