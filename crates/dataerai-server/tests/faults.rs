//! The test-only fault switch (`DATAERAI_FAULTS`, cargo feature
//! `fault-injection`): a chunk corrupted in flight is rejected and can be
//! re-sent, a 503 carries `Retry-After`, and a full disk answers 507 with the
//! session kept open so the upload resumes once space is freed.
#![cfg(feature = "fault-injection")]

mod common;

use std::ops::Range;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const CS: u64 = 4096;

async fn chunk_put(api: &Api, upload_id: &str, chunk: u64, data: &[u8]) -> reqwest::Response {
    let digest = api.chunk_digest(upload_id, 0, chunk, data).await;
    api.request(Method::PUT, &Api::chunk_path(upload_id, 0, chunk))
        .header("x-dataerai-chunk-blake3", digest)
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

fn chunk(body: &[u8], i: u64) -> &[u8] {
    let start = (i * CS) as usize;
    &body[start..(start + CS as usize).min(body.len())]
}

/// PUT chunks `chunks` of `body` (file 0), each of which must be stored.
async fn put_chunks_ok(api: &Api, upload_id: &str, body: &[u8], chunks: Range<u64>) {
    for i in chunks {
        let status = chunk_put(api, upload_id, i, chunk(body, i)).await.status();
        assert_eq!(status, StatusCode::OK, "chunk {i}");
    }
}

#[tokio::test]
async fn corrupt_and_unavailable_chunks_are_retryable() {
    // PUT #1 → 503; of the bodies that reach storage, #2 is corrupted.
    let (lab, [alice]) = Lab::start_with(["alice@lab.org"], |b| {
        b.faults("unavailable_chunk=1,corrupt_chunk=2")
    });
    let api = &alice.api;
    let asset = alice.personal_asset("f").await;
    let body = data(3 * CS as usize, 9);
    let (_, session) = api
        .open_upload(&asset, json!([{"name": "f", "size": body.len()}]), CS)
        .await;
    let upload_id = session["upload_id"].as_str().unwrap();

    let resp = chunk_put(api, upload_id, 0, chunk(&body, 0)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "ERR_SERVER_UNREACHABLE");

    // Body #1 (the retry of chunk 0) is stored; body #2 (chunk 1) is corrupted in flight.
    put_chunks_ok(api, upload_id, &body, 0..1).await;
    let resp = chunk_put(api, upload_id, 1, chunk(&body, 1)).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "ERR_INTEGRITY");
    let (_, state) = api.get(&format!("/api/v1/uploads/{upload_id}")).await;
    assert_eq!(
        state["files"][0]["received_chunks"],
        json!([0]),
        "nothing recorded"
    );

    // Re-sent, it is accepted; the upload completes with the right bytes.
    put_chunks_ok(api, upload_id, &body, 1..3).await;
    let (s, v) = api.complete(upload_id, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        lab.server.metric("dataerai_upload_bytes_total"),
        body.len() as u64
    );
    assert_eq!(
        lab.server
            .metric("dataerai_errors_total{code=\"ERR_SERVER_UNREACHABLE\"}"),
        1
    );
}

#[tokio::test]
async fn disk_full_keeps_the_session_open_until_space_is_freed() {
    let body = data(3 * CS as usize + 10, 4);
    let faults = format!("enospc_after_bytes={}", 2 * CS + 100);
    let (lab, [alice]) = Lab::start_with(["alice@lab.org"], |b| b.faults(&faults));
    let api = &alice.api;
    let asset = alice.personal_asset("big").await;
    let (_, session) = api
        .open_upload(&asset, json!([{"name": "big", "size": body.len()}]), CS)
        .await;
    let upload_id = session["upload_id"].as_str().unwrap().to_string();

    put_chunks_ok(api, &upload_id, &body, 0..2).await;
    let full = api.put_chunk(&upload_id, 0, 2, chunk(&body, 2)).await;
    assert_err(&full, NO_SPACE);
    // Nothing is published, the session stays open with what it had.
    assert_err(&api.complete(&upload_id, &[&body]).await, INVALID_INPUT);
    let (_, state) = api.get(&format!("/api/v1/uploads/{upload_id}")).await;
    assert_eq!(state["status"], "open");
    assert_eq!(state["files"][0]["received_chunks"], json!([0, 1]));
    let (_, versions) = api.get(&format!("/api/v1/assets/{asset}/contents")).await;
    assert_eq!(versions["total"], 0);
    assert_eq!(
        lab.server
            .metric("dataerai_errors_total{code=\"ERR_NO_SPACE\"}"),
        1
    );
    // No temporary file is left behind by the failed write.
    let content_id = session["content_id"].as_str().unwrap();
    let held = std::fs::read_dir(blob_content_dir(lab.dir.path()).join(content_id).join("0"))
        .unwrap()
        .count();
    assert_eq!(held, 2);
    lab.server.stop();

    // "Space freed": the same data directory, no fault. The session resumes.
    let server = TestServer::start(lab.dir.path());
    let api = server.api(alice.token());
    put_chunks_ok(&api, &upload_id, &body, 2..4).await;
    let (s, v) = api.complete(&upload_id, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, got) = api.latest_file(&asset).await;
    assert_eq!(&got[..], &body[..]);
}

#[tokio::test]
async fn malformed_fault_switch_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(dataerai_testkit::server::server_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("DATAERAI_FAULTS", "explode=1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown fault"));
}
