//! `dataerai collection …`: ensure a path (and its project), create, list and
//! draw the tree with asset counts, rename, move a collection and an asset,
//! refuse to delete a non-empty collection, delete an empty one, download a
//! collection into a mirroring folder tree, and the daemon's methods for the
//! same (`collection.*`, `asset.move`).

mod common;

use common::{asset_id, signed_in_user, write_file, TestDaemon, TestServer};
use serde_json::json;

#[test]
fn collections_are_managed_drawn_and_downloaded_from_the_command_line() {
    let server = TestServer::start_temp();
    let user = signed_in_user(&server, "tree@example.org");

    let err = user.run_err(&["collection", "ensure", "Beamline / raw"]);
    assert!(err.contains("ERR_NOT_FOUND"), "{err}");
    let raw = user.run_json(&["collection", "ensure", "Beamline / raw", "--create-project"]);
    assert_eq!(raw["path"], "Beamline/raw");
    let project = raw["project_id"].as_str().unwrap().to_string();
    let raw_id = raw["collection_id"].as_str().unwrap().to_string();
    let printed = user.run_ok(&["collection", "ensure", "Beamline/raw"]);
    assert!(
        printed.contains(&raw_id) && printed.contains(&project),
        "{printed}"
    );

    let day = user.run_json(&[
        "collection",
        "create",
        &project,
        "day 1",
        "--parent",
        &raw_id,
        "--description",
        "first",
    ]);
    let day_id = day["collection_id"].as_str().unwrap().to_string();
    assert_eq!(day["description"], "first");
    let analysis = user.run_json(&["collection", "create", &project, "analysis"]);
    let analysis_id = analysis["collection_id"].as_str().unwrap().to_string();
    let out = user.run(&["collection", "create", &project, "analysis"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERR_CONFLICT"));

    let work = tempfile::tempdir().unwrap();
    let file = write_file(work.path(), "frame.tif", b"frame bytes");
    let up = user.upload_to_project(&file, "Frame 1", &project, &["--collection", &day_id]);
    let asset = asset_id(&up);

    let tree = user.run_ok(&["collection", "list", &project, "--tree"]);
    let root_line = tree.lines().next().unwrap();
    assert!(
        root_line.starts_with("Beamline  (0 assets, 2 collections)"),
        "{tree}"
    );
    assert!(
        tree.contains(&format!("├── analysis  (0 assets)  {analysis_id}\n")),
        "{tree}"
    );
    assert!(
        tree.contains(&format!("└── raw  (0 assets, 1 collection)  {raw_id}\n")),
        "{tree}"
    );
    assert!(
        tree.contains(&format!("    └── day 1  (1 asset)  {day_id}\n")),
        "{tree}"
    );
    let listed = user.run_json(&["collection", "list", &project, "--parent", &raw_id]);
    assert_eq!(listed["total"], 1);
    let drawn = user.run_json(&["collection", "list", &project, "--tree"]);
    assert_eq!(drawn["children"].as_array().unwrap().len(), 2);

    // Rename, move a collection, move an asset; a non-empty collection stays.
    user.run_ok(&["collection", "rename", &day_id, "day one"]);
    let moved = user.run_json(&["collection", "move", &day_id, "--to", &analysis_id]);
    assert_eq!(moved["parent_id"], analysis_id.as_str());
    let out = user.run(&["collection", "move", &analysis_id, "--to", &day_id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ERR_INVALID_INPUT"));
    let out = user.run(&["collection", "rm", &analysis_id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ERR_CONFLICT") && err.contains("1 collection(s)"),
        "{err}"
    );

    // Download the tree: <dir>/<collection>/<sub-collection>/<title>/<file>.
    let dest = work.path().join("out");
    let got = user.run_json(&[
        "collection",
        "download",
        &analysis_id,
        dest.to_str().unwrap(),
    ]);
    assert_eq!(got["assets"].as_array().unwrap().len(), 1);
    let copy = dest
        .join("analysis")
        .join("day one")
        .join("Frame 1")
        .join("frame.tif");
    assert_eq!(std::fs::read(&copy).unwrap(), b"frame bytes");

    user.run_ok(&["collection", "move", "--asset", &asset, "--to", &raw_id]);
    user.run_ok(&["collection", "rm", &day_id]);
    let after = user.run_ok(&["collection", "list", &project, "--tree"]);
    assert!(
        after.contains(&format!("└── raw  (1 asset)  {raw_id}\n")),
        "{after}"
    );
    assert!(!after.contains("day one"), "{after}");

    // The same through the daemon's socket.
    let daemon = TestDaemon::start(&user);
    let mut rpc = daemon.connect();
    let sub = rpc.ok(
        "collection.create",
        json!({"project_id": project, "name": "via daemon", "parent_id": raw_id}),
    );
    let sub_id = sub["collection_id"].as_str().unwrap().to_string();
    let page = rpc.ok(
        "collection.list",
        json!({"project_id": project, "parent_id": raw_id}),
    );
    assert_eq!(page["total"], 1);
    rpc.ok(
        "collection.rename",
        json!({"collection_id": sub_id, "name": "renamed"}),
    );
    rpc.ok(
        "collection.move",
        json!({"collection_id": sub_id, "parent_id": analysis_id}),
    );
    let moved = rpc.ok(
        "asset.move",
        json!({"asset_id": asset, "collection_id": sub_id}),
    );
    assert_eq!(moved["collection_ids"], json!([sub_id]));
    let path = rpc.ok(
        "collection.ensure_path",
        json!({"path": "Beamline / analysis / renamed"}),
    );
    assert_eq!(path["collection_id"], sub_id.as_str());
    let plan = rpc.ok(
        "collection.download_plan",
        json!({"collection_id": analysis_id, "dest_dir": dest.to_str().unwrap()}),
    );
    assert_eq!(plan["items"][0]["asset_id"], asset.as_str());
    let (_, code) = rpc.err_msg("collection.delete", json!({"collection_id": sub_id}));
    assert_eq!(code, "ERR_CONFLICT");
    let (_, code) = rpc.err_msg("collection.ensure_path", json!({"path": "Beamline//x"}));
    assert_eq!(code, "ERR_INVALID_INPUT");
}
