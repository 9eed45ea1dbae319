//! [`BlobStore`] on a local directory: the embedded default.
//!
//! Layout: `ROOT/content/<content_id>/<file_index>/<chunk_index>`, one file per
//! chunk. A chunk is first streamed into a temporary file next to its final
//! name, hashed and fsynced, then hard-linked into place: `link` fails when the
//! name exists, which gives the no-clobber guarantee without a lock.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::fs;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use dataerai_proto::io::{on_tmpfs, BufferPool, RangeWriter};

use super::{
    check_content_id, BlobStore, BodyCheck, ByteStream, ChunkCheck, ChunkKey, PutOutcome,
    SmallChunk, StoredContent,
};
use crate::error::{Result, StoreError};

/// Buffer size for reading chunk files back.
const READ_BUF: usize = 256 * 1024;
/// Pieces a chunk range is sent in: each costs a hop to a blocking thread
/// (and, mapped, a mapping and its removal), so not too many per chunk (1 MiB
/// pieces cost 64 of each per 64 MiB chunk); each is held in memory until the
/// socket took it.
const PIECE: u64 = 4 * 1024 * 1024;
/// The stride that touches every page of a mapping once.
const PAGE: usize = 4096;

/// Open a chunk file holding at least `offset + len` bytes, and start reading
/// the range from the disk (blocking).
///
/// The read is started for the whole range at once (`POSIX_FADV_WILLNEED`:
/// the kernel queues it and returns), not left to the reads of
/// [`read_pieces`], each of which would wait for its own piece before the
/// next is asked for: a chunk written with `O_DIRECT` (not in the page cache)
/// then came off the disk in small reads one after another while the socket
/// waited — downloads on a disk ran at 0.6× the upload's speed
/// (docs/performance.md). A no-op on tmpfs, whose pages are the file.
fn open_range(path: &Path, offset: u64, len: u64) -> io::Result<std::fs::File> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    if offset.checked_add(len).is_none_or(|end| end > size) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} is shorter than the range asked for", path.display()),
        ));
    }
    // Only a hint: the reads of the pieces read whatever it did not.
    let _ = rustix::fs::fadvise(
        &file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::WillNeed,
    );
    Ok(file)
}

/// `len` bytes of a chunk file from `offset`, memory-mapped and read in
/// (blocking): they go from the page cache to the socket without a copy into
/// a buffer of ours. The mapping goes when the piece has been sent.
///
/// The pages are faulted in here, on the blocking thread, by reading one byte
/// of each (a read fault maps the pages around it too), so the worker that
/// writes the piece to the socket never waits for the disk. Not with
/// `MAP_POPULATE`: it marks every page accessed one by one, which moves pages
/// between LRU lists under a lock — a fifth of the server's cycles for a
/// download from tmpfs (docs/performance.md).
fn map_piece(file: &std::fs::File, offset: u64, len: usize) -> io::Result<bytes::Bytes> {
    // SAFETY: a chunk file is never written again once it is linked under its
    // name (writes go to a temporary file first, and `link` never replaces),
    // and removing it leaves an existing mapping intact; so the mapped bytes
    // cannot change while the mapping lives.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)?
    };
    // Read ahead of the faults on a disk; only a hint.
    let _ = map.advise(memmap2::Advice::Sequential);
    for at in (0..len).step_by(PAGE) {
        std::hint::black_box(map[at]);
    }
    Ok(bytes::Bytes::from_owner(map))
}

/// `[offset, offset + len)` of an opened chunk file as pieces of [`PIECE`]
/// bytes, each read on a blocking thread, so a worker thread never waits for
/// the disk: copied into one of `pool`'s reused buffers (which goes back to
/// the pool once the socket took the piece), or without a pool mapped
/// ([`map_piece`]).
///
/// Which is cheaper depends on where the pages come from, measured side by
/// side (docs/performance.md): on a disk the copy cost the server less than
/// mapping and unmapping the pages the read-ahead just filled; on tmpfs,
/// whose pages are the file, the mapping cost less than the copy.
fn read_pieces(
    file: std::fs::File,
    offset: u64,
    len: u64,
    pool: Option<BufferPool>,
) -> impl futures::Stream<Item = io::Result<bytes::Bytes>> + Send {
    let file = std::sync::Arc::new(file);
    futures::stream::try_unfold(0u64, move |done| {
        let (file, pool) = (file.clone(), pool.clone());
        async move {
            if done >= len {
                return Ok(None);
            }
            let (at, n) = (offset + done, (len - done).min(PIECE));
            let piece = tokio::task::spawn_blocking(move || match pool {
                Some(pool) => pool.read_at(&file, at, n as usize),
                None => map_piece(&file, at, n as usize),
            })
            .await
            .map_err(io::Error::other)??;
            Ok(Some((piece, done + n)))
        }
    })
}

#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    /// Buffers for direct writes of big chunks and for the pieces of
    /// downloads, kept for the next chunk.
    pool: BufferPool,
    /// Directory fsyncs shared by the writers waiting for the same directory.
    dir_syncs: Arc<DirSyncs>,
    /// Whether a file's fsync also makes the directories created on the way
    /// to it durable ([`file_fsync_covers_new_dirs`]).
    new_dirs_synced: bool,
}

/// Spare buffers the store keeps (8 MiB each): enough for the four chunks in
/// flight of one big upload (two each), or for the pieces of one big
/// download from a disk (one being sent and one being read per connection).
const SPARE_BUFFERS: usize = 8;

impl FsBlobStore {
    /// Use `root` (created if missing) as the blob directory.
    pub async fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root.join("content")).await?;
        let at = root.to_path_buf();
        let new_dirs_synced = tokio::task::spawn_blocking(move || file_fsync_covers_new_dirs(&at))
            .await
            .unwrap_or(false);
        Ok(FsBlobStore {
            root: root.to_path_buf(),
            pool: BufferPool::new(SPARE_BUFFERS),
            dir_syncs: Arc::default(),
            new_dirs_synced,
        })
    }

    fn content_dir(&self, content_id: &str) -> Result<PathBuf> {
        // Ids come from our own database, but a path must never escape the root.
        check_content_id(content_id)?;
        Ok(self.root.join("content").join(content_id))
    }

    fn chunk_path(&self, key: &ChunkKey) -> Result<PathBuf> {
        Ok(self
            .content_dir(&key.content_id)?
            .join(key.file_index.to_string())
            .join(key.chunk_index.to_string()))
    }
}

/// Add the files below `dir` (chunks and temporary files of writes in
/// progress or interrupted) to `stored` (blocking).
fn tally(dir: &Path, stored: &mut StoredContent) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let modified: DateTime<Utc> = meta.modified()?.into();
        stored.newest = stored.newest.max(modified);
        if meta.is_dir() {
            tally(&entry.path(), stored)?;
        } else {
            stored.objects += 1;
            stored.bytes += meta.len();
        }
    }
    Ok(())
}

/// Chunks up to this size are received into memory, then written, fsynced and
/// linked in one blocking call: a small chunk costs one thread hop, not one per
/// file-system operation.
const SMALL_CHUNK: u64 = 1024 * 1024;

/// Whether the stored chunk file at `path` passes `check` (blocking).
fn passes(path: &Path, check: ChunkCheck) -> io::Result<bool> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut verifier = check.verifier();
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(verifier.finish().is_ok());
        }
        if verifier.piece(&buf[..n]).is_err() {
            return Ok(false);
        }
    }
}

/// Make a rename or link durable: fsync the directory holding it (blocking).
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Directory fsyncs as a group commit: a writer that needs a directory
/// durable waits for one fsync of it that *started after* its own change
/// (the link or `mkdir`), and one fsync serves every writer waiting by then.
/// A batch of small files stored at once pays one fsync of `content/` (and
/// of any directory they share) instead of one per file, and still no file
/// is acknowledged before its name and every directory above it are durable.
#[derive(Debug, Default)]
struct DirSyncs {
    dirs: Mutex<HashMap<PathBuf, Arc<DirSync>>>,
}

/// The fsyncs of one directory: `requested` counts the changes made in it
/// so far (a writer's ticket), `synced` the last ticket a finished fsync
/// covers.
#[derive(Debug, Default)]
struct DirSync {
    state: Mutex<SyncState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    requested: u64,
    synced: u64,
    running: bool,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DirSyncs {
    /// Make what was done in `dir` so far durable (blocking).
    fn sync(&self, dir: &Path) -> io::Result<()> {
        self.sync_with(dir, sync_dir)
    }

    /// [`DirSyncs::sync`] with `fsync` as the way to sync (tests count calls).
    fn sync_with(&self, dir: &Path, fsync: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
        let entry = locked(&self.dirs)
            .entry(dir.to_path_buf())
            .or_default()
            .clone();
        let outcome = entry.sync(dir, fsync);
        // Forget the directory once nobody else waits on it (the map holds
        // one reference, this writer the other): the map stays as small as
        // the set of directories being written right now.
        let mut dirs = locked(&self.dirs);
        if Arc::strong_count(&entry) == 2 && locked(&entry.state).is_idle() {
            dirs.remove(dir);
        }
        outcome
    }
}

impl SyncState {
    fn is_idle(&self) -> bool {
        !self.running && self.synced == self.requested
    }
}

impl DirSync {
    fn sync(&self, dir: &Path, fsync: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
        let mut st = locked(&self.state);
        st.requested += 1;
        let ticket = st.requested;
        loop {
            if st.synced >= ticket {
                return Ok(());
            }
            if !st.running {
                // Covers every change made before it starts.
                st.running = true;
                let target = st.requested;
                drop(st);
                let outcome = fsync(dir);
                st = locked(&self.state);
                st.running = false;
                if outcome.is_ok() {
                    st.synced = st.synced.max(target);
                }
                self.done.notify_all();
                // On failure the waiters try again themselves.
                return outcome;
            }
            st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Whether `root` is on ext4 with a journal, where the fsync of a new file
/// also makes the directories created on the way to it durable, so that only
/// the directory that gains the chunk's name after that fsync (by `link`)
/// needs one of its own: the fsync commits the journal transaction holding
/// the file's creation, and the journal commits its transactions in order, so
/// the `mkdir`s made before are durable with it (`ext4_fsync_journal`).
///
/// Without a journal (`ext4_fsync_nojournal`) the kernel walks up the new
/// parents itself, but a concurrent fsync can find a parent already being
/// written by another and return before that write ends, so there every
/// directory is synced. The type and device come from `/proc/self/mountinfo`
/// (not `statfs`: ext2 and ext3 share ext4's magic number), the journal from
/// `/proc/fs/jbd2/<device>-<inode>`. Anything else, or any doubt, answers
/// `false`: every directory is synced.
fn file_fsync_covers_new_dirs(root: &Path) -> bool {
    let (Ok(root), Ok(mounts)) = (
        std::fs::canonicalize(root),
        std::fs::read_to_string("/proc/self/mountinfo"),
    ) else {
        return false;
    };
    match mount_of(&mounts, &root) {
        Some(("ext4", source)) => has_journal(source),
        _ => false,
    }
}

/// Whether the block device `source` (`/dev/vda1`) has a running jbd2
/// journal (`/proc/fs/jbd2/vda1-8`).
fn has_journal(source: &str) -> bool {
    let Some(device) = source.strip_prefix("/dev/") else {
        return false;
    };
    let Ok(journals) = std::fs::read_dir("/proc/fs/jbd2") else {
        return false;
    };
    journals.flatten().any(|j| {
        j.file_name()
            .to_str()
            .and_then(|name| name.rsplit_once('-'))
            .is_some_and(|(dev, _)| dev == device)
    })
}

/// The file system type and source of the mount (of `mountinfo`, in the
/// format of `/proc/self/mountinfo`) holding the absolute path `path`: the
/// last listed of the deepest mount points above it.
fn mount_of<'a>(mountinfo: &'a str, path: &Path) -> Option<(&'a str, &'a str)> {
    let mut best: Option<(usize, (&str, &str))> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(dash)) = (fields.get(4), fields.iter().position(|f| *f == "-"))
        else {
            continue;
        };
        let (point, Some(kind), Some(source)) = (
            unescape_mount_point(point),
            fields.get(dash + 1),
            fields.get(dash + 2),
        ) else {
            continue;
        };
        let depth = Path::new(&point).components().count();
        if path.starts_with(&point) && best.is_none_or(|(d, _)| depth >= d) {
            best = Some((depth, (kind, source)));
        }
    }
    best.map(|(_, mount)| mount)
}

/// A mount point as `mountinfo` writes it, with space, tab, newline and
/// backslash as octal escapes (`\040`).
fn unescape_mount_point(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where a verified, fsynced temporary chunk file goes.
struct Placement {
    tmp: PathBuf,
    path: PathBuf,
    /// `ROOT/content`, the top of the directories the chunk's name may have needed.
    content_root: PathBuf,
    check: ChunkCheck,
    dir_syncs: Arc<DirSyncs>,
    /// See [`FsBlobStore::new_dirs_synced`].
    new_dirs_synced: bool,
}

impl Placement {
    /// Link the temporary file under the chunk's name unless the name exists
    /// (no-clobber), remove the temporary name, and make it durable (blocking).
    fn publish(&self) -> Result<PutOutcome> {
        let outcome = self.link()?;
        if outcome == PutOutcome::Stored {
            // Writers storing at the same time share these fsyncs.
            for dir in self.dirs() {
                self.dir_syncs.sync(dir)?;
            }
        }
        Ok(outcome)
    }

    /// Link the temporary file under the chunk's name unless the name exists
    /// (no-clobber) and remove the temporary name (blocking). `Stored` is not
    /// durable yet: every directory of [`Placement::dirs`] must be synced.
    fn link(&self) -> Result<PutOutcome> {
        let linked = std::fs::hard_link(&self.tmp, &self.path);
        let _ = std::fs::remove_file(&self.tmp);
        match linked {
            Ok(()) => Ok(PutOutcome::Stored),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Only verified bytes are ever linked, so comparing digests is enough.
                if passes(&self.path, self.check)? {
                    Ok(PutOutcome::AlreadyStored)
                } else {
                    Ok(PutOutcome::Conflict)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The directories a new name must have synced before its ack: the
    /// chunk's (which gained the name), and — unless the temporary file's
    /// fsync covered them ([`file_fsync_covers_new_dirs`]) — the one above
    /// and `content/` (the first two may have just been created for it).
    fn dirs(&self) -> Vec<&Path> {
        let dir = self.path.parent().expect("chunk path has a parent");
        if self.new_dirs_synced {
            return vec![dir];
        }
        let file_dir = dir.parent().expect("file dir has a parent");
        vec![dir, file_dir, &self.content_root]
    }

    /// Write a small verified chunk held in memory to the temporary file and
    /// fsync it (blocking).
    fn write_temp(&self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        std::fs::create_dir_all(self.path.parent().expect("chunk path has a parent"))?;
        let written = std::fs::File::create(&self.tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(e.into());
        }
        Ok(())
    }

    /// Write a small verified chunk held in memory, then publish it (blocking).
    fn write_and_publish(&self, bytes: &[u8]) -> Result<PutOutcome> {
        self.write_temp(bytes)?;
        self.publish()
    }
}

/// Check a chunk held in memory against `check`.
fn verify(bytes: &[u8], check: ChunkCheck) -> Result<()> {
    let mut verifier = check.verifier();
    verifier.piece(bytes)?;
    verifier.finish().map(|_| ())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(io::Error::other(e)))?
}

impl FsBlobStore {
    /// Where chunk `key` goes, by way of a temporary file next to it.
    fn placement(&self, key: &ChunkKey, check: ChunkCheck) -> Result<Placement> {
        let (path, tmp) = self.chunk_and_temp_paths(key)?;
        Ok(self.placement_at(path, tmp, check))
    }

    /// The chunk's path and a new temporary name next to it.
    fn chunk_and_temp_paths(&self, key: &ChunkKey) -> Result<(PathBuf, PathBuf)> {
        let path = self.chunk_path(key)?;
        let dir = path.parent().expect("chunk path has a parent");
        let tmp = dir.join(format!(".{}.tmp-{}", key.chunk_index, Uuid::new_v4()));
        Ok((path, tmp))
    }

    fn placement_at(&self, path: PathBuf, tmp: PathBuf, check: ChunkCheck) -> Placement {
        Placement {
            tmp,
            path,
            content_root: self.root.join("content"),
            check,
            dir_syncs: self.dir_syncs.clone(),
            new_dirs_synced: self.new_dirs_synced,
        }
    }

    /// Stream into `tmp`, checking length and digest; fsync on success.
    /// Answers the chunk as verified.
    async fn write_verified(
        tmp: &Path,
        mut body: ByteStream,
        check: BodyCheck,
        pool: &BufferPool,
    ) -> Result<ChunkCheck> {
        std::fs::File::create(tmp)?;
        let mut out = RangeWriter::open(tmp, 0, check.len, pool)?;
        let mut verifier = check.verifier();
        while let Some(piece) = verifier.next(&mut body).await? {
            out.write(piece).await?;
        }
        let file = out.finish().await?;
        let verified = verifier.finish()?;
        blocking(move || Ok(file.sync_all()?)).await?;
        Ok(verified)
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put_chunk(
        &self,
        key: &ChunkKey,
        mut body: ByteStream,
        check: BodyCheck,
    ) -> Result<PutOutcome> {
        if check.len <= SMALL_CHUNK {
            let mut verifier = check.verifier();
            let mut bytes = Vec::with_capacity(check.len as usize);
            while let Some(piece) = verifier.next(&mut body).await? {
                bytes.extend_from_slice(&piece);
            }
            let place = self.placement(key, verifier.finish()?)?;
            return blocking(move || place.write_and_publish(&bytes)).await;
        }
        let (path, tmp) = self.chunk_and_temp_paths(key)?;
        fs::create_dir_all(path.parent().expect("chunk path has a parent")).await?;
        // The digest may come after the body: a chunk file already under the
        // name is compared with the verified check.
        let verified = match Self::write_verified(&tmp, body, check, &self.pool).await {
            Ok(verified) => verified,
            Err(e) => {
                let _ = fs::remove_file(&tmp).await;
                return Err(e);
            }
        };
        let place = self.placement_at(path, tmp, verified);
        blocking(move || place.publish()).await
    }

    /// Small chunks in three steps, each for all of them at once, so their
    /// fsyncs share the file system's journal commits instead of queueing
    /// one after the other (docs/performance.md, "Small files"): every
    /// chunk is checked, written to its temporary file and fsynced; then
    /// every one is linked into place; then every directory that gained a
    /// name is fsynced once. No chunk is `Stored` before its bytes, its name
    /// and every directory above it are durable.
    async fn put_small_chunks(&self, chunks: Vec<SmallChunk>) -> Vec<Result<PutOutcome>> {
        // A lone chunk (`upload()` of one small file) is stored as `put_chunk`
        // stores a small one: checked, written, linked and its directories
        // synced on one trip to a blocking thread.
        if chunks.len() == 1 {
            let c = chunks.into_iter().next().expect("one chunk");
            let outcome = match self.placement(&c.key, c.check) {
                Ok(place) => {
                    blocking(move || {
                        verify(&c.bytes, place.check)?;
                        place.write_and_publish(&c.bytes)
                    })
                    .await
                }
                Err(e) => Err(e),
            };
            return vec![outcome];
        }
        let written = futures::future::join_all(chunks.into_iter().map(|c| {
            let place = self.placement(&c.key, c.check);
            async move {
                let place = place?;
                blocking(move || {
                    verify(&c.bytes, place.check)?;
                    place.write_temp(&c.bytes)?;
                    Ok(place)
                })
                .await
            }
        }))
        .await;
        let n = written.len();
        let linked = blocking(move || {
            Ok(written
                .into_iter()
                .map(|w| w.and_then(|place| Ok((place.link()?, place))))
                .collect::<Vec<_>>())
        })
        .await
        .unwrap_or_else(|e| {
            let e = e.to_string();
            (0..n)
                .map(|_| Err(StoreError::Io(io::Error::other(e.clone()))))
                .collect()
        });
        let mut dirs: Vec<PathBuf> = linked
            .iter()
            .filter_map(|l| match l {
                Ok((PutOutcome::Stored, place)) => Some(place.dirs()),
                _ => None,
            })
            .flatten()
            .map(Path::to_path_buf)
            .collect();
        dirs.sort();
        dirs.dedup();
        let synced: HashMap<PathBuf, std::result::Result<(), String>> =
            futures::future::join_all(dirs.into_iter().map(|dir| {
                let syncs = self.dir_syncs.clone();
                async move {
                    let d = dir.clone();
                    let outcome = blocking(move || Ok(syncs.sync(&d)?)).await;
                    (dir, outcome.map_err(|e| e.to_string()))
                }
            }))
            .await
            .into_iter()
            .collect();
        linked
            .into_iter()
            .map(|l| {
                let (outcome, place) = l?;
                if outcome == PutOutcome::Stored {
                    for dir in place.dirs() {
                        if let Some(Err(e)) = synced.get(dir) {
                            return Err(StoreError::Io(io::Error::other(format!(
                                "cannot sync {}: {e}",
                                dir.display()
                            ))));
                        }
                    }
                }
                Ok(outcome)
            })
            .collect()
    }

    async fn read_chunk(
        &self,
        key: &ChunkKey,
        _digest: Option<&str>,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream> {
        let path = self.chunk_path(key)?;
        let file = tokio::task::spawn_blocking(move || open_range(&path, offset, len))
            .await
            .map_err(|e| StoreError::Io(io::Error::other(e)))?
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    StoreError::NotFound(format!(
                        "chunk {} of file {} of content {}",
                        key.chunk_index, key.file_index, key.content_id
                    ))
                } else {
                    e.into()
                }
            })?;
        let pool = (!on_tmpfs(&file)).then(|| self.pool.clone());
        Ok(Box::pin(read_pieces(file, offset, len, pool)))
    }

    async fn delete_content(&self, content_id: &str) -> Result<()> {
        match fs::remove_dir_all(self.content_dir(content_id)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn list_contents(&self) -> Result<Vec<StoredContent>> {
        let area = self.root.join("content");
        blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&area)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(content_id) = name.to_str() else {
                    continue;
                };
                if check_content_id(content_id).is_err() || !entry.file_type()?.is_dir() {
                    continue;
                }
                let mut stored = StoredContent {
                    content_id: content_id.to_string(),
                    objects: 0,
                    bytes: 0,
                    newest: entry.metadata()?.modified()?.into(),
                };
                match tally(&entry.path(), &mut stored) {
                    // Removed meanwhile (an abort): nothing left to weigh.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    done => done?,
                }
                out.push(stored);
            }
            Ok(out)
        })
        .await
    }

    async fn check_writable(&self) -> Result<()> {
        let probe = self.root.join(format!(".ready-{}", Uuid::new_v4()));
        let written = async {
            let mut file = fs::File::create(&probe).await?;
            file.write_all(b"ok").await?;
            file.sync_all().await
        }
        .await;
        let _ = fs::remove_file(&probe).await;
        Ok(written?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn body(parts: &[&'static [u8]]) -> ByteStream {
        let items: Vec<io::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Box::pin(futures::stream::iter(items))
    }

    async fn read_all(s: ByteStream) -> Vec<u8> {
        crate::blob::read_to_vec(s).await.unwrap()
    }

    /// The check of a one-chunk file holding exactly `data`.
    fn whole_file(data: &[u8]) -> ChunkCheck {
        ChunkCheck::whole_file(data.len() as u64, *blake3::hash(data).as_bytes())
    }

    fn key(chunk: u64) -> ChunkKey {
        ChunkKey {
            content_id: "c-1".into(),
            file_index: 0,
            chunk_index: chunk,
        }
    }

    fn small(content_id: &str, data: &'static [u8], check: ChunkCheck) -> SmallChunk {
        SmallChunk {
            key: ChunkKey {
                content_id: content_id.into(),
                file_index: 0,
                chunk_index: 0,
            },
            bytes: Bytes::from_static(data),
            check,
        }
    }

    /// Small chunks stored as a group answer what `put_chunk` would answer
    /// for each, in order: new ones stored and readable, the same bytes
    /// again `AlreadyStored`, other bytes under a taken key `Conflict` (the
    /// stored ones kept), bytes that fail their check refused and not
    /// stored; and no temporary file is left anywhere.
    #[tokio::test]
    async fn small_chunks_stored_together_answer_each_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let taken = store
            .put_chunk(&key(0), body(&[b"first"]), whole_file(b"first").into())
            .await;
        assert_eq!(taken.unwrap(), PutOutcome::Stored);

        let outcomes = store
            .put_small_chunks(vec![
                small("c-2", b"two", whole_file(b"two")),
                small("c-1", b"first", whole_file(b"first")),
                small("c-1", b"FIRST", whole_file(b"FIRST")),
                small("c-3", b"bad", whole_file(b"BAD")),
                small("c-4", b"four", whole_file(b"four")),
            ])
            .await;
        let outcomes: Vec<_> = outcomes
            .into_iter()
            .map(|o| o.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(outcomes[0], Ok(PutOutcome::Stored));
        assert_eq!(outcomes[1], Ok(PutOutcome::AlreadyStored));
        assert_eq!(outcomes[2], Ok(PutOutcome::Conflict));
        assert!(
            matches!(&outcomes[3], Err(e) if e.contains("digest")),
            "{:?}",
            outcomes[3]
        );
        assert_eq!(outcomes[4], Ok(PutOutcome::Stored));

        let read = |content_id: &'static str| {
            let store = &store;
            async move {
                let k = ChunkKey {
                    content_id: content_id.into(),
                    file_index: 0,
                    chunk_index: 0,
                };
                read_all(store.read_chunk(&k, None, 0, 3).await.unwrap()).await
            }
        };
        assert_eq!(read("c-2").await, b"two");
        assert_eq!(read("c-4").await, b"fou");
        assert_eq!(read("c-1").await, b"fir");
        assert!(!dir.path().join("content/c-3/0/0").exists());
        for content_id in ["c-1", "c-2", "c-3", "c-4"] {
            let folder = dir.path().join("content").join(content_id).join("0");
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            let names: Vec<_> = entries.map(|e| e.unwrap().file_name()).collect();
            assert!(
                names.iter().all(|n| n.to_string_lossy() == "0"),
                "{content_id}: {names:?}"
            );
        }
    }

    /// The mount holding a path is the deepest mount point above it (the
    /// last listed when one is mounted over another), escapes decoded; a
    /// mount point that only shares a prefix of a name does not hold it.
    #[test]
    fn the_file_system_type_comes_from_the_deepest_mount() {
        let mountinfo = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 27 0:40 / /data rw - xfs /dev/vdb rw
31 30 0:41 / /data/fast rw shared:5 - tmpfs tmpfs rw
32 27 0:42 / /with\\040space rw - btrfs /dev/vdc rw
33 27 0:43 / /data rw - ext2 /dev/vdd rw
";
        let kind = |p: &str| mount_of(mountinfo, Path::new(p));
        assert_eq!(kind("/work/x"), Some(("ext4", "/dev/vda")));
        assert_eq!(kind("/data/blobs"), Some(("ext2", "/dev/vdd")));
        assert_eq!(kind("/data/fast/blobs"), Some(("tmpfs", "tmpfs")));
        assert_eq!(kind("/datafast"), Some(("ext4", "/dev/vda")));
        assert_eq!(kind("/with space/blobs"), Some(("btrfs", "/dev/vdc")));
        assert_eq!(mount_of("garbage\n", Path::new("/")), None);
        assert!(!has_journal("tmpfs"));
        assert!(!has_journal("/dev/no-such-device"));
    }

    /// On the file system the tests run on, the store says whether it
    /// relies on the file's fsync for new directories, and a chunk it
    /// stores that way is durable under its name (its directories listed).
    #[tokio::test]
    async fn new_directories_are_synced_unless_the_file_fsync_covers_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        assert_eq!(
            store.new_dirs_synced,
            file_fsync_covers_new_dirs(dir.path())
        );
        let place = store.placement(&key(0), whole_file(b"x")).unwrap();
        let chunk_dir = dir.path().join("content/c-1/0");
        let expected: Vec<PathBuf> = if store.new_dirs_synced {
            vec![chunk_dir]
        } else {
            vec![
                chunk_dir,
                dir.path().join("content/c-1"),
                dir.path().join("content"),
            ]
        };
        assert_eq!(place.dirs(), expected);
    }

    /// A lone small chunk (stored on one blocking trip) answers as in a
    /// group: stored and readable, the same bytes again
    /// `AlreadyStored`, other bytes `Conflict` (the stored ones kept), bytes
    /// that fail their check refused; no temporary file is left.
    #[tokio::test]
    async fn a_lone_small_chunk_answers_as_in_a_group() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let put = |data: &'static [u8], check: ChunkCheck| {
            let store = &store;
            async move {
                let mut outcomes = store
                    .put_small_chunks(vec![small("c-9", data, check)])
                    .await;
                assert_eq!(outcomes.len(), 1);
                outcomes.pop().unwrap().map_err(|e| e.to_string())
            }
        };
        assert!(matches!(put(b"bad", whole_file(b"BAD")).await, Err(e) if e.contains("digest")));
        assert!(!dir.path().join("content/c-9/0/0").exists());
        assert_eq!(
            put(b"nine", whole_file(b"nine")).await,
            Ok(PutOutcome::Stored)
        );
        assert_eq!(
            put(b"nine", whole_file(b"nine")).await,
            Ok(PutOutcome::AlreadyStored)
        );
        assert_eq!(
            put(b"NINE", whole_file(b"NINE")).await,
            Ok(PutOutcome::Conflict)
        );
        let k = ChunkKey {
            content_id: "c-9".into(),
            file_index: 0,
            chunk_index: 0,
        };
        assert_eq!(
            read_all(store.read_chunk(&k, None, 0, 4).await.unwrap()).await,
            b"nine"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("content/c-9/0"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["0"]);
    }

    /// Writers that need a directory durable while an fsync of it runs share
    /// the next one: four writers arriving during a slow fsync cost one more
    /// fsync, not four; and a writer never returns on an fsync that started
    /// before its own change.
    #[test]
    fn directory_fsyncs_are_shared_by_waiting_writers() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Barrier;
        let syncs = Arc::new(DirSyncs::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let dir = PathBuf::from("/content");
        // The first fsync waits until four more writers have asked.
        let first_started = Arc::new(Barrier::new(2));
        let others_asked = Arc::new(Barrier::new(2));
        let fsync = {
            let (calls, first_started, others_asked) =
                (calls.clone(), first_started.clone(), others_asked.clone());
            move |_: &Path| {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    first_started.wait();
                    others_asked.wait();
                }
                Ok(())
            }
        };
        let first = {
            let (syncs, dir, fsync) = (syncs.clone(), dir.clone(), fsync.clone());
            std::thread::spawn(move || syncs.sync_with(&dir, fsync))
        };
        first_started.wait();
        let others: Vec<_> = (0..4)
            .map(|_| {
                let (syncs, dir, fsync) = (syncs.clone(), dir.clone(), fsync.clone());
                std::thread::spawn(move || syncs.sync_with(&dir, fsync))
            })
            .collect();
        // Every other writer holds its ticket before the first fsync ends.
        while locked(&syncs.dirs)
            .get(&dir)
            .map_or(0, |e| locked(&e.state).requested)
            < 5
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        others_asked.wait();
        first.join().unwrap().unwrap();
        for t in others {
            t.join().unwrap().unwrap();
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one fsync for the four waiters"
        );
        assert!(
            locked(&syncs.dirs).is_empty(),
            "idle directories are forgotten"
        );
    }

    /// A failed fsync fails its writer, and a waiter runs its own.
    #[test]
    fn a_failed_directory_fsync_is_not_taken_for_done() {
        let syncs = DirSyncs::default();
        let dir = Path::new("/content");
        assert!(syncs
            .sync_with(dir, |_| Err(io::Error::other("disk gone")))
            .is_err());
        let mut ran = false;
        syncs
            .sync_with(dir, |_| {
                ran = true;
                Ok(())
            })
            .unwrap();
        assert!(ran);
    }

    #[tokio::test]
    async fn put_verify_read_and_no_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let data = b"hello world";

        let k = key(0);
        let read = |offset: u64, len: u64| {
            let (store, k) = (&store, &k);
            async move { read_all(store.read_chunk(k, None, offset, len).await.unwrap()).await }
        };

        let out = store
            .put_chunk(&k, body(&[b"hello ", b"world"]), whole_file(data).into())
            .await;
        assert_eq!(out.unwrap(), PutOutcome::Stored);
        assert_eq!(read(0, 11).await, data);
        assert_eq!(read(6, 3).await, b"wor");

        // Same bytes again: idempotent.
        let again = store
            .put_chunk(&k, body(&[data]), whole_file(data).into())
            .await;
        assert_eq!(again.unwrap(), PutOutcome::AlreadyStored);

        // Different (self-consistent) bytes: refused, original kept.
        let other = b"HELLO WORLD";
        let out = store
            .put_chunk(&k, body(&[other]), whole_file(other).into())
            .await;
        assert_eq!(out.unwrap(), PutOutcome::Conflict);
        assert_eq!(read(0, 11).await, data);

        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("content/c-1/0"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[tokio::test]
    async fn a_digest_that_follows_the_body_is_checked_before_the_chunk_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        crate::blob::scenarios::digest_after_body(&store, "c-after").await;
    }

    /// A chunk in the middle of a file is checked by its chaining value at
    /// its offset; its plain BLAKE3 is refused, and so is a re-put check
    /// against the stored bytes with the wrong kind of digest.
    #[tokio::test]
    async fn middle_chunk_is_checked_by_its_chaining_value() {
        use dataerai_proto::digest::ChunkDigest;
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        static CHUNK: [u8; 1024] = [7u8; 1024];
        let digest = ChunkDigest::of(3000, 1024, 1);
        let plain = ChunkCheck {
            len: 1024,
            digest,
            hash: *blake3::hash(&CHUNK).as_bytes(),
        };
        assert!(matches!(
            store
                .put_chunk(&key(1), body(&[&CHUNK]), plain.into())
                .await,
            Err(StoreError::Integrity(_))
        ));
        let right = ChunkCheck {
            hash: digest.compute(&CHUNK),
            ..plain
        };
        let out = store
            .put_chunk(&key(1), body(&[&CHUNK[..100], &CHUNK[100..]]), right.into())
            .await
            .unwrap();
        assert_eq!(out, PutOutcome::Stored);
        let again = store
            .put_chunk(&key(1), body(&[&CHUNK]), right.into())
            .await;
        assert_eq!(again.unwrap(), PutOutcome::AlreadyStored);
    }

    /// Chunks over SMALL_CHUNK are streamed to disk, not held in memory; the
    /// same guarantees hold.
    #[tokio::test]
    async fn big_chunks_are_streamed_with_the_same_checks() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let big: &'static [u8] = Box::leak(vec![3u8; 2 * SMALL_CHUNK as usize].into_boxed_slice());
        let other: &'static [u8] = Box::leak(vec![4u8; big.len()].into_boxed_slice());
        let (a, b) = big.split_at(12345);
        // Received in two pieces, again whole, then other bytes under the same key.
        let puts = [
            (vec![a, b], PutOutcome::Stored),
            (vec![big], PutOutcome::AlreadyStored),
            (vec![other], PutOutcome::Conflict),
        ];
        for (pieces, want) in puts {
            let check = whole_file(&pieces.concat());
            let got = store.put_chunk(&key(2), body(&pieces), check.into()).await;
            assert_eq!(got.unwrap(), want, "put expecting {want:?}");
        }
        assert!(matches!(
            store
                .put_chunk(&key(3), body(&[other]), whole_file(big).into())
                .await,
            Err(StoreError::Integrity(_))
        ));
        let read = read_all(
            store
                .read_chunk(&key(2), None, 0, big.len() as u64)
                .await
                .unwrap(),
        )
        .await;
        assert!(read == big);
        let names = std::fs::read_dir(dir.path().join("content/c-1/0"))
            .unwrap()
            .count();
        assert_eq!(names, 1, "only chunk 2, no temporary files");
    }

    /// A big chunk on tmpfs (written through the page cache there, in
    /// batches of pieces gathered into one `pwritev` each, not with
    /// `O_DIRECT`) is stored byte for byte from pieces of uneven sizes.
    #[tokio::test]
    async fn big_chunks_on_tmpfs_land_byte_for_byte() {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return;
        }
        let dir = tempfile::tempdir_in(shm).unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let len = 3 * dataerai_proto::io::WRITE_BATCH + 4096 + 17;
        let data: &'static [u8] = Box::leak(
            (0..len)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let mut pieces = Vec::new();
        let mut rest = data;
        for size in [1usize, 4095, 65_537, 7, 300_000].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*size).min(rest.len()));
            pieces.push(piece);
            rest = tail;
        }
        let got = store
            .put_chunk(&key(0), body(&pieces), whole_file(data).into())
            .await;
        assert_eq!(got.unwrap(), PutOutcome::Stored);
        let read = read_all(
            store
                .read_chunk(&key(0), None, 0, len as u64)
                .await
                .unwrap(),
        )
        .await;
        assert!(read == data, "the chunk read back differs");
    }

    /// A big range is read in few pieces (each is a read or a mapping, and a
    /// thread hop), each the bytes of its place, from any offset: on a disk
    /// (copied into the pool's buffers) and on tmpfs (mapped); a range past
    /// the end of the chunk is an error.
    #[tokio::test]
    async fn big_reads_come_in_few_pieces() {
        use futures::StreamExt;
        let on_disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let shm = Path::new("/dev/shm");
        let on_tmpfs = shm.is_dir().then(|| tempfile::tempdir_in(shm).unwrap());
        let data: Vec<u8> = (0..9 * 1024 * 1024 + 5usize)
            .map(|i| (i % 251) as u8)
            .collect();
        for dir in std::iter::once(&on_disk).chain(on_tmpfs.as_ref()) {
            let store = FsBlobStore::open(dir.path()).await.unwrap();
            let got = store
                .put_chunk(
                    &key(0),
                    body(&[Box::leak(data.clone().into_boxed_slice())]),
                    whole_file(&data).into(),
                )
                .await;
            assert_eq!(got.unwrap(), PutOutcome::Stored);
            for (offset, len) in [(0u64, data.len() as u64), (4097, 8 * 1024 * 1024 + 3)] {
                let mut pieces = store.read_chunk(&key(0), None, offset, len).await.unwrap();
                let (mut count, mut read) = (0, Vec::new());
                while let Some(piece) = pieces.next().await {
                    count += 1;
                    read.extend_from_slice(&piece.unwrap());
                }
                assert!(read == data[offset as usize..(offset + len) as usize]);
                assert_eq!(count, len.div_ceil(PIECE), "pieces of {offset}+{len}");
                assert!(count <= 3, "{count} pieces for {len} bytes");
            }
            let past = store.read_chunk(&key(0), None, 1, data.len() as u64).await;
            assert!(past.is_err(), "a range past the end of the chunk was read");
        }
    }

    #[tokio::test]
    async fn bad_length_or_hash_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let hash = *blake3::hash(b"abc").as_bytes();
        // (bytes sent for the 3-byte chunk "abc", refused as invalid length?)
        let bad: [(&'static [u8], bool); 3] = [(b"abcd", true), (b"ab", true), (b"abd", false)];
        for (sent, bad_length) in bad {
            let put = store
                .put_chunk(
                    &key(1),
                    body(&[sent]),
                    ChunkCheck::whole_file(3, hash).into(),
                )
                .await;
            let refused = match &put {
                Err(StoreError::Invalid(_)) => bad_length,
                Err(StoreError::Integrity(_)) => !bad_length,
                _ => false,
            };
            assert!(refused, "{sent:?}: {put:?}");
        }
        assert!(matches!(
            store.read_chunk(&key(1), None, 0, 3).await,
            Err(StoreError::NotFound(_))
        ));
        // Nothing left behind (a rejected small chunk never touches the disk).
        let left = std::fs::read_dir(dir.path().join("content/c-1/0"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0);

        store.delete_content("c-1").await.unwrap();
        assert!(!dir.path().join("content/c-1").exists());
        store.delete_content("c-1").await.unwrap();
        assert!(store
            .read_chunk(
                &ChunkKey {
                    content_id: "../x".into(),
                    file_index: 0,
                    chunk_index: 0
                },
                None,
                0,
                1
            )
            .await
            .is_err());
    }
}
