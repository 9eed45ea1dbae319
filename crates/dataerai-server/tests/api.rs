//! REST API behaviour against the real server binary: auth, projects, assets,
//! relationships, error shapes.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn auth_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let (user_id, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let read_only = create_token(dir.path(), "alice@lab.org", "read");
    let server = TestServer::start(dir.path());

    // No auth needed.
    let anon = server.api("");
    assert_eq!(anon.get("/healthz").await.1, json!({"status": "ok"}));
    let (s, doc) = anon.get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));

    // Missing, unknown token → 401 with a sign-in hint.
    let reply = anon.get("/api/v1/me").await;
    assert_err(&reply, AUTH_REQUIRED);
    assert!(reply.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("sign in"));
    assert_err(
        &server.api("dtr_nope").get("/api/v1/me").await,
        AUTH_REQUIRED,
    );

    let api = server.api(&token);
    let (s, me) = api.get("/api/v1/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["user_id"], user_id.as_str());
    assert_eq!(me["email"], "alice@lab.org");

    // Read-only token: GET works, writes are refused with 403.
    let ro = server.api(&read_only);
    assert_eq!(ro.get("/api/v1/me").await.0, StatusCode::OK);
    assert_err(
        &ro.post("/api/v1/projects", json!({"name": "x"})).await,
        PERMISSION_DENIED,
    );

    // Write-only token cannot read.
    let wo = create_token(dir.path(), "alice@lab.org", "write");
    assert_err(&server.api(&wo).get("/api/v1/me").await, PERMISSION_DENIED);

    // Expired token (0 days → already expired).
    let expired = admin(
        dir.path(),
        &[
            "create-token",
            "--email",
            "alice@lab.org",
            "--expires-in-days",
            "0",
        ],
    );
    assert_err(&server.api(&expired).get("/api/v1/me").await, AUTH_REQUIRED);

    // Tokens are stored hashed only (checked in the SQLite file; the server
    // hashes before any store sees a token).
    let db = std::fs::read(dir.path().join("dataerai.db")).unwrap_or_default();
    let wal = std::fs::read(dir.path().join("dataerai.db-wal")).unwrap_or_default();
    assert!(scaleout() || !db.is_empty());
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "token stored in clear"
        );
    }

    // Error shapes for routing and extractor failures.
    assert_err(&api.get("/api/v1/nothing-here").await, NOT_FOUND);
    let resp = api
        .request(Method::POST, "/api/v1/projects")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "ERR_INVALID_INPUT"
    );
    assert_err(
        &api.post("/api/v1/projects", json!({"description": "no name"}))
            .await,
        INVALID_INPUT,
    );
    let resp = api
        .request(Method::POST, "/api/v1/projects")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_err(&api.get("/api/v1/projects?limit=abc").await, INVALID_INPUT);
    // Oversized JSON body.
    let big = json!({"name": "x", "description": "y".repeat(2 * 1024 * 1024)});
    let reply = api.post("/api/v1/projects", big).await;
    assert!(reply.0.is_client_error(), "{}", reply.0);
    assert_eq!(reply.1["error"]["code"], "ERR_INVALID_INPUT");
}

#[tokio::test]
async fn admin_commands_report_errors() {
    let dir = tempfile::tempdir().unwrap();
    admin(dir.path(), &["create-user", "--email", "a@lab.org"]);
    let dup = admin_raw(dir.path(), &["create-user", "--email", "a@lab.org"]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = admin_raw(dir.path(), &["create-token", "--email", "nobody@lab.org"]);
    assert_eq!(bad.status.code(), Some(1));
    let bad = admin_raw(
        dir.path(),
        &["create-token", "--email", "a@lab.org", "--scope", "root"],
    );
    assert_eq!(bad.status.code(), Some(1));
    let token = admin(
        dir.path(),
        &["create-token", "--email", "a@lab.org", "--name", "laptop"],
    );
    assert!(
        token.starts_with("dtr_") && token.len() >= 4 + 64,
        "{token}"
    );
}

/// Alice and Bob on a server with a default quota of 12345 bytes.
fn quota_lab() -> (Lab, [User; 2]) {
    Lab::start_with(["alice@lab.org", "bob@lab.org"], |b| {
        b.args(&["--default-quota-bytes", "12345"])
    })
}

#[tokio::test]
async fn projects_collections_and_where_assets_go() {
    let (_lab, [User { api, .. }, User { api: bob_api, .. }]) = quota_lab();
    // Project creation side effects.
    let (s, p) = api
        .post(
            "/api/v1/projects",
            json!({"name": "Microscopy", "description": "TEM"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let pid = p["project_id"].as_str().unwrap().to_string();
    assert_eq!(p["role"], "owner");
    assert_eq!(p["allocation"]["quota_bytes"], 12345);
    assert_eq!(p["allocation"]["used_bytes"], 0);
    let root = p["root_collection_id"].as_str().unwrap().to_string();
    let (s, c) = api.get(&format!("/api/v1/collections/{root}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (c["project_id"].as_str(), c["parent_id"].is_null()),
        (Some(pid.as_str()), true)
    );
    let (_, list) = api.get("/api/v1/projects").await;
    assert_eq!(list["total"], 1);
    assert_eq!(bob_api.get("/api/v1/projects").await.1["total"], 0);
    // An outsider gets the answer of an unknown id.
    assert_err(
        &bob_api.get(&format!("/api/v1/projects/{pid}")).await,
        NOT_FOUND,
    );
    assert_err(&api.get("/api/v1/projects/no-such").await, NOT_FOUND);
    assert_err(
        &api.post("/api/v1/projects", json!({"name": "  "})).await,
        INVALID_INPUT,
    );

    // Sub-collection.
    let (s, sub) = api
        .post(
            &format!("/api/v1/projects/{pid}/collections"),
            json!({"name": "raw"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{sub}");
    assert_eq!(sub["parent_id"], root.as_str());
    assert_eq!(
        api.get(&format!("/api/v1/projects/{pid}/collections"))
            .await
            .1["total"],
        2
    );
    assert_err(
        &bob_api
            .post(
                &format!("/api/v1/projects/{pid}/collections"),
                json!({"name": "x"}),
            )
            .await,
        NOT_FOUND,
    );

    // Project asset in the sub-collection.
    let (s, a) = api
        .post(
            "/api/v1/assets",
            json!({"title": "Grain map", "owner_type": "project", "owner_id": pid, "collection_id": sub["collection_id"],
                   "alias": "grain", "tags": ["tem"], "metadata": {"voltage_kv": 300, "operator": "alice", "tmp": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(a["collection_ids"], json!([sub["collection_id"]]));
    assert!(a["latest_content"].is_null());
    let sub_id = sub["collection_id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/api/v1/collections/{sub_id}/assets"))
            .await
            .1["total"],
        1
    );
    // Project asset without collection goes to the root collection.
    let (_, a2) = api
        .post(
            "/api/v1/assets",
            json!({"title": "t2", "owner_type": "project", "owner_id": pid}),
        )
        .await;
    assert_eq!(a2["collection_ids"], json!([root]));
    let (_, page) = api
        .get(&format!(
            "/api/v1/assets?owner_type=project&owner_id={pid}&limit=1"
        ))
        .await;
    assert_eq!(page_counts(&page), (Some(2), 1));
}

#[tokio::test]
async fn asset_validation_aliases_metadata_merge_privacy_and_delete() {
    let (_lab, [User { id: alice, api }, bob]) = quota_lab();
    let (bob, bob_api) = (bob.id, bob.api);
    let pid = api.create_project("Microscopy").await;
    let (s, a) = api
        .post(
            "/api/v1/assets",
            json!({"title": "Grain map", "owner_type": "project", "owner_id": pid,
                   "alias": "grain", "tags": ["tem"], "metadata": {"voltage_kv": 300, "operator": "alice", "tmp": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let aid = a["asset_id"].as_str().unwrap().to_string();

    // Refused: each new asset, and why.
    let refused = [
        (
            json!({"title": "", "owner_type": "user", "owner_id": alice}),
            INVALID_INPUT,
        ),
        (
            json!({"owner_type": "user", "owner_id": alice}),
            INVALID_INPUT,
        ),
        (
            json!({"title": "x", "owner_type": "group", "owner_id": alice}),
            INVALID_INPUT,
        ),
        (
            json!({"title": "x", "owner_type": "user", "owner_id": bob}),
            PERMISSION_DENIED,
        ),
        (
            json!({"title": "x", "owner_type": "project", "owner_id": "nope"}),
            NOT_FOUND,
        ),
        (
            json!({"title": "x", "owner_type": "user", "owner_id": alice, "metadata": [1, 2]}),
            INVALID_INPUT,
        ),
        (
            json!({"title": "x", "owner_type": "project", "owner_id": pid, "collection_id": "nope"}),
            NOT_FOUND,
        ),
        // Alias unique per owner.
        (
            json!({"title": "x", "owner_type": "project", "owner_id": pid, "alias": "grain"}),
            CONFLICT,
        ),
    ];
    for (body, expected) in refused {
        let reply = api.post("/api/v1/assets", body.clone()).await;
        assert_err_for(body, &reply, expected);
    }
    let bobs = json!({"title": "x", "owner_type": "project", "owner_id": pid});
    assert_err(&bob_api.post("/api/v1/assets", bobs).await, NOT_FOUND);
    // ... but the same alias for another owner is fine.
    let same_alias =
        json!({"title": "x", "owner_type": "user", "owner_id": alice, "alias": "grain"});
    let (s, _) = api.post("/api/v1/assets", same_alias).await;
    assert_eq!(s, StatusCode::CREATED);

    // PATCH merges metadata (null deletes), replaces tags.
    let (s, patched) = api
        .update_asset(
            &aid,
            json!({"metadata": {"tmp": null, "voltage_kv": 200, "new": [1]}, "tags": ["a", "b"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["metadata"],
        json!({"voltage_kv": 200, "operator": "alice", "new": [1]})
    );
    assert_eq!(patched["tags"], json!(["a", "b"]));
    assert_eq!(patched["title"], "Grain map");
    assert_err(
        &api.update_asset(&aid, json!({"title": ""})).await,
        INVALID_INPUT,
    );
    assert_err(
        &api.update_asset(&aid, json!({"metadata": "x"})).await,
        INVALID_INPUT,
    );
    assert_eq!(
        api.get(&format!("/api/v1/assets/{aid}")).await.1["metadata"]["voltage_kv"],
        200
    );

    // Personal assets are private: to anyone else they do not exist.
    let mine = api.personal_asset(&alice, "notes").await;
    let path = format!("/api/v1/assets/{mine}");
    assert_err_for("bob reads", &bob_api.get(&path).await, NOT_FOUND);
    let patch = bob_api.patch(&path, json!({"title": "x"})).await;
    assert_err_for("bob changes", &patch, NOT_FOUND);
    assert_err_for("bob deletes", &bob_api.delete(&path).await, NOT_FOUND);
    let alices = format!("/api/v1/assets?owner_type=user&owner_id={alice}");
    assert_err_for("bob lists", &bob_api.get(&alices).await, PERMISSION_DENIED);
    assert_eq!(api.get("/api/v1/assets").await.1["total"], 2);

    // DELETE.
    assert_eq!(api.delete(&path).await.0, StatusCode::NO_CONTENT);
    assert_err_for("read after delete", &api.get(&path).await, NOT_FOUND);
    assert_err_for("delete again", &api.delete(&path).await, NOT_FOUND);
}

#[tokio::test]
async fn relationships() {
    let (_lab, [alice, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);
    let (api, bob_api) = (&alice.api, &bob.api);
    let raw = alice.personal_asset("raw scan").await;
    let derived = alice.personal_asset("segmentation").await;
    let bobs = bob.personal_asset("bob's").await;

    let path = format!("/api/v1/assets/{derived}/relationships");
    let (s, r) = api
        .post(
            &path,
            json!({"to_asset_id": raw, "type": "derived_from", "analysis_mode": "non_destructive",
                            "qualifiers": {"note": "otsu", "time": "2024-01-01T00:00:00Z"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["type"], "derived_from");
    assert_eq!(
        (r["from_asset_id"].as_str(), r["to_asset_id"].as_str()),
        (Some(derived.as_str()), Some(raw.as_str()))
    );
    assert_eq!(r["related_asset"]["id"], raw.as_str());
    assert_eq!(r["related_asset"]["title"], "raw scan");
    assert_eq!(r["qualifiers"]["note"], "otsu");

    // Duplicate → ERR_RELATIONSHIP_EXISTS; other type is fine.
    assert_err(
        &api.post(&path, json!({"to_asset_id": raw, "type": "derived_from"}))
            .await,
        RELATIONSHIP_EXISTS,
    );
    assert_eq!(
        api.post(&path, json!({"to_asset_id": raw, "type": "analysis_of"}))
            .await
            .0,
        StatusCode::CREATED
    );
    let (_, list) = api.get(&path).await;
    assert_eq!(list["total"], 2);

    // Refused: each relationship, and why.
    let refused = [
        (
            json!({"to_asset_id": raw, "type": "x", "analysis_mode": "gentle"}),
            INVALID_INPUT,
        ),
        (json!({"to_asset_id": raw, "type": ""}), INVALID_INPUT),
        (
            json!({"to_asset_id": raw, "type": "x".repeat(256)}),
            INVALID_INPUT,
        ),
        (
            json!({"to_asset_id": derived, "type": "self"}),
            INVALID_INPUT,
        ),
        (json!({"to_asset_id": "missing", "type": "x"}), NOT_FOUND),
        (
            json!({"to_asset_id": raw, "type": "x", "qualifiers": "no"}),
            INVALID_INPUT,
        ),
        // No read access to the target: as unknown as a missing one.
        (
            json!({"to_asset_id": bobs, "type": "derived_from"}),
            NOT_FOUND,
        ),
    ];
    for (body, expected) in refused {
        assert_err_for(&body, &api.post(&path, body.clone()).await, expected);
    }
    let longest = json!({"to_asset_id": raw, "type": "y".repeat(255)});
    assert_eq!(api.post(&path, longest).await.0, StatusCode::CREATED);

    // No write access to the source.
    assert_err(
        &bob_api
            .post(
                &format!("/api/v1/assets/{bobs}/relationships"),
                json!({"to_asset_id": raw, "type": "x"}),
            )
            .await,
        NOT_FOUND,
    );
    assert_err(
        &bob_api
            .post(&path, json!({"to_asset_id": bobs, "type": "x"}))
            .await,
        NOT_FOUND,
    );

    // Deleting the target removes the edges.
    api.delete(&format!("/api/v1/assets/{raw}")).await;
    assert_eq!(api.get(&path).await.1["total"], 0);
}
