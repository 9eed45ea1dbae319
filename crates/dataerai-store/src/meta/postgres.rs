//! [`MetadataStore`] on PostgreSQL: the scale-out backend shared by several
//! server replicas. Migrations in `migrations/postgres/` run at open; a missing
//! database is created first (when the role may), so a fresh cluster needs no
//! manual step.
//!
//! Same semantics as the SQLite store. Where SQLite takes its one write lock up
//! front (`BEGIN IMMEDIATE`), a read-check-write here locks the rows it
//! decides on with `SELECT … FOR UPDATE`, always in the same order so two
//! replicas cannot deadlock:
//! 1. the owner's `allocations` row — every transaction that changes what an
//!    owner stores or reserves (open, complete, abort, delete) takes it, so
//!    quota checks and dedup/reference decisions are serialised per owner;
//! 2. then the `uploads` row (complete and abort `FOR UPDATE`; recording a
//!    chunk `FOR SHARE`, so chunks of one session go in parallel but never
//!    race its completion).
//!
//! An asset's metadata merge locks the asset row.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use dataerai_proto::api::{
    Allocation, Asset, AssetSummary, Collection, ContentFile, ContentStatus, ContentVersion,
    Project, Relationship, UpdateAsset, UploadFileSpec, UploadFileState, UploadSession,
};
use futures::future::BoxFuture;
use serde_json::{Map, Value};
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};
use uuid::Uuid;

use super::{
    BlobLocation, ChunkRecord, ContentRecord, MetadataStore, NewAsset, NewRelationship, NewToken,
    SmallFinish, TokenRecord, UploadRecord, User, Window, OWNER_PROJECT, OWNER_USER,
};
use crate::error::{Result, StoreError};

/// SQLSTATE of "database does not exist".
const INVALID_CATALOG_NAME: &str = "3D000";

/// The PostgreSQL metadata store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

type Tx = sqlx::Transaction<'static, Postgres>;

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/database`),
    /// creating the database if it does not exist, and run the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool_options = || {
            PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
        };
        let pool = match pool_options().connect_with(options.clone()).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(INVALID_CATALOG_NAME) => {
                tracing::info!(
                    database = options.get_database().unwrap_or_default(),
                    "creating the missing database"
                );
                Postgres::create_database(url).await?;
                pool_options().connect_with(options).await?
            }
            other => other?,
        };
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }
}

fn new_id() -> String {
    Uuid::new_v4().to_string()
}

/// PostgreSQL keeps microseconds: answer exactly what a later read returns.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn json_object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

fn get_u64(row: &PgRow, column: &str) -> Result<u64> {
    Ok(row.try_get::<i64, _>(column)? as u64)
}

// ---------------------------------------------------------------- row loaders

/// Lock an owner's allocation row for the rest of the transaction (see the
/// module docs); `NotFound` when the owner has no allocation.
async fn lock_owner(conn: &mut PgConnection, owner_type: &str, owner_id: &str) -> Result<()> {
    sqlx::query("SELECT id FROM allocations WHERE owner_type = $1 AND owner_id = $2 FOR UPDATE")
        .bind(owner_type)
        .bind(owner_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("allocation of {owner_type} {owner_id}")))?;
    Ok(())
}

/// `(owner_type, owner_id)` of an asset.
async fn asset_owner(conn: &mut PgConnection, asset_id: &str) -> Result<Option<(String, String)>> {
    let row = sqlx::query("SELECT owner_type, owner_id FROM assets WHERE id = $1")
        .bind(asset_id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| Ok((r.try_get("owner_type")?, r.try_get("owner_id")?)))
        .transpose()
}

async fn load_allocation(
    conn: &mut PgConnection,
    owner_type: &str,
    owner_id: &str,
) -> Result<Option<Allocation>> {
    // Kept by triggers (migration 0003): no sum over the owner's versions.
    let row = sqlx::query(
        "SELECT id, quota_bytes, used_bytes, reserved_bytes FROM allocations
         WHERE owner_type = $1 AND owner_id = $2",
    )
    .bind(owner_type)
    .bind(owner_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(Allocation {
            allocation_id: r.try_get("id")?,
            quota_bytes: get_u64(&r, "quota_bytes")?,
            used_bytes: get_u64(&r, "used_bytes")?,
            reserved_bytes: get_u64(&r, "reserved_bytes")?,
        })
    })
    .transpose()
}

/// A project row joined with the caller's membership (`p.*, m.role`).
async fn project_from_row(conn: &mut PgConnection, row: &PgRow) -> Result<Project> {
    let project_id: String = row.try_get("id")?;
    let allocation = load_allocation(conn, OWNER_PROJECT, &project_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("allocation of project {project_id}")))?;
    Ok(Project {
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        root_collection_id: row.try_get("root_collection_id")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        project_id,
        role: row.try_get("role")?,
        allocation,
    })
}

fn collection_from_row(row: &PgRow) -> Result<Collection> {
    Ok(Collection {
        collection_id: row.try_get("id")?,
        project_id: row.try_get("project_id")?,
        name: row.try_get("name")?,
        parent_id: row.try_get("parent_id")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Where a content file's bytes live: its own chunks, or the ones it points at.
fn blob_location(f: &PgRow, content_id: &str, chunk_size: u64) -> Result<BlobLocation> {
    Ok(match f.try_get::<Option<String>, _>("blob_content_id")? {
        None => BlobLocation {
            content_id: content_id.to_string(),
            file_index: get_u64(f, "file_index")? as u32,
            chunk_size,
        },
        Some(blob_content_id) => BlobLocation {
            content_id: blob_content_id,
            file_index: get_u64(f, "blob_file_index")? as u32,
            chunk_size: get_u64(f, "blob_chunk_size")?,
        },
    })
}

async fn file_rows(conn: &mut PgConnection, content_id: &str) -> Result<Vec<PgRow>> {
    Ok(sqlx::query(
        "SELECT file_index, name, size, checksum, blob_content_id, blob_file_index, blob_chunk_size
         FROM content_files WHERE content_id = $1 ORDER BY file_index",
    )
    .bind(content_id)
    .fetch_all(&mut *conn)
    .await?)
}

async fn load_content(conn: &mut PgConnection, row: &PgRow) -> Result<ContentRecord> {
    let content_id: String = row.try_get("id")?;
    let chunk_size = get_u64(row, "chunk_size")?;
    let rows = file_rows(conn, &content_id).await?;
    let mut files = Vec::with_capacity(rows.len());
    let mut locations = Vec::with_capacity(rows.len());
    for f in &rows {
        files.push(ContentFile {
            file_index: get_u64(f, "file_index")? as u32,
            name: f.try_get("name")?,
            size: get_u64(f, "size")?,
            checksum: f.try_get("checksum")?,
        });
        locations.push(blob_location(f, &content_id, chunk_size)?);
    }
    Ok(ContentRecord {
        version: ContentVersion {
            asset_id: row.try_get("asset_id")?,
            status: row.try_get("status")?,
            total_bytes: get_u64(row, "total_bytes")?,
            files,
            created_at: row.try_get("created_at")?,
            completed_at: row.try_get("completed_at")?,
            content_id,
        },
        chunk_size,
        locations,
    })
}

const CONTENT_COLUMNS: &str =
    "id, asset_id, status, total_bytes, chunk_size, created_at, completed_at";

/// The content version selected by `filter` (a `WHERE …` clause with `$1`).
async fn content_where(
    conn: &mut PgConnection,
    filter: &str,
    arg: &str,
) -> Result<Option<ContentRecord>> {
    let row = sqlx::query(&format!("SELECT {CONTENT_COLUMNS} FROM contents {filter}"))
        .bind(arg)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => Ok(Some(load_content(conn, &row).await?)),
        None => Ok(None),
    }
}

async fn content_by_id(conn: &mut PgConnection, content_id: &str) -> Result<Option<ContentRecord>> {
    content_where(conn, "WHERE id = $1", content_id).await
}

async fn latest_content(conn: &mut PgConnection, asset_id: &str) -> Result<Option<ContentRecord>> {
    content_where(
        conn,
        "WHERE asset_id = $1 AND status = 'complete' ORDER BY completed_at DESC, seq DESC LIMIT 1",
        asset_id,
    )
    .await
}

const ASSET_COLUMNS: &str = "id, title, description, alias, tags, metadata, owner_type, owner_id, created_by, created_at, updated_at";

async fn asset_from_row(conn: &mut PgConnection, row: &PgRow) -> Result<Asset> {
    let asset_id: String = row.try_get("id")?;
    let collection_ids = sqlx::query_scalar::<_, String>(
        "SELECT collection_id FROM asset_collections WHERE asset_id = $1 ORDER BY collection_id",
    )
    .bind(&asset_id)
    .fetch_all(&mut *conn)
    .await?;
    let latest = latest_content(conn, &asset_id).await?.map(|c| c.version);
    Ok(Asset {
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        alias: row.try_get("alias")?,
        tags: serde_json::from_value(row.try_get("tags")?).unwrap_or_default(),
        metadata: json_object(row.try_get("metadata")?),
        owner_type: row.try_get("owner_type")?,
        owner_id: row.try_get("owner_id")?,
        collection_ids,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        latest_content: latest,
        asset_id,
    })
}

/// An asset; `lock` takes its row lock for the rest of the transaction.
async fn asset_by_id(conn: &mut PgConnection, asset_id: &str, lock: bool) -> Result<Option<Asset>> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    let row = sqlx::query(&format!(
        "SELECT {ASSET_COLUMNS} FROM assets WHERE id = $1 {lock}"
    ))
    .bind(asset_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Some(asset_from_row(conn, &row).await?)),
        None => Ok(None),
    }
}

async fn upload_by_id(conn: &mut PgConnection, upload_id: &str) -> Result<Option<UploadRecord>> {
    let Some(row) = sqlx::query(
        "SELECT u.id, u.asset_id, u.content_id, u.user_id, u.chunk_size, u.status, u.created_at,
                a.owner_type, a.owner_id
         FROM uploads u LEFT JOIN assets a ON a.id = u.asset_id WHERE u.id = $1",
    )
    .bind(upload_id)
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let content_id: String = row.try_get("content_id")?;
    let chunk_size = get_u64(&row, "chunk_size")?;
    let file_rows = file_rows(conn, &content_id).await?;
    let chunk_rows = sqlx::query(
        "SELECT file_index, chunk_index FROM upload_chunks WHERE upload_id = $1 ORDER BY file_index, chunk_index",
    )
    .bind(upload_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut files = Vec::with_capacity(file_rows.len());
    let mut known_checksums = Vec::with_capacity(file_rows.len());
    for f in &file_rows {
        let size = get_u64(f, "size")?;
        let chunk_count = dataerai_proto::chunk_count(size, chunk_size);
        let deduplicated = f.try_get::<Option<String>, _>("blob_content_id")?.is_some();
        files.push(UploadFileState {
            file_index: get_u64(f, "file_index")? as u32,
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
        if let Some(f) = files.get_mut(get_u64(c, "file_index")? as usize) {
            f.received_chunks.push(get_u64(c, "chunk_index")?);
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
            created_at: row.try_get("created_at")?,
        },
        user_id: row.try_get("user_id")?,
        owner: match (row.try_get("owner_type")?, row.try_get("owner_id")?) {
            (Some(t), Some(i)) => Some((t, i)),
            _ => None,
        },
        known_checksums,
    }))
}

/// Of `candidates`, the content ids whose blobs no live (non-aborted) content
/// file uses any more, as its own chunks or through a dedup pointer.
async fn unreferenced_blobs(
    conn: &mut PgConnection,
    mut candidates: Vec<String>,
) -> Result<Vec<String>> {
    candidates.sort();
    candidates.dedup();
    Ok(sqlx::query_scalar(
        "SELECT id FROM UNNEST($1::TEXT[]) AS cand(id)
         WHERE NOT EXISTS (SELECT 1 FROM content_files f JOIN contents c ON c.id = f.content_id
                           WHERE c.status != 'aborted'
                             AND (f.blob_content_id = cand.id
                                  OR (f.content_id = cand.id AND f.blob_content_id IS NULL)))
         ORDER BY id",
    )
    .bind(&candidates)
    .fetch_all(&mut *conn)
    .await?)
}

/// The physical location of a complete file of `owner` with this size and
/// checksum, if there is one (the dedup lookup).
async fn find_stored_file(
    conn: &mut PgConnection,
    owner: &(String, String),
    size: u64,
    checksum: &str,
) -> Result<Option<(String, i64, i64)>> {
    let row = sqlx::query(
        "SELECT COALESCE(f.blob_content_id, f.content_id) AS bc,
                COALESCE(f.blob_file_index, f.file_index) AS bf,
                COALESCE(f.blob_chunk_size, c.chunk_size) AS bs
         FROM content_files f JOIN contents c ON c.id = f.content_id
              JOIN assets a ON a.id = c.asset_id
         WHERE f.checksum = $1 AND f.size = $2 AND c.status = 'complete'
           AND a.owner_type = $3 AND a.owner_id = $4
         LIMIT 1",
    )
    .bind(checksum)
    .bind(size as i64)
    .bind(&owner.0)
    .bind(&owner.1)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| Ok((r.try_get("bc")?, r.try_get("bf")?, r.try_get("bs")?)))
        .transpose()
}

async fn relationship_from_row(conn: &mut PgConnection, row: &PgRow) -> Result<Relationship> {
    let to_asset_id: String = row.try_get("to_asset_id")?;
    let target =
        sqlx::query("SELECT id, title, alias, owner_type, owner_id FROM assets WHERE id = $1")
            .bind(&to_asset_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Relationship {
        id: row.try_get("id")?,
        rel_type: row.try_get("type")?,
        from_asset_id: row.try_get("from_asset_id")?,
        analysis_mode: row.try_get("analysis_mode")?,
        qualifiers: json_object(row.try_get("qualifiers")?),
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
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

/// What a list selects: `SELECT {columns} FROM {from} ORDER BY {order}`, the
/// same shape as the SQLite store's lists. `from` is the table (with joins)
/// and its `WHERE` clause, whose `$1, $2, …` placeholders take the arguments.
struct Listing {
    columns: &'static str,
    from: &'static str,
    order: &'static str,
}

/// Turns one row into an item, loading related rows on the same connection.
type RowMapper<T> = for<'c> fn(&'c mut PgConnection, &'c PgRow) -> BoxFuture<'c, Result<T>>;

impl PgStore {
    /// One page of a list (`window`) and the total number of items.
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
        let (limit, offset) = (args.len() + 1, args.len() + 2);
        let page_sql = format!(
            "SELECT {columns} FROM {from} ORDER BY {order} LIMIT ${limit} OFFSET ${offset}"
        );
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

    async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }
}

/// `StoreError::Conflict` for a taken alias.
fn alias_taken(alias: Option<String>) -> StoreError {
    StoreError::Conflict(format!(
        "alias {:?} is already used by another asset of this owner; choose another alias",
        alias.unwrap_or_default()
    ))
}

/// An open session's row, locked; `NotFound` / `Invalid` otherwise.
async fn lock_open_upload(tx: &mut PgConnection, upload_id: &str, mode: &str) -> Result<PgRow> {
    let row = sqlx::query(&format!(
        "SELECT status, content_id, asset_id FROM uploads WHERE id = $1 FOR {mode}"
    ))
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
    Ok(row)
}

/// Lock the allocation of the owner of an upload's asset (lock order 1, taken
/// before the upload row).
async fn lock_upload_owner(tx: &mut PgConnection, upload_id: &str) -> Result<(String, String)> {
    let asset_id: String = sqlx::query_scalar("SELECT asset_id FROM uploads WHERE id = $1")
        .bind(upload_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("upload {upload_id}")))?;
    let owner = asset_owner(tx, &asset_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("asset {asset_id}")))?;
    lock_owner(tx, &owner.0, &owner.1).await?;
    Ok(owner)
}

async fn insert_chunk(
    tx: &mut PgConnection,
    upload_id: &str,
    file_index: u32,
    chunk_index: u64,
    chunk: ChunkRecord,
) -> Result<ChunkRecord> {
    // FOR SHARE: chunks go in parallel, completion (FOR UPDATE) waits for them.
    lock_open_upload(tx, upload_id, "SHARE").await?;
    sqlx::query(
        "INSERT INTO upload_chunks (upload_id, file_index, chunk_index, size, hash)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(upload_id)
    .bind(i64::from(file_index))
    .bind(chunk_index as i64)
    .bind(chunk.size as i64)
    .bind(&chunk.hash)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(
            "SELECT size, hash FROM upload_chunks WHERE upload_id = $1 AND file_index = $2 AND chunk_index = $3",
        )
        .bind(upload_id)
        .bind(i64::from(file_index))
        .bind(chunk_index as i64)
        .fetch_one(&mut *tx)
        .await?;
    Ok(ChunkRecord {
        size: get_u64(&row, "size")?,
        hash: row.try_get("hash")?,
    })
}

async fn publish_upload(
    tx: &mut PgConnection,
    upload_id: &str,
    checksums: &[String],
) -> Result<ContentVersion> {
    let owner = lock_upload_owner(tx, upload_id).await?;
    lock_open_upload(tx, upload_id, "UPDATE").await?;
    let session = upload_by_id(tx, upload_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("upload {upload_id}")))?
        .session;
    if checksums.len() != session.files.len() {
        return Err(StoreError::Invalid(format!(
            "{} checksums given for {} files",
            checksums.len(),
            session.files.len()
        )));
    }
    let allocation = load_allocation(tx, &owner.0, &owner.1)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("allocation of {} {}", owner.0, owner.1)))?;
    // The session's own bytes are already part of `reserved`.
    let requested: u64 = session.files.iter().map(|f| f.size).sum();
    quota_check(&allocation, requested, true)?;
    sqlx::query(
        "UPDATE content_files SET checksum = sums.checksum
             FROM UNNEST($1::TEXT[]) WITH ORDINALITY AS sums(checksum, n)
             WHERE content_id = $2 AND file_index = sums.n - 1",
    )
    .bind(checksums)
    .bind(&session.content_id)
    .execute(&mut *tx)
    .await?;
    let completed = now();
    sqlx::query("UPDATE contents SET status = 'complete', completed_at = $1 WHERE id = $2")
        .bind(completed)
        .bind(&session.content_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE uploads SET status = 'complete' WHERE id = $1")
        .bind(upload_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE assets SET updated_at = $1 WHERE id = $2")
        .bind(completed)
        .bind(&session.asset_id)
        .execute(&mut *tx)
        .await?;
    let content = content_by_id(tx, &session.content_id).await?;
    Ok(content
        .ok_or_else(|| StoreError::NotFound(format!("content {}", session.content_id)))?
        .version)
}

fn quota_check(allocation: &Allocation, requested: u64, already_reserved: bool) -> Result<()> {
    let extra = if already_reserved { 0 } else { requested };
    if allocation.used_bytes + allocation.reserved_bytes + extra > allocation.quota_bytes {
        return Err(StoreError::QuotaExceeded {
            quota: allocation.quota_bytes,
            used: allocation.used_bytes,
            reserved: allocation.reserved_bytes - (requested - extra),
            requested,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- the trait

#[async_trait]
impl MetadataStore for PgStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(&self, email: &str, quota_bytes: u64) -> Result<User> {
        let mut tx = self.begin().await?;
        let user = User {
            user_id: new_id(),
            email: email.to_string(),
            created_at: now(),
        };
        let inserted = sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)")
            .bind(&user.user_id)
            .bind(&user.email)
            .bind(user.created_at)
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e) {
                StoreError::Conflict(format!("a user with email {email} already exists"))
            } else {
                e.into()
            });
        }
        sqlx::query(
            "INSERT INTO allocations (id, owner_type, owner_id, quota_bytes) VALUES ($1, $2, $3, $4)",
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
        let row = sqlx::query("SELECT id, email, created_at FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(User {
                user_id: r.try_get("id")?,
                email: r.try_get("email")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn create_token(&self, token: NewToken) -> Result<String> {
        let id = new_id();
        sqlx::query(
            "INSERT INTO tokens (id, user_id, name, token_hash, scopes, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&token.user_id)
        .bind(&token.name)
        .bind(&token.token_hash)
        .bind(token.scopes.join(","))
        .bind(now())
        .bind(token.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT t.id, t.user_id, u.email, t.scopes, t.expires_at
             FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at_ms IS NULL",
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
                expires_at: r.try_get("expires_at")?,
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
            "UPDATE allocations SET quota_bytes = $1 WHERE owner_type = $2 AND owner_id = $3",
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
        let mut tx = self.begin().await?;
        let project_id = new_id();
        let root_id = new_id();
        let created = now();
        // The root collection references the project, so the project goes first.
        sqlx::query(
            "INSERT INTO projects (id, name, description, root_collection_id, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&project_id)
        .bind(name)
        .bind(description)
        .bind(&root_id)
        .bind(created_by)
        .bind(created)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO collections (id, project_id, name, parent_id, created_at) VALUES ($1, $2, $3, NULL, $4)")
            .bind(&root_id)
            .bind(&project_id)
            .bind(name)
            .bind(created)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO memberships (project_id, user_id, role, added_at_ms) VALUES ($1, $2, 'owner', $3)")
            .bind(&project_id)
            .bind(created_by)
            .bind(Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO allocations (id, owner_type, owner_id, quota_bytes) VALUES ($1, $2, $3, $4)",
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
             WHERE p.id = $1 AND m.user_id = $2",
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
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)")
                .bind(project_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn list_projects(&self, user_id: &str, window: Window) -> Result<(Vec<Project>, u64)> {
        self.list(
            Listing {
                columns: "p.*, m.role",
                from: "projects p JOIN memberships m ON m.project_id = p.id WHERE m.user_id = $1",
                order: "p.created_at, p.id",
            },
            &[user_id],
            window,
            |c, r| Box::pin(project_from_row(c, r)),
        )
        .await
    }

    async fn member_role(&self, project_id: &str, user_id: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2",
        )
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
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
            created_at: now(),
        };
        sqlx::query("INSERT INTO collections (id, project_id, name, parent_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&c.collection_id)
            .bind(&c.project_id)
            .bind(&c.name)
            .bind(parent_id)
            .bind(c.created_at)
            .execute(&self.pool)
            .await?;
        Ok(c)
    }

    async fn get_collection(&self, collection_id: &str) -> Result<Option<Collection>> {
        sqlx::query("SELECT * FROM collections WHERE id = $1")
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
                from: "collections WHERE project_id = $1",
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
                from: "assets WHERE id IN (SELECT asset_id FROM asset_collections WHERE collection_id = $1)",
                order: "created_at, id",
            },
            &[collection_id],
            window,
            |c, r| Box::pin(asset_from_row(c, r)),
        )
        .await
    }

    async fn create_asset(&self, asset: NewAsset) -> Result<Asset> {
        let mut tx = self.begin().await?;
        let id = new_id();
        let created = now();
        let inserted = sqlx::query(
            "INSERT INTO assets (id, title, description, alias, tags, metadata, owner_type, owner_id,
                                 created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(&id)
        .bind(&asset.title)
        .bind(&asset.description)
        .bind(&asset.alias)
        .bind(sqlx::types::Json(&asset.tags))
        .bind(sqlx::types::Json(&asset.metadata))
        .bind(asset.owner_type)
        .bind(&asset.owner_id)
        .bind(&asset.created_by)
        .bind(created)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e) {
                alias_taken(asset.alias)
            } else {
                e.into()
            });
        }
        if let Some(collection_id) = &asset.collection_id {
            sqlx::query("INSERT INTO asset_collections (asset_id, collection_id) VALUES ($1, $2)")
                .bind(&id)
                .bind(collection_id)
                .execute(&mut *tx)
                .await?;
        }
        let created = asset_by_id(&mut tx, &id, false).await?;
        tx.commit().await?;
        created.ok_or_else(|| StoreError::NotFound(format!("asset {id}")))
    }

    async fn get_asset(&self, asset_id: &str) -> Result<Option<Asset>> {
        let mut conn = self.pool.acquire().await?;
        asset_by_id(&mut conn, asset_id, false).await
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
                from: "assets WHERE owner_type = $1 AND owner_id = $2",
                order: "created_at, id",
            },
            &[owner_type, owner_id],
            window,
            |c, r| Box::pin(asset_from_row(c, r)),
        )
        .await
    }

    async fn update_asset(&self, asset_id: &str, patch: UpdateAsset) -> Result<Asset> {
        let mut tx = self.begin().await?;
        // The row lock makes the read-merge-write of `metadata` atomic across replicas.
        let current = asset_by_id(&mut tx, asset_id, true)
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
            "UPDATE assets SET title = $1, description = $2, alias = $3, tags = $4, metadata = $5,
                               updated_at = $6
             WHERE id = $7",
        )
        .bind(patch.title.unwrap_or(current.title))
        .bind(patch.description.or(current.description))
        .bind(patch.alias.as_ref().or(current.alias.as_ref()))
        .bind(sqlx::types::Json(patch.tags.unwrap_or(current.tags)))
        .bind(sqlx::types::Json(&metadata))
        .bind(now())
        .bind(asset_id)
        .execute(&mut *tx)
        .await;
        if let Err(e) = updated {
            return Err(if is_unique_violation(&e) {
                alias_taken(patch.alias)
            } else {
                e.into()
            });
        }
        let asset = asset_by_id(&mut tx, asset_id, false).await?;
        tx.commit().await?;
        asset.ok_or_else(|| StoreError::NotFound(format!("asset {asset_id}")))
    }

    async fn delete_asset(&self, asset_id: &str) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let owner = asset_owner(&mut tx, asset_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("asset {asset_id}")))?;
        // Serialised with dedup lookups of the same owner (create_upload).
        lock_owner(&mut tx, &owner.0, &owner.1).await?;
        // Blob candidates: the asset's own versions and whatever its files point at.
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM contents WHERE asset_id = $1
             UNION
             SELECT f.blob_content_id FROM content_files f JOIN contents c ON c.id = f.content_id
             WHERE c.asset_id = $1 AND f.blob_content_id IS NOT NULL",
        )
        .bind(asset_id)
        .fetch_all(&mut *tx)
        .await?;
        // Foreign keys cascade to contents, files, uploads, chunks, relationships, collections links.
        let done = sqlx::query("DELETE FROM assets WHERE id = $1")
            .bind(asset_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("asset {asset_id}")));
        }
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
                from: "contents WHERE asset_id = $1 AND status = 'complete'",
                order: "completed_at DESC, seq DESC",
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
        let mut tx = self.begin().await?;
        let owner = asset_owner(&mut tx, asset_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("asset {asset_id}")))?;
        lock_owner(&mut tx, &owner.0, &owner.1).await?;
        let allocation = load_allocation(&mut tx, &owner.0, &owner.1)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("allocation of {} {}", owner.0, owner.1))
            })?;
        let total: u64 = files.iter().map(|f| f.size).sum();
        quota_check(&allocation, total, false)?;
        let content_id = new_id();
        let upload_id = new_id();
        let created = now();
        sqlx::query(
            "INSERT INTO contents (id, asset_id, status, total_bytes, chunk_size, created_at)
             VALUES ($1, $2, 'pending', $3, $4, $5)",
        )
        .bind(&content_id)
        .bind(asset_id)
        .bind(total as i64)
        .bind(chunk_size as i64)
        .bind(created)
        .execute(&mut *tx)
        .await?;
        for (i, f) in files.iter().enumerate() {
            let stored = match &f.checksum {
                Some(sum) => find_stored_file(&mut tx, &owner, f.size, sum).await?,
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
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
             VALUES ($1, $2, $3, $4, $5, 'open', $6)",
        )
        .bind(&upload_id)
        .bind(asset_id)
        .bind(&content_id)
        .bind(user_id)
        .bind(chunk_size as i64)
        .bind(created)
        .execute(&mut *tx)
        .await?;
        let session = upload_by_id(&mut tx, &upload_id).await?;
        tx.commit().await?;
        Ok(session
            .ok_or_else(|| StoreError::NotFound(format!("upload {upload_id}")))?
            .session)
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
             WHERE f.size = $1 AND c.status = 'complete' AND a.owner_type = $2 AND a.owner_id = $3
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
            "SELECT chunk_index, hash FROM upload_chunks WHERE upload_id = $1 AND file_index = $2 ORDER BY chunk_index",
        )
        .bind(upload_id)
        .bind(i64::from(file_index))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((get_u64(r, "chunk_index")?, r.try_get("hash")?)))
            .collect()
    }

    async fn chunk(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
    ) -> Result<Option<ChunkRecord>> {
        let row = sqlx::query(
            "SELECT size, hash FROM upload_chunks WHERE upload_id = $1 AND file_index = $2 AND chunk_index = $3",
        )
        .bind(upload_id)
        .bind(i64::from(file_index))
        .bind(chunk_index as i64)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ChunkRecord {
                size: get_u64(&r, "size")?,
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
        let mut tx = self.begin().await?;
        let recorded = insert_chunk(&mut tx, upload_id, file_index, chunk_index, chunk).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        checksums: &[String],
    ) -> Result<ContentVersion> {
        let mut tx = self.begin().await?;
        let version = publish_upload(&mut tx, upload_id, checksums).await?;
        tx.commit().await?;
        Ok(version)
    }

    /// One transaction per item (recording the chunk and completing the
    /// session together): items of several owners never wait on each other's
    /// row locks, and a failed item leaves nothing recorded.
    async fn finish_small(&self, items: &[SmallFinish]) -> Result<Vec<Result<ContentVersion>>> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let mut tx = self.begin().await?;
            let one = async {
                let recorded =
                    insert_chunk(&mut tx, &item.upload_id, 0, 0, item.chunk.clone()).await?;
                let sum = super::small_file_checksum(item, &recorded)?;
                publish_upload(&mut tx, &item.upload_id, &[sum]).await
            }
            .await;
            match one {
                Ok(v) => {
                    tx.commit().await?;
                    out.push(Ok(v));
                }
                Err(e) => {
                    tx.rollback().await?;
                    out.push(Err(e));
                }
            }
        }
        Ok(out)
    }

    async fn abort_upload(&self, upload_id: &str) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        lock_upload_owner(&mut tx, upload_id).await?;
        let row = lock_open_upload(&mut tx, upload_id, "UPDATE").await?;
        let content_id: String = row.try_get("content_id")?;
        sqlx::query("UPDATE uploads SET status = 'aborted' WHERE id = $1")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE contents SET status = 'aborted' WHERE id = $1")
            .bind(&content_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM upload_chunks WHERE upload_id = $1")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        let mut candidates: Vec<String> = sqlx::query_scalar(
            "SELECT blob_content_id FROM content_files
             WHERE content_id = $1 AND blob_content_id IS NOT NULL",
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
        let mut tx = self.begin().await?;
        let id = new_id();
        let inserted = sqlx::query(
            "INSERT INTO relationships (id, from_asset_id, to_asset_id, type, analysis_mode, qualifiers,
                                        created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(&rel.from_asset_id)
        .bind(&rel.to_asset_id)
        .bind(&rel.rel_type)
        .bind(&rel.analysis_mode)
        .bind(sqlx::types::Json(&rel.qualifiers))
        .bind(&rel.created_by)
        .bind(now())
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(if is_unique_violation(&e) {
                StoreError::RelationshipExists
            } else {
                e.into()
            });
        }
        let row = sqlx::query("SELECT * FROM relationships WHERE id = $1")
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
                from: "relationships WHERE from_asset_id = $1",
                order: "created_at, id",
            },
            &[from_asset_id],
            window,
            |c, r| Box::pin(relationship_from_row(c, r)),
        )
        .await
    }
}

/// Timestamps bind natively on PostgreSQL.
fn native_ts(t: DateTime<Utc>) -> DateTime<Utc> {
    t
}

super::auth::impl_auth_store!(PgStore, Postgres, PgRow, begin, " FOR UPDATE", native_ts);
