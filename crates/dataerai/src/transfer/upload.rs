//! Upload engine: one local file becomes a new content version of a new asset.
//!
//! [`prepare`] does everything that can fail fast and must be reported
//! synchronously (validation, asset creation, opening the upload session, where
//! the server checks the quota). If the session cannot be opened, the asset just
//! created is deleted again so nothing is orphaned. [`run`] then sends the
//! chunks ([`PARALLEL_CHUNKS`] in flight), each hashed in a first streaming pass
//! and then streamed from disk, and finally completes the session with the
//! whole-file BLAKE3 (computed concurrently). Any failure or cancellation aborts
//! the session and deletes the asset: a failed upload publishes nothing.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use dataerai_proto::api::{
    CompleteFile, CompleteUpload, CreateAsset, CreateUpload, UploadFileSpec, UploadSession,
};
use dataerai_proto::ApiError;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use tokio_util::sync::CancellationToken;

use super::{
    cancelled, hash_file, io_error, plan_chunks, with_retry, ProgressEvent, ProgressSink,
    RateMeter, IO_BUF, PARALLEL_CHUNKS,
};
use crate::api_client::ApiClient;

/// A validated upload request.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub local_path: PathBuf,
    pub title: String,
    pub owner_type: String,
    pub owner_id: String,
    pub description: Option<String>,
    pub alias: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub collection_id: Option<String>,
    pub chunk_size: u64,
}

/// An upload whose asset and session exist on the server, ready to [`run`].
pub struct PreparedUpload {
    client: ApiClient,
    pub transfer_id: String,
    pub asset_id: String,
    session: UploadSession,
    path: PathBuf,
    pub file_name: String,
    pub size: u64,
    pub chunk_size: u64,
    pub chunk_count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadedFile {
    pub name: String,
    pub size: u64,
    pub checksum: String,
}

/// `result` of `transfer.completed` for an upload.
#[derive(Debug, Clone, Serialize)]
pub struct UploadResult {
    pub asset_id: String,
    pub content_id: String,
    pub transfer_id: String,
    pub total_bytes: u64,
    pub chunk_count: u64,
    pub files: Vec<UploadedFile>,
}

/// Check the local file, then create the asset and open the upload session.
pub async fn prepare(client: ApiClient, req: UploadRequest) -> Result<PreparedUpload, ApiError> {
    let path = req.local_path.clone();
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => m,
        Ok(_) => {
            return Err(ApiError::invalid(format!(
                "not a regular file: {}",
                path.display()
            )))
        }
        Err(_) => {
            return Err(ApiError::invalid(format!(
                "file not found: {}",
                path.display()
            )))
        }
    };
    // Fail now, not halfway through, if the file cannot be read.
    tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::invalid(format!("cannot read {}: {e}", path.display())))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| ApiError::invalid(format!("no file name in {}", path.display())))?;
    let size = meta.len();

    let asset = client
        .create_asset(&CreateAsset {
            title: req.title,
            owner_type: req.owner_type,
            owner_id: req.owner_id,
            description: req.description,
            alias: req.alias,
            tags: req.tags,
            metadata: req.metadata,
            collection_id: req.collection_id,
        })
        .await?;
    let session = client
        .create_upload(
            &asset.asset_id,
            &CreateUpload {
                files: vec![UploadFileSpec {
                    name: file_name.clone(),
                    size,
                }],
                chunk_size: Some(req.chunk_size),
            },
        )
        .await;
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            // E.g. quota exceeded: the asset was only made for this upload.
            if let Err(del) = client.delete_asset(&asset.asset_id).await {
                tracing::warn!(
                    "could not delete asset {} after failed upload: {del}",
                    asset.asset_id
                );
            }
            return Err(e);
        }
    };
    let chunk_size = session.chunk_size.max(1);
    let chunk_count = dataerai_proto::chunk_count(size, chunk_size);
    Ok(PreparedUpload {
        client,
        transfer_id: uuid::Uuid::new_v4().to_string(),
        asset_id: asset.asset_id,
        session,
        path,
        file_name,
        size,
        chunk_size,
        chunk_count,
    })
}

impl PreparedUpload {
    async fn cleanup(&self) {
        if let Err(e) = self.client.abort_upload(&self.session.upload_id).await {
            tracing::warn!("could not abort upload {}: {e}", self.session.upload_id);
        }
        if let Err(e) = self.client.delete_asset(&self.asset_id).await {
            tracing::warn!("could not delete asset {}: {e}", self.asset_id);
        }
    }
}

/// Send every chunk, complete the session, return the result. On failure or
/// cancellation the session is aborted and the asset deleted.
pub async fn run(
    up: PreparedUpload,
    cancel: CancellationToken,
    progress: ProgressSink,
) -> Result<UploadResult, ApiError> {
    let res = run_inner(&up, &cancel, &progress).await;
    if res.is_err() {
        up.cleanup().await;
    }
    res
}

async fn run_inner(
    up: &PreparedUpload,
    cancel: &CancellationToken,
    progress: &ProgressSink,
) -> Result<UploadResult, ApiError> {
    let file_index = up.session.files.first().map(|f| f.file_index).unwrap_or(0);
    let received: &[u64] = up
        .session
        .files
        .first()
        .map(|f| f.received_chunks.as_slice())
        .unwrap_or(&[]);

    // The whole-file hash runs on its own thread while the chunks go out.
    let hash_cancel = cancel.child_token();
    let _stop_hash = hash_cancel.clone().drop_guard();
    let whole_hash = tokio::spawn(hash_file(up.path.clone(), hash_cancel));

    let meter = RateMeter::start();
    let done = AtomicU64::new(0);
    let already: u64 = plan_chunks(up.size, up.chunk_size)
        .iter()
        .filter(|c| received.contains(&c.0))
        .map(|c| c.2)
        .sum();
    done.fetch_add(already, Ordering::Relaxed);

    let pending: Vec<_> = plan_chunks(up.size, up.chunk_size)
        .into_iter()
        .filter(|c| !received.contains(&c.0))
        .collect();
    let mut chunks = futures::stream::iter(pending.into_iter().map(|(index, offset, len)| {
        let done = &done;
        let meter = &meter;
        async move {
            with_retry(cancel, || send_chunk(up, file_index, index, offset, len)).await?;
            // Everything below runs without an await, so events leave in order.
            let bytes_done = done.fetch_add(len, Ordering::Relaxed) + len;
            progress(ProgressEvent {
                transfer_id: up.transfer_id.clone(),
                kind: "upload",
                bytes_done,
                bytes_total: up.size,
                rate_bps: meter.rate_bps(bytes_done),
                chunk_index: index,
                chunk_count: up.chunk_count,
                file_index,
                file_name: up.file_name.clone(),
            });
            Ok::<_, ApiError>(())
        }
    }))
    .buffer_unordered(PARALLEL_CHUNKS);
    while let Some(r) = chunks.next().await {
        r?;
    }
    drop(chunks);

    let checksum = tokio::select! {
        _ = cancel.cancelled() => return Err(cancelled()),
        h = whole_hash => h.map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))??,
    };
    if cancel.is_cancelled() {
        return Err(cancelled());
    }
    let content = up
        .client
        .complete_upload(
            &up.session.upload_id,
            &CompleteUpload {
                files: vec![CompleteFile {
                    file_index,
                    checksum: checksum.clone(),
                }],
            },
        )
        .await?;
    Ok(UploadResult {
        asset_id: up.asset_id.clone(),
        content_id: content.content_id,
        transfer_id: up.transfer_id.clone(),
        total_bytes: up.size,
        chunk_count: up.chunk_count,
        files: vec![UploadedFile {
            name: up.file_name.clone(),
            size: up.size,
            checksum,
        }],
    })
}

/// Hash one chunk from disk, then stream it to the server.
async fn send_chunk(
    up: &PreparedUpload,
    file_index: u32,
    index: u64,
    offset: u64,
    len: u64,
) -> Result<(), ApiError> {
    let hex = hash_range(up.path.clone(), offset, len).await?;
    let mut file = tokio::fs::File::open(&up.path)
        .await
        .map_err(|e| io_error(format!("cannot open {}", up.path.display()), e))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| io_error(format!("cannot seek {}", up.path.display()), e))?;
    let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(file.take(len), IO_BUF));
    let ack = up
        .client
        .put_chunk(&up.session.upload_id, file_index, index, &hex, len, body)
        .await?;
    // The server verified the hash we sent; make sure it stored what we hashed.
    if ack.size != len || ack.checksum != format!("blake3:{hex}") {
        return Err(ApiError::new(
            dataerai_proto::ErrorCode::Integrity,
            format!(
                "server acknowledged chunk {index} as {} bytes {} but we sent {len} bytes blake3:{hex}",
                ack.size, ack.checksum
            ),
        ));
    }
    Ok(())
}

/// BLAKE3 hex of `[offset, offset+len)` of a file, read in small pieces on a blocking thread.
async fn hash_range(path: PathBuf, offset: u64, len: u64) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path)
            .map_err(|e| io_error(format!("cannot open {}", path.display()), e))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; IO_BUF];
        let mut pos = 0u64;
        while pos < len {
            let want = ((len - pos) as usize).min(buf.len());
            let n = f
                .read_at(&mut buf[..want], offset + pos)
                .map_err(|e| io_error(format!("cannot read {}", path.display()), e))?;
            if n == 0 {
                return Err(ApiError::invalid(format!(
                    "{} shrank while it was being uploaded",
                    path.display()
                )));
            }
            hasher.update(&buf[..n]);
            pos += n as u64;
        }
        Ok(hasher.finalize().to_hex().to_string())
    })
    .await
    .map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))?
}
