//! [`MetadataStore`] on SQLite: the embedded default. One file
//! (`DATA_DIR/dataerai.db`) in WAL mode, so the admin commands can write while a
//! server runs. Writes run in `BEGIN IMMEDIATE` transactions: the write lock is
//! taken up front, so a read-check-write sequence (quota, merge) never races
//! another writer and never fails half way with `SQLITE_BUSY`. Within the
//! process, writers also queue on an async lock before they begin: SQLite's own
//! busy handler waits by sleeping (up to 100 ms a try), which under concurrent
//! small uploads cost far more time than the writes themselves.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use dataerai_proto::api::{
    Allocation, Asset, AssetSummary, Collection, ContentFile, ContentStatus, ContentVersion,
    Project, Relationship, UpdateAsset, UploadFileSpec, UploadFileState, UploadSession,
    UploadStatus,
};
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::{
    BlobLocation, ChunkRecord, ContentRecord, MetadataStore, NewAsset, NewRelationship, NewToken,
    NewUpload, SmallFinish, TokenRecord, UploadRecord, UploadTarget, User, Window, OWNER_PROJECT,
    OWNER_USER,
};
use crate::error::{Result, StoreError};

/// The SQLite metadata store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Held by every write transaction of this process while it runs.
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction holding the process's write lock until it ends.
/// Derefs to the connection, like `sqlx::Transaction` does.
struct WriteTx {
    // Declared first: the transaction ends before the lock is released.
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and run the migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a chunk ack or a published version must survive a power cut.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            pool,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    async fn begin_write(&self) -> Result<WriteTx> {
        let turn = self.writer.clone().lock_owned().await;
        Ok(WriteTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _turn: turn,
        })
    }
}

fn new_id() -> String {
    Uuid::new_v4().to_string()
}

/// Fixed-width timestamps so that string order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Invalid(format!("bad timestamp {s:?} in database: {e}")))
}

fn opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.map(|s| parse_ts(&s)).transpose()
}

fn json_object(s: &str) -> Map<String, Value> {
    serde_json::from_str(s).unwrap_or_default()
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialising JSON values cannot fail")
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

// ---------------------------------------------------------------- row loaders

async fn load_allocation(
    conn: &mut SqliteConnection,
    owner_type: &str,
    owner_id: &str,
) -> Result<Option<Allocation>> {
    let Some(row) = sqlx::query(
        "SELECT id, quota_bytes, used_bytes, reserved_bytes FROM allocations
         WHERE owner_type = ? AND owner_id = ?",
    )
    .bind(owner_type)
    .bind(owner_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    // Kept by triggers (migration 0004): no sum over the owner's versions.
    Ok(Some(Allocation {
        allocation_id: row.try_get("id")?,
        quota_bytes: row.try_get::<i64, _>("quota_bytes")? as u64,
        used_bytes: row.try_get::<i64, _>("used_bytes")? as u64,
        reserved_bytes: row.try_get::<i64, _>("reserved_bytes")? as u64,
    }))
}

/// A project row joined with the caller's membership (`p.*, m.role`).
async fn project_from_row(conn: &mut SqliteConnection, row: &SqliteRow) -> Result<Project> {
    let project_id: String = row.try_get("id")?;
    let allocation = load_allocation(conn, OWNER_PROJECT, &project_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("allocation of project {project_id}")))?;
    Ok(Project {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        root_collection_id: row.try_get("root_collection_id")?,
        created_by: row.try_get("created_by")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        project_id,
        role: row.try_get("role")?,
        allocation,
    })
}

fn collection_from_row(row: &SqliteRow) -> Result<Collection> {
    Ok(Collection {
        collection_id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        parent_id: row.try_get("parent_id")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
    })
}

/// Where a content file's bytes live: its own chunks, or the ones it points at.
fn blob_location(f: &SqliteRow, content_id: &str, chunk_size: u64) -> Result<BlobLocation> {
    let file_index = f.try_get::<i64, _>("file_index")? as u32;
    Ok(match f.try_get::<Option<String>, _>("blob_content_id")? {
        None => BlobLocation {
            content_id: content_id.to_string(),
            file_index,
            chunk_size,
        },
        Some(blob_content_id) => BlobLocation {
            content_id: blob_content_id,
            file_index: f.try_get::<i64, _>("blob_file_index")? as u32,
            chunk_size: f.try_get::<i64, _>("blob_chunk_size")? as u64,
        },
    })
}

const FILE_COLUMNS: &str =
    "file_index, name, size, checksum, blob_content_id, blob_file_index, blob_chunk_size";

async fn file_rows(conn: &mut SqliteConnection, content_id: &str) -> Result<Vec<SqliteRow>> {
    Ok(sqlx::query(&format!(
        "SELECT {FILE_COLUMNS} FROM content_files WHERE content_id = ? ORDER BY file_index"
    ))
    .bind(content_id)
    .fetch_all(&mut *conn)
    .await?)
}

async fn load_content(conn: &mut SqliteConnection, row: &SqliteRow) -> Result<ContentRecord> {
    let content_id: String = row.try_get("id")?;
    let chunk_size = row.try_get::<i64, _>("chunk_size")? as u64;
    let rows = file_rows(conn, &content_id).await?;
    let mut files = Vec::with_capacity(rows.len());
    let mut locations = Vec::with_capacity(rows.len());
    for f in &rows {
        files.push(ContentFile {
            file_index: f.try_get::<i64, _>("file_index")? as u32,
            name: f.try_get("name")?,
            size: f.try_get::<i64, _>("size")? as u64,
            checksum: f.try_get("checksum")?,
        });
        locations.push(blob_location(f, &content_id, chunk_size)?);
    }
    Ok(ContentRecord {
        version: ContentVersion {
            asset_id: row.try_get("asset_id")?,
            status: row.try_get("status")?,
            total_bytes: row.try_get::<i64, _>("total_bytes")? as u64,
            files,
            created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
            completed_at: opt_ts(row.try_get("completed_at")?)?,
            content_id,
        },
        chunk_size,
        locations,
    })
}

const CONTENT_COLUMNS: &str =
    "id, asset_id, status, total_bytes, chunk_size, created_at, completed_at";

async fn content_by_id(
    conn: &mut SqliteConnection,
    content_id: &str,
) -> Result<Option<ContentRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {CONTENT_COLUMNS} FROM contents WHERE id = ?"
    ))
    .bind(content_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some(load_content(conn, &row).await?)),
        None => Ok(None),
    }
}

async fn latest_content(
    conn: &mut SqliteConnection,
    asset_id: &str,
) -> Result<Option<ContentRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {CONTENT_COLUMNS} FROM contents WHERE asset_id = ? AND status = 'complete'
         ORDER BY completed_at DESC, rowid DESC LIMIT 1"
    ))
    .bind(asset_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some(load_content(conn, &row).await?)),
        None => Ok(None),
    }
}

const ASSET_COLUMNS: &str = "id, title, description, alias, tags, metadata, owner_type, owner_id, created_by, created_at, updated_at";

async fn asset_from_row(conn: &mut SqliteConnection, row: &SqliteRow) -> Result<Asset> {
    let asset_id: String = row.try_get("id")?;
    let collection_ids = sqlx::query_scalar::<_, String>(
        "SELECT collection_id FROM asset_collections WHERE asset_id = ? ORDER BY collection_id",
    )
    .bind(&asset_id)
    .fetch_all(&mut *conn)
    .await?;
    let latest = latest_content(conn, &asset_id).await?.map(|c| c.version);
    Ok(Asset {
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        alias: row.try_get("alias")?,
        tags: serde_json::from_str(&row.try_get::<String, _>("tags")?).unwrap_or_default(),
        metadata: json_object(&row.try_get::<String, _>("metadata")?),
        owner_type: row.try_get("owner_type")?,
        owner_id: row.try_get("owner_id")?,
        collection_ids,
        created_by: row.try_get("created_by")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_ts(&row.try_get::<String, _>("updated_at")?)?,
        latest_content: latest,
        asset_id,
    })
}

async fn asset_by_id(conn: &mut SqliteConnection, asset_id: &str) -> Result<Option<Asset>> {
    let row = sqlx::query(&format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = ?"))
        .bind(asset_id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(Some(asset_from_row(conn, &row).await?)),
        None => Ok(None),
    }
}

async fn upload_by_id(
    conn: &mut SqliteConnection,
    upload_id: &str,
) -> Result<Option<UploadRecord>> {
    let Some(row) = sqlx::query(
        "SELECT u.id, u.asset_id, u.content_id, u.user_id, u.chunk_size, u.status, u.created_at,
                a.owner_type, a.owner_id
         FROM uploads u LEFT JOIN assets a ON a.id = u.asset_id WHERE u.id = ?",
    )
    .bind(upload_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let content_id: String = row.try_get("content_id")?;
    let chunk_size = row.try_get::<i64, _>("chunk_size")? as u64;
    let file_rows = file_rows(conn, &content_id).await?;
    let chunk_rows = sqlx::query(
        "SELECT file_index, chunk_index FROM upload_chunks WHERE upload_id = ? ORDER BY file_index, chunk_index",
    )
    .bind(upload_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut files = Vec::with_capacity(file_rows.len());
    let mut known_checksums = Vec::with_capacity(file_rows.len());
    for f in &file_rows {
        let size = f.try_get::<i64, _>("size")? as u64;
        let chunk_count = dataerai_proto::chunk_count(size, chunk_size);
        let deduplicated = f.try_get::<Option<String>, _>("blob_content_id")?.is_some();
        files.push(UploadFileState {
            file_index: f.try_get::<i64, _>("file_index")? as u32,
            name: f.try_get("name")?,
            size,
            chunk_count,
            // The bytes are stored already: every chunk counts as received.
            received_chunks: if deduplicated {
                (0..chunk_count).collect()
            } else {
                Vec::new()
            },
            deduplicated,
            dedup_candidate: false,
        });
        known_checksums.push(if deduplicated {
            f.try_get("checksum")?
        } else {
            None
        });
    }
    for c in &chunk_rows {
        let fi = c.try_get::<i64, _>("file_index")? as usize;
        if let Some(f) = files.get_mut(fi) {
            f.received_chunks
                .push(c.try_get::<i64, _>("chunk_index")? as u64);
        }
    }
    Ok(Some(UploadRecord {
        session: UploadSession {
            upload_id: row.try_get("id")?,
            asset_id: row.try_get("asset_id")?,
            content_id,
            chunk_size,
            status: row.try_get("status")?,
            files,
            created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        },
        user_id: row.try_get("user_id")?,
        owner: match (row.try_get("owner_type")?, row.try_get("owner_id")?) {
            (Some(t), Some(i)) => Some((t, i)),
            _ => None,
        },
        known_checksums,
    }))
}

async fn insert_asset(tx: &mut SqliteConnection, asset: NewAsset) -> Result<Asset> {
    let id = new_id();
    let now = ts(Utc::now());
    let inserted = sqlx::query(
        "INSERT INTO assets (id, title, description, alias, tags, metadata, owner_type, owner_id,
                                 created_by, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(&asset.title)
    .bind(&asset.description)
    .bind(&asset.alias)
    .bind(to_json(&asset.tags))
    .bind(to_json(&asset.metadata))
    .bind(asset.owner_type)
    .bind(&asset.owner_id)
    .bind(&asset.created_by)
    .bind(&now)
    .bind(&now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict(format!(
                "alias {:?} is already used by another asset of this owner; choose another alias",
                asset.alias.unwrap_or_default()
            )))
        }
        other => other?,
    };
    if let Some(collection_id) = &asset.collection_id {
        sqlx::query("INSERT INTO asset_collections (asset_id, collection_id) VALUES (?, ?)")
            .bind(&id)
            .bind(collection_id)
            .execute(&mut *tx)
            .await?;
    }
    // Exactly what was stored (a new asset has no content yet): no need to read it back.
    let at = parse_ts(&now)?;
    Ok(Asset {
        asset_id: id,
        title: asset.title,
        description: asset.description,
        alias: asset.alias,
        tags: asset.tags,
        metadata: asset.metadata,
        owner_type: asset.owner_type,
        owner_id: asset.owner_id,
        collection_ids: asset.collection_id.into_iter().collect(),
        created_by: asset.created_by,
        created_at: at,
        updated_at: at,
        latest_content: None,
    })
}

async fn insert_upload(
    tx: &mut SqliteConnection,
    asset_id: &str,
    user_id: &str,
    chunk_size: u64,
    files: &[UploadFileSpec],
) -> Result<UploadSession> {
    let owner = sqlx::query("SELECT owner_type, owner_id FROM assets WHERE id = ?")
        .bind(asset_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("asset {asset_id}")))?;
    let owner_type: String = owner.try_get("owner_type")?;
    let owner_id: String = owner.try_get("owner_id")?;
    let allocation = load_allocation(tx, &owner_type, &owner_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("allocation of {owner_type} {owner_id}")))?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    if allocation.used_bytes + allocation.reserved_bytes + total > allocation.quota_bytes {
        return Err(StoreError::QuotaExceeded {
            quota: allocation.quota_bytes,
            used: allocation.used_bytes,
            reserved: allocation.reserved_bytes,
            requested: total,
        });
    }
    let content_id = new_id();
    let upload_id = new_id();
    let now = ts(Utc::now());
    sqlx::query(
        "INSERT INTO contents (id, asset_id, status, total_bytes, chunk_size, created_at)
             VALUES (?, ?, 'pending', ?, ?, ?)",
    )
    .bind(&content_id)
    .bind(asset_id)
    .bind(total as i64)
    .bind(chunk_size as i64)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    for (i, f) in files.iter().enumerate() {
        let stored = match &f.checksum {
            Some(sum) => find_stored_file(tx, &owner_type, &owner_id, f.size, sum).await?,
            None => None,
        };
        let (blob_content_id, blob_file_index, blob_chunk_size) = match stored {
            Some((c, fi, cs)) => (Some(c), Some(fi), Some(cs)),
            None => (None, None, None),
        };
        // The checksum is recorded only for deduplicated files: theirs is
        // verified already, the others' is verified at `complete`.
        let checksum = blob_content_id.as_ref().and(f.checksum.as_ref());
        sqlx::query(
            "INSERT INTO content_files (content_id, file_index, name, size, checksum,
                                            blob_content_id, blob_file_index, blob_chunk_size)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&content_id)
        .bind(i as i64)
        .bind(&f.name)
        .bind(f.size as i64)
        .bind(checksum)
        .bind(blob_content_id)
        .bind(blob_file_index)
        .bind(blob_chunk_size)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO uploads (id, asset_id, content_id, user_id, chunk_size, status, created_at)
             VALUES (?, ?, ?, ?, ?, 'open', ?)",
    )
    .bind(&upload_id)
    .bind(asset_id)
    .bind(&content_id)
    .bind(user_id)
    .bind(chunk_size as i64)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    let session = upload_by_id(tx, &upload_id).await?;
    Ok(session
        .ok_or_else(|| StoreError::NotFound(format!("upload {upload_id}")))?
        .session)
}

async fn insert_chunk(
    tx: &mut SqliteConnection,
    upload_id: &str,
    file_index: u32,
    chunk_index: u64,
    chunk: ChunkRecord,
) -> Result<ChunkRecord> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM uploads WHERE id = ?")
        .bind(upload_id)
        .fetch_optional(&mut *tx)
        .await?;
    match status.as_deref() {
        None => return Err(StoreError::NotFound(format!("upload {upload_id}"))),
        Some("open") => {}
        Some(other) => {
            return Err(StoreError::Invalid(format!(
                "upload {upload_id} is {other}, not open"
            )))
        }
    }
    sqlx::query(
        "INSERT OR IGNORE INTO upload_chunks (upload_id, file_index, chunk_index, size, hash)
             VALUES (?, ?, ?, ?, ?)",
    )
    .bind(upload_id)
    .bind(file_index as i64)
    .bind(chunk_index as i64)
    .bind(chunk.size as i64)
    .bind(&chunk.hash)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(
            "SELECT size, hash FROM upload_chunks WHERE upload_id = ? AND file_index = ? AND chunk_index = ?",
        )
        .bind(upload_id)
        .bind(file_index as i64)
        .bind(chunk_index as i64)
        .fetch_one(&mut *tx)
        .await?;
    Ok(ChunkRecord {
        size: row.try_get::<i64, _>("size")? as u64,
        hash: row.try_get("hash")?,
    })
}

async fn publish_upload(
    tx: &mut SqliteConnection,
    upload_id: &str,
    checksums: &[String],
) -> Result<ContentVersion> {
    let record = upload_by_id(tx, upload_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("upload {upload_id}")))?;
    let session = record.session;
    if session.status != UploadStatus::Open {
        return Err(StoreError::Invalid(format!(
            "upload {upload_id} is {}, not open",
            session.status
        )));
    }
    if checksums.len() != session.files.len() {
        return Err(StoreError::Invalid(format!(
            "{} checksums given for {} files",
            checksums.len(),
            session.files.len()
        )));
    }
    let (owner_type, owner_id) = record
        .owner
        .ok_or_else(|| StoreError::NotFound(format!("asset {}", session.asset_id)))?;
    let allocation = load_allocation(tx, &owner_type, &owner_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("allocation of {owner_type} {owner_id}")))?;
    // The session's own bytes are already part of `reserved`.
    if allocation.used_bytes + allocation.reserved_bytes > allocation.quota_bytes {
        let requested: u64 = session.files.iter().map(|f| f.size).sum();
        return Err(StoreError::QuotaExceeded {
            quota: allocation.quota_bytes,
            used: allocation.used_bytes,
            reserved: allocation.reserved_bytes - requested,
            requested,
        });
    }
    for (i, checksum) in checksums.iter().enumerate() {
        sqlx::query(
            "UPDATE content_files SET checksum = ? WHERE content_id = ? AND file_index = ?",
        )
        .bind(checksum)
        .bind(&session.content_id)
        .bind(i as i64)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE contents SET status = 'complete', completed_at = ? WHERE id = ?")
        .bind(ts(Utc::now()))
        .bind(&session.content_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE uploads SET status = 'complete' WHERE id = ?")
        .bind(upload_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE assets SET updated_at = ? WHERE id = ?")
        .bind(ts(Utc::now()))
        .bind(&session.asset_id)
        .execute(&mut *tx)
        .await?;
    let content = content_by_id(tx, &session.content_id).await?;
    Ok(content
        .ok_or_else(|| StoreError::NotFound(format!("content {}", session.content_id)))?
        .version)
}

/// End the savepoint of one batch item: kept when the item succeeded, rolled
/// back when it failed (the batch's transaction goes on either way).
async fn settle<T>(sp: sqlx::Transaction<'_, sqlx::Sqlite>, item: Result<T>) -> Result<Result<T>> {
    match item {
        Ok(v) => {
            sp.commit().await?;
            Ok(Ok(v))
        }
        Err(e) => {
            sp.rollback().await?;
            Ok(Err(e))
        }
    }
}

/// Of `candidates`, the content ids whose blobs no live (non-aborted) content
/// file uses any more, as its own chunks or through a dedup pointer.
async fn unreferenced_blobs(
    conn: &mut SqliteConnection,
    mut candidates: Vec<String>,
) -> Result<Vec<String>> {
    candidates.sort();
    candidates.dedup();
    let mut out = Vec::new();
    for id in candidates {
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM content_files f JOIN contents c ON c.id = f.content_id
                            WHERE c.status != 'aborted'
                              AND (f.blob_content_id = ?1
                                   OR (f.content_id = ?1 AND f.blob_content_id IS NULL)))",
        )
        .bind(&id)
        .fetch_one(&mut *conn)
        .await?;
        if !used {
            out.push(id);
        }
    }
    Ok(out)
}

/// The physical location of a complete file of `owner` with this size and
/// checksum, if there is one (the dedup lookup).
async fn find_stored_file(
    conn: &mut SqliteConnection,
    owner_type: &str,
    owner_id: &str,
    size: u64,
    checksum: &str,
) -> Result<Option<(String, i64, i64)>> {
    let row = sqlx::query(
        "SELECT COALESCE(f.blob_content_id, f.content_id) AS bc,
                COALESCE(f.blob_file_index, f.file_index) AS bf,
                COALESCE(f.blob_chunk_size, c.chunk_size) AS bs
         FROM content_files f JOIN contents c ON c.id = f.content_id
              JOIN assets a ON a.id = c.asset_id
         WHERE f.checksum = ? AND f.size = ? AND c.status = 'complete'
           AND a.owner_type = ? AND a.owner_id = ?
         LIMIT 1",
    )
    .bind(checksum)
    .bind(size as i64)
    .bind(owner_type)
    .bind(owner_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok((r.try_get("bc")?, r.try_get("bf")?, r.try_get("bs")?)))
        .transpose()
}

async fn relationship_from_row(
    conn: &mut SqliteConnection,
    row: &SqliteRow,
) -> Result<Relationship> {
    let to_asset_id: String = row.try_get("to_asset_id")?;
    let target =
        sqlx::query("SELECT id, title, alias, owner_type, owner_id FROM assets WHERE id = ?")
            .bind(&to_asset_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Relationship {
        id: row.try_get("id")?,
        rel_type: row.try_get("type")?,
        from_asset_id: row.try_get("from_asset_id")?,
        analysis_mode: row.try_get("analysis_mode")?,
        qualifiers: json_object(&row.try_get::<String, _>("qualifiers")?),
        created_by: row.try_get("created_by")?,
        created_at: parse_ts(&row.try_get::<String, _>("created_at")?)?,
        related_asset: AssetSummary {
            id: target.try_get("id")?,
            title: target.try_get("title")?,
            alias: target.try_get("alias")?,
            owner_type: target.try_get("owner_type")?,
            owner_id: target.try_get("owner_id")?,
        },
        to_asset_id,
    })
}

/// What a list selects: `SELECT {columns} FROM {from} ORDER BY {order}`.
/// `from` is the table (with joins) and its `WHERE` clause, whose `?`
/// placeholders take the list's arguments.
struct Listing {
    columns: &'static str,
    from: &'static str,
    order: &'static str,
}

/// Turns one row into an item, loading related rows on the same connection.
type RowMapper<T> = for<'c> fn(&'c mut SqliteConnection, &'c SqliteRow) -> BoxFuture<'c, Result<T>>;

impl SqliteStore {
    /// One page of a list (`window`) and the total number of items: every
    /// list of the trait is this count + page query + row mapping.
    async fn list<T: Send>(
        &self,
        listing: Listing,
        args: &[&str],
        window: Window,
        map: RowMapper<T>,
    ) -> Result<(Vec<T>, u64)> {
        let Listing {
            columns,
            from,
            order,
        } = listing;
        let mut conn = self.pool.acquire().await?;
        let count_sql = format!("SELECT COUNT(*) FROM {from}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        for arg in args {
            count = count.bind(*arg);
        }
        let total = count.fetch_one(&mut *conn).await? as u64;
        let page_sql = format!("SELECT {columns} FROM {from} ORDER BY {order} LIMIT ? OFFSET ?");
        let mut page = sqlx::query(&page_sql);
        for arg in args {
            page = page.bind(*arg);
        }
        let rows = page
            .bind(window.limit as i64)
            .bind(window.offset as i64)
            .fetch_all(&mut *conn)
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(map(&mut conn, row).await?);
        }
        Ok((items, total))
    }
}

// ---------------------------------------------------------------- the trait

#[async_trait]
impl MetadataStore for SqliteStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, email: &str, quota_bytes: u64) -> Result<User> {
        let mut tx = self.begin_write().await?;
        let user = User {
            user_id: new_id(),
            email: email.to_string(),
            created_at: Utc::now(),
        };
        let inserted = sqlx::query("INSERT INTO users (id, email, created_at) VALUES (?, ?, ?)")
            .bind(&user.user_id)
            .bind(&user.email)
            .bind(ts(user.created_at))
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "a user with email {email} already exists"
                )))
            }
            other => other?,
        };
        sqlx::query(
            "INSERT INTO allocations (id, owner_type, owner_id, quota_bytes) VALUES (?, ?, ?, ?)",
        )
        .bind(new_id())
        .bind(OWNER_USER)
        .bind(&user.user_id)
        .bind(quota_bytes as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query("SELECT id, email, created_at FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(User {
                user_id: r.try_get("id")?,
                email: r.try_get("email")?,
                created_at: parse_ts(&r.try_get::<String, _>("created_at")?)?,
            })
        })
        .transpose()
    }

    async fn create_token(&self, token: NewToken) -> Result<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO tokens (id, user_id, name, token_hash, scopes, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&token.user_id)
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(token.scopes.join(","))
        .bind(ts(Utc::now()))
        .bind(token.expires_at.map(ts))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT t.id, t.user_id, u.email, t.scopes, t.expires_at
             FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ? AND t.revoked_at_ms IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TokenRecord {
                token_id: r.try_get("id")?,
                user_id: r.try_get("user_id")?,
                email: r.try_get("email")?,
                scopes: r
                    .try_get::<String, _>("scopes")?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                expires_at: opt_ts(r.try_get("expires_at")?)?,
            })
        })
        .transpose()
    }

    async fn allocation(&self, owner_type: &str, owner_id: &str) -> Result<Option<Allocation>> {
        let mut conn = self.pool.acquire().await?;
        load_allocation(&mut conn, owner_type, owner_id).await
    }

    async fn set_quota(&self, owner_type: &str, owner_id: &str, quota_bytes: u64) -> Result<()> {
        let done = sqlx::query(
            "UPDATE allocations SET quota_bytes = ? WHERE owner_type = ? AND owner_id = ?",
        )
        .bind(quota_bytes as i64)
        .bind(owner_type)
        .bind(owner_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "allocation of {owner_type} {owner_id}"
            )));
        }
        Ok(())
    }

    async fn create_project(
        &self,
        name: &str,
        description: &str,
        created_by: &str,
        quota_bytes: u64,
    ) -> Result<Project> {
        let mut tx = self.begin_write().await?;
        let project_id = new_id();
        let root_id = new_id();
        let now = ts(Utc::now());
        // The root collection references the project, so the project goes first.
        sqlx::query(
            "INSERT INTO projects (id, name, description, root_collection_id, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&project_id)
        .bind(name)
        .bind(description)
        .bind(&root_id)
        .bind(created_by)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO collections (id, project_id, name, parent_id, created_at) VALUES (?, ?, ?, NULL, ?)")
            .bind(&root_id)
            .bind(&project_id)
            .bind(name)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO memberships (project_id, user_id, role, added_at_ms) VALUES (?, ?, 'owner', ?)")
            .bind(&project_id)
            .bind(created_by)
            .bind(Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO allocations (id, owner_type, owner_id, quota_bytes) VALUES (?, ?, ?, ?)",
        )
        .bind(new_id())
        .bind(OWNER_PROJECT)
        .bind(&project_id)
        .bind(quota_bytes as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.project_for_member(&project_id, created_by)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("project {project_id}")))
    }

    async fn project_for_member(&self, project_id: &str, user_id: &str) -> Result<Option<Project>> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query(
            "SELECT p.*, m.role FROM projects p JOIN memberships m ON m.project_id = p.id
             WHERE p.id = ? AND m.user_id = ?",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Ok(Some(project_from_row(&mut conn, &row).await?)),
            None => Ok(None),
        }
    }

    async fn project_exists(&self, project_id: &str) -> Result<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?)")
                .bind(project_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn list_projects(&self, user_id: &str, window: Window) -> Result<(Vec<Project>, u64)> {
        self.list(
            Listing {
                columns: "p.*, m.role",
                from: "projects p JOIN memberships m ON m.project_id = p.id WHERE m.user_id = ?",
                order: "p.created_at, p.id",
            },
            &[user_id],
            window,
            |c, r| Box::pin(project_from_row(c, r)),
        )
        .await
    }

    async fn member_role(&self, project_id: &str, user_id: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT role FROM memberships WHERE project_id = ? AND user_id = ?")
                .bind(project_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn create_collection(
        &self,
        project_id: &str,
        name: &str,
        parent_id: &str,
    ) -> Result<Collection> {
        let c = Collection {
            collection_id: new_id(),
            project_id: project_id.to_string(),
            name: name.to_string(),
            parent_id: Some(parent_id.to_string()),
            created_at: Utc::now(),
        };
        sqlx::query("INSERT INTO collections (id, project_id, name, parent_id, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&c.collection_id)
            .bind(&c.project_id)
            .bind(&c.name)
            .bind(parent_id)
            .bind(ts(c.created_at))
            .execute(&self.pool)
            .await?;
        Ok(c)
    }

    async fn get_collection(&self, collection_id: &str) -> Result<Option<Collection>> {
        sqlx::query("SELECT * FROM collections WHERE id = ?")
            .bind(collection_id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| collection_from_row(&r))
            .transpose()
    }

    async fn list_collections(
        &self,
        project_id: &str,
        window: Window,
    ) -> Result<(Vec<Collection>, u64)> {
        self.list(
            Listing {
                columns: "*",
                from: "collections WHERE project_id = ?",
                order: "created_at, id",
            },
            &[project_id],
            window,
            |_, r| Box::pin(async move { collection_from_row(r) }),
        )
        .await
    }

    async fn list_collection_assets(
        &self,
        collection_id: &str,
        window: Window,
    ) -> Result<(Vec<Asset>, u64)> {
        self.list(
            Listing {
                columns: ASSET_COLUMNS,
                from: "assets WHERE id IN (SELECT asset_id FROM asset_collections WHERE collection_id = ?)",
                order: "created_at, id",
            },
            &[collection_id],
            window,
            |c, r| Box::pin(asset_from_row(c, r)),
        )
        .await
    }

    async fn create_asset(&self, asset: NewAsset) -> Result<Asset> {
        let mut tx = self.begin_write().await?;
        let asset = insert_asset(&mut tx, asset).await?;
        tx.commit().await?;
        Ok(asset)
    }

    async fn get_asset(&self, asset_id: &str) -> Result<Option<Asset>> {
        let mut conn = self.pool.acquire().await?;
        asset_by_id(&mut conn, asset_id).await
    }

    async fn list_assets(
        &self,
        owner_type: &str,
        owner_id: &str,
        window: Window,
    ) -> Result<(Vec<Asset>, u64)> {
        self.list(
            Listing {
                columns: ASSET_COLUMNS,
                from: "assets WHERE owner_type = ? AND owner_id = ?",
                order: "created_at, id",
            },
            &[owner_type, owner_id],
            window,
            |c, r| Box::pin(asset_from_row(c, r)),
        )
        .await
    }

    async fn update_asset(&self, asset_id: &str, patch: UpdateAsset) -> Result<Asset> {
        let mut tx = self.begin_write().await?;
        let current = asset_by_id(&mut tx, asset_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("asset {asset_id}")))?;
        let mut metadata = current.metadata;
        for (key, value) in patch.metadata.unwrap_or_default() {
            if value.is_null() {
                metadata.remove(&key);
            } else {
                metadata.insert(key, value);
            }
        }
        let updated = sqlx::query(
            "UPDATE assets SET title = ?, description = ?, alias = ?, tags = ?, metadata = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(patch.title.unwrap_or(current.title))
        .bind(patch.description.or(current.description))
        .bind(patch.alias.as_ref().or(current.alias.as_ref()))
        .bind(to_json(&patch.tags.unwrap_or(current.tags)))
        .bind(to_json(&metadata))
        .bind(ts(Utc::now()))
        .bind(asset_id)
        .execute(&mut *tx)
        .await;
        match updated {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                "alias {:?} is already used by another asset of this owner; choose another alias",
                patch.alias.unwrap_or_default()
            )))
            }
            other => other?,
        };
        let asset = asset_by_id(&mut tx, asset_id).await?;
        tx.commit().await?;
        asset.ok_or_else(|| StoreError::NotFound(format!("asset {asset_id}")))
    }

    async fn delete_asset(&self, asset_id: &str) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        // Blob candidates: the asset's own versions and whatever its files point at.
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM contents WHERE asset_id = ?1
             UNION
             SELECT f.blob_content_id FROM content_files f JOIN contents c ON c.id = f.content_id
             WHERE c.asset_id = ?1 AND f.blob_content_id IS NOT NULL",
        )
        .bind(asset_id)
        .fetch_all(&mut *tx)
        .await?;
        // Foreign keys cascade to contents, files, uploads, chunks, relationships, collections links.
        let done = sqlx::query("DELETE FROM assets WHERE id = ?")
            .bind(asset_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("asset {asset_id}")));
        }
        // Decided inside the transaction: a dedup lookup cannot point at these
        // bytes afterwards, because nothing that names them is left to find.
        let unused = unreferenced_blobs(&mut tx, candidates).await?;
        tx.commit().await?;
        Ok(unused)
    }

    async fn list_contents(
        &self,
        asset_id: &str,
        window: Window,
    ) -> Result<(Vec<ContentVersion>, u64)> {
        self.list(
            Listing {
                columns: CONTENT_COLUMNS,
                from: "contents WHERE asset_id = ? AND status = 'complete'",
                order: "completed_at DESC, rowid DESC",
            },
            &[asset_id],
            window,
            |c, r| Box::pin(async move { Ok(load_content(c, r).await?.version) }),
        )
        .await
    }

    async fn get_content(&self, asset_id: &str, content_id: &str) -> Result<Option<ContentRecord>> {
        let mut conn = self.pool.acquire().await?;
        let found = if content_id == "latest" {
            latest_content(&mut conn, asset_id).await?
        } else {
            content_by_id(&mut conn, content_id).await?
        };
        Ok(found.filter(|c| {
            c.version.asset_id == asset_id && c.version.status == ContentStatus::Complete
        }))
    }

    async fn create_upload(
        &self,
        asset_id: &str,
        user_id: &str,
        chunk_size: u64,
        files: &[UploadFileSpec],
    ) -> Result<UploadSession> {
        let mut tx = self.begin_write().await?;
        let session = insert_upload(&mut tx, asset_id, user_id, chunk_size, files).await?;
        tx.commit().await?;
        Ok(session)
    }

    async fn get_upload(&self, upload_id: &str) -> Result<Option<UploadRecord>> {
        let mut conn = self.pool.acquire().await?;
        upload_by_id(&mut conn, upload_id).await
    }

    async fn stores_file_of_size(
        &self,
        owner_type: &str,
        owner_id: &str,
        size: u64,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS hit FROM content_files f JOIN contents c ON c.id = f.content_id
                  JOIN assets a ON a.id = c.asset_id
             WHERE f.size = ? AND c.status = 'complete' AND a.owner_type = ? AND a.owner_id = ?
             LIMIT 1",
        )
        .bind(size as i64)
        .bind(owner_type)
        .bind(owner_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn chunk_hashes(&self, upload_id: &str, file_index: u32) -> Result<Vec<(u64, String)>> {
        let rows = sqlx::query(
            "SELECT chunk_index, hash FROM upload_chunks WHERE upload_id = ? AND file_index = ? ORDER BY chunk_index",
        )
        .bind(upload_id)
        .bind(file_index as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>("chunk_index")? as u64,
                    r.try_get("hash")?,
                ))
            })
            .collect()
    }

    async fn chunk(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
    ) -> Result<Option<ChunkRecord>> {
        let row = sqlx::query(
            "SELECT size, hash FROM upload_chunks WHERE upload_id = ? AND file_index = ? AND chunk_index = ?",
        )
        .bind(upload_id)
        .bind(file_index as i64)
        .bind(chunk_index as i64)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ChunkRecord {
                size: r.try_get::<i64, _>("size")? as u64,
                hash: r.try_get("hash")?,
            })
        })
        .transpose()
    }

    async fn record_chunk(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
        chunk: ChunkRecord,
    ) -> Result<ChunkRecord> {
        let mut tx = self.begin_write().await?;
        let recorded = insert_chunk(&mut tx, upload_id, file_index, chunk_index, chunk).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        checksums: &[String],
    ) -> Result<ContentVersion> {
        let mut tx = self.begin_write().await?;
        let version = publish_upload(&mut tx, upload_id, checksums).await?;
        tx.commit().await?;
        Ok(version)
    }

    async fn create_uploads(&self, items: Vec<NewUpload>) -> Result<Vec<Result<UploadSession>>> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let mut sp = sqlx::Connection::begin(&mut *tx).await?;
            let one = async {
                let asset_id = match item.target {
                    UploadTarget::NewAsset(asset) => insert_asset(&mut sp, asset).await?.asset_id,
                    UploadTarget::Existing(id) => id,
                };
                insert_upload(
                    &mut sp,
                    &asset_id,
                    &item.user_id,
                    item.chunk_size,
                    &item.files,
                )
                .await
            }
            .await;
            out.push(settle(sp, one).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn finish_small(&self, items: &[SmallFinish]) -> Result<Vec<Result<ContentVersion>>> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let mut sp = sqlx::Connection::begin(&mut *tx).await?;
            let one = async {
                let recorded =
                    insert_chunk(&mut sp, &item.upload_id, 0, 0, item.chunk.clone()).await?;
                let sum = super::small_file_checksum(item, &recorded)?;
                publish_upload(&mut sp, &item.upload_id, &[sum]).await
            }
            .await;
            out.push(settle(sp, one).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn abort_upload(&self, upload_id: &str) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("SELECT status, content_id FROM uploads WHERE id = ?")
            .bind(upload_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("upload {upload_id}")))?;
        let status: String = row.try_get("status")?;
        if status != "open" {
            return Err(StoreError::Invalid(format!(
                "upload {upload_id} is {status}, not open"
            )));
        }
        let content_id: String = row.try_get("content_id")?;
        sqlx::query("UPDATE uploads SET status = 'aborted' WHERE id = ?")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE contents SET status = 'aborted' WHERE id = ?")
            .bind(&content_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM upload_chunks WHERE upload_id = ?")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        let mut candidates: Vec<String> = sqlx::query_scalar(
            "SELECT blob_content_id FROM content_files
             WHERE content_id = ? AND blob_content_id IS NOT NULL",
        )
        .bind(&content_id)
        .fetch_all(&mut *tx)
        .await?;
        candidates.push(content_id);
        let unused = unreferenced_blobs(&mut tx, candidates).await?;
        tx.commit().await?;
        Ok(unused)
    }

    async fn open_upload_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE status = 'open'")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn create_relationship(&self, rel: NewRelationship) -> Result<Relationship> {
        let mut tx = self.begin_write().await?;
        let id = new_id();
        let inserted = sqlx::query(
            "INSERT INTO relationships (id, from_asset_id, to_asset_id, type, analysis_mode, qualifiers,
                                        created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&rel.from_asset_id)
        .bind(&rel.to_asset_id)
        .bind(&rel.rel_type)
        .bind(&rel.analysis_mode)
        .bind(to_json(&rel.qualifiers))
        .bind(&rel.created_by)
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::RelationshipExists),
            other => other?,
        };
        let row = sqlx::query("SELECT * FROM relationships WHERE id = ?")
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
        let out = relationship_from_row(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_relationships(
        &self,
        from_asset_id: &str,
        window: Window,
    ) -> Result<(Vec<Relationship>, u64)> {
        self.list(
            Listing {
                columns: "*",
                from: "relationships WHERE from_asset_id = ?",
                order: "created_at, id",
            },
            &[from_asset_id],
            window,
            |c, r| Box::pin(relationship_from_row(c, r)),
        )
        .await
    }
}

super::auth::impl_auth_store!(SqliteStore, sqlx::Sqlite, SqliteRow, begin_write, "", ts);
