//! Batches of small uploads against the real server binary:
//! `POST /api/v1/uploads/batch` (many sessions in one request) and
//! `POST /api/v1/uploads/finish` (many single-chunk files in one multipart
//! request), with per-item outcomes, whole-request refusals and retries.

mod common;

use common::*;
use dataerai_proto::api::{MAX_BATCH_ITEMS, MAX_SMALL_FILE};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn sum(data: &[u8]) -> String {
    format!("blake3:{}", hex_blake3(data))
}

/// The caller's user id, from `GET /api/v1/me`.
async fn me(api: &Api) -> String {
    let (s, me) = api.get("/api/v1/me").await;
    assert_eq!(s, StatusCode::OK, "{me}");
    me["user_id"].as_str().unwrap().to_string()
}

/// How many personal assets the caller has.
async fn asset_count(api: &Api) -> u64 {
    let (s, page) = api.get("/api/v1/assets").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["total"].as_u64().unwrap()
}

async fn batch(api: &Api, items: Vec<Value>) -> (StatusCode, Value) {
    api.post("/api/v1/uploads/batch", json!({ "items": items }))
        .await
}

/// A batch item opening a one-file upload for a new personal asset of `user`.
fn new_asset_item(user: &str, title: &str, name: &str, size: usize) -> Value {
    json!({
        "asset": {"title": title, "owner_type": "user", "owner_id": user},
        "upload": {"files": [{"name": name, "size": size}]},
    })
}

/// A batch item opening a one-file upload for a new version of `asset_id`.
fn version_item(asset_id: &str, name: &str, size: usize) -> Value {
    json!({
        "asset_id": asset_id,
        "upload": {"files": [{"name": name, "size": size}]},
    })
}

/// The `result` of a batch item that must have succeeded.
#[track_caller]
fn ok_item(item: &Value) -> &Value {
    assert!(item["error"].is_null(), "{item}");
    assert!(item["result"].is_object(), "{item}");
    &item["result"]
}

/// A batch item that must have failed with `code`.
#[track_caller]
fn assert_item_err(item: &Value, code: &str) {
    assert!(item["result"].is_null(), "{item}");
    assert_eq!(item["error"]["code"], code, "{item}");
    assert!(
        !item["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{item}"
    );
}

/// Open one upload per `(name, size)` through the batch route, each for a new
/// personal asset of `user`; answers the sessions.
async fn open_batch(api: &Api, user: &str, files: &[(&str, usize)]) -> Vec<Value> {
    let items = files
        .iter()
        .map(|(n, size)| new_asset_item(user, &format!("asset {n}"), n, *size))
        .collect();
    let (s, answer) = batch(api, items).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), files.len(), "{answer}");
    items.iter().map(|i| ok_item(i).clone()).collect()
}

/// Send a multipart body to `POST /api/v1/uploads/finish`.
async fn finish_form(api: &Api, form: Form) -> (StatusCode, Value) {
    api.post_multipart("/api/v1/uploads/finish", form).await
}

fn manifest_part(manifest: &Value) -> Part {
    Part::text(manifest.to_string())
        .mime_str("application/json")
        .unwrap()
}

fn file_part(bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec()).file_name("file")
}

/// The `manifest` part of a finish request.
fn manifest_of(manifest: &Value) -> (&'static str, Part) {
    ("manifest", manifest_part(manifest))
}

/// A `file` part of a finish request.
fn file(bytes: &[u8]) -> (&'static str, Part) {
    ("file", file_part(bytes))
}

/// A multipart body of `parts` (name, part), in this order.
fn multipart(parts: Vec<(&'static str, Part)>) -> Form {
    parts
        .into_iter()
        .fold(Form::new(), |form, (name, part)| form.part(name, part))
}

/// One item of a finish request: the session, the checksum claimed for the
/// file and the bytes sent.
type Claim<'a> = (&'a str, String, &'a [u8]);

/// The item sending `bytes` for `upload_id` with their right checksum.
fn claim<'a>(upload_id: &'a str, bytes: &'a [u8]) -> Claim<'a> {
    (upload_id, sum(bytes), bytes)
}

/// Finish `items` in one request.
async fn finish(api: &Api, items: &[Claim<'_>]) -> (StatusCode, Value) {
    let manifest = json!({
        "items": items
            .iter()
            .map(|(id, checksum, _)| json!({"upload_id": id, "checksum": checksum}))
            .collect::<Vec<_>>(),
    });
    let mut parts = vec![manifest_of(&manifest)];
    parts.extend(items.iter().map(|(_, _, bytes)| file(bytes)));
    finish_form(api, multipart(parts)).await
}

/// [`finish`] that must be answered 200 (whatever each item's outcome);
/// answers the items' outcomes.
async fn finish_items(api: &Api, items: &[Claim<'_>]) -> Vec<Value> {
    let (s, answer) = finish(api, items).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let outcomes = answer["items"].as_array().unwrap();
    assert_eq!(outcomes.len(), items.len(), "{answer}");
    outcomes.clone()
}

async fn upload_status(api: &Api, upload_id: &str) -> Value {
    let (s, session) = api.get(&format!("/api/v1/uploads/{upload_id}")).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    session
}

fn id(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_string()
}

/// The bytes of file 0 of the asset's latest version (the download must succeed).
async fn latest_bytes(api: &Api, asset_id: &str) -> Vec<u8> {
    let (s, back) = api.latest_file(asset_id).await;
    assert_eq!(s, StatusCode::OK, "download of {asset_id}");
    back
}

#[tokio::test]
async fn batch_create_answers_each_item_on_its_own() {
    let (_lab, [User { id: alice_id, api }, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);
    let alice = me(&api).await;
    assert_eq!(alice, alice_id);

    let existing = api.personal_asset(&alice, "existing").await;
    assert_eq!(asset_count(&api).await, 1);

    let items = vec![
        // 0: a new personal asset.
        json!({
            "asset": {"title": "fresh", "owner_type": "user", "owner_id": alice, "tags": ["t1"]},
            "upload": {"files": [{"name": "a/b.txt", "size": 5}], "chunk_size": 4096},
        }),
        // 1: an invalid owner type.
        json!({
            "asset": {"title": "bad owner", "owner_type": "group", "owner_id": alice},
            "upload": {"files": [{"name": "x", "size": 1}]},
        }),
        // 2: an asset that does not exist.
        version_item("no-such-asset", "x", 1),
        // 3: a new version of an existing asset.
        version_item(&existing, "v2.bin", 10),
        // 4: both `asset` and `asset_id`.
        json!({
            "asset": {"title": "both", "owner_type": "user", "owner_id": alice},
            "asset_id": existing,
            "upload": {"files": [{"name": "x", "size": 1}]},
        }),
        // 5: neither.
        json!({"upload": {"files": [{"name": "x", "size": 1}]}}),
        // 6: probe_dedup is not available in a batch.
        json!({
            "asset": {"title": "probe", "owner_type": "user", "owner_id": alice},
            "upload": {"files": [{"name": "x", "size": 1}], "probe_dedup": true},
        }),
        // 7: a personal asset of somebody else.
        new_asset_item(&bob.id, "not mine", "x", 1),
        // 8: a valid asset with an invalid upload (chunk size not a power of two).
        json!({
            "asset": {"title": "bad upload", "owner_type": "user", "owner_id": alice},
            "upload": {"files": [{"name": "x", "size": 1}], "chunk_size": 1000},
        }),
        // 9: a valid asset with an invalid file name.
        new_asset_item(&alice, "bad name", "../escape", 1),
    ];
    let (s, answer) = batch(&api, items).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let got = answer["items"].as_array().unwrap();
    assert_eq!(got.len(), 10, "{answer}");

    let fresh = ok_item(&got[0]);
    assert_eq!(fresh["status"], "open", "{fresh}");
    assert_eq!(fresh["chunk_size"], 4096, "{fresh}");
    assert_eq!(fresh["files"][0]["name"], "a/b.txt", "{fresh}");
    assert_eq!(fresh["files"][0]["size"], 5, "{fresh}");
    assert_eq!(fresh["files"][0]["chunk_count"], 1, "{fresh}");
    assert_eq!(fresh["files"][0]["received_chunks"], json!([]), "{fresh}");
    let fresh_asset = id(fresh, "asset_id");
    assert_ne!(fresh_asset, existing);
    let (s, asset) = api.get(&format!("/api/v1/assets/{fresh_asset}")).await;
    assert_eq!(s, StatusCode::OK, "{asset}");
    assert_eq!(asset["title"], "fresh");
    assert_eq!(asset["owner_type"], "user");
    assert_eq!(asset["owner_id"], alice.as_str());
    assert_eq!(asset["tags"], json!(["t1"]));
    assert!(asset["latest_content"].is_null(), "{asset}");
    // The session is readable on its own.
    let state = upload_status(&api, &id(fresh, "upload_id")).await;
    assert_eq!(state["asset_id"], fresh_asset.as_str());
    assert_eq!(state["status"], "open");

    assert_item_err(&got[1], "ERR_INVALID_INPUT");
    assert_item_err(&got[2], "ERR_NOT_FOUND");

    let v2 = ok_item(&got[3]);
    assert_eq!(v2["asset_id"], existing.as_str(), "{v2}");
    assert_eq!(v2["status"], "open");
    assert_eq!(v2["files"][0]["name"], "v2.bin");
    assert_eq!(v2["files"][0]["size"], 10);
    assert_ne!(v2["upload_id"], fresh["upload_id"]);
    assert_ne!(v2["content_id"], fresh["content_id"]);

    assert_item_err(&got[4], "ERR_INVALID_INPUT");
    assert_item_err(&got[5], "ERR_INVALID_INPUT");
    assert_item_err(&got[6], "ERR_INVALID_INPUT");
    assert!(
        got[6]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("probe_dedup"),
        "{}",
        got[6]
    );
    assert_item_err(&got[7], "ERR_PERMISSION_DENIED");
    assert_item_err(&got[8], "ERR_INVALID_INPUT");
    assert_item_err(&got[9], "ERR_INVALID_INPUT");

    // Only the one good new-asset item created an asset.
    assert_eq!(asset_count(&api).await, 2);
    let (_, page) = api.get("/api/v1/assets").await;
    let mut titles: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(titles, ["existing", "fresh"]);
    // Bob got nothing either.
    assert_eq!(asset_count(&bob.api).await, 0);

    // The session opened in the batch takes the usual chunk route too.
    let upload_id = id(v2, "upload_id");
    let bytes = data(10, 3);
    let (s, ack) = api.put_chunk(&upload_id, 0, 0, &bytes).await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    let (s, version) = api.complete(&upload_id, &[&bytes]).await;
    assert_eq!(s, StatusCode::OK, "{version}");
    assert_eq!(version["asset_id"], existing.as_str());
    assert_eq!(version["content_id"], v2["content_id"]);
}

#[tokio::test]
async fn batch_create_refuses_empty_and_oversized_batches() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);

    assert_err(&batch(&api, vec![]).await, INVALID_INPUT);

    let too_many: Vec<Value> = (0..=MAX_BATCH_ITEMS)
        .map(|i| new_asset_item(&alice, &format!("a{i}"), "f.bin", 1))
        .collect();
    assert_eq!(too_many.len(), MAX_BATCH_ITEMS + 1);
    assert_err(&batch(&api, too_many).await, INVALID_INPUT);
    // Nothing of the refused request was created.
    assert_eq!(asset_count(&api).await, 0);

    // Exactly MAX_BATCH_ITEMS is fine.
    let existing = api.personal_asset(&alice, "many versions").await;
    let most: Vec<Value> = (0..MAX_BATCH_ITEMS)
        .map(|i| version_item(&existing, &format!("f{i}.bin"), 1))
        .collect();
    let (s, answer) = batch(&api, most).await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let items = answer["items"].as_array().unwrap();
    assert_eq!(items.len(), MAX_BATCH_ITEMS);
    let mut uploads = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let session = ok_item(item);
        assert_eq!(session["asset_id"], existing.as_str());
        // Item order is kept.
        assert_eq!(session["files"][0]["name"], format!("f{i}.bin"));
        assert!(uploads.insert(id(session, "upload_id")));
    }

    // Not signed in: the whole request is refused.
    let anon = lab.server.api("dtr_nope");
    assert_err(
        &batch(&anon, vec![new_asset_item(&alice, "x", "x", 1)]).await,
        AUTH_REQUIRED,
    );
    assert_eq!(asset_count(&api).await, 1);
}

#[tokio::test]
async fn finish_stores_small_files_and_is_idempotent() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);

    let files: Vec<(&str, Vec<u8>)> = vec![
        ("small.txt", data(1000, 1)),
        ("empty.txt", Vec::new()),
        // The largest file the route takes (one chunk at the default chunk size).
        ("largest.bin", data(MAX_SMALL_FILE as usize, 2)),
    ];
    let specs: Vec<(&str, usize)> = files.iter().map(|(n, d)| (*n, d.len())).collect();
    let sessions = open_batch(&api, &alice, &specs).await;
    let ids: Vec<String> = sessions.iter().map(|s| id(s, "upload_id")).collect();
    for s in &sessions {
        assert_eq!(s["files"][0]["chunk_count"], 1, "{s}");
    }

    let items: Vec<Claim> = ids
        .iter()
        .zip(&files)
        .map(|(id, (_, d))| claim(id, d))
        .collect();
    let got = finish_items(&api, &items).await;
    assert_eq!(got.len(), 3);
    let mut contents = Vec::new();
    for ((item, session), (name, bytes)) in got.iter().zip(&sessions).zip(&files) {
        let version = ok_item(item);
        assert_eq!(version["status"], "complete", "{version}");
        assert_eq!(version["asset_id"], session["asset_id"], "{version}");
        assert_eq!(version["content_id"], session["content_id"], "{version}");
        assert_eq!(version["total_bytes"], bytes.len(), "{version}");
        assert_eq!(version["files"][0]["name"], *name, "{version}");
        assert_eq!(version["files"][0]["size"], bytes.len(), "{version}");
        assert_eq!(version["files"][0]["checksum"], sum(bytes), "{version}");
        assert!(!version["completed_at"].is_null(), "{version}");

        let upload_id = id(session, "upload_id");
        let state = upload_status(&api, &upload_id).await;
        assert_eq!(state["status"], "complete", "{state}");
        assert_eq!(state["files"][0]["received_chunks"], json!([0]), "{state}");

        // The bytes read back, by content id and as the asset's latest.
        let asset = id(version, "asset_id");
        let cid = id(version, "content_id");
        let path = format!("/api/v1/assets/{asset}/contents/{cid}/files/0");
        let (s, back) = api.fetch(&path, None).await;
        assert_eq!(s, StatusCode::OK, "{name}");
        assert!(back == *bytes, "{name}: downloaded bytes differ");
        assert_eq!(sum(&back), sum(bytes));
        let latest = latest_bytes(&api, &asset).await;
        assert!(latest == *bytes, "{name}: latest bytes differ");
        let (_, a) = api.get(&format!("/api/v1/assets/{asset}")).await;
        assert_eq!(a["latest_content"]["content_id"], cid.as_str(), "{a}");
        contents.push(cid);
    }
    let sent = lab.server.metric("dataerai_upload_bytes_total");
    assert_eq!(sent, files.iter().map(|(_, d)| d.len() as u64).sum::<u64>());

    // The same request again: every item answers the same version.
    let again = finish_items(&api, &items).await;
    for ((item, first), cid) in again.iter().zip(&got).zip(&contents) {
        let version = ok_item(item);
        assert_eq!(version["content_id"], cid.as_str(), "{version}");
        assert_eq!(version["files"], first["result"]["files"], "{version}");
        assert_eq!(version["status"], "complete");
    }
    // One version per asset, and no byte counted twice.
    for session in &sessions {
        let asset = id(session, "asset_id");
        let (_, list) = api.get(&format!("/api/v1/assets/{asset}/contents")).await;
        assert_eq!(list["total"], 1, "{list}");
    }
    assert_eq!(lab.server.metric("dataerai_upload_bytes_total"), sent);

    // A retry that claims other bytes for a completed session is refused.
    let other = data(1000, 9);
    let answer = finish_items(&api, &[claim(&ids[0], &other)]).await;
    assert_item_err(&answer[0], "ERR_CONFLICT");
    let back = latest_bytes(&api, &id(&sessions[0], "asset_id")).await;
    assert!(back == files[0].1, "the completed file changed");
}

#[tokio::test]
async fn finish_answers_each_item_on_its_own() {
    let (lab, [User { id: alice, api }, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);
    let (bob, bob_api) = (bob.id, bob.api);

    let wrong_sum = data(300, 1);
    let good = data(400, 2);
    let wrong_len = data(500, 3);
    let two_chunks = data(2000, 4);
    let too_big = data(MAX_SMALL_FILE as usize + 1, 5);
    let sessions = open_batch(
        &api,
        &alice,
        &[
            ("wrong-sum.bin", wrong_sum.len()),
            ("good.bin", good.len()),
            ("wrong-len.bin", wrong_len.len()),
            ("too-big.bin", too_big.len()),
        ],
    )
    .await;
    let ids: Vec<String> = sessions.iter().map(|s| id(s, "upload_id")).collect();
    // A file of two chunks of 1024 bytes.
    let (s, answer) = batch(
        &api,
        vec![json!({
            "asset": {"title": "two chunks", "owner_type": "user", "owner_id": alice},
            "upload": {"files": [{"name": "two.bin", "size": two_chunks.len()}], "chunk_size": 1024},
        })],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let two = ok_item(&answer["items"][0]).clone();
    assert_eq!(two["files"][0]["chunk_count"], 2, "{two}");
    let two_id = id(&two, "upload_id");
    // Bob's own session.
    let bob_sessions = open_batch(&bob_api, &bob, &[("bob.bin", 10)]).await;
    let bob_id = id(&bob_sessions[0], "upload_id");
    let bob_bytes = data(10, 6);

    let other = data(300, 7);
    let short = &wrong_len[..499];
    let got = finish_items(
        &api,
        &[
            // Another file's checksum.
            (&ids[0], sum(&other), &wrong_sum),
            claim(&ids[1], &good),
            claim(&ids[2], short),
            claim(&two_id, &two_chunks),
            claim(&bob_id, &bob_bytes),
            claim(&ids[3], &too_big),
            claim("no-such-upload", &good),
            (&ids[2], "md5:1234".to_string(), &wrong_len),
        ],
    )
    .await;
    assert_item_err(&got[0], "ERR_INTEGRITY");
    let version = ok_item(&got[1]);
    assert_eq!(version["status"], "complete");
    assert_eq!(version["files"][0]["checksum"], sum(&good));
    assert_item_err(&got[2], "ERR_INVALID_INPUT");
    assert_item_err(&got[3], "ERR_INVALID_INPUT");
    // Another user's session is as unknown as a missing one.
    assert_item_err(&got[4], "ERR_NOT_FOUND");
    assert_item_err(&got[5], "ERR_INVALID_INPUT");
    assert_item_err(&got[6], "ERR_NOT_FOUND");
    assert_item_err(&got[7], "ERR_INVALID_INPUT");

    // The good item completed; every failed session is still open with nothing received.
    assert_eq!(upload_status(&api, &ids[1]).await["status"], "complete");
    for upload_id in [&ids[0], &ids[2], &ids[3], &two_id] {
        let state = upload_status(&api, upload_id).await;
        assert_eq!(state["status"], "open", "{state}");
        assert_eq!(state["files"][0]["received_chunks"], json!([]), "{state}");
    }
    let bob_state = upload_status(&bob_api, &bob_id).await;
    assert_eq!(bob_state["status"], "open", "{bob_state}");
    assert_eq!(bob_state["files"][0]["received_chunks"], json!([]));
    for session in [&sessions[0], &sessions[2]] {
        let asset = id(session, "asset_id");
        assert_err(
            &api.get(&format!("/api/v1/assets/{asset}/contents/latest"))
                .await,
            NOT_FOUND,
        );
    }
    assert_eq!(
        lab.server.metric("dataerai_upload_bytes_total"),
        good.len() as u64
    );

    // The failed sessions finish once their bytes are right.
    let answer = finish_items(
        &api,
        &[claim(&ids[0], &wrong_sum), claim(&ids[2], &wrong_len)],
    )
    .await;
    for (item, (session, bytes)) in answer
        .iter()
        .zip([(&sessions[0], &wrong_sum), (&sessions[2], &wrong_len)])
    {
        let version = ok_item(item);
        assert_eq!(version["content_id"], session["content_id"]);
        assert_eq!(version["files"][0]["checksum"], sum(bytes));
        let back = latest_bytes(&api, &id(session, "asset_id")).await;
        assert!(back == *bytes, "downloaded bytes differ");
    }
    // Bob finishes his own session himself.
    let answer = finish_items(&bob_api, &[claim(&bob_id, &bob_bytes)]).await;
    ok_item(&answer[0]);
    // The two-chunk session still completes through the chunk route.
    for (ci, piece) in two_chunks.chunks(1024).enumerate() {
        let (s, ack) = api.put_chunk(&two_id, 0, ci as u64, piece).await;
        assert_eq!(s, StatusCode::OK, "{ack}");
    }
    let (s, version) = api.complete(&two_id, &[&two_chunks]).await;
    assert_eq!(s, StatusCode::OK, "{version}");
}

#[tokio::test]
async fn finish_refuses_malformed_requests() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);

    let a = data(100, 1);
    let b = data(200, 2);
    let sessions = open_batch(&api, &alice, &[("a.bin", a.len()), ("b.bin", b.len())]).await;
    let ids: Vec<String> = sessions.iter().map(|s| id(s, "upload_id")).collect();
    let manifest = json!({"items": [
        {"upload_id": ids[0], "checksum": sum(&a)},
        {"upload_id": ids[1], "checksum": sum(&b)},
    ]});

    // Each refused as a whole: what is wrong, and the parts sent.
    let cases = [
        (
            "the first part is not the manifest",
            vec![file(&a), manifest_of(&manifest), file(&b)],
        ),
        (
            "no part is named manifest",
            vec![("manifesto", manifest_part(&manifest)), file(&a), file(&b)],
        ),
        (
            "two items, one file part",
            vec![manifest_of(&manifest), file(&a)],
        ),
        (
            "two items, three file parts",
            vec![manifest_of(&manifest), file(&a), file(&b), file(&b)],
        ),
        (
            "a manifest that is not JSON",
            vec![("manifest", Part::text("{\"items\": [ not json")), file(&a)],
        ),
        (
            "a manifest that is not a manifest",
            vec![("manifest", Part::text("{\"uploads\": []}")), file(&a)],
        ),
        (
            "an empty manifest",
            vec![manifest_of(&json!({"items": []}))],
        ),
        (
            "after the manifest, a part that is not a file",
            vec![manifest_of(&manifest), file(&a), ("extra", file_part(&b))],
        ),
        ("no manifest at all", vec![]),
    ];
    for (case, parts) in cases {
        let reply = finish_form(&api, multipart(parts)).await;
        assert_err_for(case, &reply, INVALID_INPUT);
    }

    // None of the refused requests stored or completed anything.
    for upload_id in &ids {
        let state = upload_status(&api, upload_id).await;
        assert_eq!(state["status"], "open", "{state}");
        assert_eq!(state["files"][0]["received_chunks"], json!([]), "{state}");
    }
    assert_eq!(lab.server.metric("dataerai_upload_bytes_total"), 0);

    // Not signed in.
    let anon = lab.server.api("dtr_nope");
    assert_err(&finish(&anon, &[claim(&ids[0], &a)]).await, AUTH_REQUIRED);

    // The well-formed request still works afterwards.
    let answer = finish_items(&api, &[claim(&ids[0], &a), claim(&ids[1], &b)]).await;
    for item in &answer {
        assert_eq!(ok_item(item)["status"], "complete");
    }
}

#[tokio::test]
async fn items_failing_in_the_store_fail_alone() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    lab.server.set_user_quota("alice@lab.org", 100);
    let pid = api.create_project("P").await;
    let existing = api.personal_asset(&alice, "existing").await;

    // Reservations add up inside the batch: 60 fits, 60 more does not, 30 does.
    let (s, answer) = batch(
        &api,
        vec![
            new_asset_item(&alice, "first", "a.bin", 60),
            new_asset_item(&alice, "second", "b.bin", 60),
            version_item(&existing, "c.bin", 30),
            json!({
                "asset": {"title": "project asset", "owner_type": "project", "owner_id": pid},
                "upload": {"files": [{"name": "d.bin", "size": 500}]},
            }),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{answer}");
    let got = answer["items"].as_array().unwrap();
    assert_eq!(got.len(), 4, "{answer}");
    let first = ok_item(&got[0]).clone();
    assert_item_err(&got[1], "ERR_QUOTA_EXCEEDED");
    let third = ok_item(&got[2]).clone();
    assert_eq!(third["asset_id"], existing.as_str());
    let project_session = ok_item(&got[3]).clone();
    // The refused item left no asset behind.
    assert_eq!(asset_count(&api).await, 2);
    let (_, page) = api.get("/api/v1/assets").await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["title"] != "second"),
        "{page}"
    );
    let (_, listed) = api
        .get(&format!("/api/v1/assets?owner_type=project&owner_id={pid}"))
        .await;
    assert_eq!(listed["total"], 1, "{listed}");

    // The personal quota shrinks: the personal item fails, the project one completes.
    lab.server.set_user_quota("alice@lab.org", 50);
    let a = data(60, 1);
    let d = data(500, 2);
    let first_id = id(&first, "upload_id");
    let project_id = id(&project_session, "upload_id");
    let answer = finish_items(&api, &[claim(&first_id, &a), claim(&project_id, &d)]).await;
    assert_item_err(&answer[0], "ERR_QUOTA_EXCEEDED");
    assert_eq!(ok_item(&answer[1])["status"], "complete");
    let state = upload_status(&api, &first_id).await;
    assert_eq!(state["status"], "open", "{state}");
    assert_eq!(state["files"][0]["received_chunks"], json!([]), "{state}");
    let back = latest_bytes(&api, &id(&project_session, "asset_id")).await;
    assert!(back == d, "project file differs");

    // With room again, the personal item finishes (its bytes were kept or are sent again).
    lab.server.set_user_quota("alice@lab.org", 1000);
    let answer = finish_items(&api, &[claim(&first_id, &a)]).await;
    assert_eq!(ok_item(&answer[0])["files"][0]["checksum"], sum(&a));
    let back = latest_bytes(&api, &id(&first, "asset_id")).await;
    assert!(back == a, "personal file differs");
}

#[tokio::test]
async fn finish_after_the_chunk_was_sent_on_its_own() {
    let (_lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);

    let a = data(500, 1);
    let b = data(700, 2);
    let c = data(300, 3);
    let sessions = open_batch(
        &api,
        &alice,
        &[("a.bin", a.len()), ("b.bin", b.len()), ("c.bin", c.len())],
    )
    .await;
    let ids: Vec<String> = sessions.iter().map(|s| id(s, "upload_id")).collect();
    for (upload_id, bytes) in [(&ids[0], &a), (&ids[1], &b)] {
        let (s, ack) = api.put_chunk(upload_id, 0, 0, bytes).await;
        assert_eq!(s, StatusCode::OK, "{ack}");
        // For a one-chunk file the chunk digest is the file's BLAKE3.
        assert_eq!(ack["checksum"], sum(bytes), "{ack}");
    }

    // `a` is finished with its bytes; `b` is claimed with other bytes of its length.
    let other = data(700, 9);
    let answer = finish_items(&api, &[claim(&ids[0], &a), claim(&ids[1], &other)]).await;
    let version = ok_item(&answer[0]);
    assert_eq!(version["files"][0]["checksum"], sum(&a));
    assert_item_err(&answer[1], "ERR_CONFLICT");
    let state = upload_status(&api, &ids[1]).await;
    assert_eq!(state["status"], "open", "{state}");
    assert_eq!(state["files"][0]["received_chunks"], json!([0]), "{state}");
    // The chunk held for `b` is intact: the session completes with its bytes.
    let (s, version) = api.complete(&ids[1], &[&b]).await;
    assert_eq!(s, StatusCode::OK, "{version}");
    for (session, bytes) in [(&sessions[0], &a), (&sessions[1], &b)] {
        let back = latest_bytes(&api, &id(session, "asset_id")).await;
        assert!(back == **bytes, "downloaded bytes differ");
    }

    // The same session twice in one request: one item completes it, and the
    // other answers the version it completed (as a retried request would).
    let answer = finish_items(&api, &[claim(&ids[2], &c), claim(&ids[2], &c)]).await;
    for item in &answer {
        assert!(item["error"].is_null(), "a duplicate failed: {answer:?}");
        assert_eq!(item["result"]["content_id"], sessions[2]["content_id"]);
        assert_eq!(item["result"]["files"][0]["checksum"], sum(&c));
    }
    let asset = id(&sessions[2], "asset_id");
    let (_, list) = api.get(&format!("/api/v1/assets/{asset}/contents")).await;
    assert_eq!(list["total"], 1, "{list}");
    let back = latest_bytes(&api, &asset).await;
    assert!(back == c, "downloaded bytes differ");
}
