//! Shared helpers for integration tests: start the real `dataerai-server`
//! binary on a temp directory, bootstrap users/tokens with the admin commands,
//! and talk to the API with reqwest.
//!
//! The same suite runs against the scale-out backends when
//! `DATAERAI_TEST_SERVER_ARGS` is set (`make test` does it with the env of
//! `scripts/test-backends.sh`): its flags go to every `serve` and `admin`
//! command, with `{id}` replaced by an id derived from the test's data
//! directory — so each test server gets its own PostgreSQL database and its
//! own bucket prefix, and servers on the same directory share them.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_dataerai-server");

/// Run `dataerai-server admin ARGS… --data-dir DIR`; panics on failure; answers stdout.
pub fn admin(data_dir: &Path, args: &[&str]) -> String {
    let out = admin_raw(data_dir, args);
    assert!(
        out.status.success(),
        "admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Extra `serve`/`admin` flags naming the scale-out backends for the servers
/// of `data_dir` (empty: the embedded defaults).
pub fn backend_args(data_dir: &Path) -> Vec<String> {
    let Ok(template) = std::env::var("DATAERAI_TEST_SERVER_ARGS") else {
        return Vec::new();
    };
    // Lowercase hex: valid in a PostgreSQL database name and an S3 key.
    let id = &blake3::hash(data_dir.as_os_str().as_encoded_bytes()).to_hex()[..16];
    template
        .split_whitespace()
        .map(|arg| arg.replace("{id}", id))
        .collect()
}

/// Where the chunk objects of the servers of `data_dir` are on disk, one
/// subdirectory per content id: `blobs/content` of the directory store, or
/// with the scale-out backends the s3s-fs root (`DATAERAI_TEST_S3_ROOT`,
/// objects are files there) / bucket / per-test prefix / `content`.
pub fn blob_content_dir(data_dir: &Path) -> PathBuf {
    if !scaleout() {
        return data_dir.join("blobs/content");
    }
    let root = std::env::var("DATAERAI_TEST_S3_ROOT").expect("DATAERAI_TEST_S3_ROOT");
    let bucket = std::env::var("DATAERAI_TEST_BUCKET").expect("DATAERAI_TEST_BUCKET");
    let id = &blake3::hash(data_dir.as_os_str().as_encoded_bytes()).to_hex()[..16];
    Path::new(&root).join(bucket).join(id).join("content")
}

/// Files below `dir` (0 when it does not exist). Deleted S3 objects leave
/// empty directories behind in s3s-fs, so tests count files, not folders.
pub fn blob_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                blob_files(&path)
            } else {
                1
            }
        })
        .sum()
}

/// True when the suite runs against PostgreSQL + S3.
pub fn scaleout() -> bool {
    std::env::var_os("DATAERAI_TEST_SERVER_ARGS").is_some()
}

pub fn admin_raw(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(backend_args(data_dir))
        .env_remove("DATAERAI_DATA_DIR")
        .output()
        .unwrap()
}

/// Create a user and a token; answers (user_id, token).
pub fn make_user(data_dir: &Path, email: &str, scope: &str) -> (String, String) {
    let user_id = admin(data_dir, &["create-user", "--email", email]);
    let token = admin(
        data_dir,
        &["create-token", "--email", email, "--scope", scope],
    );
    (user_id, token)
}

/// A running server process; killed when dropped.
pub struct TestServer {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
}

impl TestServer {
    pub fn start(data_dir: &Path) -> TestServer {
        Self::start_with(data_dir, &[])
    }

    pub fn start_with(data_dir: &Path, extra: &[&str]) -> TestServer {
        Self::start_env(data_dir, extra, &[])
    }

    /// Start with extra flags and environment (e.g. `DATAERAI_FAULTS`, which
    /// is otherwise never inherited from the test's own environment).
    pub fn start_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        let mut args = backend_args(data_dir);
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::start_exact(data_dir, &args, env)
    }

    /// Start with exactly these flags besides `--data-dir` and `--listen` (no
    /// `DATAERAI_TEST_SERVER_ARGS`).
    pub fn start_exact(data_dir: &Path, args: &[String], env: &[(&str, &str)]) -> TestServer {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("DATAERAI_FAULTS")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        TestServer {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        let resp = reqwest::get(format!("{}/metrics", self.base))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }

    /// The value of one sample of `/metrics`, e.g. `dataerai_upload_bytes_total`
    /// or `dataerai_errors_total{code="ERR_NO_SPACE"}` (0 when absent).
    pub async fn metric(&self, sample: &str) -> u64 {
        metric_value(&self.metrics().await, sample)
    }

    pub fn api(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: token.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "server exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tiny API client for tests.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
}

pub fn hex_blake3(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// Hex digest of chunk `index` (holding `data`) of a file of `size` bytes.
pub fn chunk_digest(size: u64, chunk_size: u64, index: u64, data: &[u8]) -> String {
    hex::encode(dataerai_proto::digest::ChunkDigest::of(size, chunk_size, index).compute(data))
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// Create a personal asset of `user_id`; answers its id.
    pub async fn personal_asset(&self, user_id: &str, title: &str) -> String {
        let (s, v) = self
            .post(
                "/api/v1/assets",
                json!({"title": title, "owner_type": "user", "owner_id": user_id}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["asset_id"].as_str().unwrap().to_string()
    }

    /// PUT one chunk with the given hash header.
    pub async fn put_chunk_with_hash(
        &self,
        upload_id: &str,
        file: u32,
        chunk: u64,
        data: Vec<u8>,
        hash: &str,
    ) -> (StatusCode, Value) {
        let resp = self
            .client
            .put(self.url(&format!(
                "/api/v1/uploads/{upload_id}/files/{file}/chunks/{chunk}"
            )))
            .bearer_auth(&self.token)
            .header("x-dataerai-chunk-blake3", hash)
            .body(data)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GET raw bytes (a download), with an optional `Range` header.
    pub async fn fetch(&self, path: &str, range: Option<&str>) -> (StatusCode, Vec<u8>) {
        let mut req = self.client.get(self.url(path)).bearer_auth(&self.token);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let resp = req.send().await.unwrap();
        (resp.status(), resp.bytes().await.unwrap().to_vec())
    }

    /// Open an upload session; answers (status, session or error).
    pub async fn open_upload(
        &self,
        asset_id: &str,
        files: Value,
        chunk_size: u64,
    ) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/assets/{asset_id}/uploads"),
            json!({"files": files, "chunk_size": chunk_size}),
        )
        .await
    }

    /// PUT a chunk with its right digest (looked up from the session: the
    /// digest depends on the file's size and the chunk's place).
    pub async fn put_chunk(
        &self,
        upload_id: &str,
        file: u32,
        chunk: u64,
        data: &[u8],
    ) -> (StatusCode, Value) {
        let hash = self.chunk_digest(upload_id, file, chunk, data).await;
        self.put_chunk_with_hash(upload_id, file, chunk, data.to_vec(), &hash)
            .await
    }

    /// The hex digest chunk `chunk` of file `file` of an upload must have if it
    /// holds `data` (the plain BLAKE3 when the session cannot be read).
    pub async fn chunk_digest(
        &self,
        upload_id: &str,
        file: u32,
        chunk: u64,
        data: &[u8],
    ) -> String {
        let (_, session) = self.get(&format!("/api/v1/uploads/{upload_id}")).await;
        let size = session["files"][file as usize]["size"].as_u64();
        let chunk_size = session["chunk_size"].as_u64();
        match (size, chunk_size) {
            (Some(size), Some(cs)) => chunk_digest(size, cs, chunk, data),
            _ => hex_blake3(data),
        }
    }

    /// Open an upload for `files` (name, bytes) and send every chunk; answers the
    /// session JSON (not completed).
    pub async fn send_files(
        &self,
        asset_id: &str,
        files: &[(&str, &[u8])],
        chunk_size: u64,
    ) -> Value {
        let specs: Vec<Value> = files
            .iter()
            .map(|(n, d)| json!({"name": n, "size": d.len()}))
            .collect();
        let (s, session) = self
            .post(
                &format!("/api/v1/assets/{asset_id}/uploads"),
                json!({"files": specs, "chunk_size": chunk_size}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{session}");
        let upload_id = session["upload_id"].as_str().unwrap();
        for (fi, (_, data)) in files.iter().enumerate() {
            let count = session["files"][fi]["chunk_count"].as_u64().unwrap();
            for ci in 0..count {
                let start = (ci * chunk_size) as usize;
                let end = ((ci + 1) * chunk_size).min(data.len() as u64) as usize;
                let (s, ack) = self
                    .put_chunk(upload_id, fi as u32, ci, &data[start..end])
                    .await;
                assert_eq!(s, StatusCode::OK, "{ack}");
            }
        }
        session
    }

    pub async fn complete(&self, upload_id: &str, files: &[&[u8]]) -> (StatusCode, Value) {
        let sums: Vec<Value> = files
            .iter()
            .enumerate()
            .map(|(i, d)| json!({"file_index": i, "checksum": format!("blake3:{}", hex_blake3(d))}))
            .collect();
        self.post(
            &format!("/api/v1/uploads/{upload_id}/complete"),
            json!({"files": sums}),
        )
        .await
    }

    /// Upload and complete; answers the content version.
    pub async fn upload(&self, asset_id: &str, files: &[(&str, &[u8])], chunk_size: u64) -> Value {
        let session = self.send_files(asset_id, files, chunk_size).await;
        let datas: Vec<&[u8]> = files.iter().map(|(_, d)| *d).collect();
        let (s, v) = self
            .complete(session["upload_id"].as_str().unwrap(), &datas)
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

/// The value of `sample` in a Prometheus text exposition (0 when absent).
pub fn metric_value(text: &str, sample: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[0] ^ (i / 7) as u8 ^ seed)
        .collect()
}

/// Assert an error reply: status and `ERR_*` code.
#[track_caller]
pub fn assert_err(reply: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(reply.0.as_u16(), status, "{}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "{}", reply.1);
    assert!(
        !reply.1["error"]["message"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "{}",
        reply.1
    );
}

// ---------------------------------------------------------------- issue 4: sign-in helpers

/// Run an admin command with `stdin` as standard input (`--password-stdin`).
pub fn admin_stdin(data_dir: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("admin")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(backend_args(data_dir))
        .env_remove("DATAERAI_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Create a user with a web password (optionally a server admin); answers the user id.
pub fn make_user_with_password(
    data_dir: &Path,
    email: &str,
    password: &str,
    is_admin: bool,
) -> String {
    let mut args = vec!["create-user", "--email", email, "--password-stdin"];
    if is_admin {
        args.push("--admin");
    }
    let out = admin_stdin(data_dir, &args, &format!("{password}\n"));
    assert!(
        out.status.success(),
        "create-user failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A minimal browser: keeps cookies by hand, never follows redirects.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: std::collections::BTreeMap<String, String>,
    /// `Set-Cookie` lines of the last answer (to check their attributes).
    pub last_set_cookie: Vec<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the first `name="csrf_token"` field.
    pub fn csrf(&self) -> String {
        hidden_field(&self.body, "csrf_token").expect("a csrf_token field")
    }
}

/// The `value` of the first input named `name`.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Default::default(),
            last_set_cookie: Vec::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie.join("; "))
        };
        let resp = req.send().await.unwrap();
        self.last_set_cookie.clear();
        for v in resp.headers().get_all("set-cookie") {
            let line = v.to_str().unwrap().to_string();
            let (kv, _) = line.split_once(';').unwrap_or((&line, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
            self.last_set_cookie.push(line);
        }
        Page {
            status: resp.status(),
            location: resp
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// Sign in through the form; answers the final answer of `POST /login`.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", password),
                ("next", "/tokens"),
            ],
        )
        .await
    }

    /// Approve (or deny) a device code as the signed-in user.
    pub async fn decide_device(&mut self, user_code: &str, approve: bool) -> Page {
        let confirm = self.get(&format!("/device?user_code={user_code}")).await;
        assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
        let csrf = confirm.csrf();
        let action = if approve { "approve" } else { "deny" };
        self.post(
            "/device",
            &[
                ("csrf_token", &csrf),
                ("user_code", user_code),
                ("action", action),
            ],
        )
        .await
    }
}

/// `POST` a form to an OAuth endpoint; answers status and JSON.
pub async fn oauth(base: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Run the whole device login for a user with a password (server started
/// with `--device-poll-interval-s 1`); answers the token response.
pub async fn device_login(base: &str, email: &str, password: &str) -> Value {
    let (status, code) = oauth(
        base,
        "/oauth/device/code",
        &[("client_id", "dataerai-cli"), ("scope", "read write")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{code}");
    let mut browser = Browser::new(base);
    let signed = browser.sign_in(email, password).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let done = browser
        .decide_device(code["user_code"].as_str().unwrap(), true)
        .await;
    assert!(done.body.contains("Device approved"), "{}", done.body);
    let (status, tokens) = oauth(
        base,
        "/oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", code["device_code"].as_str().unwrap()),
            ("client_id", "dataerai-cli"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}
