//! The metadata store's domain rules, written once for every backend.
//!
//! Pure functions: no SQL, no I/O. The backends read rows, ask these
//! functions what the rows mean or allow, and write the answer; so a rule
//! (how a quota is counted, when a session may take chunks, which stored file
//! a new one deduplicates against, how a metadata patch merges) cannot drift
//! between SQLite and PostgreSQL.

use dataerai_proto::api::{Allocation, UploadFileState, UploadStatus, MAX_METADATA_BYTES};
use serde_json::{Map, Value};

use crate::error::{Result, StoreError};
use crate::meta::{BlobLocation, ChunkRecord, SmallFinish};

/// Whether `allocation` can take `requested` more bytes.
///
/// `already_reserved`: the bytes are part of `reserved_bytes` already (an
/// open session, checked again when it completes) rather than new. The
/// error reports what is reserved *besides* the request either way.
pub fn check_quota(allocation: &Allocation, requested: u64, already_reserved: bool) -> Result<()> {
    let extra = if already_reserved { 0 } else { requested };
    let needed = allocation
        .used_bytes
        .saturating_add(allocation.reserved_bytes)
        .saturating_add(extra);
    if needed > allocation.quota_bytes {
        return Err(StoreError::QuotaExceeded {
            quota: allocation.quota_bytes,
            used: allocation.used_bytes,
            reserved: allocation.reserved_bytes.saturating_sub(requested - extra),
            requested,
        });
    }
    Ok(())
}

/// Whether `allocation` can take `requested` more files (its file limit
/// counts every file of pending and complete versions, however small).
pub fn check_file_limit(allocation: &Allocation, requested: u64) -> Result<()> {
    if allocation.file_count.saturating_add(requested) > allocation.max_files {
        return Err(StoreError::FileLimitExceeded {
            max_files: allocation.max_files,
            file_count: allocation.file_count,
            requested,
        });
    }
    Ok(())
}

/// A session takes chunks, completes or aborts only while it is open.
pub fn require_open(upload_id: &str, status: UploadStatus) -> Result<()> {
    if status == UploadStatus::Open {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "upload {upload_id} is {status}, not open"
        )))
    }
}

/// Completing a session names one checksum per file.
pub fn require_checksum_per_file(checksums: usize, files: usize) -> Result<()> {
    if checksums == files {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{checksums} checksums given for {files} files"
        )))
    }
}

/// Apply a metadata patch: each key replaces the stored one, a `null` value
/// deletes it, keys the patch does not name stay.
pub fn merge_metadata(
    mut stored: Map<String, Value>,
    patch: Map<String, Value>,
) -> Map<String, Value> {
    for (key, value) in patch {
        if value.is_null() {
            stored.remove(&key);
        } else {
            stored.insert(key, value);
        }
    }
    stored
}

/// Metadata merged from many patches must stay within the limit each single
/// one has ([`MAX_METADATA_BYTES`]): refuse a patch whose merged result is
/// larger, naming the limit.
pub fn check_merged_metadata(merged: &Map<String, Value>) -> Result<()> {
    let size = serde_json::to_vec(merged).map_or(usize::MAX, |v| v.len());
    if size > MAX_METADATA_BYTES {
        return Err(StoreError::Invalid(format!(
            "metadata would be {size} bytes as JSON after this change; at most {MAX_METADATA_BYTES} \
             bytes (256 KiB) are allowed: remove keys (set them to null) or store large data as content"
        )));
    }
    Ok(())
}

/// The error for an alias another asset of the same owner has.
pub fn alias_taken(alias: Option<&str>) -> StoreError {
    StoreError::Conflict(format!(
        "alias {:?} is already used by another asset of this owner; choose another alias",
        alias.unwrap_or_default()
    ))
}

/// The error for an email another user has.
pub fn email_taken(email: &str) -> StoreError {
    StoreError::Conflict(format!("a user with email {email} already exists"))
}

/// Scopes are stored as one comma-separated column.
pub fn join_scopes(scopes: &[String]) -> String {
    scopes.join(",")
}

/// The inverse of [`join_scopes`] (an empty column means no scope).
pub fn split_scopes(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The dedup choice for a new file: a file that names its checksum is stored
/// as a pointer to `stored` (a complete file of the same owner with that size
/// and checksum) when there is one. The pointer is what the new file's row
/// records; `None` means the file's bytes will be uploaded as its own chunks.
/// Only a deduplicated file records its checksum now (it is verified
/// already); the others' is verified and recorded at completion.
pub fn dedup_pointer(
    checksum: Option<&str>,
    stored: Option<BlobLocation>,
) -> (Option<BlobLocation>, Option<String>) {
    match (checksum, stored) {
        (Some(sum), Some(at)) => (Some(at), Some(sum.to_string())),
        _ => (None, None),
    }
}

/// Where a file's bytes are: its own chunks (`pointer` is `None`) or the
/// chunks a deduplicated file points at.
pub fn blob_location(
    content_id: &str,
    file_index: u32,
    chunk_size: u64,
    pointer: Option<BlobLocation>,
) -> BlobLocation {
    pointer.unwrap_or_else(|| BlobLocation {
        content_id: content_id.to_string(),
        file_index,
        chunk_size,
    })
}

/// A file of a session as the API shows it. A deduplicated file's bytes are
/// stored already, so every chunk of it counts as received.
pub fn upload_file_state(
    file_index: u32,
    name: String,
    size: u64,
    chunk_size: u64,
    deduplicated: bool,
) -> UploadFileState {
    let chunk_count = dataerai_proto::chunk_count(size, chunk_size);
    UploadFileState {
        file_index,
        name,
        size,
        chunk_count,
        received_chunks: if deduplicated {
            (0..chunk_count).collect()
        } else {
            Vec::new()
        },
        deduplicated,
        dedup_candidate: false,
    }
}

/// The checksum a finished small file gets: its lone chunk's hash, provided
/// the chunk recorded for it (maybe earlier) is this one.
pub fn small_file_checksum(item: &SmallFinish, recorded: &ChunkRecord) -> Result<String> {
    if recorded.hash != item.chunk.hash {
        return Err(StoreError::Conflict(format!(
            "upload {}: its chunk was already received with different bytes",
            item.upload_id
        )));
    }
    Ok(format!("blake3:{}", item.chunk.hash))
}

/// A stored count or size: the columns are signed 64-bit integers that only
/// ever hold values written from `u64`/`u32`; one out of range is a corrupt
/// database (a decoding error, like a corrupt JSON column), not bad input.
pub fn unsigned<T: TryFrom<i64>>(column: &str, v: i64) -> Result<T> {
    T::try_from(v).map_err(|_| {
        StoreError::Db(sqlx::Error::Decode(
            format!("column {column} holds {v}, which is out of range: the database is corrupt")
                .into(),
        ))
    })
}

/// A `u64` (size, quota, index) as the signed integer the columns hold.
pub fn signed(v: u64) -> i64 {
    // Sizes and quotas above 2^63 bytes do not occur; saturate rather than wrap.
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merged_metadata_is_held_to_the_limit() {
        let half = json!({"a": "x".repeat(MAX_METADATA_BYTES / 2)});
        let mut merged = merge_metadata(Map::new(), half.as_object().unwrap().clone());
        assert!(check_merged_metadata(&merged).is_ok());
        let other = json!({"b": "y".repeat(MAX_METADATA_BYTES / 2)});
        merged = merge_metadata(merged, other.as_object().unwrap().clone());
        let err = check_merged_metadata(&merged).unwrap_err().to_string();
        assert!(err.contains("262144 bytes (256 KiB)"), "{err}");
    }

    #[test]
    fn every_file_counts_against_the_file_limit() {
        let mut a = alloc(100, 0, 0);
        a.max_files = 3;
        a.file_count = 2;
        assert!(check_file_limit(&a, 1).is_ok());
        let err = check_file_limit(&a, 2).unwrap_err().to_string();
        assert!(err.contains("file limit"), "{err}");
    }

    fn alloc(quota: u64, used: u64, reserved: u64) -> Allocation {
        Allocation {
            file_count: 0,
            max_files: u64::MAX,
            allocation_id: "a".into(),
            quota_bytes: quota,
            used_bytes: used,
            reserved_bytes: reserved,
        }
    }

    /// `(quota, used, reserved, requested)` of a `QuotaExceeded`.
    fn exceeded(r: Result<()>) -> Option<(u64, u64, u64, u64)> {
        match r {
            Err(StoreError::QuotaExceeded {
                quota,
                used,
                reserved,
                requested,
            }) => Some((quota, used, reserved, requested)),
            _ => None,
        }
    }

    #[test]
    fn quota_counts_used_reserved_and_the_new_request() {
        assert!(check_quota(&alloc(100, 40, 30), 30, false).is_ok());
        let over = check_quota(&alloc(100, 40, 30), 31, false);
        assert_eq!(exceeded(over), Some((100, 40, 30, 31)));
    }

    #[test]
    fn quota_of_an_open_session_counts_its_reservation_once() {
        // 30 of the 50 reserved bytes are this session's own.
        assert!(check_quota(&alloc(100, 50, 50), 30, true).is_ok());
        let over = check_quota(&alloc(90, 50, 50), 30, true);
        assert_eq!(exceeded(over), Some((90, 50, 20, 30)));
    }

    #[test]
    fn quota_never_overflows() {
        assert!(check_quota(&alloc(u64::MAX - 1, u64::MAX, 1), 1, false).is_err());
    }

    #[test]
    fn only_open_sessions_go_on() {
        assert!(require_open("u", UploadStatus::Open).is_ok());
        let e = require_open("u", UploadStatus::Complete).unwrap_err();
        assert_eq!(e.to_string(), "upload u is complete, not open");
        assert!(require_checksum_per_file(2, 2).is_ok());
        assert!(require_checksum_per_file(1, 2).is_err());
    }

    #[test]
    fn metadata_merges_key_by_key_and_null_deletes() {
        let stored = json!({"k": 1, "keep": true, "gone": "x"});
        let patch = json!({"k": 2, "gone": null, "new": [1]});
        let merged = merge_metadata(
            stored.as_object().unwrap().clone(),
            patch.as_object().unwrap().clone(),
        );
        assert_eq!(
            Value::Object(merged),
            json!({"k": 2, "keep": true, "new": [1]})
        );
    }

    #[test]
    fn scopes_round_trip() {
        let scopes = vec!["read".to_string(), "write".to_string()];
        assert_eq!(split_scopes(&join_scopes(&scopes)), scopes);
        assert!(split_scopes("").is_empty());
    }

    #[test]
    fn dedup_needs_a_checksum_and_a_stored_file() {
        let at = BlobLocation {
            content_id: "c".into(),
            file_index: 2,
            chunk_size: 8,
        };
        assert_eq!(dedup_pointer(None, Some(at.clone())), (None, None));
        assert_eq!(dedup_pointer(Some("blake3:00"), None), (None, None));
        assert_eq!(
            dedup_pointer(Some("blake3:00"), Some(at.clone())),
            (Some(at.clone()), Some("blake3:00".into()))
        );
        assert_eq!(blob_location("own", 1, 4, Some(at.clone())), at);
        assert_eq!(blob_location("own", 1, 4, None).content_id, "own");
    }

    #[test]
    fn a_deduplicated_file_has_every_chunk() {
        let f = upload_file_state(0, "f".into(), 10, 4, true);
        assert_eq!((f.chunk_count, f.received_chunks), (3, vec![0, 1, 2]));
        assert!(upload_file_state(0, "f".into(), 10, 4, false)
            .received_chunks
            .is_empty());
    }

    #[test]
    fn small_file_checksum_needs_the_same_chunk() {
        let item = SmallFinish {
            upload_id: "u".into(),
            chunk: ChunkRecord {
                size: 1,
                hash: "ab".into(),
            },
        };
        assert_eq!(
            small_file_checksum(&item, &item.chunk).unwrap(),
            "blake3:ab"
        );
        let other = ChunkRecord {
            size: 1,
            hash: "cd".into(),
        };
        assert!(matches!(
            small_file_checksum(&item, &other),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn integers_outside_the_domain_are_errors() {
        assert_eq!(unsigned::<u64>("size", 5).unwrap(), 5);
        assert!(unsigned::<u64>("size", -1).is_err());
        assert!(unsigned::<u32>("file_index", i64::from(u32::MAX) + 1).is_err());
        assert_eq!(signed(u64::MAX), i64::MAX);
    }
}
