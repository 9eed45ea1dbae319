//! Hostile input against the real server: odd file names, huge or deeply
//! nested metadata, over-long fields, invalid UTF-8, SQL metacharacters,
//! another user's upload session, out-of-range chunks and ranges past the
//! end; plus a property test of the chunk path (only verified chunks are
//! ever recorded).

mod common;

use common::*;
use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A server with two users and one personal asset of Alice's.
struct Hostile {
    /// Alice's client.
    api: Api,
    alice_id: String,
    bob_api: Api,
    asset: String,
    _lab: Lab,
}

/// POST `body` as it is, labelled as JSON.
async fn post_as_json(api: &Api, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    api.request(Method::POST, path)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn hostile() -> Hostile {
    let (lab, [alice, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);
    Hostile {
        asset: alice.personal_asset("a").await,
        api: alice.api,
        alice_id: alice.id,
        bob_api: bob.api,
        _lab: lab,
    }
}

#[tokio::test]
async fn hostile_file_names_are_refused_and_odd_ones_round_trip() {
    let Hostile { api, asset, .. } = &hostile().await;
    // File names: traversal, absolute, backslashes, NUL, empty components.
    let long_component = format!("dir/{}", "x".repeat(256));
    for name in [
        "../etc/passwd",
        "/abs",
        "a/../../b",
        "a\\b",
        "nul\0x",
        "a//b",
        ".",
        "",
        "a/./b",
        // Control characters (terminal escapes, newlines), and a component no
        // file system can create.
        "\u{1b}]0;owned\u{7}.txt",
        "two\nlines",
        "c1\u{9b}2J",
        long_component.as_str(),
    ] {
        let r = api
            .open_upload(asset, json!([{"name": name, "size": 1}]), 1024)
            .await;
        assert_err_for(format!("{name:?}"), &r, INVALID_INPUT);
    }
    // Odd but harmless names round-trip unchanged.
    let odd = "données/ñ 'quoted' \"x\"; DROP TABLE assets;--/日本.bin";
    let (s, u) = api
        .open_upload(asset, json!([{"name": odd, "size": 1}]), 1024)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert_eq!(u["files"][0]["name"], odd);
}

#[tokio::test]
async fn over_long_fields_and_too_deep_metadata_are_refused() {
    let Hostile {
        api,
        asset,
        alice_id,
        ..
    } = &hostile().await;
    // Over-long fields.
    let new = |body: Value| async { api.post("/api/v1/assets", body).await };
    let base = |extra: Value| {
        let mut b = json!({"title": "t", "owner_type": "user", "owner_id": alice_id});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    for extra in [
        json!({"title": "x".repeat(1001)}),
        json!({"alias": "x".repeat(256)}),
        json!({"tags": vec!["t"; 101]}),
        json!({"tags": ["x".repeat(101)]}),
        json!({"description": "x".repeat(100_001)}),
        // Titles and aliases are shown in terminals: no control characters.
        json!({"title": "x\u{1b}[2J"}),
        json!({"title": "a\rb"}),
        json!({"alias": "al\u{9b}ias"}),
    ] {
        assert_err_for(
            extra.to_string(),
            &new(base(extra.clone())).await,
            INVALID_INPUT,
        );
    }
    for name in ["p\u{1b}]0;x\u{7}", "two\nlines"] {
        let reply = api.post("/api/v1/projects", json!({"name": name})).await;
        assert_err_for(format!("project {name:?}"), &reply, INVALID_INPUT);
    }
    // Metadata: 33 levels deep, or over 256 KiB, is refused; 32 levels pass.
    let nest = |levels: usize| {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!({"k": v});
        }
        v
    };
    assert_err(
        &new(base(json!({"metadata": nest(33)}))).await,
        INVALID_INPUT,
    );
    assert_eq!(
        new(base(json!({"metadata": nest(32)}))).await.0,
        StatusCode::CREATED
    );
    assert_err(
        &new(base(json!({"metadata": {"big": "x".repeat(300 * 1024)}}))).await,
        INVALID_INPUT,
    );
    assert_err(
        &api.update_asset(asset, json!({"metadata": nest(40)})).await,
        INVALID_INPUT,
    );
    // Deeper than serde's own limit is still a clean 400.
    let deep = format!("{}1{}", "{\"k\":".repeat(200), "}".repeat(200));
    let body = format!("{{\"title\":\"t\",\"owner_type\":\"user\",\"owner_id\":\"{alice_id}\",\"metadata\":{deep}}}");
    let resp = post_as_json(api, "/api/v1/assets", body).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn invalid_utf8_bodies_are_refused() {
    let Hostile { api, .. } = &hostile().await;
    // Invalid UTF-8 bodies.
    for path in ["/api/v1/assets", "/api/v1/projects"] {
        let invalid_utf8 = vec![b'{', b'"', b't', 0xff, 0xfe, b'"', b':', b'1', b'}'];
        let resp = post_as_json(api, path, invalid_utf8).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "ERR_INVALID_INPUT");
    }
}

#[tokio::test]
async fn sql_metacharacters_round_trip_unchanged() {
    let Hostile {
        api,
        asset,
        alice_id,
        bob_api,
        ..
    } = &hostile().await;
    let new = |body: Value| async { api.post("/api/v1/assets", body).await };
    // SQL metacharacters in every text field round-trip unchanged.
    let evil = "Robert'); DROP TABLE assets;-- \" % _ \\ ; /* */ \u{0}?".replace('\u{0}', "");
    let (s, a) = new(json!({
        "title": evil, "owner_type": "user", "owner_id": alice_id, "description": evil,
        "alias": evil, "tags": [evil, "%"], "metadata": {evil.clone(): evil}
    }))
    .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let (_, got) = api
        .get(&format!(
            "/api/v1/assets/{}",
            a["asset_id"].as_str().unwrap()
        ))
        .await;
    for field in ["title", "description", "alias"] {
        assert_eq!(got[field], evil.trim(), "{field}");
    }
    assert_eq!(got["tags"][0], evil);
    assert_eq!(got["metadata"][&evil], evil);
    let (s, p) = api
        .post(
            "/api/v1/projects",
            json!({"name": evil, "description": evil}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    assert_eq!(p["description"], evil);
    let (s, c) = api
        .post(
            &format!(
                "/api/v1/projects/{}/collections",
                p["project_id"].as_str().unwrap()
            ),
            json!({"name": evil}),
        )
        .await;
    assert_eq!(
        (s, c["name"].as_str()),
        (StatusCode::CREATED, Some(evil.trim()))
    );
    let target = api.personal_asset(alice_id, "target").await;
    let (s, r) = api
        .post(
            &format!("/api/v1/assets/{asset}/relationships"),
            json!({"to_asset_id": target, "type": evil, "qualifiers": {evil.clone(): evil}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["type"], evil.trim());
    // Ids with metacharacters are just unknown.
    assert_err(&api.get("/api/v1/assets/x'%20OR%20'1'='1").await, NOT_FOUND);
    let (s, list) = api
        .get("/api/v1/assets?owner_type=user&owner_id=%27%20OR%201=1--")
        .await;
    assert!(s == StatusCode::FORBIDDEN, "{s} {list}");
    // The users table is intact.
    assert_eq!(bob_api.get("/api/v1/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn another_users_session_and_out_of_range_chunks_are_refused() {
    let Hostile {
        api,
        bob_api,
        asset,
        ..
    } = &hostile().await;
    let files = json!([{"name": "f.bin", "size": 1}]);
    let u = created(api.open_upload(asset, files, 1024).await);
    let upload = u["upload_id"].as_str().unwrap().to_string();
    // Another user's upload session, chunk indices out of range.
    let session = format!("/api/v1/uploads/{upload}");
    let bobs = [
        (
            "bob sends a chunk",
            bob_api.put_chunk(&upload, 0, 0, b"x").await,
        ),
        ("bob reads it", bob_api.get(&session).await),
        ("bob aborts it", bob_api.delete(&session).await),
    ];
    // As unknown to bob as a missing session.
    for (case, reply) in &bobs {
        assert_err_for(case, reply, NOT_FOUND);
    }
    let past_the_end = [
        ("chunk 1 of 1", api.put_chunk(&upload, 0, 1, b"x").await),
        ("file 1 of 1", api.put_chunk(&upload, 1, 0, b"x").await),
    ];
    for (case, reply) in &past_the_end {
        assert_err_for(case, reply, INVALID_INPUT);
    }
    let huge = api
        .put_chunk_with_hash(&upload, 0, u64::MAX, b"x".to_vec(), &hex_blake3(b"x"))
        .await;
    assert_eq!(huge.0, StatusCode::BAD_REQUEST);
    let neg = api
        .request(Method::PUT, &format!("{session}/files/-1/chunks/0"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(neg.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ranges_past_the_end_of_a_file_are_not_satisfiable() {
    let Hostile { api, asset, .. } = &hostile().await;
    // Ranges past the end of a file.
    let content = api.upload(asset, &[("f.bin", b"0123456789")], 1024).await;
    let path = format!(
        "/api/v1/assets/{asset}/contents/{}/files/0",
        content["content_id"].as_str().unwrap()
    );
    for range in [
        "bytes=10-",
        "bytes=100-200",
        "bytes=5-2",
        "bytes=-0",
        "bytes=0-1,3-4",
        "bytes=x",
    ] {
        let (s, _) = api.fetch(&path, Some(range)).await;
        assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
    }
    let (s, body) = api.fetch(&path, Some("bytes=8-100")).await;
    assert_eq!(
        (s, body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"89"[..])
    );
    assert_err(
        &api.get(&format!(
            "/api/v1/assets/{asset}/contents/{}/files/1",
            content["content_id"].as_str().unwrap()
        ))
        .await,
        NOT_FOUND,
    );
}

/// One random chunk PUT: which chunk, and how it is damaged (if at all).
#[derive(Debug, Clone)]
struct Put {
    chunk: u64,
    /// 0 = intact, 1 = wrong hash, 2 = truncated body, 3 = extra byte,
    /// 4 = malformed hash header, 5 = index past the end.
    damage: u8,
}

fn run_chunk_case(server: &TestServer, owner: &User, size: usize, chunk_size: u64, puts: Vec<Put>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // A client of this case's runtime (pooled connections belong to one).
        let api = server.api(owner.token());
        let asset = api.personal_asset(&owner.id, "prop").await;
        let data = data(size, size as u8);
        let files = json!([{"name": "f", "size": size}]);
        let u = created(api.open_upload(&asset, files, chunk_size).await);
        let upload = u["upload_id"].as_str().unwrap();
        let count = u["files"][0]["chunk_count"].as_u64().unwrap();
        let mut expected = std::collections::BTreeSet::new();
        for put in puts {
            let chunk = put.chunk % count;
            let start = (chunk * chunk_size) as usize;
            let body = data[start..(start + chunk_size as usize).min(size)].to_vec();
            let good_hash = chunk_digest(size as u64, chunk_size, chunk, &body);
            let (index, body, hash) = match put.damage {
                0 => (chunk, body, good_hash),
                1 => (chunk, body, hex_blake3(b"other bytes")),
                2 if !body.is_empty() => (chunk, body[..body.len() - 1].to_vec(), good_hash),
                3 => (chunk, [body, vec![0]].concat(), good_hash),
                4 => (chunk, body, "zz".into()),
                _ => (count + chunk, body, good_hash),
            };
            let (s, v) = api.put_chunk_with_hash(upload, 0, index, body, &hash).await;
            if put.damage == 0 {
                assert_eq!(s, StatusCode::OK, "{v}");
                expected.insert(chunk);
            } else {
                assert!(s.is_client_error(), "damage {} → {s} {v}", put.damage);
            }
        }
        let (_, session) = api.get(&format!("/api/v1/uploads/{upload}")).await;
        let got: std::collections::BTreeSet<u64> = session["files"][0]["received_chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        assert_eq!(got, expected, "only verified chunks are recorded");
        // Complete succeeds exactly when every chunk was verified.
        let (s, v) = api.complete(upload, &[&data]).await;
        if expected.len() as u64 == count {
            assert_eq!(s, StatusCode::OK, "{v}");
            let (_, bytes) = api.latest_file(&asset).await;
            assert_eq!(bytes, data);
        } else {
            assert_err(&(s, v), INVALID_INPUT);
        }
    });
}

/// Random sizes, chunk sizes, orders and damage against the real server
/// (SQLite + directory store, or PostgreSQL + S3 under `make test`). One
/// server for all cases; the runner is driven by hand so the server is
/// dropped (and stopped) at the end.
#[test]
fn chunk_path_records_only_verified_chunks() {
    use proptest::test_runner::{Config, TestRunner};
    let (lab, [owner]) = Lab::start(["prop@lab.org"]);
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0usize..6000,
        1u64..3,
        proptest::collection::vec(
            (0u64..8, 0u8..6).prop_map(|(chunk, damage)| Put { chunk, damage }),
            0..14,
        ),
    );
    runner
        .run(&strategy, |(size, chunk_kib, puts)| {
            run_chunk_case(&lab.server, &owner, size, chunk_kib * 1024, puts);
            Ok(())
        })
        .unwrap();
}
