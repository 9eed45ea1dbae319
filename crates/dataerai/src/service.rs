//! The operations of the user-side binary, shared by the daemon and the CLI so
//! there is exactly one implementation of each.
//!
//! Parameter structs double as the JSON-RPC `params` of `docs/ipc.md`: they
//! reject unknown fields, and every check that can fail before bytes move
//! happens here or in the engines' `prepare` step.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use dataerai_proto::api::OwnerType;
use dataerai_proto::api::{
    check_relationship_kind, Asset, ContentVersion, CreateAsset, CreateProject, CreateRelationship,
    Lineage, Member, Page, Project, Relationship, SearchQuery, SearchResults, UpdateAsset,
    PROJECT_ROLES,
};
use dataerai_proto::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use dataerai_client::auth::TokenSource;
use dataerai_client::ApiClient;
use dataerai_client::{credentials, paths};
use dataerai_transfer::journal::NewTransfer;
use dataerai_transfer::{self as transfer, download, small, upload, Plan};

pub type Result<T> = std::result::Result<T, ApiError>;

// The collection tree (`service/collections.rs`).
mod collections;
pub use collections::*;

/// An upload ready to journal: a session to send the files in, or a lone
/// small file already uploaded.
pub enum PreparedUpload {
    Session(upload::UploadSpec),
    Done(small::SingleDone),
}

impl PreparedUpload {
    /// The journal row of its transfer (completed for a lone small file).
    pub fn new_transfer(&self, batch_id: Option<String>) -> Result<NewTransfer> {
        match self {
            PreparedUpload::Session(spec) => spec.new_transfer(batch_id),
            PreparedUpload::Done(done) => done.new_transfer(batch_id),
        }
    }
}

/// Entry point for all operations. Cheap to clone. Every request re-reads the
/// credential file (through [`TokenSource`]), so it sees the current login and
/// refreshes an expiring OAuth token; the HTTP client (and its connection pool)
/// is reused for as long as the login's server stays the same.
#[derive(Clone)]
pub struct Service {
    config_dir: PathBuf,
    tokens: Arc<TokenSource>,
    client: Arc<Mutex<Option<ApiClient>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListMembersParams {
    pub project_id: String,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMemberParams {
    pub project_id: String,
    pub email: String,
    pub role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveMemberParams {
    pub project_id: String,
    pub email: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectParams {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAssetsParams {
    pub owner_type: Option<String>,
    pub owner_id: Option<String>,
    pub collection_id: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// `asset.search`: the REST search's parameters (`docs/search.md`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    #[serde(default)]
    pub query: String,
    pub sort: Option<String>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub facets: Option<bool>,
}

/// `relationship.list`: one page of an asset's relationships.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRelationshipsParams {
    pub asset_id: String,
    /// `out` (default), `in` or `both`.
    pub direction: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// `asset.lineage`: the assets reachable from one along relationships.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageParams {
    pub asset_id: String,
    /// `up` (default), `down` or `both`.
    pub direction: Option<String>,
    /// 1 to 20 (default 20).
    pub depth: Option<u32>,
    /// Only relationships of these types (default: all).
    #[serde(default)]
    pub types: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    pub local_path: String,
    /// Required for a new asset; absent with `asset_id`.
    pub title: Option<String>,
    pub owner_type: Option<String>,
    pub owner_id: Option<String>,
    /// Add a new content version to this existing asset.
    pub asset_id: Option<String>,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub collection_id: Option<String>,
    /// What kind of record a new asset is (`raw_data`, `analysis`, …).
    pub record_type: Option<String>,
    /// The allocation a new asset is charged to (the owner's; checked by the server).
    pub allocation_id: Option<String>,
    pub chunk_size_mb: Option<i64>,
    /// A repeat with the same key attaches to the transfer the first call
    /// started (the daemon's concern; see `daemon::methods`).
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListVersionsParams {
    pub asset_id: String,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadParams {
    pub asset_id: String,
    pub dest_dir: String,
    pub content_id: Option<String>,
    pub chunk_size_mb: Option<i64>,
    /// Replace local files that exist and differ.
    #[serde(default)]
    pub overwrite: bool,
    /// Allow hidden paths when the destination is the home directory.
    #[serde(default)]
    pub allow_hidden: bool,
    /// As for [`UploadParams::idempotency_key`].
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetIdParams {
    pub asset_id: String,
}

/// One content version of an asset (`asset.delete_version`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionParams {
    pub asset_id: String,
    pub content_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMetadataParams {
    pub asset_id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub record_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationshipParams {
    pub from_asset_id: String,
    pub to_asset_id: String,
    pub relationship_type: String,
    pub analysis_mode: Option<String>,
    pub qualifier_note: Option<String>,
    pub qualifier_time: Option<String>,
    pub qualifiers: Option<Value>,
}

fn require(name: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        Err(ApiError::invalid(format!("{name} must not be empty")))
    } else {
        Ok(())
    }
}

fn object(name: &str, value: Option<Value>) -> Result<Option<Map<String, Value>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(ApiError::invalid(format!(
            "{name} must be a JSON object, got {}",
            json_kind(&other)
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Normalise an ISO-8601 time to RFC 3339 UTC. Accepts a full timestamp with
/// offset, a naive timestamp (taken as UTC) or a bare date.
pub fn normalize_time(s: &str) -> Result<String> {
    let s = s.trim();
    let fmt = |dt: DateTime<Utc>| dt.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Ok(fmt(dt.with_timezone(&Utc)));
    }
    for pat in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, pat) {
            return Ok(fmt(n.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(fmt(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()));
    }
    Err(ApiError::invalid(format!(
        "qualifier_time is not an ISO-8601 time: {s:?}"
    )))
}

impl Service {
    pub fn new(config_dir: PathBuf) -> Self {
        Service {
            tokens: TokenSource::new(config_dir.clone()),
            config_dir,
            client: Arc::default(),
        }
    }

    pub fn from_env() -> Self {
        Service::new(paths::config_dir())
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// A client for the signed-in server (re-reads the credential file; reuses
    /// the previous client, and so its open connections, while the server is
    /// the same). The client asks [`TokenSource`] for the token on every request.
    pub fn client(&self) -> Result<ApiClient> {
        let creds = credentials::load_credentials(&self.config_dir)?;
        let mut cached = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached.as_ref() {
            if c.server() == creds.server.trim_end_matches('/') {
                return Ok(c.clone());
            }
        }
        let c = ApiClient::managed(&creds.server, self.tokens.clone())?;
        *cached = Some(c.clone());
        Ok(c)
    }

    /// The signed-in user's id: from the saved login, or asked of the server
    /// when the token comes from `DATAERAI_TOKEN` (which names no user).
    pub async fn user_id(&self) -> Result<String> {
        let creds = credentials::load_credentials(&self.config_dir)?;
        if !creds.user_id.is_empty() {
            return Ok(creds.user_id);
        }
        Ok(self.client()?.me().await?.user_id)
    }

    /// `auth.status`: the saved login, checked against the server (which
    /// refreshes an expiring OAuth token first, so the expiry shown is real).
    pub async fn auth_status(&self) -> Result<Value> {
        let me = self.client()?.me().await?;
        // Re-read: the call above may have rotated the tokens.
        let creds = credentials::load_credentials(&self.config_dir)?;
        Ok(json!({
            "signed_in": true,
            "server": creds.server,
            "server_url": creds.server,
            "user_id": me.user_id,
            "user_email": me.email,
            "expires_at": me.expires_at.or(creds.expires_at),
            "scopes": me.scopes,
            "token_kind": creds.kind(),
            "refresh_expires_at": creds.refresh_expires_at,
        }))
    }

    pub async fn list_members(&self, p: ListMembersParams) -> Result<Page<Member>> {
        require("project_id", &p.project_id)?;
        self.client()?
            .list_members(&p.project_id, p.limit, p.offset)
            .await
    }

    /// `project.add_member`: adds, or changes the role of an existing member.
    pub async fn add_member(&self, p: AddMemberParams) -> Result<Member> {
        require("project_id", &p.project_id)?;
        check_email(&p.email)?;
        if !PROJECT_ROLES.contains(&p.role.as_str()) {
            return Err(ApiError::invalid(format!(
                "role must be one of {}, got {:?}",
                PROJECT_ROLES.join(", "),
                p.role
            )));
        }
        self.client()?
            .add_member(&p.project_id, p.email.trim(), &p.role)
            .await
    }

    /// `project.remove_member`: the server removes by user id, so look the
    /// email up among the members first (case-insensitively, like the server).
    pub async fn remove_member(&self, p: RemoveMemberParams) -> Result<()> {
        require("project_id", &p.project_id)?;
        check_email(&p.email)?;
        let client = self.client()?;
        let wanted = p.email.trim().to_lowercase();
        let mut offset = 0;
        loop {
            let page = client
                .list_members(&p.project_id, Some(1000), Some(offset))
                .await?;
            if let Some(m) = page.items.iter().find(|m| m.email.to_lowercase() == wanted) {
                return client.remove_member(&p.project_id, &m.user_id).await;
            }
            offset += page.items.len() as u64;
            if page.items.is_empty() || offset >= page.total {
                return Err(ApiError::not_found(format!(
                    "member {} of project {}",
                    p.email.trim(),
                    p.project_id
                )));
            }
        }
    }

    pub async fn create_project(&self, p: CreateProjectParams) -> Result<Project> {
        require("name", &p.name)?;
        self.client()?
            .create_project(&CreateProject {
                name: p.name,
                description: p.description.unwrap_or_default(),
            })
            .await
    }

    pub async fn list_projects(&self, p: PageParams) -> Result<Page<Project>> {
        self.client()?.list_projects(p.limit, p.offset).await
    }

    pub async fn list_assets(&self, p: ListAssetsParams) -> Result<Page<Asset>> {
        let client = self.client()?;
        if let Some(c) = &p.collection_id {
            if p.owner_type.is_some() || p.owner_id.is_some() {
                return Err(ApiError::invalid(
                    "give either collection_id or owner_type/owner_id, not both",
                ));
            }
            require("collection_id", c)?;
            return client.list_collection_assets(c, p.limit, p.offset).await;
        }
        if let Some(t) = &p.owner_type {
            owner_type(t)?;
        }
        client
            .list_assets(
                p.owner_type.as_deref(),
                p.owner_id.as_deref(),
                p.limit,
                p.offset,
            )
            .await
    }

    /// One page of the assets you can read that match a query.
    pub async fn search(&self, p: SearchParams) -> Result<SearchResults> {
        self.client()?
            .search(&SearchQuery {
                q: Some(p.query),
                sort: p.sort,
                limit: p.limit,
                cursor: p.cursor,
                facets: p.facets,
            })
            .await
    }

    /// Delete an asset with its versions and relationships (write access).
    pub async fn delete_asset(&self, p: AssetIdParams) -> Result<()> {
        require("asset_id", &p.asset_id)?;
        self.client()?.delete_asset(&p.asset_id).await
    }

    pub async fn delete_version(&self, p: VersionParams) -> Result<()> {
        require("asset_id", &p.asset_id)?;
        require("content_id", &p.content_id)?;
        self.client()?
            .delete_content(&p.asset_id, &p.content_id)
            .await
    }

    pub async fn get_metadata(&self, p: AssetIdParams) -> Result<Asset> {
        require("asset_id", &p.asset_id)?;
        self.client()?.get_asset(&p.asset_id).await
    }

    pub async fn set_metadata(&self, p: SetMetadataParams) -> Result<Asset> {
        require("asset_id", &p.asset_id)?;
        if let Some(t) = &p.title {
            require("title", t)?;
        }
        let update = UpdateAsset {
            title: p.title,
            description: p.description,
            alias: p.alias,
            tags: p.tags,
            metadata: object("metadata", p.metadata)?,
            record_type: p.record_type,
        };
        self.client()?.update_asset(&p.asset_id, &update).await
    }

    pub async fn create_relationship(&self, p: RelationshipParams) -> Result<Relationship> {
        require("from_asset_id", &p.from_asset_id)?;
        require("to_asset_id", &p.to_asset_id)?;
        check_relationship_kind(&p.relationship_type, p.analysis_mode.as_deref())?;
        let mut qualifiers = object("qualifiers", p.qualifiers)?;
        if let Some(note) = p.qualifier_note {
            qualifiers
                .get_or_insert_with(Map::new)
                .insert("note".into(), Value::String(note));
        }
        if let Some(t) = p.qualifier_time {
            let t = normalize_time(&t)?;
            qualifiers
                .get_or_insert_with(Map::new)
                .insert("time".into(), Value::String(t));
        }
        self.client()?
            .create_relationship(
                &p.from_asset_id,
                &CreateRelationship {
                    to_asset_id: p.to_asset_id,
                    rel_type: p.relationship_type,
                    analysis_mode: p.analysis_mode,
                    qualifiers,
                },
            )
            .await
    }

    /// One page of an asset's relationships (`out`, `in` or `both`).
    pub async fn list_relationships(
        &self,
        p: ListRelationshipsParams,
    ) -> Result<Page<Relationship>> {
        require("asset_id", &p.asset_id)?;
        self.client()?
            .list_relationships(&p.asset_id, p.direction.as_deref(), p.limit, p.offset)
            .await
    }

    /// An asset's lineage (`up`: its origins, `down`: what was derived from it).
    pub async fn lineage(&self, p: LineageParams) -> Result<Lineage> {
        require("asset_id", &p.asset_id)?;
        self.client()?
            .lineage(&p.asset_id, p.direction.as_deref(), p.depth, &p.types)
            .await
    }

    /// Validate an upload, create its asset (unless `asset_id` names an existing
    /// one) and open its session; nothing is sent yet.
    /// The start is journaled in `log` (the daemon's, see `upload::StartLog`)
    /// before the server hears of it.
    ///
    /// A lone small file goes in one request instead (see
    /// `small::upload_single`, whose `single_key` retries must repeat): it
    /// is uploaded by the time this answers.
    pub async fn prepare_upload_journaled(
        &self,
        p: UploadParams,
        log: Option<upload::StartLog<'_>>,
        single_key: Option<String>,
    ) -> Result<PreparedUpload> {
        let req = self.upload_request(p)?;
        let client = self.client()?;
        match small::single_file(&req) {
            Some(file) => small::upload_single(&client, req, file, log, single_key)
                .await
                .map(PreparedUpload::Done),
            None => upload::prepare_journaled(&client, req, log)
                .await
                .map(PreparedUpload::Session),
        }
    }

    /// Validate many uploads (each failing on its own; an item may arrive
    /// failed already) and prepare the valid ones, small ones together (see
    /// `upload::prepare_many`, whose `on_open` is handed item indices).
    /// Answers in item order.
    pub async fn prepare_uploads(
        &self,
        items: Vec<Result<UploadParams>>,
        concurrency: usize,
        log: Option<upload::StartLog<'_>>,
        on_open: Option<&upload::OnOpen<'_>>,
    ) -> Vec<Result<upload::UploadSpec>> {
        let reqs: Vec<Result<upload::UploadRequest>> = items
            .into_iter()
            .map(|p| p.and_then(|p| self.upload_request(p)))
            .collect();
        let valid: Vec<upload::UploadRequest> = reqs
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        // The item index of each valid request.
        let items: Vec<usize> = (0..reqs.len()).filter(|&i| reqs[i].is_ok()).collect();
        let on_valid_open = |opened: Vec<(usize, upload::UploadSpec)>| {
            if let Some(on_open) = on_open {
                on_open(opened.into_iter().map(|(i, s)| (items[i], s)).collect());
            }
        };
        let prepared = match self.client() {
            _ if valid.is_empty() => Vec::new(),
            Ok(client) => {
                upload::prepare_many(&client, valid, concurrency, log, Some(&on_valid_open)).await
            }
            Err(e) => valid.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut prepared = prepared.into_iter();
        reqs.into_iter()
            .map(|r| {
                r.and_then(|_| {
                    prepared
                        .next()
                        .unwrap_or_else(|| Err(ApiError::internal("an upload went missing")))
                })
            })
            .collect()
    }

    /// Check upload parameters without the server (what the CLI checks before
    /// it hands the upload to the daemon).
    pub fn check_upload(&self, p: UploadParams) -> Result<()> {
        self.upload_request(p).map(drop)
    }

    /// Check `asset.upload` parameters: what `upload::prepare` needs.
    fn upload_request(&self, p: UploadParams) -> Result<upload::UploadRequest> {
        require("local_path", &p.local_path)?;
        let local_path = PathBuf::from(&p.local_path);
        if std::fs::metadata(&local_path).is_err() {
            return Err(ApiError::invalid(format!(
                "file not found: {}",
                p.local_path
            )));
        }
        let target = match p.asset_id {
            Some(asset_id) => {
                require("asset_id", &asset_id)?;
                let refused: Vec<&str> = [
                    ("title", p.title.is_some()),
                    ("owner_type", p.owner_type.is_some()),
                    ("owner_id", p.owner_id.is_some()),
                    ("alias", p.alias.is_some()),
                    ("collection_id", p.collection_id.is_some()),
                    ("record_type", p.record_type.is_some()),
                    ("allocation_id", p.allocation_id.is_some()),
                    ("description", p.description.is_some()),
                    ("tags", p.tags.is_some()),
                    (
                        "metadata",
                        p.metadata.as_ref().is_some_and(|m| !m.is_null()),
                    ),
                ]
                .into_iter()
                .filter_map(|(name, given)| given.then_some(name))
                .collect();
                if !refused.is_empty() {
                    return Err(ApiError::invalid(format!(
                        "a new version of asset {asset_id} takes no {} (use asset.set_metadata)",
                        refused.join(", ")
                    )));
                }
                upload::UploadTarget::Existing(asset_id)
            }
            None => {
                let title = p.title.unwrap_or_default();
                require("title", &title)?;
                let owner_type = owner_type(&p.owner_type.unwrap_or_default())?;
                let owner_id = p.owner_id.unwrap_or_default();
                require("owner_id", &owner_id)?;
                upload::UploadTarget::NewAsset(CreateAsset {
                    title,
                    owner_type,
                    owner_id,
                    description: p.description,
                    alias: p.alias,
                    tags: p.tags,
                    metadata: object("metadata", p.metadata)?,
                    collection_id: p.collection_id,
                    record_type: p.record_type,
                    allocation_id: p.allocation_id,
                })
            }
        };
        let chunk_size = transfer::chunk_size_from_mb(p.chunk_size_mb)?;
        // Scan the files before the login so bad input is reported as such.
        if local_path.is_dir() {
            transfer::scan::scan(&local_path)?;
        }
        Ok(upload::UploadRequest {
            local_path: std::path::absolute(&local_path).unwrap_or(local_path),
            target,
            chunk_size,
        })
    }

    /// `asset.list_versions`: complete content versions, newest first.
    pub async fn list_versions(&self, p: ListVersionsParams) -> Result<Page<ContentVersion>> {
        require("asset_id", &p.asset_id)?;
        self.client()?
            .list_contents(&p.asset_id, p.limit, p.offset)
            .await
    }

    /// Validate a download's destination and look up the content version.
    pub async fn prepare_download(&self, p: DownloadParams) -> Result<download::DownloadSpec> {
        require("asset_id", &p.asset_id)?;
        require("dest_dir", &p.dest_dir)?;
        let chunk_size = transfer::chunk_size_from_mb(p.chunk_size_mb)?;
        // Check the destination before the login so a bad path is reported as such.
        download::prepare_dest_dir(Path::new(&p.dest_dir))?;
        let client = self.client()?;
        download::prepare(
            &client,
            download::DownloadRequest {
                asset_id: p.asset_id,
                dest_dir: PathBuf::from(p.dest_dir),
                content_id: p.content_id,
                chunk_size,
                overwrite: p.overwrite,
                allow_hidden: p.allow_hidden,
            },
        )
        .await
    }
}

fn check_email(email: &str) -> Result<()> {
    let e = email.trim();
    if e.is_empty() || e.len() > 320 || !e.contains('@') || e.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "email must be an email address, got {email:?}"
        )));
    }
    Ok(())
}

/// `owner_type` as the API's enum.
fn owner_type(t: &str) -> Result<OwnerType> {
    t.parse().map_err(|_| {
        ApiError::invalid(format!(
            "owner_type must be \"user\" or \"project\", got {t:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataerai_proto::ErrorCode;

    #[test]
    fn times_normalise_to_rfc3339() {
        assert_eq!(
            normalize_time("2024-05-01T12:00:00+02:00").unwrap(),
            "2024-05-01T10:00:00Z"
        );
        assert_eq!(
            normalize_time("2024-05-01T12:00:00").unwrap(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            normalize_time("2024-05-01").unwrap(),
            "2024-05-01T00:00:00Z"
        );
        assert!(normalize_time("yesterday").is_err());
    }

    #[test]
    fn params_reject_unknown_fields() {
        let r: std::result::Result<AssetIdParams, _> =
            serde_json::from_value(json!({"asset_id": "a", "bogus": 1}));
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn member_params_are_checked_before_auth() {
        let tmp = tempfile::tempdir().unwrap();
        let svc = Service::new(tmp.path().join("cfg"));
        let add = |email: &str, role: &str| AddMemberParams {
            project_id: "p".into(),
            email: email.into(),
            role: role.into(),
        };
        let e = svc.add_member(add("a@b.c", "king")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.contains("owner, admin, member, viewer"));
        let e = svc.add_member(add("nobody", "viewer")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        let e = svc
            .remove_member(RemoveMemberParams {
                project_id: " ".into(),
                email: "a@b.c".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        let e = svc.add_member(add("a@b.c", "viewer")).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::AuthRequired);
    }

    #[tokio::test]
    async fn upload_validation_happens_before_auth() {
        let tmp = tempfile::tempdir().unwrap();
        let svc = Service::new(tmp.path().join("cfg"));
        let file = tmp.path().join("f.bin");
        std::fs::write(&file, b"x").unwrap();
        let base = UploadParams {
            local_path: file.to_string_lossy().into_owned(),
            title: Some("t".into()),
            owner_type: Some("user".into()),
            owner_id: Some("u".into()),
            ..Default::default()
        };
        let code = |p: UploadParams| {
            let svc = svc.clone();
            async move {
                svc.prepare_upload_journaled(p, None, None)
                    .await
                    .err()
                    .unwrap()
            }
        };
        // An empty directory is refused before the login is looked at.
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        // Each case: what is wrong, the params, and a part of the message.
        let refused = [
            (
                "missing file",
                UploadParams {
                    local_path: "/nope/x".into(),
                    ..base.clone()
                },
                "file not found: /nope/x",
            ),
            (
                "blank title",
                UploadParams {
                    title: Some(" ".into()),
                    ..base.clone()
                },
                "",
            ),
            (
                "unknown owner type",
                UploadParams {
                    owner_type: Some("group".into()),
                    ..base.clone()
                },
                "",
            ),
            (
                "metadata not an object",
                UploadParams {
                    metadata: Some(json!([1])),
                    ..base.clone()
                },
                "",
            ),
            (
                "chunk size 0",
                UploadParams {
                    chunk_size_mb: Some(0),
                    ..base.clone()
                },
                "",
            ),
            // A new version takes no asset fields.
            (
                "asset fields with asset_id",
                UploadParams {
                    asset_id: Some("a1".into()),
                    ..base.clone()
                },
                "title, owner_type, owner_id",
            ),
            (
                "empty directory",
                UploadParams {
                    local_path: empty.to_string_lossy().into_owned(),
                    ..base.clone()
                },
                "",
            ),
        ];
        for (case, params, message) in refused {
            let e = code(params).await;
            assert_eq!(e.code, ErrorCode::InvalidInput, "{case}: {e}");
            assert!(e.message.contains(message), "{case}: {}", e.message);
        }
        // Valid input but nobody signed in.
        assert_eq!(code(base).await.code, ErrorCode::AuthRequired);
    }
}
