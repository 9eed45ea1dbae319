//! Batches of small uploads: the per-file round trips and commits of the
//! session protocol (`uploads.rs`) dominate when files are small, so many
//! files go in one request and one metadata transaction.
//!
//! - `POST /uploads/batch` opens many sessions (each for a new asset or a new
//!   version of an existing one): the checks of `POST /assets` and
//!   `POST /assets/{id}/uploads` per item, then one store call.
//! - `POST /uploads/finish` (multipart: a JSON manifest, then one part per
//!   item) takes the bytes of many single-chunk files: each is checked and
//!   stored durably like a chunk PUT, then every chunk is recorded and every
//!   session completed in one store call. A session already complete answers
//!   its version, so a retried request is harmless.
//!
//! - `POST /uploads/single` (multipart: a JSON manifest, then the file) does
//!   both for one small file in one request and one transaction; the
//!   caller's key makes a retry find the upload instead of making another.
//!
//! Each item succeeds or fails on its own; the request fails as a whole only
//! when it is malformed or the caller is not signed in.

use axum::extract::Multipart;
use axum::Json;
use dataerai_proto::api::{
    check_key, BatchAnswer, BatchItem, ContentVersion, CreateUploadBatch, FinishItem,
    FinishManifest, SingleUpload, SingleUploaded, UploadBatchItem, UploadSession, UploadStatus,
    MAX_BATCH_ITEMS, MAX_FINISH_BYTES, MAX_SMALL_FILE,
};
use dataerai_proto::digest::ChunkDigest;
use dataerai_proto::{ApiError, ErrorCode};
use dataerai_store::blob::{PutOutcome, SmallChunk};
use dataerai_store::meta::{
    new_content_id, BytesStored, ChunkRecord, NewUpload, SingleUploadDone, SingleUploadItem,
    SmallFinish, UploadRecord, UploadTarget,
};
use dataerai_store::{ChunkCheck, ChunkKey};

use super::assets::{check_new_version_allocation, new_asset};
use super::uploads::{check_create_upload, digest_from_hex, normalize_checksum, own_record};
use super::{load_asset, Access, Ctx, SingleUploadKeyPath};
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, AppError, AppResult};
use crate::openapi::RawBytes;
use crate::state::AppState;

fn check_count(n: usize) -> AppResult<()> {
    if n == 0 || n > MAX_BATCH_ITEMS {
        return Err(AppError::invalid(format!(
            "a batch needs 1 to {MAX_BATCH_ITEMS} items, not {n}"
        )));
    }
    Ok(())
}

/// Fill the `None` slots of `answers` with `results`, in order.
fn merge<T>(answers: Vec<Option<BatchItem<T>>>, results: Vec<BatchItem<T>>) -> BatchAnswer<T> {
    let mut results = results.into_iter();
    let items = answers
        .into_iter()
        .map(|a| {
            a.or_else(|| results.next())
                .unwrap_or_else(|| Err::<T, _>(ApiError::internal("batch item lost")).into())
        })
        .collect();
    BatchAnswer { items }
}

/// Open many upload sessions (new assets or new versions) in one transaction; one outcome per item
#[utoipa::path(post, path = "/api/v1/uploads/batch",
    request_body = CreateUploadBatch,
    responses((status = 200, description = "One outcome per item, in item order", body = BatchAnswer<UploadSession>)))]
pub async fn create_upload_batch(
    Ctx { state, caller }: Ctx,
    ApiJson(body): ApiJson<RawBatch>,
) -> AppResult<Json<BatchAnswer<UploadSession>>> {
    check_count(body.items.len())?;
    state.metrics.session_batch(body.items.len());
    // Items that fail a check are answered at once; the store gets the others.
    let mut answers = Vec::with_capacity(body.items.len());
    let mut todo = Vec::new();
    for item in body.items {
        let checked = async {
            let item: UploadBatchItem = serde_json::from_value(item)
                .map_err(|e| AppError::invalid(format!("invalid batch item: {e}")))?;
            let mut upload = item.upload;
            if upload.probe_dedup {
                return Err(AppError::invalid(
                    "probe_dedup is not available in a batch; open the session on its own",
                ));
            }
            let chunk_size = check_create_upload(&mut upload)?;
            let target = match (item.asset, item.asset_id) {
                (Some(asset), None) => {
                    UploadTarget::NewAsset(new_asset(&state, &caller, asset).await?)
                }
                (None, Some(id)) => {
                    let asset = load_asset(&state, &caller, &id, Access::Write).await?;
                    check_new_version_allocation(&state, &caller, &asset).await?;
                    UploadTarget::Existing(id)
                }
                _ => {
                    return Err(AppError::invalid(
                        "give each item either `asset` (a new asset) or `asset_id`, not both",
                    ))
                }
            };
            Ok(NewUpload {
                content_id: None,
                target,
                user_id: caller.user_id.clone(),
                chunk_size,
                files: upload.files,
            })
        }
        .await;
        match checked {
            Ok(n) => {
                todo.push(n);
                answers.push(None);
            }
            Err(e) => answers.push(Some(Err::<UploadSession, _>(e.error).into())),
        }
    }
    let created = if todo.is_empty() {
        Vec::new()
    } else {
        state.meta.create_uploads(todo).await?
    };
    let results = created
        .into_iter()
        .map(|r| {
            if let Ok(session) = &r {
                let reused = session.files.iter().filter(|f| f.deduplicated);
                state.metrics.deduplicated(reused.map(|f| f.size).sum());
            }
            r.map(|session| super::uploads::advertised(&state, session))
                .map_err(|e| AppError::from(e).error)
                .into()
        })
        .collect();
    Ok(Json(merge(answers, results)))
}

/// A [`CreateUploadBatch`] whose items are read one by one, so that an item
/// that does not parse (an unknown `owner_type`, say) fails on its own.
#[derive(serde::Deserialize)]
pub struct RawBatch {
    items: Vec<serde_json::Value>,
}

/// The `multipart/form-data` body of `POST /uploads/finish`, for the OpenAPI
/// document (the handler reads the parts as they stream in).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FinishParts {
    /// First part: the JSON manifest.
    manifest: FinishManifest,
    /// Then one part per manifest item, in item order: the file's bytes.
    file: Vec<RawBytes>,
}

/// What `finish` found for an item before reading its bytes.
enum Found {
    /// Completed by an earlier request.
    Done(ContentVersion),
    Open {
        key: ChunkKey,
        check: ChunkCheck,
        /// The chunk is already recorded (sent on its own before).
        held: bool,
    },
}

/// Check one item of `finish` against its session (`record`, read with the
/// batch's others; `None`: unknown).
async fn find(
    state: &AppState,
    caller: &Caller,
    item: &FinishItem,
    record: Option<UploadRecord>,
) -> AppResult<Found> {
    let sum = normalize_checksum(&item.checksum).ok_or_else(|| {
        AppError::invalid(format!(
            "checksum of upload {} must be \"blake3:<64 hex digits>\"",
            item.upload_id
        ))
    })?;
    let record = own_record(state, caller, &item.upload_id, record).await?;
    let session = record.session;
    let single = match session.files.as_slice() {
        [f] if f.chunk_count == 1 && f.size <= MAX_SMALL_FILE && !f.deduplicated => f,
        _ => {
            return Err(AppError::invalid(format!(
                "upload {} is not one file of one chunk of at most {MAX_SMALL_FILE} bytes (deduplicated files take no bytes); send its chunks on their own",
                item.upload_id
            )))
        }
    };
    match session.status {
        UploadStatus::Open => {}
        UploadStatus::Complete => return Ok(Found::Done(completed(state, &session, &sum).await?)),
        other => {
            return Err(AppError::invalid(format!(
                "upload {} is {other}; open a new upload session",
                item.upload_id
            )))
        }
    }
    let hash = digest_from_hex(&sum[7..])
        .ok_or_else(|| AppError::invalid(format!("bad checksum {sum:?}")))?;
    Ok(Found::Open {
        key: ChunkKey {
            content_id: session.content_id.clone(),
            file_index: 0,
            chunk_index: 0,
        },
        check: ChunkCheck {
            len: single.size,
            digest: ChunkDigest::of(single.size, session.chunk_size, 0),
            hash,
        },
        held: !single.received_chunks.is_empty(),
    })
}

/// The version a complete session published, when its file is `sum`
/// (`ERR_CONFLICT` when other bytes were completed).
async fn completed(
    state: &AppState,
    session: &dataerai_proto::api::UploadSession,
    sum: &str,
) -> AppResult<ContentVersion> {
    let version = state
        .meta
        .get_content(&session.asset_id, &session.content_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("upload {}", session.upload_id)))?
        .version;
    if version.files.first().and_then(|f| f.checksum.as_deref()) != Some(sum) {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!(
                "upload {} was completed with other bytes",
                session.upload_id
            ),
        ));
    }
    Ok(version)
}

/// An item the store refused because its session is no longer open: the
/// same file listed twice, or a retried request racing the first one, may
/// have completed it meanwhile, and then the answer is that version.
async fn completed_meanwhile(
    state: &AppState,
    upload_id: &str,
    hex_hash: &str,
) -> Option<ContentVersion> {
    let record = state.meta.get_upload(upload_id).await.ok()??;
    if record.session.status != UploadStatus::Complete {
        return None;
    }
    completed(state, &record.session, &format!("blake3:{hex_hash}"))
        .await
        .ok()
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> AppError {
    AppError::invalid(format!("malformed multipart body: {}", e.body_text()))
}

/// What `finish` does with one item once its bytes are read.
enum Step {
    /// Completed by an earlier request: answer this version.
    Done(ContentVersion),
    /// Record this chunk and complete the session; `store` when its bytes
    /// must be stored first (not held already).
    Record {
        key: ChunkKey,
        hash: [u8; 32],
        chunk: ChunkRecord,
        store: Option<SmallChunk>,
    },
}

/// Check one item's bytes against what `find` found.
fn step(found: AppResult<Found>, bytes: bytes::Bytes) -> AppResult<Step> {
    let (key, check, held) = match found? {
        Found::Done(version) => return Ok(Step::Done(version)),
        Found::Open { key, check, held } => (key, check, held),
    };
    if bytes.len() as u64 != check.len {
        return Err(AppError::invalid(format!(
            "the file of upload content {} must be {} bytes, the part has {}",
            key.content_id,
            check.len,
            bytes.len()
        )));
    }
    let chunk = ChunkRecord {
        size: check.len,
        hash: hex::encode(check.hash),
    };
    let store = (!held).then(|| SmallChunk {
        key: key.clone(),
        bytes,
        check,
    });
    Ok(Step::Record {
        key,
        hash: check.hash,
        chunk,
        store,
    })
}

/// An item's outcome before the store records it: the version an earlier
/// request completed, or the chunk to record (its key and digest with it).
type Stored = Result<ContentVersion, (ChunkKey, [u8; 32], ChunkRecord)>;

/// Store the bytes of every item that needs it, all in one call to the blob
/// store (which syncs them as a group); answers each item's chunk to record.
async fn store_all(state: &AppState, steps: Vec<AppResult<Step>>) -> Vec<AppResult<Stored>> {
    let writes: Vec<SmallChunk> = steps
        .iter()
        .filter_map(|s| match s {
            Ok(Step::Record {
                store: Some(chunk), ..
            }) => Some(chunk.clone()),
            _ => None,
        })
        .collect();
    let mut written = if writes.is_empty() {
        Vec::new()
    } else {
        state.blobs.put_small_chunks(writes).await
    }
    .into_iter();
    steps
        .into_iter()
        .map(|s| {
            let (key, hash, chunk, store) = match s? {
                Step::Done(version) => return Ok(Ok(version)),
                Step::Record {
                    key,
                    hash,
                    chunk,
                    store,
                } => (key, hash, chunk, store),
            };
            if store.is_some() {
                let outcome = written.next().unwrap_or_else(|| {
                    Err(dataerai_store::StoreError::Io(std::io::Error::other(
                        "the blob store answered too few chunks",
                    )))
                });
                match outcome? {
                    PutOutcome::Stored | PutOutcome::AlreadyStored => {}
                    PutOutcome::Conflict => return Err(AppError::new(
                        ErrorCode::Conflict,
                        "the file was already received with different bytes; start a new upload",
                    )),
                }
                state.metrics.chunk_accepted(chunk.size);
            }
            Ok(Err((key, hash, chunk)))
        })
        .collect()
}

/// multipart: a `manifest` part (FinishManifest), then one `file` part per item; stores and completes one-chunk files in one transaction
#[utoipa::path(post, path = "/api/v1/uploads/finish",
    request_body(content = FinishParts, content_type = "multipart/form-data"),
    responses((status = 200, description = "One outcome per item, in item order", body = BatchAnswer<ContentVersion>)))]
pub async fn finish_small_uploads(
    Ctx { state, caller }: Ctx,
    mut parts: Multipart,
) -> AppResult<Json<BatchAnswer<ContentVersion>>> {
    let first = parts.next_field().await.map_err(multipart_error)?;
    let manifest: FinishManifest = match first {
        Some(field) if field.name() == Some("manifest") => {
            let text = field.bytes().await.map_err(multipart_error)?;
            serde_json::from_slice(&text)
                .map_err(|e| AppError::invalid(format!("invalid manifest: {e}")))?
        }
        _ => return Err(AppError::invalid("the first part must be the `manifest`")),
    };
    check_count(manifest.items.len())?;
    // Every item's session in one lookup (a few statements for the batch).
    let ids: Vec<String> = manifest.items.iter().map(|i| i.upload_id.clone()).collect();
    let records = state.meta.get_uploads(&ids).await?;
    let found = futures::future::join_all(
        manifest
            .items
            .iter()
            .zip(records)
            .map(|(i, r)| find(&state, &caller, i, r)),
    )
    .await;
    // Read every part first (the body is bounded), then store them concurrently.
    let mut bodies = Vec::with_capacity(found.len());
    let mut total = 0u64;
    while let Some(field) = parts.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            return Err(AppError::invalid(
                "after the manifest, every part must be a `file`",
            ));
        }
        let bytes = field.bytes().await.map_err(multipart_error)?;
        total += bytes.len() as u64;
        if total > MAX_FINISH_BYTES {
            return Err(AppError::invalid(format!(
                "a finish request carries at most {MAX_FINISH_BYTES} bytes of files"
            )));
        }
        bodies.push(bytes);
    }
    if bodies.len() != found.len() {
        return Err(AppError::invalid(format!(
            "the manifest lists {} items but {} file parts follow",
            found.len(),
            bodies.len()
        )));
    }
    state.metrics.finish_batch(bodies.len());
    let steps = found
        .into_iter()
        .zip(bodies)
        .map(|(f, b)| step(f, b))
        .collect();
    let stored = store_all(&state, steps).await;
    let mut answers = Vec::with_capacity(stored.len());
    let mut todo = Vec::new();
    let mut keys = Vec::new();
    for (item, s) in manifest.items.iter().zip(stored) {
        match s {
            Ok(Ok(version)) => answers.push(Some(Ok::<_, ApiError>(version).into())),
            Ok(Err((key, hash, chunk))) => {
                keys.push((key, hash));
                todo.push(SmallFinish {
                    upload_id: item.upload_id.clone(),
                    chunk,
                });
                answers.push(None);
            }
            Err(e) => answers.push(Some(Err::<ContentVersion, _>(e.error).into())),
        }
    }
    let finished = if todo.is_empty() {
        Vec::new()
    } else {
        state.meta.finish_small(&todo).await?
    };
    let mut results = Vec::with_capacity(finished.len());
    for ((r, (key, hash)), item) in finished.into_iter().zip(keys).zip(&todo) {
        if matches!(r, Err(dataerai_store::StoreError::Conflict(_))) {
            // As in a chunk PUT: another upload of this chunk was recorded first.
            if let Err(e) = state.blobs.discard_chunk(&key, hash).await {
                tracing::warn!(error = %e, "could not discard the losing copy of a chunk");
            }
        }
        let r = match r {
            Err(dataerai_store::StoreError::Invalid(msg)) => {
                match completed_meanwhile(&state, &item.upload_id, &item.chunk.hash).await {
                    Some(version) => Ok(version),
                    None => Err(dataerai_store::StoreError::Invalid(msg)),
                }
            }
            other => other,
        };
        results.push(r.map_err(|e| AppError::from(e).error).into());
    }
    Ok(Json(merge(answers, results)))
}

/// The `multipart/form-data` body of `POST /uploads/single`, for the
/// OpenAPI document (the handler reads the parts as they stream in).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SingleParts {
    /// First part: the JSON request.
    manifest: SingleUpload,
    /// Then the file's bytes.
    file: RawBytes,
}

/// The checks of one `POST /uploads/batch` item, for a lone small file:
/// its session to open (the version id still to choose) and the file's
/// checksum.
async fn check_single(
    state: &AppState,
    caller: &Caller,
    item: UploadBatchItem,
) -> AppResult<(NewUpload, String)> {
    let mut upload = item.upload;
    let sum = match upload.files.as_slice() {
        [f] if f.size <= MAX_SMALL_FILE => f
            .checksum
            .as_deref()
            .and_then(normalize_checksum)
            .ok_or_else(|| AppError::invalid("the file's checksum must be \"blake3:<64 hex digits>\""))?,
        _ => {
            return Err(AppError::invalid(format!(
                "a single upload is one file of at most {MAX_SMALL_FILE} bytes; open a session for others"
            )))
        }
    };
    upload.probe_dedup = false;
    let chunk_size = check_create_upload(&mut upload)?;
    if upload.files[0].size > chunk_size {
        return Err(AppError::invalid(
            "a single upload is one chunk: chunk_size must hold the whole file",
        ));
    }
    let target = match (item.asset, item.asset_id) {
        (Some(asset), None) => UploadTarget::NewAsset(new_asset(state, caller, asset).await?),
        (None, Some(id)) => {
            let asset = load_asset(state, caller, &id, Access::Write).await?;
            check_new_version_allocation(state, caller, &asset).await?;
            UploadTarget::Existing(id)
        }
        _ => {
            return Err(AppError::invalid(
                "give either `asset` (a new asset) or `asset_id`, not both",
            ))
        }
    };
    let upload = NewUpload {
        content_id: Some(new_content_id()),
        target,
        user_id: caller.user_id.clone(),
        chunk_size,
        files: upload.files,
    };
    Ok((upload, sum))
}

fn answer(done: SingleUploadDone) -> SingleUploaded {
    SingleUploaded {
        upload_id: done.upload_id,
        version: done.version,
        deduplicated: done.deduplicated,
        repeated: done.repeated,
    }
}

/// multipart: a `manifest` part (SingleUpload), then one `file` part; one small file's asset (or new version), bytes and published version in one transaction
#[utoipa::path(post, path = "/api/v1/uploads/single",
    request_body(content = SingleParts, content_type = "multipart/form-data"),
    responses((status = 200, description = "The published version (or what an earlier request with this key made)", body = SingleUploaded)))]
pub async fn single_upload(
    Ctx { state, caller }: Ctx,
    mut parts: Multipart,
) -> AppResult<Json<SingleUploaded>> {
    let request: SingleUpload = match parts.next_field().await.map_err(multipart_error)? {
        Some(field) if field.name() == Some("manifest") => {
            let text = field.bytes().await.map_err(multipart_error)?;
            serde_json::from_slice(&text)
                .map_err(|e| AppError::invalid(format!("invalid request: {e}")))?
        }
        _ => return Err(AppError::invalid("the first part must be the `manifest`")),
    };
    check_key("key", &request.key)?;
    let bytes = match parts.next_field().await.map_err(multipart_error)? {
        Some(field) if field.name() == Some("file") => {
            field.bytes().await.map_err(multipart_error)?
        }
        _ => {
            return Err(AppError::invalid(
                "after the manifest, the part must be the `file`",
            ))
        }
    };
    if parts.next_field().await.map_err(multipart_error)?.is_some() {
        return Err(AppError::invalid("a single upload has one `file` part"));
    }
    // A retried request (the daemon's restart, a lost answer) makes nothing:
    // the transaction looks its key up first and answers the upload made
    // before (`repeated`). Retries are rare, so the common request does not
    // pay a lookup of its own here.
    let (upload, sum) = check_single(&state, &caller, request.item).await?;
    let size = upload.files[0].size;
    if bytes.len() as u64 != size {
        return Err(AppError::invalid(format!(
            "the file must be {size} bytes, the part has {}",
            bytes.len()
        )));
    }
    let hash = digest_from_hex(&sum[7..])
        .ok_or_else(|| AppError::invalid(format!("bad checksum {sum:?}")))?;
    let content_id = upload.content_id.clone().unwrap_or_default();
    let key = ChunkKey {
        content_id: content_id.clone(),
        file_index: 0,
        chunk_index: 0,
    };
    let check = ChunkCheck {
        len: size,
        digest: ChunkDigest::of(size, upload.chunk_size, 0),
        hash,
    };
    // The bytes are checked and stored while the transaction runs; it commits
    // only once they are durable (`BytesStored`), so the version never names
    // bytes a crash could lose, and the fsyncs overlap the statements.
    let (stored_tx, stored_rx) = tokio::sync::oneshot::channel();
    let blobs = state.blobs.clone();
    let storing = tokio::spawn(async move {
        let stored = blobs
            .put_small_chunks(vec![SmallChunk { key, bytes, check }])
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(dataerai_store::StoreError::Io(std::io::Error::other(
                    "the blob store answered no chunk",
                )))
            })
            .and_then(|outcome| match outcome {
                // A fresh version id holds nothing yet: this cannot happen.
                PutOutcome::Conflict => Err(dataerai_store::StoreError::Conflict(
                    "the new version's file was stored already; send the upload again".into(),
                )),
                _ => Ok(()),
            });
        let _ = stored_tx.send(stored);
    });
    let stored: BytesStored = Box::pin(async move {
        stored_rx.await.unwrap_or_else(|_| {
            Err(dataerai_store::StoreError::Io(std::io::Error::other(
                "the task storing the file ended without an answer",
            )))
        })
    });
    let done = state
        .meta
        .single_upload(
            SingleUploadItem {
                key: request.key.clone(),
                upload,
                chunk: ChunkRecord {
                    size,
                    hash: hex::encode(hash),
                },
            },
            stored,
        )
        .await;
    let unused = match &done {
        Ok(d) => d.deduplicated || d.repeated,
        Err(_) => true,
    };
    if unused {
        // Nothing points at these bytes (the upload was refused, or the
        // version uses bytes stored before): delete them once written.
        let _ = storing.await;
        if let Err(e) = state.blobs.delete_content(&content_id).await {
            tracing::warn!(error = %e, content_id, "could not delete an unused small file");
        }
    }
    let done = done?;
    if !done.repeated {
        state.metrics.chunk_accepted(size);
    }
    if done.deduplicated && !done.repeated {
        state.metrics.deduplicated(size);
    }
    Ok(Json(answer(done)))
}

/// The upload `POST /uploads/single` made with this key (ERR_NOT_FOUND: none was made)
#[utoipa::path(get, path = "/api/v1/uploads/single/{key}",
    params(SingleUploadKeyPath),
    responses((status = 200, description = "The upload and its version", body = SingleUploaded)))]
pub async fn get_single_upload(
    Ctx { state, caller }: Ctx,
    ApiPath(key): ApiPath<String>,
) -> AppResult<Json<SingleUploaded>> {
    check_key("key", &key)?;
    match state
        .meta
        .single_upload_by_key(&caller.user_id, &key)
        .await?
    {
        Some(done) => Ok(Json(answer(done))),
        None => Err(AppError::not_found(format!(
            "single upload with key {key:?}"
        ))),
    }
}
