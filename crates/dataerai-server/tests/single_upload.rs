//! `POST /api/v1/uploads/single` against the real server binary: one small
//! file's asset, session, bytes and version in one request; a bad checksum
//! or a full quota leaves nothing behind; a retried key makes nothing new.

mod common;

use common::*;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Send one small file with `manifest` to `POST /api/v1/uploads/single`.
async fn single(api: &Api, manifest: &Value, bytes: &[u8]) -> (StatusCode, Value) {
    let form = Form::new()
        .part(
            "manifest",
            Part::text(manifest.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part("file", Part::bytes(bytes.to_vec()).file_name("file"));
    api.post_multipart("/api/v1/uploads/single", form).await
}

/// A request for a new personal asset of `user` holding `bytes` (whose
/// checksum is `sum`), under `key`.
fn new_asset(key: &str, user: &str, bytes: &[u8], sum: &str) -> Value {
    json!({
        "key": key,
        "asset": {"title": "one", "owner_type": "user", "owner_id": user,
                  "tags": ["lone"], "metadata": {"n": 1}},
        "upload": {"files": [{"name": "one.bin", "size": bytes.len(), "checksum": sum}]},
    })
}

fn sum(data: &[u8]) -> String {
    format!("blake3:{}", hex_blake3(data))
}

async fn asset_count(api: &Api) -> u64 {
    let (s, page) = api.get("/api/v1/assets").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["total"].as_u64().unwrap()
}

#[tokio::test]
async fn a_small_file_is_stored_and_published_in_one_request() {
    let (_lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let bytes = data(64 * 1024, 1);
    let (s, done) = single(&api, &new_asset("k1", &alice, &bytes, &sum(&bytes)), &bytes).await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["repeated"], false, "{done}");
    assert_eq!(done["deduplicated"], false, "{done}");
    let version = &done["version"];
    assert_eq!(version["status"], "complete", "{done}");
    assert_eq!(version["files"][0]["checksum"], sum(&bytes).as_str());
    let asset_id = version["asset_id"].as_str().unwrap();
    let (s, back) = api.latest_file(asset_id).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(back, bytes);
    let (s, asset) = api.get(&format!("/api/v1/assets/{asset_id}")).await;
    assert_eq!(s, StatusCode::OK, "{asset}");
    assert_eq!(asset["tags"], json!(["lone"]), "{asset}");
    assert_eq!(asset["metadata"]["n"], 1, "{asset}");
    // Found by search (the index row is written with the version).
    let (s, found) = api.get("/api/v1/search?q=tag:lone").await;
    assert_eq!(s, StatusCode::OK, "{found}");
    assert_eq!(found["items"][0]["asset_id"], asset_id, "{found}");

    // The same key again: nothing new, the same answer.
    let (s, again) = single(&api, &new_asset("k1", &alice, &bytes, &sum(&bytes)), &bytes).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["repeated"], true, "{again}");
    assert_eq!(again["upload_id"], done["upload_id"], "{again}");
    assert_eq!(again["version"]["content_id"], version["content_id"]);
    assert_eq!(asset_count(&api).await, 1);
    let (s, by_key) = api.get("/api/v1/uploads/single/k1").await;
    assert_eq!(s, StatusCode::OK, "{by_key}");
    assert_eq!(by_key["version"]["asset_id"], asset_id, "{by_key}");
    let (s, none) = api.get("/api/v1/uploads/single/never-sent").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{none}");

    // Another key, the same bytes: a second asset, deduplicated.
    let (s, dup) = single(&api, &new_asset("k2", &alice, &bytes, &sum(&bytes)), &bytes).await;
    assert_eq!(s, StatusCode::OK, "{dup}");
    assert_eq!(dup["deduplicated"], true, "{dup}");
    let dup_id = dup["version"]["asset_id"].as_str().unwrap();
    assert_eq!(api.latest_file(dup_id).await.1, bytes);

    // A new version of an existing asset.
    let newer = data(1000, 2);
    let req = json!({"key": "k3", "asset_id": asset_id,
        "upload": {"files": [{"name": "one.bin", "size": newer.len(), "checksum": sum(&newer)}]}});
    let (s, v2) = single(&api, &req, &newer).await;
    assert_eq!(s, StatusCode::OK, "{v2}");
    assert_eq!(v2["version"]["asset_id"], asset_id, "{v2}");
    assert_eq!(api.latest_file(asset_id).await.1, newer);
    assert_eq!(asset_count(&api).await, 2);
}

#[tokio::test]
async fn bad_bytes_or_a_full_quota_leave_nothing_behind() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let bytes = data(5000, 3);
    let wrong = sum(&data(5000, 4));
    let (s, e) = single(&api, &new_asset("bad", &alice, &bytes, &wrong), &bytes).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["code"], "ERR_INTEGRITY", "{e}");
    assert_eq!(asset_count(&api).await, 0);
    let (s, _) = api.get("/api/v1/uploads/single/bad").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The part is not as long as the request says.
    let (s, e) = single(
        &api,
        &new_asset("short", &alice, &bytes, &sum(&bytes)),
        &bytes[1..],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["code"], "ERR_INVALID_INPUT", "{e}");

    lab.server.set_user_quota("alice@lab.org", 1000);
    let (s, e) = single(
        &api,
        &new_asset("full", &alice, &bytes, &sum(&bytes)),
        &bytes,
    )
    .await;
    assert_eq!(e["error"]["code"], "ERR_QUOTA_EXCEEDED", "{s} {e}");
    assert_eq!(asset_count(&api).await, 0);
    // The key is free again once the upload fits.
    lab.server.set_user_quota("alice@lab.org", 1_000_000);
    let (s, done) = single(
        &api,
        &new_asset("full", &alice, &bytes, &sum(&bytes)),
        &bytes,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["repeated"], false, "{done}");
    assert_eq!(asset_count(&api).await, 1);
    // Refused files' bytes are not left in the store: only the stored one
    // (the directory store's files, or the S3 test server's objects).
    let stored = blob_files(&blob_content_dir(lab.path()));
    assert_eq!(stored, 1, "chunk files in the blob store");
}
