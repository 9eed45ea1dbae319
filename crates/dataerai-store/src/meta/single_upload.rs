//! A lone small file in one write transaction (`POST /uploads/single`): the
//! asset (or a new version), the session, the chunk and the published
//! version, made by the same functions as a batch's `create_uploads` and
//! `finish_small` (so quota, file limit, dedup, alias, collection and the
//! search index row come out the same), plus the caller's key for it. The
//! search index row is written once, when the version is published.
//!
//! The chunk's bytes are stored while the transaction's statements run
//! ([`BytesStored`]): the commit waits for them, so the version never names
//! bytes that are not durable, and the disk's fsyncs overlap the statements
//! instead of coming before them.

use dataerai_proto::api::{ContentVersion, UploadSession};
use futures::future::BoxFuture;

use super::shared::{
    content_by_id, create_sessions, finish_small_item, finish_small_together,
    lock_for_new_sessions, publish_upload, unique, Backend, ConnOf,
};
use super::sql::{args, Conn, Dialect};
use super::{ChunkRecord, NewUpload, SmallFinish};
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
    let inserted = c
        .execute(
            "INSERT INTO single_upload_keys (user_id, key, upload_id) VALUES ($1, $2, $3)",
            args![user_id, item.key.as_str(), session.upload_id.as_str()],
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
    Ok(SingleUploadDone {
        upload_id: session.upload_id,
        version,
        deduplicated,
        repeated: false,
    })
}
