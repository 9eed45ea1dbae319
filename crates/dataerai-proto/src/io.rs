//! File writing shared by the server (chunks received) and the daemon (chunks
//! downloaded): byte pieces as they come off the network are written at their
//! offsets without being copied into a buffer first, a batch of
//! [`WRITE_BATCH`] bytes per blocking call and one `pwritev` per batch, with
//! one call in flight while the next batch fills (a blocking call per piece
//! would cost a thread hand-off for every few kilobytes; a `pwrite` per piece
//! would leave a partly written page at every piece's end).
//!
//! Big ranges on a disk bypass the page cache ([`RangeWriter`]): pieces are
//! gathered into reused aligned buffers and written with `O_DIRECT`. Writing
//! through the page cache costs a kernel copy into freshly allocated pages per
//! byte, and later the writeback of those pages; on the virtual machines we
//! measure on, first touches of fresh memory were most of a big transfer's CPU
//! (docs/performance.md). Not on tmpfs ([`on_tmpfs`]), whose pages are the
//! file: there a direct write is one copy more, and each piece is written at
//! once by the task that received it ([`InMemoryWriter`]).

use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes handed to one blocking write call (one `pwritev`): 16 calls, and as
/// many partly written pages, per 64 MiB chunk.
pub const WRITE_BATCH: usize = 4 * 1024 * 1024;
/// Pieces per `pwritev` at most (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

pub struct PieceWriter {
    file: Arc<std::fs::File>,
    /// Offset of the first byte of `batch`.
    at: u64,
    batch: Vec<Bytes>,
    batch_len: usize,
    in_flight: Option<JoinHandle<io::Result<()>>>,
}

impl PieceWriter {
    /// Write into `file` from offset `at` on.
    pub fn new(file: std::fs::File, at: u64) -> PieceWriter {
        PieceWriter {
            file: Arc::new(file),
            at,
            batch: Vec::new(),
            batch_len: 0,
            in_flight: None,
        }
    }

    /// Queue `piece` after the bytes queued before it.
    pub async fn write(&mut self, piece: Bytes) -> io::Result<()> {
        self.batch_len += piece.len();
        self.batch.push(piece);
        if self.batch_len >= WRITE_BATCH {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// Write whatever is queued and wait until every write is done; answers
    /// the file (for an fsync).
    pub async fn finish(mut self) -> io::Result<Arc<std::fs::File>> {
        if self.batch_len > 0 {
            self.send_batch().await?;
        }
        self.wait().await?;
        Ok(self.file)
    }

    async fn wait(&mut self) -> io::Result<()> {
        match self.in_flight.take() {
            Some(write) => write.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }

    async fn send_batch(&mut self) -> io::Result<()> {
        self.wait().await?;
        let (pieces, file, at) = (std::mem::take(&mut self.batch), self.file.clone(), self.at);
        self.at += self.batch_len as u64;
        self.batch_len = 0;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            write_all_vectored_at(&file, &pieces, at)
        }));
        Ok(())
    }
}

/// Write `pieces` one after another into `file` from offset `at`: one
/// `pwritev` for up to [`MAX_IOVECS`] pieces (more only when the kernel writes
/// less than asked). Blocking.
///
/// Why not a `pwrite` per piece: pieces end anywhere, and on tmpfs every write
/// that ends inside a page it allocated has the rest of that page zeroed first,
/// which the next write then overwrites; one call per batch cuts a page only at
/// the batch's end. It also makes a syscall per batch, not per piece.
pub fn write_all_vectored_at(
    file: &std::fs::File,
    pieces: &[Bytes],
    mut at: u64,
) -> io::Result<()> {
    let mut left: Vec<io::IoSlice<'_>> = pieces
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| io::IoSlice::new(p))
        .collect();
    let mut left = &mut left[..];
    while !left.is_empty() {
        let group = left.len().min(MAX_IOVECS);
        let n = match rustix::io::pwritev(file, &left[..group], at) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        at += n as u64;
        // Drop the pieces written whole; keep the unwritten end of a piece
        // written in part.
        io::IoSlice::advance_slices(&mut left, n);
    }
    Ok(())
}

/// Whether `file` is on tmpfs, whose pages are the file: nothing is written to
/// a device. There `O_DIRECT` buys nothing (tmpfs takes it, Linux 6.6 on, but
/// copies into its pages anyway, so a direct write is one copy more per byte),
/// and a write never waits for a device. Not when the file system cannot be
/// told.
#[cfg(target_os = "linux")]
pub fn on_tmpfs(file: &impl std::os::fd::AsFd) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    match rustix::fs::fstatfs(file) {
        // `f_type`'s width differs between targets.
        #[allow(clippy::unnecessary_cast)]
        Ok(fs) => fs.f_type as i64 == TMPFS_MAGIC,
        Err(_) => false,
    }
}

#[cfg(not(target_os = "linux"))]
pub fn on_tmpfs(_file: &impl std::os::fd::AsFd) -> bool {
    false
}

/// Let the allocator keep freed memory for the next allocations instead of
/// handing it back to the kernel (call once, early in `main`).
///
/// The HTTP client and server receive a big body into a fresh buffer per
/// socket read (about 400 KiB), since the last one is still held by the piece
/// being written. glibc serves such sizes with `mmap` or gives the memory
/// back once it is freed (its thresholds rise only to the largest block
/// freed), so every read faulted in fresh pages that the kernel first
/// zeroed: a tenth of the daemon's cycles for a download to tmpfs
/// (docs/performance.md). With blocks up to [`KEEP_BLOCKS_BELOW`] taken from
/// the heap and up to [`KEEP_FREE`] of free heap kept, the buffers are reused.
/// Nothing is allocated that was not before: the peak stays what the
/// transfers hold at once.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets the allocator's parameters; glibc takes its
    // own lock for it, and the values are in the ranges it accepts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, KEEP_BLOCKS_BELOW as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, KEEP_FREE as libc::c_int);
    }
}

/// Blocks at least this big still come from `mmap` (the 8 MiB buffers of a
/// [`BufferPool`] among them, which are pooled anyway).
pub const KEEP_BLOCKS_BELOW: usize = 4 * 1024 * 1024;
/// Free heap memory kept per allocator arena before the rest goes back.
pub const KEEP_FREE: usize = 16 * 1024 * 1024;

/// Bytes per direct write, and the size of each buffer of a [`BufferPool`].
pub const DIRECT_BATCH: usize = 8 * 1024 * 1024;
/// Ranges shorter than this go through the page cache.
pub const DIRECT_MIN: u64 = 1024 * 1024;
/// What `O_DIRECT` wants aligned: buffer addresses, file offsets, lengths.
const DIRECT_ALIGN: usize = 4096;

#[repr(C, align(4096))]
struct Page([u8; DIRECT_ALIGN]);

/// [`DIRECT_BATCH`] bytes at an address `O_DIRECT` accepts.
struct AlignedBuf(Box<[Page]>);

impl AlignedBuf {
    fn new() -> AlignedBuf {
        let pages = DIRECT_BATCH / DIRECT_ALIGN;
        let layout = std::alloc::Layout::array::<Page>(pages).expect("a small layout");
        // SAFETY: the layout is not zero-sized; zero bytes are a valid `Page`;
        // the box takes over an allocation made with the layout of its slice.
        // (Zeroed memory comes from the allocator without being written to,
        // so only the pages a short range uses are ever touched.)
        unsafe {
            let ptr = std::alloc::alloc_zeroed(layout).cast::<Page>();
            if ptr.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            AlignedBuf(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                ptr, pages,
            )))
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: a `Page` is a byte array without padding (its size is its
        // alignment), so the pages are `len * DIRECT_ALIGN` initialized bytes.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), self.0.len() * DIRECT_ALIGN) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the borrow unique.
        unsafe {
            std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), self.0.len() * DIRECT_ALIGN)
        }
    }
}

/// Buffers for [`RangeWriter`]s and for pieces read with
/// [`BufferPool::read_at`], reused from range to range (fresh memory is what
/// direct writes avoid). A writer holds two at a time, one filling and one
/// being written; the pool keeps at most `keep` spare ones and frees the rest.
#[derive(Clone)]
pub struct BufferPool {
    spare: Arc<Mutex<Vec<AlignedBuf>>>,
    keep: usize,
}

impl BufferPool {
    /// A pool that keeps at most `keep` spare buffers of [`DIRECT_BATCH`] bytes.
    pub fn new(keep: usize) -> BufferPool {
        BufferPool {
            spare: Arc::default(),
            keep,
        }
    }

    fn spare(&self) -> std::sync::MutexGuard<'_, Vec<AlignedBuf>> {
        self.spare.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> AlignedBuf {
        let spare = self.spare().pop();
        spare.unwrap_or_else(AlignedBuf::new)
    }

    fn give(&self, buf: AlignedBuf) {
        let mut spare = self.spare();
        if spare.len() < self.keep {
            spare.push(buf);
        }
    }

    /// The `len` bytes (at most [`DIRECT_BATCH`]) of `file` from offset `at`,
    /// read (through the page cache) into one of the pool's buffers, which
    /// goes back to the pool once the last reference to the answer is dropped
    /// (for a piece of a download: once the socket took it). An error if the
    /// file ends first. Blocking.
    ///
    /// For the server's downloads from a disk: there, mapping the pages the
    /// read-ahead just filled, faulting them in and unmapping them (with a
    /// TLB flush on the other cores at each `munmap`) cost more than this
    /// copy into memory touched already (docs/performance.md).
    pub fn read_at(&self, file: &std::fs::File, at: u64, len: usize) -> io::Result<Bytes> {
        assert!(
            len <= DIRECT_BATCH,
            "a read of {len} bytes is over a buffer"
        );
        let mut piece = PooledBuf {
            buf: Some(self.take()),
            len,
            pool: self.clone(),
        };
        let buf = piece.buf.as_mut().expect("a buffer");
        file.read_exact_at(&mut buf.bytes_mut()[..len], at)?;
        Ok(Bytes::from_owner(piece))
    }
}

/// The first `len` bytes of a pool's buffer, given back to the pool when
/// dropped.
struct PooledBuf {
    buf: Option<AlignedBuf>,
    len: usize,
    pool: BufferPool,
}

impl AsRef<[u8]> for PooledBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf.as_ref().expect("a buffer").bytes()[..self.len]
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.give(buf);
        }
    }
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("spare", &self.spare().len())
            .field("keep", &self.keep)
            .finish()
    }
}

/// Writes one range of a file that arrives as pieces, in order: with
/// `O_DIRECT` when the range is at least [`DIRECT_MIN`] long, starts at an
/// aligned offset, the file system takes direct I/O, and [`direct_io_allowed`];
/// on tmpfs ([`on_tmpfs`]) piece by piece as they come ([`InMemoryWriter`]);
/// else through the page cache with a [`PieceWriter`]. Either way the caller
/// fsyncs the file to make the range durable.
pub enum RangeWriter {
    /// On tmpfs: each piece written at once, where it was received.
    InMemory(InMemoryWriter),
    Cached(PieceWriter),
    Direct(DirectWriter),
}

impl RangeWriter {
    /// Write the `len` bytes of `path` from offset `at` on. A symlink at
    /// `path` is never followed (`O_NOFOLLOW`): the open fails instead.
    pub fn open(path: &Path, at: u64, len: u64, pool: &BufferPool) -> io::Result<RangeWriter> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        if on_tmpfs(&file) {
            return Ok(RangeWriter::InMemory(InMemoryWriter {
                file: Arc::new(file),
                at,
            }));
        }
        if len >= DIRECT_MIN && at.is_multiple_of(DIRECT_ALIGN as u64) && direct_io_allowed() {
            if let Some(direct) = open_direct(path) {
                return Ok(RangeWriter::Direct(DirectWriter {
                    direct: Arc::new(direct),
                    cached: Arc::new(file),
                    pool: pool.clone(),
                    at,
                    buf: pool.take(),
                    fill: 0,
                    in_flight: None,
                }));
            }
        }
        Ok(RangeWriter::Cached(PieceWriter::new(file, at)))
    }

    /// Queue `piece` after the bytes queued before it.
    pub async fn write(&mut self, piece: Bytes) -> io::Result<()> {
        match self {
            RangeWriter::InMemory(w) => w.write(&piece),
            RangeWriter::Cached(w) => w.write(piece).await,
            RangeWriter::Direct(w) => w.write(&piece).await,
        }
    }

    /// Write whatever is queued and wait until every write is done; answers
    /// the file (for an fsync).
    pub async fn finish(self) -> io::Result<Arc<std::fs::File>> {
        match self {
            RangeWriter::InMemory(w) => Ok(w.file),
            RangeWriter::Cached(w) => w.finish().await,
            RangeWriter::Direct(w) => w.finish().await,
        }
    }
}

/// Whether big ranges may be written with `O_DIRECT`: yes, unless the
/// environment variable `DATAERAI_DIRECT_IO` says `0`, `off`, `false` or `no`
/// (read once per process). The way out for a file system whose direct I/O
/// misbehaves or is slow.
pub fn direct_io_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| direct_io_setting(std::env::var("DATAERAI_DIRECT_IO").ok().as_deref()))
}

fn direct_io_setting(value: Option<&str>) -> bool {
    let value = value.map(|v| v.trim().to_ascii_lowercase());
    !matches!(value.as_deref(), Some("0" | "off" | "false" | "no"))
}

/// `path` opened for direct writes, or `None` where
/// the OS or the file system has no direct I/O (tmpfs before Linux 6.6, for
/// one).
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_NOFOLLOW)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> Option<std::fs::File> {
    None
}

/// The tmpfs case of [`RangeWriter`]: each piece is written with one `pwrite`
/// as soon as it is queued, by the task that received (and hashed) it, not
/// batched for a blocking thread. A write to tmpfs is a copy into memory pages
/// that never waits for a device, like the hashing beside it; written at once,
/// the piece is still in the CPU's cache (a piece off the socket is about
/// 400 KiB), where a 4 MiB batch written later by another thread was read back
/// from memory — the dearest copy of a download to tmpfs (docs/performance.md).
pub struct InMemoryWriter {
    file: Arc<std::fs::File>,
    /// Offset of the next byte.
    at: u64,
}

impl InMemoryWriter {
    fn write(&mut self, piece: &[u8]) -> io::Result<()> {
        self.file.write_all_at(piece, self.at)?;
        self.at += piece.len() as u64;
        Ok(())
    }
}

/// The direct half of [`RangeWriter`]: pieces are copied into an aligned
/// buffer, and each full buffer is written by one blocking call while the next
/// one fills. The unaligned tail of the range goes through the page cache.
pub struct DirectWriter {
    direct: Arc<std::fs::File>,
    cached: Arc<std::fs::File>,
    pool: BufferPool,
    /// Offset of the first byte of `buf`.
    at: u64,
    buf: AlignedBuf,
    fill: usize,
    in_flight: Option<JoinHandle<io::Result<AlignedBuf>>>,
}

impl DirectWriter {
    async fn write(&mut self, mut piece: &[u8]) -> io::Result<()> {
        while !piece.is_empty() {
            let n = (DIRECT_BATCH - self.fill).min(piece.len());
            self.buf.bytes_mut()[self.fill..self.fill + n].copy_from_slice(&piece[..n]);
            self.fill += n;
            piece = &piece[n..];
            if self.fill == DIRECT_BATCH {
                self.send().await?;
            }
        }
        Ok(())
    }

    /// Start writing the full `buf`, after the previous write is done; its
    /// buffer becomes the one to fill.
    async fn send(&mut self) -> io::Result<()> {
        let len = DIRECT_BATCH;
        let next = match self.in_flight.take() {
            Some(write) => write.await.map_err(io::Error::other)??,
            None => self.pool.take(),
        };
        let buf = std::mem::replace(&mut self.buf, next);
        let (direct, cached, at) = (self.direct.clone(), self.cached.clone(), self.at);
        self.at += len as u64;
        self.fill = 0;
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            write_direct(&direct, &cached, &buf.bytes()[..len], at)?;
            Ok(buf)
        }));
        Ok(())
    }

    /// Write the rest: its aligned part directly, its tail through the page
    /// cache.
    async fn finish(mut self) -> io::Result<Arc<std::fs::File>> {
        if let Some(write) = self.in_flight.take() {
            self.pool.give(write.await.map_err(io::Error::other)??);
        }
        let (direct, cached, at, fill) = (self.direct, self.cached.clone(), self.at, self.fill);
        let buf = self.buf;
        let buf = tokio::task::spawn_blocking(move || {
            let aligned = fill / DIRECT_ALIGN * DIRECT_ALIGN;
            write_direct(&direct, &cached, &buf.bytes()[..aligned], at)?;
            cached.write_all_at(&buf.bytes()[aligned..fill], at + aligned as u64)?;
            Ok::<_, io::Error>(buf)
        })
        .await
        .map_err(io::Error::other)??;
        self.pool.give(buf);
        Ok(self.cached)
    }
}

/// Write `bytes` at `at` through `direct`, or through `cached` where the file
/// system refuses that direct write (EINVAL: some take direct I/O for some
/// writes only).
fn write_direct(
    direct: &std::fs::File,
    cached: &std::fs::File,
    bytes: &[u8],
    at: u64,
) -> io::Result<()> {
    match direct.write_all_at(bytes, at) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => cached.write_all_at(bytes, at),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pieces_land_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'.'; 10]).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut w = PieceWriter::new(file, 3);
        let big = Bytes::from(vec![b'x'; WRITE_BATCH + 5]);
        w.write(Bytes::from_static(b"ab")).await.unwrap();
        w.write(big.clone()).await.unwrap();
        w.write(Bytes::from_static(b"cd")).await.unwrap();
        w.finish().await.unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[..5], b"...ab");
        assert_eq!(&got[5..5 + big.len()], &big[..]);
        assert_eq!(&got[5 + big.len()..], b"cd");
    }

    /// Bytes that differ from position to position, so a piece written at
    /// the wrong offset shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Write `data` at `at` as pieces; answers how the writer wrote them.
    async fn write_range(path: &Path, at: u64, data: &[u8], pool: &BufferPool) -> &'static str {
        let mut w = RangeWriter::open(path, at, data.len() as u64, pool).unwrap();
        let how = match w {
            RangeWriter::InMemory(_) => "in memory",
            RangeWriter::Cached(_) => "cached",
            RangeWriter::Direct(_) => "direct",
        };
        // Pieces of uneven sizes, as they come off a socket.
        let mut rest = data;
        for size in [1usize, 4095, 100_000, 3 * DIRECT_BATCH / 2].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            w.write(Bytes::copy_from_slice(&rest[..n])).await.unwrap();
            rest = &rest[n..];
        }
        w.finish().await.unwrap();
        how
    }

    #[tokio::test]
    async fn ranges_land_at_their_offsets_direct_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let size = 3 * DIRECT_BATCH + 4096 + 123;
        std::fs::File::create(&path)
            .unwrap()
            .set_len(size as u64)
            .unwrap();
        let want = pattern(size);
        let pool = BufferPool::new(2);
        let mib = 1 << 20;
        // A short range and one at an unaligned offset go through the cache;
        // then a range that fits one buffer, and one of several buffers with
        // an unaligned tail.
        assert_ne!(write_range(&path, 0, &want[..1000], &pool).await, "direct");
        let unaligned = write_range(&path, 1000, &want[1000..2 * mib], &pool).await;
        assert_ne!(unaligned, "direct");
        let how = write_range(&path, 2 * mib as u64, &want[2 * mib..4 * mib], &pool).await;
        write_range(&path, 4 * mib as u64, &want[4 * mib..], &pool).await;
        assert_eq!(std::fs::read(&path).unwrap(), want);
        if how == "direct" {
            // Both buffers of the direct writer came back for the next range.
            assert_eq!(pool.spare().len(), 2);
        } else {
            eprintln!("no direct I/O under {}", dir.path().display());
        }
    }

    /// Many pieces, some empty and more than one `pwritev` takes, land one
    /// after another from the offset given.
    #[test]
    fn vectored_writes_land_at_their_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let want = pattern(3 * MAX_IOVECS * 7 + 11);
        let mut pieces = Vec::new();
        let mut rest = &want[..];
        for size in [7usize, 0, 5, 9, 0, 1].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            pieces.push(Bytes::copy_from_slice(&rest[..n]));
            rest = &rest[n..];
        }
        assert!(pieces.len() > 2 * MAX_IOVECS);
        std::fs::write(&path, b"head").unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        write_all_vectored_at(&file, &pieces, 4).unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(&got[..4], b"head");
        assert_eq!(&got[4..], &want[..]);
    }

    /// Direct writes are used where they bypass the page cache (a disk), not on
    /// tmpfs, where they only add a copy: a big aligned range on tmpfs is
    /// written piece by piece as the pieces come, and lands whole.
    #[tokio::test]
    async fn direct_writes_on_a_disk_not_on_tmpfs() {
        let on_disk = tempfile::NamedTempFile::new_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(!on_tmpfs(on_disk.as_file()));
        let shm = Path::new("/dev/shm");
        if !(cfg!(target_os = "linux") && shm.is_dir()) {
            return;
        }
        let in_memory = tempfile::NamedTempFile::new_in(shm).unwrap();
        assert!(on_tmpfs(in_memory.as_file()));
        let len = 2 * DIRECT_BATCH + 123;
        in_memory.as_file().set_len(len as u64).unwrap();
        let pool = BufferPool::new(2);
        let want = pattern(len);
        // From an offset on, as a chunk of a file is written.
        let how = write_range(in_memory.path(), 7, &want[7..], &pool).await;
        assert_eq!(how, "in memory");
        let mut got = std::fs::read(in_memory.path()).unwrap();
        assert_eq!(&got[..7], &[0u8; 7]);
        got[..7].copy_from_slice(&want[..7]);
        assert_eq!(got, want);
    }

    /// Pieces read into a pool's buffers are the bytes of their place, a
    /// read past the end is an error, and the buffers go back to the pool
    /// once the pieces are dropped (and after a failed read).
    #[test]
    fn pooled_reads_answer_the_bytes_of_their_place() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let want = pattern(DIRECT_BATCH + 3 * DIRECT_ALIGN + 123);
        std::fs::write(file.path(), &want).unwrap();
        let pool = BufferPool::new(3);
        let whole = pool.read_at(file.as_file(), 0, DIRECT_BATCH).unwrap();
        assert!(whole == want[..DIRECT_BATCH]);
        let at = DIRECT_BATCH + 1000;
        let tail = pool
            .read_at(file.as_file(), at as u64, want.len() - at)
            .unwrap();
        assert!(tail == want[at..]);
        let past = pool.read_at(file.as_file(), at as u64, want.len() - at + 1);
        assert_eq!(past.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(pool.spare().len(), 1, "the failed read's buffer came back");
        drop(whole);
        assert_eq!(pool.spare().len(), 2);
        // A slice of a piece keeps its buffer out of the pool.
        let shared = tail.slice(1..10);
        drop(tail);
        assert_eq!(pool.spare().len(), 2);
        assert!(shared == want[at + 1..at + 10]);
        drop(shared);
        assert_eq!(pool.spare().len(), 3);
    }

    #[test]
    fn direct_io_is_on_unless_switched_off() {
        for on in [None, Some("1"), Some("on"), Some("yes"), Some("")] {
            assert!(direct_io_setting(on), "{on:?}");
        }
        for off in ["0", "off", "OFF", " false ", "no"] {
            assert!(!direct_io_setting(Some(off)), "{off:?}");
        }
    }
}
