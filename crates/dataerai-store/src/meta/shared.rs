//! [`MetadataStore`], written once for both backends.
//!
//! A backend ([`Backend`]) says how to get a connection, how to open and
//! commit a write transaction and how a batch settles each item; its
//! connection type says what its SQL dialect does differently
//! ([`Dialect`]: row locks, two statements). Everything else — the SQL, the
//! row mapping ([`super::rows`]) and the domain rules ([`crate::rules`]) — is
//! here, the same for SQLite and PostgreSQL.
//!
//! Lock order (PostgreSQL; SQLite's write transactions hold the one write
//! lock from their start): first the allocations of an asset
//! ([`lock_asset_allocations`]: its owner's and the one it is charged to,
//! in id order) — every transaction that changes what an asset stores or
//! reserves takes them, so quota checks are serialised per charged
//! allocation and dedup/reference decisions per owner — then the `uploads` row (complete and
//! abort `FOR UPDATE`; recording a chunk `FOR SHARE`, so chunks of one
//! session go in parallel but never race its completion). A metadata merge
//! locks the asset row. A batch ([`MetadataStore::create_uploads`],
//! [`MetadataStore::finish_small`]) takes the same locks for all its items
//! before its first item, each kind in id order ([`lock_for_new_sessions`],
//! [`lock_for_finish`]): the allocations of every item, then every session.

use std::ops::DerefMut;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dataerai_proto::api::{
    Allocation, Asset, AssetSummary, Collection, ContentStatus, ContentVersion, OwnerType, Project,
    ProjectRole, Relationship, UpdateAsset, UploadFileSpec, UploadSession, UploadStatus,
};
use futures::future::BoxFuture;
use sqlx::Database;
use uuid::Uuid;

use super::auth::AuthStore;
use super::rows::{
    AllocationRow, AssetRow, ChargedRow, ChunkRow, ContentRow, FileRow, IdleRow, OwnerRow,
    PointerRow, ProjectRow, RelationshipRow, TokenRow, UploadRow, UploadStateRow, UserRow,
    ASSET_COLUMNS, CONTENT_COLUMNS, FILE_COLUMNS,
};
use super::sql::{args, insert_rows, Arg, Conn, Decoded, Dialect, Marks, StoredFileKey};
use super::time::now;
use super::{
    ChunkRecord, CloseReason, ContentRecord, ExpiredUpload, MetadataStore, NewAsset,
    NewRelationship, NewToken, NewUpload, SmallFinish, TokenRecord, UploadRecord, UploadTarget,
    User, Window,
};
use crate::error::{Result, StoreError};
use crate::rules;

/// Runs one item of a batch on a connection (see [`Backend::each_atomically`]).
pub(crate) type Each<C, I, T> = for<'c> fn(&'c mut C, &'c I) -> BoxFuture<'c, Result<T>>;

/// What a metadata store backend provides; [`MetadataStore`] follows.
#[async_trait]
pub(crate) trait Backend: AuthStore + Send + Sync + 'static {
    type Db: Database<Connection: Dialect>;
    /// A write transaction.
    type Write: DerefMut<Target = ConnOf<Self>> + Commit + Send;

    /// Connections for reads and one-statement writes.
    fn pool(&self) -> &sqlx::Pool<Self::Db>;
    async fn write(&self) -> Result<Self::Write>;
    /// Bring the query planner's statistics up to date where the database
    /// does not do it by itself (see [`MetadataStore::refresh_statistics`]).
    async fn refresh_statistics(&self) -> Result<()> {
        Ok(())
    }
}

/// The connection type of a backend.
pub(crate) type ConnOf<B> = <<B as Backend>::Db as Database>::Connection;

/// Ends a write transaction, keeping what it did.
#[async_trait]
pub(crate) trait Commit {
    async fn commit(self) -> Result<()>;
    async fn rollback(self) -> Result<()>;
}

#[async_trait]
impl<DB: Database> Commit for sqlx::Transaction<'_, DB> {
    async fn commit(self) -> Result<()> {
        Ok(sqlx::Transaction::commit(self).await?)
    }
    async fn rollback(self) -> Result<()> {
        Ok(sqlx::Transaction::rollback(self).await?)
    }
}

/// End one batch item's transaction (or savepoint): kept when the item
/// succeeded, rolled back when it failed.
async fn settle<W: Commit>(tx: W, keep: bool) -> Result<()> {
    if keep {
        tx.commit().await
    } else {
        tx.rollback().await
    }
}

/// `each` for every item, in item order, inside the write transaction `c`
/// of a batch: each item succeeds or fails on its own, and a failed item
/// leaves nothing behind (a savepoint per item).
async fn each_atomically<B: Backend, I: Sync, T: Send>(
    c: &mut ConnOf<B>,
    items: &[I],
    each: Each<ConnOf<B>, I, T>,
) -> Result<Vec<Result<T>>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let mut savepoint = sqlx::Connection::begin(&mut *c).await?;
        let done = each(&mut savepoint, item).await;
        settle(savepoint, done.is_ok()).await?;
        out.push(done);
    }
    Ok(out)
}

/// A new row id: a UUIDv7, so ids made one after another sort together and a
/// batch's new rows (assets, contents, uploads, their files and chunks) share
/// B-tree pages instead of dirtying one page each. Ids stay opaque strings:
/// nothing reads the time back, and older random (v4) ids work as before.
pub(crate) fn new_id() -> String {
    Uuid::now_v7().to_string()
}

fn not_found(what: impl std::fmt::Display) -> StoreError {
    StoreError::NotFound(what.to_string())
}

fn is_unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Db(sqlx::Error::Database(d)) if d.is_unique_violation())
}

/// `done`, with a unique-key violation turned into `conflict`.
pub(super) fn unique<T>(done: Result<T>, conflict: impl FnOnce() -> StoreError) -> Result<T> {
    done.map_err(|e| {
        if is_unique_violation(&e) {
            conflict()
        } else {
            e
        }
    })
}

// ---------------------------------------------------------------- reading

async fn load_allocation<C: Dialect>(
    c: &mut C,
    owner_type: OwnerType,
    owner_id: &str,
) -> Result<Option<Allocation>> {
    // Kept by triggers (SQLite migrations 0004 and 0010, PostgreSQL 0003 and
    // 0009): no sum over the versions charged to it.
    let row: Option<AllocationRow> = c
        .fetch_optional(
            "SELECT id, quota_bytes, used_bytes, reserved_bytes, file_count, max_files
             FROM allocations WHERE owner_type = $1 AND owner_id = $2",
            args![owner_type, owner_id],
        )
        .await?;
    row.map(AllocationRow::into_api).transpose()
}

/// The allocation with this id, which must exist.
async fn allocation_by_id<C: Dialect>(c: &mut C, allocation_id: &str) -> Result<Allocation> {
    let row: Option<AllocationRow> = c
        .fetch_optional(
            "SELECT id, quota_bytes, used_bytes, reserved_bytes, file_count, max_files
             FROM allocations WHERE id = $1",
            args![allocation_id],
        )
        .await?;
    row.map(AllocationRow::into_api)
        .transpose()?
        .ok_or_else(|| not_found(format!("allocation {allocation_id}")))
}

/// An asset's owner and the allocation its versions are charged to, both
/// allocations locked (see [`lock_asset_allocations`]).
struct Charged {
    owner: OwnerRow,
    allocation_id: String,
}

/// Lock, until the transaction ends, the allocations of `asset_id`: its
/// owner's (dedup and reference decisions are made per owner) and the one
/// it is charged to (the quota check and the usage triggers), in id order so
/// two transactions never wait on each other (PostgreSQL `FOR UPDATE`;
/// SQLite's write transaction holds the write lock already). `NotFound` when
/// the asset, or its owner's allocation, does not exist.
async fn lock_asset_allocations<C: Dialect>(c: &mut C, asset_id: &str) -> Result<Charged> {
    let row: ChargedRow = c
        .fetch_optional(
            "SELECT a.owner_type, a.owner_id, o.id AS owner_allocation_id,
                    COALESCE(a.allocation_id, o.id) AS charged_allocation_id
             FROM assets a
                  LEFT JOIN allocations o ON o.owner_type = a.owner_type AND o.owner_id = a.owner_id
             WHERE a.id = $1",
            args![asset_id],
        )
        .await?
        .ok_or_else(|| not_found(format!("asset {asset_id}")))?;
    let (Some(own), Some(charged)) = (row.owner_allocation_id, row.charged_allocation_id) else {
        return Err(not_found(format!(
            "allocation of {} {}",
            row.owner_type, row.owner_id
        )));
    };
    let _locked: Vec<(String,)> = c
        .fetch_all(
            &format!(
                "SELECT id FROM allocations WHERE id IN ($1, $2) ORDER BY id{}",
                C::FOR_UPDATE
            ),
            args![&own, &charged],
        )
        .await?;
    Ok(Charged {
        owner: OwnerRow {
            owner_type: row.owner_type,
            owner_id: row.owner_id,
        },
        allocation_id: charged,
    })
}

async fn project<C: Dialect>(c: &mut C, row: ProjectRow) -> Result<Project> {
    let allocation = load_allocation(c, OwnerType::Project, &row.id)
        .await?
        .ok_or_else(|| not_found(format!("allocation of project {}", row.id)))?;
    Ok(Project {
        project_id: row.id,
        name: row.name,
        description: row.description,
        root_collection_id: row.root_collection_id,
        created_by: row.created_by,
        created_at: row.created_at,
        role: row.role,
        allocation,
    })
}

async fn file_rows<C: Dialect>(c: &mut C, content_id: &str) -> Result<Vec<FileRow>> {
    c.fetch_all(
        &format!(
            "SELECT {FILE_COLUMNS} FROM content_files WHERE content_id = $1 ORDER BY file_index"
        ),
        args![content_id],
    )
    .await
}

async fn content<C: Dialect>(c: &mut C, row: ContentRow) -> Result<ContentRecord> {
    let rows = file_rows(c, &row.id).await?;
    content_record(row, &rows)
}

/// A content version from its row and its file rows (in file order).
fn content_record(row: ContentRow, rows: &[FileRow]) -> Result<ContentRecord> {
    let chunk_size = rules::unsigned("chunk_size", row.chunk_size)?;
    let mut files = Vec::with_capacity(rows.len());
    let mut locations = Vec::with_capacity(rows.len());
    for f in rows {
        files.push(f.api()?);
        locations.push(rules::blob_location(
            &row.id,
            f.index()?,
            chunk_size,
            f.blob.pointer()?,
        ));
    }
    Ok(ContentRecord {
        version: ContentVersion {
            content_id: row.id,
            asset_id: row.asset_id,
            status: row.status,
            total_bytes: rules::unsigned("total_bytes", row.total_bytes)?,
            files,
            created_at: row.created_at,
            completed_at: row.completed_at,
        },
        chunk_size,
        locations,
    })
}

/// The content version a `WHERE …` clause (with `$1`) selects.
async fn content_where<C: Dialect>(
    c: &mut C,
    filter: &str,
    arg: &str,
) -> Result<Option<ContentRecord>> {
    let sql = format!("SELECT {CONTENT_COLUMNS} FROM contents {filter}");
    match c.fetch_optional::<ContentRow>(&sql, args![arg]).await? {
        Some(row) => Ok(Some(content(c, row).await?)),
        None => Ok(None),
    }
}

pub(super) async fn content_by_id<C: Dialect>(
    c: &mut C,
    content_id: &str,
) -> Result<Option<ContentRecord>> {
    content_where(c, "WHERE id = $1", content_id).await
}

async fn latest_content<C: Dialect>(c: &mut C, asset_id: &str) -> Result<Option<ContentRecord>> {
    let filter = format!(
        "WHERE asset_id = $1 AND status = 'complete' ORDER BY completed_at DESC, {} DESC LIMIT 1",
        C::CREATION_ORDER
    );
    content_where(c, &filter, asset_id).await
}

pub(super) async fn asset<C: Dialect>(c: &mut C, row: AssetRow) -> Result<Asset> {
    let collection_ids: Vec<(String,)> = c
        .fetch_all(
            "SELECT collection_id FROM asset_collections WHERE asset_id = $1 ORDER BY collection_id",
            args![&row.id],
        )
        .await?;
    let latest = latest_content(c, &row.id).await?.map(|c| c.version);
    let collection_ids = collection_ids.into_iter().map(|(id,)| id).collect();
    Ok(row.into_asset(collection_ids, latest))
}

/// An asset; `lock`: its row stays locked until the transaction ends.
async fn asset_by_id<C: Dialect>(c: &mut C, asset_id: &str, lock: bool) -> Result<Option<Asset>> {
    let lock = if lock { C::FOR_UPDATE } else { "" };
    let sql = format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id = $1{lock}");
    match c.fetch_optional::<AssetRow>(&sql, args![asset_id]).await? {
        Some(row) => Ok(Some(asset(c, row).await?)),
        None => Ok(None),
    }
}

async fn upload_by_id<C: Dialect>(c: &mut C, upload_id: &str) -> Result<Option<UploadRecord>> {
    Ok(uploads_by_ids(c, &[upload_id.to_string()])
        .await?
        .pop()
        .flatten())
}

/// A file row with the content it belongs to (sessions read in a batch).
#[derive(sqlx::FromRow)]
struct SessionFileRow {
    content_id: String,
    #[sqlx(flatten)]
    file: FileRow,
}

/// The files of each of `content_ids` (at most `IDS_PER_SELECT`), in file order.
async fn files_of_contents<C: Dialect>(
    c: &mut C,
    content_ids: Vec<Arg>,
) -> Result<std::collections::HashMap<String, Vec<FileRow>>> {
    let rows: Vec<SessionFileRow> = c
        .fetch_all(
            &format!(
                "SELECT content_id, {FILE_COLUMNS} FROM content_files WHERE content_id IN ({})
                 ORDER BY content_id, file_index",
                Marks::of::<C>().list(content_ids.len())
            ),
            content_ids,
        )
        .await?;
    let mut files_of: std::collections::HashMap<String, Vec<FileRow>> = Default::default();
    for r in rows {
        files_of.entry(r.content_id).or_default().push(r.file);
    }
    Ok(files_of)
}

/// Ids per `IN (…)` of a batched lookup.
const IDS_PER_SELECT: usize = 500;

/// The sessions `upload_ids` name, in their order (`None` for an unknown id,
/// the same session again for a repeated one):
/// three statements for the whole list, whatever its length (up to
/// [`IDS_PER_SELECT`]), not three per session.
async fn uploads_by_ids<C: Dialect>(
    c: &mut C,
    upload_ids: &[String],
) -> Result<Vec<Option<UploadRecord>>> {
    let mut found: std::collections::HashMap<String, UploadRecord> = Default::default();
    for ids in upload_ids.chunks(IDS_PER_SELECT) {
        let id_args = || {
            ids.iter()
                .map(|id| Arg::from(id.as_str()))
                .collect::<Vec<_>>()
        };
        let rows: Vec<UploadRow> = c
            .fetch_all(
                &format!(
                    "SELECT u.id, u.asset_id, u.content_id, u.user_id, u.chunk_size, u.status,
                            u.created_at, u.last_active_at, u.closed_reason, a.owner_type, a.owner_id
                     FROM uploads u LEFT JOIN assets a ON a.id = u.asset_id WHERE u.id IN ({})",
                    Marks::of::<C>().list(ids.len())
                ),
                id_args(),
            )
            .await?;
        if rows.is_empty() {
            continue;
        }
        let content_ids: Vec<Arg> = rows.iter().map(|r| Arg::from(&r.content_id)).collect();
        let mut files_of = files_of_contents(c, content_ids).await?;
        let received: Vec<(String, i64, i64)> = c
            .fetch_all(
                &format!(
                    "SELECT upload_id, file_index, chunk_index FROM upload_chunks
                     WHERE upload_id IN ({}) ORDER BY upload_id, file_index, chunk_index",
                    Marks::of::<C>().list(ids.len())
                ),
                id_args(),
            )
            .await?;
        let mut received_of: std::collections::HashMap<String, Vec<(i64, i64)>> =
            Default::default();
        for (upload_id, file_index, chunk_index) in received {
            received_of
                .entry(upload_id)
                .or_default()
                .push((file_index, chunk_index));
        }
        for row in rows {
            let file_rows = files_of.remove(&row.content_id).unwrap_or_default();
            let received = received_of.remove(&row.id).unwrap_or_default();
            found.insert(row.id.clone(), upload_record(row, file_rows, received)?);
        }
    }
    // An id listed twice answers its session twice.
    Ok(upload_ids.iter().map(|id| found.get(id).cloned()).collect())
}

/// `$1, $2, …` for `n` values after `before` other arguments.
pub(super) fn marks(before: usize, n: usize) -> String {
    (before + 1..=before + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A session from its row, its content's file rows (in file order) and the
/// chunks it received (in order).
fn upload_record(
    row: UploadRow,
    file_rows: Vec<FileRow>,
    received: Vec<(i64, i64)>,
) -> Result<UploadRecord> {
    let chunk_size = rules::unsigned("chunk_size", row.chunk_size)?;
    let mut files = Vec::with_capacity(file_rows.len());
    let mut known_checksums = Vec::with_capacity(file_rows.len());
    for f in file_rows {
        let deduplicated = f.blob.blob_content_id.is_some();
        let size = rules::unsigned("size", f.size)?;
        files.push(rules::upload_file_state(
            f.index()?,
            f.name,
            size,
            chunk_size,
            deduplicated,
        ));
        known_checksums.push(f.checksum.filter(|_| deduplicated));
    }
    for (file_index, chunk_index) in received {
        let file = rules::unsigned::<usize>("file_index", file_index)?;
        if let Some(f) = files.get_mut(file) {
            f.received_chunks
                .push(rules::unsigned("chunk_index", chunk_index)?);
        }
    }
    Ok(UploadRecord {
        session: UploadSession {
            upload_id: row.id,
            asset_id: row.asset_id,
            content_id: row.content_id,
            chunk_size,
            status: row.status,
            files,
            created_at: row.created_at,
        },
        user_id: row.user_id,
        owner: row.owner_type.zip(row.owner_id),
        known_checksums,
        last_active_at: row.last_active_at,
        closed_reason: row.closed_reason.as_deref().and_then(CloseReason::parse),
    })
}

async fn relationship<C: Dialect>(c: &mut C, row: RelationshipRow) -> Result<Relationship> {
    let target: AssetSummary = c
        .fetch_one(
            "SELECT id, title, alias, owner_type, owner_id FROM assets WHERE id = $1",
            args![&row.to_asset_id],
        )
        .await?;
    Ok(Relationship {
        id: row.id,
        rel_type: row.rel_type,
        from_asset_id: row.from_asset_id,
        to_asset_id: row.to_asset_id,
        analysis_mode: row.analysis_mode,
        qualifiers: row.qualifiers.0,
        created_by: row.created_by,
        created_at: row.created_at,
        related_asset: target,
        direction: dataerai_proto::api::RelationshipDirection::Out,
    })
}

/// The row `sql` selects, if any (read on a pooled connection).
async fn find<B: Backend, R: Decoded>(b: &B, sql: &str, args: Vec<Arg>) -> Result<Option<R>> {
    b.pool().acquire().await?.fetch_optional(sql, args).await
}

/// What a list selects: `SELECT {columns} FROM {from} ORDER BY {order}`.
/// `from` is the table (with joins) and its `WHERE` clause, whose `$1, $2, …`
/// placeholders take the list's arguments.
pub(super) struct Select<'a> {
    pub columns: &'a str,
    pub from: &'a str,
    pub order: &'a str,
}

/// Turns one row into an item, loading related rows on the same connection.
pub(super) type Mapper<C, R, T> = for<'c> fn(&'c mut C, R) -> BoxFuture<'c, Result<T>>;

/// One page of a list (`window`) and the total number of items: every list
/// of the trait is this count + page query + row mapping.
pub(super) async fn list<B: Backend, R: Decoded, T: Send>(
    b: &B,
    select: Select<'_>,
    args: Vec<Arg>,
    window: Window,
    map: Mapper<ConnOf<B>, R, T>,
) -> Result<(Vec<T>, u64)> {
    let Select {
        columns,
        from,
        order,
    } = select;
    let mut conn = b.pool().acquire().await?;
    let c = &mut *conn;
    let (total,): (i64,) = c
        .fetch_one(&format!("SELECT COUNT(*) FROM {from}"), args.clone())
        .await?;
    let (limit, offset) = (args.len() + 1, args.len() + 2);
    let page =
        format!("SELECT {columns} FROM {from} ORDER BY {order} LIMIT ${limit} OFFSET ${offset}");
    let mut page_args = args;
    page_args.extend(args![window.limit, window.offset]);
    let rows: Vec<R> = c.fetch_all(&page, page_args).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(map(c, row).await?);
    }
    Ok((items, rules::unsigned("count", total)?))
}

// ---------------------------------------------------------------- writing

/// The `assets.allocation_id` to store for `asset`: `None` for the owner's
/// own allocation (charged by default); `NotFound` for an unknown id.
async fn charged_allocation<C: Dialect>(c: &mut C, asset: &NewAsset) -> Result<Option<String>> {
    let Some(id) = &asset.allocation_id else {
        return Ok(None);
    };
    let owner: OwnerRow = c
        .fetch_optional(
            "SELECT owner_type, owner_id FROM allocations WHERE id = $1",
            args![id],
        )
        .await?
        .ok_or_else(|| not_found(format!("allocation {id}")))?;
    let owners_own =
        (owner.owner_type, owner.owner_id.as_str()) == (asset.owner_type, asset.owner_id.as_str());
    Ok((!owners_own).then(|| id.clone()))
}

pub(super) async fn insert_asset<C: Dialect>(c: &mut C, asset: NewAsset) -> Result<Asset> {
    let allocation_id = charged_allocation(c, &asset).await?;
    let row = NewAssetRow {
        id: new_id(),
        at: now(),
        asset: &asset,
        allocation_id,
    };
    insert_asset_row(c, &row).await?;
    super::search::reindex(c, &row.id).await?;
    // Exactly what was stored (a new asset has no content yet): no need to read it back.
    let (id, at, allocation_id) = (row.id, row.at, row.allocation_id);
    Ok(Asset {
        asset_id: id,
        title: asset.title,
        description: asset.description,
        alias: asset.alias,
        record_type: asset.record_type,
        tags: asset.tags,
        metadata: asset.metadata,
        owner_type: asset.owner_type,
        owner_id: asset.owner_id,
        collection_ids: asset.collection_id.into_iter().collect(),
        created_by: asset.created_by,
        created_at: at,
        updated_at: at,
        latest_content: None,
        allocation_id,
    })
}

/// A new asset's row as decided: its id, creation time and the allocation
/// it names (`None`: its owner's, see [`charged_allocation`]).
struct NewAssetRow<'a> {
    id: String,
    at: DateTime<Utc>,
    asset: &'a NewAsset,
    allocation_id: Option<String>,
}

impl NewAssetRow<'_> {
    /// Whether writing it can fail on its own (a taken alias, a collection
    /// gone meanwhile), so a batch writes it in a savepoint of its own.
    fn may_fail(&self) -> bool {
        self.asset.alias.is_some() || self.asset.collection_id.is_some()
    }
}

/// One new asset and its collection link; a taken alias is `Conflict`.
/// Not indexed: the caller indexes it ([`super::search::reindex`]).
async fn insert_asset_row<C: Dialect>(c: &mut C, row: &NewAssetRow<'_>) -> Result<()> {
    let inserted = insert_asset_rows(c, std::slice::from_ref(row)).await;
    unique(inserted, || rules::alias_taken(row.asset.alias.as_deref()))?;
    if let Some(collection_id) = &row.asset.collection_id {
        c.execute(
            "INSERT INTO asset_collections (asset_id, collection_id) VALUES ($1, $2)",
            args![&row.id, collection_id],
        )
        .await?;
    }
    Ok(())
}

/// The columns of a new `assets` row whose values [`asset_row_args`] gives
/// (`updated_at`, the same as `created_at`, comes after them).
pub(super) const NEW_ASSET_COLUMNS: &str = "id, title, description, alias, tags, metadata, \
     owner_type, owner_id, created_by, record_type, allocation_id, created_at";

/// The values of a new `assets` row, in [`NEW_ASSET_COLUMNS`] order.
pub(super) fn asset_row_args(
    id: &String,
    asset: &NewAsset,
    allocation_id: Option<String>,
    at: DateTime<Utc>,
) -> [Arg; 12] {
    [
        Arg::from(id),
        Arg::from(&asset.title),
        Arg::from(asset.description.clone()),
        Arg::from(asset.alias.clone()),
        Arg::json(&asset.tags),
        Arg::json(&asset.metadata),
        Arg::from(asset.owner_type),
        Arg::from(&asset.owner_id),
        Arg::from(&asset.created_by),
        Arg::from(asset.record_type.clone()),
        Arg::from(allocation_id),
        Arg::from(at),
    ]
}

/// The `assets` rows of new assets, in multi-row `INSERT`s ([`insert_rows`];
/// collection links are [`insert_asset_row`]'s).
async fn insert_asset_rows<C: Dialect>(c: &mut C, rows: &[NewAssetRow<'_>]) -> Result<()> {
    let mut args = Vec::with_capacity(rows.len() * 13);
    for r in rows {
        args.extend(asset_row_args(
            &r.id,
            r.asset,
            r.allocation_id.clone(),
            r.at,
        ));
        args.push(Arg::from(r.at)); // updated_at
    }
    let columns = format!("{NEW_ASSET_COLUMNS}, updated_at");
    insert_rows(c, "assets", &columns, 13, args, "").await
}

/// The physical location of a complete file of `key.owner` with its size
/// and checksum, if there is one (the dedup lookup of one file; see
/// [`Dialect::stored_files`]). The owner is compared per match, not joined,
/// so the plan starts from the checksum even on tables without statistics
/// (PostgreSQL's `STORED_FILES` says why).
pub(super) async fn find_stored_file<C: Dialect>(
    c: &mut C,
    key: &StoredFileKey,
) -> Result<Option<super::BlobLocation>> {
    let row: Option<PointerRow> = c
        .fetch_optional(
            "SELECT COALESCE(f.blob_content_id, f.content_id) AS blob_content_id,
                    COALESCE(f.blob_file_index, f.file_index) AS blob_file_index,
                    COALESCE(f.blob_chunk_size, c.chunk_size) AS blob_chunk_size
             FROM content_files f JOIN contents c ON c.id = f.content_id
             WHERE f.checksum = $1 AND f.size = $2 AND c.status = 'complete'
               AND (SELECT a.owner_type = $3 AND a.owner_id = $4
                    FROM assets a WHERE a.id = c.asset_id)
             LIMIT 1",
            args![&key.checksum, key.size, key.owner_type, &key.owner_id],
        )
        .await?;
    Ok(match row {
        Some(row) => row.pointer()?,
        None => None,
    })
}

async fn insert_upload<C: Dialect>(
    c: &mut C,
    asset_id: &str,
    user_id: &str,
    chunk_size: u64,
    files: &[UploadFileSpec],
) -> Result<UploadSession> {
    let charged = lock_asset_allocations(c, asset_id).await?;
    let allocation = allocation_by_id(c, &charged.allocation_id).await?;
    let wanted = dedup_keys(&charged.owner, files);
    let mut found = c.stored_files(&wanted).await?.into_iter();
    let rows = session_rows(
        asset_id.to_string(),
        &allocation,
        user_id,
        chunk_size,
        files,
        None,
        &mut found,
    )?;
    insert_session_rows(c, std::slice::from_ref(&rows)).await?;
    // Exactly what was stored (a new session holds no chunk yet, and a
    // deduplicated file all of its own): no need to read it back.
    Ok(rows.session)
}

/// The rows of one new session, decided before any is written
/// ([`insert_upload`], or [`create_uploads_together`] at the end of a batch).
struct SessionRows {
    session: UploadSession,
    user_id: String,
    total: u64,
    /// Per file: its checksum to store and where its bytes are, if deduplicated.
    files: Vec<(Option<String>, Option<super::BlobLocation>)>,
    file_specs: Vec<UploadFileSpec>,
}

/// Whether this database locks rows (PostgreSQL), so a batch takes its
/// locks up front; SQLite's write transaction holds its one write lock.
fn locks_rows<C: Dialect>() -> bool {
    !C::FOR_UPDATE.is_empty()
}

/// Lock, until the transaction ends, the rows of `table` with these `ids`
/// (in any order, repeats allowed) in id order, as [`lock_asset_allocations`]
/// does for one asset: every transaction takes its locks of one table in
/// that one order, so a batch and anything else never wait on each other in
/// a cycle.
async fn lock_in_id_order<C: Dialect>(c: &mut C, table: &str, mut ids: Vec<String>) -> Result<()> {
    ids.sort();
    ids.dedup();
    for part in ids.chunks(IDS_PER_SELECT) {
        let _locked: Vec<(String,)> = c
            .fetch_all(
                &format!(
                    "SELECT id FROM {table} WHERE id IN ({}) ORDER BY id{}",
                    marks(0, part.len()),
                    C::FOR_UPDATE
                ),
                part.iter().map(Arg::from).collect(),
            )
            .await?;
    }
    Ok(())
}

/// The allocations of the assets `rows` selects (`… WHERE <key> IN (` ids
/// `)`): each asset's owner's and, if it names one, the one it is charged to.
async fn allocations_of<C: Dialect>(c: &mut C, rows: &str, ids: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for part in ids.chunks(IDS_PER_SELECT) {
        let found: Vec<(Option<String>, Option<String>)> = c
            .fetch_all(
                &format!(
                    "SELECT o.id, a.allocation_id FROM {rows} IN ({})",
                    marks(0, part.len())
                ),
                part.iter().map(Arg::from).collect(),
            )
            .await?;
        out.extend(
            found
                .into_iter()
                .flat_map(|(own, charged)| own.into_iter().chain(charged)),
        );
    }
    Ok(out)
}

/// An asset joined to its owner's allocation (`o`), for [`allocations_of`].
const ASSET_ALLOCATIONS: &str = "assets a
    LEFT JOIN allocations o ON o.owner_type = a.owner_type AND o.owner_id = a.owner_id
    WHERE a.id";

/// A session joined to its asset (`a`) and the owner's allocation (`o`), for
/// [`allocations_of`].
const SESSION_ALLOCATIONS: &str = "uploads u JOIN assets a ON a.id = u.asset_id
    LEFT JOIN allocations o ON o.owner_type = a.owner_type AND o.owner_id = a.owner_id
    WHERE u.id";

/// PostgreSQL: lock, before the first item of a
/// [`MetadataStore::create_uploads`] batch, every allocation an item
/// charges or decides dedup on (a new asset's owner's and the one it names;
/// an existing asset's, as [`lock_asset_allocations`]), in id order. The
/// batch then checks quotas and file limits against the allocations as it
/// leaves them, exact until it commits; two concurrent batches over one
/// allocation run one after the other.
pub(super) async fn lock_for_new_sessions<C: Dialect>(
    c: &mut C,
    items: &[NewUpload],
) -> Result<()> {
    if !locks_rows::<C>() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut owners: Vec<(OwnerType, &str)> = Vec::new();
    let mut existing = Vec::new();
    for item in items {
        match &item.target {
            UploadTarget::NewAsset(asset) => {
                ids.extend(asset.allocation_id.clone());
                let owner = (asset.owner_type, asset.owner_id.as_str());
                if !owners.contains(&owner) {
                    owners.push(owner);
                }
            }
            UploadTarget::Existing(id) => existing.push(id.clone()),
        }
    }
    for (owner_type, owner_id) in owners {
        if let Some(own) = load_allocation(c, owner_type, owner_id).await? {
            ids.push(own.allocation_id);
        }
    }
    ids.extend(allocations_of(c, ASSET_ALLOCATIONS, &existing).await?);
    lock_in_id_order(c, "allocations", ids).await
}

/// PostgreSQL: lock, before the first item of a
/// [`MetadataStore::finish_small`] batch, the allocations of every
/// session's asset (in id order), then the sessions (in id order), as one
/// completion does (lock order): the batch's checks and writes see no other
/// change to them until it commits.
async fn lock_for_finish<C: Dialect>(c: &mut C, items: &[SmallFinish]) -> Result<()> {
    if !locks_rows::<C>() {
        return Ok(());
    }
    let ids: Vec<String> = items.iter().map(|i| i.upload_id.clone()).collect();
    let allocations = allocations_of(c, SESSION_ALLOCATIONS, &ids).await?;
    lock_in_id_order(c, "allocations", allocations).await?;
    lock_in_id_order(c, "uploads", ids).await
}

/// [`MetadataStore::create_uploads`] in one write transaction, in a few
/// statements for the whole batch: where each item is charged is read
/// first, then the dedup lookup of every file in one call
/// ([`Dialect::stored_files`]); each item's quota and file limit are then
/// checked against the allocations as earlier items leave them (kept exact
/// by the allocation locks [`lock_for_new_sessions`] took), and the new
/// assets, contents, files and sessions go in multi-row `INSERT`s. Only a
/// new asset that may fail on its own (an alias, a collection) is written
/// at once, in a savepoint; no session is read back.
async fn create_uploads_together<B: Backend>(
    c: &mut ConnOf<B>,
    items: &[NewUpload],
) -> Result<Vec<Result<UploadSession>>> {
    let out = create_sessions::<B>(c, items).await?;
    // The new assets' index rows, together (those of refused items are gone).
    let created: Vec<&str> = (items.iter().zip(&out))
        .filter(|(item, made)| matches!(item.target, UploadTarget::NewAsset(_)) && made.is_ok())
        .filter_map(|(_, made)| made.as_ref().ok().map(|s| s.asset_id.as_str()))
        .collect();
    super::search::reindex_many(c, &created).await?;
    Ok(out)
}

/// [`create_uploads_together`] without the new assets' search index rows:
/// for a caller that publishes the version in the same transaction, which
/// writes them then (`single_upload`).
pub(super) async fn create_sessions<B: Backend>(
    c: &mut ConnOf<B>,
    items: &[NewUpload],
) -> Result<Vec<Result<UploadSession>>> {
    // Owner -> its own allocation id (None: it has none).
    let mut owners: Vec<((OwnerType, String), Option<String>)> = Vec::new();
    let mut targets = Vec::with_capacity(items.len());
    for item in items {
        targets.push(batch_target(&mut *c, item, &mut owners).await);
    }
    let wanted: Vec<StoredFileKey> = (items.iter().zip(&targets))
        .filter_map(|(item, t)| {
            t.as_ref()
                .ok()
                .map(|t| dedup_keys(&t.charged.owner, &item.files))
        })
        .flatten()
        .collect();
    let mut found = c.stored_files(&wanted).await?.into_iter();
    // Allocations as read, plus what earlier items of the batch reserve.
    let mut allocations: std::collections::HashMap<String, Allocation> = Default::default();
    let mut out = Vec::with_capacity(items.len());
    let mut rows: Vec<SessionRows> = Vec::new();
    let mut assets: Vec<NewAssetRow> = Vec::new();
    for (item, target) in items.iter().zip(targets) {
        let planned = match target {
            Ok(target) => {
                // This item's share of the lookup, taken whatever happens next.
                let found: Vec<_> = found.by_ref().take(dedup_count(&item.files)).collect();
                plan_session::<B>(&mut *c, item, target, found, &mut allocations, &mut assets).await
            }
            Err(e) => Err(e),
        };
        match planned {
            Ok(r) => {
                out.push(Ok(r.session.clone()));
                rows.push(r);
            }
            Err(e) => out.push(Err(e)),
        }
    }
    insert_asset_rows(&mut *c, &assets).await?;
    insert_session_rows(&mut *c, &rows).await?;
    Ok(out)
}

/// Where an item of [`create_uploads_together`] goes, read before anything
/// is written: its asset (a new one's row decided, not yet written) and the
/// allocations it is charged to.
struct BatchTarget<'a> {
    asset_id: String,
    new_asset: Option<NewAssetRow<'a>>,
    charged: Charged,
}

/// [`BatchTarget`] of one item (reads only: a failure fails the item alone).
async fn batch_target<'a, C: Dialect>(
    c: &mut C,
    item: &'a NewUpload,
    owners: &mut Vec<((OwnerType, String), Option<String>)>,
) -> Result<BatchTarget<'a>> {
    let asset = match &item.target {
        UploadTarget::Existing(id) => {
            return Ok(BatchTarget {
                asset_id: id.clone(),
                new_asset: None,
                charged: lock_asset_allocations(c, id).await?,
            })
        }
        UploadTarget::NewAsset(asset) => asset,
    };
    let allocation_id = charged_allocation(c, asset).await?;
    let key = (asset.owner_type, asset.owner_id.clone());
    let own = match owners.iter().find(|(k, _)| *k == key) {
        Some((_, own)) => own.clone(),
        None => {
            let own = load_allocation(c, asset.owner_type, &asset.owner_id)
                .await?
                .map(|a| a.allocation_id);
            owners.push((key, own.clone()));
            own
        }
    };
    let Some(own) = own else {
        return Err(not_found(format!(
            "allocation of {} {}",
            asset.owner_type, asset.owner_id
        )));
    };
    let row = NewAssetRow {
        id: new_id(),
        at: now(),
        asset,
        allocation_id,
    };
    Ok(BatchTarget {
        asset_id: row.id.clone(),
        charged: Charged {
            owner: OwnerRow {
                owner_type: asset.owner_type,
                owner_id: asset.owner_id.clone(),
            },
            allocation_id: row.allocation_id.clone().unwrap_or(own),
        },
        new_asset: Some(row),
    })
}

/// One item of [`create_uploads_together`]: its quota and file limit
/// checked, its session's rows decided and its new asset written (one that
/// may fail, in a savepoint) or added to `assets` (written with the batch's
/// others); its reservation then counted in `allocations`.
async fn plan_session<'a, B: Backend>(
    c: &mut ConnOf<B>,
    item: &NewUpload,
    target: BatchTarget<'a>,
    found: Vec<Option<super::BlobLocation>>,
    allocations: &mut std::collections::HashMap<String, Allocation>,
    assets: &mut Vec<NewAssetRow<'a>>,
) -> Result<SessionRows> {
    let allocation = match allocations.get(&target.charged.allocation_id) {
        Some(a) => a.clone(),
        None => allocation_by_id(c, &target.charged.allocation_id).await?,
    };
    let rows = session_rows(
        target.asset_id,
        &allocation,
        &item.user_id,
        item.chunk_size,
        &item.files,
        item.content_id.clone(),
        &mut found.into_iter(),
    )?;
    match target.new_asset {
        Some(asset) if asset.may_fail() => {
            let mut savepoint = sqlx::Connection::begin(&mut *c).await?;
            let inserted = insert_asset_row(&mut *savepoint, &asset).await;
            settle(savepoint, inserted.is_ok()).await?;
            inserted?;
        }
        Some(asset) => assets.push(asset),
        None => {}
    }
    // What the contents row's triggers will add once written.
    let mut after = allocation;
    after.reserved_bytes = after.reserved_bytes.saturating_add(rows.total);
    after.file_count = after
        .file_count
        .saturating_add(rows.file_specs.len() as u64);
    allocations.insert(target.charged.allocation_id, after);
    Ok(rows)
}

/// The dedup lookups of a session's files: those with a checksum, in file
/// order ([`session_rows`] takes the answers in that order).
fn dedup_keys(owner: &OwnerRow, files: &[UploadFileSpec]) -> Vec<StoredFileKey> {
    files
        .iter()
        .filter_map(|f| {
            f.checksum.as_ref().map(|sum| StoredFileKey {
                owner_type: owner.owner_type,
                owner_id: owner.owner_id.clone(),
                size: f.size,
                checksum: sum.clone(),
            })
        })
        .collect()
}

/// How many dedup lookups [`dedup_keys`] makes for these files.
fn dedup_count(files: &[UploadFileSpec]) -> usize {
    files.iter().filter(|f| f.checksum.is_some()).count()
}

/// The rows of a new session on `asset_id` (charged to `allocation`): its
/// quota and file limit checked, and each file's bytes found already stored
/// by the owner or not (`found`: the answers of the lookups [`dedup_keys`]
/// made, in order); the new version's id is `content_id` when the caller
/// chose it. Nothing is written.
fn session_rows(
    asset_id: String,
    allocation: &Allocation,
    user_id: &str,
    chunk_size: u64,
    file_specs: &[UploadFileSpec],
    content_id: Option<String>,
    found: &mut impl Iterator<Item = Option<super::BlobLocation>>,
) -> Result<SessionRows> {
    let total: u64 = file_specs.iter().map(|f| f.size).sum();
    rules::check_quota(allocation, total, false)?;
    rules::check_file_limit(allocation, file_specs.len() as u64)?;
    let mut files = Vec::with_capacity(file_specs.len());
    let mut states = Vec::with_capacity(file_specs.len());
    for (i, f) in (0u32..).zip(file_specs) {
        let stored = match &f.checksum {
            Some(_) => found.next().flatten(),
            None => None,
        };
        let (pointer, checksum) = rules::dedup_pointer(f.checksum.as_deref(), stored);
        states.push(rules::upload_file_state(
            i,
            f.name.clone(),
            f.size,
            chunk_size,
            pointer.is_some(),
        ));
        files.push((checksum, pointer));
    }
    Ok(SessionRows {
        session: UploadSession {
            upload_id: new_id(),
            asset_id,
            content_id: content_id.unwrap_or_else(new_id),
            chunk_size,
            status: UploadStatus::Open,
            files: states,
            created_at: now(),
        },
        user_id: user_id.to_string(),
        total,
        files,
        file_specs: file_specs.to_vec(),
    })
}

/// The contents, content files and upload rows of planned sessions, a few
/// multi-row `INSERT`s for the lot ([`insert_rows`], parents first) — one
/// row each for a lone session.
async fn insert_session_rows<C: Dialect>(c: &mut C, rows: &[SessionRows]) -> Result<()> {
    let (mut contents, mut files, mut uploads) = (Vec::new(), Vec::new(), Vec::new());
    for r in rows {
        let s = &r.session;
        contents.extend(args![
            &s.content_id,
            &s.asset_id,
            r.total,
            s.chunk_size,
            s.created_at,
            r.files.len() as u64,
            "pending",
        ]);
        for ((i, (checksum, pointer)), spec) in (0u32..).zip(&r.files).zip(&r.file_specs) {
            files.extend(args![
                &s.content_id,
                i,
                &spec.name,
                spec.size,
                checksum.clone(),
                pointer.as_ref().map(|p| p.content_id.clone()),
                pointer.as_ref().map(|p| p.file_index),
                pointer.as_ref().map(|p| p.chunk_size),
            ]);
        }
        uploads.extend(args![
            &s.upload_id,
            &s.asset_id,
            &s.content_id,
            &r.user_id,
            s.chunk_size,
            s.created_at,
            s.created_at, // last_active_at
            "open",
        ]);
    }
    insert_rows(
        c,
        "contents",
        "id, asset_id, total_bytes, chunk_size, created_at, file_count, status",
        7,
        contents,
        "",
    )
    .await?;
    insert_rows(
        c,
        "content_files",
        "content_id, file_index, name, size, checksum, blob_content_id, blob_file_index,
         blob_chunk_size",
        8,
        files,
        "",
    )
    .await?;
    insert_rows(
        c,
        "uploads",
        "id, asset_id, content_id, user_id, chunk_size, created_at, last_active_at, status",
        8,
        uploads,
        "",
    )
    .await
}

/// An open session's state, its row locked with `lock`; `NotFound` /
/// `Invalid` otherwise.
async fn open_upload<C: Dialect>(c: &mut C, upload_id: &str, lock: &str) -> Result<UploadStateRow> {
    let row: UploadStateRow = c
        .fetch_optional(
            &format!("SELECT status, content_id FROM uploads WHERE id = $1{lock}"),
            args![upload_id],
        )
        .await?
        .ok_or_else(|| not_found(format!("upload {upload_id}")))?;
    rules::require_open(upload_id, row.status)?;
    Ok(row)
}

/// Lock the allocations of an upload's asset (lock order 1, taken before the
/// upload row; see [`lock_asset_allocations`]); answers the asset's id too.
async fn lock_upload_allocations<C: Dialect>(
    c: &mut C,
    upload_id: &str,
) -> Result<(String, Charged)> {
    let asset_id: Option<(String,)> = c
        .fetch_optional(
            "SELECT asset_id FROM uploads WHERE id = $1",
            args![upload_id],
        )
        .await?;
    let (asset_id,) = asset_id.ok_or_else(|| not_found(format!("upload {upload_id}")))?;
    let charged = lock_asset_allocations(c, &asset_id).await?;
    Ok((asset_id, charged))
}

const CHUNK_SQL: &str =
    "SELECT size, hash FROM upload_chunks WHERE upload_id = $1 AND file_index = $2 AND chunk_index = $3";

async fn insert_chunk<C: Dialect>(
    c: &mut C,
    upload_id: &str,
    file_index: u32,
    chunk_index: u64,
    chunk: ChunkRecord,
) -> Result<ChunkRecord> {
    // FOR SHARE: chunks go in parallel, completion (FOR UPDATE) waits for them.
    open_upload(c, upload_id, C::FOR_SHARE).await?;
    record_chunk_row(c, upload_id, file_index, chunk_index, chunk).await
}

/// Record a chunk of an open session (unless recorded already); answers the
/// recorded one.
async fn record_chunk_row<C: Dialect>(
    c: &mut C,
    upload_id: &str,
    file_index: u32,
    chunk_index: u64,
    chunk: ChunkRecord,
) -> Result<ChunkRecord> {
    c.execute(
        "INSERT INTO upload_chunks (upload_id, file_index, chunk_index, size, hash)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        args![upload_id, file_index, chunk_index, chunk.size, chunk.hash],
    )
    .await?;
    let row: ChunkRow = c
        .fetch_one(CHUNK_SQL, args![upload_id, file_index, chunk_index])
        .await?;
    row.record()
}

pub(super) async fn publish_upload<C: Dialect>(
    c: &mut C,
    upload_id: &str,
    checksums: &[String],
) -> Result<ContentVersion> {
    let (asset_id, charged) = lock_upload_allocations(c, upload_id).await?;
    let open = open_upload(c, upload_id, C::FOR_UPDATE).await?;
    publish_locked(
        c,
        upload_id,
        &asset_id,
        &open.content_id,
        &charged,
        checksums,
    )
    .await
}

/// Complete an open session whose allocations and row this transaction
/// holds locked.
async fn publish_locked<C: Dialect>(
    c: &mut C,
    upload_id: &str,
    asset_id: &str,
    content_id: &str,
    charged: &Charged,
    checksums: &[String],
) -> Result<ContentVersion> {
    let sizes: Vec<(i64,)> = c
        .fetch_all(
            "SELECT size FROM content_files WHERE content_id = $1 ORDER BY file_index",
            args![content_id],
        )
        .await?;
    rules::require_checksum_per_file(checksums.len(), sizes.len())?;
    let allocation = allocation_by_id(c, &charged.allocation_id).await?;
    // The session's own bytes are already part of `reserved`.
    let mut requested = 0u64;
    for (size,) in sizes {
        requested += rules::unsigned::<u64>("size", size)?;
    }
    rules::check_quota(&allocation, requested, true)?;
    c.set_checksums(content_id, checksums).await?;
    let completed = now();
    c.execute(
        "UPDATE contents SET status = 'complete', completed_at = $1 WHERE id = $2",
        args![completed, content_id],
    )
    .await?;
    c.execute(
        "UPDATE uploads SET status = 'complete' WHERE id = $1",
        args![upload_id],
    )
    .await?;
    c.execute(
        "UPDATE assets SET updated_at = $1 WHERE id = $2",
        args![completed, asset_id],
    )
    .await?;
    super::search::reindex(c, asset_id).await?;
    let content = content_by_id(c, content_id).await?;
    Ok(content
        .ok_or_else(|| not_found(format!("content {content_id}")))?
        .version)
}

/// Record the lone chunk of a small session and complete it: one item of
/// [`MetadataStore::finish_small`]. The allocations and the session are
/// locked first (lock order), once for both steps.
pub(super) async fn finish_small_item<C: Dialect>(
    c: &mut C,
    item: &SmallFinish,
) -> Result<ContentVersion> {
    let upload_id = item.upload_id.as_str();
    let (asset_id, charged) = lock_upload_allocations(c, upload_id).await?;
    let open = open_upload(c, upload_id, C::FOR_UPDATE).await?;
    let recorded = record_chunk_row(c, upload_id, 0, 0, item.chunk.clone()).await?;
    let sum = rules::small_file_checksum(item, &recorded)?;
    publish_locked(c, upload_id, &asset_id, &open.content_id, &charged, &[sum]).await
}

/// A session of a [`finish_small_together`] batch, as the batch reads it.
#[derive(sqlx::FromRow)]
struct SmallSessionRow {
    id: String,
    status: UploadStatus,
    content_id: String,
    asset_id: String,
    /// `None` when the asset or its owner's allocation is missing.
    charged_allocation_id: Option<String>,
    file_count: i64,
    total_bytes: i64,
    /// Files that point at another version's bytes (deduplicated).
    pointers: i64,
    /// The chunk recorded already, if any (`NULL`: none).
    chunk_hash: Option<String>,
}

/// [`MetadataStore::finish_small`] of a whole batch in one write
/// transaction with a few multi-row statements (the sessions, chunks,
/// checksums and state changes of every item together) instead of some
/// twenty statements per item. Answers `None`, having written nothing, when
/// an item needs a decision the per-item path makes (a quota check that
/// fails, a missing allocation, a session of several files): the caller then
/// runs the batch item by item. Takes no row locks: the caller holds them
/// ([`lock_for_finish`]).
pub(super) async fn finish_small_together<C: Dialect>(
    c: &mut C,
    items: &[SmallFinish],
) -> Result<Option<Vec<Result<ContentVersion>>>> {
    let mut ids: Vec<String> = items.iter().map(|i| i.upload_id.clone()).collect();
    ids.sort();
    ids.dedup();
    let rows: Vec<SmallSessionRow> = c
        .fetch_all(
            &format!(
                "SELECT u.id, u.status, u.content_id, u.asset_id,
                        COALESCE(a.allocation_id, o.id) AS charged_allocation_id,
                        c.file_count, c.total_bytes,
                        (SELECT COUNT(*) FROM content_files f
                          WHERE f.content_id = u.content_id AND f.blob_content_id IS NOT NULL)
                          AS pointers,
                        (SELECT k.hash FROM upload_chunks k
                          WHERE k.upload_id = u.id AND k.file_index = 0 AND k.chunk_index = 0)
                          AS chunk_hash
                 FROM uploads u
                      JOIN contents c ON c.id = u.content_id
                      LEFT JOIN assets a ON a.id = u.asset_id
                      LEFT JOIN allocations o ON o.owner_type = a.owner_type AND o.owner_id = a.owner_id
                 WHERE u.id IN ({})",
                Marks::of::<C>().list(ids.len())
            ),
            ids.iter().map(|id| Arg::from(id.as_str())).collect(),
        )
        .await?;
    let sessions: std::collections::HashMap<&str, &SmallSessionRow> =
        rows.iter().map(|r| (r.id.as_str(), r)).collect();
    // Sessions this batch completes: listed again, they are no longer open.
    let mut completing: std::collections::HashSet<&str> = Default::default();
    // The allocations charged, each checked once: completing a session moves
    // its bytes from reserved to used, so every item sees the same sum.
    let mut charged: Vec<String> = rows
        .iter()
        .filter_map(|r| r.charged_allocation_id.clone())
        .collect();
    charged.sort();
    charged.dedup();
    let allocations: Vec<AllocationRow> = if charged.is_empty() {
        Vec::new()
    } else {
        c.fetch_all(
            &format!(
                "SELECT id, quota_bytes, used_bytes, reserved_bytes, file_count, max_files
                 FROM allocations WHERE id IN ({})",
                Marks::of::<C>().list(charged.len())
            ),
            charged.iter().map(|id| Arg::from(id.as_str())).collect(),
        )
        .await?
    };
    let allocations: std::collections::HashMap<String, Allocation> = allocations
        .into_iter()
        .map(|row| row.into_api().map(|a| (a.allocation_id.clone(), a)))
        .collect::<Result<_>>()?;
    // Decide every item before writing anything.
    enum Plan<'a> {
        Refused(StoreError),
        Publish(&'a SmallSessionRow),
    }
    let mut plans = Vec::with_capacity(items.len());
    for item in items {
        let Some(row) = sessions.get(item.upload_id.as_str()).copied() else {
            plans.push(Plan::Refused(not_found(format!(
                "upload {}",
                item.upload_id
            ))));
            continue;
        };
        let Some(allocation) = row
            .charged_allocation_id
            .as_ref()
            .and_then(|id| allocations.get(id))
        else {
            return Ok(None);
        };
        let status = if completing.contains(row.id.as_str()) {
            UploadStatus::Complete
        } else {
            row.status
        };
        if let Err(e) = rules::require_open(&item.upload_id, status) {
            plans.push(Plan::Refused(e));
            continue;
        }
        if row.file_count != 1 || row.pointers != 0 {
            return Ok(None); // not one file of its own bytes
        }
        let size = rules::unsigned::<u64>("total_bytes", row.total_bytes)?;
        if rules::check_quota(allocation, size, true).is_err() {
            return Ok(None);
        }
        let recorded = match &row.chunk_hash {
            Some(hash) => ChunkRecord {
                size: item.chunk.size,
                hash: hash.clone(),
            },
            None => item.chunk.clone(),
        };
        match rules::small_file_checksum(item, &recorded) {
            Ok(_) => {
                completing.insert(row.id.as_str());
                plans.push(Plan::Publish(row));
            }
            Err(e) => plans.push(Plan::Refused(e)),
        }
    }
    let publish: Vec<(&SmallFinish, &SmallSessionRow)> = items
        .iter()
        .zip(&plans)
        .filter_map(|(item, plan)| match plan {
            Plan::Publish(row) => Some((item, *row)),
            Plan::Refused(_) => None,
        })
        .collect();
    let mut versions: std::collections::HashMap<String, ContentVersion> = Default::default();
    if !publish.is_empty() {
        publish_small_rows(c, &publish).await?;
        for record in contents_by_ids(c, publish.iter().map(|(_, r)| r.content_id.as_str())).await?
        {
            versions.insert(record.version.content_id.clone(), record.version);
        }
    }
    Ok(Some(
        plans
            .into_iter()
            .map(|plan| match plan {
                Plan::Refused(e) => Err(e),
                Plan::Publish(row) => versions
                    .get(&row.content_id)
                    .cloned()
                    .ok_or_else(|| not_found(format!("content {}", row.content_id))),
            })
            .collect(),
    ))
}

/// Items of one statement of [`publish_small_rows`] (at most five values each).
const ROWS_PER_STATEMENT: usize = 100;

/// Record the lone chunk of each session, set its file's checksum and
/// complete it: a few multi-row statements for the batch (the sessions are
/// open, distinct, and passed every check).
async fn publish_small_rows<C: Dialect>(
    c: &mut C,
    publish: &[(&SmallFinish, &SmallSessionRow)],
) -> Result<()> {
    let completed = now();
    for part in publish.chunks(ROWS_PER_STATEMENT) {
        let n = part.len();
        let mut chunks = Vec::with_capacity(5 * n);
        for (item, _) in part {
            chunks.extend(args![
                &item.upload_id,
                0u32,
                0u32,
                item.chunk.size,
                &item.chunk.hash
            ]);
        }
        insert_rows(
            c,
            "upload_chunks",
            "upload_id, file_index, chunk_index, size, hash",
            5,
            chunks,
            " ON CONFLICT DO NOTHING",
        )
        .await?;
        // One checksum per content: CASE content_id WHEN … THEN … END.
        let mut marks = Marks::of::<C>();
        let whens = (0..n)
            .map(|_| format!("WHEN {} THEN {}", marks.one(), marks.one()))
            .collect::<Vec<_>>()
            .join(" ");
        let content_marks = marks.list(n);
        let mut sum_args = Vec::with_capacity(3 * n);
        for (item, row) in part {
            sum_args.extend(args![
                &row.content_id,
                format!("blake3:{}", item.chunk.hash)
            ]);
        }
        sum_args.extend(part.iter().map(|(_, row)| Arg::from(&row.content_id)));
        c.execute(
            &format!(
                "UPDATE content_files SET checksum = CASE content_id {whens} END
                 WHERE file_index = 0 AND content_id IN ({content_marks})"
            ),
            sum_args,
        )
        .await?;
        // The completion time, then the ids.
        let with_time = |ids: Vec<&str>| {
            let mut a = vec![Arg::from(completed)];
            a.extend(ids.into_iter().map(Arg::from));
            a
        };
        let mut marks = Marks::of::<C>();
        c.execute(
            &format!(
                "UPDATE contents SET status = 'complete', completed_at = {} WHERE id IN ({})",
                marks.one(),
                marks.list(n)
            ),
            with_time(part.iter().map(|(_, r)| r.content_id.as_str()).collect()),
        )
        .await?;
        c.execute(
            &format!(
                "UPDATE uploads SET status = 'complete' WHERE id IN ({})",
                Marks::of::<C>().list(n)
            ),
            part.iter().map(|(_, r)| Arg::from(r.id.as_str())).collect(),
        )
        .await?;
        let mut assets: Vec<&str> = part.iter().map(|(_, r)| r.asset_id.as_str()).collect();
        assets.sort_unstable();
        assets.dedup();
        let mut marks = Marks::of::<C>();
        c.execute(
            &format!(
                "UPDATE assets SET updated_at = {} WHERE id IN ({})",
                marks.one(),
                marks.list(assets.len())
            ),
            with_time(assets.clone()),
        )
        .await?;
        super::search::reindex_many(c, &assets).await?;
    }
    Ok(())
}

/// The content versions with these ids (two statements per
/// [`IDS_PER_SELECT`] ids), in no particular order.
async fn contents_by_ids<'a, C: Dialect>(
    c: &mut C,
    ids: impl Iterator<Item = &'a str>,
) -> Result<Vec<ContentRecord>> {
    let ids: Vec<&str> = ids.collect();
    let mut out = Vec::with_capacity(ids.len());
    for part in ids.chunks(IDS_PER_SELECT) {
        let id_args = || part.iter().map(|id| Arg::from(*id)).collect::<Vec<_>>();
        let rows: Vec<ContentRow> = c
            .fetch_all(
                &format!(
                    "SELECT {CONTENT_COLUMNS} FROM contents WHERE id IN ({})",
                    Marks::of::<C>().list(part.len())
                ),
                id_args(),
            )
            .await?;
        let mut files_of = files_of_contents(c, id_args()).await?;
        for row in rows {
            let files = files_of.remove(&row.id).unwrap_or_default();
            out.push(content_record(row, &files)?);
        }
    }
    Ok(out)
}

/// Of `candidates`, the content ids whose blobs nothing uses any more.
async fn unreferenced<C: Dialect>(c: &mut C, mut candidates: Vec<String>) -> Result<Vec<String>> {
    candidates.sort();
    candidates.dedup();
    c.unreferenced(candidates).await
}

async fn delete_asset_in<C: Dialect>(c: &mut C, asset_id: &str) -> Result<Vec<String>> {
    // Serialised with dedup lookups of the same owner (create_upload) and
    // the quota checks of the allocation the usage triggers give back to.
    lock_asset_allocations(c, asset_id).await?;
    // Blob candidates: the asset's own versions and whatever its files point at.
    let candidates: Vec<(String,)> = c
        .fetch_all(
            "SELECT id FROM contents WHERE asset_id = $1
             UNION
             SELECT f.blob_content_id FROM content_files f JOIN contents c ON c.id = f.content_id
             WHERE c.asset_id = $1 AND f.blob_content_id IS NOT NULL",
            args![asset_id],
        )
        .await?;
    // Foreign keys cascade to contents, files, uploads, chunks, relationships, collections links.
    let deleted = c
        .execute("DELETE FROM assets WHERE id = $1", args![asset_id])
        .await?;
    if deleted == 0 {
        return Err(not_found(format!("asset {asset_id}")));
    }
    // Decided inside the transaction: a dedup lookup cannot point at these
    // bytes afterwards, because nothing that names them is left to find.
    unreferenced(c, candidates.into_iter().map(|(id,)| id).collect()).await
}

async fn delete_content_in<C: Dialect>(
    c: &mut C,
    asset_id: &str,
    content_id: &str,
) -> Result<Vec<String>> {
    // Serialised with dedup lookups of the same owner (create_upload) and
    // the quota checks of the allocation the usage triggers give back to.
    lock_asset_allocations(c, asset_id).await?;
    let versions: Vec<(String,)> = c
        .fetch_all(
            "SELECT id FROM contents WHERE asset_id = $1 AND status = 'complete'",
            args![asset_id],
        )
        .await?;
    if !versions.iter().any(|(id,)| id == content_id) {
        return Err(not_found(format!(
            "no complete content version {content_id} for asset {asset_id}"
        )));
    }
    if versions.len() == 1 {
        return Err(StoreError::Conflict(format!(
            "content {content_id} is the only version of asset {asset_id}; delete the asset instead"
        )));
    }
    let pointed_at: Vec<(String,)> = c
        .fetch_all(
            "SELECT blob_content_id FROM content_files
             WHERE content_id = $1 AND blob_content_id IS NOT NULL",
            args![content_id],
        )
        .await?;
    let mut candidates = vec![content_id.to_string()];
    candidates.extend(pointed_at.into_iter().map(|(id,)| id));
    // Leaving the counted states first lets the usage triggers subtract its
    // bytes and files; the cascade then removes its files and closed sessions.
    c.execute(
        "UPDATE contents SET status = 'aborted' WHERE id = $1",
        args![content_id],
    )
    .await?;
    c.execute("DELETE FROM contents WHERE id = $1", args![content_id])
        .await?;
    c.execute(
        "UPDATE assets SET updated_at = $2 WHERE id = $1",
        args![asset_id, now()],
    )
    .await?;
    // The file names searched are the latest version's.
    super::search::reindex(c, asset_id).await?;
    unreferenced(c, candidates).await
}

async fn abort_upload_in<C: Dialect>(
    c: &mut C,
    upload_id: &str,
    reason: Option<CloseReason>,
) -> Result<Vec<String>> {
    lock_upload_allocations(c, upload_id).await?;
    let state = open_upload(c, upload_id, C::FOR_UPDATE).await?;
    close_upload(c, upload_id, &state, reason).await?;
    let pointed_at: Vec<(String,)> = c
        .fetch_all(
            "SELECT blob_content_id FROM content_files
             WHERE content_id = $1 AND blob_content_id IS NOT NULL",
            args![&state.content_id],
        )
        .await?;
    let mut candidates: Vec<String> = pointed_at.into_iter().map(|(id,)| id).collect();
    candidates.push(state.content_id);
    unreferenced(c, candidates).await
}

/// Mark a locked open session and its content version aborted (the usage
/// triggers release the reservation) and forget its received chunks.
async fn close_upload<C: Dialect>(
    c: &mut C,
    upload_id: &str,
    state: &UploadStateRow,
    reason: Option<CloseReason>,
) -> Result<()> {
    c.execute(
        "UPDATE uploads SET status = 'aborted', closed_reason = $2 WHERE id = $1",
        args![upload_id, reason.map(|r| r.as_str().to_string())],
    )
    .await?;
    c.execute(
        "UPDATE contents SET status = 'aborted' WHERE id = $1",
        args![&state.content_id],
    )
    .await?;
    c.execute(
        "DELETE FROM upload_chunks WHERE upload_id = $1",
        args![upload_id],
    )
    .await?;
    Ok(())
}

/// Abort a session that has been idle since before `idle_before` (checked
/// again under its lock: a request that arrived meanwhile keeps it open),
/// then remove its asset when the session's user created it and nothing
/// else lives in it. Its chunks are left to the garbage collector.
async fn expire_upload_in<C: Dialect>(
    c: &mut C,
    upload_id: &str,
    idle_before: DateTime<Utc>,
) -> Result<Option<ExpiredUpload>> {
    // Gone already (another replica expired it along with its asset).
    match lock_upload_allocations(c, upload_id).await {
        Err(StoreError::NotFound(_)) => return Ok(None),
        locked => locked?,
    };
    let row: Option<IdleRow> = c
        .fetch_optional(
            &format!(
                "SELECT status, content_id, asset_id, user_id, last_active_at FROM uploads
                 WHERE id = $1{}",
                C::FOR_UPDATE
            ),
            args![upload_id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    if row.status != UploadStatus::Open || row.last_active_at >= idle_before {
        return Ok(None);
    }
    let state = UploadStateRow {
        status: row.status,
        content_id: row.content_id,
    };
    close_upload(c, upload_id, &state, Some(CloseReason::Expired)).await?;
    let asset_deleted = remove_if_empty(c, &row.asset_id, &row.user_id).await?;
    Ok(Some(ExpiredUpload {
        upload_id: upload_id.to_string(),
        asset_id: row.asset_id,
        asset_deleted,
    }))
}

/// Delete an asset `user_id` created that holds no live content version (an
/// upload opened it and never published). Its blobs go to the collector.
async fn remove_if_empty<C: Dialect>(c: &mut C, asset_id: &str, user_id: &str) -> Result<bool> {
    let (empty,): (bool,) = c
        .fetch_one(
            "SELECT EXISTS (SELECT 1 FROM assets WHERE id = $1 AND created_by = $2)
                    AND NOT EXISTS (SELECT 1 FROM contents WHERE asset_id = $1 AND status != 'aborted')",
            args![asset_id, user_id],
        )
        .await?;
    if empty {
        delete_asset_in(c, asset_id).await?;
    }
    Ok(empty)
}

async fn update_asset_in<C: Dialect>(
    c: &mut C,
    asset_id: &str,
    patch: UpdateAsset,
) -> Result<Asset> {
    // The row lock makes the read-merge-write of `metadata` atomic across replicas.
    let current = asset_by_id(c, asset_id, true)
        .await?
        .ok_or_else(|| not_found(format!("asset {asset_id}")))?;
    let metadata = rules::merge_metadata(current.metadata, patch.metadata.unwrap_or_default());
    rules::check_merged_metadata(&metadata)?;
    let updated = c
        .execute(
            "UPDATE assets SET title = $1, description = $2, alias = $3, tags = $4, metadata = $5,
                               updated_at = $6, record_type = $8
             WHERE id = $7",
            vec![
                Arg::from(patch.title.unwrap_or(current.title)),
                Arg::from(patch.description.or(current.description)),
                Arg::from(patch.alias.clone().or(current.alias)),
                Arg::json(&patch.tags.unwrap_or(current.tags)),
                Arg::json(&metadata),
                Arg::from(now()),
                Arg::from(asset_id),
                Arg::from(patch.record_type.or(current.record_type)),
            ],
        )
        .await;
    unique(updated, || rules::alias_taken(patch.alias.as_deref()))?;
    super::search::reindex(c, asset_id).await?;
    asset_by_id(c, asset_id, false)
        .await?
        .ok_or_else(|| not_found(format!("asset {asset_id}")))
}

pub(super) async fn create_project_in<C: Dialect>(
    c: &mut C,
    name: &str,
    description: &str,
    created_by: &str,
    quota_bytes: u64,
) -> Result<String> {
    let project_id = new_id();
    let root_id = new_id();
    let created = now();
    // The root collection references the project, so the project goes first.
    c.execute(
        "INSERT INTO projects (id, name, description, root_collection_id, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        args![
            &project_id,
            name,
            description,
            &root_id,
            created_by,
            created
        ],
    )
    .await?;
    c.execute(
        "INSERT INTO collections (id, project_id, name, parent_id, created_at)
         VALUES ($1, $2, $3, NULL, $4)",
        args![&root_id, &project_id, name, created],
    )
    .await?;
    c.execute(
        "INSERT INTO memberships (project_id, user_id, role, added_at) VALUES ($1, $2, 'owner', $3)",
        args![&project_id, created_by, created],
    )
    .await?;
    insert_allocation(c, OwnerType::Project, &project_id, quota_bytes).await?;
    Ok(project_id)
}

async fn insert_allocation<C: Dialect>(
    c: &mut C,
    owner_type: OwnerType,
    owner_id: &str,
    quota_bytes: u64,
) -> Result<()> {
    c.execute(
        "INSERT INTO allocations (id, owner_type, owner_id, quota_bytes) VALUES ($1, $2, $3, $4)",
        args![new_id(), owner_type, owner_id, quota_bytes],
    )
    .await?;
    Ok(())
}

async fn create_relationship_in<C: Dialect>(
    c: &mut C,
    rel: NewRelationship,
) -> Result<Relationship> {
    let id = new_id();
    let inserted = c
        .execute(
            "INSERT INTO relationships (id, from_asset_id, to_asset_id, type, analysis_mode, qualifiers,
                                        created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                Arg::from(&id),
                Arg::from(rel.from_asset_id),
                Arg::from(rel.to_asset_id),
                Arg::from(rel.rel_type),
                Arg::from(rel.analysis_mode),
                Arg::json(&rel.qualifiers),
                Arg::from(rel.created_by),
                Arg::from(now()),
            ],
        )
        .await;
    unique(inserted, || StoreError::RelationshipExists)?;
    let row: RelationshipRow = c
        .fetch_one("SELECT * FROM relationships WHERE id = $1", args![&id])
        .await?;
    relationship(c, row).await
}

// ---------------------------------------------------------------- lists

const PROJECTS_OF_MEMBER: Select = Select {
    columns: "p.*, m.role",
    from: "projects p JOIN memberships m ON m.project_id = p.id WHERE m.user_id = $1",
    order: "p.created_at, p.id",
};

const ASSETS_OF_OWNER: Select = Select {
    columns: ASSET_COLUMNS,
    from: "assets WHERE owner_type = $1 AND owner_id = $2",
    order: "created_at, id",
};

// ---------------------------------------------------------------- the trait

/// A write transaction running `$body` on its connection `$c`, committed when
/// the body succeeds (dropped, so rolled back, when it fails).
macro_rules! in_write {
    ($store:expr, |$c:ident| $body:expr) => {{
        let mut tx = $store.write().await?;
        let $c = &mut *tx;
        let out = $body.await?;
        tx.commit().await?;
        Ok::<_, StoreError>(out)
    }};
}

/// `$body` on a pooled connection `$c`, outside a transaction (reads, and
/// writes of one statement).
macro_rules! on_conn {
    ($store:expr, |$c:ident| $body:expr) => {{
        let mut conn = $store.pool().acquire().await?;
        let $c = &mut *conn;
        $body.await
    }};
}

/// Set one limit column (`quota_bytes` or `max_files`) of an owner's
/// allocation; an owner without one is `NotFound`.
async fn set_allocation_limit<B: Backend>(
    b: &B,
    column: &'static str,
    owner_type: OwnerType,
    owner_id: &str,
    value: u64,
) -> Result<()> {
    let sql =
        format!("UPDATE allocations SET {column} = $1 WHERE owner_type = $2 AND owner_id = $3");
    let changed = on_conn!(b, |c| c.execute(&sql, args![value, owner_type, owner_id]))?;
    if changed == 0 {
        return Err(not_found(format!("allocation of {owner_type} {owner_id}")));
    }
    Ok(())
}

#[async_trait]
impl<B: Backend> MetadataStore for B {
    async fn ping(&self) -> Result<()> {
        on_conn!(self, |c| c.execute("SELECT 1", vec![]))?;
        Ok(())
    }

    async fn create_user(&self, email: &str, quota_bytes: u64) -> Result<User> {
        let user = User {
            user_id: new_id(),
            email: email.to_string(),
            created_at: now(),
        };
        in_write!(self, |c| async {
            let inserted = c
                .execute(
                    "INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)",
                    args![&user.user_id, &user.email, user.created_at],
                )
                .await;
            unique(inserted, || rules::email_taken(email))?;
            insert_allocation(c, OwnerType::User, &user.user_id, quota_bytes).await
        })?;
        Ok(user)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let sql = "SELECT id, email, created_at FROM users WHERE email = $1";
        let row: Option<UserRow> = find(self, sql, args![email]).await?;
        Ok(row.map(User::from))
    }

    async fn user_by_email_or_invite(&self, email: &str, quota_bytes: u64) -> Result<User> {
        if let Some(user) = self.user_by_email(email).await? {
            return Ok(user);
        }
        let id = new_id();
        in_write!(self, |c| async {
            // A concurrent invitation (or account) for the same email wins
            // the race and is answered below.
            let inserted = c
                .execute(
                    "INSERT INTO users (id, email, created_at, invited) VALUES ($1, $2, $3, TRUE)
                     ON CONFLICT (email) DO NOTHING",
                    args![&id, email, now()],
                )
                .await?;
            if inserted > 0 {
                insert_allocation(c, OwnerType::User, &id, quota_bytes).await?;
            }
            Ok::<_, StoreError>(())
        })?;
        self.user_by_email(email)
            .await?
            .ok_or_else(|| not_found(format!("user {email}")))
    }

    async fn activate_invited_user(&self, email: &str) -> Result<Option<User>> {
        let changed = on_conn!(self, |c| c.execute(
            "UPDATE users SET invited = FALSE WHERE email = $1 AND invited",
            args![email],
        ))?;
        if changed == 0 {
            return Ok(None);
        }
        self.user_by_email(email).await
    }

    async fn create_token(&self, token: NewToken) -> Result<String> {
        let id = new_id();
        on_conn!(self, |c| c.execute(
            "INSERT INTO tokens (id, user_id, name, token_hash, scopes, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            args![
                &id,
                token.user_id,
                token.name,
                token.token_hash,
                rules::join_scopes(&token.scopes),
                now(),
                token.expires_at,
            ],
        ))?;
        Ok(id)
    }

    async fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>> {
        let sql = "SELECT t.id, t.user_id, u.email, t.scopes, t.expires_at
                   FROM tokens t JOIN users u ON u.id = t.user_id
                   WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL";
        let row: Option<TokenRow> = find(self, sql, args![token_hash]).await?;
        Ok(row.map(|r| TokenRecord {
            token_id: r.id,
            user_id: r.user_id,
            email: r.email,
            scopes: rules::split_scopes(&r.scopes),
            expires_at: r.expires_at,
        }))
    }

    async fn allocation(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
    ) -> Result<Option<Allocation>> {
        on_conn!(self, |c| load_allocation(c, owner_type, owner_id))
    }

    async fn allocation_owner(&self, allocation_id: &str) -> Result<Option<(OwnerType, String)>> {
        on_conn!(self, |c| async {
            let row: Option<OwnerRow> = c
                .fetch_optional(
                    "SELECT owner_type, owner_id FROM allocations WHERE id = $1",
                    args![allocation_id],
                )
                .await?;
            Ok(row.map(|r| (r.owner_type, r.owner_id)))
        })
    }

    async fn set_quota(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
        quota_bytes: u64,
    ) -> Result<()> {
        set_allocation_limit(self, "quota_bytes", owner_type, owner_id, quota_bytes).await
    }

    async fn set_max_files(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
        max_files: u64,
    ) -> Result<()> {
        set_allocation_limit(self, "max_files", owner_type, owner_id, max_files).await
    }

    async fn create_project(
        &self,
        name: &str,
        description: &str,
        created_by: &str,
        quota_bytes: u64,
    ) -> Result<Project> {
        let project_id: String = in_write!(self, |c| create_project_in(
            c,
            name,
            description,
            created_by,
            quota_bytes
        ))?;
        self.project_for_member(&project_id, created_by)
            .await?
            .ok_or_else(|| not_found(format!("project {project_id}")))
    }

    async fn project_for_member(&self, project_id: &str, user_id: &str) -> Result<Option<Project>> {
        on_conn!(self, |c| async {
            let row: Option<ProjectRow> = c
                .fetch_optional(
                    "SELECT p.*, m.role FROM projects p JOIN memberships m ON m.project_id = p.id
                     WHERE p.id = $1 AND m.user_id = $2",
                    args![project_id, user_id],
                )
                .await?;
            match row {
                Some(row) => Ok(Some(project(c, row).await?)),
                None => Ok(None),
            }
        })
    }

    async fn project_exists(&self, project_id: &str) -> Result<bool> {
        let (exists,): (bool,) = on_conn!(self, |c| c.fetch_one(
            "SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)",
            args![project_id],
        ))?;
        Ok(exists)
    }

    async fn list_projects(&self, user_id: &str, window: Window) -> Result<(Vec<Project>, u64)> {
        list(self, PROJECTS_OF_MEMBER, args![user_id], window, |c, r| {
            Box::pin(project(c, r))
        })
        .await
    }

    async fn member_role(&self, project_id: &str, user_id: &str) -> Result<Option<ProjectRole>> {
        let sql = "SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2";
        let role: Option<(ProjectRole,)> = find(self, sql, args![project_id, user_id]).await?;
        Ok(role.map(|(r,)| r))
    }

    async fn get_collection(&self, collection_id: &str) -> Result<Option<Collection>> {
        super::collections::get(self, collection_id).await
    }

    async fn list_collections(
        &self,
        project_id: &str,
        window: Window,
    ) -> Result<(Vec<Collection>, u64)> {
        super::collections::of_project(self, project_id, window).await
    }

    async fn list_collection_assets(
        &self,
        collection_id: &str,
        window: Window,
    ) -> Result<(Vec<Asset>, u64)> {
        let oldest = super::CollectionSort::OLDEST;
        super::collection_listing::page(self, collection_id, oldest, window).await
    }

    async fn collection_assets_sorted(
        &self,
        collection_id: &str,
        sort: super::CollectionSort,
        window: Window,
    ) -> Result<(Vec<Asset>, u64)> {
        super::collection_listing::page(self, collection_id, sort, window).await
    }

    // The collection tree (`collections.rs`).
    async fn create_child_collection(&self, new: super::NewCollection) -> Result<Collection> {
        super::collections::create(self, new).await
    }

    async fn collection_children(
        &self,
        parent_id: &str,
        window: Window,
    ) -> Result<(Vec<Collection>, u64)> {
        super::collections::children(self, parent_id, window).await
    }

    async fn update_collection(
        &self,
        collection_id: &str,
        name: Option<&str>,
        parent_id: Option<&str>,
    ) -> Result<Collection> {
        super::collections::update(self, collection_id, name, parent_id).await
    }

    async fn delete_collection(&self, collection_id: &str) -> Result<()> {
        super::collections::delete(self, collection_id).await
    }

    async fn move_asset_to_collection(&self, asset_id: &str, collection_id: &str) -> Result<()> {
        super::collections::move_asset(self, asset_id, collection_id).await
    }

    async fn ensure_collection_path(&self, want: super::EnsurePath) -> Result<super::Ensured> {
        super::collections::ensure_path(self, want).await
    }

    async fn create_asset(&self, new: NewAsset) -> Result<Asset> {
        in_write!(self, |c| insert_asset(c, new))
    }

    async fn get_asset(&self, asset_id: &str) -> Result<Option<Asset>> {
        on_conn!(self, |c| asset_by_id(c, asset_id, false))
    }

    async fn list_assets(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
        window: Window,
    ) -> Result<(Vec<Asset>, u64)> {
        list(
            self,
            ASSETS_OF_OWNER,
            args![owner_type, owner_id],
            window,
            |c, r| Box::pin(asset(c, r)),
        )
        .await
    }

    async fn refresh_statistics(&self) -> Result<()> {
        Backend::refresh_statistics(self).await
    }

    async fn search(
        &self,
        caller: &str,
        request: &crate::search::SearchRequest,
    ) -> Result<crate::search::SearchPage> {
        super::search::search(self, caller, request).await
    }

    async fn update_asset(&self, asset_id: &str, patch: UpdateAsset) -> Result<Asset> {
        in_write!(self, |c| update_asset_in(c, asset_id, patch))
    }

    async fn delete_asset(&self, asset_id: &str) -> Result<Vec<String>> {
        in_write!(self, |c| delete_asset_in(c, asset_id))
    }

    async fn delete_content(&self, asset_id: &str, content_id: &str) -> Result<Vec<String>> {
        in_write!(self, |c| delete_content_in(c, asset_id, content_id))
    }

    async fn list_contents(
        &self,
        asset_id: &str,
        window: Window,
    ) -> Result<(Vec<ContentVersion>, u64)> {
        let order = format!(
            "completed_at DESC, {} DESC",
            <ConnOf<B> as Dialect>::CREATION_ORDER
        );
        let select = Select {
            columns: CONTENT_COLUMNS,
            from: "contents WHERE asset_id = $1 AND status = 'complete'",
            order: &order,
        };
        list(self, select, args![asset_id], window, |c, r| {
            Box::pin(async move { Ok(content(c, r).await?.version) })
        })
        .await
    }

    async fn get_content(&self, asset_id: &str, content_id: &str) -> Result<Option<ContentRecord>> {
        let found = on_conn!(self, |c| async {
            if content_id == "latest" {
                latest_content(c, asset_id).await
            } else {
                content_by_id(c, content_id).await
            }
        })?;
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
        in_write!(self, |c| insert_upload(
            c, asset_id, user_id, chunk_size, files
        ))
    }

    async fn get_upload(&self, upload_id: &str) -> Result<Option<UploadRecord>> {
        on_conn!(self, |c| upload_by_id(c, upload_id))
    }

    async fn get_uploads(&self, upload_ids: &[String]) -> Result<Vec<Option<UploadRecord>>> {
        on_conn!(self, |c| uploads_by_ids(c, upload_ids))
    }

    async fn stores_file_of_size(
        &self,
        owner_type: OwnerType,
        owner_id: &str,
        size: u64,
    ) -> Result<bool> {
        let (hit,): (bool,) = on_conn!(self, |c| {
            c.fetch_one(
            "SELECT EXISTS (SELECT 1 FROM content_files f JOIN contents c ON c.id = f.content_id
                                 JOIN assets a ON a.id = c.asset_id
                            WHERE f.size = $1 AND c.status = 'complete'
                              AND a.owner_type = $2 AND a.owner_id = $3)",
            args![size, owner_type, owner_id],
        )
        })?;
        Ok(hit)
    }

    async fn chunk(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
    ) -> Result<Option<ChunkRecord>> {
        let at = args![upload_id, file_index, chunk_index];
        let row: Option<ChunkRow> = find(self, CHUNK_SQL, at).await?;
        row.map(ChunkRow::record).transpose()
    }

    async fn chunk_hashes(&self, upload_id: &str, file_index: u32) -> Result<Vec<(u64, String)>> {
        let rows: Vec<(i64, String)> = on_conn!(self, |c| {
            c.fetch_all(
            "SELECT chunk_index, hash FROM upload_chunks WHERE upload_id = $1 AND file_index = $2
             ORDER BY chunk_index",
            args![upload_id, file_index],
        )
        })?;
        rows.into_iter()
            .map(|(i, hash)| Ok((rules::unsigned("chunk_index", i)?, hash)))
            .collect()
    }

    async fn stored_chunk_hash(
        &self,
        content_id: &str,
        file_index: u32,
        chunk_index: u64,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = find(
            self,
            "SELECT c.hash FROM uploads u
             JOIN upload_chunks c ON c.upload_id = u.id
             WHERE u.content_id = $1 AND c.file_index = $2 AND c.chunk_index = $3
             LIMIT 1",
            args![content_id, file_index, chunk_index],
        )
        .await?;
        Ok(row.map(|(hash,)| hash))
    }

    async fn record_chunk(
        &self,
        upload_id: &str,
        file_index: u32,
        chunk_index: u64,
        chunk: ChunkRecord,
    ) -> Result<ChunkRecord> {
        in_write!(self, |c| insert_chunk(
            c,
            upload_id,
            file_index,
            chunk_index,
            chunk
        ))
    }

    async fn complete_upload(
        &self,
        upload_id: &str,
        checksums: &[String],
    ) -> Result<ContentVersion> {
        in_write!(self, |c| publish_upload(c, upload_id, checksums))
    }

    /// One write transaction (one commit) for the whole batch.
    async fn create_uploads(&self, items: Vec<NewUpload>) -> Result<Vec<Result<UploadSession>>> {
        let mut tx = self.write().await?;
        lock_for_new_sessions(&mut *tx, &items).await?;
        let out = create_uploads_together::<Self>(&mut tx, &items).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// One write transaction (one commit) for the whole batch: a few
    /// statements for all items, or, when an item needs the per-item path's
    /// decisions, a savepoint per item.
    async fn finish_small(&self, items: &[SmallFinish]) -> Result<Vec<Result<ContentVersion>>> {
        let mut tx = self.write().await?;
        lock_for_finish(&mut *tx, items).await?;
        let done = match finish_small_together(&mut *tx, items).await? {
            Some(done) => done,
            None => {
                each_atomically::<Self, _, _>(&mut *tx, items, |c, item| {
                    Box::pin(finish_small_item(c, item))
                })
                .await?
            }
        };
        tx.commit().await?;
        Ok(done)
    }

    async fn single_upload(
        &self,
        item: super::SingleUploadItem,
        stored: super::BytesStored,
    ) -> Result<super::SingleUploadDone> {
        in_write!(self, |c| super::single_upload::single_upload_in::<Self>(
            c, &item, stored
        ))
    }

    async fn single_upload_by_key(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<Option<super::SingleUploadDone>> {
        on_conn!(self, |c| super::single_upload::by_key(c, user_id, key))
    }

    async fn abort_upload(&self, upload_id: &str) -> Result<Vec<String>> {
        in_write!(self, |c| abort_upload_in(c, upload_id, None))
    }

    async fn touch_upload(&self, upload_id: &str, at: DateTime<Utc>) -> Result<()> {
        on_conn!(self, |c| c.execute(
            "UPDATE uploads SET last_active_at = $2
             WHERE id = $1 AND status = 'open' AND last_active_at < $2",
            args![upload_id, at],
        ))?;
        Ok(())
    }

    async fn idle_uploads(&self, idle_before: DateTime<Utc>, limit: u64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = on_conn!(self, |c| c.fetch_all(
            "SELECT id FROM uploads WHERE status = 'open' AND last_active_at < $1
             ORDER BY last_active_at, id LIMIT $2",
            args![idle_before, limit],
        ))?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn expire_upload(
        &self,
        upload_id: &str,
        idle_before: DateTime<Utc>,
    ) -> Result<Option<ExpiredUpload>> {
        in_write!(self, |c| expire_upload_in(c, upload_id, idle_before))
    }

    async fn abort_member_uploads(&self, project_id: &str, user_id: &str) -> Result<u64> {
        let open: Vec<(String,)> = on_conn!(self, |c| c.fetch_all(
            "SELECT u.id FROM uploads u JOIN assets a ON a.id = u.asset_id
             WHERE u.status = 'open' AND u.user_id = $1
               AND ((a.owner_type = 'project' AND a.owner_id = $2)
                    OR a.allocation_id = (SELECT id FROM allocations
                                          WHERE owner_type = 'project' AND owner_id = $2))
             ORDER BY u.id",
            args![user_id, project_id],
        ))?;
        let mut aborted = 0;
        for (upload_id,) in open {
            // One transaction per session; one completed or aborted meanwhile
            // is no longer open and is skipped.
            let done = async {
                in_write!(self, |c| abort_upload_in(
                    c,
                    &upload_id,
                    Some(CloseReason::MemberRemoved)
                ))
            }
            .await;
            match done {
                Ok(_) => aborted += 1,
                Err(StoreError::Invalid(_) | StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(aborted)
    }

    async fn unreferenced_contents(&self, candidates: Vec<String>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        // Bounded statements: a bucket may hold millions of content ids.
        for part in candidates.chunks(500) {
            out.extend(on_conn!(self, |c| unreferenced(c, part.to_vec()))?);
        }
        Ok(out)
    }

    async fn open_upload_count(&self) -> Result<u64> {
        let (n,): (i64,) = on_conn!(self, |c| c
            .fetch_one("SELECT COUNT(*) FROM uploads WHERE status = 'open'", vec![]))?;
        rules::unsigned("count", n)
    }

    async fn create_relationship(&self, rel: NewRelationship) -> Result<Relationship> {
        in_write!(self, |c| create_relationship_in(c, rel))
    }

    async fn list_relationships(
        &self,
        asset_id: &str,
        sides: super::RelationshipSides,
        window: Window,
    ) -> Result<(Vec<Relationship>, u64)> {
        let (columns, from) = super::lineage::sides_select(sides);
        list(
            self,
            Select {
                columns,
                from,
                order: "created_at, id",
            },
            args![asset_id],
            window,
            |c, r| Box::pin(super::lineage::directed(c, r)),
        )
        .await
    }

    async fn lineage(
        &self,
        root: &str,
        direction: super::LineageDirection,
        depth: u32,
        types: &[String],
        max_edges: usize,
    ) -> Result<dataerai_proto::api::Lineage> {
        super::lineage::lineage(self, root, direction, depth, types, max_edges).await
    }

    // ------------------------------------------------------------ provenance export

    async fn asset_facts(&self, asset_ids: &[String]) -> Result<Vec<super::AssetFacts>> {
        super::provenance::asset_facts(self, asset_ids).await
    }

    async fn relationship_qualifiers(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, serde_json::Map<String, serde_json::Value>>> {
        super::provenance::relationship_qualifiers(self, ids).await
    }

    async fn visible_emails(
        &self,
        caller: &str,
        user_ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        super::provenance::visible_emails(self, caller, user_ids).await
    }

    async fn relationships_among(
        &self,
        asset_ids: &[String],
    ) -> Result<Vec<dataerai_proto::api::LineageEdge>> {
        super::provenance::relationships_among(self, asset_ids).await
    }
}
