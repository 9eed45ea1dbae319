//! The scale-out backends: PostgreSQL + S3 (s3s-fs), started by
//! `scripts/test-backends.sh` (`make test-scaleout` does it and exports its
//! variables).
//!
//! When `DATAERAI_TEST_SERVER_ARGS` is set, its flags go to every `serve` and
//! `admin` command of the tests, with `{id}` replaced by an id derived from
//! the server's data directory: each test server gets its own PostgreSQL
//! database and bucket prefix, and servers on the same directory share them.
//!
//! Tests that only make sense on those backends are `#[ignore]`d with the
//! reason "needs PostgreSQL + S3" (so `cargo test` lists them as ignored
//! instead of passing them without running anything) and
//! `make test-scaleout` runs them with `--include-ignored` and
//! `DATAERAI_REQUIRE_SCALEOUT=1`. They read their variables with
//! [`scaleout_var`], which fails them when the stage requires the backends.

use std::path::{Path, PathBuf};

/// True when the suite runs against PostgreSQL + S3.
pub fn scaleout() -> bool {
    std::env::var_os("DATAERAI_TEST_SERVER_ARGS").is_some()
}

/// True in the scale-out stage: a missing backend variable is a failure.
pub fn scaleout_required() -> bool {
    std::env::var("DATAERAI_REQUIRE_SCALEOUT").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The value of scale-out variable `name` (e.g. `DATAERAI_TEST_PG_URL`).
///
/// When it is missing: panics if `DATAERAI_REQUIRE_SCALEOUT` is set (the
/// scale-out stage must not pass without its backends), otherwise says on
/// stderr that the test is skipped and answers `None` (someone ran the
/// ignored tests by hand without the backends).
#[track_caller]
pub fn scaleout_var(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if scaleout_required() => panic!(
            "{name} is not set but DATAERAI_REQUIRE_SCALEOUT is: this test needs PostgreSQL + S3; \
             start them with `eval \"$(scripts/test-backends.sh start)\"` (make test-scaleout does)"
        ),
        _ => {
            eprintln!(
                "{name} is not set: test skipped (it needs PostgreSQL + S3: run make test-scaleout)"
            );
            None
        }
    }
}

/// The per-server id `{id}` of `DATAERAI_TEST_SERVER_ARGS` for `data_dir`
/// (lowercase hex: valid in a PostgreSQL database name and an S3 key).
pub fn backend_id(data_dir: &Path) -> String {
    blake3::hash(data_dir.as_os_str().as_encoded_bytes()).to_hex()[..16].to_string()
}

/// Extra `serve`/`admin` flags naming the scale-out backends for the servers
/// of `data_dir` (empty: the embedded defaults).
pub fn backend_args(data_dir: &Path) -> Vec<String> {
    let Ok(template) = std::env::var("DATAERAI_TEST_SERVER_ARGS") else {
        return Vec::new();
    };
    let id = backend_id(data_dir);
    template
        .split_whitespace()
        .map(|arg| arg.replace("{id}", &id))
        .collect()
}

/// Where the chunk objects of the servers of `data_dir` are on disk, one
/// subdirectory per content id: `blobs/content` of the directory store, or
/// with the scale-out backends the s3s-fs root (`DATAERAI_TEST_S3_ROOT`,
/// objects are files there) / bucket / per-test prefix / `content`.
pub fn blob_content_dir(data_dir: &Path) -> PathBuf {
    if !scaleout() {
        return data_dir.join("blobs/content");
    }
    let root = std::env::var("DATAERAI_TEST_S3_ROOT").expect("DATAERAI_TEST_S3_ROOT");
    let bucket = std::env::var("DATAERAI_TEST_BUCKET").expect("DATAERAI_TEST_BUCKET");
    Path::new(&root)
        .join(bucket)
        .join(backend_id(data_dir))
        .join("content")
}

/// Files below `dir` (0 when it does not exist). Deleted S3 objects leave
/// empty directories behind in s3s-fs, so tests count files, not folders.
pub fn blob_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                blob_files(&path)
            } else {
                1
            }
        })
        .sum()
}
