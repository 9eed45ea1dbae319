//! A download's temporary files never hurt the user's files: they have names
//! no version can hold (`.dataerai-partial-<random>`), are created with
//! `O_EXCL | O_NOFOLLOW`, and a symlink planted under one is never followed.
//! A version whose file names collide is refused before anything is written.

mod common;

use std::path::Path;

use common::transfers::{start_chunked_download, wait_done, wait_progress};
use common::{
    fresh_user, partial_files, read, signed_in_user, test_bytes, write_file, TestDaemon, TestServer,
};
use serde_json::json;

const MIB: usize = 1024 * 1024;

fn stderr_json(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    serde_json::from_str(stderr.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_version_whose_names_collide_is_refused_naming_them() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "ada@lab.org");
    // `x` and `x.dataerai-partial`: older releases downloaded `x` through the
    // other's name and reported success with one file missing.
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("x"), b"the real x").unwrap();
    std::fs::write(src.path().join("x.dataerai-partial"), b"another file").unwrap();
    let up = user.upload_json(src.path(), "colliding", &[]);
    let asset = up["asset_id"].as_str().unwrap();

    let dest = tempfile::tempdir().unwrap();
    let out = user.download(asset, dest.path(), &["--json"]);
    let err = stderr_json(&out);
    assert_eq!(err["error"]["code"], "ERR_INVALID_INPUT", "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"x\"") && message.contains("\"x.dataerai-partial\""),
        "{message}"
    );
    assert_eq!(entries(dest.path()), 0, "nothing is written");
}

#[test]
fn a_symlink_at_the_old_partial_name_is_left_alone() {
    let (_server, user, work) = fresh_user("bo@lab.org");
    let data = test_bytes(300_000, 3);
    let up = user.upload_new_file(work.path(), "scan.bin", &data);
    let asset = up["asset_id"].as_str().unwrap();

    // Someone plants `<name>.dataerai-partial` pointing at a file of the user's.
    let victim = write_file(work.path(), "victim.txt", b"precious");
    let dest = work.path().join("dl");
    std::fs::create_dir(&dest).unwrap();
    let planted = dest.join("scan.bin.dataerai-partial");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();

    let down = user.download_json(asset, &dest, &[]);
    assert_eq!(down["files"][0]["skipped"], false);
    assert_eq!(read(dest.join("scan.bin")), data);
    assert_eq!(read(&victim), b"precious", "the link was followed");
    assert!(std::fs::symlink_metadata(&planted).unwrap().is_symlink());
    assert!(partial_files(&dest).is_empty());
}

#[test]
fn a_symlink_swapped_in_for_the_partial_file_is_never_followed() {
    let (_server, user, work) = fresh_user("cy@lab.org");
    let data = test_bytes(12 * MIB, 4);
    let up = user.upload_new_file(work.path(), "big.bin", &data);

    let mut daemon =
        TestDaemon::start_with_env(&user, &[("DATAERAI_FAULTS", "chunk_delay_ms=150")]);
    let mut c = daemon.connect();
    let dest = work.path().join("dl");
    let tid = start_chunked_download(&mut c, &up["asset_id"], &dest);
    wait_progress(&mut c, &tid, 2 * MIB);
    c.ok("transfer.pause", json!({"transfer_id": tid}));
    let t = wait_done_or_paused(&mut c, &tid);
    assert_eq!(t["state"], "paused", "{t}");

    // Replace the partial file by a link to a file of the user's, then resume.
    let partial = partial_files(&dest);
    assert_eq!(partial.len(), 1, "{partial:?}");
    let victim = write_file(work.path(), "victim.txt", b"precious");
    std::fs::remove_file(&partial[0]).unwrap();
    std::os::unix::fs::symlink(&victim, &partial[0]).unwrap();

    daemon.restart(&user, &[], &[]);
    let mut c = daemon.connect();
    c.ok("transfer.resume", json!({"transfer_id": tid}));
    let t = wait_done(&mut c, &tid);
    assert_eq!(t["state"], "completed", "{t}");
    assert_eq!(read(&victim), b"precious", "the planted link was followed");
    assert_eq!(read(dest.join("big.bin")), data);
    assert!(partial_files(&dest).is_empty());
}

/// Wait until `tid` is paused (or finished).
fn wait_done_or_paused(c: &mut common::RpcClient, tid: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let t = c.ok("transfer.get", json!({"transfer_id": tid}));
        if matches!(
            t["state"].as_str(),
            Some("paused" | "completed" | "failed" | "cancelled")
        ) || std::time::Instant::now() > deadline
        {
            return t;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
