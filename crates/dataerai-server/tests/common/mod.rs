//! What the server's integration tests share beyond `dataerai-testkit`
//! (which starts the real binary, runs the admin commands, picks the
//! scale-out backends, reads metrics and plays a person in the web pages):
//! the [`Lab`] fixture (a fresh server and its users), a small REST client
//! for the API ([`Api`]), error assertions, chunk digests and test data.
#![allow(dead_code)]

use std::fmt::Display;
use std::path::Path;

use dataerai_testkit::server::ServerBuilder;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use dataerai_testkit::web::{
    device_login, device_login_with_scope, hidden_field, oauth, poll_device_token,
    request_device_code, Browser, Page, DEVICE_GRANT,
};
pub use dataerai_testkit::*;

/// `server.api(token)`: the REST client of the server tests.
pub trait ServerApi {
    fn api(&self, token: &str) -> Api;
}

impl ServerApi for TestServer {
    fn api(&self, token: &str) -> Api {
        Api {
            base: self.base.clone(),
            token: token.to_string(),
            client: reqwest::Client::new(),
        }
    }
}

/// A fresh server on its own data directory, started after its users were
/// made: `let (lab, [alice, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);`.
pub struct Lab {
    pub server: TestServer,
    // Last: removed after the server is stopped.
    pub dir: tempfile::TempDir,
}

/// A user of a [`Lab`] with a `read,write` token: its id and its API client.
#[derive(Clone)]
pub struct User {
    pub id: String,
    pub api: Api,
}

impl Lab {
    /// A plain server whose users `emails` each hold a `read,write` token.
    pub fn start<const N: usize>(emails: [&str; N]) -> (Lab, [User; N]) {
        Self::start_with(emails, |b| b)
    }

    /// [`Lab::start`] with the server configured by `configure` (flags, faults).
    pub fn start_with<const N: usize>(
        emails: [&str; N],
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> (Lab, [User; N]) {
        let dir = tempfile::tempdir().unwrap();
        let made = emails.map(|email| make_user(dir.path(), email, "read,write"));
        let server = configure(TestServer::builder(dir.path())).start();
        let users = made.map(|(id, token)| User {
            api: server.api(&token),
            id,
        });
        (Lab { server, dir }, users)
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A browser signed in as `email` (whose web password is `password`),
    /// sent home by the sign-in.
    pub async fn browser(&self, email: &str, password: &str) -> Browser {
        let mut b = Browser::new(&self.server.base);
        let page = b.sign_in_then(email, password, "/").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location.as_deref(), Some("/"));
        b
    }
}

impl User {
    pub fn token(&self) -> &str {
        &self.api.token
    }

    /// Create a personal asset of this user; answers its id.
    pub async fn personal_asset(&self, title: &str) -> String {
        self.api.personal_asset(&self.id, title).await
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

/// Send `req`; its status and JSON body (`Null` when empty, the text as a
/// string when not JSON).
async fn answer(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
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

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` with this client's bearer token, to be finished
    /// by hand (headers, raw bodies, streamed answers).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.token)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req).await
    }

    /// `POST {path}` with a multipart body.
    pub async fn post_multipart(
        &self,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> (StatusCode, Value) {
        answer(self.request(Method::POST, path).multipart(form)).await
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

    /// `GET {path}?{query}` for each of `queries`: every one is refused as
    /// invalid input.
    pub async fn assert_queries_refused(&self, path: &str, queries: &[&str]) {
        for query in queries {
            let reply = self.get(&format!("{path}?{query}")).await;
            assert_err_for(query, &reply, INVALID_INPUT);
        }
    }

    /// Create a personal asset of `user_id`; answers its id.
    pub async fn personal_asset(&self, user_id: &str, title: &str) -> String {
        self.create_asset("user", user_id, title).await
    }

    /// Create an asset of project `project_id` (in its root collection);
    /// answers its id.
    pub async fn project_asset(&self, project_id: &str, title: &str) -> String {
        self.create_asset("project", project_id, title).await
    }

    async fn create_asset(&self, owner_type: &str, owner_id: &str, title: &str) -> String {
        let asset = json!({"title": title, "owner_type": owner_type, "owner_id": owner_id});
        self.new_asset(asset).await
    }

    /// Create an asset from a whole `POST /api/v1/assets` body; answers its id.
    pub async fn new_asset(&self, body: Value) -> String {
        let created = created(self.post("/api/v1/assets", body).await);
        created["asset_id"].as_str().unwrap().to_string()
    }

    /// Create a project; answers its id.
    pub async fn create_project(&self, name: &str) -> String {
        let project = created(self.post("/api/v1/projects", json!({ "name": name })).await);
        project["project_id"].as_str().unwrap().to_string()
    }

    /// Create a collection `name` under the project's root; answers its id.
    pub async fn create_collection(&self, project_id: &str, name: &str) -> String {
        let path = format!("/api/v1/projects/{project_id}/collections");
        let collection = created(self.post(&path, json!({ "name": name })).await);
        collection["collection_id"].as_str().unwrap().to_string()
    }

    /// `PATCH /api/v1/assets/{asset_id}` with `patch` (fields to change;
    /// metadata merged key by key).
    pub async fn update_asset(&self, asset_id: &str, patch: Value) -> (StatusCode, Value) {
        self.patch(&format!("/api/v1/assets/{asset_id}"), patch)
            .await
    }

    /// `PUT /api/v1/assets/{asset_id}/collection`: move an asset into another
    /// collection of its project.
    pub async fn move_asset(&self, asset_id: &str, collection_id: &str) -> (StatusCode, Value) {
        let path = format!("/api/v1/assets/{asset_id}/collection");
        let body = json!({ "collection_id": collection_id });
        self.call(Method::PUT, &path, Some(body)).await
    }

    /// `POST /api/v1/assets/{from}/relationships` with `body` (`to_asset_id`,
    /// `type`, …).
    pub async fn relate(&self, from: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("/api/v1/assets/{from}/relationships"), body)
            .await
    }

    /// Add `email` to a project with `role`, or change its role.
    pub async fn set_role(&self, project_id: &str, email: &str, role: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/api/v1/projects/{project_id}/members"),
            json!({"email": email, "role": role}),
        )
        .await
    }

    /// The chunk URL of file `file`, chunk `chunk` of an upload.
    pub fn chunk_path(upload_id: &str, file: u32, chunk: u64) -> String {
        format!("/api/v1/uploads/{upload_id}/files/{file}/chunks/{chunk}")
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
            .request(Method::PUT, &Self::chunk_path(upload_id, file, chunk))
            .header("x-dataerai-chunk-blake3", hash)
            .body(data)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// PUT one chunk with its digest after the body, as the daemon sends a
    /// big chunk it hashes while sending: `pieces` chunked (no declared
    /// length), `Trailer: x-dataerai-chunk-blake3` announcing the digest, and
    /// `trailer` (if given) as that trailer after the last piece.
    pub async fn put_chunk_with_trailer(
        &self,
        upload_id: &str,
        file: u32,
        chunk: u64,
        pieces: Vec<Vec<u8>>,
        trailer: Option<&str>,
    ) -> (StatusCode, Value) {
        use hyper::body::Frame;
        let mut frames: Vec<Result<Frame<bytes::Bytes>, std::io::Error>> = pieces
            .into_iter()
            .map(|piece| Ok(Frame::data(piece.into())))
            .collect();
        if let Some(digest) = trailer {
            let mut fields = reqwest::header::HeaderMap::new();
            fields.insert("x-dataerai-chunk-blake3", digest.parse().unwrap());
            frames.push(Ok(Frame::trailers(fields)));
        }
        let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
        let resp = self
            .request(Method::PUT, &Self::chunk_path(upload_id, file, chunk))
            .header("trailer", "x-dataerai-chunk-blake3")
            .body(reqwest::Body::wrap(body))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// GET raw bytes (a download), with an optional `Range` header.
    pub async fn fetch(&self, path: &str, range: Option<&str>) -> (StatusCode, Vec<u8>) {
        let resp = self.download(path, range).await;
        (resp.status(), resp.bytes().await.unwrap().to_vec())
    }

    /// GET a download, with an optional `Range` header; answers the response
    /// (headers, streamed body).
    pub async fn download(&self, path: &str, range: Option<&str>) -> reqwest::Response {
        let mut req = self.request(Method::GET, path);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        req.send().await.unwrap()
    }

    /// GET file 0 of the asset's latest version: (status, bytes).
    pub async fn latest_file(&self, asset_id: &str) -> (StatusCode, Vec<u8>) {
        self.fetch(
            &format!("/api/v1/assets/{asset_id}/contents/latest/files/0"),
            None,
        )
        .await
    }

    /// Open an upload session (`chunk_size` `None`: the server's default);
    /// answers (status, session or error).
    pub async fn open_upload(
        &self,
        asset_id: &str,
        files: Value,
        chunk_size: impl Into<Option<u64>>,
    ) -> (StatusCode, Value) {
        let mut body = json!({ "files": files });
        if let Some(cs) = chunk_size.into() {
            body["chunk_size"] = json!(cs);
        }
        self.post(&format!("/api/v1/assets/{asset_id}/uploads"), body)
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
        let session = created(self.open_upload(asset_id, json!(specs), chunk_size).await);
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
        self.post(
            &format!("/api/v1/uploads/{upload_id}/complete"),
            completion(files),
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

/// The body that completes an upload of `files` (each file's BLAKE3 checksum).
pub fn completion(files: &[&[u8]]) -> Value {
    let sums: Vec<Value> = files
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"file_index": i, "checksum": format!("blake3:{}", hex_blake3(d))}))
        .collect();
    json!({ "files": sums })
}

/// The body of a `201 Created` reply (anything else fails the test).
#[track_caller]
pub fn created((status, body): (StatusCode, Value)) -> Value {
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// `(total, how many items)` of a page answer (`{items, total, …}`).
pub fn page_counts(page: &Value) -> (Option<u64>, usize) {
    (
        page["total"].as_u64(),
        page["items"].as_array().map_or(0, Vec::len),
    )
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[0] ^ (i / 7) as u8 ^ seed)
        .collect()
}

/// An expected refusal: the HTTP status and the `ERR_*` code of the body.
pub type Refusal = (u16, &'static str);

pub const INVALID_INPUT: Refusal = (400, "ERR_INVALID_INPUT");
pub const AUTH_REQUIRED: Refusal = (401, "ERR_AUTH_REQUIRED");
pub const PERMISSION_DENIED: Refusal = (403, "ERR_PERMISSION_DENIED");
pub const NOT_FOUND: Refusal = (404, "ERR_NOT_FOUND");
pub const CONFLICT: Refusal = (409, "ERR_CONFLICT");
pub const RELATIONSHIP_EXISTS: Refusal = (409, "ERR_RELATIONSHIP_EXISTS");
pub const QUOTA_EXCEEDED: Refusal = (413, "ERR_QUOTA_EXCEEDED");
pub const INTEGRITY: Refusal = (422, "ERR_INTEGRITY");
pub const NO_SPACE: Refusal = (507, "ERR_NO_SPACE");

/// Assert an error reply: its status, its `ERR_*` code and a message.
#[track_caller]
pub fn assert_err(reply: &(StatusCode, Value), expected: Refusal) {
    assert_err_for("", reply, expected);
}

/// [`assert_err`] naming the `case` (of a table of cases) in its message.
#[track_caller]
pub fn assert_err_for(case: impl Display, reply: &(StatusCode, Value), expected: Refusal) {
    let ((got, body), (status, code)) = (reply, expected);
    assert_eq!(got.as_u16(), status, "{case}: {body}");
    assert_eq!(body["error"]["code"], code, "{case}: {body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{case}: {body}"
    );
}

/// [`assert_err`] whose message contains `words` (it names what is wrong).
#[track_caller]
pub fn assert_err_mentions(reply: &(StatusCode, Value), expected: Refusal, words: &str) {
    assert_err(reply, expected);
    let message = reply.1["error"]["message"].as_str().unwrap();
    assert!(message.contains(words), "{words:?} not in {}", reply.1);
}

/// The string `field` of every item of a list page (`{"items": [...]}`).
pub fn item_strs<'a>(page: &'a Value, field: &str) -> Vec<&'a str> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list page: {page}"))
        .iter()
        .map(|item| {
            item[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field} in {item}"))
        })
        .collect()
}

/// Assert that the audit log (read by the server admin behind `api`) holds
/// an entry for each of `actions`; answers the log's entries.
pub async fn assert_audited(api: &Api, actions: &[&str]) -> Value {
    let (s, log) = api.get("/api/v1/audit?limit=1000").await;
    assert_eq!(s, StatusCode::OK, "{log}");
    let logged = item_strs(&log, "action");
    for a in actions {
        assert!(logged.contains(a), "{a} missing from {logged:?}");
    }
    log
}
