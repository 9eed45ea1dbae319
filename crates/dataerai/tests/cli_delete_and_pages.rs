//! `dataerai list assets --limit N --all` pages through everything, and
//! `dataerai delete ID` removes an asset (then it is gone for list, search and get).

mod common;

use common::{signed_in_user, TestServer};

#[test]
fn list_pages_and_delete() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "dee@example.org");
    let work = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let f = work.path().join(format!("n{i}.txt"));
        std::fs::write(&f, format!("note {i}\n")).unwrap();
        let up = user.run_json(&[
            "upload",
            f.to_str().unwrap(),
            "--title",
            &format!("Note {i}"),
            "--user",
        ]);
        ids.push(up["asset_id"].as_str().unwrap().to_string());
    }
    let one = user.run_ok(&["list", "assets", "--user", "--limit", "2"]);
    assert!(
        one.contains("(2 of 3 assets; --all for every one)"),
        "{one}"
    );
    let all = user.run_json(&["list", "assets", "--user", "--limit", "1", "--all"]);
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "{all}");
    assert_eq!(all["total"], 3);

    let gone = user.run_ok(&["delete", &ids[1]]);
    assert!(
        gone.contains(&format!("Deleted asset {}", ids[1])),
        "{gone}"
    );
    let all = user.run_json(&["list", "assets", "--user", "--all"]);
    assert_eq!(all["total"], 2);
    assert_eq!(user.run_json(&["search", "note"])["total"], 2);
    let out = user.run(&["metadata", "get", &ids[1]]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERR_NOT_FOUND"));
    let out = user.run(&["delete", &ids[1]]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "deleting twice is a clear error"
    );
}
