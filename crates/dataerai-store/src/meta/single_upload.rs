//! A lone small file in one write transaction (`POST /uploads/single`): the
//! asset (or a new version), the session, the chunk and the published
//! version, plus the caller's key for it. A new asset's rows are written
//! published at once after the batch paths' reads and checks (allocation,
//! dedup lookup, quota and file limit by `session_rows`), its search index
//! rows from what the request holds; a new version of an existing asset is
//! made by the batch functions `create_sessions` and `finish_small_together`.
//! Either way quota, file limit, dedup, alias, collection and the search
//! index rows come out as a batch's, and the index is written once.
//!
//! The chunk's bytes are stored while the transaction's statements run
//! ([`BytesStored`]): the commit waits for them, so the version never names
//! bytes that are not durable, and the disk's fsyncs overlap the statements
//! instead of coming before them.

use dataerai_proto::api::{ContentFile, ContentStatus, ContentVersion, UploadSession};
use futures::future::BoxFuture;

use super::rows::OwnerRow;
use super::shared::{
    allocation_by_id, charged_allocation, content_by_id, create_sessions, dedup_keys,
    finish_small_item, finish_small_together, insert_asset_row, load_allocation,
    lock_for_new_sessions, new_id, publish_upload, session_rows, unique, Backend, ConnOf,
    NewAssetRow, SessionRows,
};
use super::sql::{args, Conn, Dialect};
use super::time::now;
use super::{ChunkRecord, NewAsset, NewUpload, SmallFinish, UploadTarget};
use crate::error::{Result, StoreError};

/// What [`MetadataStore::single_upload`](super::MetadataStore::single_upload) makes.
#[derive(Debug, Clone)]
pub struct SingleUploadItem {
    /// The caller's id for this upload, unique per user.
    pub key: String,
    /// One file of one chunk, with its checksum; `content_id` chosen by the
    /// caller, who stored the chunk under it.
    pub upload: NewUpload,
    /// The chunk, verified and stored; its hash is also the file's BLAKE3.
    pub chunk: ChunkRecord,
}

/// The chunk's bytes on their way to durable storage (verified, written,
/// fsynced, named): the transaction commits only once this answers `Ok`, and
/// makes nothing when it fails.
pub type BytesStored = BoxFuture<'static, Result<()>>;

/// The upload a [`SingleUploadItem`] made (or an earlier one with its key).
#[derive(Debug, Clone)]
pub struct SingleUploadDone {
    pub upload_id: String,
    pub version: ContentVersion,
    /// The version points at bytes the owner held already: the chunk stored
    /// under `upload.content_id` is not used.
    pub deduplicated: bool,
    /// The key was used before; nothing was made now.
    pub repeated: bool,
}

#[derive(sqlx::FromRow)]
struct KeyedUpload {
    upload_id: String,
    content_id: String,
}

/// The upload `user_id` made under `key`, if any.
pub(super) async fn by_key<C: Dialect>(
    c: &mut C,
    user_id: &str,
    key: &str,
) -> Result<Option<SingleUploadDone>> {
    let Some(row) = c
        .fetch_optional::<KeyedUpload>(
            "SELECT u.id AS upload_id, u.content_id FROM single_upload_keys k
               JOIN uploads u ON u.id = k.upload_id
             WHERE k.user_id = $1 AND k.key = $2",
            args![user_id, key],
        )
        .await?
    else {
        return Ok(None);
    };
    let record = content_by_id(c, &row.content_id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("content {}", row.content_id)))?;
    let deduplicated = record
        .locations
        .iter()
        .any(|l| l.content_id != row.content_id);
    Ok(Some(SingleUploadDone {
        upload_id: row.upload_id,
        version: record.version,
        deduplicated,
        repeated: true,
    }))
}

/// [`MetadataStore::single_upload`](super::MetadataStore::single_upload) on
/// the write transaction `c`; `stored` is awaited last, before the caller
/// commits (a repeated key does not wait for it: nothing new names the bytes).
pub(super) async fn single_upload_in<B: Backend>(
    c: &mut ConnOf<B>,
    item: &SingleUploadItem,
    stored: BytesStored,
) -> Result<SingleUploadDone> {
    let user_id = item.upload.user_id.as_str();
    if let Some(done) = by_key(&mut *c, user_id, &item.key).await? {
        return Ok(done);
    }
    let new = std::slice::from_ref(&item.upload);
    lock_for_new_sessions(&mut *c, new).await?;
    let done = match &item.upload.target {
        UploadTarget::NewAsset(asset) => new_asset_published::<B>(&mut *c, item, asset).await?,
        UploadTarget::Existing(_) => new_version_published::<B>(&mut *c, item).await?,
    };
    let inserted = c
        .execute(
            "INSERT INTO single_upload_keys (user_id, key, upload_id) VALUES ($1, $2, $3)",
            args![user_id, item.key.as_str(), done.upload_id.as_str()],
        )
        .await;
    unique(inserted, || {
        StoreError::Conflict(format!(
            "upload key {:?} is being used by another request",
            item.key
        ))
    })?;
    // Bytes durable before the version that names them is committed.
    stored.await?;
    Ok(done)
}

/// A new version of an existing asset: a session opened and completed by
/// the batch paths' functions (`create_sessions`, `finish_small_together`).
async fn new_version_published<B: Backend>(
    c: &mut ConnOf<B>,
    item: &SingleUploadItem,
) -> Result<SingleUploadDone> {
    let new = std::slice::from_ref(&item.upload);
    let session: UploadSession = create_sessions::<B>(&mut *c, new)
        .await?
        .pop()
        .unwrap_or_else(|| Err(StoreError::Invalid("no session was made".into())))?;
    let deduplicated = session.files.iter().all(|f| f.deduplicated);
    // The allocations are locked above and the session is this
    // transaction's own, so the finish needs no locks of its own.
    let version = if deduplicated {
        let sum = format!("blake3:{}", item.chunk.hash);
        publish_upload(&mut *c, &session.upload_id, &[sum]).await?
    } else {
        let finish = SmallFinish {
            upload_id: session.upload_id.clone(),
            chunk: item.chunk.clone(),
        };
        let together = finish_small_together(&mut *c, std::slice::from_ref(&finish)).await?;
        match together.and_then(|mut done| done.pop()) {
            Some(done) => done?,
            // A decision the per-item path makes (e.g. the quota at commit).
            None => finish_small_item(&mut *c, &finish).await?,
        }
    };
    Ok(SingleUploadDone {
        upload_id: session.upload_id,
        version,
        deduplicated,
        repeated: false,
    })
}

/// A new asset with its one file (the common `upload()`): the same reads
/// and checks as a batch's `create_sessions` (the allocations charged, the
/// dedup lookup, quota and file limit by `session_rows`), then every row
/// written as published at once — the version `complete` (the usage
/// triggers count it used, never reserved), the file with its checksum, the
/// session `complete`, the chunk, and the index rows from what is held —
/// about half the statements of opening a session and completing it, and
/// nothing read back.
async fn new_asset_published<B: Backend>(
    c: &mut ConnOf<B>,
    item: &SingleUploadItem,
    asset: &NewAsset,
) -> Result<SingleUploadDone> {
    let upload = &item.upload;
    let allocation_id = charged_allocation(&mut *c, asset).await?;
    let Some(own) = load_allocation(&mut *c, asset.owner_type, &asset.owner_id).await? else {
        return Err(StoreError::NotFound(format!(
            "allocation of {} {}",
            asset.owner_type, asset.owner_id
        )));
    };
    let allocation = match &allocation_id {
        Some(id) => allocation_by_id(&mut *c, id).await?,
        None => own,
    };
    let owner = OwnerRow {
        owner_type: asset.owner_type,
        owner_id: asset.owner_id.clone(),
    };
    let found = c.stored_files(&dedup_keys(&owner, &upload.files)).await?;
    let row = NewAssetRow {
        id: new_id(),
        at: now(),
        asset,
        allocation_id,
    };
    let rows = session_rows(
        row.id.clone(),
        &allocation,
        &upload.user_id,
        upload.chunk_size,
        &upload.files,
        upload.content_id.clone(),
        &mut found.into_iter(),
    )?;
    insert_asset_row(&mut *c, &row).await?;
    let version = insert_published(&mut *c, &rows, &item.chunk).await?;
    let files: Vec<(String, u64)> = (version.files.iter())
        .map(|f| (f.name.clone(), f.size))
        .collect();
    super::search::index_new_asset(&mut *c, &row.id, asset, row.at, &files).await?;
    Ok(SingleUploadDone {
        upload_id: rows.session.upload_id,
        deduplicated: rows.files.iter().all(|(_, pointer)| pointer.is_some()),
        version,
        repeated: false,
    })
}

/// The rows of a lone file's session (`rows`, one file in one chunk),
/// written published: the version and the session `complete`, the file with
/// its checksum, and the chunk unless the file points at bytes stored
/// before. Answers the version as written.
async fn insert_published<C: Dialect>(
    c: &mut C,
    rows: &SessionRows,
    chunk: &ChunkRecord,
) -> Result<ContentVersion> {
    let s = &rows.session;
    let ([(_, pointer)], [spec]) = (rows.files.as_slice(), rows.file_specs.as_slice()) else {
        return Err(StoreError::Invalid("a single upload is one file".into()));
    };
    let checksum = format!("blake3:{}", chunk.hash);
    let completed = s.created_at;
    c.execute(
        "INSERT INTO contents
           (id, asset_id, total_bytes, chunk_size, created_at, completed_at, file_count, status)
         VALUES ($1, $2, $3, $4, $5, $6, 1, 'complete')",
        args![
            &s.content_id,
            &s.asset_id,
            rows.total,
            s.chunk_size,
            s.created_at,
            completed
        ],
    )
    .await?;
    c.execute(
        "INSERT INTO content_files (content_id, file_index, name, size, checksum,
           blob_content_id, blob_file_index, blob_chunk_size)
         VALUES ($1, 0, $2, $3, $4, $5, $6, $7)",
        args![
            &s.content_id,
            &spec.name,
            spec.size,
            &checksum,
            pointer.as_ref().map(|p| p.content_id.clone()),
            pointer.as_ref().map(|p| p.file_index),
            pointer.as_ref().map(|p| p.chunk_size),
        ],
    )
    .await?;
    c.execute(
        "INSERT INTO uploads
           (id, asset_id, content_id, user_id, chunk_size, created_at, last_active_at, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'complete')",
        args![
            &s.upload_id,
            &s.asset_id,
            &s.content_id,
            &rows.user_id,
            s.chunk_size,
            s.created_at,
            completed
        ],
    )
    .await?;
    if pointer.is_none() {
        c.execute(
            "INSERT INTO upload_chunks (upload_id, file_index, chunk_index, size, hash)
             VALUES ($1, 0, 0, $2, $3)",
            args![&s.upload_id, chunk.size, &chunk.hash],
        )
        .await?;
    }
    Ok(ContentVersion {
        content_id: s.content_id.clone(),
        asset_id: s.asset_id.clone(),
        status: ContentStatus::Complete,
        total_bytes: rows.total,
        files: vec![ContentFile {
            file_index: 0,
            name: spec.name.clone(),
            size: spec.size,
            checksum: Some(checksum),
        }],
        created_at: s.created_at,
        completed_at: Some(completed),
    })
}
