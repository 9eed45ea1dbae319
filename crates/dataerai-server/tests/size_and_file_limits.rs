//! Nothing grows without bound: metadata merged by many `PATCH`es stays
//! within its 256 KiB, project descriptions within 64 KiB, and every file
//! counts against its allocation's file limit — empty files too, so sessions
//! of thousands of zero-byte files cannot grow the database for free.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn merged_metadata_stays_within_its_limit() {
    let (_lab, [alice]) = Lab::start(["alice@lab.org"]);
    let asset = alice.personal_asset("notes").await;
    let path = format!("/api/v1/assets/{asset}");
    let chunk = "x".repeat(100 * 1024);
    for key in ["a", "b"] {
        let (s, v) = alice
            .api
            .patch(&path, json!({"metadata": {key: chunk}}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // Each patch alone is small enough; the merge would not be.
    let third = alice
        .api
        .patch(&path, json!({"metadata": {"c": chunk}}))
        .await;
    assert_err_mentions(&third, INVALID_INPUT, "256 KiB");
    let (_, stored) = alice.api.get(&path).await;
    assert!(stored["metadata"].get("c").is_none());
    // Deleting a key in the same patch makes room.
    let swap = alice
        .api
        .patch(&path, json!({"metadata": {"a": null, "c": chunk}}))
        .await;
    assert_eq!(swap.0, StatusCode::OK, "{}", swap.1);
}

#[tokio::test]
async fn project_descriptions_are_bounded() {
    let (_lab, [alice]) = Lab::start(["alice@lab.org"]);
    let long = json!({"name": "p", "description": "d".repeat(64 * 1024 + 1)});
    let refused = alice.api.post("/api/v1/projects", long).await;
    assert_err_mentions(&refused, INVALID_INPUT, "64 KiB");
    let fits = json!({"name": "p", "description": "d".repeat(64 * 1024)});
    assert_eq!(
        alice.api.post("/api/v1/projects", fits).await.0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn every_file_counts_against_the_file_limit_even_empty_ones() {
    let (lab, [alice]) = Lab::start(["alice@lab.org"]);
    let project = alice.api.create_project("many files").await;
    let (_, p) = alice.api.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(p["allocation"]["max_files"], 1_000_000, "{p}");
    lab.server
        .admin(&["set-quota", "--project", &project, "--files", "5"]);
    let asset = alice.api.project_asset(&project, "empties").await;
    let empties = |n: usize| {
        (0..n)
            .map(|i| json!({"name": format!("e{i}"), "size": 0}))
            .collect::<Vec<_>>()
    };
    let first = created(alice.api.open_upload(&asset, json!(empties(4)), None).await);
    let more = alice.api.open_upload(&asset, json!(empties(2)), None).await;
    assert_err_mentions(&more, QUOTA_EXCEEDED, "file limit");
    assert_err_mentions(&more, QUOTA_EXCEEDED, "at most 5");
    let (_, p) = alice.api.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(p["allocation"]["file_count"], 4, "{p}");
    // Aborting the session frees its files.
    let id = first["upload_id"].as_str().unwrap();
    let (s, _) = alice.api.delete(&format!("/api/v1/uploads/{id}")).await;
    assert!(s.is_success(), "{s}");
    created(alice.api.open_upload(&asset, json!(empties(5)), None).await);
}
