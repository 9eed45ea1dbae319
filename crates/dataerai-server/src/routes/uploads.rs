//! Chunked, resumable uploads.
//!
//! Life of a session: `POST /assets/{id}/uploads` reserves quota and opens a
//! pending content version; each `PUT .../chunks/{i}` streams one chunk to the
//! blob store (length and BLAKE3 chunk digest checked, fsynced — the digest
//! sent in a header before the body, or in a trailer after it) and then
//! records it in the metadata store — only recorded chunks count as received;
//! `complete` merges each file's recorded chunk digests into its BLAKE3 hash
//! (`dataerai_proto::digest`: no byte is read again), checks it against the
//! client's and publishes the version in one metadata transaction; `DELETE`
//! aborts and frees the reservation (the session's user, or an owner or admin
//! of the project owning the asset). Every request on an open session is
//! activity: a session idle for the server's `[uploads] session_idle_s` is
//! expired by `housekeeping` and then answers why it is closed.
//!
//! Dedup: a file announced with its whole-file `checksum` that its owner
//! already stores is marked `deduplicated` at creation (the metadata store
//! points it at the stored bytes); it takes no chunks and is checked against the
//! stored checksum at `complete`.

use std::collections::HashSet;

use std::pin::Pin;
use std::task::Poll;

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use dataerai_proto::api::{
    ChunkAck, CompleteUpload, ContentVersion, CreateUpload, OwnerType, UploadFileState,
    UploadSession, UploadStatus, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE,
};
use dataerai_proto::digest::{self, ChunkDigest, MIN_CHUNK_SIZE};
use dataerai_proto::{
    blake3_checksum, chunk_count, chunk_len, ApiError, ErrorCode, CHUNK_HASH_HEADER,
};
use dataerai_store::blob::{ByteStream, PutOutcome};
use dataerai_store::meta::{ChunkRecord, CloseReason, UploadRecord};
use dataerai_store::{BodyCheck, ChunkKey, Claimed, DigestAfterBody};
use serde_json::json;

use crate::openapi::RawBytes;

use super::assets::check_new_version_allocation;
use super::{found, load_asset, not_found_error, owner_access, require, Access, Ctx};
use super::{AssetIdPath, ChunkIndexPath, FileIndexPath, UploadIdPath};
use crate::audit;
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, AppError, AppResult};
use crate::state::AppState;

/// Most files `probe_dedup` answers for in one request.
const MAX_DEDUP_PROBES: usize = 64;
/// Most files in one content version.
const MAX_FILES: usize = 100_000;
const MAX_FILE_NAME_LEN: usize = 4096;

/// `blake3:<64 hex>` (any case) → the stored form, lowercase.
pub(super) fn normalize_checksum(sum: &str) -> Option<String> {
    let hex_sum = sum.strip_prefix("blake3:")?;
    (hex_sum.len() == 64 && hex_sum.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("blake3:{}", hex_sum.to_ascii_lowercase()))
}

/// The longest path component file systems accept (ext4, XFS, APFS, NTFS).
const MAX_COMPONENT_LEN: usize = 255;

/// A file name must be a clean relative `/`-separated path that every
/// downloader can create: no control characters, no component over 255 bytes.
fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_FILE_NAME_LEN {
        return Err(format!("file name must be 1 to {MAX_FILE_NAME_LEN} bytes"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() && *c != '\0') {
        return Err(format!(
            "file name {name:?} contains the control character U+{:04X}; rename the file",
            u32::from(c)
        ));
    }
    if let Some(part) = name.split('/').find(|part| part.len() > MAX_COMPONENT_LEN) {
        return Err(format!(
            "file name {name:?} has a component of {} bytes; at most {MAX_COMPONENT_LEN} \
             bytes fit in a file system",
            part.len()
        ));
    }
    if name.contains('\0') || name.contains('\\') {
        return Err(format!(
            "file name {name:?} contains a NUL or a backslash; use `/` as separator"
        ));
    }
    if name.starts_with('/') {
        return Err(format!("file name {name:?} must be relative, not absolute"));
    }
    if name
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(format!(
            "file name {name:?} must not contain empty, `.` or `..` components"
        ));
    }
    Ok(())
}

/// Check a `CreateUpload` (normalising its checksums); answers the chunk size.
pub(super) fn check_create_upload(body: &mut CreateUpload) -> AppResult<u64> {
    let chunk_size = body.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE);
    if !digest::is_valid_chunk_size(chunk_size) || chunk_size > MAX_CHUNK_SIZE {
        return Err(AppError::invalid(format!(
            "chunk_size must be a power of two between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes, not {chunk_size}"
        )));
    }
    if body.files.is_empty() || body.files.len() > MAX_FILES {
        return Err(AppError::invalid(format!(
            "an upload needs 1 to {MAX_FILES} files"
        )));
    }
    let mut seen = HashSet::new();
    for f in &mut body.files {
        if let Some(sum) = &f.checksum {
            f.checksum = Some(normalize_checksum(sum).ok_or_else(|| {
                AppError::invalid(format!(
                    "checksum of file {:?} must be \"blake3:<64 hex digits>\"",
                    f.name
                ))
            })?);
        }
    }
    for f in &body.files {
        check_file_name(&f.name).map_err(AppError::invalid)?;
        if !seen.insert(f.name.as_str()) {
            return Err(AppError::invalid(format!(
                "file name {:?} appears twice",
                f.name
            )));
        }
    }
    // Sizes go into SQLite INTEGER (i64): refuse anything that would overflow.
    let total = body
        .files
        .iter()
        .try_fold(0u64, |acc, f| acc.checked_add(f.size));
    if !matches!(total, Some(t) if t <= i64::MAX as u64) {
        return Err(AppError::invalid("total upload size is too large"));
    }
    Ok(chunk_size)
}

/// Open an upload session (quota reserved)
#[utoipa::path(post, path = "/api/v1/assets/{asset_id}/uploads", params(AssetIdPath),
    request_body = CreateUpload,
    responses((status = 201, description = "The new session", body = UploadSession)))]
pub async fn create_upload(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
    ApiJson(mut body): ApiJson<CreateUpload>,
) -> AppResult<(StatusCode, Json<UploadSession>)> {
    let asset = load_asset(&state, &caller, &asset_id, Access::Write).await?;
    check_new_version_allocation(&state, &caller, &asset).await?;
    let chunk_size = check_create_upload(&mut body)?;
    let mut session = state
        .meta
        .create_upload(&asset_id, &caller.user_id, chunk_size, &body.files)
        .await?;
    if body.probe_dedup {
        let mut probes = 0;
        for (f, spec) in session.files.iter_mut().zip(&body.files) {
            if spec.checksum.is_some() || f.size == 0 {
                continue;
            }
            probes += 1;
            if probes > MAX_DEDUP_PROBES {
                return Err(AppError::invalid(format!(
                    "probe_dedup answers for at most {MAX_DEDUP_PROBES} files without a checksum; send checksums instead"
                )));
            }
            f.dedup_candidate = state
                .meta
                .stores_file_of_size(asset.owner_type, &asset.owner_id, f.size)
                .await?;
        }
    }
    let reused: u64 = session
        .files
        .iter()
        .filter(|f| f.deduplicated)
        .map(|f| f.size)
        .sum();
    state.metrics.deduplicated(reused);
    Ok((StatusCode::CREATED, Json(advertised(&state, session))))
}

/// `session` as it is answered: with whether this server's blob store takes
/// a chunk's digest after the body at no extra cost.
pub(super) fn advertised(state: &AppState, mut session: UploadSession) -> UploadSession {
    session.digest_after_body = state.blobs.digest_after_body_is_free();
    session
}

/// An upload session of the caller: 404 when unknown, someone else's, or the
/// caller may no longer read its asset (removed from the project after
/// opening it); 403 when they may read but no longer write it (demoted to
/// viewer).
pub(super) async fn own_upload(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
) -> AppResult<UploadRecord> {
    let record = state.meta.get_upload(upload_id).await?;
    own_record(state, caller, upload_id, record).await
}

/// [`own_upload`] of a session already read (`None`: unknown), e.g. one of
/// a batch read together.
pub(super) async fn own_record(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
    record: Option<UploadRecord>,
) -> AppResult<UploadRecord> {
    let record = found(record, "upload", upload_id)?;
    // Another user's session is as unknown as a missing one.
    if record.user_id != caller.user_id {
        return Err(not_found_error("upload", upload_id));
    }
    // The owner came with the session: no need to load the asset.
    let (owner_type, owner_id) = found(record.owner.as_ref(), "upload", upload_id)?;
    let access = owner_access(state, caller, *owner_type, owner_id).await?;
    require(access, Access::Write, "upload", upload_id)?;
    Ok(record)
}

/// As [`own_upload`], and still open; the request counts as activity.
async fn open_upload(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
) -> AppResult<UploadRecord> {
    let record = own_upload(state, caller, upload_id).await?;
    require_open(&record)?;
    note_activity(state, &record).await?;
    Ok(record)
}

/// A closed session is refused with what closed it, so the client knows to
/// start over rather than retry.
fn require_open(record: &UploadRecord) -> AppResult<()> {
    let session = &record.session;
    if session.status == UploadStatus::Open {
        return Ok(());
    }
    let upload_id = &session.upload_id;
    Err(AppError::invalid(match record.closed_reason {
        Some(CloseReason::Expired) => format!(
            "upload {upload_id} expired: the server received no request on it for longer than \
             its upload session idle limit, and released its reservation; start a new upload"
        ),
        Some(CloseReason::MemberRemoved) => format!(
            "upload {upload_id} was aborted because its user was removed from the project \
             owning the asset; start a new upload"
        ),
        None => format!(
            "upload {upload_id} is {}; open a new upload session",
            session.status
        ),
    }))
}

/// How stale a session's last-activity time may get before a request on it
/// writes the new one: one write a second at most, per session.
const TOUCH_AFTER: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// Keep an open session from expiring: any request on it (a chunk, a status
/// query, completion) is activity.
async fn note_activity(state: &AppState, record: &UploadRecord) -> AppResult<()> {
    let now = chrono::Utc::now();
    if record.session.status == UploadStatus::Open && now - record.last_active_at >= TOUCH_AFTER {
        state
            .meta
            .touch_upload(&record.session.upload_id, now)
            .await?;
    }
    Ok(())
}

/// An upload session with its received chunks
#[utoipa::path(get, path = "/api/v1/uploads/{upload_id}", params(UploadIdPath),
    responses((status = 200, description = "The session", body = UploadSession)))]
pub async fn get_upload(
    Ctx { state, caller }: Ctx,
    ApiPath(upload_id): ApiPath<String>,
) -> AppResult<Json<UploadSession>> {
    let record = own_upload(&state, &caller, &upload_id).await?;
    // A resuming client asks this first: it keeps the session alive.
    note_activity(&state, &record).await?;
    Ok(Json(advertised(&state, record.session)))
}

/// 64 hex digits (any case) as the 32 bytes of a BLAKE3 digest.
pub(super) fn digest_from_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// A digest as a header or trailer field carries it: 64 hex digits, with or
/// without a `blake3:` prefix.
fn digest_field(value: &HeaderValue) -> Option<[u8; 32]> {
    let text = value.to_str().ok()?.trim();
    digest_from_hex(text.strip_prefix("blake3:").unwrap_or(text))
}

/// Where the client puts a chunk's digest: in the `x-dataerai-chunk-blake3`
/// header, before the body; or, declared with `Trailer:
/// x-dataerai-chunk-blake3`, in a trailer of that name after a chunked body
/// (so a client can hash the chunk as it sends it, reading it once).
fn chunk_claim(headers: &HeaderMap) -> AppResult<Claimed> {
    if let Some(value) = headers.get(CHUNK_HASH_HEADER) {
        return digest_field(value).map(Claimed::Before).ok_or_else(|| {
            AppError::invalid(format!("header {CHUNK_HASH_HEADER} must be 64 hex digits"))
        });
    }
    let announced = headers
        .get_all(header::TRAILER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|names| names.split(','))
        .any(|name| name.trim().eq_ignore_ascii_case(CHUNK_HASH_HEADER));
    if announced {
        return Ok(Claimed::After(DigestAfterBody::default()));
    }
    Err(AppError::invalid(format!(
        "missing header {CHUNK_HASH_HEADER}: send the chunk's BLAKE3 as 64 hex digits in it, \
         or after the body in a trailer of that name announced with `Trailer: {CHUNK_HASH_HEADER}`"
    )))
}

/// A chunk request's body as the blob store reads it. The digest in its
/// trailer, if any, goes to `after`; a trailer whose digest is not 64 hex
/// digits ends the body with an error. (Without one, `after` stays unset and
/// the store refuses the chunk.)
fn chunk_body(mut body: Body, after: Option<DigestAfterBody>) -> ByteStream {
    Box::pin(futures::stream::poll_fn(move |cx| loop {
        let frame = match std::task::ready!(Pin::new(&mut body).poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(std::io::Error::other(e)))),
            Some(Ok(frame)) => frame,
        };
        let trailers = match frame.into_data() {
            Ok(data) => return Poll::Ready(Some(Ok(data))),
            Err(frame) => frame.into_trailers(),
        };
        let (Ok(trailers), Some(after)) = (trailers, &after) else {
            continue;
        };
        if let Some(value) = trailers.get(CHUNK_HASH_HEADER) {
            let Some(digest) = digest_field(value) else {
                return Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("trailer {CHUNK_HASH_HEADER} must be 64 hex digits"),
                ))));
            };
            after.set(digest);
        }
    }))
}

/// Send one chunk (its digest in header x-dataerai-chunk-blake3, or in a trailer of that name); idempotent
#[utoipa::path(put, path = "/api/v1/uploads/{upload_id}/files/{file_index}/chunks/{chunk_index}",
    params(UploadIdPath, FileIndexPath, ChunkIndexPath, ("x-dataerai-chunk-blake3" = Option<String>, Header, description = "Hex chunk digest (`dataerai_proto::digest`). Without it, `Trailer: x-dataerai-chunk-blake3` announces the digest in a trailer after a chunked body")),
    request_body(content = RawBytes, content_type = "application/octet-stream"),
    responses((status = 200, description = "The chunk is stored durably and verified", body = ChunkAck)))]
pub async fn put_chunk(
    Ctx { state, caller }: Ctx,
    ApiPath((upload_id, file_index, chunk_index)): ApiPath<(String, u32, u64)>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Json<ChunkAck>> {
    let record = open_upload(&state, &caller, &upload_id).await?;
    let session = record.session;
    let file = session.files.get(file_index as usize).ok_or_else(|| {
        AppError::invalid(format!(
            "file index {file_index} is out of range: the upload has {} file(s)",
            session.files.len()
        ))
    })?;
    if file.deduplicated {
        return Err(AppError::invalid(format!(
            "file {file_index} ({:?}) is deduplicated: the server already stores its bytes, so no chunk may be sent for it",
            file.name
        )));
    }
    let count = chunk_count(file.size, session.chunk_size);
    if chunk_index >= count {
        return Err(AppError::invalid(format!(
            "chunk index {chunk_index} is out of range: file {file_index} has {count} chunk(s)"
        )));
    }
    let expected_len = chunk_len(file.size, session.chunk_size, chunk_index);
    let claimed = chunk_claim(&headers)?;
    if let Some(declared) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        if declared != expected_len {
            return Err(AppError::invalid(format!(
                "chunk {chunk_index} of file {file_index} must be {expected_len} bytes, the request has {declared}"
            )));
        }
    }
    let ack = |hash: [u8; 32]| ChunkAck {
        file_index,
        chunk_index,
        size: expected_len,
        checksum: format!("blake3:{}", hex::encode(hash)),
    };
    let conflict = || {
        AppError::new(
            ErrorCode::Conflict,
            format!("chunk {chunk_index} of file {file_index} was already received with different bytes; abort this upload and start a new one"),
        )
    };
    let after = match &claimed {
        Claimed::After(after) => Some(after.clone()),
        Claimed::Before(_) => None,
    };
    let stream = chunk_body(body, after);
    let check = BodyCheck {
        len: expected_len,
        digest: ChunkDigest::of(file.size, session.chunk_size, chunk_index),
        claimed,
    };

    // Already held: answer without touching storage (idempotent retries are
    // cheap; a digest sent after the body is known only once the body has
    // been read and checked, and nothing of it is kept). The session lists
    // what it held when loaded; a chunk recorded since is caught by
    // `record_chunk` below.
    let held = if file.received_chunks.binary_search(&chunk_index).is_ok() {
        state
            .meta
            .chunk(&upload_id, file_index, chunk_index)
            .await?
    } else {
        None
    };
    if let Some(held) = held {
        let hash = match &check.claimed {
            Claimed::Before(hash) => *hash,
            Claimed::After(_) => check.verifier().drain(stream).await?.hash,
        };
        return if held.hash == hex::encode(hash) {
            state.metrics.chunk_accepted(expected_len);
            Ok(Json(ack(hash)))
        } else {
            Err(conflict())
        };
    }

    let key = ChunkKey {
        content_id: session.content_id.clone(),
        file_index,
        chunk_index,
    };
    match state.blobs.put_chunk(&key, stream, check.clone()).await? {
        PutOutcome::Stored | PutOutcome::AlreadyStored => {}
        PutOutcome::Conflict => return Err(conflict()),
    }
    // Verified against the body by now, wherever it was sent.
    let hash = check.claimed.get().ok_or_else(|| {
        AppError::from(ApiError::internal("a chunk was stored without its digest"))
    })?;
    let hex_hash = hex::encode(hash);
    let recorded = state
        .meta
        .record_chunk(
            &upload_id,
            file_index,
            chunk_index,
            ChunkRecord {
                size: expected_len,
                hash: hex_hash.clone(),
            },
        )
        .await?;
    if recorded.hash != hex_hash {
        // Another PUT of this chunk with other bytes was recorded first. A
        // blob store that keys chunks by hash (S3) now holds our object too:
        // remove it, so the chunk has one object again.
        if let Err(e) = state.blobs.discard_chunk(&key, hash).await {
            tracing::warn!(error = %e, "could not discard the losing copy of a chunk");
        }
        return Err(conflict());
    }
    state.metrics.chunk_accepted(expected_len);
    Ok(Json(ack(hash)))
}

/// The first `show` chunk indices below `count` not in `received` (sorted
/// ascending), and how many are missing in all. Walks only as far as needed, so
/// a session with millions of chunks costs no more than its received list.
fn missing_chunks(received: &[u64], count: u64, show: usize) -> (Vec<u64>, u64) {
    let held = received.iter().filter(|&&i| i < count).count() as u64;
    let mut shown = Vec::new();
    let mut next = received.iter().peekable();
    let mut i = 0;
    while i < count && shown.len() < show {
        if next.peek() == Some(&&i) {
            next.next();
        } else {
            shown.push(i);
        }
        i += 1;
    }
    (shown, count - held)
}

/// Verify every file and publish the content version
#[utoipa::path(post, path = "/api/v1/uploads/{upload_id}/complete", params(UploadIdPath),
    request_body = CompleteUpload,
    responses((status = 200, description = "The published content version", body = ContentVersion)))]
pub async fn complete_upload(
    Ctx { state, caller }: Ctx,
    ApiPath(upload_id): ApiPath<String>,
    ApiJson(body): ApiJson<CompleteUpload>,
) -> AppResult<Json<ContentVersion>> {
    let record = open_upload(&state, &caller, &upload_id).await?;
    let session = record.session;

    // Every chunk must be there before anything is hashed.
    let mut missing = Vec::new();
    for f in &session.files {
        let (absent, absent_count) = missing_chunks(&f.received_chunks, f.chunk_count, 10);
        if !absent.is_empty() {
            let shown: Vec<String> = absent.iter().map(u64::to_string).collect();
            let more = if absent_count > absent.len() as u64 {
                format!(" and {} more", absent_count - absent.len() as u64)
            } else {
                String::new()
            };
            missing.push(format!(
                "file {} ({:?}) chunks {}{more}",
                f.file_index,
                f.name,
                shown.join(", ")
            ));
        }
    }
    if !missing.is_empty() {
        return Err(AppError::invalid(format!(
            "upload is incomplete: missing {}; upload them, then complete again",
            missing.join("; ")
        )));
    }

    // One client checksum per file.
    let mut claimed = vec![None; session.files.len()];
    for cf in &body.files {
        let slot = claimed.get_mut(cf.file_index as usize).ok_or_else(|| {
            AppError::invalid(format!("file index {} is out of range", cf.file_index))
        })?;
        if slot.is_some() {
            return Err(AppError::invalid(format!(
                "file index {} is listed twice",
                cf.file_index
            )));
        }
        let sum = normalize_checksum(&cf.checksum).ok_or_else(|| {
            AppError::invalid(format!(
                "checksum of file {} must be \"blake3:<64 hex digits>\"",
                cf.file_index
            ))
        })?;
        *slot = Some(sum[7..].to_string());
    }
    if let Some(i) = claimed.iter().position(Option::is_none) {
        return Err(AppError::invalid(format!("no checksum given for file {i}")));
    }

    // Every file's hash from its verified chunks; nothing is published on mismatch.
    let mut checksums = Vec::with_capacity(session.files.len());
    for ((f, claim), known) in session
        .files
        .iter()
        .zip(&claimed)
        .zip(&record.known_checksums)
    {
        let actual = match known {
            // A deduplicated file's bytes were verified when first stored.
            Some(known) => known.clone(),
            None => merged_file_hash(&state, &upload_id, &session, f).await?,
        };
        if Some(&actual[7..]) != claim.as_deref() {
            return Err(AppError::new(
                ErrorCode::Integrity,
                format!(
                    "file {} ({:?}) is {actual} on the server, not blake3:{}; check the local file and upload it again",
                    f.file_index,
                    f.name,
                    claim.as_deref().unwrap_or("")
                ),
            ));
        }
        checksums.push(actual);
    }
    Ok(Json(
        state.meta.complete_upload(&upload_id, &checksums).await?,
    ))
}

/// `blake3:<hex>` of a file of the session, merged from the digests recorded
/// for its chunks (each verified against the bytes before it was recorded).
async fn merged_file_hash(
    state: &AppState,
    upload_id: &str,
    session: &UploadSession,
    f: &UploadFileState,
) -> AppResult<String> {
    let recorded = state.meta.chunk_hashes(upload_id, f.file_index).await?;
    let mut digests = Vec::with_capacity(recorded.len());
    for (i, (chunk_index, hex_digest)) in recorded.iter().enumerate() {
        match digest_from_hex(hex_digest) {
            Some(d) if *chunk_index == i as u64 => digests.push(d),
            _ => {
                return Err(AppError::from(ApiError::internal(format!(
                    "upload {upload_id}: the chunk records of file {} are inconsistent",
                    f.file_index
                ))))
            }
        }
    }
    let hash = digest::file_hash(f.size, session.chunk_size, &digests)
        .map_err(|e| AppError::from(ApiError::internal(format!("upload {upload_id}: {e}"))))?;
    Ok(blake3_checksum(&hash))
}

/// Abort an upload session (its user, or an owner or admin of the project owning the asset)
#[utoipa::path(delete, path = "/api/v1/uploads/{upload_id}", params(UploadIdPath),
    responses((status = 204, description = "Aborted")))]
pub async fn abort_upload(
    Ctx { state, caller }: Ctx,
    ApiPath(upload_id): ApiPath<String>,
) -> AppResult<StatusCode> {
    let record = found(
        state.meta.get_upload(&upload_id).await?,
        "upload",
        &upload_id,
    )?;
    // A project's owners and admins may free what any member reserved.
    let by_manager =
        record.user_id != caller.user_id && manages_project_of(&state, &caller, &record).await?;
    if by_manager {
        require_open(&record)?;
    } else {
        open_upload(&state, &caller, &upload_id).await?;
    }
    let freed = state.meta.abort_upload(&upload_id).await?;
    super::delete_freed_blobs(&state, freed, &format!("aborted upload {upload_id}")).await;
    if by_manager {
        audit::record(
            &state,
            Some(&caller.user_id),
            "upload.aborted",
            Some(("upload", &upload_id)),
            json!({"asset_id": record.session.asset_id, "opened_by": record.user_id}),
            &caller.addr,
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the caller is an owner or admin of the project owning the
/// session's asset.
async fn manages_project_of(
    state: &AppState,
    caller: &Caller,
    record: &UploadRecord,
) -> AppResult<bool> {
    let Some((OwnerType::Project, project_id)) = &record.owner else {
        return Ok(false);
    };
    let role = state.meta.member_role(project_id, &caller.user_id).await?;
    Ok(role.is_some_and(|r| r.may_manage_members()))
}

#[cfg(test)]
mod tests {
    use super::check_file_name;

    #[test]
    fn missing() {
        assert_eq!(super::missing_chunks(&[0, 1, 2], 3, 10), (vec![], 0));
        assert_eq!(super::missing_chunks(&[0, 2], 4, 10), (vec![1, 3], 2));
        assert_eq!(
            super::missing_chunks(&[], 1 << 40, 2),
            (vec![0, 1], 1 << 40)
        );
    }

    #[test]
    fn file_names() {
        for ok in ["a", "a/b.txt", "dir/sub/file.h5", "..a", "a..b"] {
            assert!(check_file_name(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(256);
        let nested_long = format!("dir/{long}/f");
        let just_fits = format!("dir/{}", "é".repeat(127));
        assert!(check_file_name(&just_fits).is_ok());
        for bad in [
            "",
            "/abs",
            "a/../b",
            "..",
            "a//b",
            "a/",
            "./a",
            "a\0b",
            "a\\b",
            "a\nb",
            "\u{1b}[2J.txt",
            "tab\there",
            "c1\u{9b}x",
            long.as_str(),
            nested_long.as_str(),
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
    }
}
