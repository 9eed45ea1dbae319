//! What the server's integration tests share beyond `dataerai-testkit`
//! (which starts the real binary, runs the admin commands, picks the
//! scale-out backends, reads metrics and plays a person in the web pages):
//! a small REST client for the API, chunk digests and test data.
#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

// Each test binary uses its own part of these.
#[allow(unused_imports)]
pub use dataerai_testkit::web::{
    device_login, device_login_with_scope, hidden_field, oauth, Browser, Page, DEVICE_GRANT,
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
