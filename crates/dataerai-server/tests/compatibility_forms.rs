//! Call forms of code written against other Dataerai deployments: a personal
//! owner given by the caller's email, and the unversioned compatibility routes
//! (`/api/…/`: `{"results", "count"}` lists, errors with `"detail"`).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_personal_owner_may_be_given_by_the_callers_own_email() {
    let (_lab, [alice, bob]) = Lab::start(["alice@x.org", "bob@x.org"]);
    let a = &alice.api;
    let mine = created(
        a.post(
            "/api/v1/assets",
            json!({"title": "by email", "owner_type": "user", "owner_id": "Alice@X.org"}),
        )
        .await,
    );
    assert_eq!(mine["owner_id"], alice.id.as_str(), "{mine}");
    let (s, page) = a
        .get("/api/v1/assets?owner_type=user&owner_id=alice@x.org")
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(item_strs(&page, "title"), ["by email"]);
    // The batch of small uploads takes owners the same way.
    let (s, batch) = a
        .post(
            "/api/v1/uploads/batch",
            json!({"items": [{"asset": {"title": "batched", "owner_type": "user", "owner_id": "alice@x.org"},
                              "upload": {"files": [{"name": "f", "size": 1}]}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{batch}");
    assert!(
        batch["items"][0]["result"]["upload_id"].is_string(),
        "{batch}"
    );

    // Someone else's email is refused the same way whether or not it exists.
    for other in ["bob@x.org", "nobody@x.org"] {
        let reply = a
            .post(
                "/api/v1/assets",
                json!({"title": "t", "owner_type": "user", "owner_id": other}),
            )
            .await;
        assert_err_for(other, &reply, PERMISSION_DENIED);
        let reply = a
            .get(&format!("/api/v1/assets?owner_type=user&owner_id={other}"))
            .await;
        assert_err_for(other, &reply, PERMISSION_DENIED);
    }
    let (_, bobs) = bob.api.get("/api/v1/assets").await;
    assert_eq!(bobs["total"], 0, "{bobs}");
}

#[tokio::test]
async fn compatibility_routes_adapt_the_api() {
    let (_lab, [alice, bob]) = Lab::start(["alice@x.org", "bob@x.org"]);
    let a = &alice.api;
    let project = a.create_project("Quantum control").await;
    a.create_project("Other lab").await;

    // Projects by name, as {results, count}.
    let (s, found) = a.get("/api/projects/?q=quantum&access_scope=home").await;
    assert_eq!(s, StatusCode::OK, "{found}");
    assert_eq!(found["count"], 1, "{found}");
    let p = &found["results"][0];
    assert_eq!(p["id"], project.as_str());
    assert_eq!(p["name"], "Quantum control");
    assert_eq!(p["owner_id"], alice.id.as_str());
    assert!(
        p["created_at"].is_string() && p["description"].is_string(),
        "{p}"
    );
    let (_, all) = a.get("/api/projects/").await;
    assert_eq!(all["count"], 2, "{all}");
    let (_, none) = bob.api.get("/api/projects/?q=quantum").await;
    assert_eq!(none, json!({"results": [], "count": 0}));

    // Collections: create in a project, find by title.
    let c = created(
        a.post(
            "/api/collections/",
            json!({"title": "runs", "description": "d", "tags": ["x"], "type": "folder",
                   "owner_type": "project", "owner_id": project}),
        )
        .await,
    );
    assert_eq!(c["title"], "runs");
    assert_eq!(c["owner_project_id"], project.as_str());
    assert!(
        c["parent_id"].is_string() && c["created_at"].is_string(),
        "{c}"
    );
    let sub = created(
        a.post(
            "/api/collections/",
            json!({"title": "tutorials", "owner_type": "project", "owner_id": project,
                   "parent_id": c["id"]}),
        )
        .await,
    );
    assert_eq!(sub["parent_id"], c["id"]);
    let (s, list) = a
        .get(&format!(
            "/api/collections/?owner_type=project&owner_id={project}&q=RUNS"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["count"], 1, "{list}");
    assert_eq!(list["results"][0]["id"], c["id"]);
    let (_, mine) = a
        .get("/api/collections/?owner_type=user&owner_id=alice@x.org")
        .await;
    assert_eq!(mine["count"], 0, "{mine}");
    // An outsider gets the unknown project's 404, with detail.
    let reply = bob
        .api
        .get(&format!(
            "/api/collections/?owner_type=project&owner_id={project}"
        ))
        .await;
    assert_err(&reply, NOT_FOUND);
    assert_eq!(reply.1["detail"], reply.1["error"]["message"]);

    // Assets: record_type and current_content; PATCH.
    let asset = a.project_asset(&project, "trace").await;
    let (s, got) = a.get(&format!("/api/assets/{asset}/")).await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["id"], asset.as_str());
    assert_eq!(
        got["current_content"],
        json!({"id": null, "status": "uploading"})
    );
    let (s, patched) = a
        .patch(
            &format!("/api/assets/{asset}/"),
            json!({"record_type": "measurement", "title": "trace 1", "tags": ["qick"],
                   "description": "d", "metadata": {"shots": 1000}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["record_type"], "measurement");
    assert_eq!(patched["title"], "trace 1");
    assert_eq!(patched["metadata"]["shots"], 1000);

    // Completing an upload session, and a second completion: 409.
    let session = a.send_files(&asset, &[("f.bin", b"hello")], 1024).await;
    let upload = session["upload_id"].as_str().unwrap();
    let body = completion(&[b"hello"]);
    let (s, version) = a
        .post(&format!("/api/transfers/{upload}/complete/"), body.clone())
        .await;
    assert_eq!(s, StatusCode::OK, "{version}");
    let reply = a
        .post(&format!("/api/transfers/{upload}/complete/"), body)
        .await;
    assert_err(&reply, CONFLICT);
    assert!(reply.1["detail"].is_string(), "{}", reply.1);
    let (_, got) = a.get(&format!("/api/assets/{asset}/")).await;
    assert_eq!(
        got["current_content"],
        json!({"id": version["content_id"], "status": "available"})
    );

    // Relationships: 201, then 409 with the detail scripts compare.
    let raw = a.project_asset(&project, "raw").await;
    let rel = created(
        a.post(
            &format!("/api/assets/{asset}/relationships/"),
            json!({"to_asset_id": raw, "type": "derived_from", "analysis_mode": "non_destructive",
                   "qualifier_note": "fit", "qualifiers": {"step": 2}}),
        )
        .await,
    );
    assert_eq!(rel["type"], "derived_from");
    assert_eq!(rel["qualifiers"], json!({"step": 2, "note": "fit"}));
    let reply = a
        .post(
            &format!("/api/assets/{asset}/relationships/"),
            json!({"to_asset_id": raw, "type": "derived_from"}),
        )
        .await;
    assert_err(&reply, RELATIONSHIP_EXISTS);
    assert_eq!(
        reply.1["detail"],
        "An identical relationship already exists."
    );
    // Bad input keeps its code and gains detail too.
    let reply = a.post("/api/collections/", json!({"title": "x"})).await;
    assert_err(&reply, INVALID_INPUT);
    assert!(reply.1["detail"].is_string(), "{}", reply.1);
}

#[tokio::test]
async fn an_upload_may_be_charged_to_any_allocation_the_caller_may_write() {
    let (lab, [alice, bob, carol]) = Lab::start(["alice@x.org", "bob@x.org", "carol@x.org"]);
    let a = &alice.api;
    let project = a.create_project("beamtime").await;
    let project_allocation = |p: &Value| p["allocation"].clone();
    let (_, p) = a.get(&format!("/api/v1/projects/{project}")).await;
    let allocation = project_allocation(&p)["allocation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, m) = a.set_role(&project, "carol@x.org", "viewer").await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let asset = |owner_type: &str, owner_id: &str, allocation: &str| {
        json!({"title": "t", "owner_type": owner_type, "owner_id": owner_id,
               "allocation_id": allocation})
    };

    // The owner's own allocation: charged as always, shown as the default.
    let made = created(
        a.post("/api/v1/assets", asset("project", &project, &allocation))
            .await,
    );
    assert!(made.get("allocation_id").is_none(), "{made}");
    let id = made["asset_id"].as_str().unwrap();
    let (s, u) = a
        .open_upload(id, json!([{"name": "f", "size": 100}]), 1024)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let (_, p) = a.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(project_allocation(&p)["reserved_bytes"], 100, "{p}");

    // A personal asset charged to the project: the project's allocation
    // counts it, the personal one (too small for it) does not.
    lab.server.set_user_quota("alice@x.org", 10);
    let mine = created(
        a.post("/api/v1/assets", asset("user", "alice@x.org", &allocation))
            .await,
    );
    assert_eq!(mine["owner_id"], alice.id.as_str(), "{mine}");
    assert_eq!(mine["allocation_id"], allocation.as_str(), "{mine}");
    let mine = mine["asset_id"].as_str().unwrap();
    let body = data(300, 7);
    a.upload(mine, &[("spectrum.csv", &body)], 1024).await;
    let (_, p) = a.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(
        (
            &project_allocation(&p)["used_bytes"],
            &project_allocation(&p)["file_count"]
        ),
        (&json!(300), &json!(2)),
        "{p}"
    );
    let (_, read) = a.get(&format!("/api/v1/assets/{mine}")).await;
    assert_eq!(read["allocation_id"], allocation.as_str(), "{read}");
    // A personal asset of the default allocation meets the small quota.
    let plain = a.personal_asset(&alice.id, "plain").await;
    let (s, reply) = a
        .open_upload(&plain, json!([{"name": "f", "size": 300}]), 1024)
        .await;
    assert_err(&(s, reply), QUOTA_EXCEEDED);
    // Deleting it gives the bytes back to the project.
    let (s, reply) = a.delete(&format!("/api/v1/assets/{mine}")).await;
    assert!(s.is_success(), "{s} {reply}");
    let (_, p) = a.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(project_allocation(&p)["used_bytes"], 0, "{p}");

    // Unknown, or not visible to the caller: 404 alike.
    let reply = a
        .post(
            "/api/v1/assets",
            asset("user", &alice.id, "no-such-allocation"),
        )
        .await;
    assert_err(&reply, NOT_FOUND);
    let reply = bob
        .api
        .post("/api/v1/assets", asset("user", &bob.id, &allocation))
        .await;
    assert_err(&reply, NOT_FOUND);
    // A viewer sees the project's allocation but may not charge it.
    let reply = carol
        .api
        .post("/api/v1/assets", asset("user", &carol.id, &allocation))
        .await;
    assert_err(&reply, PERMISSION_DENIED);

    // A later version is charged to the asset's allocation too: only while
    // the caller may still write to it.
    let (s, m) = a.set_role(&project, "carol@x.org", "member").await;
    assert!(s.is_success(), "{m}");
    let carols = created(
        carol
            .api
            .post("/api/v1/assets", asset("user", &carol.id, &allocation))
            .await,
    );
    let carols = carols["asset_id"].as_str().unwrap();
    let (s, m) = a.set_role(&project, "carol@x.org", "viewer").await;
    assert!(s.is_success(), "{m}");
    let (s, reply) = carol
        .api
        .open_upload(carols, json!([{"name": "f", "size": 1}]), 1024)
        .await;
    assert_err_mentions(&(s, reply), PERMISSION_DENIED, &allocation);
}

#[tokio::test]
async fn compatibility_routes_keep_the_smaller_promises_scripts_rely_on() {
    let (lab, [alice, bob]) = Lab::start(["alice@x.org", "bob@x.org"]);
    let a = &alice.api;

    // A bearer token is required; the refusal carries "detail" too.
    let stranger = lab.server.api("not-a-token");
    for path in [
        "/api/projects/",
        "/api/collections/?owner_type=project&owner_id=p",
    ] {
        let reply = stranger.get(path).await;
        assert_err_for(path, &reply, AUTH_REQUIRED);
        assert_eq!(reply.1["detail"], reply.1["error"]["message"], "{path}");
    }

    // GET shows record_type and every field PATCH changed.
    let project = a.create_project("Microscopy").await;
    let asset = a.project_asset(&project, "frames").await;
    let (s, patched) = a
        .patch(
            &format!("/api/assets/{asset}/"),
            json!({"record_type": "imaging", "description": "tilt series", "tags": ["tem"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    let (_, got) = a.get(&format!("/api/assets/{asset}/")).await;
    assert_eq!(got["record_type"], "imaging", "{got}");
    assert_eq!(got["description"], "tilt series");
    assert_eq!(got["tags"], json!(["tem"]));
    assert_eq!(got["title"], "frames", "PATCH leaves what it was not given");
    // Someone who may not read the asset: 404 for GET and PATCH alike.
    for reply in [
        bob.api.get(&format!("/api/assets/{asset}/")).await,
        bob.api
            .patch(&format!("/api/assets/{asset}/"), json!({"title": "mine"}))
            .await,
    ] {
        assert_err(&reply, NOT_FOUND);
        assert!(reply.1["detail"].is_string(), "{}", reply.1);
    }

    // Projects: an unknown access_scope is refused, not ignored.
    let reply = a.get("/api/projects/?access_scope=public").await;
    assert_err(&reply, INVALID_INPUT);
    assert!(reply.1["detail"].is_string(), "{}", reply.1);
    let (_, home) = a.get("/api/projects/?access_scope=home").await;
    let root = home["results"][0]["root_collection_id"].clone();

    // Collections: the root (no parent) is listed too; each item has the
    // fields scripts read and names its owning project.
    let (_, all) = a
        .get(&format!(
            "/api/collections/?owner_type=project&owner_id={project}"
        ))
        .await;
    assert_eq!(all["count"], 1, "{all}");
    let c = &all["results"][0];
    assert_eq!(
        (&c["id"], &c["parent_id"], &c["owner_project_id"]),
        (&root, &Value::Null, &json!(project)),
        "{c}"
    );
    assert!(c["title"].is_string() && c["created_at"].is_string(), "{c}");
    // A personal owner: your own id or email is an empty list; anyone
    // else's email is refused, listing or creating.
    for me in [alice.id.as_str(), "alice@x.org"] {
        let (s, mine) = a
            .get(&format!("/api/collections/?owner_type=user&owner_id={me}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{mine}");
        assert_eq!(mine, json!({"results": [], "count": 0}));
    }
    let reply = a
        .get("/api/collections/?owner_type=user&owner_id=bob@x.org")
        .await;
    assert_err(&reply, PERMISSION_DENIED);
    assert!(reply.1["detail"].is_string(), "{}", reply.1);
    let personal = |owner: &str| json!({"title": "t", "owner_type": "user", "owner_id": owner});
    assert_err(
        &a.post("/api/collections/", personal("alice@x.org")).await,
        INVALID_INPUT,
    );
    assert_err(
        &a.post("/api/collections/", personal("bob@x.org")).await,
        PERMISSION_DENIED,
    );
    // Creating in someone else's project: as unknown as a missing one.
    let reply = bob
        .api
        .post(
            "/api/collections/",
            json!({"title": "t", "owner_type": "project", "owner_id": project}),
        )
        .await;
    assert_err(&reply, NOT_FOUND);

    // Two completions of one upload at once: one publishes, the other is 409.
    let session = a.send_files(&asset, &[("f.bin", b"tiles")], 1024).await;
    let upload = session["upload_id"].as_str().unwrap();
    let path = format!("/api/transfers/{upload}/complete/");
    let body = completion(&[b"tiles"]);
    let (first, second) = tokio::join!(a.post(&path, body.clone()), a.post(&path, body));
    let (won, lost) = if first.0 == StatusCode::OK {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(won.0, StatusCode::OK, "{}", won.1);
    assert_err(&lost, CONFLICT);
    assert!(lost.1["detail"].is_string(), "{}", lost.1);
    let (_, got) = a.get(&format!("/api/assets/{asset}/")).await;
    assert_eq!(
        got["current_content"],
        json!({"id": won.1["content_id"], "status": "available"})
    );
}
