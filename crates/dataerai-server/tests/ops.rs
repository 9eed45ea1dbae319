//! Operations: exact Prometheus counters at `/metrics`, `/readyz`, and 503 +
//! `Retry-After` while the server drains after SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};

const CS: u64 = 4096;

#[tokio::test]
async fn metrics_count_exactly() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let server = &lab.server;

    let text = server.metrics();
    for family in [
        "dataerai_http_requests_total",
        "dataerai_upload_bytes_total",
        "dataerai_upload_chunks_total",
        "dataerai_download_bytes_total",
        "dataerai_active_uploads",
        "dataerai_errors_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    assert_eq!(metric_value(&text, "dataerai_upload_bytes_total"), 0);

    let asset = api.personal_asset(&alice, "m").await;
    let body = data(CS as usize + 500, 2);
    let files = serde_json::json!([{"name": "f", "size": body.len()}]);
    let session = created(api.open_upload(&asset, files, CS).await);
    let upload_id = session["upload_id"].as_str().unwrap();
    assert_eq!(server.metric("dataerai_active_uploads"), 1);
    let (head, tail) = body.split_at(CS as usize);
    assert_eq!(api.put_chunk(upload_id, 0, 0, head).await.0, StatusCode::OK);

    // A rejected chunk (bad hash) counts as an error, not as accepted bytes.
    let bad = api
        .put_chunk_with_hash(upload_id, 0, 1, tail.to_vec(), &"0".repeat(64))
        .await;
    assert_err(&bad, INTEGRITY);
    assert_eq!(server.metric("dataerai_upload_bytes_total"), CS);
    assert_eq!(
        server.metric("dataerai_errors_total{code=\"ERR_INTEGRITY\"}"),
        1
    );
    assert_eq!(api.put_chunk(upload_id, 0, 1, tail).await.0, StatusCode::OK);
    assert_eq!(
        server.metric("dataerai_upload_bytes_total"),
        body.len() as u64
    );
    assert_eq!(server.metric("dataerai_upload_chunks_total"), 2);
    let (s, _) = api.complete(upload_id, &[&body]).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(server.metric("dataerai_active_uploads"), 0);

    // Downloads: whole file, then a range.
    let path = format!("/api/v1/assets/{asset}/contents/latest/files/0");
    assert_eq!(api.fetch(&path, None).await.1.len(), body.len());
    let (s, part) = api.fetch(&path, Some("bytes=10-4199")).await;
    assert_eq!((s, part.len()), (StatusCode::PARTIAL_CONTENT, 4190));
    assert_eq!(
        server.metric("dataerai_download_bytes_total"),
        body.len() as u64 + 4190
    );

    // Requests by method and status, errors by code.
    let text = server.metrics();
    assert_eq!(
        metric_value(
            &text,
            "dataerai_http_requests_total{method=\"PUT\",status=\"200\"}"
        ),
        2
    );
    assert_eq!(
        metric_value(
            &text,
            "dataerai_http_requests_total{method=\"PUT\",status=\"422\"}"
        ),
        1
    );
    assert!(
        metric_value(
            &text,
            "dataerai_http_requests_total{method=\"GET\",status=\"206\"}"
        ) == 1
    );
    assert_err(&api.get("/api/v1/assets/nope").await, NOT_FOUND);
    assert_eq!(
        server.metric("dataerai_errors_total{code=\"ERR_NOT_FOUND\"}"),
        1
    );
}

#[tokio::test]
async fn readyz_and_drain_on_sigterm() {
    let (lab, [User { api, .. }]) = Lab::start_with(["alice@lab.org"], |b| {
        b.args(&["--shutdown-drain-ms", "3000"])
    });
    let server = lab.server;
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(api.get("/api/v1/me").await.0, StatusCode::OK);

    server.terminate();
    // The flag is set as soon as the signal is handled; wait for it to show.
    let deadline = Instant::now() + Duration::from_secs(2);
    let refused = loop {
        let resp = api.request(Method::GET, "/api/v1/me").send().await.unwrap();
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            break resp;
        }
        assert!(Instant::now() < deadline, "no 503 after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ERR_SERVER_UNREACHABLE");
    let ready = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.headers().contains_key("retry-after"));
    // Liveness stays up while draining; then the process exits cleanly.
    let live = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    server.stop();
}

#[tokio::test]
async fn readyz_fails_when_blobs_are_not_writable() {
    if scaleout() {
        // The directory store only; tests/scaleout.rs makes S3 and PostgreSQL fail.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    // Replace the blob directory by a file: writes into it must fail (this
    // holds even for root, unlike permission bits).
    let blobs = dir.path().join("blobs");
    std::fs::rename(&blobs, dir.path().join("blobs.moved")).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();
    let resp = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().contains_key("retry-after"));
    std::fs::remove_file(&blobs).unwrap();
    std::fs::rename(dir.path().join("blobs.moved"), &blobs).unwrap();
    let resp = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
