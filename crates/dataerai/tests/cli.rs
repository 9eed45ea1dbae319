//! The CLI against a real `dataerai-server`.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{
    fresh_user, new_user_token, read, signed_in_user, signed_in_user_with_scopes, test_bytes,
    write_file, TestServer, UserEnv,
};
use serde_json::json;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A clean failure: non-zero exit, `error: … (CODE)`, no panic.
fn assert_fails_with(out: &std::process::Output, code: &str) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure, stderr: {err}");
    assert!(
        err.contains("error: ") && err.contains(&format!("({code})")),
        "stderr: {err}"
    );
    assert!(!err.contains("panicked"), "stderr: {err}");
    err
}

#[test]
fn auth_login_status_logout() {
    let server = TestServer::start_temp();
    let token = new_user_token(&server, "ada@example.org", "read,write");
    let user = UserEnv::new();
    let creds = user.config_dir.path().join("credentials");

    // A wrong token is refused and nothing is saved.
    let out = user.login_with(&server.base, "not-a-real-token");
    assert_fails_with(&out, "ERR_AUTH_REQUIRED");
    assert!(!creds.exists());

    // An unreachable server names the URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let err = assert_fails_with(&user.login_with(&dead, &token), "ERR_SERVER_UNREACHABLE");
    assert!(err.contains(&dead), "{err}");

    user.login(&server.base, &token);
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved = String::from_utf8(read(&creds)).unwrap();
    assert!(saved.contains("ada@example.org"));

    let human = user.run_ok(&["auth", "status"]);
    assert!(
        human.contains("ada@example.org") && human.contains(&server.base),
        "{human}"
    );
    let st = user.run_json(&["auth", "status"]);
    assert_eq!(st["user_email"], "ada@example.org");
    assert_eq!(st["signed_in"], true);
    assert!(
        st["scopes"].as_array().unwrap().contains(&json!("write")),
        "{st}"
    );

    // The token never shows up in output.
    assert!(!human.contains(&token));

    user.run_ok(&["auth", "logout"]);
    assert!(!creds.exists());
    let err = assert_fails_with(&user.run(&["auth", "status"]), "ERR_AUTH_REQUIRED");
    assert!(err.contains("dataerai auth login"), "{err}");
}

#[test]
fn upload_download_round_trip_and_metadata() {
    let (_server, user, work) = fresh_user("bo@example.org");

    // Multi-chunk, size not a multiple of the chunk size.
    let data = test_bytes(2 * 1024 * 1024 + 512 * 1024 + 17, 1);
    let src = write_file(work.path(), "scan.bin", &data);
    let extra = ["--chunk-size-mb", "1", "--tag", "raw", "--tag", "tem"];
    let metadata = ["--metadata", r#"{"voltage_kv": 300}"#];
    let up = user.upload_json(&src, "Scan 1", &[&extra[..], &metadata[..]].concat());
    assert_eq!(up["total_bytes"], data.len());
    assert_eq!(up["chunk_count"], 3);
    let asset_id = up["asset_id"].as_str().unwrap().to_string();
    assert_eq!(
        up["files"][0]["checksum"],
        format!("blake3:{}", blake3::hash(&data).to_hex())
    );

    let dest = work.path().join("out/nested");
    let down = user.download_json(&asset_id, &dest, &["--chunk-size-mb", "1"]);
    let local = down["files"][0]["local_path"].as_str().unwrap();
    assert_eq!(read(local), data);
    assert_eq!(down["content_id"], up["content_id"]);
    let names: Vec<_> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("scan.bin")],
        "partial files left behind"
    );

    // Human-readable download replaces the file atomically.
    let out = user.run_ok(&["download", &asset_id, "-o", dest.to_str().unwrap()]);
    assert!(out.contains("scan.bin"), "{out}");
    assert_eq!(read(dest.join("scan.bin")), data);

    // A 0-byte file.
    let empty = write_file(work.path(), "empty.dat", b"");
    let up0 = user.upload_json(&empty, "Empty", &[]);
    assert_eq!(up0["total_bytes"], 0);
    assert_eq!(up0["chunk_count"], 1);
    let down0 = user.download_json(up0["asset_id"].as_str().unwrap(), &dest, &[]);
    let p = down0["files"][0]["local_path"].as_str().unwrap();
    assert_eq!(std::fs::metadata(p).unwrap().len(), 0);

    // Metadata get/set.
    let meta = user.run_json(&["metadata", "get", &asset_id]);
    assert_eq!(meta["title"], "Scan 1");
    assert_eq!(meta["tags"], json!(["raw", "tem"]));
    assert_eq!(meta["metadata"]["voltage_kv"], 300);
    let meta = user.run_json(&[
        "metadata",
        "set",
        &asset_id,
        "--title",
        "Scan 1b",
        "--set",
        "sample=Si",
        "--set",
        "temp_k=4.2",
    ]);
    assert_eq!(meta["title"], "Scan 1b");
    assert_eq!(meta["metadata"]["voltage_kv"], 300);
    assert_eq!(meta["metadata"]["sample"], "Si");
    assert_eq!(meta["metadata"]["temp_k"], 4.2);

    // Listing.
    let list = user.run_json(&["list", "assets", "--user"]);
    let ids: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["asset_id"].clone())
        .collect();
    assert!(ids.contains(&json!(asset_id)), "{list}");

    // Relationship and its duplicate.
    let link = [
        "link",
        up0["asset_id"].as_str().unwrap(),
        &asset_id,
        "--type",
        "derived_from",
    ];
    let qualifiers = [
        "--analysis-mode",
        "non_destructive",
        "--note",
        "blank reference",
        "--time",
        "2024-05-01T12:00:00+02:00",
    ];
    let rel = user.run_json(&[&link[..], &qualifiers[..]].concat());
    assert_eq!(rel["type"], "derived_from");
    assert_eq!(rel["related_asset"]["id"], json!(asset_id));
    assert_eq!(rel["qualifiers"]["note"], "blank reference");
    assert_eq!(rel["qualifiers"]["time"], "2024-05-01T10:00:00Z");
    assert_fails_with(&user.run(&link), "ERR_RELATIONSHIP_EXISTS");
}

#[test]
fn projects_and_project_uploads() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "cy@example.org");
    let p = user.run_json(&[
        "project",
        "create",
        "Beamtime 42",
        "--description",
        "May run",
    ]);
    let pid = p["project_id"].as_str().unwrap().to_string();
    assert_eq!(p["name"], "Beamtime 42");
    assert!(p["root_collection_id"].is_string());
    let human = user.run_ok(&["list", "projects"]);
    assert!(human.contains("Beamtime 42"), "{human}");

    let work = tempfile::tempdir().unwrap();
    let f = write_file(work.path(), "spectrum.csv", b"1,2,3\n");
    let up = user.upload_to_project(&f, "Spectrum", &pid, &[]);
    let list = user.run_json(&["list", "assets", "--project", &pid]);
    assert_eq!(list["items"][0]["asset_id"], up["asset_id"]);
    let coll = user.run_json(&[
        "list",
        "assets",
        "--collection",
        p["root_collection_id"].as_str().unwrap(),
    ]);
    assert_eq!(coll["items"][0]["asset_id"], up["asset_id"]);
}

#[test]
fn clear_errors_and_exit_codes() {
    let (_server, user, work) = fresh_user("di@example.org");
    let f = write_file(work.path(), "x.bin", b"abc");

    let missing = std::path::Path::new("/no/such/file");
    let err = assert_fails_with(&user.upload(missing, "t", &[]), "ERR_INVALID_INPUT");
    assert!(err.contains("file not found: /no/such/file"), "{err}");
    let nobody = "00000000-0000-0000-0000-000000000000";
    for (case, out, code) in [
        (
            "bad metadata",
            user.upload(&f, "t", &["--metadata", "{oops"]),
            "ERR_INVALID_INPUT",
        ),
        (
            "chunk size 0",
            user.upload(&f, "t", &["--chunk-size-mb", "0"]),
            "ERR_INVALID_INPUT",
        ),
        ("empty title", user.upload(&f, "", &[]), "ERR_INVALID_INPUT"),
        (
            "unknown asset",
            user.download(nobody, work.path(), &[]),
            "ERR_NOT_FOUND",
        ),
        (
            "download into a regular file",
            user.download("x", &f, &[]),
            "ERR_INVALID_INPUT",
        ),
    ] {
        eprintln!("case: {case}");
        assert_fails_with(&out, code);
    }
    // Failed validation must not leave an asset behind.
    let list = user.run_json(&["list", "assets", "--user"]);
    assert_eq!(list["total"], 0, "{list}");

    // Usage errors come from clap (exit 2), not a panic.
    let out = user.run(&["upload", f.to_str().unwrap(), "--title", "t"]);
    assert_eq!(out.status.code(), Some(2));

    // Signed out: every command says how to sign in.
    let anon = UserEnv::new();
    let err = assert_fails_with(&anon.run(&["list", "projects"]), "ERR_AUTH_REQUIRED");
    assert!(err.contains("dataerai auth login"), "{err}");
}

/// Flip one byte in the largest file under `dir` (the stored blob of the only upload).
fn corrupt_largest_file(dir: &std::path::Path) {
    fn walk(d: &std::path::Path, best: &mut Option<(u64, std::path::PathBuf)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(&e.path(), best);
            } else if best.as_ref().is_none_or(|b| m.len() > b.0) {
                *best = Some((m.len(), e.path()));
            }
        }
    }
    let mut best = None;
    walk(dir, &mut best);
    let (_, path) = best.unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn corrupted_download_is_refused_and_leaves_nothing() {
    let (server, user, work) = fresh_user("hal@example.org");
    let up = user.upload_new_file(work.path(), "data.bin", &test_bytes(4 * 1024 * 1024, 9));
    corrupt_largest_file(&dataerai_testkit::blob_content_dir(&server.data_dir));

    let dest = work.path().join("dl");
    let out = user.download(up["asset_id"].as_str().unwrap(), &dest, &[]);
    assert_fails_with(&out, "ERR_INTEGRITY");
    // Neither a final file nor a partial one.
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
}

/// On tmpfs the server (uploads) and the daemon (downloads) write each piece
/// as it comes off the socket, not in batches (`dataerai_proto::io`): a file
/// of several chunks, stored on tmpfs and downloaded to tmpfs, comes back
/// whole; a stored byte flipped is refused with ERR_INTEGRITY and leaves
/// neither a final nor a partial file.
#[cfg(target_os = "linux")]
#[test]
fn transfers_on_tmpfs_come_back_whole_and_checked() {
    let shm = std::path::Path::new("/dev/shm");
    assert!(shm.is_dir(), "this test needs a tmpfs at /dev/shm");
    let data = tempfile::tempdir_in(shm).unwrap();
    let server = TestServer::start(data.path());
    let user = signed_in_user(&server, "tam@example.org");
    let work = tempfile::tempdir_in(shm).unwrap();
    let bytes = test_bytes(9 * 1024 * 1024 + 4321, 7);
    let f = write_file(work.path(), "data.bin", &bytes);
    let chunks = ["--chunk-size-mb", "2"];
    let up = user.upload_json(&f, "on tmpfs", &chunks);
    let id = up["asset_id"].as_str().unwrap();

    let dest = work.path().join("dl");
    user.download_json(id, &dest, &chunks);
    assert!(read(dest.join("data.bin")) == bytes, "the download differs");

    corrupt_largest_file(&dataerai_testkit::blob_content_dir(&server.data_dir));
    let again = work.path().join("dl-again");
    assert_fails_with(&user.download(id, &again, &chunks), "ERR_INTEGRITY");
    assert_eq!(std::fs::read_dir(&again).unwrap().count(), 0);
}

#[test]
fn read_only_token_cannot_upload() {
    let server = TestServer::start_temp();
    let user = signed_in_user_with_scopes(&server, "jo@example.org", "read");
    let st = user.run_json(&["auth", "status"]);
    assert_eq!(st["scopes"], json!(["read"]));

    let work = tempfile::tempdir().unwrap();
    let f = write_file(work.path(), "x.bin", b"abc");
    assert_fails_with(&user.upload(&f, "t", &[]), "ERR_PERMISSION_DENIED");
    assert_eq!(user.run_json(&["list", "assets"])["total"], 0);
}
