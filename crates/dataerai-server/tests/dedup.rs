//! Content-addressed deduplication (per owner) against the real server binary:
//! reuse without a byte sent, refusal of chunks for reused files, checksum
//! checks, no reuse across owners, and bytes kept alive while referenced.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CS: u64 = 4096;

fn sum(data: &[u8]) -> String {
    format!("blake3:{}", hex_blake3(data))
}

/// A file of an upload announced with its size and checksum (so the server
/// may reuse bytes it already stores).
fn announced(name: &str, bytes: &[u8]) -> Value {
    json!({"name": name, "size": bytes.len(), "checksum": sum(bytes)})
}

/// Blob directories of content versions on disk.
fn stored_contents(server: &TestServer) -> Vec<String> {
    // (An S3 bucket has no directory before its first object.)
    let Ok(entries) = std::fs::read_dir(blob_content_dir(&server.data_dir)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap())
        .filter(|e| blob_files(&e.path()) > 0)
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn same_owner_reuses_bytes_and_keeps_them_while_referenced() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let server = &lab.server;

    let big = data(2 * CS as usize + 100, 7);
    let first_asset = api.personal_asset(&alice, "original").await;
    let first = api.upload(&first_asset, &[("a.bin", &big)], CS).await;
    let first_content = first["content_id"].as_str().unwrap().to_string();
    let sent_before = server.metric("dataerai_upload_bytes_total");
    assert_eq!(sent_before, big.len() as u64);

    // A second asset of the same owner, with another chunk size, announces the
    // same bytes (checksum in upper case: normalised) plus a new small file.
    let second_asset = api.personal_asset(&alice, "copy").await;
    let small = data(10, 1);
    let (s, session) = api
        .open_upload(
            &second_asset,
            json!([
                {"name": "copy/a.bin", "size": big.len(), "checksum": sum(&big).to_uppercase().replace("BLAKE3:", "blake3:")},
                {"name": "new.txt", "size": small.len(), "checksum": sum(&small)},
            ]),
            2048,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    assert_eq!(session["files"][0]["deduplicated"], true);
    assert_eq!(
        session["files"][0]["received_chunks"],
        json!([0, 1, 2, 3, 4])
    );
    assert_eq!(session["files"][1]["deduplicated"], false);
    assert_eq!(session["files"][1]["received_chunks"], json!([]));
    let upload_id = session["upload_id"].as_str().unwrap();

    // No chunk may be sent for the reused file.
    let refused = api.put_chunk(upload_id, 0, 0, &big[..2048]).await;
    assert_err_mentions(&refused, INVALID_INPUT, "deduplicated");
    let (s, ack) = api.put_chunk(upload_id, 1, 0, &small).await;
    assert_eq!(s, StatusCode::OK, "{ack}");

    // The claim at `complete` is still checked against the stored checksum.
    let (s, wrong) = api.complete(upload_id, &[&small, &small]).await;
    assert_eq!(
        (s.as_u16(), &wrong["error"]["code"]),
        (422, &json!("ERR_INTEGRITY")),
        "{wrong}"
    );
    let (s, version) = api.complete(upload_id, &[&big, &small]).await;
    assert_eq!(s, StatusCode::OK, "{version}");
    assert_eq!(version["files"][0]["checksum"], sum(&big));
    let second_content = version["content_id"].as_str().unwrap().to_string();

    // Only the new file's bytes crossed the network.
    assert_eq!(
        server.metric("dataerai_upload_bytes_total"),
        sent_before + small.len() as u64
    );
    assert_eq!(
        server.metric("dataerai_dedup_bytes_total"),
        big.len() as u64
    );

    // The reused file reads back whole and by ranges across its (original) chunks.
    let path = format!("/api/v1/assets/{second_asset}/contents/latest/files/0");
    assert_eq!(api.fetch(&path, None).await, (StatusCode::OK, big.clone()));
    let (s, part) = api.fetch(&path, Some("bytes=4000-8200")).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part, &big[4000..=8200]);

    // Deleting the original keeps the bytes the copy points at.
    assert_eq!(
        api.delete(&format!("/api/v1/assets/{first_asset}")).await.0,
        204
    );
    assert!(stored_contents(server).contains(&first_content));
    assert_eq!(api.fetch(&path, None).await, (StatusCode::OK, big.clone()));

    // A third version deduplicates against the copy (the bytes are still
    // owned), then is aborted: the bytes stay.
    let files = json!([announced("again.bin", &big)]);
    let third = created(api.open_upload(&second_asset, files, CS).await);
    assert_eq!(third["files"][0]["deduplicated"], true);
    let third_id = third["upload_id"].as_str().unwrap();
    assert_eq!(
        api.delete(&format!("/api/v1/uploads/{third_id}")).await.0,
        204
    );
    assert_eq!(api.fetch(&path, None).await, (StatusCode::OK, big.clone()));

    // Deleting the last asset that refers to them frees them.
    assert_eq!(
        api.delete(&format!("/api/v1/assets/{second_asset}"))
            .await
            .0,
        204
    );
    let left = stored_contents(server);
    assert!(!left.contains(&first_content), "{left:?}");
    assert!(!left.contains(&second_content), "{left:?}");
}

#[tokio::test]
async fn no_reuse_across_owners_and_bad_checksums_refused() {
    let (_lab, [alice, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);
    let (alice_api, bob_api) = (&alice.api, &bob.api);

    let secret = data(5000, 3);
    let alice_asset = alice.personal_asset("secret").await;
    alice_api
        .upload(&alice_asset, &[("s.bin", &secret)], CS)
        .await;

    // Bob knows the hash but not the bytes: he gets no reuse, so he must send
    // them, and a wrong body is refused by the chunk hash check.
    let bob_asset = bob.personal_asset("guess").await;
    let files = json!([announced("s.bin", &secret)]);
    let session = created(bob_api.open_upload(&bob_asset, files, CS).await);
    assert_eq!(session["files"][0]["deduplicated"], false);
    assert_eq!(session["files"][0]["received_chunks"], json!([]));
    let upload_id = session["upload_id"].as_str().unwrap();
    assert_err(
        &bob_api.complete(upload_id, &[&secret]).await,
        INVALID_INPUT,
    );

    // Same checksum, other size: no reuse either.
    let (_, other_size) = alice_api
        .open_upload(
            &alice_asset,
            json!([{"name": "s.bin", "size": secret.len() + 1, "checksum": sum(&secret)}]),
            CS,
        )
        .await;
    assert_eq!(other_size["files"][0]["deduplicated"], false);

    // Malformed checksums.
    for bad in ["abc", "sha256:00", &format!("blake3:{}", "z".repeat(64))] {
        let files = json!([{"name": "x", "size": 1, "checksum": bad}]);
        let reply = alice_api.open_upload(&alice_asset, files, CS).await;
        assert_err_for(bad, &reply, INVALID_INPUT);
    }
}

async fn probe(api: &Api, asset: String, files: Value) -> (StatusCode, Value) {
    api.post(
        &format!("/api/v1/assets/{asset}/uploads"),
        json!({"files": files, "chunk_size": CS, "probe_dedup": true}),
    )
    .await
}

/// `probe_dedup` tells a client, per file sent without a checksum, whether
/// the owner stores a file of that size at all (only then is hashing it first
/// worth it), and says nothing about other owners' files.
#[tokio::test]
async fn probe_names_files_whose_size_the_owner_already_stores() {
    let (_lab, [alice, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);
    let api = &alice.api;
    let stored = data(3 * CS as usize + 5, 4);
    let first = alice.personal_asset("stored").await;
    api.upload(&first, &[("s.bin", &stored)], CS).await;

    let second = alice.personal_asset("probe").await;
    let (s, session) = probe(
        api,
        second.clone(),
        json!([
            {"name": "same-size", "size": stored.len()},
            {"name": "other-size", "size": stored.len() + 1},
            {"name": "with-sum", "size": stored.len(), "checksum": sum(&data(stored.len(), 9))},
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    let candidates: Vec<bool> = session["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["dedup_candidate"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(candidates, [true, false, false]);
    assert_eq!(session["files"][0]["deduplicated"], false);

    // Bob's files are not Alice's: nothing to reuse, nothing revealed.
    let bob_asset = bob.personal_asset("b").await;
    let (_, session) = probe(
        &bob.api,
        bob_asset,
        json!([{"name": "x", "size": stored.len()}]),
    )
    .await;
    assert_eq!(session["files"][0]["dedup_candidate"].as_bool(), None);

    // Probing is bounded.
    let many: Vec<Value> = (0..65)
        .map(|i| json!({"name": format!("f{i}"), "size": 10}))
        .collect();
    assert_err(&probe(api, second, json!(many)).await, INVALID_INPUT);
}
