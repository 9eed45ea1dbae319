//! `dataerai list assets|projects` and `dataerai versions` page with
//! `--limit N --all`, `dataerai delete ID` removes an asset (then it is gone for
//! list, search and get) and `dataerai delete ID --version C` one version.

mod common;

use common::{asset_id, fresh_user, write_file};

#[test]
fn list_pages_and_delete() {
    let (_server, user, work) = fresh_user("dee@example.org");
    let mut ids = Vec::new();
    for i in 0..3 {
        let f = write_file(work.path(), &format!("n{i}.txt"), format!("note {i}\n"));
        ids.push(asset_id(&user.upload_json(&f, &format!("Note {i}"), &[])));
    }
    let one = user.run_ok(&["list", "assets", "--user", "--limit", "2"]);
    assert!(
        one.contains("(2 of 3 assets; --limit N or --all for more)"),
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
    let err = user.run_err(&["metadata", "get", &ids[1]]);
    assert!(err.contains("ERR_NOT_FOUND"), "{err}");
    let out = user.run(&["delete", &ids[1]]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "deleting twice is a clear error"
    );
}

#[test]
fn versions_page_and_one_version_is_deleted() {
    let (_server, user, work) = fresh_user("ver@example.org");
    let f = write_file(work.path(), "v.txt", "one\n");
    let up = user.upload_json(&f, "V", &[]);
    let asset = asset_id(&up);
    let mut versions = vec![up["content_id"].as_str().unwrap().to_string()];
    for text in ["two\n", "three\n"] {
        std::fs::write(&f, text).unwrap();
        let v = user.run_json(&["upload", f.to_str().unwrap(), "--asset", &asset]);
        versions.push(v["content_id"].as_str().unwrap().to_string());
    }
    let page = user.run_ok(&["versions", &asset, "--limit", "1"]);
    assert!(page.contains(&versions[2]), "newest first: {page}");
    assert!(
        page.contains("(1 of 3 versions; --limit N or --all for more)"),
        "{page}"
    );
    let all = user.run_json(&["versions", &asset, "--limit", "1", "--all"]);
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "{all}");
    let projects = user.run_ok(&["list", "projects", "--limit", "5"]);
    assert!(projects.contains("(0 of 0 projects)"), "{projects}");

    let out = user.run_ok(&["delete", &asset, "--version", &versions[1]]);
    assert!(
        out.contains(&format!("Deleted version {} of asset {asset}", versions[1])),
        "{out}"
    );
    let left = user.run_json(&["versions", &asset]);
    let ids: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["content_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [versions[2].as_str(), versions[0].as_str()]);
    // The newest and then the last one: the last is refused with a hint.
    user.run_ok(&["delete", &asset, "--version", &versions[2]]);
    let err = user.run_err(&["delete", &asset, "--version", &versions[0]]);
    assert!(
        err.contains("ERR_CONFLICT") && err.contains("delete the asset instead"),
        "{err}"
    );
}
