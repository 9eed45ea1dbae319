//! The test-only fault switch (`DATAERAI_FAULTS`, cargo feature
//! `fault-injection`): a chunk corrupted in flight is rejected and can be
//! re-sent, a 503 carries `Retry-After`, and a full disk answers 507 with the
//! session kept open so the upload resumes once space is freed.
#![cfg(feature = "fault-injection")]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

const CS: u64 = 4096;

async fn chunk_put(api: &Api, upload_id: &str, chunk: u64, data: &[u8]) -> reqwest::Response {
    let digest = api.chunk_digest(upload_id, 0, chunk, data).await;
    api.client
        .put(api.url(&format!(
            "/api/v1/uploads/{upload_id}/files/0/chunks/{chunk}"
        )))
        .bearer_auth(&api.token)
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

#[tokio::test]
async fn corrupt_and_unavailable_chunks_are_retryable() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    // PUT #1 → 503; of the bodies that reach storage, #2 is corrupted.
    let server = TestServer::start_env(
        dir.path(),
        &[],
        &[("DATAERAI_FAULTS", "unavailable_chunk=1,corrupt_chunk=2")],
    );
    let api = server.api(&token);
    let asset = api.personal_asset(&alice, "f").await;
    let body = data(3 * CS as usize, 9);
    let (_, session) = api
        .open_upload(&asset, json!([{"name": "f", "size": body.len()}]), CS)
        .await;
    let upload_id = session["upload_id"].as_str().unwrap();

    let resp = chunk_put(&api, upload_id, 0, chunk(&body, 0)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "1");
    let err: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "ERR_SERVER_UNREACHABLE");

    // Body #1 (the retry of chunk 0) is stored; body #2 (chunk 1) is corrupted in flight.
    assert_eq!(
        chunk_put(&api, upload_id, 0, chunk(&body, 0))
            .await
            .status(),
        200
    );
    let resp = chunk_put(&api, upload_id, 1, chunk(&body, 1)).await;
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
    for i in 1..3 {
        assert_eq!(
            chunk_put(&api, upload_id, i, chunk(&body, i))
                .await
                .status(),
            200
        );
    }
    let (s, v) = api.complete(upload_id, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        server.metric("dataerai_upload_bytes_total"),
        body.len() as u64
    );
    assert_eq!(
        server.metric("dataerai_errors_total{code=\"ERR_SERVER_UNREACHABLE\"}"),
        1
    );
}

#[tokio::test]
async fn disk_full_keeps_the_session_open_until_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let body = data(3 * CS as usize + 10, 4);
    let limit = (2 * CS + 100).to_string();
    let faults = format!("enospc_after_bytes={limit}");
    let server = TestServer::start_env(dir.path(), &[], &[("DATAERAI_FAULTS", &faults)]);
    let api = server.api(&token);
    let asset = api.personal_asset(&alice, "big").await;
    let (_, session) = api
        .open_upload(&asset, json!([{"name": "big", "size": body.len()}]), CS)
        .await;
    let upload_id = session["upload_id"].as_str().unwrap().to_string();

    for i in 0..2 {
        assert_eq!(
            chunk_put(&api, &upload_id, i, chunk(&body, i))
                .await
                .status(),
            200
        );
    }
    let full = api.put_chunk(&upload_id, 0, 2, chunk(&body, 2)).await;
    assert_err(&full, 507, "ERR_NO_SPACE");
    // Nothing is published, the session stays open with what it had.
    assert_err(
        &api.complete(&upload_id, &[&body]).await,
        400,
        "ERR_INVALID_INPUT",
    );
    let (_, state) = api.get(&format!("/api/v1/uploads/{upload_id}")).await;
    assert_eq!(state["status"], "open");
    assert_eq!(state["files"][0]["received_chunks"], json!([0, 1]));
    let (_, versions) = api.get(&format!("/api/v1/assets/{asset}/contents")).await;
    assert_eq!(versions["total"], 0);
    assert_eq!(
        server.metric("dataerai_errors_total{code=\"ERR_NO_SPACE\"}"),
        1
    );
    // No temporary file is left behind by the failed write.
    let content_id = session["content_id"].as_str().unwrap();
    let held = std::fs::read_dir(blob_content_dir(dir.path()).join(content_id).join("0"))
        .unwrap()
        .count();
    assert_eq!(held, 2);
    server.stop();

    // "Space freed": the same data directory, no fault. The session resumes.
    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    for i in 2..4 {
        assert_eq!(
            chunk_put(&api, &upload_id, i, chunk(&body, i))
                .await
                .status(),
            200
        );
    }
    let (s, v) = api.complete(&upload_id, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, got) = api
        .fetch(
            &format!("/api/v1/assets/{asset}/contents/latest/files/0"),
            None,
        )
        .await;
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
