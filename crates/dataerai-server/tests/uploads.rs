//! Uploads, downloads and durability against the real server binary.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const CS: u64 = 4096;

#[tokio::test]
async fn multi_chunk_upload_and_ranged_download() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
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
        NOT_FOUND,
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
        INVALID_INPUT,
    );

    // Full download.
    let path = format!("/api/v1/assets/{asset}/contents/{cid}/files/0");
    let resp = api.download(&path, None).await;
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
    let resp = api
        .download(
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
        let resp = api.download(&path, Some(range)).await;
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
        let resp = api.download(&path, Some(&range)).await;
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
        NOT_FOUND,
    );
    assert_err(
        &api.get(&format!("/api/v1/assets/{asset}/contents/{cid}/files/x"))
            .await,
        INVALID_INPUT,
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
    assert_eq!(blob_files(&blob_content_dir(lab.path()).join(cid)), 0);
}

/// Alice's open session for one file of a chunk and 10 bytes, and Bob.
struct OneSession {
    api: Api,
    bob_api: Api,
    asset: String,
    up: String,
    body: Vec<u8>,
    _lab: Lab,
}

async fn one_session() -> OneSession {
    let (lab, [alice, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);
    let asset = alice.personal_asset("x").await;
    let body = data(CS as usize + 10, 2);
    let files = json!([{"name": "f.bin", "size": body.len()}]);
    let session = created(alice.api.open_upload(&asset, files, CS).await);
    OneSession {
        api: alice.api,
        bob_api: bob.api,
        asset,
        up: session["upload_id"].as_str().unwrap().to_string(),
        body,
        _lab: lab,
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
    assert_err(&reply, INTEGRITY);
    assert_eq!(
        api.get(&format!("/api/v1/uploads/{up}")).await.1["files"][0]["received_chunks"],
        json!([])
    );
    // Wrong length, bad header, out-of-range indices.
    assert_err(&api.put_chunk(up, 0, 0, &c0[..10]).await, INVALID_INPUT);
    assert_err(
        &api.put_chunk_with_hash(up, 0, 0, c0.to_vec(), "zz").await,
        INVALID_INPUT,
    );
    assert_err(&api.put_chunk(up, 0, 2, c1).await, INVALID_INPUT);
    assert_err(&api.put_chunk(up, 1, 0, c1).await, INVALID_INPUT);
    assert_err(&api.put_chunk("nope", 0, 0, c1).await, NOT_FOUND);
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
        INTEGRITY,
    );
    let (s, again) = api.put_chunk(up, 0, 0, c0).await;
    assert_eq!((s, &again), (StatusCode::OK, &ack));
    let other = data(CS as usize, 9);
    assert_err(&api.put_chunk(up, 0, 0, &other).await, CONFLICT);

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

/// A chunk's digest may follow its body as a trailer (the daemon hashes a big
/// chunk while sending it): checked before the chunk is kept, as the header
/// is; a wrong or missing digest is an integrity error and keeps nothing.
/// The header form still works beside it, in one upload.
#[tokio::test]
async fn chunk_digest_in_a_trailer_after_the_body() {
    // 4 MiB chunks: streamed to the store, not held in memory.
    const BIG: u64 = 4 * 1024 * 1024;
    let (_lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let asset = api.personal_asset(&alice, "trailers").await;
    let body = data(BIG as usize + 10, 4);
    let files = json!([{"name": "f.bin", "size": body.len()}]);
    let session = created(api.open_upload(&asset, files, BIG).await);
    // The directory store takes the digest after the body as cheaply as
    // before it and says so; the S3 store (objects named by digest) does not.
    let free = !dataerai_testkit::backends::scaleout();
    assert_eq!(session["digest_after_body"], free, "{session}");
    let up = session["upload_id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("/api/v1/uploads/{up}")).await.1["digest_after_body"],
        free
    );
    let (c0, c1) = body.split_at(BIG as usize);
    let digest = chunk_digest(body.len() as u64, BIG, 0, c0);
    let pieces =
        |bytes: &[u8]| -> Vec<Vec<u8>> { bytes.chunks(1_000_003).map(<[u8]>::to_vec).collect() };
    let received = || async {
        api.get(&format!("/api/v1/uploads/{up}")).await.1["files"][0]["received_chunks"].clone()
    };

    let short = &c0[..c0.len() - 1];
    let short_digest = chunk_digest(body.len() as u64, BIG, 0, short);
    let refused = [
        ("wrong digest", pieces(c0), Some(hex_blake3(c0)), INTEGRITY),
        ("no trailer", pieces(c0), None, INTEGRITY),
        (
            "not a digest",
            pieces(c0),
            Some("zz".to_string()),
            INVALID_INPUT,
        ),
        (
            "short body",
            pieces(short),
            Some(short_digest),
            INVALID_INPUT,
        ),
    ];
    for (case, sent, trailer, refusal) in refused {
        let reply = api
            .put_chunk_with_trailer(up, 0, 0, sent, trailer.as_deref())
            .await;
        assert_err_for(case, &reply, refusal);
        assert_eq!(received().await, json!([]), "{case}: a chunk was kept");
    }

    let (s, ack) = api
        .put_chunk_with_trailer(up, 0, 0, pieces(c0), Some(&digest))
        .await;
    assert_eq!(s, StatusCode::OK, "{ack}");
    assert_eq!(ack["checksum"], format!("blake3:{digest}"));
    assert_eq!(ack["size"], BIG);
    // Held: the same again is acknowledged alike; other bytes, or a wrong
    // digest, are refused as for a new chunk.
    let again = api
        .put_chunk_with_trailer(up, 0, 0, pieces(c0), Some(&digest))
        .await;
    assert_eq!(again, (StatusCode::OK, ack));
    let other = data(BIG as usize, 9);
    let other_digest = chunk_digest(body.len() as u64, BIG, 0, &other);
    let reply = api
        .put_chunk_with_trailer(up, 0, 0, pieces(&other), Some(&other_digest))
        .await;
    assert_err_for("held, other bytes", &reply, CONFLICT);
    let reply = api
        .put_chunk_with_trailer(up, 0, 0, pieces(c0), Some(&other_digest))
        .await;
    assert_err_for("held, wrong digest", &reply, INTEGRITY);

    // The last chunk the old way, with its digest in the header.
    let (s, v) = api.put_chunk(up, 0, 1, c1).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api.complete(up, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, got) = api
        .fetch(
            &format!("/api/v1/assets/{asset}/contents/latest/files/0"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(got == body, "the file came back different");
}

#[tokio::test]
async fn another_user_cannot_see_or_use_a_session() {
    let OneSession {
        bob_api,
        asset,
        up,
        body,
        ..
    } = &one_session().await;
    let session = format!("/api/v1/uploads/{up}");
    let c1 = &body[CS as usize..];
    // Another user cannot see or use the session…
    let refused = [
        ("read it", bob_api.get(&session).await),
        ("send a chunk", bob_api.put_chunk(up, 0, 1, c1).await),
        ("complete it", bob_api.complete(up, &[body]).await),
        ("abort it", bob_api.delete(&session).await),
        // … nor open one on alice's asset.
        (
            "open one",
            bob_api
                .open_upload(asset, json!([{"name": "a", "size": 1}]), None)
                .await,
        ),
    ];
    // To bob they are as unknown as missing ones.
    for (case, reply) in &refused {
        assert_err_for(case, reply, NOT_FOUND);
    }
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
    assert_err(&reply, INTEGRITY);
    let latest = format!("/api/v1/assets/{asset}/contents/latest");
    assert_err(&api.get(&latest).await, NOT_FOUND);
    let complete = format!("/api/v1/uploads/{up}/complete");
    for files in [json!([]), json!([{"file_index": 0, "checksum": "md5:abc"}])] {
        let reply = api.post(&complete, json!({ "files": files })).await;
        assert_err_for(&files, &reply, INVALID_INPUT);
    }
    let (s, v) = api.complete(up, &[body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(api.latest_file(asset).await.1, body[..]);
}

#[tokio::test]
async fn session_validation_missing_chunks_and_abort() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let asset = api.personal_asset(&alice, "x").await;
    let one = json!([{"name": "a", "size": 1}]);
    // Refused: bad names, the same name twice, no file, a negative size…
    let mut refused: Vec<Value> = ["", "/etc/passwd", "a/../../b", "..", "a//b", "x\u{0}y"]
        .into_iter()
        .map(|name| json!([{"name": name, "size": 1}]))
        .collect();
    refused.push(json!([{"name": "a", "size": 1}, {"name": "a", "size": 2}]));
    refused.push(json!([]));
    refused.push(json!([{"name": "a", "size": -1}]));
    for files in refused {
        let reply = api.open_upload(&asset, files.clone(), None).await;
        assert_err_for(files, &reply, INVALID_INPUT);
    }
    // … chunk sizes too small, too big, or not a power of two (chunks are
    // BLAKE3 subtrees)…
    for bad in [10, 1u64 << 40, 3 << 20, 1025] {
        let reply = api.open_upload(&asset, one.clone(), bad).await;
        assert_err_for(bad, &reply, INVALID_INPUT);
    }
    // … and an unknown asset.
    assert_err(
        &api.open_upload("missing", one.clone(), None).await,
        NOT_FOUND,
    );
    // Default chunk size is 64 MiB.
    let (s, def) = api.open_upload(&asset, one, None).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(def["chunk_size"], 64 * 1024 * 1024);

    // Complete with a missing chunk names it.
    let body = data(3 * CS as usize, 3);
    let (_, session) = api
        .open_upload(&asset, json!([{"name": "f", "size": body.len()}]), CS)
        .await;
    let up = session["upload_id"].as_str().unwrap();
    api.put_chunk(up, 0, 0, &body[..CS as usize]).await;
    api.put_chunk(up, 0, 2, &body[2 * CS as usize..]).await;
    let reply = api.complete(up, &[&body]).await;
    assert_err_mentions(&reply, INVALID_INPUT, "chunks 1");

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
        INVALID_INPUT,
    );
    assert_err(&api.complete(up, &[&body]).await, INVALID_INPUT);
    assert_eq!(
        blob_files(&blob_content_dir(lab.path()).join(session["content_id"].as_str().unwrap())),
        0
    );
}

#[tokio::test]
async fn quota_is_enforced() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let set_project_quota = |pid: &str, bytes: &str| {
        lab.server
            .admin(&["set-quota", "--project", pid, "--bytes", bytes])
    };

    // Project quota via the admin command (while the server runs).
    let pid = &api.create_project("P").await;
    set_project_quota(pid, "10000");
    let pa = &api.project_asset(pid, "t").await;
    let one = |name: &str, size: u64| json!([{ "name": name, "size": size }]);
    let reply = api.open_upload(pa, one("a", 10001), None).await;
    assert_err(&reply, QUOTA_EXCEEDED);

    // Reservations count: 6000 open + 6000 new > 10000.
    let first = created(api.open_upload(pa, one("a", 6000), CS).await);
    let (_, proj) = api.get(&format!("/api/v1/projects/{pid}")).await;
    assert_eq!(proj["allocation"]["reserved_bytes"], 6000);
    let reply = api.open_upload(pa, one("b", 6000), None).await;
    assert_err(&reply, QUOTA_EXCEEDED);
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
    set_project_quota(pid, "8000");
    assert_err(
        &api.complete(session["upload_id"].as_str().unwrap(), &[&body])
            .await,
        QUOTA_EXCEEDED,
    );

    // Personal quota via --user.
    lab.server.set_user_quota("alice@lab.org", 5);
    let mine = api.personal_asset(&alice, "m").await;
    let reply = api.open_upload(&mine, one("a", 6), None).await;
    assert_err(&reply, QUOTA_EXCEEDED);
    assert_eq!(
        admin_raw(
            lab.path(),
            &["set-quota", "--project", "nope", "--bytes", "1"]
        )
        .status
        .code(),
        Some(1)
    );
}

#[tokio::test]
async fn data_survives_restart() {
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let asset = &api.personal_asset(&alice, "durable").await;
    let done = data(CS as usize * 2 + 7, 6);
    let v = api.upload(asset, &[("a.bin", &done)], CS).await;

    // An open session with 2 of 3 chunks.
    let partial = data(CS as usize * 3, 7);
    let files = json!([{"name": "b.bin", "size": partial.len()}]);
    let session = created(api.open_upload(asset, files, CS).await);
    let up = session["upload_id"].as_str().unwrap().to_string();
    api.put_chunk(&up, 0, 0, &partial[..CS as usize]).await;
    api.put_chunk(&up, 0, 2, &partial[2 * CS as usize..]).await;
    lab.server.stop();

    let server = TestServer::start(lab.dir.path());
    let api = server.api(&api.token);
    let (s, a) = api.get(&format!("/api/v1/assets/{asset}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(a["latest_content"]["content_id"], v["content_id"]);
    assert_eq!(api.latest_file(asset).await.1, done[..]);
    let (_, state) = api.get(&format!("/api/v1/uploads/{up}")).await;
    assert_eq!(state["files"][0]["received_chunks"], json!([0, 2]));

    // Resume: send only the missing chunk, then complete.
    api.put_chunk(&up, 0, 1, &partial[CS as usize..2 * CS as usize])
        .await;
    let (s, v2) = api.complete(&up, &[&partial]).await;
    assert_eq!(s, StatusCode::OK, "{v2}");

    // Even a hard kill loses nothing acknowledged.
    drop(server);
    let server = TestServer::start(lab.dir.path());
    let api = server.api(&api.token);
    assert_eq!(api.latest_file(asset).await.1, partial[..]);
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
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let server = &lab.server;
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

    let mut resp = api
        .download(
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
    let (lab, [User { id: alice, api }]) = Lab::start(["alice@lab.org"]);
    let server = &lab.server;
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
        assert_err(&api.put_chunk(up, 0, 1, &body).await, INVALID_INPUT);
        // A forged token: refused before the handler runs.
        let forged = server.api("dtr_forged");
        assert_eq!(forged.put_chunk(up, 0, 0, &body).await.0, 401);
    }
    let (s, v) = api.complete(up, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
