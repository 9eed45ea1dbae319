//! Bodies of the REST API (`/api/v1`). The route table lives in `docs/api.md` and
//! in the OpenAPI document the server serves at `/api/v1/openapi.json`.
//!
//! Conventions: ids are UUID strings; timestamps are RFC 3339 UTC; list endpoints
//! take `?limit=&offset=` and answer a [`Page`]; checksums are `blake3:<hex>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::names::{ContentStatus, OwnerType, ProjectRole, UploadStatus};

/// Declares the query string of a `GET` endpoint: serde, `Default` (every key
/// may be left out) and, with feature `openapi`, its parameters (`in: query`)
/// for the OpenAPI document. Whether unknown keys are refused stays with each
/// type (`#[serde(deny_unknown_fields)]`).
macro_rules! query_string {
    ($(#[$meta:meta])* pub struct $name:ident { $($fields:tt)* }) => {
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
        #[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
        $(#[$meta])*
        pub struct $name { $($fields)* }
    };
}

/// Relationship analysis modes accepted by the server.
pub const ANALYSIS_MODES: &[&str] = &[
    "non_destructive",
    "altering",
    "destructive",
    "in_situ",
    "ex_situ",
    "invasive",
    "non_invasive",
];

/// Largest asset metadata object (and relationship qualifiers), as compact
/// JSON, in bytes — also after a `PATCH` merged into the stored metadata.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// Longest project description, in bytes (UTF-8).
pub const MAX_PROJECT_DESCRIPTION_BYTES: usize = 64 * 1024;

/// `1.5 MiB`-style sizes (binary units, one decimal) for messages people read.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Longest relationship type, in characters.
pub const MAX_RELATIONSHIP_TYPE_LEN: usize = 255;

/// The rule for a new relationship's kind, which the daemon checks before it
/// sends and the server checks again: a type of 1 to
/// [`MAX_RELATIONSHIP_TYPE_LEN`] characters once trimmed, and an analysis mode
/// (when given) from [`ANALYSIS_MODES`].
pub fn check_relationship_kind(
    rel_type: &str,
    analysis_mode: Option<&str>,
) -> Result<(), crate::error::ApiError> {
    let len = rel_type.trim().chars().count();
    if len == 0 || len > MAX_RELATIONSHIP_TYPE_LEN {
        return Err(crate::error::ApiError::invalid(format!(
            "relationship type must be 1 to {MAX_RELATIONSHIP_TYPE_LEN} characters (e.g. \"derived_from\"), got {len}"
        )));
    }
    match analysis_mode {
        Some(mode) if !ANALYSIS_MODES.contains(&mode) => {
            Err(crate::error::ApiError::invalid(format!(
                "analysis_mode {mode:?} is not one of {}",
                ANALYSIS_MODES.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// Largest chunk size a client may ask for (bytes).
pub const MAX_CHUNK_SIZE: u64 = 512 * 1024 * 1024;
/// Default chunk size (bytes).
pub const DEFAULT_CHUNK_SIZE: u64 = 64 * 1024 * 1024;

// ---------------------------------------------------------------- users / auth

/// `GET /api/v1/me`: who the bearer token belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub user_id: String,
    pub email: String,
    /// Scopes of the token used for this request (`read`, `write`).
    pub scopes: Vec<String>,
    /// When the token expires; `None` for tokens that never expire.
    pub expires_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- pagination

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Total number of items matching the query.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

query_string! {
    /// Query string of list endpoints. `limit` defaults to 100 and is capped at 1000.
    pub struct PageQuery {
        pub limit: Option<u64>,
        pub offset: Option<u64>,
    }
}

// ---------------------------------------------------------------- projects

/// `POST /api/v1/projects`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Allocation {
    pub allocation_id: String,
    /// Byte quota.
    pub quota_bytes: u64,
    /// Bytes held by complete content versions.
    pub used_bytes: u64,
    /// Bytes promised to upload sessions still open.
    pub reserved_bytes: u64,
    /// Files of complete versions and of upload sessions still open (each
    /// file counts once, whatever its size).
    #[serde(default)]
    pub file_count: u64,
    /// Most files the allocation holds (`admin set-quota --files N`).
    #[serde(default)]
    pub max_files: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub project_id: String,
    pub name: String,
    pub description: String,
    pub root_collection_id: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The caller's role in the project.
    pub role: ProjectRole,
    pub allocation: Allocation,
}

// ---------------------------------------------------------------- collections

/// `POST /api/v1/projects/{project_id}/collections`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateCollection {
    pub name: String,
    /// Parent collection; defaults to the project's root collection.
    pub parent_id: Option<String>,
    /// Free text (at most 64 KiB); empty when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Also the store's row of `collections` (feature `sqlx`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Collection {
    #[cfg_attr(feature = "sqlx", sqlx(rename = "id"))]
    pub collection_id: String,
    pub project_id: String,
    pub name: String,
    /// `None` for a project's root collection.
    pub parent_id: Option<String>,
    /// Free text; empty when none was given.
    #[serde(default)]
    pub description: String,
    pub created_at: DateTime<Utc>,
    /// Assets filed directly in this collection (not in its sub-collections).
    #[serde(default)]
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub asset_count: u64,
    /// Collections directly under this one.
    #[serde(default)]
    #[cfg_attr(feature = "sqlx", sqlx(skip))]
    pub child_count: u64,
}

query_string! {
    /// `GET /api/v1/projects/{project_id}/collections?parent_id=&limit=&offset=`
    #[serde(deny_unknown_fields)]
    pub struct CollectionListQuery {
        /// Only the collections directly under this one (default: every
        /// collection of the project).
        pub parent_id: Option<String>,
        pub limit: Option<u64>,
        pub offset: Option<u64>,
    }
}

/// `PATCH /api/v1/collections/{collection_id}`: rename (`name`), move
/// (`parent_id`), or both at once. A project's root collection cannot be
/// renamed or moved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCollection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The new parent: a collection of the same project, outside the moved
    /// collection's own subtree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
}

/// `PUT /api/v1/assets/{asset_id}/collection`: file a project asset in one
/// collection of its project (replacing the collections it was in).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MoveAsset {
    pub collection_id: String,
}

/// `POST /api/v1/collections/ensure`: resolve a collection path, creating
/// what is missing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnsureCollectionPath {
    /// `Project name/collection/sub-collection`: segments split on `/`,
    /// surrounding spaces trimmed; the first names a project the caller
    /// belongs to.
    pub path: String,
    /// Create the project (with the caller as owner) when the caller belongs
    /// to none of that name.
    #[serde(default)]
    pub create_project: bool,
}

/// What `POST /api/v1/collections/ensure` resolved.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectionPath {
    /// The normalised path (`abTEM/notebook runs/tutorials`).
    pub path: String,
    pub project_id: String,
    pub project_name: String,
    /// The last segment's collection (the project's root collection when the
    /// path names only the project).
    pub collection_id: String,
}

/// The segments of a collection path: split on `/`, surrounding spaces
/// trimmed. An empty segment (`a//b`, a leading or trailing `/`, an empty
/// path) is refused with a message naming its position.
pub fn collection_path_segments(path: &str) -> Result<Vec<String>, String> {
    let segments: Vec<String> = path.split('/').map(|s| s.trim().to_string()).collect();
    if let Some(i) = segments.iter().position(String::is_empty) {
        return Err(format!(
            "collection path {path:?} has an empty segment (segment {} of {}); write it as `Project/collection/sub-collection`",
            i + 1,
            segments.len()
        ));
    }
    Ok(segments)
}

// ---------------------------------------------------------------- assets

/// `POST /api/v1/assets`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateAsset {
    pub title: String,
    pub owner_type: OwnerType,
    pub owner_id: String,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub tags: Option<Vec<String>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Map<String, Value>>,
    /// Collection to file the asset in (project-owned assets only); defaults to
    /// the project's root collection.
    pub collection_id: Option<String>,
    /// What kind of record this is (`raw_data`, `analysis`, `figure`, …; free
    /// text, at most 64 characters), searchable as `type:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    /// The storage allocation to charge (`None`: the owner's): any the
    /// caller may write to — their own personal one, or that of a project
    /// where they are a member, admin or owner — whoever owns the asset.
    /// Every version of the asset is charged to it. One the caller cannot
    /// see (or an unknown id) is `ERR_NOT_FOUND`, one of a project the
    /// caller may only read `ERR_PERMISSION_DENIED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
}

/// `PATCH /api/v1/assets/{asset_id}`: only the fields present change.
/// `metadata` is merged key by key into the existing object (a JSON `null`
/// value deletes the key); `tags` replaces the list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateAsset {
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub tags: Option<Vec<String>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Asset {
    pub asset_id: String,
    pub title: String,
    pub description: Option<String>,
    pub alias: Option<String>,
    /// What kind of record this is (see [`CreateAsset::record_type`]).
    #[serde(default)]
    pub record_type: Option<String>,
    pub tags: Vec<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Map<String, Value>,
    pub owner_type: OwnerType,
    pub owner_id: String,
    pub collection_ids: Vec<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest complete content version, if any.
    pub latest_content: Option<ContentVersion>,
    /// The allocation the asset's versions are charged to when it is not
    /// its owner's (see [`CreateAsset::allocation_id`]); omitted: the
    /// owner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_id: Option<String>,
}

query_string! {
    /// `GET /api/v1/assets?owner_type=&owner_id=&limit=&offset=`
    pub struct AssetQuery {
        pub owner_type: Option<OwnerType>,
        pub owner_id: Option<String>,
        pub limit: Option<u64>,
        pub offset: Option<u64>,
    }
}

// ---------------------------------------------------------------- search

query_string! {
    /// `GET /api/v1/search?q=&sort=&limit=&cursor=&facets=` (`docs/search.md`).
    #[serde(deny_unknown_fields)]
    pub struct SearchQuery {
        /// The query (`docs/search.md`); empty: every asset you can read.
        pub q: Option<String>,
        /// `relevance`, `created`, `updated`, `title`, `size` or `md.<key>`; a
        /// leading `-` sorts descending. Default: relevance with free text,
        /// newest first without.
        pub sort: Option<String>,
        /// Page size, default 50, at most 1000.
        pub limit: Option<u64>,
        /// `next_cursor` of the previous page.
        pub cursor: Option<String>,
        /// Count facets (default `true`).
        pub facets: Option<bool>,
    }
}

/// One facet value and how many matches have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// The most frequent values among all matches, most frequent first (at most 20 each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchFacets {
    pub tags: Vec<FacetCount>,
    pub record_types: Vec<FacetCount>,
    /// Project ids.
    pub projects: Vec<FacetCount>,
}

/// A page of search results.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    pub items: Vec<Asset>,
    /// Every match you can read, on all pages; counted exactly up to 10,000:
    /// past that it is 10,000 (or what the pages so far have shown) and
    /// `total_is_lower_bound` is set ("10,000+").
    pub total: u64,
    /// `total` is a lower bound (more matches than were counted); absent
    /// when `false`. The facets then count the counted matches only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub total_is_lower_bound: bool,
    /// Absent when `facets=false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facets: Option<SearchFacets>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------- content

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContentFile {
    pub file_index: u32,
    /// Relative path inside the content version (`/`-separated, no `..`).
    pub name: String,
    pub size: u64,
    /// `blake3:<hex>`; `None` until the file is verified.
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContentVersion {
    pub content_id: String,
    pub asset_id: String,
    pub status: ContentStatus,
    pub total_bytes: u64,
    pub files: Vec<ContentFile>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- uploads

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadFileSpec {
    pub name: String,
    pub size: u64,
    /// Whole-file `blake3:<hex>`, when the client knows it up front. Lets the
    /// server reuse bytes the same owner already stores (deduplication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// `POST /api/v1/assets/{asset_id}/uploads`: open an upload session that will
/// become a new content version of the asset. Quota is checked here (the total
/// size is reserved) and again at completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUpload {
    pub files: Vec<UploadFileSpec>,
    /// Bytes per chunk; defaults to 64 MiB, at most [`MAX_CHUNK_SIZE`].
    pub chunk_size: Option<u64>,
    /// Ask, for each file sent without a checksum, whether the owner already
    /// stores a file of the same size (`UploadFileState::dedup_candidate`): a
    /// client need not hash a file before sending it when no stored file could
    /// be identical.
    #[serde(default)]
    pub probe_dedup: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadFileState {
    pub file_index: u32,
    pub name: String,
    pub size: u64,
    pub chunk_count: u64,
    /// Indices of chunks the server holds durably and verified.
    pub received_chunks: Vec<u64>,
    /// The server reuses bytes it already stores for this file: every chunk is
    /// listed as received and no chunk may be sent for it.
    #[serde(default)]
    pub deduplicated: bool,
    /// Answer to `CreateUpload::probe_dedup`: the owner stores a file of this
    /// size, so the file may be identical to it (open the session again with
    /// its checksum to find out). Only in the answer that opened the session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dedup_candidate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadSession {
    pub upload_id: String,
    pub asset_id: String,
    pub content_id: String,
    pub chunk_size: u64,
    pub status: UploadStatus,
    pub files: Vec<UploadFileState>,
    pub created_at: DateTime<Utc>,
    /// Whether this server takes a chunk's digest after its body (an HTTP
    /// trailer, docs/api.md) as cheaply as before it: a client that hashes a
    /// chunk while sending it should use the trailer only then. `false` from
    /// a store that names its objects by digest (S3: the chunk would be copied
    /// once more), and from servers older than the field.
    #[serde(default)]
    pub digest_after_body: bool,
}

/// Reply to `PUT /api/v1/uploads/{upload_id}/files/{file_index}/chunks/{chunk_index}`
/// (body = raw chunk bytes, header `x-dataerai-chunk-blake3: <hex>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChunkAck {
    pub file_index: u32,
    pub chunk_index: u64,
    pub size: u64,
    /// `blake3:<hex>` of the chunk as stored.
    pub checksum: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteFile {
    pub file_index: u32,
    /// Whole-file `blake3:<hex>` as computed by the client.
    pub checksum: String,
}

/// `POST /api/v1/uploads/{upload_id}/complete`: verifies every file against its
/// checksum and publishes the content version atomically. Answers the
/// [`ContentVersion`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompleteUpload {
    pub files: Vec<CompleteFile>,
}

// ---------------------------------------------------------------- batches of small uploads

/// Most items in one `POST /api/v1/uploads/batch` or `POST /api/v1/uploads/finish`.
pub const MAX_BATCH_ITEMS: usize = 256;
/// Largest file `POST /api/v1/uploads/finish` takes (it must also be one chunk).
pub const MAX_SMALL_FILE: u64 = 1024 * 1024;
/// Most file bytes in one `POST /api/v1/uploads/finish`.
pub const MAX_FINISH_BYTES: u64 = 32 * 1024 * 1024;

/// `POST /api/v1/uploads/batch`: open many upload sessions in one request and
/// one metadata transaction. Each item is what `POST /api/v1/assets` plus
/// `POST /api/v1/assets/{id}/uploads` would do, and succeeds or fails on its
/// own. Answers a [`BatchAnswer`] of [`UploadSession`]s in item order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUploadBatch {
    pub items: Vec<UploadBatchItem>,
}

/// Exactly one of `asset` (a new asset) and `asset_id` (a new version of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadBatchItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<CreateAsset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
    /// `probe_dedup` is not available in a batch.
    pub upload: CreateUpload,
}

/// The outcome of one item of a batch: `result` or `error`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchItem<T> {
    pub result: Option<T>,
    pub error: Option<crate::ApiError>,
}

impl<T> BatchItem<T> {
    pub fn into_result(self) -> Result<T, crate::ApiError> {
        match (self.result, self.error) {
            (_, Some(e)) => Err(e),
            (Some(v), None) => Ok(v),
            (None, None) => Err(crate::ApiError::internal(
                "the server answered a batch item with neither result nor error",
            )),
        }
    }
}

impl<T, E: Into<crate::ApiError>> From<Result<T, E>> for BatchItem<T> {
    fn from(r: Result<T, E>) -> Self {
        match r {
            Ok(v) => BatchItem {
                result: Some(v),
                error: None,
            },
            Err(e) => BatchItem {
                result: None,
                error: Some(e.into()),
            },
        }
    }
}

/// The answer to a batch request: one outcome per item, in item order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAnswer<T> {
    pub items: Vec<BatchItem<T>>,
}

/// `POST /api/v1/uploads/finish` is `multipart/form-data`: first a part named
/// `manifest` holding this JSON, then one part named `file` per item, in item
/// order, holding the file's bytes. Each item's session must hold one file of
/// one chunk (at most [`MAX_SMALL_FILE`]); the server checks the bytes against
/// `checksum` (the file's BLAKE3, which for one chunk is also the chunk
/// digest), stores them durably, and records the chunk and completes the
/// session, all items in one metadata transaction. An item whose session is
/// complete already answers its version (a retried request is harmless).
/// Answers a [`BatchAnswer`] of [`ContentVersion`]s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinishManifest {
    pub items: Vec<FinishItem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FinishItem {
    pub upload_id: String,
    /// `blake3:<hex>` of the file.
    pub checksum: String,
}

/// `POST /api/v1/uploads/single` is `multipart/form-data`: first a part named
/// `manifest` holding this JSON, then one part named `file` holding the file's
/// bytes (at most [`MAX_SMALL_FILE`]). One request and one metadata
/// transaction do what `POST /uploads/batch` and `POST /uploads/finish` do for
/// one file: the asset (or a new version of `asset_id`), the session, the
/// bytes (checked against `upload.files[0].checksum`, stored durably first)
/// and the published version. `key` is the caller's id for this upload (the
/// daemon's journaled start id): a request with a key the caller used before
/// creates nothing and answers what the first one made, and
/// `GET /api/v1/uploads/single/{key}` tells whether it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SingleUpload {
    /// 1 to 200 printable characters, unique per caller.
    pub key: String,
    /// Exactly one of `asset` and `asset_id`; `upload.files` holds one file
    /// with its checksum, of one chunk.
    #[serde(flatten)]
    pub item: UploadBatchItem,
}

/// Longest caller-chosen key accepted: a [`SingleUpload::key`] on the
/// server, a transfer's `idempotency_key` on the daemon socket.
pub const MAX_KEY_LEN: usize = 200;

/// Checks a caller-chosen key (1 to [`MAX_KEY_LEN`] characters, not blank,
/// no control characters); `field` names it in the error.
pub fn check_key(field: &str, key: &str) -> Result<(), crate::ApiError> {
    let len = key.chars().count();
    if key.trim().is_empty() || len > MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(crate::ApiError::invalid(format!(
            "{field} must be 1 to {MAX_KEY_LEN} printable characters"
        )));
    }
    Ok(())
}

/// The answer to `POST /api/v1/uploads/single` (and
/// `GET /api/v1/uploads/single/{key}`): the session the upload ran in and
/// the version it published.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SingleUploaded {
    pub upload_id: String,
    pub version: ContentVersion,
    /// The server held these bytes already (nothing new was stored).
    pub deduplicated: bool,
    /// `key` was used before: this is what the first request made.
    pub repeated: bool,
}

// ---------------------------------------------------------------- relationships

/// `POST /api/v1/assets/{from_asset_id}/relationships`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRelationship {
    pub to_asset_id: String,
    #[serde(rename = "type")]
    pub rel_type: String,
    pub analysis_mode: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub qualifiers: Option<Map<String, Value>>,
}

/// Small summary of the target asset of a relationship (with feature `sqlx`,
/// read straight from those columns of `assets`). For a caller who may not
/// read the target, the server sends only `id` (the other fields are left
/// out): a link never reveals what it points at.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AssetSummary {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<OwnerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
}

impl AssetSummary {
    /// The summary without anything but the id (for callers who may not read
    /// the asset).
    pub fn redacted(self) -> Self {
        AssetSummary {
            id: self.id,
            title: None,
            alias: None,
            owner_type: None,
            owner_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Relationship {
    pub id: String,
    #[serde(rename = "type")]
    pub rel_type: String,
    pub from_asset_id: String,
    pub to_asset_id: String,
    pub analysis_mode: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub qualifiers: Map<String, Value>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The other asset: the target of an outgoing relationship, the source
    /// of an incoming one.
    pub related_asset: AssetSummary,
    /// Which way the relationship points relative to the asset it was listed
    /// for (`out`: from it; `in`: at it). Absent in old answers: `out`.
    #[serde(default)]
    pub direction: RelationshipDirection,
}

/// Which way a listed relationship points relative to the asked asset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RelationshipDirection {
    /// From the asked asset (it is the source).
    #[default]
    Out,
    /// At the asked asset (it is the target).
    In,
}

impl RelationshipDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationshipDirection::Out => "out",
            RelationshipDirection::In => "in",
        }
    }
}

query_string! {
    /// `GET /api/v1/assets/{asset_id}/relationships?direction=&limit=&offset=`
    #[serde(deny_unknown_fields)]
    pub struct RelationshipsQuery {
        /// `out` (default: from the asset), `in` (pointing at it) or `both`.
        pub direction: Option<String>,
        pub limit: Option<u64>,
        pub offset: Option<u64>,
    }
}

/// Deepest `depth` a lineage request may ask for (and its default).
pub const MAX_LINEAGE_DEPTH: u32 = 20;
/// Most edges one lineage answer holds (more: `truncated`).
pub const MAX_LINEAGE_EDGES: usize = 10_000;

query_string! {
    /// `GET /api/v1/assets/{asset_id}/lineage?direction=&depth=&type=`
    #[serde(deny_unknown_fields)]
    pub struct LineageQuery {
        /// `up` (default: towards the origins), `down` (what was derived from
        /// it) or `both`.
        pub direction: Option<String>,
        /// How many relationships deep to follow: 1 to 20, default 20.
        pub depth: Option<u32>,
        /// Follow only relationships of these types (repeat the parameter or
        /// separate types by commas); default: every type.
        #[serde(rename = "type", default)]
        pub types: Vec<String>,
    }
}

/// An asset's lineage: the assets reached and the relationships between them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lineage {
    pub root: String,
    pub nodes: Vec<LineageNode>,
    pub edges: Vec<LineageEdge>,
    /// More edges were reachable than one answer holds.
    pub truncated: bool,
}

/// One asset of a lineage. A node the caller may not read carries its id
/// only (`redacted: true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineageNode {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<OwnerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// Relationships between the root (0) and this asset, fewest first found.
    pub depth: u32,
    #[serde(default)]
    pub redacted: bool,
}

impl LineageNode {
    /// The node without anything but its id and depth.
    pub fn redact(&mut self) {
        self.title = None;
        self.alias = None;
        self.record_type = None;
        self.owner_type = None;
        self.owner_id = None;
        self.redacted = true;
    }
}

/// One relationship of a lineage (`from_asset_id` depends on `to_asset_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct LineageEdge {
    pub id: String,
    pub from_asset_id: String,
    pub to_asset_id: String,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "sqlx", sqlx(rename = "type"))]
    pub rel_type: String,
    pub analysis_mode: Option<String>,
}

// ---------------------------------------------------------------- provenance export

query_string! {
    /// `GET /api/v1/assets/{asset_id}/provenance?direction=&depth=`
    #[serde(deny_unknown_fields)]
    pub struct ProvenanceQuery {
        /// `both` (default), `up` (origins) or `down` (what was derived from it).
        pub direction: Option<String>,
        /// How many relationships deep to follow: 1 to 20, default 20.
        pub depth: Option<u32>,
        /// `true`: answer with `Content-Disposition: attachment` (a browser
        /// saves the document as a file instead of showing it).
        pub download: Option<bool>,
    }
}

/// Most assets one RO-Crate export holds.
pub const MAX_CRATE_ASSETS: u64 = 10_000;

query_string! {
    /// `GET /api/v1/ro-crate?collection_id=`, `?q=` or `?asset_id=` (exactly
    /// one), `&include_data=`; with `asset_id` also `&direction=&depth=`.
    #[serde(deny_unknown_fields)]
    pub struct RoCrateQuery {
        /// A collection: it and every collection below it.
        pub collection_id: Option<String>,
        /// A search (`docs/search.md`): the assets it finds.
        pub q: Option<String>,
        /// An asset's lineage: the asset and what the lineage walk reaches
        /// (the assets the caller may read).
        pub asset_id: Option<String>,
        /// With `asset_id`: `both` (default), `up` (origins) or `down`.
        pub direction: Option<String>,
        /// With `asset_id`: how many relationships deep, 1 to 20, default 20.
        pub depth: Option<u32>,
        /// `true`: answer with `Content-Disposition: attachment; filename=ro-crate-metadata.json`.
        pub download: Option<bool>,
        /// Whether the crate's folders will hold the files (default `true`:
        /// files are named by their path in the crate); `false`: each file is
        /// named by its download URL.
        pub include_data: Option<bool>,
    }
}

// ---------------------------------------------------------------- members, audit, OAuth

/// Project roles, most powerful first: the strings of [`ProjectRole::ALL`],
/// for callers that check a role given as text before sending it.
pub const PROJECT_ROLES: &[&str] = &["owner", "admin", "member", "viewer"];

/// A member of a project (`GET /api/v1/projects/{project_id}/members`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: ProjectRole,
    pub added_at: DateTime<Utc>,
}

/// `POST /api/v1/projects/{project_id}/members`: add a member, or change the
/// role of an existing one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddMember {
    pub email: String,
    pub role: ProjectRole,
}

/// One entry of the audit log (`GET /api/v1/audit`, server admins only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub id: String,
    pub at: DateTime<Utc>,
    /// The signed-in user who acted; `None` e.g. for a failed sign-in.
    pub actor_user_id: Option<String>,
    /// `auth.sign_in`, `auth.sign_in_failed`, `auth.sign_out`,
    /// `auth.device_approved`, `token.created`, `token.revoked`,
    /// `member.added`, `member.role_changed`, `member.removed`,
    /// `asset.deleted`, `project.deleted`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Map<String, Value>,
    pub client_addr: Option<String>,
}

/// `POST /oauth/device/code` reply (RFC 8628 §3.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceCodeResponse {
    pub device_code: String,
    /// `ABCD-EFGH`, what the user types on the `/device` page.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds the client waits between polls.
    pub interval: u64,
}

/// `POST /oauth/token` success reply (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    /// Space-separated scopes of the access token.
    pub scope: String,
    /// Seconds until the refresh token expires (optional, not in RFC 6749).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_expires_in: Option<u64>,
}

/// OAuth error reply (RFC 6749 §5.2): `authorization_pending`, `slow_down`,
/// `access_denied`, `expired_token`, `invalid_grant`, `invalid_request`, …
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn check_key_takes_printable_keys_up_to_the_limit() {
        assert!(check_key("key", "a").is_ok());
        assert!(check_key("key", " spaced key ").is_ok());
        assert!(check_key("key", &"é".repeat(MAX_KEY_LEN)).is_ok());
        for bad in [
            String::new(),
            "   ".into(),
            "a\nb".into(),
            "x".repeat(MAX_KEY_LEN + 1),
        ] {
            let e = check_key("idempotency_key", &bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidInput, "{bad:?}");
            assert_eq!(
                e.message,
                "idempotency_key must be 1 to 200 printable characters"
            );
        }
    }
}
