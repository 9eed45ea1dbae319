//! Download engine: fetch a content version's files into a destination directory,
//! restoring its tree.
//!
//! [`prepare`] checks the destination and every file name (a name that would
//! escape `dest_dir`, or names that collide — see
//! [`dataerai_proto::file_names`] — refuse the download before anything is
//! written) and produces a [`DownloadSpec`] the caller journals, which names
//! each file's temporary file: `.dataerai-partial-<random>` next to it, a name
//! no version may hold. [`run`] creates it with `O_CREAT | O_EXCL | O_NOFOLLOW`
//! under a handle of its directory (a resumed run re-opens it with
//! `O_NOFOLLOW`; whatever else is found under that name is removed, never
//! followed), remembers its device and inode, and writes it with ranged GETs
//! ([`PARALLEL_CHUNKS`] in flight), each chunk streamed to its offset; written chunks are fsynced in
//! groups and only then recorded in the journal — so after a crash the partial
//! file and the journal agree and only missing chunks are fetched again. Each chunk is hashed as it arrives
//! (its `dataerai_proto::digest` chaining value); a file appears under its final
//! name only after its BLAKE3, merged from those digests, matches the server's
//! checksum, and the file renamed into place is checked to be the very file
//! that was written (same device and inode). A full disk
//! (`ERR_NO_SPACE`) keeps the partial files for `transfer.resume`; [`discard`]
//! removes them when a download is given up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use dataerai_proto::api::ContentVersion;
use dataerai_proto::{ApiError, ErrorCode};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{
    io_error, plan_chunks, remove_leftover, retry, run_chunks, safe_join, Digests, Failure, Plan,
    Progress, RunContext, Stop, PARALLEL_CHUNKS,
};
use crate::faults;
use crate::journal::TransferKind;
use dataerai_client::ApiClient;
use dataerai_proto::digest::ChunkDigest;
use dataerai_proto::io::{BufferPool, RangeWriter};

pub use dataerai_proto::file_names::PARTIAL_PREFIX;

/// A fresh temporary name for a file being downloaded into `dir`.
fn partial_path(dir: &Path) -> PathBuf {
    dir.join(format!("{PARTIAL_PREFIX}{}", uuid::Uuid::new_v4().simple()))
}

#[derive(Debug, Clone)]
pub struct DownloadRequest {
    pub asset_id: String,
    pub dest_dir: PathBuf,
    /// `None` means the latest complete version.
    pub content_id: Option<String>,
    pub chunk_size: u64,
    /// Replace local files that exist and differ (default: refuse).
    pub overwrite: bool,
    /// Allow hidden paths (a component starting with `.`) when the
    /// destination is the home directory (default: refuse).
    pub allow_hidden: bool,
}

/// One file of a download plan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DlFile {
    pub file_index: u32,
    pub name: String,
    pub size: u64,
    pub checksum: String,
    pub final_path: PathBuf,
    pub partial_path: PathBuf,
    /// Already at `final_path` with the same BLAKE3: nothing to fetch.
    #[serde(default)]
    pub skipped: bool,
}

/// The journaled plan of a download.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DownloadSpec {
    pub asset_id: String,
    pub content_id: String,
    /// Canonical destination directory.
    pub dest_dir: PathBuf,
    pub chunk_size: u64,
    pub files: Vec<DlFile>,
}

crate::impl_plan!(DownloadSpec, TransferKind::Download, dest_dir);

impl DownloadSpec {
    /// A short name for progress output: the file name, or the asset id for several files.
    pub fn label(&self) -> String {
        match self.files.as_slice() {
            [one] => one.name.clone(),
            _ => self.asset_id.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DownloadedFile {
    pub local_path: String,
    pub size: u64,
    pub filename: String,
    pub checksum: String,
    /// The file was already there with the same bytes; it was left as is.
    pub skipped: bool,
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

/// Make sure `dest` is (or can become) a writable directory; returns it canonical.
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
            if let Err(e) = std::fs::remove_file(&probe) {
                tracing::warn!("cannot remove write probe {}: {e}", probe.display());
            }
            Ok(dest)
        }
        Err(e) => Err(ApiError::invalid(format!(
            "destination directory {} is not writable: {e}",
            dest.display()
        ))),
    }
}

/// Check the destination and the content version; nothing is written yet.
pub async fn prepare(client: &ApiClient, req: DownloadRequest) -> Result<DownloadSpec, ApiError> {
    if req.asset_id.trim().is_empty() {
        return Err(ApiError::invalid("asset_id must not be empty"));
    }
    let dest = prepare_dest_dir(&req.dest_dir)?;
    let content_ref = req.content_id.as_deref().unwrap_or("latest");
    let content: ContentVersion = client.get_content(&req.asset_id, content_ref).await?;
    if content.status != dataerai_proto::api::ContentStatus::Complete {
        return Err(ApiError::invalid(format!(
            "content {} of asset {} is {}, not complete",
            content.content_id, req.asset_id, content.status
        )));
    }
    let collisions =
        dataerai_proto::file_names::collisions(content.files.iter().map(|f| f.name.as_str()));
    if !collisions.is_empty() {
        let listed: Vec<String> = collisions.iter().map(|c| c.to_string()).collect();
        return Err(ApiError::invalid(format!(
            "content {} of asset {} holds file names that cannot be written side by side: {}; \
             nothing was written",
            content.content_id,
            req.asset_id,
            listed.join("; ")
        )));
    }
    let home = std::env::var_os("HOME").and_then(|h| std::fs::canonicalize(h).ok());
    let into_home = home.as_deref() == Some(dest.as_path());
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    for f in &content.files {
        let final_path = safe_join(&dest, &f.name)?;
        if into_home && !req.allow_hidden && is_hidden(&f.name) {
            return Err(ApiError::invalid(format!(
                "refusing to write {} into your home directory: hidden paths there (shell \
                 start-up files, .ssh, …) are chosen by whoever uploaded the asset. Download \
                 into another directory, or allow it with --allow-hidden (allow_hidden=True)",
                final_path.display()
            )));
        }
        if !seen.insert(final_path.clone()) {
            return Err(ApiError::invalid(format!(
                "two files of the content version map to {}",
                final_path.display()
            )));
        }
        let partial = partial_path(final_path.parent().unwrap_or(&dest));
        let checksum = f.checksum.clone().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Integrity,
                format!("server has no checksum for {}", f.name),
            )
        })?;
        let skipped = already_there(
            &final_path,
            f.size,
            &checksum,
            req.chunk_size,
            req.overwrite,
        )
        .await?;
        files.push(DlFile {
            file_index: f.file_index,
            name: f.name.clone(),
            size: f.size,
            checksum,
            final_path,
            partial_path: partial,
            skipped,
        });
    }
    Ok(DownloadSpec {
        asset_id: req.asset_id,
        content_id: content.content_id,
        dest_dir: dest,
        chunk_size: req.chunk_size,
        files,
    })
}

/// Whether a server file name has a component starting with `.`.
fn is_hidden(name: &str) -> bool {
    name.split('/').any(|part| part.starts_with('.'))
}

/// What is at a file's destination before anything is written: `Ok(true)`
/// when it already holds these bytes (same size and BLAKE3: skip it),
/// `Ok(false)` when nothing is there (or `overwrite` allows replacing it). A
/// different file, a link or a directory there is refused, naming it.
async fn already_there(
    path: &Path,
    size: u64,
    checksum: &str,
    chunk_size: u64,
    overwrite: bool,
) -> Result<bool, ApiError> {
    let meta = match tokio::fs::symlink_metadata(path).await {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_error(format!("cannot inspect {}", path.display()), e)),
        Ok(meta) => meta,
    };
    if meta.is_dir() {
        return Err(ApiError::invalid(format!(
            "cannot write {}: a directory of that name exists",
            path.display()
        )));
    }
    if meta.is_file() && meta.len() == size {
        // Read back chunk by chunk, as a resumed download verifies its file.
        let held = Digests::default()
            .checksum(path, 0, size, chunk_size, &CancellationToken::new())
            .await?;
        if held == checksum {
            return Ok(true);
        }
    }
    if overwrite {
        return Ok(false);
    }
    Err(ApiError::new(
        ErrorCode::FileExists,
        format!(
            "{} already exists and differs from the file being downloaded; nothing was \
             written. Replace it with --overwrite (overwrite=True), or download elsewhere",
            path.display()
        ),
    ))
}

/// Give up a download: remove its partial files.
pub async fn discard(spec: &DownloadSpec) {
    for f in &spec.files {
        remove_leftover(&f.partial_path, "partial download").await;
    }
}

/// Create the parent directories of `path`, refusing one that resolves outside
/// `dest` (e.g. through a symlink that was already there).
async fn ensure_parent_inside(dest: &Path, path: &Path) -> Result<(), ApiError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| io_error(format!("cannot create {}", parent.display()), e))?;
    let real = tokio::fs::canonicalize(parent)
        .await
        .map_err(|e| io_error(format!("cannot resolve {}", parent.display()), e))?;
    if !real.starts_with(dest) {
        return Err(ApiError::invalid(format!(
            "refusing to write {}: it resolves outside {}",
            path.display(),
            dest.display()
        )));
    }
    Ok(())
}

/// Fetch every missing chunk, verify and publish each file.
pub async fn run(ctx: &RunContext, spec: &DownloadSpec) -> Result<DownloadResult, Stop> {
    let id = ctx.transfer_id.as_str();
    let finished: HashSet<u32> = ctx.journal.done_files(id).await?.into_iter().collect();
    let mut journaled: HashSet<(u32, u64)> = ctx
        .journal
        .chunks(id)
        .await?
        .into_iter()
        .map(|(f, c, _)| (f, c))
        .collect();
    let bytes_total = spec.bytes_total();
    let mut already = 0u64;
    let mut pending = Vec::new();
    let mut ids = std::collections::HashMap::new();
    for (fi, f) in spec.files.iter().enumerate() {
        if f.skipped || finished.contains(&f.file_index) {
            already += f.size;
            continue;
        }
        ensure_parent_inside(&spec.dest_dir, &f.partial_path).await?;
        let (path, size) = (f.partial_path.clone(), f.size);
        let (id_of_file, created) = tokio::task::spawn_blocking(move || open_partial(&path, size))
            .await
            .map_err(|e| ApiError::internal(format!("file task failed: {e}")))??;
        ids.insert(f.file_index, id_of_file);
        if created {
            // A new partial file: whatever the journal says about an old one is void.
            ctx.journal.clear_file(id, f.file_index).await?;
            journaled.retain(|(fi, _)| *fi != f.file_index);
        }
        for (index, offset, len) in plan_chunks(f.size, spec.chunk_size) {
            if journaled.contains(&(f.file_index, index)) {
                already += len;
            } else {
                pending.push((fi, index, offset, len));
            }
        }
    }

    let progress = Progress::start(
        TransferKind::Download,
        bytes_total,
        spec.chunk_size,
        already,
    );
    let digests = Digests::default();
    // Written chunks go to `sync_written`, which makes them durable and only
    // then journals them, many at a time: a slot starts its next GET at once
    // instead of waiting for an fsync of its own. At most PARALLEL_CHUNKS
    // written chunks wait for it (each holds a permit until journaled), so a
    // crash re-fetches at most that many besides the chunks in flight.
    let (written_tx, written_rx) = tokio::sync::mpsc::unbounded_channel();
    let unsynced = std::sync::Arc::new(tokio::sync::Semaphore::new(PARALLEL_CHUNKS));
    // Buffers for direct writes (on a disk: see `RangeWriter`), two per chunk
    // in flight, freed with the run.
    let pool = BufferPool::new(2 * PARALLEL_CHUNKS);
    let work = async {
        // Dropped when every chunk is through, which ends `sync_written`.
        let written_tx = written_tx;
        // What was written is still synced and journaled when this ends early.
        run_chunks(ctx, pending, |(fi, index, offset, len)| {
            let (progress, digests, written_tx) = (&progress, &digests, &written_tx);
            let (unsynced, pool) = (&unsynced, &pool);
            let f = &spec.files[fi];
            async move {
                let digest = if len > 0 {
                    retry(ctx, || fetch_chunk(ctx, spec, f, pool, index, offset, len)).await?
                } else {
                    ChunkDigest::whole_file().compute(&[])
                };
                digests.put(f.file_index, index, digest);
                let permit = unsynced.clone().acquire_owned().await;
                let permit = permit.map_err(|_| ApiError::internal("the chunk syncer stopped"))?;
                if written_tx.send((fi, index, len, permit)).is_err() {
                    // `sync_written` failed; its error is the one reported.
                    return Err(ApiError::internal("the chunk syncer stopped").into());
                }
                progress.chunk_done(ctx, f.file_index, &f.name, f.size, index, len);
                Ok(())
            }
        })
        .await
    };
    let (fetching, syncing) = futures::join!(work, sync_written(ctx, spec, already, written_rx));
    syncing?;
    fetching?;

    let mut files = Vec::new();
    for f in &spec.files {
        if !f.skipped && !finished.contains(&f.file_index) {
            ctx.check_stop()?;
            let written = ids.get(&f.file_index).copied();
            let written =
                written.ok_or_else(|| ApiError::internal("a partial file went missing"))?;
            publish(ctx, spec, f, &digests, written).await?;
        }
        files.push(DownloadedFile {
            local_path: f.final_path.to_string_lossy().into_owned(),
            size: f.size,
            filename: f.name.clone(),
            checksum: f.checksum.clone(),
            skipped: f.skipped,
        });
    }
    Ok(DownloadResult {
        asset_id: spec.asset_id.clone(),
        content_id: spec.content_id.clone(),
        transfer_id: ctx.transfer_id.clone(),
        total_bytes: bytes_total,
        files,
    })
}

/// Make written chunks durable, then journal them: each round takes every
/// chunk written so far, fsyncs their files once (one `fdatasync` covers all
/// of a file's chunks) and journals them together. Ends when the sender is
/// gone and everything it sent is journaled.
async fn sync_written(
    ctx: &RunContext,
    spec: &DownloadSpec,
    already: u64,
    mut written: tokio::sync::mpsc::UnboundedReceiver<(
        usize,
        u64,
        u64,
        tokio::sync::OwnedSemaphorePermit,
    )>,
) -> Result<(), Stop> {
    let mut durable = already;
    while let Some(first) = written.recv().await {
        let mut round = vec![first];
        while let Ok(more) = written.try_recv() {
            round.push(more);
        }
        let mut files: Vec<usize> = round.iter().map(|c| c.0).collect();
        files.sort_unstable();
        files.dedup();
        for fi in files {
            let path = spec.files[fi].partial_path.clone();
            tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .and_then(|f| f.sync_data())
                    .map_err(|e| io_error(format!("cannot sync {}", path.display()), e))
            })
            .await
            .map_err(|e| ApiError::internal(format!("sync task failed: {e}")))??;
        }
        for (fi, index, len, _permit) in round {
            let f = &spec.files[fi];
            ctx.journal
                .add_chunk(&ctx.transfer_id, f.file_index, index, len)
                .await?;
            durable += len;
        }
        ctx.journal
            .set_bytes_done(&ctx.transfer_id, durable)
            .await?;
    }
    Ok(())
}

/// Verify a complete partial file and rename it into place.
async fn publish(
    ctx: &RunContext,
    spec: &DownloadSpec,
    f: &DlFile,
    digests: &Digests,
    written: FileId,
) -> Result<(), ApiError> {
    let got = digests
        .checksum(
            &f.partial_path,
            f.file_index,
            f.size,
            spec.chunk_size,
            &ctx.cancel,
        )
        .await?;
    if got != f.checksum {
        // The bytes are bad (e.g. a blob corrupted at rest): start this file over
        // on a resume rather than re-hashing the same bad data.
        remove_leftover(&f.partial_path, "partial download").await;
        ctx.journal
            .clear_file(&ctx.transfer_id, f.file_index)
            .await?;
        return Err(ApiError::new(
            ErrorCode::Integrity,
            format!(
                "downloaded {} does not match the server checksum (expected {}, got {got})",
                f.name, f.checksum
            ),
        ));
    }
    let (from, to) = (f.partial_path.clone(), f.final_path.clone());
    tokio::task::spawn_blocking(move || rename_verified(&from, &to, written))
        .await
        .map_err(|e| ApiError::internal(format!("file task failed: {e}")))??;
    ctx.journal
        .mark_file_done(&ctx.transfer_id, f.file_index)
        .await
}

/// Which file a path held: to tell that the file renamed into place is the
/// one this run wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(st: &rustix::fs::Stat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// `path`'s directory (opened as a handle, the last component not followed)
/// and its file name.
fn dir_and_name(path: &Path) -> Result<(std::os::fd::OwnedFd, &std::ffi::OsStr), ApiError> {
    use rustix::fs::{Mode, OFlags};
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(ApiError::internal(format!(
            "{} has no directory",
            path.display()
        )));
    };
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(rustix::fs::CWD, dir, flags, Mode::empty())
        .map_err(|e| io_error(format!("cannot open directory {}", dir.display()), e.into()))?;
    Ok((fd, name))
}

/// Open the partial file at `path` sized to `size`: the one an earlier run
/// left (re-opened with `O_NOFOLLOW`), or a new one created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW` under a handle of its directory — so a
/// symlink planted under its name is never followed (it is removed, and the
/// file starts over). Answers the file's identity and whether it is new.
/// Blocking.
fn open_partial(path: &Path, size: u64) -> Result<(FileId, bool), ApiError> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    use rustix::io::Errno;
    let (dir, name) = dir_and_name(path)?;
    let cannot =
        |what: &str, e: Errno| io_error(format!("cannot {what} {}", path.display()), e.into());
    // NONBLOCK: a FIFO planted under the name must not hang the open.
    let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let (fd, created) = match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => (fd, false),
        Err(e) if e == Errno::NOENT || e == Errno::LOOP => {
            if e == Errno::LOOP {
                tracing::warn!(
                    "removing a symlink found at {}; not following it",
                    path.display()
                );
                rustix::fs::unlinkat(&dir, name, AtFlags::empty())
                    .map_err(|e| cannot("remove the symlink", e))?;
            }
            let create = flags | OFlags::CREATE | OFlags::EXCL;
            let fd = rustix::fs::openat(&dir, name, create, Mode::from_raw_mode(0o600))
                .map_err(|e| cannot("create", e))?;
            (fd, true)
        }
        Err(e) => return Err(cannot("open", e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| cannot("inspect", e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(ApiError::invalid(format!(
            "refusing to download into {}: it is not a regular file",
            path.display()
        )));
    }
    let file = std::fs::File::from(fd);
    if file.metadata().map(|m| m.len()).ok() != Some(size) {
        file.set_len(size)
            .map_err(|e| io_error(format!("cannot size {}", path.display()), e))?;
    }
    Ok((FileId::of(&st), created))
}

/// Rename the verified partial file `from` to `to` (same directory), checking
/// before and after that the file moved is `written`; then make the rename
/// durable. Blocking.
fn rename_verified(from: &Path, to: &Path, written: FileId) -> Result<(), ApiError> {
    use rustix::fs::AtFlags;
    let (dir, from_name) = dir_and_name(from)?;
    let to_name = to.file_name().unwrap_or_default();
    let held = |name: &std::ffi::OsStr, shown: &Path| {
        rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| FileId::of(&st))
            .map_err(|e| io_error(format!("cannot inspect {}", shown.display()), e.into()))
    };
    let replaced = |shown: &Path| {
        ApiError::new(
            ErrorCode::Integrity,
            format!(
                "{} is not the file this download wrote (it was replaced meanwhile)",
                shown.display()
            ),
        )
    };
    if held(from_name, from)? != written {
        return Err(replaced(from));
    }
    rustix::fs::renameat(&dir, from_name, &dir, to_name)
        .map_err(|e| io_error(format!("cannot rename to {}", to.display()), e.into()))?;
    if held(to_name, to)? != written {
        return Err(replaced(to));
    }
    // The file is complete and verified either way; a failure here only means
    // a power cut might undo the rename.
    if let Err(e) = rustix::fs::fsync(&dir) {
        tracing::warn!("cannot fsync the directory of {}: {e}", to.display());
    }
    Ok(())
}

/// GET one chunk and write it at its offset (not yet synced: see
/// [`sync_written`]); answers its digest. Each byte is hashed once, as it comes
/// off the socket, and written from the pieces the HTTP client received it in:
/// on tmpfs each piece at once, while it is still in the CPU's cache; on a
/// disk gathered into `pool`'s aligned buffers for `O_DIRECT`, or for short
/// ranges through the page cache with one `pwritev` per batch of pieces — see
/// [`RangeWriter`].
async fn fetch_chunk(
    ctx: &RunContext,
    spec: &DownloadSpec,
    f: &DlFile,
    pool: &BufferPool,
    index: u64,
    offset: u64,
    len: u64,
) -> Result<[u8; 32], Failure> {
    crate::faults::before_chunk().await;
    let resp = ctx
        .client
        .get_file_range(&spec.asset_id, &spec.content_id, f.file_index, offset, len)
        .await?;
    let status = resp.status().as_u16();
    // A 200 is only acceptable when the range we asked for is the whole file.
    if !(status == 206 || (status == 200 && offset == 0 && len == f.size)) {
        return Err(ApiError::internal(format!(
            "server answered HTTP {status} to a range request for {}",
            f.name
        ))
        .into());
    }
    let local = |what: &str, e: std::io::Error| {
        Failure::local(io_error(
            format!("cannot {what} {}", f.partial_path.display()),
            e,
        ))
    };
    let mut out =
        RangeWriter::open(&f.partial_path, offset, len, pool).map_err(|e| local("open", e))?;
    let digest = ChunkDigest::of(f.size, spec.chunk_size, index);
    let mut hasher = digest.hasher();
    let mut written = 0u64;
    let mut body = resp.bytes_stream();
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| ctx.client.transport_error(e))?;
        written += piece.len() as u64;
        if written > len {
            return Err(ApiError::internal(format!(
                "server sent more than the {len} bytes asked for {}",
                f.name
            ))
            .into());
        }
        hasher.update(&piece);
        faults::before_write(piece.len()).map_err(|e| local("write", e))?;
        out.write(piece).await.map_err(|e| local("write", e))?;
    }
    out.finish().await.map_err(|e| local("write", e))?;
    if written != len {
        return Err(ApiError::new(
            ErrorCode::ServerUnreachable,
            format!(
                "connection ended after {written} of {len} bytes of {}",
                f.name
            ),
        )
        .into());
    }
    Ok(digest.finalize(&hasher))
}
