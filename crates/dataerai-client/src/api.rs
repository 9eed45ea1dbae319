//! The one HTTP client for the REST API in `docs/api.md`.
//!
//! Every call goes through [`ApiClient::send`], which adds the bearer token and
//! turns every failure into a [`dataerai_proto::ApiError`]: a server error body
//! keeps its `ERR_*` code, a bare HTTP status is mapped by number, and a
//! connection failure becomes `ERR_SERVER_UNREACHABLE` naming the server URL.
//! A `Retry-After` header on an error answer is kept as a hint for the retry
//! loop ([`ApiClient::take_retry_after`]): it is about the server, not one call.
//!
//! The bearer token is added in `send`: a fixed one ([`ApiClient::new`], used to
//! check a token before saving it) or the saved login's current one
//! ([`ApiClient::managed`]), which is refreshed shortly before it expires. When
//! the server refuses a managed token (401) the client refreshes once and, if
//! the request can be sent again (no streamed body), resends it; a streamed
//! chunk is sent again by the transfer's retry loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataerai_proto::api::{
    AddMember, Asset, BatchAnswer, ChunkAck, CompleteUpload, ContentVersion, CreateAsset,
    CreateProject, CreateRelationship, CreateUpload, CreateUploadBatch, FinishManifest, Lineage,
    Me, Member, Page, Project, Relationship, SearchQuery, SearchResults, SingleUpload,
    SingleUploaded, UpdateAsset, UploadSession,
};
use dataerai_proto::{ApiError, ErrorBody, ErrorCode, API_PREFIX, CHUNK_HASH_HEADER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::status::{self, code_for_status};

pub type Result<T> = std::result::Result<T, ApiError>;

/// Hands a managed client its bearer token. The client knows nothing about
/// where tokens are kept or how they are renewed; [`crate::auth::TokenSource`]
/// (the saved login, refreshed under a file lock) is the implementation, and
/// the dependency points from it to this trait, never back.
#[async_trait::async_trait]
pub trait TokenProvider: Send + Sync {
    /// The token to send to `server` now (renewed first when it is about to expire).
    async fn token(&self, server: &str) -> Result<String>;
    /// The server answered 401 to `rejected`: a token to try once more with,
    /// or `ERR_AUTH_REQUIRED` saying how to sign in again.
    async fn after_rejection(&self, server: &str, rejected: &str) -> Result<String>;
}

/// Where the bearer token comes from.
#[derive(Clone)]
enum Bearer {
    Fixed(String),
    Managed(Arc<dyn TokenProvider>),
}

/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    /// The latest `Retry-After` a server error carried, not yet used.
    retry_after: Arc<Mutex<Option<Duration>>>,
    /// Server base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    base: String,
    bearer: Bearer,
}

impl ApiClient {
    /// A client that always sends `token`.
    pub fn new(server: &str, token: &str) -> Result<Self> {
        Self::build(server, Bearer::Fixed(token.to_string()))
    }

    /// A client that sends the provider's current token (for the saved login:
    /// [`crate::auth::TokenSource`], refreshed when due).
    pub fn managed(server: &str, source: Arc<dyn TokenProvider>) -> Result<Self> {
        Self::build(server, Bearer::Managed(source))
    }

    /// Whether a refused token may be renewed (so a request is worth one more try).
    pub fn can_refresh(&self) -> bool {
        matches!(self.bearer, Bearer::Managed(_))
    }

    fn build(server: &str, bearer: Bearer) -> Result<Self> {
        let base = server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ApiError::invalid(format!(
                "server URL must start with http:// or https://, got {server:?}"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // No overall timeout (a chunk of a slow link may take minutes), but a
            // server that stops sending altogether must not hang a transfer forever.
            .read_timeout(Duration::from_secs(300))
            .user_agent(concat!("dataerai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::internal(format!("cannot build HTTP client: {e}")))?;
        Ok(ApiClient {
            http,
            retry_after: Arc::default(),
            base,
            bearer,
        })
    }

    pub fn server(&self) -> &str {
        &self.base
    }

    /// The `Retry-After` of the latest error answer, once.
    pub fn take_retry_after(&self) -> Option<Duration> {
        self.retry_after
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}{}", self.base, API_PREFIX, path))
    }

    /// Send a request with the bearer token; any non-2xx status becomes an [`ApiError`].
    pub async fn send(&self, rb: RequestBuilder) -> Result<Response> {
        let (token, again) = match &self.bearer {
            Bearer::Fixed(t) => (t.clone(), None),
            Bearer::Managed(src) => (src.token(&self.base).await?, rb.try_clone()),
        };
        let mut resp = rb
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            if let Bearer::Managed(src) = &self.bearer {
                // Expired in flight or revoked: renew once (or learn that the
                // user must sign in again), then resend when we can.
                tracing::info!("the server refused the access token (401); renewing it");
                let fresh = src.after_rejection(&self.base, &token).await?;
                if let Some(rb) = again {
                    resp = rb
                        .bearer_auth(&fresh)
                        .send()
                        .await
                        .map_err(|e| self.transport_error(e))?;
                }
            }
        }
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let hint = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(secs) = hint {
            *self.retry_after.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Duration::from_secs(secs));
        }
        let body = resp.bytes().await.unwrap_or_default();
        let mut e = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(parsed) => parsed.error,
            Err(_) => self.bare_status_error(status, &body),
        };
        if e.code == ErrorCode::AuthRequired && !e.message.contains("dataerai auth login") {
            e.message = format!(
                "{}: run `dataerai auth login --server {}`",
                e.message, self.base
            );
        }
        Err(e)
    }

    fn bare_status_error(&self, status: StatusCode, body: &[u8]) -> ApiError {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        ApiError::new(
            code_for_status(status),
            format!(
                "server {} answered HTTP {status}{}",
                self.base,
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", truncate(text, 300))
                }
            ),
        )
    }

    /// Map a reqwest error (no HTTP status) to an [`ApiError`].
    pub fn transport_error(&self, e: reqwest::Error) -> ApiError {
        if e.is_decode() {
            return ApiError::internal(format!("unexpected reply from {}: {e}", self.base));
        }
        status::unreachable(&self.base, e)
    }

    async fn json<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T> {
        let resp = self.send(rb).await?;
        resp.json::<T>().await.map_err(|e| self.transport_error(e))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.json(self.request(Method::GET, path)).await
    }

    async fn get_with<T: DeserializeOwned>(&self, path: &str, query: Query) -> Result<T> {
        self.json(self.request(Method::GET, path).query(&query.0))
            .await
    }

    /// One page of a listing.
    async fn get_page<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<T>> {
        self.get_with(path, Query::page(limit, offset)).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.with_body(Method::POST, path, body).await
    }

    /// A request with a JSON body (POST, PATCH, PUT) and a JSON answer.
    async fn with_body<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.json(self.request(method, path).json(body)).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, path)).await?;
        Ok(())
    }

    // ------------------------------------------------------------ routes

    pub async fn me(&self) -> Result<Me> {
        self.get("/me").await
    }

    pub async fn create_project(&self, body: &CreateProject) -> Result<Project> {
        self.post("/projects", body).await
    }

    pub async fn list_projects(
        &self,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<Project>> {
        self.get_page("/projects", limit, offset).await
    }

    /// One page of `GET /search` (`docs/search.md`).
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResults> {
        self.json(self.request(Method::GET, "/search").query(query))
            .await
    }

    pub async fn create_asset(&self, body: &CreateAsset) -> Result<Asset> {
        self.post("/assets", body).await
    }

    pub async fn delete_asset(&self, asset_id: &str) -> Result<()> {
        self.delete(&format!("/assets/{}", seg(asset_id))).await
    }

    pub async fn delete_content(&self, asset_id: &str, content_id: &str) -> Result<()> {
        self.delete(&format!(
            "/assets/{}/contents/{}",
            seg(asset_id),
            seg(content_id)
        ))
        .await
    }

    pub async fn get_asset(&self, asset_id: &str) -> Result<Asset> {
        self.get(&format!("/assets/{}", seg(asset_id))).await
    }

    pub async fn update_asset(&self, asset_id: &str, body: &UpdateAsset) -> Result<Asset> {
        // Send only the fields that change, so absent and null can never be confused.
        let mut obj = serde_json::Map::new();
        let v = serde_json::to_value(body).map_err(|e| ApiError::internal(e.to_string()))?;
        if let serde_json::Value::Object(m) = v {
            for (k, v) in m {
                if !v.is_null() {
                    obj.insert(k, v);
                }
            }
        }
        let path = format!("/assets/{}", seg(asset_id));
        self.with_body(Method::PATCH, &path, &obj).await
    }

    pub async fn list_assets(
        &self,
        owner_type: Option<&str>,
        owner_id: Option<&str>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<Asset>> {
        let query = Query::page(limit, offset)
            .opt("owner_type", owner_type)
            .opt("owner_id", owner_id);
        self.get_with("/assets", query).await
    }

    pub async fn list_collection_assets(
        &self,
        collection_id: &str,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<Asset>> {
        let path = format!("/collections/{}/assets", seg(collection_id));
        self.get_page(&path, limit, offset).await
    }

    /// A content version; `content_id` may be `latest`.
    pub async fn get_content(&self, asset_id: &str, content_id: &str) -> Result<ContentVersion> {
        let path = format!("/assets/{}/contents/{}", seg(asset_id), seg(content_id));
        self.get(&path).await
    }

    /// Start a ranged GET of `[start, start+len)` of one file; the caller streams the body.
    pub async fn get_file_range(
        &self,
        asset_id: &str,
        content_id: &str,
        file_index: u32,
        start: u64,
        len: u64,
    ) -> Result<Response> {
        let path = format!(
            "/assets/{}/contents/{}/files/{file_index}",
            seg(asset_id),
            seg(content_id)
        );
        let rb = self.request(Method::GET, &path).header(
            reqwest::header::RANGE,
            format!("bytes={}-{}", start, start + len - 1),
        );
        self.send(rb).await
    }

    pub async fn create_relationship(
        &self,
        from_asset_id: &str,
        body: &CreateRelationship,
    ) -> Result<Relationship> {
        self.post(
            &format!("/assets/{}/relationships", seg(from_asset_id)),
            body,
        )
        .await
    }

    /// One page of `GET /assets/{id}/relationships`; `direction` is `out`,
    /// `in` or `both` (the server's default: `out`).
    pub async fn list_relationships(
        &self,
        asset_id: &str,
        direction: Option<&str>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<Relationship>> {
        let path = format!("/assets/{}/relationships", seg(asset_id));
        let query = Query::page(limit, offset).opt("direction", direction);
        self.get_with(&path, query).await
    }

    /// `GET /assets/{id}/lineage`: `direction` `up`, `down` or `both`,
    /// `depth` 1 to 20, only relationships of `types` (all when empty).
    pub async fn lineage(
        &self,
        asset_id: &str,
        direction: Option<&str>,
        depth: Option<u32>,
        types: &[String],
    ) -> Result<Lineage> {
        let path = format!("/assets/{}/lineage", seg(asset_id));
        let query = Query::default()
            .opt("direction", direction)
            .opt("depth", depth)
            .each("type", types);
        self.get_with(&path, query).await
    }

    pub async fn create_upload(
        &self,
        asset_id: &str,
        body: &CreateUpload,
    ) -> Result<UploadSession> {
        self.post(&format!("/assets/{}/uploads", seg(asset_id)), body)
            .await
    }

    /// Send one chunk whose digest (hex, `dataerai_proto::digest`) is known
    /// before its body: it goes in the `x-dataerai-chunk-blake3` header.
    pub async fn put_chunk(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
        blake3_hex: &str,
        len: u64,
        body: reqwest::Body,
    ) -> Result<ChunkAck> {
        let rb = self
            .request(Method::PUT, &chunk_path(upload_id, file_index, chunk_index))
            .header(CHUNK_HASH_HEADER, blake3_hex)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        self.json(rb).await
    }

    /// Send one chunk whose `body` ends with the chunk's digest as trailer
    /// `x-dataerai-chunk-blake3` (hashed as it is sent, so the chunk is read
    /// once): announced with `Trailer`, the body goes chunked, without a
    /// declared length.
    pub async fn put_chunk_digest_after(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
        body: reqwest::Body,
    ) -> Result<ChunkAck> {
        let rb = self
            .request(Method::PUT, &chunk_path(upload_id, file_index, chunk_index))
            .header(reqwest::header::TRAILER, CHUNK_HASH_HEADER)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        self.json(rb).await
    }

    pub async fn complete_upload(
        &self,
        upload_id: &str,
        body: &CompleteUpload,
    ) -> Result<ContentVersion> {
        self.post(&format!("/uploads/{}/complete", seg(upload_id)), body)
            .await
    }

    /// Open many upload sessions in one request (`POST /uploads/batch`).
    pub async fn create_uploads(
        &self,
        body: &CreateUploadBatch,
    ) -> Result<BatchAnswer<UploadSession>> {
        self.post("/uploads/batch", body).await
    }

    /// Send the bytes of many single-chunk files and complete their sessions
    /// in one request (`POST /uploads/finish`); `files` in manifest order.
    pub async fn finish_uploads(
        &self,
        manifest: &FinishManifest,
        files: Vec<bytes::Bytes>,
    ) -> Result<BatchAnswer<ContentVersion>> {
        let text =
            serde_json::to_string(manifest).map_err(|e| ApiError::internal(e.to_string()))?;
        let mut form = reqwest::multipart::Form::new().text("manifest", text);
        for data in files {
            form = form.part("file", reqwest::multipart::Part::stream(data));
        }
        self.json(
            self.request(Method::POST, "/uploads/finish")
                .multipart(form),
        )
        .await
    }

    /// One small file in one request (`POST /uploads/single`): its asset or
    /// new version, bytes and published version; `key` names the upload so a
    /// retry finds it instead of making another.
    pub async fn single_upload(
        &self,
        request: &SingleUpload,
        file: bytes::Bytes,
    ) -> Result<SingleUploaded> {
        let text = serde_json::to_string(request).map_err(|e| ApiError::internal(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .text("manifest", text)
            .part("file", reqwest::multipart::Part::stream(file));
        self.json(
            self.request(Method::POST, "/uploads/single")
                .multipart(form),
        )
        .await
    }

    /// The upload [`single_upload`](Self::single_upload) made with `key`
    /// (`ERR_NOT_FOUND`: none).
    pub async fn get_single_upload(&self, key: &str) -> Result<SingleUploaded> {
        self.get(&format!("/uploads/single/{}", seg(key))).await
    }

    pub async fn get_upload(&self, upload_id: &str) -> Result<UploadSession> {
        self.get(&format!("/uploads/{}", seg(upload_id))).await
    }

    /// Complete content versions of an asset, newest first.
    pub async fn list_contents(
        &self,
        asset_id: &str,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<ContentVersion>> {
        let path = format!("/assets/{}/contents", seg(asset_id));
        self.get_page(&path, limit, offset).await
    }

    pub async fn list_members(
        &self,
        project_id: &str,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<Member>> {
        let path = format!("/projects/{}/members", seg(project_id));
        self.get_page(&path, limit, offset).await
    }

    /// Add a member, or change an existing member's role.
    pub async fn add_member(&self, project_id: &str, email: &str, role: &str) -> Result<Member> {
        let body = AddMember {
            email: email.to_string(),
            role: role
                .parse()
                .map_err(|e| ApiError::invalid(format!("{e}")))?,
        };
        self.post(&format!("/projects/{}/members", seg(project_id)), &body)
            .await
    }

    pub async fn remove_member(&self, project_id: &str, user_id: &str) -> Result<()> {
        let path = format!("/projects/{}/members/{}", seg(project_id), seg(user_id));
        self.delete(&path).await
    }

    pub async fn abort_upload(&self, upload_id: &str) -> Result<()> {
        self.delete(&format!("/uploads/{}", seg(upload_id))).await
    }

    // ------------------------------------------------------------ collection tree

    pub async fn create_collection(
        &self,
        project_id: &str,
        body: &dataerai_proto::api::CreateCollection,
    ) -> Result<dataerai_proto::api::Collection> {
        let path = format!("/projects/{}/collections", seg(project_id));
        self.post(&path, body).await
    }

    pub async fn get_collection(
        &self,
        collection_id: &str,
    ) -> Result<dataerai_proto::api::Collection> {
        self.get(&format!("/collections/{}", seg(collection_id)))
            .await
    }

    /// One page of a project's collections: every one, or those directly
    /// under `parent_id`.
    pub async fn list_collections(
        &self,
        project_id: &str,
        parent_id: Option<&str>,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<dataerai_proto::api::Collection>> {
        let path = format!("/projects/{}/collections", seg(project_id));
        let query = Query::page(limit, offset).opt("parent_id", parent_id);
        self.get_with(&path, query).await
    }

    pub async fn collection_children(
        &self,
        collection_id: &str,
        limit: Option<u64>,
        offset: Option<u64>,
    ) -> Result<Page<dataerai_proto::api::Collection>> {
        let path = format!("/collections/{}/children", seg(collection_id));
        self.get_page(&path, limit, offset).await
    }

    pub async fn update_collection(
        &self,
        collection_id: &str,
        body: &dataerai_proto::api::UpdateCollection,
    ) -> Result<dataerai_proto::api::Collection> {
        let path = format!("/collections/{}", seg(collection_id));
        self.with_body(Method::PATCH, &path, body).await
    }

    pub async fn delete_collection(&self, collection_id: &str) -> Result<()> {
        self.delete(&format!("/collections/{}", seg(collection_id)))
            .await
    }

    pub async fn move_asset(&self, asset_id: &str, collection_id: &str) -> Result<Asset> {
        let body = dataerai_proto::api::MoveAsset {
            collection_id: collection_id.to_string(),
        };
        let path = format!("/assets/{}/collection", seg(asset_id));
        self.with_body(Method::PUT, &path, &body).await
    }

    pub async fn ensure_collection_path(
        &self,
        body: &dataerai_proto::api::EnsureCollectionPath,
    ) -> Result<dataerai_proto::api::CollectionPath> {
        self.post("/collections/ensure", body).await
    }
    // ------------------------------------------------------------ provenance export

    /// `GET /assets/{id}/provenance`: the asset's lineage as a W3C PROV-JSON
    /// document (`direction` `up`, `down` or `both`, `depth` 1 to 20).
    pub async fn asset_provenance(
        &self,
        asset_id: &str,
        direction: Option<&str>,
        depth: Option<u32>,
    ) -> Result<serde_json::Value> {
        let path = format!("/assets/{}/provenance", seg(asset_id));
        let query = Query::default()
            .opt("direction", direction)
            .opt("depth", depth);
        self.get_with(&path, query).await
    }

    /// `GET /ro-crate`: RO-Crate metadata of a collection tree or a search
    /// (exactly one of `collection_id` and `query`).
    pub async fn ro_crate_metadata(
        &self,
        collection_id: Option<&str>,
        query: Option<&str>,
        include_data: bool,
    ) -> Result<serde_json::Value> {
        let params = Query::default()
            .opt("collection_id", collection_id)
            .opt("q", query)
            .opt("include_data", Some(include_data));
        self.get_with("/ro-crate", params).await
    }
}

/// The query string of a GET, in the order the parameters are added; a
/// parameter without a value is left out (the server's default applies).
#[derive(Default)]
struct Query(Vec<(&'static str, String)>);

impl Query {
    /// `limit` and `offset` of a paged listing.
    fn page(limit: Option<u64>, offset: Option<u64>) -> Self {
        Query::default().opt("limit", limit).opt("offset", offset)
    }

    /// `name=value`, when there is a value.
    fn opt(mut self, name: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.0.push((name, v.to_string()));
        }
        self
    }

    /// `name=value` once per value (a repeated parameter).
    fn each(mut self, name: &'static str, values: &[String]) -> Self {
        self.0.extend(values.iter().map(|v| (name, v.clone())));
        self
    }
}

/// The path of one chunk of an upload.
fn chunk_path(upload_id: &str, file_index: u32, chunk_index: u64) -> String {
    format!(
        "/uploads/{}/files/{file_index}/chunks/{chunk_index}",
        seg(upload_id)
    )
}

/// Percent-encode a path segment so an id typed by a user can never change the route.
fn seg(s: &str) -> String {
    // URL parsers resolve `.`/`..` (even percent-encoded) as dot segments.
    if s.is_empty() || s.trim_matches('.').is_empty() {
        return "_".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        for (raw, encoded) in [
            ("abc-1_2.3", "abc-1_2.3"),
            ("../x", "..%2Fx"),
            ("a b?", "a%20b%3F"),
            ("..", "_"),
        ] {
            assert_eq!(seg(raw), encoded, "{raw:?}");
        }
    }

    #[test]
    fn query_keeps_order_and_leaves_out_absent_values() {
        let types = ["derived_from".to_string(), "analysis_of".to_string()];
        let q = Query::page(Some(10), None)
            .opt("direction", Some("up"))
            .opt("depth", None::<u32>)
            .each("type", &types);
        assert_eq!(
            q.0,
            [
                ("limit", "10".to_string()),
                ("direction", "up".to_string()),
                ("type", "derived_from".to_string()),
                ("type", "analysis_of".to_string()),
            ]
        );
    }

    #[test]
    fn bad_server_url_is_invalid_input() {
        assert_eq!(
            ApiClient::new("ftp://x", "t").err().unwrap().code,
            ErrorCode::InvalidInput
        );
    }
}
