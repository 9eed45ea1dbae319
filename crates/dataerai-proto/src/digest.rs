//! Chunk digests, and a file's BLAKE3 hash built from them without reading the
//! file again.
//!
//! BLAKE3 hashes a tree of 1 KiB blocks. When the chunk size is a power of two
//! (at least 1 KiB), every transfer chunk — chunk `i` covers
//! `[i * chunk_size, (i + 1) * chunk_size)`, the last one possibly shorter — is a
//! complete subtree of the file's tree. So:
//!
//! - a file of **one** chunk: the chunk digest is the plain BLAKE3 hash of its
//!   bytes, which is also the file's hash;
//! - a file of **several** chunks: the chunk digest is the subtree's *chaining
//!   value* (`blake3::hazmat`, hashed at the chunk's offset), and
//!   [`file_hash`] merges the digests, in order, into exactly
//!   `blake3::hash(whole file)`.
//!
//! Each side hashes every byte once (while it moves) and still checks each
//! chunk before acknowledging it and the whole file at the end. A chunk digest
//! depends on the chunk's position and on whether it is the file's only chunk,
//! so the same bytes at another place have another digest.

use blake3::hazmat::{
    left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode,
};

use crate::chunk_count;

/// Smallest chunk size (one BLAKE3 block).
pub const MIN_CHUNK_SIZE: u64 = blake3::CHUNK_LEN as u64;

/// Chunk sizes must be powers of two of at least [`MIN_CHUNK_SIZE`] bytes, so
/// that every chunk is a subtree of the file's BLAKE3 tree.
pub fn is_valid_chunk_size(chunk_size: u64) -> bool {
    chunk_size >= MIN_CHUNK_SIZE && chunk_size.is_power_of_two()
}

/// How to hash one chunk of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkDigest {
    offset: u64,
    whole_file: bool,
}

impl ChunkDigest {
    /// The digest of chunk `index` of a file of `file_size` bytes. `chunk_size`
    /// must satisfy [`is_valid_chunk_size`] (checked where sessions are made).
    pub fn of(file_size: u64, chunk_size: u64, index: u64) -> ChunkDigest {
        debug_assert!(is_valid_chunk_size(chunk_size), "chunk size {chunk_size}");
        ChunkDigest {
            offset: index * chunk_size,
            whole_file: chunk_count(file_size, chunk_size) == 1,
        }
    }

    /// The digest of a file's only chunk: its plain BLAKE3 hash.
    pub const fn whole_file() -> ChunkDigest {
        ChunkDigest {
            offset: 0,
            whole_file: true,
        }
    }

    /// A hasher to feed the chunk's bytes to, then [`ChunkDigest::finalize`].
    /// Never feed it more than the chunk's length.
    pub fn hasher(&self) -> blake3::Hasher {
        let mut hasher = blake3::Hasher::new();
        if !self.whole_file {
            hasher.set_input_offset(self.offset);
        }
        hasher
    }

    /// The digest of what `hasher` (from [`ChunkDigest::hasher`]) was fed.
    /// Only a file's only chunk may be empty; check the length before calling.
    pub fn finalize(&self, hasher: &blake3::Hasher) -> [u8; 32] {
        if self.whole_file {
            *hasher.finalize().as_bytes()
        } else {
            hasher.finalize_non_root()
        }
    }

    /// The digest of a chunk held in memory.
    pub fn compute(&self, data: &[u8]) -> [u8; 32] {
        let mut hasher = self.hasher();
        hasher.update(data);
        self.finalize(&hasher)
    }
}

/// The BLAKE3 hash of a whole file from the digests of all its chunks, in
/// chunk order (as [`ChunkDigest::of`] defines them).
pub fn file_hash(
    file_size: u64,
    chunk_size: u64,
    digests: &[[u8; 32]],
) -> Result<[u8; 32], String> {
    let count = chunk_count(file_size, chunk_size);
    if digests.len() as u64 != count {
        return Err(format!(
            "a file of {file_size} bytes has {count} chunk(s) of {chunk_size} bytes, not {}",
            digests.len()
        ));
    }
    if count == 1 {
        return Ok(digests[0]);
    }
    let left = left_subtree_len(file_size);
    let (l, r) = split(digests, chunk_size, left);
    Ok(*merge_subtrees_root(&l, &r, Mode::Hash).as_bytes())
}

/// The digest of each chunk of a file held whole in memory, in chunk order
/// (what [`file_hash`] merges).
pub fn chunk_digests(bytes: &[u8], chunk_size: u64) -> Vec<[u8; 32]> {
    let size = bytes.len() as u64;
    (0..chunk_count(size, chunk_size))
        .map(|i| {
            let start = (i * chunk_size) as usize;
            let end = (start + chunk_size as usize).min(bytes.len());
            ChunkDigest::of(size, chunk_size, i).compute(&bytes[start..end])
        })
        .collect()
}

/// The chaining values of the left subtree (`left_len` bytes) and the right one.
fn split(digests: &[[u8; 32]], chunk_size: u64, left_len: u64) -> ([u8; 32], [u8; 32]) {
    // `left_len` is a power of two >= chunk_size: whole chunks on the left.
    let k = (left_len / chunk_size) as usize;
    let total = left_len + (digests.len() - k) as u64 * chunk_size; // an upper bound
    (
        subtree(&digests[..k], chunk_size, left_len),
        subtree(&digests[k..], chunk_size, total - left_len),
    )
}

/// The chaining value of consecutive chunks covering at most `max_len` bytes
/// (only the file's last chunk is short, and a short tail never changes where
/// a subtree of whole chunks splits).
fn subtree(digests: &[[u8; 32]], chunk_size: u64, max_len: u64) -> [u8; 32] {
    if digests.len() == 1 {
        return digests[0];
    }
    // Any length in ((n-1) * chunk_size, n * chunk_size] splits at the same
    // place; the largest one is always > 1 KiB here.
    let left = left_subtree_len(max_len);
    let (l, r) = split(digests, chunk_size, left);
    merge_subtrees_non_root(&l, &r, Mode::Hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
            .collect()
    }

    fn by_chunks(bytes: &[u8], chunk_size: u64) -> [u8; 32] {
        let digests = chunk_digests(bytes, chunk_size);
        file_hash(bytes.len() as u64, chunk_size, &digests).unwrap()
    }

    #[test]
    fn merged_digests_equal_the_plain_hash() {
        let all = data(70 * 1024 + 17);
        for chunk_size in [1024u64, 2048, 4096, 16384, 65536, 1 << 20] {
            for len in (0..40)
                .map(|k| k * 1024)
                .chain([1, 1023, 1025, 3 * 1024 + 1, 7 * 4096 - 1, 70 * 1024 + 17])
                .chain((1..9).map(|k| k * chunk_size as usize + 1))
                .chain((1..9).map(|k| k * chunk_size as usize - 1))
                .filter(|&l| l <= all.len())
            {
                let bytes = &all[..len];
                assert_eq!(
                    by_chunks(bytes, chunk_size),
                    *blake3::hash(bytes).as_bytes(),
                    "len {len}, chunk {chunk_size}"
                );
            }
        }
    }

    #[test]
    fn streaming_equals_compute() {
        let bytes = data(5000);
        let d = ChunkDigest::of(9000, 4096, 1);
        let mut h = d.hasher();
        for piece in bytes[..4096].chunks(700) {
            h.update(piece);
        }
        assert_eq!(d.finalize(&h), d.compute(&bytes[..4096]));
    }

    #[test]
    fn digests_depend_on_position_and_count() {
        let bytes = data(1024);
        let a = ChunkDigest::of(4096, 1024, 0).compute(&bytes);
        let b = ChunkDigest::of(4096, 1024, 1).compute(&bytes);
        let whole = ChunkDigest::of(1024, 1024, 0).compute(&bytes);
        assert_ne!(a, b);
        assert_ne!(a, whole);
        assert_eq!(whole, *blake3::hash(&bytes).as_bytes());
    }

    #[test]
    fn wrong_digest_count_is_an_error() {
        assert!(file_hash(5000, 1024, &[[0; 32]; 4]).is_err());
        assert_eq!(
            file_hash(0, 1024, &[*blake3::hash(b"").as_bytes()]).unwrap(),
            *blake3::hash(b"").as_bytes()
        );
    }

    #[test]
    fn chunk_sizes() {
        assert!(is_valid_chunk_size(1024));
        assert!(is_valid_chunk_size(64 << 20));
        assert!(!is_valid_chunk_size(512));
        assert!(!is_valid_chunk_size(3 << 20));
        assert!(!is_valid_chunk_size(0));
    }
}
