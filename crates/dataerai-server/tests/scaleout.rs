//! What only the scale-out backends (PostgreSQL + S3) do: several replicas
//! serving one upload, the chunk object keys, migrations in PostgreSQL, and
//! `/readyz` following the health of both backends. These tests need the env
//! of `scripts/test-backends.sh`, so they are ignored by a plain `cargo test`
//! and run by `make test-scaleout` (`--include-ignored`, with
//! `DATAERAI_REQUIRE_SCALEOUT=1`: a missing backend fails them); the rest of
//! the suite covers the embedded defaults.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const CS: u64 = 4096;

/// True when the backends are missing and the test may be skipped (run by
/// hand with `--include-ignored`); fails in the scale-out stage.
fn skip() -> bool {
    scaleout_var("DATAERAI_TEST_SERVER_ARGS").is_none()
}

/// [`Lab::start`] on the scale-out backends; `None` when the test may be
/// skipped (see [`skip`]).
fn scaleout_lab<const N: usize>(emails: [&str; N]) -> Option<(Lab, [User; N])> {
    (!skip()).then(|| Lab::start(emails))
}

/// The per-test flag values `backend_args` chose: (database URL, blob store).
fn backend_of(data_dir: &Path) -> (String, String) {
    let args = backend_args(data_dir);
    let value = |flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].clone()
    };
    (value("--database-url"), value("--blob-store"))
}

#[tokio::test]
#[ignore = "needs PostgreSQL + S3: run by make test-scaleout"]
async fn two_replicas_serve_one_upload_chunk_by_chunk() {
    let Some((lab, [alice])) = scaleout_lab(["alice@lab.org"]) else {
        return;
    };
    // Same data dir id, so the same database and bucket prefix: two replicas.
    let (a, b) = (&lab.server, TestServer::start(lab.path()));
    let (api_a, api_b) = (&alice.api, b.api(alice.token()));

    let asset = alice.personal_asset("shared").await;
    let body = data(5 * CS as usize + 123, 3);
    let files = json!([{"name": "f.bin", "size": body.len()}]);
    let session = created(api_b.open_upload(&asset, files, CS).await);
    let up = session["upload_id"].as_str().unwrap();
    let chunk = |i: u64| &body[(i * CS) as usize..(((i + 1) * CS) as usize).min(body.len())];
    for i in 0..6 {
        let api = if i % 2 == 0 { api_a } else { &api_b };
        let (s, ack) = api.put_chunk(up, 0, i, chunk(i)).await;
        assert_eq!(s, StatusCode::OK, "chunk {i}: {ack}");
    }
    // A retry on the other replica is idempotent.
    assert_eq!(api_b.put_chunk(up, 0, 0, chunk(0)).await.0, StatusCode::OK);
    let (_, state) = api_a.get(&format!("/api/v1/uploads/{up}")).await;
    assert_eq!(
        state["files"][0]["received_chunks"],
        json!([0, 1, 2, 3, 4, 5])
    );

    let (s, version) = api_a.complete(up, &[&body]).await;
    assert_eq!(s, StatusCode::OK, "{version}");
    let cid = version["content_id"].as_str().unwrap();
    let (s, got) = api_b
        .fetch(
            &format!("/api/v1/assets/{asset}/contents/{cid}/files/0"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(hex_blake3(&got), hex_blake3(&body));
    let (s, part) = api_b
        .fetch(
            &format!("/api/v1/assets/{asset}/contents/latest/files/0"),
            Some("bytes=4000-8300"),
        )
        .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part, &body[4000..=8300]);

    // One object per chunk, keyed by the first 128 bits of its BLAKE3 digest.
    let objects = blob_content_dir(lab.path()).join(cid).join("0");
    for i in 0..6u64 {
        let key = &chunk_digest(body.len() as u64, CS, i, chunk(i))[..32];
        assert!(objects.join(i.to_string()).join(key).is_file(), "chunk {i}");
        assert_eq!(blob_files(&objects.join(i.to_string())), 1);
    }

    // Different bytes for a chunk already held elsewhere: refused, and the
    // chunk keeps exactly its first object.
    let (_, s2) = api_a
        .open_upload(&asset, json!([{"name": "g", "size": CS}]), CS)
        .await;
    let up2 = s2["upload_id"].as_str().unwrap();
    let first = data(CS as usize, 1);
    let second = data(CS as usize, 2);
    assert_eq!(api_a.put_chunk(up2, 0, 0, &first).await.0, StatusCode::OK);
    assert_err(&api_b.put_chunk(up2, 0, 0, &second).await, CONFLICT);
    let held = blob_content_dir(lab.path())
        .join(s2["content_id"].as_str().unwrap())
        .join("0/0");
    assert_eq!(blob_files(&held), 1);
    assert!(held.join(&hex_blake3(&first)[..32]).is_file());

    // Both replicas report the open session (the gauge reads the database).
    assert_eq!(a.metric("dataerai_active_uploads"), 1);
    assert_eq!(b.metric("dataerai_active_uploads"), 1);
    lab.server.stop();
    b.stop();
}

#[tokio::test]
#[ignore = "needs PostgreSQL + S3: run by make test-scaleout"]
async fn migrations_create_the_database_and_run_once() {
    // A second process opening the same database finds it migrated.
    let Some((lab, _)) = scaleout_lab(["alice@lab.org"]) else {
        return;
    };
    let (db_url, _) = backend_of(lab.path());
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args([db_url.as_str(), "-tAc", sql])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dataerai-store/migrations/postgres"
    ))
    .unwrap()
    .count();
    assert_eq!(
        psql("SELECT count(*) FROM _sqlx_migrations WHERE success"),
        migrations.to_string()
    );
    assert_eq!(psql("SELECT email FROM users"), "alice@lab.org");
    // Tokens are stored hashed only.
    assert_eq!(
        psql("SELECT count(*) FROM tokens WHERE token_hash LIKE 'dtr_%'"),
        "0"
    );
    lab.server.stop();
}

/// A TCP forwarder standing in for the network path to a backend, so a test
/// can cut it (`stop`: listener closed, open connections dropped) and restore
/// it on the same port.
struct Cable {
    port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cable {
    async fn connect(target: SocketAddr) -> Cable {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cable = Cable {
            port,
            target,
            tasks: Default::default(),
        };
        cable.serve(listener);
        cable
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

fn host_port(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let rest = rest.rsplit('@').next().unwrap();
    let host_port = rest.split('/').next().unwrap();
    host_port.parse().unwrap()
}

async fn readyz(base: &str) -> (StatusCode, bool) {
    let resp = reqwest::Client::new()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    (resp.status(), resp.headers().contains_key("retry-after"))
}

// Multi-threaded: the cables forward while the test thread blocks on the
// server's first stdout line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL + S3: run by make test-scaleout"]
async fn readyz_follows_postgres_and_the_bucket() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (db_url, blob_store) = backend_of(dir.path());
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let pg = Cable::connect(host_port(&db_url)).await;
    let s3 = Cable::connect(host_port(&endpoint)).await;
    let db_via_cable = db_url.replace(
        &host_port(&db_url).to_string(),
        &format!("127.0.0.1:{}", pg.port),
    );
    let s3_via_cable = format!("http://127.0.0.1:{}", s3.port);
    let server = TestServer::start_exact(
        dir.path(),
        &[
            "--database-url".into(),
            db_via_cable,
            "--blob-store".into(),
            blob_store,
        ],
        &[("AWS_ENDPOINT_URL", s3_via_cable.as_str())],
    );
    assert_eq!(readyz(&server.base).await, (StatusCode::OK, false));

    pg.cut();
    assert_eq!(
        readyz(&server.base).await,
        (StatusCode::SERVICE_UNAVAILABLE, true)
    );
    // Liveness is not readiness: the process itself is fine.
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    pg.restore().await;
    assert_eq!(readyz(&server.base).await, (StatusCode::OK, false));

    s3.cut();
    assert_eq!(
        readyz(&server.base).await,
        (StatusCode::SERVICE_UNAVAILABLE, true)
    );
    s3.restore().await;
    assert_eq!(readyz(&server.base).await, (StatusCode::OK, false));
    server.stop();
}
