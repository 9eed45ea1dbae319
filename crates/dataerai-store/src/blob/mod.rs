//! The blob store: the bytes of content versions, kept chunk by chunk under
//! [`ChunkKey`]s (`content_id / file_index / chunk_index`). A key names where
//! bytes were first uploaded; a deduplicated file of a later version reads the
//! same keys (see `meta::BlobLocation`), so one object may serve many files.
//!
//! A chunk is written under its final key as soon as it has been received and
//! verified, and never moved afterwards: publishing a content version is a
//! metadata transaction only. Writes are no-clobber (a verified chunk that is
//! already stored is never overwritten), so concurrent PUTs of the same chunk
//! cannot corrupt one that was acknowledged.

pub mod fs;
pub mod s3;

use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::error::Result;

/// A stream of bytes (request bodies in, file ranges out).
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Where one chunk lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub content_id: String,
    pub file_index: u32,
    pub chunk_index: u64,
}

/// Outcome of [`BlobStore::put_chunk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The bytes are now durably stored under the key.
    Stored,
    /// The key already held exactly these bytes (nothing was rewritten).
    AlreadyStored,
    /// The key already holds *different* verified bytes; nothing was changed.
    Conflict,
}

/// Blob store backend.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stream `body` into the chunk `key`, hashing it as it goes. The chunk is
    /// stored only if it is exactly `expected_len` bytes long and its BLAKE3
    /// digest is `expected_hash`; otherwise `StoreError::Invalid` (length) or
    /// `StoreError::Integrity` (hash) and nothing
    /// is stored. The bytes are durable (fsynced) before this returns `Stored`.
    async fn put_chunk(
        &self,
        key: &ChunkKey,
        body: ByteStream,
        expected_len: u64,
        expected_hash: [u8; 32],
    ) -> Result<PutOutcome>;

    /// `len` bytes of a chunk starting at `offset`.
    async fn read_chunk(&self, key: &ChunkKey, offset: u64, len: u64) -> Result<ByteStream>;

    /// Remove the object `put_chunk` stored for `key` with these bytes, after
    /// the metadata store recorded *other* bytes for the chunk (two different
    /// uploads of one chunk raced; the first recorded wins). Stores whose writes
    /// are no-clobber under the key itself (the directory store) never hold a
    /// loser, so the default does nothing.
    async fn discard_chunk(&self, _key: &ChunkKey, _hash: [u8; 32]) -> Result<()> {
        Ok(())
    }

    /// Remove every chunk stored under a content id (abort, asset deletion).
    /// Missing content is not an error. The metadata store decides when no
    /// content file refers to these chunks any more (dedup pointers included).
    async fn delete_content(&self, content_id: &str) -> Result<()>;

    /// Prove the store accepts writes (readiness probe): write, sync and
    /// remove a small object.
    async fn check_writable(&self) -> Result<()>;
}
