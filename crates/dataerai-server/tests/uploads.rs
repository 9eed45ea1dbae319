//! Uploads, downloads and durability against the real server binary.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CS: u64 = 4096;

async fn download(api: &Api, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = api.client.get(api.url(path)).bearer_auth(&api.token);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn multi_chunk_upload_and_ranged_download() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    let asset = api.personal_asset(&alice, "stack").await;

    // 2.5 chunks, a nested name, and an empty file.
    let big = data(2 * CS as usize + 1234, 1);
    let empty: Vec<u8> = Vec::new();
    let session = api
        .send_files(
            &asset,
            &[("run1/stack.tif", &big), ("empty.txt", &empty)],
            CS,
        )
        .await;
    assert_eq!(session["files"][0]["chunk_count"], 3);
    assert_eq!(session["files"][1]["chunk_count"], 1);
    let upload_id = session["upload_id"].as_str().unwrap();
    let (_, state) = api.get(&format!("/api/v1/uploads/{upload_id}")).await;
    assert_eq!(state["files"][0]["received_chunks"], json!([0, 1, 2]));
    assert_eq!(state["files"][1]["received_chunks"], json!([0]));
    assert_eq!(state["status"], "open");
    // Not visible before completion.
    assert_err(
        &api.get(&format!("/api/v1/assets/{asset}/contents/latest"))
            .await,
        404,
        "ERR_NOT_FOUND",
    );
    let (_, mine) = api.get("/api/v1/me").await;
    assert_eq!(mine["email"], "alice@lab.org");

    let (s, version) = api.complete(upload_id, &[&big, &empty]).await;
    assert_eq!(s, StatusCode::OK, "{version}");
    assert_eq!(version["status"], "complete");
    assert_eq!(version["total_bytes"], big.len());
    assert_eq!(
        version["files"][0]["checksum"],
        format!("blake3:{}", hex_blake3(&big))
    );
    assert_eq!(
        version["files"][1]["checksum"],
        format!("blake3:{}", hex_blake3(b""))
    );
    let cid = version["content_id"].as_str().unwrap();

    let (_, a) = api.get(&format!("/api/v1/assets/{asset}")).await;
    assert_eq!(a["latest_content"]["content_id"], cid);
    let (_, latest) = api
        .get(&format!("/api/v1/assets/{asset}/contents/latest"))
        .await;
    assert_eq!(latest["content_id"], cid);
    assert_eq!(
        api.get(&format!("/api/v1/assets/{asset}/contents")).await.1["total"],
        1
    );
    assert_eq!(
        api.get(&format!("/api/v1/uploads/{upload_id}")).await.1["status"],
        "complete"
    );
    // A completed session takes no more chunks.
    assert_err(
        &api.put_chunk(upload_id, 0, 0, &big[..CS as usize]).await,
        400,
        "ERR_INVALID_INPUT",
    );

    // Full download.
    let path = format!("/api/v1/assets/{asset}/contents/{cid}/files/0");
    let resp = download(&api, &path, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-length"],
        big.len().to_string().as_str()
    );
    assert_eq!(
        resp.headers()["x-dataerai-checksum"],
        format!("blake3:{}", hex_blake3(&big)).as_str()
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &big[..]);
    // `latest` works for files too, and the empty file downloads as 0 bytes.
    let resp = download(
        &api,
        &format!("/api/v1/assets/{asset}/contents/latest/files/1"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.unwrap().is_empty());

    // Ranges: across a chunk boundary, open-ended, suffix.
    let cases: [(&str, usize, usize); 4] = [
        ("bytes=4000-4200", 4000, 4200),
        ("bytes=100-", 100, big.len() - 1),
        ("bytes=-1000", big.len() - 1000, big.len() - 1),
        ("bytes=0-0", 0, 0),
    ];
    for (range, a, b) in cases {
        let resp = download(&api, &path, Some(range)).await;
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(
            resp.headers()["content-range"],
            format!("bytes {a}-{b}/{}", big.len()).as_str()
        );
        assert_eq!(
            resp.headers()["content-length"],
            (b - a + 1).to_string().as_str()
        );
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &big[a..=b], "{range}");
    }
    for range in [
        format!("bytes={}-", big.len()),
        "bytes=9-3".to_string(),
        "bytes=0-1,5-6".into(),
    ] {
        let resp = download(&api, &path, Some(&range)).await;
        assert_eq!(resp.status(), 416, "{range}");
        assert_eq!(
            resp.headers()["content-range"],
            format!("bytes */{}", big.len()).as_str()
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "ERR_INVALID_INPUT");
    }
    assert_err(
        &api.get(&format!("/api/v1/assets/{asset}/contents/{cid}/files/7"))
            .await,
        404,
        "ERR_NOT_FOUND",
    );
    assert_err(
        &api.get(&format!("/api/v1/assets/{asset}/contents/{cid}/files/x"))
            .await,
        400,
        "ERR_INVALID_INPUT",
    );

    // A second version becomes the latest; quota usage counts both.
    let v2 = api
        .upload(&asset, &[("v2.bin", b"second version")], CS)
        .await;
    let (_, a) = api.get(&format!("/api/v1/assets/{asset}")).await;
    assert_eq!(a["latest_content"]["content_id"], v2["content_id"]);
    assert_eq!(
        api.get(&format!("/api/v1/assets/{asset}/contents")).await.1["items"][0]["content_id"],
        v2["content_id"]
    );

    // Deleting the asset removes its blobs.
    assert_eq!(
        api.delete(&format!("/api/v1/assets/{asset}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(blob_files(&blob_content_dir(dir.path()).join(cid)), 0);
}

/// Alice's open session for one file of a chunk and 10 bytes, and Bob.
struct OneSession {
    server: TestServer,
    api: Api,
    bob_token: String,
    asset: String,
    up: String,
    body: Vec<u8>,
    _dir: tempfile::TempDir,
}

async fn one_session() -> OneSession {
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let (_bob, bob_token) = make_user(dir.path(), "bob@lab.org", "read,write");
    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    let asset = api.personal_asset(&alice, "x").await;
    let body = data(CS as usize + 10, 2);
    let (s, session) = api
        .post(
            &format!("/api/v1/assets/{asset}/uploads"),
            json!({"files": [{"name": "f.bin", "size": body.len()}], "chunk_size": CS}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    let up = session["upload_id"].as_str().unwrap().to_string();
    OneSession {
        server,
        api,
        bob_token,
        asset,
        up,
        body,
        _dir: dir,
    }
}

#[tokio::test]
async fn chunk_checks_and_idempotency() {
    let OneSession { api, up, body, .. } = &one_session().await;
    let up = up.as_str();
    let c0 = &body[..CS as usize];
    let c1 = &body[CS as usize..];
    // Wrong hash → 422, nothing recorded, nothing on disk.
    let reply = api
        .put_chunk_with_hash(up, 0, 0, c0.to_vec(), &hex_blake3(b"other"))
        .await;
    assert_err(&reply, 422, "ERR_INTEGRITY");
    assert_eq!(
        api.get(&format!("/api/v1/uploads/{up}")).await.1["files"][0]["received_chunks"],
        json!([])
    );
    // Wrong length, bad header, out-of-range indices.
    assert_err(
        &api.put_chunk(up, 0, 0, &c0[..10]).await,
        400,
        "ERR_INVALID_INPUT",
    );
    assert_err(
        &api.put_chunk_with_hash(up, 0, 0, c0.to_vec(), "zz").await,
        400,
        "ERR_INVALID_INPUT",
    );
    assert_err(&api.put_chunk(up, 0, 2, c1).await, 400, "ERR_INVALID_INPUT");
    assert_err(&api.put_chunk(up, 1, 0, c1).await, 400, "ERR_INVALID_INPUT");
    assert_err(&api.put_chunk("nope", 0, 0, c1).await, 404, "ERR_NOT_FOUND");
    let resp = api
        .client
        .put(api.url(&format!("/api/v1/uploads/{up}/files/0/chunks/0")))
        .bearer_auth(&api.token)
        .body(c0.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "missing hash header");

    // Good chunk, then the same again (idempotent), then different bytes (refused).
    let (s, ack) = api.put_chunk(up, 0, 0, c0).await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    // A chunk of a many-chunk file is checked by its BLAKE3 chaining value at
    // its offset, not by the plain hash of its bytes (docs/api.md).
    let digest = chunk_digest(body.len() as u64, CS, 0, c0);
    assert_eq!(ack["checksum"], format!("blake3:{digest}"));
    assert_ne!(digest, hex_blake3(c0));
    assert_eq!(ack["size"], CS);
    assert_err(
        &api.put_chunk_with_hash(up, 0, 1, c1.to_vec(), &hex_blake3(c1))
            .await,
        422,
        "ERR_INTEGRITY",
    );
    let (s, again) = api.put_chunk(up, 0, 0, c0).await;
    assert_eq!((s, &again), (StatusCode::OK, &ack));
    let other = data(CS as usize, 9);
    assert_err(&api.put_chunk(up, 0, 0, &other).await, 409, "ERR_CONFLICT");

    // Concurrent PUTs of the same chunk all succeed and leave one good copy.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let api = api.clone();
            let up = up.to_string();
            let c1 = c1.to_vec();
            tokio::spawn(async move { api.put_chunk(&up, 0, 1, &c1).await.0 })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
}

#[tokio::test]
async fn another_user_cannot_see_or_use_a_session() {
    let OneSession {
        server,
        bob_token,
        asset,
        up,
        body,
        ..
    } = &one_session().await;
    let up = up.as_str();
    let c1 = &body[CS as usize..];
    // Another user cannot see or use the session.
    let bob_api = server.api(bob_token);
    assert_err(
        &bob_api.get(&format!("/api/v1/uploads/{up}")).await,
        403,
        "ERR_PERMISSION_DENIED",
    );
    assert_err(
        &bob_api.put_chunk(up, 0, 1, c1).await,
        403,
        "ERR_PERMISSION_DENIED",
    );
    assert_err(
        &bob_api.complete(up, &[body]).await,
        403,
        "ERR_PERMISSION_DENIED",
    );
    assert_err(
        &bob_api.delete(&format!("/api/v1/uploads/{up}")).await,
        403,
        "ERR_PERMISSION_DENIED",
    );
    // ... nor open one on alice's asset.
    assert_err(
        &bob_api
            .post(
                &format!("/api/v1/assets/{asset}/uploads"),
                json!({"files": [{"name": "a", "size": 1}]}),
            )
            .await,
        403,
        "ERR_PERMISSION_DENIED",
    );
}

#[tokio::test]
async fn wrong_file_checksum_publishes_nothing_and_keeps_the_session_open() {
    let OneSession {
        api,
        asset,
        up,
        body,
        ..
    } = &one_session().await;
    let up = up.as_str();
    let c0 = &body[..CS as usize];
    let c1 = &body[CS as usize..];
    for (i, c) in [c0, c1].into_iter().enumerate() {
        let (s, ack) = api.put_chunk(up, 0, i as u64, c).await;
        assert_eq!(s, StatusCode::OK, "{ack}");
    }

    // Wrong whole-file checksum → ERR_INTEGRITY, nothing published, session still open.
    let reply = api.complete(up, &[b"not the file"]).await;
    assert_err(&reply, 422, "ERR_INTEGRITY");
    assert_err(
        &api.get(&format!("/api/v1/assets/{asset}/contents/latest"))
            .await,
        404,
        "ERR_NOT_FOUND",
    );
    assert_err(
        &api.post(
            &format!("/api/v1/uploads/{up}/complete"),
            json!({"files": []}),
        )
        .await,
        400,
        "ERR_INVALID_INPUT",
    );
    assert_err(
        &api.post(
            &format!("/api/v1/uploads/{up}/complete"),
            json!({"files": [{"file_index": 0, "checksum": "md5:abc"}]}),
        )
        .await,
        400,
        "ERR_INVALID_INPUT",
    );
    let (s, v) = api.complete(up, &[body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let resp = download(
        api,
        &format!("/api/v1/assets/{asset}/contents/latest/files/0"),
        None,
    )
    .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &body[..]);
}

#[tokio::test]
async fn session_validation_missing_chunks_and_abort() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    let asset = api.personal_asset(&alice, "x").await;
    let uploads = format!("/api/v1/assets/{asset}/uploads");
    let open = |files: Value, chunk_size: Value| {
        api.post(&uploads, json!({"files": files, "chunk_size": chunk_size}))
    };

    for name in ["", "/etc/passwd", "a/../../b", "..", "a//b", "x\u{0}y"] {
        assert_err(
            &open(json!([{"name": name, "size": 1}]), json!(null)).await,
            400,
            "ERR_INVALID_INPUT",
        );
    }
    assert_err(
        &open(
            json!([{"name": "a", "size": 1}, {"name": "a", "size": 2}]),
            json!(null),
        )
        .await,
        400,
        "ERR_INVALID_INPUT",
    );
    assert_err(
        &open(json!([]), json!(null)).await,
        400,
        "ERR_INVALID_INPUT",
    );
    // Too small, too big, or not a power of two (chunks are BLAKE3 subtrees).
    for bad in [json!(10), json!(1u64 << 40), json!(3 << 20), json!(1025)] {
        assert_err(
            &open(json!([{"name": "a", "size": 1}]), bad).await,
            400,
            "ERR_INVALID_INPUT",
        );
    }
    assert_err(
        &open(json!([{"name": "a", "size": -1}]), json!(null)).await,
        400,
        "ERR_INVALID_INPUT",
    );
    assert_err(
        &api.post(
            "/api/v1/assets/missing/uploads",
            json!({"files": [{"name": "a", "size": 1}]}),
        )
        .await,
        404,
        "ERR_NOT_FOUND",
    );
    // Default chunk size is 64 MiB.
    let (s, def) = open(json!([{"name": "a", "size": 1}]), json!(null)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(def["chunk_size"], 64 * 1024 * 1024);

    // Complete with a missing chunk names it.
    let body = data(3 * CS as usize, 3);
    let (_, session) = open(json!([{"name": "f", "size": body.len()}]), json!(CS)).await;
    let up = session["upload_id"].as_str().unwrap();
    api.put_chunk(up, 0, 0, &body[..CS as usize]).await;
    api.put_chunk(up, 0, 2, &body[2 * CS as usize..]).await;
    let reply = api.complete(up, &[&body]).await;
    assert_err(&reply, 400, "ERR_INVALID_INPUT");
    assert!(
        reply.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chunks 1"),
        "{}",
        reply.1
    );

    // Abort frees the session; it can no longer be used.
    assert_eq!(
        api.delete(&format!("/api/v1/uploads/{up}")).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.get(&format!("/api/v1/uploads/{up}")).await.1["status"],
        "aborted"
    );
    assert_err(
        &api.put_chunk(up, 0, 1, &body[CS as usize..2 * CS as usize])
            .await,
        400,
        "ERR_INVALID_INPUT",
    );
    assert_err(&api.complete(up, &[&body]).await, 400, "ERR_INVALID_INPUT");
    assert_eq!(
        blob_files(&blob_content_dir(dir.path()).join(session["content_id"].as_str().unwrap())),
        0
    );
}

#[tokio::test]
async fn quota_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let server = TestServer::start(dir.path());
    let api = server.api(&token);

    // Project quota via the admin command (while the server runs).
    let (_, p) = api.post("/api/v1/projects", json!({"name": "P"})).await;
    let pid = p["project_id"].as_str().unwrap();
    admin(
        dir.path(),
        &["set-quota", "--project", pid, "--bytes", "10000"],
    );
    let (_, a) = api
        .post(
            "/api/v1/assets",
            json!({"title": "t", "owner_type": "project", "owner_id": pid}),
        )
        .await;
    let pa = a["asset_id"].as_str().unwrap();
    let reply = api
        .post(
            &format!("/api/v1/assets/{pa}/uploads"),
            json!({"files": [{"name": "a", "size": 10001}]}),
        )
        .await;
    assert_err(&reply, 413, "ERR_QUOTA_EXCEEDED");

    // Reservations count: 6000 open + 6000 new > 10000.
    let (s, first) = api
        .post(
            &format!("/api/v1/assets/{pa}/uploads"),
            json!({"files": [{"name": "a", "size": 6000}], "chunk_size": CS}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, proj) = api.get(&format!("/api/v1/projects/{pid}")).await;
    assert_eq!(proj["allocation"]["reserved_bytes"], 6000);
    assert_err(
        &api.post(
            &format!("/api/v1/assets/{pa}/uploads"),
            json!({"files": [{"name": "b", "size": 6000}]}),
        )
        .await,
        413,
        "ERR_QUOTA_EXCEEDED",
    );
    // Aborting frees the reservation.
    api.delete(&format!(
        "/api/v1/uploads/{}",
        first["upload_id"].as_str().unwrap()
    ))
    .await;
    let v = api.upload(pa, &[("b", &data(6000, 4))], CS).await;
    assert_eq!(v["status"], "complete");
    let (_, proj) = api.get(&format!("/api/v1/projects/{pid}")).await;
    assert_eq!(
        (
            proj["allocation"]["used_bytes"].as_u64(),
            proj["allocation"]["reserved_bytes"].as_u64()
        ),
        (Some(6000), Some(0))
    );

    // Quota lowered while a session is open: completion is refused.
    let body = data(3000, 5);
    let session = api.send_files(pa, &[("c", &body)], CS).await;
    admin(
        dir.path(),
        &["set-quota", "--project", pid, "--bytes", "8000"],
    );
    assert_err(
        &api.complete(session["upload_id"].as_str().unwrap(), &[&body])
            .await,
        413,
        "ERR_QUOTA_EXCEEDED",
    );

    // Personal quota via --user.
    admin(
        dir.path(),
        &["set-quota", "--user", "alice@lab.org", "--bytes", "5"],
    );
    let mine = api.personal_asset(&alice, "m").await;
    assert_err(
        &api.post(
            &format!("/api/v1/assets/{mine}/uploads"),
            json!({"files": [{"name": "a", "size": 6}]}),
        )
        .await,
        413,
        "ERR_QUOTA_EXCEEDED",
    );
    assert_eq!(
        admin_raw(
            dir.path(),
            &["set-quota", "--project", "nope", "--bytes", "1"]
        )
        .status
        .code(),
        Some(1)
    );
}

#[tokio::test]
async fn data_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    let asset = api.personal_asset(&alice, "durable").await;
    let done = data(CS as usize * 2 + 7, 6);
    let v = api.upload(&asset, &[("a.bin", &done)], CS).await;

    // An open session with 2 of 3 chunks.
    let partial = data(CS as usize * 3, 7);
    let (_, session) = api
        .post(
            &format!("/api/v1/assets/{asset}/uploads"),
            json!({"files": [{"name": "b.bin", "size": partial.len()}], "chunk_size": CS}),
        )
        .await;
    let up = session["upload_id"].as_str().unwrap().to_string();
    api.put_chunk(&up, 0, 0, &partial[..CS as usize]).await;
    api.put_chunk(&up, 0, 2, &partial[2 * CS as usize..]).await;
    server.stop();

    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    let (s, a) = api.get(&format!("/api/v1/assets/{asset}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(a["latest_content"]["content_id"], v["content_id"]);
    let resp = download(
        &api,
        &format!("/api/v1/assets/{asset}/contents/latest/files/0"),
        None,
    )
    .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &done[..]);
    let (_, state) = api.get(&format!("/api/v1/uploads/{up}")).await;
    assert_eq!(state["files"][0]["received_chunks"], json!([0, 2]));

    // Resume: send only the missing chunk, then complete.
    api.put_chunk(&up, 0, 1, &partial[CS as usize..2 * CS as usize])
        .await;
    let (s, v2) = api.complete(&up, &[&partial]).await;
    assert_eq!(s, StatusCode::OK, "{v2}");

    // Even a hard kill loses nothing acknowledged.
    drop(server);
    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    let resp = download(
        &api,
        &format!("/api/v1/assets/{asset}/contents/latest/files/0"),
        None,
    )
    .await;
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &partial[..]);
}

/// Peak resident memory of a process, from /proc (Linux).
fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[tokio::test]
async fn large_chunk_is_streamed_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    let asset = api.personal_asset(&alice, "big").await;

    // One 96 MiB chunk: more than the JSON body limit, and more than the
    // server may hold in memory at once.
    const SIZE: usize = 96 * 1024 * 1024;
    let body = data(SIZE, 8);
    let v = api
        .upload(&asset, &[("big.bin", &body)], 128 * 1024 * 1024)
        .await;
    assert_eq!(
        v["files"][0]["checksum"],
        format!("blake3:{}", hex_blake3(&body))
    );

    let mut resp = download(
        &api,
        &format!("/api/v1/assets/{asset}/contents/latest/files/0"),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut hasher = blake3::Hasher::new();
    let mut got = 0;
    while let Some(piece) = resp.chunk().await.unwrap() {
        got += piece.len();
        hasher.update(&piece);
    }
    assert_eq!(got, SIZE);
    assert_eq!(hasher.finalize().to_hex().as_str(), hex_blake3(&body));

    if let Some(peak) = peak_rss_bytes(server.child.id()) {
        eprintln!("server peak RSS: {} MiB", peak >> 20);
        assert!(
            peak < (SIZE as u64) * 2 / 3,
            "server peak RSS {peak} bytes: the chunk was buffered"
        );
    }
}

/// Answers the server gives before reading a chunk body (the chunk is already
/// held, an index is out of range, the token is wrong) must reach a client that
/// is still sending a large body, not a broken pipe: otherwise a permanent
/// error looks like a transport failure and an idempotent retry never succeeds.
#[tokio::test]
async fn early_answers_reach_a_client_still_sending_a_large_chunk() {
    const BIG: u64 = 16 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let (alice, token) = make_user(dir.path(), "alice@lab.org", "read,write");
    let server = TestServer::start(dir.path());
    let api = server.api(&token);
    let asset = api.personal_asset(&alice, "big").await;
    let body = data(BIG as usize, 5);
    let (_, session) = api
        .open_upload(&asset, json!([{"name": "big.bin", "size": BIG}]), BIG)
        .await;
    let up = session["upload_id"].as_str().unwrap();
    let (s, v) = api.put_chunk(up, 0, 0, &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for _ in 0..5 {
        // Held already: acknowledged without storing again.
        let (s, v) = api.put_chunk(up, 0, 0, &body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["chunk_index"], 0, "{v}");
        // Out of range: refused before the body is read.
        assert_err(
            &api.put_chunk(up, 0, 1, &body).await,
            400,
            "ERR_INVALID_INPUT",
        );
        // A forged token: refused before the handler runs.
        let forged = server.api("dtr_forged");
        assert_eq!(forged.put_chunk(up, 0, 0, &body).await.0, 401);
    }
    let (s, v) = api.complete(up, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
