//! `dataerai upload` / `download` hand their transfer to the daemon (started
//! when none answers) and follow it: a CLI killed mid-upload leaves the
//! transfer to the daemon, and running the command again with the same
//! `--idempotency-key` follows it to its end — one asset, every byte sent once.
#![cfg(feature = "fault-injection")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{fresh_user, read, test_bytes, wait_until, write_file, RpcClient};
use serde_json::json;

const MIB: usize = 1024 * 1024;

#[test]
fn a_killed_cli_upload_is_finished_by_the_daemon_and_a_rerun_follows_it() {
    let (server, user, work) = fresh_user("kim@lab.org");
    let data = test_bytes(12 * MIB, 21);
    let src = write_file(work.path(), "run.bin", &data);
    let upload = |extra_env: &[(&str, &str)]| {
        let mut cmd = user.cmd();
        cmd.args([
            "--json",
            "upload",
            src.to_str().unwrap(),
            "--title",
            "run",
            "--user",
        ])
        .args(["--chunk-size-mb", "1", "--idempotency-key", "run-7"]);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd
    };

    // A slow daemon (started by the CLI, inheriting its environment).
    let mut first = upload(&[("DATAERAI_FAULTS", "chunk_delay_ms=150")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = user.socket();
    wait_until("the CLI's daemon", Duration::from_secs(30), || {
        socket.exists().then_some(())
    });
    let mut c = RpcClient::connect(&socket);
    let tid = wait_until("the upload to move", Duration::from_secs(60), || {
        let list = c.ok("transfer.list", json!({}));
        let t = list["items"].as_array()?.first()?.clone();
        (t["bytes_done"].as_u64()? > 0).then(|| t["transfer_id"].as_str().unwrap().to_string())
    });
    first.kill().unwrap(); // SIGKILL: no chance to clean up or cancel
    first.wait().unwrap();

    // The daemon carries on; the re-run follows the same transfer.
    let again = user.upload_json(
        &src,
        "run",
        &["--chunk-size-mb", "1", "--idempotency-key", "run-7"],
    );
    assert_eq!(again["transfer_id"], tid.as_str(), "{again}");
    assert_eq!(again["total_bytes"], data.len());
    let assets = user.run_json(&["list", "assets", "--user"]);
    assert_eq!(assets["total"], 1, "{assets}");
    assert_eq!(
        server.metric("dataerai_upload_bytes_total"),
        data.len() as u64,
        "every byte sent once"
    );
    let t = c.ok("transfer.get", json!({"transfer_id": tid}));
    assert_eq!(t["state"], "completed", "{t}");

    // And the bytes are right (the download goes through a daemon as well).
    let dest = work.path().join("back");
    let down = user.download_json(again["asset_id"].as_str().unwrap(), &dest, &[]);
    assert_eq!(read(down["files"][0]["local_path"].as_str().unwrap()), data);
}
