//! Uploads whose start was cut short leave nothing on the server: a daemon
//! killed right after the server opened the session (before the transfer was
//! journaled) cleans up when it starts again — also when the server is down
//! at first — and a failed start whose clean-up cannot reach the server is
//! cleaned up later.

mod common;

use std::time::{Duration, Instant};

use common::transfers::{setup_with, upload_ok};
use common::{daemon_log, test_bytes, TestDaemon, TestServer};
use dataerai_client::ApiClient;
use dataerai_proto::api::UploadStatus;
use dataerai_proto::ErrorCode;
use serde_json::json;

/// The ids the `abort_after_session_open` fault printed before the daemon died.
fn ids_at_death(d: &TestDaemon) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = daemon_log(d);
        if let Some(line) = log.lines().find(|l| l.contains("fault: dying with asset")) {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "asset").unwrap();
            return (words[at + 1].to_string(), words[at + 3].to_string());
        }
        assert!(Instant::now() < deadline, "the daemon did not die: {log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's view, straight over HTTP.
struct Server {
    rt: tokio::runtime::Runtime,
    client: ApiClient,
}

impl Server {
    fn new(server: &TestServer, email: &str) -> Server {
        let token = server.create_token(email, "read,write");
        Server {
            rt: tokio::runtime::Runtime::new().unwrap(),
            client: ApiClient::new(&server.base, &token).unwrap(),
        }
    }

    /// Whether the session still holds anything (is open).
    fn session_open(&self, upload_id: &str) -> bool {
        match self.rt.block_on(self.client.get_upload(upload_id)) {
            Ok(s) => s.status == UploadStatus::Open,
            Err(e) if e.code == ErrorCode::NotFound => false,
            Err(e) => panic!("cannot look session {upload_id} up: {e}"),
        }
    }

    fn asset_exists(&self, asset_id: &str) -> bool {
        match self.rt.block_on(self.client.get_asset(asset_id)) {
            Ok(_) => true,
            Err(e) if e.code == ErrorCode::NotFound => false,
            Err(e) => panic!("cannot look asset {asset_id} up: {e}"),
        }
    }
}

/// Poll `done` for up to `secs` seconds.
fn eventually(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn daemon_killed_after_the_session_opened_cleans_up_when_it_starts_again() {
    let mut server = TestServer::start_temp();
    let email = "ines@example.org";
    let (mut side, mut c, uid) = setup_with(&server, email, |u| {
        TestDaemon::start_with_env(u, &[("DATAERAI_FAULTS", "abort_after_session_open=1")])
    });
    let view = Server::new(&server, email);
    let file = side.work.path().join("a.bin");
    std::fs::write(&file, test_bytes(3 * 1024 * 1024, 4)).unwrap();
    let p = json!({"local_path": file, "title": "t", "owner_type": "user", "owner_id": uid});
    c.send("asset.upload", p);
    let (asset_id, upload_id) = ids_at_death(&side.daemon);
    assert!(view.session_open(&upload_id));

    // The server is down when the daemon comes back: the clean-up waits for it.
    server.kill();
    side.daemon.restart(&side.user, &[], &[]);
    std::thread::sleep(Duration::from_secs(2));
    server.restart(None);
    eventually(30, "the session is aborted and the asset deleted", || {
        !view.session_open(&upload_id) && !view.asset_exists(&asset_id)
    });
    // The daemon logs once both requests are answered, just after the server
    // shows the result: wait for the line rather than race it.
    eventually(10, "the daemon reports the clean-up", || {
        daemon_log(&side.daemon).contains("cleaned up after an abandoned upload start")
    });
}

#[test]
fn daemon_killed_while_a_new_version_starts_aborts_only_the_session() {
    let server = TestServer::start_temp();
    let email = "jon@example.org";
    let (mut side, mut c, uid) = setup_with(&server, email, TestDaemon::start);
    let view = Server::new(&server, email);
    let file = side.work.path().join("b.bin");
    std::fs::write(&file, test_bytes(64 * 1024, 5)).unwrap();
    let first = upload_ok(&mut c, &uid, &file, json!({}));
    let asset_id = first["asset_id"].as_str().unwrap().to_string();

    side.daemon.restart(
        &side.user,
        &[],
        &[("DATAERAI_FAULTS", "abort_after_session_open=1")],
    );
    let mut c = side.daemon.connect();
    std::fs::write(&file, test_bytes(2 * 1024 * 1024, 6)).unwrap();
    let p = json!({"local_path": file, "asset_id": asset_id});
    c.send("asset.upload", p);
    let (_, upload_id) = ids_at_death(&side.daemon);
    assert!(view.session_open(&upload_id));

    side.daemon.restart(&side.user, &[], &[]);
    eventually(30, "the session is aborted", || {
        !view.session_open(&upload_id)
    });
    assert!(view.asset_exists(&asset_id), "the existing asset stays");
}

#[test]
fn clean_up_that_cannot_reach_the_server_is_retried() {
    let server = TestServer::start_temp();
    let email = "kim@example.org";
    let (side, mut c, uid) = setup_with(&server, email, |u| {
        TestDaemon::start_with_env(
            u,
            &[("DATAERAI_FAULTS", "fail_session_open=1,fail_cleanups=2")],
        )
    });
    let file = side.work.path().join("c.bin");
    // Over the size a lone request takes (`small::single_file`): this is
    // about the session path's clean-up.
    std::fs::write(&file, test_bytes(2 * 1024 * 1024, 7)).unwrap();
    let p = json!({"local_path": file, "title": "lonely", "owner_type": "user", "owner_id": uid});
    let (_, code) = c.err_msg("asset.upload", p);
    assert_eq!(code, "ERR_INTERNAL");
    // The asset made for the upload outlived the first clean-up ...
    let log = daemon_log(&side.daemon);
    assert!(log.contains("trying again later"), "{log}");
    // ... and goes once a later one gets through.
    let listed = json!({"owner_type": "user", "owner_id": uid});
    eventually(
        20,
        "the asset made for the failed upload is deleted",
        || c.ok("asset.list", listed.clone())["total"] == 0,
    );
    // The daemon logs once both requests are answered, just after the server
    // shows the result: wait for the line rather than race it.
    eventually(10, "the daemon reports the clean-up", || {
        daemon_log(&side.daemon).contains("cleaned up after an abandoned upload start")
    });
}
