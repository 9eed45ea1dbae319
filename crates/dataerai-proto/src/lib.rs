//! Wire types shared by `dataerai-server`, the `dataerai` daemon/CLI and (by
//! documentation) the Python SDK.
//!
//! - [`error`]: the stable `ERR_*` codes and the JSON error body every layer uses.
//! - [`api`]: request and response bodies of the REST API under `/api/v1`.
//! - [`digest`]: chunk digests and the whole-file BLAKE3 merged from them.
//! - [`ipc`]: JSON-RPC 2.0 envelope types for the daemon socket (`docs/ipc.md`).
//! - [`file_names`]: which file names of one version collide (a pure check).
//! - [`names`]: closed sets of wire strings as enums (project roles, owner
//!   types, content and upload states).
//!
//! Features: `openapi` derives `utoipa` schemas for the REST bodies (the
//! server's OpenAPI document is generated from them); `sqlx` lets the
//! [`names`] enums be read from and bound to text columns.

pub mod api;
pub mod digest;
pub mod error;
pub mod file_names;
pub mod io;
pub mod ipc;
pub mod names;

pub use error::{ApiError, ErrorBody, ErrorCode};

/// Version prefix of every REST route.
pub const API_PREFIX: &str = "/api/v1";

/// Header carrying the hex [`digest::ChunkDigest`] of a chunk body on `PUT .../chunks/{i}`.
pub const CHUNK_HASH_HEADER: &str = "x-dataerai-chunk-blake3";

/// Format a BLAKE3 hash the way the system stores and returns it: `blake3:<hex>`.
pub fn blake3_checksum(hash: &[u8; 32]) -> String {
    let mut s = String::with_capacity(7 + 64);
    s.push_str("blake3:");
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Number of chunks a file of `size` bytes has with `chunk_size`-byte chunks.
/// A 0-byte file has exactly one (empty) chunk so that every file has at least one.
pub fn chunk_count(size: u64, chunk_size: u64) -> u64 {
    assert!(chunk_size > 0, "chunk size must be positive");
    if size == 0 {
        1
    } else {
        size.div_ceil(chunk_size)
    }
}

/// Byte length of chunk `index` of a file of `size` bytes.
pub fn chunk_len(size: u64, chunk_size: u64, index: u64) -> u64 {
    let start = index * chunk_size;
    size.saturating_sub(start).min(chunk_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_math() {
        assert_eq!(chunk_count(0, 10), 1);
        assert_eq!(chunk_len(0, 10, 0), 0);
        assert_eq!(chunk_count(10, 10), 1);
        assert_eq!(chunk_count(11, 10), 2);
        assert_eq!(chunk_len(11, 10, 1), 1);
        assert_eq!(chunk_len(25, 10, 2), 5);
    }

    #[test]
    fn checksum_format() {
        let h = blake3::hash(b"");
        assert_eq!(
            blake3_checksum(h.as_bytes()),
            format!("blake3:{}", h.to_hex())
        );
    }
}
