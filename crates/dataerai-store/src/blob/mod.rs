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
use chrono::{DateTime, Utc};
use dataerai_proto::digest::ChunkDigest;
use futures::{Stream, StreamExt};

use crate::error::{Result, StoreError};

/// A stream of bytes (request bodies in, file ranges out).
/// Refuse a content id that is not a plain `[A-Za-z0-9-]+` name: it becomes a
/// path or key component, which must never climb out of the store's root.
pub(crate) fn check_content_id(content_id: &str) -> Result<()> {
    let plain = !content_id.is_empty()
        && content_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !plain {
        return Err(StoreError::Invalid(format!(
            "bad content id {content_id:?}"
        )));
    }
    Ok(())
}

pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Every byte of a stream, in memory: for small reads (and tests), never for
/// a whole file.
pub async fn read_to_vec(mut stream: ByteStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece?);
    }
    Ok(out)
}

/// The digest to pass to [`BlobStore::read_chunk`] for `key`: what the
/// metadata store recorded for it, looked up only for a store that names
/// objects by it.
pub async fn recorded_digest(
    blobs: &dyn BlobStore,
    meta: &dyn crate::meta::MetadataStore,
    key: &ChunkKey,
) -> Result<Option<String>> {
    if !blobs.names_by_digest() {
        return Ok(None);
    }
    meta.stored_chunk_hash(&key.content_id, key.file_index, key.chunk_index)
        .await
}

/// Where one chunk lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    pub content_id: String,
    pub file_index: u32,
    pub chunk_index: u64,
}

/// What the blob store holds under one content id: what the garbage
/// collector weighs ([`BlobStore::list_contents`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContent {
    pub content_id: String,
    /// Objects (chunk files, and leftovers of interrupted writes).
    pub objects: u64,
    pub bytes: u64,
    /// When the newest of them was written (the collector's grace period
    /// counts from here).
    pub newest: DateTime<Utc>,
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

/// A small chunk whose bytes are in memory, for [`BlobStore::put_small_chunks`].
#[derive(Debug, Clone)]
pub struct SmallChunk {
    pub key: ChunkKey,
    pub bytes: Bytes,
    pub check: ChunkCheck,
}

/// What a chunk must be: its length, how it is hashed, and its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkCheck {
    pub len: u64,
    /// How the chunk is hashed (it depends on its place in the file).
    pub digest: ChunkDigest,
    /// The digest the body must have.
    pub hash: [u8; 32],
}

impl ChunkCheck {
    /// A chunk that is a whole file of `len` bytes with BLAKE3 `hash`.
    pub fn whole_file(len: u64, hash: [u8; 32]) -> ChunkCheck {
        ChunkCheck {
            len,
            digest: ChunkDigest::whole_file(),
            hash,
        }
    }

    /// Start checking a body as it streams by.
    pub fn verifier(&self) -> Verifier {
        BodyCheck::from(*self).verifier()
    }
}

/// The digest a streamed chunk body must have, as the client claimed it.
#[derive(Debug, Clone)]
pub enum Claimed {
    /// Known before the body (the client sent it first).
    Before([u8; 32]),
    /// Sent after the body (an HTTP trailer): the body's stream records it
    /// before it ends, and the body is checked against it only then.
    After(DigestAfterBody),
}

impl Claimed {
    /// The claimed digest if it is known by now: always for
    /// [`Claimed::Before`], once the body's stream ended for [`Claimed::After`].
    pub fn get(&self) -> Option<[u8; 32]> {
        match self {
            Claimed::Before(hash) => Some(*hash),
            Claimed::After(after) => after.get(),
        }
    }
}

/// A chunk digest that follows the chunk's body: set once by whoever reads
/// the body (the HTTP layer, from the request's trailer), read by the check
/// after the last byte.
#[derive(Debug, Clone, Default)]
pub struct DigestAfterBody(std::sync::Arc<std::sync::OnceLock<[u8; 32]>>);

impl DigestAfterBody {
    /// Record the digest; a second one is refused (`false`).
    pub fn set(&self, hash: [u8; 32]) -> bool {
        self.0.set(hash).is_ok()
    }

    pub fn get(&self) -> Option<[u8; 32]> {
        self.0.get().copied()
    }
}

/// What [`BlobStore::put_chunk`] checks a streamed body against: a
/// [`ChunkCheck`] whose digest may arrive after the body.
#[derive(Debug, Clone)]
pub struct BodyCheck {
    pub len: u64,
    pub digest: ChunkDigest,
    pub claimed: Claimed,
}

impl From<ChunkCheck> for BodyCheck {
    fn from(check: ChunkCheck) -> BodyCheck {
        BodyCheck {
            len: check.len,
            digest: check.digest,
            claimed: Claimed::Before(check.hash),
        }
    }
}

impl BodyCheck {
    /// Start checking a body as it streams by.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            check: self.clone(),
            hasher: self.digest.hasher(),
            seen: 0,
        }
    }
}

/// Checks a chunk body piece by piece: never more than the promised length,
/// then exactly that length and the claimed digest.
pub struct Verifier {
    check: BodyCheck,
    hasher: blake3::Hasher,
    seen: u64,
}

impl Verifier {
    /// Take the next piece of the body. Stops at the first byte too many:
    /// never store more than promised.
    pub fn piece(&mut self, piece: &[u8]) -> Result<()> {
        self.seen += piece.len() as u64;
        if self.seen > self.check.len {
            return Err(StoreError::Invalid(format!(
                "chunk body is longer than the expected {} bytes",
                self.check.len
            )));
        }
        self.hasher.update(piece);
        Ok(())
    }

    /// The next piece of `body`, checked with [`Verifier::piece`]; `None` at
    /// its end. A body that breaks off is the client's failure, not the store's.
    pub async fn next(&mut self, body: &mut ByteStream) -> Result<Option<Bytes>> {
        let Some(piece) = body.next().await else {
            return Ok(None);
        };
        let piece = piece
            .map_err(|e| StoreError::Invalid(format!("reading the chunk body failed: {e}")))?;
        self.piece(&piece)?;
        Ok(Some(piece))
    }

    /// After the last piece: the length and the claimed digest must match.
    /// Answers the chunk as verified (its digest known now).
    pub fn finish(self) -> Result<ChunkCheck> {
        if self.seen != self.check.len {
            return Err(StoreError::Invalid(format!(
                "chunk body has {} bytes, expected {}",
                self.seen, self.check.len
            )));
        }
        let got = self.check.digest.finalize(&self.hasher);
        let Some(claimed) = self.check.claimed.get() else {
            return Err(StoreError::Integrity(
                "the chunk's BLAKE3 digest was to follow its bytes, but none came; \
                 resend the chunk with its digest"
                    .into(),
            ));
        };
        if got != claimed {
            return Err(StoreError::Integrity(format!(
                "chunk BLAKE3 digest is {}, but the request said {}; resend the chunk",
                hex::encode(got),
                hex::encode(claimed)
            )));
        }
        Ok(ChunkCheck {
            len: self.check.len,
            digest: self.check.digest,
            hash: got,
        })
    }

    /// Read `body` to its end without keeping it, and check it (a chunk the
    /// store already holds, sent again with its digest after it).
    pub async fn drain(mut self, mut body: ByteStream) -> Result<ChunkCheck> {
        while self.next(&mut body).await?.is_some() {}
        self.finish()
    }
}

/// Blob store backend.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stream `body` into the chunk `key`, hashing it as it goes. The chunk is
    /// stored only if it passes `check` (length and digest, the digest
    /// claimed before the body or after it); otherwise `StoreError::Invalid`
    /// (length) or `StoreError::Integrity` (digest, or none claimed) and
    /// nothing is stored. The bytes are durable (fsynced) before this returns
    /// `Stored`.
    async fn put_chunk(
        &self,
        key: &ChunkKey,
        body: ByteStream,
        check: BodyCheck,
    ) -> Result<PutOutcome>;

    /// Store small chunks held in memory, each exactly as [`BlobStore::put_chunk`]
    /// would (checked; durable before `Stored`), answering in order. A store
    /// may share the work of durability among them (the directory store syncs
    /// them as a group); by default each is put on its own, all concurrently.
    async fn put_small_chunks(&self, chunks: Vec<SmallChunk>) -> Vec<Result<PutOutcome>> {
        futures::future::join_all(chunks.into_iter().map(|c| async move {
            let body: ByteStream = Box::pin(futures::stream::once(async move { Ok(c.bytes) }));
            self.put_chunk(&c.key, body, c.check.into()).await
        }))
        .await
    }

    /// `len` bytes of a chunk starting at `offset`, streamed as they arrive
    /// from the backend (never the whole chunk buffered first).
    ///
    /// `digest` is the chunk's digest as the metadata store recorded it (hex,
    /// `meta::MetadataStore::stored_chunk_hash`): a store that names objects
    /// by it ([`BlobStore::names_by_digest`]) finds the chunk with it in one
    /// request. Without it (`None`: the record is gone, or the caller did not
    /// look it up), such a store looks the object up first.
    async fn read_chunk(
        &self,
        key: &ChunkKey,
        digest: Option<&str>,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream>;

    /// Whether [`BlobStore::read_chunk`] uses the recorded digest (so callers
    /// look it up); stores that keep a chunk under its key alone do not.
    fn names_by_digest(&self) -> bool {
        false
    }

    /// Whether a chunk whose digest follows its body ([`Claimed::After`])
    /// costs no more to store than one whose digest comes first. Not where
    /// objects are named by digest: there it is stored under a staging name,
    /// then copied under its own.
    fn digest_after_body_is_free(&self) -> bool {
        !self.names_by_digest()
    }

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

    /// Every content id that has objects in the store, with their count,
    /// size and newest write time (for the garbage collector, which asks
    /// the metadata store which of them are still referenced). Whatever in
    /// the content area is not a content id of ours is left out.
    async fn list_contents(&self) -> Result<Vec<StoredContent>>;

    /// Prove the store accepts writes (readiness probe): write, sync and
    /// remove a small object.
    async fn check_writable(&self) -> Result<()>;
}

/// Scenarios every blob store must pass, run by each store's tests.
#[cfg(test)]
pub(crate) mod scenarios {
    use super::*;
    use dataerai_proto::digest::ChunkDigest;

    /// `pieces` as a body whose stream records `trailer` (when given) as its
    /// digest as it ends, as the HTTP layer does with a request's trailer.
    fn body_then_digest(
        pieces: Vec<Bytes>,
        after: &DigestAfterBody,
        trailer: Option<[u8; 32]>,
    ) -> ByteStream {
        let after = after.clone();
        let end = futures::stream::poll_fn(move |_| {
            if let Some(hash) = trailer {
                after.set(hash);
            }
            std::task::Poll::Ready(None)
        });
        Box::pin(futures::stream::iter(pieces.into_iter().map(Ok)).chain(end))
    }

    /// A chunk whose digest follows its body: stored once the digest that
    /// came matches; a wrong digest, none, or a short body store nothing and
    /// leave no object behind; the same bytes sent again are accepted.
    pub(crate) async fn digest_after_body(store: &dyn BlobStore, content_id: &str) {
        // One chunk small enough to be held in memory, one streamed (and on
        // S3 sent in several parts); each a whole file (a chunk in the middle
        // of a file is checked the same way, by its chaining value).
        for (index, len) in [(1u64, 3000usize), (2, 12 * 1024 * 1024 + 17)] {
            let digest = ChunkDigest::whole_file();
            let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let hash = digest.compute(&data);
            let pieces: Vec<Bytes> = data.chunks(1 << 20).map(Bytes::copy_from_slice).collect();
            let key = |chunk_index| ChunkKey {
                content_id: content_id.into(),
                file_index: 0,
                chunk_index,
            };
            let put = |chunk_index, pieces: Vec<Bytes>, trailer, len| {
                let after = DigestAfterBody::default();
                let body = body_then_digest(pieces, &after, trailer);
                let check = BodyCheck {
                    len,
                    digest,
                    claimed: Claimed::After(after),
                };
                async move { store.put_chunk(&key(chunk_index), body, check).await }
            };
            let mut other = hash;
            other[0] ^= 1;
            let short = pieces[..pieces.len() - 1].to_vec();
            let short_len: usize = short.iter().map(Bytes::len).sum();
            let short_hash = digest.compute(&data[..short_len]);
            let refused = [
                ("wrong digest", pieces.clone(), Some(other), true),
                ("no digest", pieces.clone(), None, true),
                ("short body", short, Some(short_hash), false),
            ];
            for (case, body, trailer, integrity) in refused {
                let got = put(100 + index, body, trailer, len as u64).await;
                let as_expected = match &got {
                    Err(StoreError::Integrity(_)) => integrity,
                    Err(StoreError::Invalid(_)) => !integrity,
                    _ => false,
                };
                assert!(as_expected, "{case}, {len} bytes: {got:?}");
                assert!(
                    matches!(
                        store.read_chunk(&key(100 + index), None, 0, 1).await,
                        Err(StoreError::NotFound(_))
                    ),
                    "{case}: something was stored"
                );
            }
            let stored = put(index, pieces.clone(), Some(hash), len as u64).await;
            assert_eq!(stored.unwrap(), PutOutcome::Stored, "{len} bytes");
            let again = put(index, pieces, Some(hash), len as u64).await.unwrap();
            assert_ne!(again, PutOutcome::Conflict, "{len} bytes sent again");
            let read = store
                .read_chunk(&key(index), Some(&hex::encode(hash)), 0, len as u64)
                .await
                .unwrap();
            assert!(
                read_to_vec(read).await.unwrap() == data,
                "{len} bytes read back"
            );
        }
        // One object per stored chunk: no temporary or staging object left.
        let listed = store.list_contents().await.unwrap();
        let ours = listed.iter().find(|c| c.content_id == content_id).unwrap();
        assert_eq!(ours.objects, 2, "{listed:?}");
    }
}
