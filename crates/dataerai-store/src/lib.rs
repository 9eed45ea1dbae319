//! Storage behind the Dataerai server, split in two traits so backends can be
//! swapped without touching the HTTP layer:
//!
//! - [`meta::MetadataStore`]: users, tokens, projects, assets, content versions,
//!   upload sessions and the chunks they hold, relationships, allocations;
//!   and ([`meta::auth::AuthStore`]) passwords, web sessions, device
//!   codes, rotating refresh tokens, sign-in failures, members, the audit log.
//!   Default backend: [`meta::sqlite::SqliteStore`] (SQLite in WAL mode);
//!   scale-out: [`meta::postgres::PgStore`] (PostgreSQL, shared by replicas).
//!   Both backends share one implementation (`meta::shared`): the SQL (with
//!   `$n` placeholders), the row structs, and the domain rules in [`rules`];
//!   each backend keeps only how its transactions start and lock.
//! - [`blob::BlobStore`]: the bytes, stored chunk by chunk.
//!   Default backend: [`blob::fs::FsBlobStore`] (a local directory);
//!   scale-out: [`blob::s3::S3BlobStore`] (any S3-compatible bucket).
//!
//! Invariants both backends keep:
//! - No upload state lives in process memory: sessions and received chunks are
//!   rows in the metadata store, chunk bytes are objects in the blob store, so
//!   several server replicas can share one database and one bucket.
//! - Bytes are written once. A chunk is stored under its final key
//!   (`content_id/file_index/chunk_index`) as soon as it is verified; publishing a
//!   content version is a single metadata transaction, never a copy.
//! - Identical files of one owner are stored once: a deduplicated content file
//!   points (one hop, `meta::BlobLocation`) at the chunks of the file first
//!   uploaded. The metadata store decides when a content id's chunks are no
//!   longer referenced; only then does the caller delete them from the blob
//!   store (S3: delete the `content_id/` prefix).

pub mod blob;
pub mod error;
pub mod meta;
pub mod rules;
pub mod search;

pub use blob::{
    fs::FsBlobStore, s3::S3BlobStore, s3::S3Settings, BlobStore, BodyCheck, ChunkCheck, ChunkKey,
    Claimed, DigestAfterBody,
};
pub use error::StoreError;
pub use meta::{postgres::PgStore, sqlite::SqliteStore, MetadataStore};
