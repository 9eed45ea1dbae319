//! Signing in with real processes: the device flow of `dataerai auth login`
//! (the test plays the person in the server's web pages), picked up by a
//! running daemon; access-token refresh and rotation with short token
//! lifetimes, by the daemon and the CLI, during long transfers too.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::sign_in::{
    credentials, device_login, device_signed_in_user, expires_at, hide_expiry, secrets,
    server_with_ttl, wait_past_expiry, DeviceLogin, PASSWORD,
};
use common::{daemon_log, debug_daemon, write_file, TestDaemon, TestServer, UserEnv};
use serde_json::{json, Value};

#[test]
fn device_login_status_and_logout_picked_up_by_a_running_daemon() {
    let server = TestServer::start_temp();
    server.create_user_with_password("alice@example.org", PASSWORD);
    let user = UserEnv::new();
    let daemon = debug_daemon(&user);
    let mut c = daemon.connect();
    let (_, code) = c.err("auth.status", json!({}));
    assert_eq!(code, "ERR_AUTH_REQUIRED");

    device_login(&server, &user, "alice@example.org");

    // The CLI and the (already running) daemon both see the new login.
    let st = user.run_json(&["auth", "status"]);
    assert_eq!(st["user_email"], "alice@example.org");
    assert_eq!(st["token_kind"], "oauth");
    assert!(st["expires_at"].is_string(), "{st}");
    let text = user.run_ok(&["auth", "status"]);
    assert!(text.contains("browser sign-in"), "{text}");
    let st = c.ok("auth.status", json!({}));
    assert_eq!(st["user_email"], "alice@example.org");
    assert_eq!(st["token_kind"], "oauth");
    let creds = credentials(&user);
    assert!(creds["access_token"]
        .as_str()
        .unwrap()
        .starts_with("dtr_at_"));
    assert!(creds["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("dtr_rt_"));
    let mode = std::fs::metadata(user.config_dir.path().join("credentials"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    c.ok("project.create", json!({"name": "after device login"}));

    // Logout: the daemon notices without a restart.
    user.run_ok(&["auth", "logout"]);
    let (msg, code) = c.err_msg("project.list", json!({}));
    assert_eq!(code, "ERR_AUTH_REQUIRED");
    assert!(msg.contains("dataerai auth login"), "{msg}");

    for s in secrets(&creds) {
        assert!(
            !daemon_log(&daemon).contains(&s),
            "a token is in the daemon log"
        );
    }
}

#[test]
fn a_denied_device_login_saves_nothing_and_fails() {
    let server = TestServer::start_temp();
    server.create_user_with_password("dora@example.org", PASSWORD);
    let user = UserEnv::new();
    let login = DeviceLogin::start(&user, &server.base);
    assert!(login.verification_uri.starts_with(&server.base));
    let (code, stdout, stderr) = login.decide_in_browser(&server.base, "dora@example.org", "deny");
    assert_ne!(code, Some(0), "{stdout}");
    assert!(stderr.contains("denied"), "{stderr}");
    assert!(!user.config_dir.path().join("credentials").exists());
}

#[test]
fn access_tokens_are_refreshed_and_rotated_and_an_old_refresh_token_is_refused() {
    let server = server_with_ttl(2);
    let user = device_signed_in_user(&server, "rita@example.org");
    let daemon = debug_daemon(&user);
    let mut c = daemon.connect();
    let project = c.ok("project.create", json!({"name": "refresh"}));
    let first = credentials(&user);

    // Past the access token's expiry, a daemon call still works and has
    // rotated the refresh token.
    wait_past_expiry(expires_at(&first));
    let page = c.ok("project.list", json!({}));
    assert_eq!(page["items"][0]["project_id"], project["project_id"]);
    let second = credentials(&user);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    let st = c.ok("auth.status", json!({}));
    let exp: chrono::DateTime<chrono::Utc> = st["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        exp > chrono::Utc::now(),
        "status shows an expired token: {st}"
    );

    // When the saved expiry is wrong, the server's 401 triggers the refresh
    // and the request is sent again.
    wait_past_expiry(hide_expiry(&user));
    let before_401 = credentials(&user);
    c.ok("project.list", json!({}));
    assert_ne!(
        credentials(&user)["refresh_token"],
        before_401["refresh_token"]
    );
    assert!(daemon_log(&daemon).contains("refused the access token (401)"));
    let second = credentials(&user);

    // The CLI (in-process) refreshes too, sharing the same file.
    wait_past_expiry(expires_at(&second));
    user.run_ok(&["list", "projects"]);
    let third = credentials(&user);
    assert_ne!(third["refresh_token"], second["refresh_token"]);

    // Spending an already-rotated refresh token is refused (and, per the
    // server's theft detection, ends the whole login).
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/oauth/token", server.base))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", "dataerai-cli"),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["error"], "invalid_grant");
    // Once the current access token has expired, nothing can refresh it.
    wait_past_expiry(expires_at(&credentials(&user)));
    let (msg, code) = c.err_msg("project.list", json!({}));
    assert_eq!(code, "ERR_AUTH_REQUIRED");
    assert!(msg.contains("dataerai auth login"), "{msg}");

    let log = daemon_log(&daemon);
    for creds in [&first, &second, &third] {
        for s in secrets(creds) {
            assert!(!log.contains(&s), "a token is in the daemon log");
        }
    }
}

/// An upload and a download that last longer than several access tokens.
#[cfg(feature = "fault-injection")]
#[test]
fn long_transfers_survive_access_token_expiry() {
    use common::transfers::wait_done;
    let server = server_with_ttl(2);
    let user = device_signed_in_user(&server, "lena@example.org");
    // 24 chunks × 400 ms / 4 in flight ≈ 2.4 s each way.
    let daemon = TestDaemon::start_with_env(
        &user,
        &[
            ("DATAERAI_FAULTS", "chunk_delay_ms=400"),
            ("DATAERAI_LOG", "debug"),
        ],
    );
    let mut c = daemon.connect();
    let src = tempfile::tempdir().unwrap();
    let data = common::test_bytes(24 * 1024 * 1024 + 5, 7);
    let path = write_file(src.path(), "long.bin", &data);
    let me = c.ok("auth.status", json!({}));
    // The first expiry is noticed by a 401 in the middle of the chunks.
    hide_expiry(&user);
    let before = credentials(&user);
    let r = c.ok(
        "asset.upload",
        json!({"local_path": path, "title": "long", "owner_type": "user",
               "owner_id": me["user_id"], "chunk_size_mb": 1}),
    );
    let tid = r["transfer_id"].as_str().unwrap().to_string();
    let done = wait_done(&mut c, &tid);
    assert_eq!(done["state"], "completed", "{done}");
    let after = credentials(&user);
    assert_ne!(
        after["refresh_token"], before["refresh_token"],
        "no refresh happened"
    );

    let out = tempfile::tempdir().unwrap();
    let r = c.ok(
        "asset.download",
        json!({"asset_id": r["asset_id"], "dest_dir": out.path(), "chunk_size_mb": 1}),
    );
    let tid = r["transfer_id"].as_str().unwrap().to_string();
    let done = wait_done(&mut c, &tid);
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(std::fs::read(out.path().join("long.bin")).unwrap(), data);
    assert_ne!(credentials(&user)["refresh_token"], after["refresh_token"]);
    let log = std::fs::read_to_string(daemon.dir.path().join("daemon.log")).unwrap();
    assert!(
        log.contains("refused the access token (401)"),
        "no 401 was seen"
    );
}
