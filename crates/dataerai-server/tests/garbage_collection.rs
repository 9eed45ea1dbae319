//! The chunk garbage collector: orphans of every kind — an expired session's
//! chunks, a deleted asset's chunks whose removal was interrupted, a chunk
//! that landed after its session was aborted, a chunk stored with no record at
//! all — are reclaimed by `dataerai-server admin gc` (after a dry run that
//! only reports them, and never inside the grace period), and by the
//! periodic collection; every live version, including one a deduplicated
//! file still points at and an upload in progress, downloads byte-identical.
//!
//! The test plants orphans straight into the server's blob store (the
//! directory, or with `make test-scaleout` the S3 bucket), so it runs on both
//! backends.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use dataerai_store::blob::StoredContent;
use dataerai_store::{BlobStore, ChunkCheck, ChunkKey, FsBlobStore, S3BlobStore, S3Settings};
use dataerai_testkit::{backend_args, wait_until_async};
use reqwest::StatusCode;
use serde_json::json;

const CS: u64 = 4096;

/// The blob store the servers of `data_dir` use, opened by the test itself.
async fn blob_store(data_dir: &Path) -> Box<dyn BlobStore> {
    let args = backend_args(data_dir);
    match args.iter().position(|a| a == "--blob-store") {
        Some(i) => {
            let settings = S3Settings::default().with_env(|n| std::env::var(n).ok());
            Box::new(S3BlobStore::open(&args[i + 1], &settings).unwrap())
        }
        None => Box::new(FsBlobStore::open(&data_dir.join("blobs")).await.unwrap()),
    }
}

/// Store `bytes` as chunk `chunk` of file 0 under `content_id`, as a request
/// that crashed before recording it would have.
async fn plant(blobs: &dyn BlobStore, content_id: &str, chunk: u64, bytes: &[u8]) {
    let key = ChunkKey {
        content_id: content_id.to_string(),
        file_index: 0,
        chunk_index: chunk,
    };
    let body = futures::stream::iter([Ok(bytes::Bytes::copy_from_slice(bytes))]);
    let check = ChunkCheck::whole_file(bytes.len() as u64, *blake3::hash(bytes).as_bytes());
    blobs
        .put_chunk(&key, Box::pin(body), check.into())
        .await
        .unwrap();
}

async fn stored(blobs: &dyn BlobStore) -> BTreeMap<String, StoredContent> {
    let list = blobs.list_contents().await.unwrap();
    list.into_iter()
        .map(|c| (c.content_id.clone(), c))
        .collect()
}

/// `admin gc ARGS` → its `key: value` lines.
fn gc(lab: &Lab, args: &[&str]) -> BTreeMap<String, String> {
    let mut all = vec!["gc"];
    all.extend(args);
    let out = lab.server.admin(&all);
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn count(report: &BTreeMap<String, String>, key: &str) -> u64 {
    report[key].parse().unwrap()
}

// Two workers: `admin gc` runs as a blocking child process while the
// pending session's keep-alive requests go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_reclaimed_and_live_versions_kept() {
    // Sessions expire after 2 s idle; no periodic collection (the test runs it).
    let (lab, [alice]) = Lab::start_with(["alice@lab.org"], |b| {
        b.config("[uploads]\nsession_idle_s = 2\nexpiry_interval_s = 1\n[gc]\ninterval_s = 0\n")
    });
    let api = &alice.api;
    let blobs = blob_store(lab.path()).await;
    let blobs = blobs.as_ref();

    // Live: an asset with two versions, a file deduplicated against version 1
    // of an asset that is then deleted, and an upload still in progress.
    let kept = alice.personal_asset("kept").await;
    let (v1, v2) = (data(3 * CS as usize + 5, 1), data(2 * CS as usize, 2));
    api.upload(&kept, &[("f", &v1)], CS).await;
    api.upload(&kept, &[("f", &v2)], CS).await;
    let source = alice.personal_asset("dedup source").await;
    let shared = data(2 * CS as usize + 1, 3);
    api.upload(&source, &[("s", &shared)], CS).await;
    let copy = alice.personal_asset("dedup copy").await;
    let files = json!([{"name": "s", "size": shared.len(),
                        "checksum": format!("blake3:{}", hex_blake3(&shared))}]);
    let session = created(api.open_upload(&copy, files, CS).await);
    assert_eq!(session["files"][0]["deduplicated"], true, "{session}");
    let up = session["upload_id"].as_str().unwrap();
    assert_eq!(api.complete(up, &[&shared]).await.0, StatusCode::OK);
    assert_eq!(
        api.delete(&format!("/api/v1/assets/{source}")).await.0,
        StatusCode::NO_CONTENT
    );
    let pending_asset = alice.personal_asset("in progress").await;
    let pending_bytes = data(2 * CS as usize, 4);
    let pending = created(
        api.open_upload(&pending_asset, json!([{"name": "p", "size": 2 * CS}]), CS)
            .await,
    );
    let pending_id = pending["upload_id"].as_str().unwrap().to_string();
    let chunk = |i: usize| &pending_bytes[i * CS as usize..(i + 1) * CS as usize];
    assert_eq!(
        api.put_chunk(&pending_id, 0, 0, chunk(0)).await.0,
        StatusCode::OK
    );

    // Orphans. An expired session (its chunks are left to the collector):
    let gone = alice.personal_asset("expires").await;
    let expiring = api
        .send_files(&gone, &[("e", &data(2 * CS as usize, 5))], CS)
        .await;
    let expiring_id = expiring["upload_id"].as_str().unwrap().to_string();
    let expired_content = expiring["content_id"].as_str().unwrap().to_string();
    // A deleted asset whose chunk removal was interrupted (replanted here):
    let deleted = alice.personal_asset("deleted").await;
    let deleted_bytes = data(CS as usize, 6);
    let deleted_version = api.upload(&deleted, &[("d", &deleted_bytes)], CS).await;
    let deleted_content = deleted_version["content_id"].as_str().unwrap().to_string();
    assert_eq!(
        api.delete(&format!("/api/v1/assets/{deleted}")).await.0,
        StatusCode::NO_CONTENT
    );
    plant(blobs, &deleted_content, 0, &deleted_bytes).await;
    // A chunk that landed after its session was aborted:
    let aborted_asset = alice.personal_asset("aborted").await;
    let aborted = created(
        api.open_upload(&aborted_asset, json!([{"name": "a", "size": CS}]), CS)
            .await,
    );
    let aborted_id = aborted["upload_id"].as_str().unwrap();
    let aborted_content = aborted["content_id"].as_str().unwrap().to_string();
    assert_eq!(
        api.delete(&format!("/api/v1/uploads/{aborted_id}")).await.0,
        StatusCode::NO_CONTENT
    );
    plant(blobs, &aborted_content, 0, &data(CS as usize, 7)).await;
    // A chunk with no record at all:
    let stray_content = uuid_like();
    plant(blobs, &stray_content, 0, &data(100, 8)).await;

    // The pending upload stays active (a request every poll) while the
    // abandoned one expires (never asked about: asking is activity).
    wait_until_async(
        "the idle session to expire",
        Duration::from_secs(30),
        || {
            let expired = lab.server.metric("dataerai_uploads_expired_total");
            let (api, live) = (api.clone(), pending_id.clone());
            async move {
                let (_, live) = api.get(&format!("/api/v1/uploads/{live}")).await;
                assert_eq!(live["status"], "open", "{live}");
                (expired >= 1).then_some(())
            }
        },
    )
    .await;
    // From here on the pending session must stay open while the collector
    // runs: each `admin gc` is a process of its own, and four of them can
    // take longer than the 2 s idle limit on a busy machine. A request every
    // 300 ms is activity.
    let keep_alive = tokio::spawn({
        let (api, live) = (api.clone(), pending_id.clone());
        async move {
            loop {
                let (_, session) = api.get(&format!("/api/v1/uploads/{live}")).await;
                assert_eq!(session["status"], "open", "{session}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    });
    // It went with the empty asset it was opened for; its chunks stay.
    assert_err(
        &api.get(&format!("/api/v1/uploads/{expiring_id}")).await,
        NOT_FOUND,
    );

    let orphans = [
        &expired_content,
        &deleted_content,
        &aborted_content,
        &stray_content,
    ];
    let before = stored(blobs).await;
    let (mut chunks, mut bytes) = (0, 0);
    for id in orphans {
        let c = before
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id} not stored"));
        chunks += c.objects;
        bytes += c.bytes;
    }
    assert_eq!(chunks, 5);
    assert_eq!(bytes, 2 * CS + CS + CS + 100);

    // Within the grace period (default one hour) nothing is touched.
    let report = gc(&lab, &[]);
    assert_eq!(count(&report, "reclaimed_chunks"), 0, "{report:?}");
    assert_eq!(count(&report, "recent_contents_kept"), before.len() as u64);
    // A dry run reports exactly the orphans and deletes nothing.
    let report = gc(&lab, &["--dry-run", "--grace-s", "0"]);
    assert_eq!(count(&report, "unreferenced_contents"), 4, "{report:?}");
    assert_eq!(count(&report, "unreferenced_chunks"), chunks);
    assert_eq!(count(&report, "unreferenced_bytes"), bytes);
    assert_eq!(count(&report, "reclaimed_chunks"), 0);
    assert_eq!(stored(blobs).await, before);
    // The real run reclaims them.
    let report = gc(&lab, &["--grace-s", "0"]);
    assert_eq!(count(&report, "reclaimed_chunks"), chunks, "{report:?}");
    assert_eq!(count(&report, "reclaimed_bytes"), bytes);
    let after = stored(blobs).await;
    for id in orphans {
        assert!(!after.contains_key(id.as_str()), "{id} still stored");
    }
    assert_eq!(after.len(), before.len() - 4);
    // Nothing left to find.
    let report = gc(&lab, &["--grace-s", "0"]);
    assert_eq!(count(&report, "unreferenced_contents"), 0, "{report:?}");

    // Every live version is whole.
    assert_eq!(api.latest_file(&kept).await, (StatusCode::OK, v2.clone()));
    let (_, versions) = api.get(&format!("/api/v1/assets/{kept}/contents")).await;
    let oldest = versions["items"][1]["content_id"].as_str().unwrap();
    let (s, got) = api
        .fetch(
            &format!("/api/v1/assets/{kept}/contents/{oldest}/files/0"),
            None,
        )
        .await;
    assert_eq!((s, got), (StatusCode::OK, v1));
    assert_eq!(api.latest_file(&copy).await, (StatusCode::OK, shared));
    assert!(!keep_alive.is_finished(), "the pending session closed");
    keep_alive.abort();
    assert_eq!(
        api.put_chunk(&pending_id, 0, 1, chunk(1)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.complete(&pending_id, &[&pending_bytes]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        api.latest_file(&pending_asset).await,
        (StatusCode::OK, pending_bytes)
    );
}

#[tokio::test]
async fn the_periodic_collection_reclaims_and_counts() {
    let (lab, [alice]) = Lab::start_with(["alice@lab.org"], |b| {
        b.config("[gc]\ninterval_s = 1\ngrace_s = 0\n")
    });
    let blobs = blob_store(lab.path()).await;
    let asset = alice.personal_asset("live").await;
    let body = data(CS as usize + 10, 9);
    alice.api.upload(&asset, &[("f", &body)], CS).await;
    let stray = uuid_like();
    plant(blobs.as_ref(), &stray, 0, &data(CS as usize, 10)).await;
    plant(blobs.as_ref(), &stray, 1, &data(50, 11)).await;
    wait_until_async(
        "the stray chunks to be reclaimed",
        Duration::from_secs(30),
        || {
            let blobs = &blobs;
            let stray = &stray;
            async move { (!stored(blobs.as_ref()).await.contains_key(stray)).then_some(()) }
        },
    )
    .await;
    assert!(lab.server.metric("dataerai_gc_reclaimed_chunks_total") >= 2);
    assert!(lab.server.metric("dataerai_gc_reclaimed_bytes_total") >= CS + 50);
    assert_eq!(alice.api.latest_file(&asset).await, (StatusCode::OK, body));
}

/// A fresh id shaped like the server's content ids.
fn uuid_like() -> String {
    let h = blake3::hash(format!("{:?}", std::time::SystemTime::now()).as_bytes()).to_hex();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
