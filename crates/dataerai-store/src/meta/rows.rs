//! One struct per row shape the main metadata tables are read as, shared by
//! both backends (`#[derive(sqlx::FromRow)]` decodes SQLite and PostgreSQL
//! rows alike). Integers are the columns' signed 64-bit values; JSON columns
//! decode through `sqlx::types::Json`, so a corrupt one is an error, never a
//! silent default; times decode to `DateTime<Utc>` from `TEXT` (SQLite, see
//! [`super::time`]) or `TIMESTAMPTZ`.

use chrono::{DateTime, Utc};
use dataerai_proto::api::{
    Allocation, Asset, ContentFile, ContentStatus, ContentVersion, OwnerType, ProjectRole,
    UploadStatus,
};
use serde_json::{Map, Value};
use sqlx::types::Json;

use super::{BlobLocation, ChunkRecord, User};
use crate::error::Result;
use crate::rules::unsigned;

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    email: String,
    created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            user_id: r.id,
            email: r.email,
            created_at: r.created_at,
        }
    }
}

/// A token joined with its user's email.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub id: String,
    pub user_id: String,
    pub email: String,
    pub scopes: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AllocationRow {
    id: String,
    quota_bytes: i64,
    used_bytes: i64,
    reserved_bytes: i64,
    file_count: i64,
    max_files: i64,
}

impl AllocationRow {
    pub fn into_api(self) -> Result<Allocation> {
        Ok(Allocation {
            allocation_id: self.id,
            quota_bytes: unsigned("quota_bytes", self.quota_bytes)?,
            used_bytes: unsigned("used_bytes", self.used_bytes)?,
            reserved_bytes: unsigned("reserved_bytes", self.reserved_bytes)?,
            file_count: unsigned("file_count", self.file_count)?,
            max_files: unsigned("max_files", self.max_files)?,
        })
    }
}

/// A project joined with the caller's membership (`p.*, m.role`).
#[derive(sqlx::FromRow)]
pub(crate) struct ProjectRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub root_collection_id: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub role: ProjectRole,
}

/// The columns of [`AssetRow`], for `SELECT`s that name them.
pub(crate) const ASSET_COLUMNS: &str = "id, title, description, alias, tags, metadata, owner_type, owner_id, created_by, created_at, updated_at, record_type, allocation_id";

#[derive(sqlx::FromRow)]
pub(crate) struct AssetRow {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub tags: Json<Vec<String>>,
    pub metadata: Json<Map<String, Value>>,
    pub owner_type: OwnerType,
    pub owner_id: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub record_type: Option<String>,
    /// `None`: charged to the owner's allocation.
    pub allocation_id: Option<String>,
}

impl AssetRow {
    /// The asset as the API shows it, with its collections and latest
    /// complete version (read separately).
    pub fn into_asset(
        self,
        collection_ids: Vec<String>,
        latest_content: Option<ContentVersion>,
    ) -> Asset {
        Asset {
            asset_id: self.id,
            title: self.title,
            description: self.description,
            alias: self.alias,
            record_type: self.record_type,
            tags: self.tags.0,
            metadata: self.metadata.0,
            owner_type: self.owner_type,
            owner_id: self.owner_id,
            collection_ids,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            latest_content,
            allocation_id: self.allocation_id,
        }
    }
}

/// `(owner_type, owner_id)` of an asset.
#[derive(sqlx::FromRow)]
pub(crate) struct OwnerRow {
    pub owner_type: OwnerType,
    pub owner_id: String,
}

/// An asset's owner, the owner's allocation and the allocation the asset is
/// charged to (the same one unless `assets.allocation_id` names another).
#[derive(sqlx::FromRow)]
pub(crate) struct ChargedRow {
    pub owner_type: OwnerType,
    pub owner_id: String,
    /// `None` when the owner has no allocation.
    pub owner_allocation_id: Option<String>,
    pub charged_allocation_id: Option<String>,
}

/// The columns of [`ContentRow`], for `SELECT`s that name them.
pub(crate) const CONTENT_COLUMNS: &str =
    "id, asset_id, status, total_bytes, chunk_size, created_at, completed_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ContentRow {
    pub id: String,
    pub asset_id: String,
    pub status: ContentStatus,
    pub total_bytes: i64,
    pub chunk_size: i64,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The columns of [`FileRow`], for `SELECT`s that name them.
pub(crate) const FILE_COLUMNS: &str =
    "file_index, name, size, checksum, blob_content_id, blob_file_index, blob_chunk_size";

/// The chunks a deduplicated file points at (all `NULL`: its own chunks).
/// Also the answer of the dedup lookup, which names a file's physical
/// location in these columns.
#[derive(sqlx::FromRow)]
pub(crate) struct PointerRow {
    pub blob_content_id: Option<String>,
    blob_file_index: Option<i64>,
    blob_chunk_size: Option<i64>,
}

impl PointerRow {
    pub fn pointer(&self) -> Result<Option<BlobLocation>> {
        let Some(content_id) = &self.blob_content_id else {
            return Ok(None);
        };
        Ok(Some(BlobLocation {
            content_id: content_id.clone(),
            file_index: unsigned("blob_file_index", self.blob_file_index.unwrap_or(-1))?,
            chunk_size: unsigned("blob_chunk_size", self.blob_chunk_size.unwrap_or(-1))?,
        }))
    }
}

/// A content file.
#[derive(sqlx::FromRow)]
pub(crate) struct FileRow {
    pub file_index: i64,
    pub name: String,
    pub size: i64,
    pub checksum: Option<String>,
    #[sqlx(flatten)]
    pub blob: PointerRow,
}

impl FileRow {
    pub fn index(&self) -> Result<u32> {
        unsigned("file_index", self.file_index)
    }

    pub fn api(&self) -> Result<ContentFile> {
        Ok(ContentFile {
            file_index: self.index()?,
            name: self.name.clone(),
            size: unsigned("size", self.size)?,
            checksum: self.checksum.clone(),
        })
    }
}

/// An upload session joined with its asset's owner (`None` once deleted).
#[derive(sqlx::FromRow)]
pub(crate) struct UploadRow {
    pub id: String,
    pub asset_id: String,
    pub content_id: String,
    pub user_id: String,
    pub chunk_size: i64,
    pub status: UploadStatus,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    pub closed_reason: Option<String>,
    pub owner_type: Option<OwnerType>,
    pub owner_id: Option<String>,
}

/// What deciding about a session needs of it.
#[derive(sqlx::FromRow)]
pub(crate) struct UploadStateRow {
    pub status: UploadStatus,
    pub content_id: String,
}

/// What expiring a session needs of it.
#[derive(sqlx::FromRow)]
pub(crate) struct IdleRow {
    pub status: UploadStatus,
    pub content_id: String,
    pub asset_id: String,
    pub user_id: String,
    pub last_active_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChunkRow {
    size: i64,
    hash: String,
}

impl ChunkRow {
    pub fn record(self) -> Result<ChunkRecord> {
        Ok(ChunkRecord {
            size: unsigned("size", self.size)?,
            hash: self.hash,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RelationshipRow {
    pub id: String,
    pub from_asset_id: String,
    pub to_asset_id: String,
    #[sqlx(rename = "type")]
    pub rel_type: String,
    pub analysis_mode: Option<String>,
    pub qualifiers: Json<Map<String, Value>>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}
