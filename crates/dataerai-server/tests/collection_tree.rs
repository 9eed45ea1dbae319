//! Collections as a tree over HTTP: create with a parent and a description,
//! sibling conflicts, listing by parent and children pages, rename and move
//! (and what they refuse), delete only when empty, moving assets, resolving
//! a path (normalised, created, ambiguous, concurrent), who may do what, and
//! the audit log. (Both databases: the store's conformance scenario
//! `collection_tree`.)

mod common;

use common::*;
use serde_json::{json, Value};

fn id(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_string()
}

async fn collection(api: &Api, project: &str, name: &str, parent: Option<&str>) -> Value {
    let mut body = json!({ "name": name });
    if let Some(p) = parent {
        body["parent_id"] = json!(p);
    }
    created(
        api.post(&format!("/api/v1/projects/{project}/collections"), body)
            .await,
    )
}

#[tokio::test]
async fn a_tree_is_created_listed_renamed_moved_and_deleted() {
    let (lab, [alice, bob]) = Lab::start(["alice@x.org", "bob@x.org"]);
    let api = &alice.api;
    let project = api.create_project("Lab").await;
    let other = api.create_project("Other").await;
    let (_, p) = api.get(&format!("/api/v1/projects/{project}")).await;
    let root = id(&p, "root_collection_id");

    let raw = created(
        api.post(
            &format!("/api/v1/projects/{project}/collections"),
            json!({"name": "raw", "description": "straight off the microscope"}),
        )
        .await,
    );
    assert_eq!(raw["description"], "straight off the microscope");
    assert_eq!(raw["parent_id"], root.as_str());
    let raw_id = id(&raw, "collection_id");
    let day = collection(api, &project, "2026-12-06", Some(&raw_id)).await;
    let day_id = id(&day, "collection_id");
    let processed = collection(api, &project, "processed", None).await;
    let processed_id = id(&processed, "collection_id");

    // Sibling names are unique (case-sensitive); the conflict names the sibling.
    let dup = api
        .post(
            &format!("/api/v1/projects/{project}/collections"),
            json!({"name": "raw"}),
        )
        .await;
    assert_err_mentions(&dup, CONFLICT, &raw_id);
    collection(api, &project, "Raw", None).await;

    // Listing: every collection, or the children of one (by name), paged with a total.
    let (s, all) = api
        .get(&format!("/api/v1/projects/{project}/collections"))
        .await;
    assert_eq!((s.as_u16(), all["total"].as_u64()), (200, Some(5)), "{all}");
    let (_, top) = api
        .get(&format!(
            "/api/v1/projects/{project}/collections?parent_id={root}&limit=2"
        ))
        .await;
    assert_eq!(top["total"], 3);
    assert_eq!(item_strs(&top, "name"), ["raw", "processed"]);
    let (_, kids) = api
        .get(&format!("/api/v1/collections/{raw_id}/children"))
        .await;
    assert_eq!(item_strs(&kids, "collection_id"), [day_id.as_str()]);
    let (_, got) = api.get(&format!("/api/v1/collections/{raw_id}")).await;
    assert_eq!(
        (got["child_count"].as_u64(), got["asset_count"].as_u64()),
        (Some(1), Some(0))
    );
    // A parent of another project is not one of this project's collections.
    let (_, o) = api.get(&format!("/api/v1/projects/{other}")).await;
    let other_root = id(&o, "root_collection_id");
    let r = api
        .get(&format!(
            "/api/v1/projects/{project}/collections?parent_id={other_root}"
        ))
        .await;
    assert_err(&r, NOT_FOUND);
    let r = api
        .get(&format!("/api/v1/projects/{project}/collections?bogus=1"))
        .await;
    assert_err(&r, INVALID_INPUT);

    // Rename and move, and what they refuse.
    let path = |c: &str| format!("/api/v1/collections/{c}");
    let (s, renamed) = api.patch(&path(&day_id), json!({"name": "day 1"})).await;
    assert_eq!(s, 200, "{renamed}");
    assert_eq!(renamed["name"], "day 1");
    for (case, c, body) in [
        ("nothing to change", &day_id, json!({})),
        ("rename the root", &root, json!({"name": "x"})),
        ("move the root", &root, json!({"parent_id": raw_id})),
        ("into itself", &raw_id, json!({"parent_id": raw_id})),
        ("into its subtree", &raw_id, json!({"parent_id": day_id})),
        (
            "into another project",
            &day_id,
            json!({"parent_id": other_root}),
        ),
        ("a control character", &day_id, json!({"name": "a\u{1b}b"})),
    ] {
        assert_err_for(case, &api.patch(&path(c), body).await, INVALID_INPUT);
    }
    let taken = api
        .patch(&path(&processed_id), json!({"name": "raw"}))
        .await;
    assert_err_for("onto a taken name", &taken, CONFLICT);
    let (s, moved) = api
        .patch(
            &path(&day_id),
            json!({"parent_id": processed_id, "name": "day one"}),
        )
        .await;
    assert_eq!(s, 200, "{moved}");
    assert_eq!(
        (moved["parent_id"].as_str(), moved["name"].as_str()),
        (Some(processed_id.as_str()), Some("day one"))
    );

    // Assets move between collections of their project only.
    let asset = api.project_asset(&project, "scan").await;
    let moved_asset = api.move_asset(&asset, &day_id).await;
    assert_eq!(moved_asset.0, 200, "{}", moved_asset.1);
    assert_eq!(moved_asset.1["collection_ids"], json!([day_id]));
    for (case, a, c) in [
        (
            "another project's collection",
            asset.clone(),
            other_root.clone(),
        ),
        ("an unknown collection", asset.clone(), "nope".to_string()),
        (
            "a personal asset",
            alice.personal_asset("mine").await,
            raw_id.clone(),
        ),
    ] {
        let r = api.move_asset(&a, &c).await;
        assert_err_for(case, &r, INVALID_INPUT);
    }
    let (_, search) = api
        .get(&format!("/api/v1/search?q=collection:{processed_id}"))
        .await;
    assert_eq!(search["total"], 0, "{search}");

    // Delete only when empty; never the root.
    assert_err_mentions(
        &api.delete(&path(&processed_id)).await,
        CONFLICT,
        "1 collection(s) and 0 asset(s)",
    );
    assert_err_mentions(
        &api.delete(&path(&day_id)).await,
        CONFLICT,
        "0 collection(s) and 1 asset(s)",
    );
    assert_err(&api.delete(&path(&root)).await, INVALID_INPUT);
    let back = api.move_asset(&asset, &raw_id).await;
    assert_eq!(back.0, 200, "{}", back.1);
    assert_eq!(api.delete(&path(&day_id)).await.0, 204);
    assert_err(&api.get(&path(&day_id)).await, NOT_FOUND);

    // Readers see, members write; outsiders get the 404 of an unknown id.
    assert!(api
        .set_role(&project, "bob@x.org", "viewer")
        .await
        .0
        .is_success());
    let bob = &bob.api;
    assert_eq!(
        bob.get(&format!("/api/v1/collections/{raw_id}/children"))
            .await
            .0,
        200
    );
    assert_err(
        &bob.patch(&path(&raw_id), json!({"name": "mine"})).await,
        PERMISSION_DENIED,
    );
    assert_err(&bob.delete(&path(&processed_id)).await, PERMISSION_DENIED);
    let r = bob.move_asset(&asset, &processed_id).await;
    assert_err(&r, PERMISSION_DENIED);
    assert_err(&bob.get(&path(&other_root)).await, NOT_FOUND);
    assert_err(
        &bob.patch(&path(&other_root), json!({"name": "x"})).await,
        NOT_FOUND,
    );

    // Every write is in the audit log.
    make_user_with_password(lab.path(), "root@x.org", "a long enough password", true);
    let admin = lab
        .server
        .api(&lab.server.create_token("root@x.org", "read"));
    assert_audited(
        &admin,
        &[
            "collection.created",
            "collection.updated",
            "collection.deleted",
            "asset.moved",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_path_is_resolved_and_created_once() {
    let (_lab, [alice, bob]) = Lab::start(["alice@x.org", "bob@x.org"]);
    let api = &alice.api;
    let ensure = |api: &Api, path: &str, create: bool| {
        let (api, body) = (api.clone(), json!({"path": path, "create_project": create}));
        async move { api.post("/api/v1/collections/ensure", body).await }
    };

    // Missing project: not found unless asked to create it.
    assert_err_mentions(
        &ensure(api, "abTEM/raw", false).await,
        NOT_FOUND,
        "create_project",
    );
    let (s, first) = ensure(api, " abTEM / notebook runs /tutorials ", true).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["path"], "abTEM/notebook runs/tutorials");
    assert_eq!(first["project_name"], "abTEM");
    let project = id(&first, "project_id");
    let (_, p) = api.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(p["role"], "owner");
    // Again, and concurrently: the same ids, nothing created twice.
    let runs = (0..6).map(|_| ensure(api, "abTEM/notebook runs/tutorials", true));
    for (s, again) in futures::future::join_all(runs).await {
        assert_eq!(s, 200, "{again}");
        assert_eq!(again, first);
    }
    let fresh = (0..6).map(|_| ensure(api, "abTEM/analysis/2026-12-06", false));
    let answers: Vec<_> = futures::future::join_all(fresh).await;
    for (s, a) in &answers {
        assert_eq!(*s, 200, "{a}");
        assert_eq!(a["collection_id"], answers[0].1["collection_id"]);
    }
    let (_, all) = api
        .get(&format!("/api/v1/projects/{project}/collections"))
        .await;
    assert_eq!(all["total"], 5, "{all}");
    // A bare project name is its root collection.
    let (_, bare) = ensure(api, "abTEM", false).await;
    assert_eq!(bare["collection_id"], p["root_collection_id"]);

    for bad in ["", "abTEM//x", "/abTEM", "abTEM/ /x", "abTEM/x/"] {
        assert_err_for(bad, &ensure(api, bad, true).await, INVALID_INPUT);
    }
    // Unknown fields are refused.
    let r = api
        .post(
            "/api/v1/collections/ensure",
            json!({"path": "abTEM", "create": true}),
        )
        .await;
    assert_err(&r, INVALID_INPUT);

    // A viewer resolves what exists, creates nothing; an outsider sees no project.
    let bob_api = &bob.api;
    assert_err(
        &ensure(bob_api, "abTEM/notebook runs", false).await,
        NOT_FOUND,
    );
    assert!(api
        .set_role(&project, "bob@x.org", "viewer")
        .await
        .0
        .is_success());
    let (s, seen) = ensure(bob_api, "abTEM/notebook runs/tutorials", false).await;
    assert_eq!(
        (s.as_u16(), &seen["collection_id"]),
        (200, &first["collection_id"])
    );
    assert_err_mentions(
        &ensure(bob_api, "abTEM/notebook runs/new", false).await,
        PERMISSION_DENIED,
        "\"new\"",
    );
    // Two projects of one name: ambiguous, their ids listed.
    let twin = bob_api.create_project("abTEM").await;
    let r = ensure(bob_api, "abTEM/x", true).await;
    assert_err_mentions(&r, CONFLICT, &twin);
    assert_err_mentions(&r, CONFLICT, &project);
}
