//! Download engine: fetch a content version's files into a destination directory.
//!
//! Each file is written to `<dest>/<name>.dataerai-partial` with ranged GETs
//! ([`PARALLEL_CHUNKS`] in flight), each chunk streamed straight to its offset.
//! Only after the whole partial file's BLAKE3 matches the server checksum is it
//! fsynced and renamed into place, so a file at its final name is always
//! complete and verified. On failure or cancellation partial files are removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dataerai_proto::api::{ContentFile, ContentVersion};
use dataerai_proto::{ApiError, ErrorCode};
use futures::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{
    cancelled, hash_file, io_error, plan_chunks, safe_join, with_retry, ProgressEvent,
    ProgressSink, RateMeter, PARALLEL_CHUNKS,
};
use crate::api_client::ApiClient;

/// Suffix of files still being downloaded.
pub const PARTIAL_SUFFIX: &str = ".dataerai-partial";

#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub asset_id: String,
    pub dest_dir: PathBuf,
    /// `None` means the latest complete version.
    pub content_id: Option<String>,
    pub chunk_size: u64,
}

struct Target {
    file: ContentFile,
    checksum: String,
    final_path: PathBuf,
    partial_path: PathBuf,
    chunk_count: u64,
}

/// A download whose destination and content version have been checked.
pub struct PreparedDownload {
    client: ApiClient,
    pub transfer_id: String,
    pub asset_id: String,
    pub content_id: String,
    targets: Vec<Target>,
    chunk_size: u64,
    pub bytes_total: u64,
    pub chunk_count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DownloadedFile {
    pub local_path: String,
    pub size: u64,
    pub filename: String,
    pub checksum: String,
}

/// `result` of `transfer.completed` for a download.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadResult {
    pub asset_id: String,
    pub content_id: String,
    pub transfer_id: String,
    pub total_bytes: u64,
    pub files: Vec<DownloadedFile>,
}

/// Make sure `dest` is (or can become) a writable directory; returns it absolute.
pub fn prepare_dest_dir(dest: &Path) -> Result<PathBuf, ApiError> {
    if dest.as_os_str().is_empty() {
        return Err(ApiError::invalid("dest_dir must not be empty"));
    }
    if dest.exists() && !dest.is_dir() {
        return Err(ApiError::invalid(format!(
            "destination is not a directory: {}",
            dest.display()
        )));
    }
    std::fs::create_dir_all(dest).map_err(|e| {
        ApiError::invalid(format!(
            "cannot create destination directory {}: {e}",
            dest.display()
        ))
    })?;
    let dest = dest.canonicalize().map_err(|e| {
        ApiError::invalid(format!(
            "cannot use destination directory {}: {e}",
            dest.display()
        ))
    })?;
    // Permission bits do not tell the whole truth (root, ACLs, read-only
    // mounts): try to create a file.
    let probe = dest.join(format!(".dataerai-probe-{}", uuid::Uuid::new_v4()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(dest)
        }
        Err(e) => Err(ApiError::invalid(format!(
            "destination directory {} is not writable: {e}",
            dest.display()
        ))),
    }
}

pub async fn prepare(
    client: ApiClient,
    req: DownloadRequest,
) -> Result<PreparedDownload, ApiError> {
    if req.asset_id.trim().is_empty() {
        return Err(ApiError::invalid("asset_id must not be empty"));
    }
    let dest = prepare_dest_dir(&req.dest_dir)?;
    let content_ref = req.content_id.as_deref().unwrap_or("latest");
    let content: ContentVersion = client.get_content(&req.asset_id, content_ref).await?;
    if content.status != "complete" {
        return Err(ApiError::invalid(format!(
            "content {} of asset {} is {}, not complete",
            content.content_id, req.asset_id, content.status
        )));
    }
    let mut targets = Vec::new();
    for f in &content.files {
        let final_path = safe_join(&dest, &f.name)?;
        let mut partial = final_path.clone().into_os_string();
        partial.push(PARTIAL_SUFFIX);
        let checksum = f.checksum.clone().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Integrity,
                format!("server has no checksum for {}", f.name),
            )
        })?;
        targets.push(Target {
            file: f.clone(),
            checksum,
            final_path,
            partial_path: PathBuf::from(partial),
            chunk_count: dataerai_proto::chunk_count(f.size, req.chunk_size),
        });
    }
    Ok(PreparedDownload {
        client,
        transfer_id: uuid::Uuid::new_v4().to_string(),
        asset_id: req.asset_id,
        content_id: content.content_id,
        bytes_total: targets.iter().map(|t| t.file.size).sum(),
        chunk_count: targets.iter().map(|t| t.chunk_count).sum(),
        targets,
        chunk_size: req.chunk_size,
    })
}

impl PreparedDownload {
    /// A short name for progress output: the file name, or the asset id for several files.
    pub fn label(&self) -> String {
        match self.targets.as_slice() {
            [one] => one.file.name.clone(),
            _ => self.asset_id.clone(),
        }
    }
}

/// Download every file. On failure or cancellation no partial file is left behind.
pub async fn run(
    dl: PreparedDownload,
    cancel: CancellationToken,
    progress: ProgressSink,
) -> Result<DownloadResult, ApiError> {
    let res = run_inner(&dl, &cancel, &progress).await;
    if res.is_err() {
        for t in &dl.targets {
            let _ = tokio::fs::remove_file(&t.partial_path).await;
        }
    }
    res
}

async fn run_inner(
    dl: &PreparedDownload,
    cancel: &CancellationToken,
    progress: &ProgressSink,
) -> Result<DownloadResult, ApiError> {
    let meter = RateMeter::start();
    let done = AtomicU64::new(0);
    let mut files = Vec::new();
    for t in &dl.targets {
        if let Some(parent) = t.partial_path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error(format!("cannot create {}", parent.display()), e))?;
        }
        let f = tokio::fs::File::create(&t.partial_path)
            .await
            .map_err(|e| io_error(format!("cannot create {}", t.partial_path.display()), e))?;
        f.set_len(t.file.size)
            .await
            .map_err(|e| io_error(format!("cannot size {}", t.partial_path.display()), e))?;
        drop(f);

        let mut chunks =
            futures::stream::iter(plan_chunks(t.file.size, dl.chunk_size).into_iter().map(
                |(index, offset, len)| {
                    let done = &done;
                    let meter = &meter;
                    async move {
                        if len > 0 {
                            with_retry(cancel, || fetch_chunk(dl, t, offset, len)).await?;
                        }
                        let bytes_done = done.fetch_add(len, Ordering::Relaxed) + len;
                        progress(ProgressEvent {
                            transfer_id: dl.transfer_id.clone(),
                            kind: "download",
                            bytes_done,
                            bytes_total: dl.bytes_total,
                            rate_bps: meter.rate_bps(bytes_done),
                            chunk_index: index,
                            chunk_count: t.chunk_count,
                            file_index: t.file.file_index,
                            file_name: t.file.name.clone(),
                        });
                        Ok::<_, ApiError>(())
                    }
                },
            ))
            .buffer_unordered(PARALLEL_CHUNKS);
        while let Some(r) = chunks.next().await {
            r?;
        }
        drop(chunks);

        let got = hash_file(t.partial_path.clone(), cancel.clone()).await?;
        if got != t.checksum {
            return Err(ApiError::new(
                ErrorCode::Integrity,
                format!(
                    "downloaded {} does not match the server checksum (expected {}, got {got})",
                    t.file.name, t.checksum
                ),
            ));
        }
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let f = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&t.partial_path)
            .await
            .map_err(|e| io_error(format!("cannot open {}", t.partial_path.display()), e))?;
        f.sync_all()
            .await
            .map_err(|e| io_error(format!("cannot sync {}", t.partial_path.display()), e))?;
        tokio::fs::rename(&t.partial_path, &t.final_path)
            .await
            .map_err(|e| io_error(format!("cannot rename to {}", t.final_path.display()), e))?;
        if let Some(parent) = t.final_path.parent() {
            // Make the rename itself durable.
            if let Ok(d) = tokio::fs::File::open(parent).await {
                let _ = d.sync_all().await;
            }
        }
        files.push(DownloadedFile {
            local_path: t.final_path.to_string_lossy().into_owned(),
            size: t.file.size,
            filename: t.file.name.clone(),
            checksum: t.checksum.clone(),
        });
    }
    Ok(DownloadResult {
        asset_id: dl.asset_id.clone(),
        content_id: dl.content_id.clone(),
        transfer_id: dl.transfer_id.clone(),
        total_bytes: dl.bytes_total,
        files,
    })
}

/// GET one byte range and stream it into the partial file at its offset.
async fn fetch_chunk(
    dl: &PreparedDownload,
    t: &Target,
    offset: u64,
    len: u64,
) -> Result<(), ApiError> {
    let resp = dl
        .client
        .get_file_range(&dl.asset_id, &dl.content_id, t.file.file_index, offset, len)
        .await?;
    let status = resp.status().as_u16();
    // A 200 is only acceptable when the range we asked for is the whole file.
    if !(status == 206 || (status == 200 && offset == 0 && len == t.file.size)) {
        return Err(ApiError::internal(format!(
            "server answered HTTP {status} to a range request for {}",
            t.file.name
        )));
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&t.partial_path)
        .await
        .map_err(|e| io_error(format!("cannot open {}", t.partial_path.display()), e))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| io_error(format!("cannot seek {}", t.partial_path.display()), e))?;
    let mut written = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| dl.client.transport_error(e))?;
        written += piece.len() as u64;
        if written > len {
            return Err(ApiError::internal(format!(
                "server sent more than the {len} bytes asked for {}",
                t.file.name
            )));
        }
        file.write_all(&piece)
            .await
            .map_err(|e| io_error(format!("cannot write {}", t.partial_path.display()), e))?;
    }
    if written != len {
        return Err(ApiError::new(
            ErrorCode::ServerUnreachable,
            format!(
                "connection ended after {written} of {len} bytes of {}",
                t.file.name
            ),
        ));
    }
    file.flush()
        .await
        .map_err(|e| io_error(format!("cannot write {}", t.partial_path.display()), e))?;
    Ok(())
}
