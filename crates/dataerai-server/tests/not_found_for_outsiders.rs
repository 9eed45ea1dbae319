//! Nothing tells an outsider what exists: for every kind of thing with an id
//! (project, its members and collections, collection, asset, its contents
//! and relationships, upload session), a caller who may not read it gets
//! exactly the answer of an unknown id — same status, code and message but
//! for the id. Readers lacking write access still get 403. Adding a member
//! answers alike for emails with and without an account (the latter are
//! invited), and a target the caller may not read is shown by its id only.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";

/// The answer to `path` with `id` in it, with the id replaced by a marker so
/// answers for different ids compare equal when they say the same.
async fn answer(api: &Api, method: &str, path: &str, id: &str, body: Option<Value>) -> Value {
    let url = path.replace("{id}", id);
    let (status, reply) = match (method, body) {
        ("GET", _) => api.get(&url).await,
        ("DELETE", _) => api.delete(&url).await,
        ("PATCH", b) => api.patch(&url, b.unwrap_or(json!({}))).await,
        (_, b) => api.post(&url, b.unwrap_or(json!({}))).await,
    };
    let text = reply.to_string().replace(id, "<id>");
    json!({"status": status.as_u16(), "body": serde_json::from_str::<Value>(&text).unwrap()})
}

#[tokio::test]
async fn an_outsider_cannot_tell_existing_from_unknown_ids() {
    let (_lab, [owner, viewer, outsider]) =
        Lab::start(["owner@lab.org", "viewer@lab.org", "outsider@lab.org"]);
    let project = owner.api.create_project("secret").await;
    let (s, _) = owner
        .api
        .set_role(&project, "viewer@lab.org", "viewer")
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let collection = owner.api.create_collection(&project, "raw").await;
    let asset = owner.api.project_asset(&project, "scan").await;
    let v = owner.api.upload(&asset, &[("a.bin", b"abc")], 1024).await;
    let content = v["content_id"].as_str().unwrap().to_string();
    let personal = owner.personal_asset("mine").await;
    let (s, u) = owner
        .api
        .open_upload(&asset, json!([{"name": "b.bin", "size": 3}]), 1024)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    let upload = u["upload_id"].as_str().unwrap().to_string();

    // (method, path with {id}, the existing id, body)
    let cases: Vec<(&str, String, String, Option<Value>)> = vec![
        ("GET", "/api/v1/projects/{id}".into(), project.clone(), None),
        (
            "GET",
            "/api/v1/projects/{id}/members".into(),
            project.clone(),
            None,
        ),
        (
            "POST",
            "/api/v1/projects/{id}/members".into(),
            project.clone(),
            Some(json!({"email": "x@lab.org", "role": "viewer"})),
        ),
        (
            "GET",
            "/api/v1/projects/{id}/collections".into(),
            project.clone(),
            None,
        ),
        (
            "POST",
            "/api/v1/projects/{id}/collections".into(),
            project.clone(),
            Some(json!({"name": "mine now"})),
        ),
        (
            "GET",
            "/api/v1/collections/{id}".into(),
            collection.clone(),
            None,
        ),
        (
            "GET",
            "/api/v1/collections/{id}/assets".into(),
            collection.clone(),
            None,
        ),
        ("GET", "/api/v1/assets/{id}".into(), asset.clone(), None),
        ("GET", "/api/v1/assets/{id}".into(), personal.clone(), None),
        (
            "PATCH",
            "/api/v1/assets/{id}".into(),
            asset.clone(),
            Some(json!({"title": "mine"})),
        ),
        ("DELETE", "/api/v1/assets/{id}".into(), asset.clone(), None),
        (
            "GET",
            "/api/v1/assets/{id}/contents".into(),
            asset.clone(),
            None,
        ),
        (
            "GET",
            format!("/api/v1/assets/{{id}}/contents/{content}"),
            asset.clone(),
            None,
        ),
        (
            "GET",
            "/api/v1/assets/{id}/relationships".into(),
            asset.clone(),
            None,
        ),
        (
            "POST",
            "/api/v1/assets/{id}/uploads".into(),
            asset.clone(),
            Some(json!({"files": [{"name": "c.bin", "size": 1}]})),
        ),
        ("GET", "/api/v1/uploads/{id}".into(), upload.clone(), None),
        (
            "DELETE",
            "/api/v1/uploads/{id}".into(),
            upload.clone(),
            None,
        ),
        (
            "GET",
            "/api/v1/assets?owner_type=project&owner_id={id}".into(),
            project.clone(),
            None,
        ),
        (
            "POST",
            "/api/v1/assets".into(),
            String::new(),
            Some(json!({"title": "t", "owner_type": "project", "owner_id": project})),
        ),
    ];
    for (method, path, id, body) in cases {
        if id.is_empty() {
            // The id is in the body: compare with an unknown project there.
            let mut unknown_body = body.clone().unwrap();
            unknown_body["owner_id"] = json!(UNKNOWN);
            let existing = answer(&outsider.api, method, &path, &project, body).await;
            let unknown = answer(&outsider.api, method, &path, UNKNOWN, Some(unknown_body)).await;
            let existing = existing.to_string().replace(&project, "<id>");
            let unknown = unknown.to_string().replace(UNKNOWN, "<id>");
            assert_eq!(existing, unknown, "{method} {path}");
            assert!(existing.contains("404"), "{existing}");
            continue;
        }
        let existing = answer(&outsider.api, method, &path, &id, body.clone()).await;
        let unknown = answer(&outsider.api, method, &path, UNKNOWN, body).await;
        assert_eq!(existing, unknown, "{method} {path}");
        assert_eq!(existing["status"], 404, "{method} {path}: {existing}");
        assert_eq!(existing["body"]["error"]["code"], "ERR_NOT_FOUND");
    }

    // Another member's upload session is as unknown as a missing one, too.
    let theirs = answer(&viewer.api, "GET", "/api/v1/uploads/{id}", &upload, None).await;
    let missing = answer(&viewer.api, "GET", "/api/v1/uploads/{id}", UNKNOWN, None).await;
    assert_eq!(theirs, missing);

    // A reader lacking write access is told so (403), not lied to.
    let patch = viewer.api.update_asset(&asset, json!({"title": "x"})).await;
    assert_err_for("a viewer changes an asset", &patch, PERMISSION_DENIED);
    let open = viewer
        .api
        .open_upload(&asset, json!([{"name": "c.bin", "size": 1}]), 1024)
        .await;
    assert_err_for("a viewer uploads", &open, PERMISSION_DENIED);
    let add = viewer
        .api
        .set_role(&project, "someone@lab.org", "viewer")
        .await;
    assert_err_for("a viewer adds a member", &add, PERMISSION_DENIED);
    // The outsider learnt nothing and changed nothing.
    let (s, a) = owner.api.get(&format!("/api/v1/assets/{asset}")).await;
    assert_eq!((s, a["title"].as_str()), (StatusCode::OK, Some("scan")));
}

/// Adding a member by an email with an account and by one without answer
/// alike (201, a member with an id); the unknown email is invited: listed
/// like any member, without access until a server administrator creates the
/// account, which then has the membership.
#[tokio::test]
async fn adding_members_does_not_reveal_which_emails_have_accounts() {
    let (lab, [owner, _known]) = Lab::start(["owner@lab.org", "known@lab.org"]);
    let project = owner.api.create_project("lab").await;

    let (s_known, known) = owner
        .api
        .set_role(&project, "known@lab.org", "member")
        .await;
    let (s_new, invited) = owner.api.set_role(&project, "new@lab.org", "member").await;
    assert_eq!((s_known, s_new), (StatusCode::CREATED, StatusCode::CREATED));
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&known), keys(&invited), "{known} vs {invited}");
    assert_eq!(invited["email"], "new@lab.org");
    assert_eq!(invited["role"], "member");
    // Changing an invited member's role answers like a member's change.
    let (s, again) = owner.api.set_role(&project, "new@lab.org", "viewer").await;
    assert_eq!(
        (s, again["role"].as_str()),
        (StatusCode::OK, Some("viewer"))
    );
    assert_eq!(again["user_id"], invited["user_id"]);

    let (_, list) = owner
        .api
        .get(&format!("/api/v1/projects/{project}/members"))
        .await;
    let mut emails = item_strs(&list, "email");
    emails.sort();
    assert_eq!(emails, ["known@lab.org", "new@lab.org", "owner@lab.org"]);

    // Not an address at all: refused whatever the email.
    let bad = owner.api.set_role(&project, "no-at-sign", "viewer").await;
    assert_err_for("an address without @", &bad, INVALID_INPUT);

    // The administrator creates the account: it is the invited one, with
    // its membership, and signs in like any other.
    let id = admin(lab.path(), &["create-user", "--email", "new@lab.org"]);
    assert_eq!(id, invited["user_id"].as_str().unwrap());
    let token = admin(lab.path(), &["create-token", "--email", "new@lab.org"]);
    let newcomer = lab.server.api(&token);
    let (s, p) = newcomer.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!((s, p["role"].as_str()), (StatusCode::OK, Some("viewer")));
    // An ordinary account now: creating it again is refused as before.
    let out = admin_raw(lab.path(), &["create-user", "--email", "new@lab.org"]);
    assert!(!out.status.success());
}

/// `related_asset` of a target the caller may not read is its id only.
/// The link was made while its creator could read the target (a member of
/// both projects); a member of the source's project only lists it.
#[tokio::test]
async fn relationship_targets_the_caller_cannot_read_are_redacted() {
    let (_lab, [linker, colleague]) = Lab::start(["linker@lab.org", "colleague@lab.org"]);
    let a = linker.api.create_project("A").await;
    let b = linker.api.create_project("B").await;
    let (s, _) = linker.api.set_role(&a, "colleague@lab.org", "viewer").await;
    assert_eq!(s, StatusCode::CREATED);
    let derived = linker.api.project_asset(&a, "derived").await;
    let secret = linker.api.project_asset(&b, "secret title").await;
    let (s, _) = linker
        .api
        .update_asset(&secret, json!({"alias": "hidden-alias"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, rel) = linker
        .api
        .relate(
            &derived,
            json!({"to_asset_id": secret, "type": "derived_from"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rel}");
    assert_eq!(rel["related_asset"]["title"], "secret title");

    let path = format!("/api/v1/assets/{derived}/relationships");
    let (s, page) = colleague.api.get(&path).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let related = &page["items"][0]["related_asset"];
    assert_eq!(related, &json!({"id": secret}), "{page}");
    assert!(!page.to_string().contains("secret title"));
    assert!(!page.to_string().contains("hidden-alias"));
    assert!(!page.to_string().contains(&b));

    // The linker, who may read the target, still sees it whole.
    let (_, page) = linker.api.get(&path).await;
    let related = &page["items"][0]["related_asset"];
    assert_eq!(related["title"], "secret title");
    assert_eq!(related["alias"], "hidden-alias");
    assert_eq!(related["owner_id"], b.as_str());
}
