//! Digests the browser upload's BLAKE3 (`web/static/blake3.js` in the
//! server) must reproduce, made here by the Rust code the server checks
//! chunks with (`dataerai_proto::digest`).
//!
//! The vectors live in `tests/e2e/fixtures/blake3-vectors.json`, which
//! `tests/e2e/blake3.test.mjs` (`node --test`) reads to test the JavaScript.
//! This test fails when the committed file no longer matches the Rust code;
//! `DATAERAI_WRITE_VECTORS=1 cargo test -p dataerai-proto --test
//! browser_digest_vectors` rewrites it.

use std::path::PathBuf;

use dataerai_proto::digest::{chunk_digests, file_hash, ChunkDigest};
use serde_json::{json, Value};

const RECIPE: &str = "byte i of an input of n bytes (i from 0) is \
    ((i * 2654435761) mod 2^32) >> 8, mod 256; a chunk's bytes restart at i = 0";

fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect()
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Plain hashes: block and chunk boundaries, and a few trees.
const HASH_LENS: &[usize] = &[
    0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 3073, 4096, 5000, 8192, 8193,
    16_384, 31_744, 65_537, 102_403,
];

/// Whole files cut in chunks: (size, chunk size).
const FILES: &[(u64, u64)] = &[
    (0, 1024),
    (1, 1024),
    (1024, 1024),
    (1025, 1024),
    (3 * 1024, 1024),
    (5000, 1024),
    (13 * 2048, 2048),
    (4096, 4096),
    (4097, 4096),
    (70 * 1024 + 17, 4096),
    (9 * 16_384 - 1, 16_384),
    (65_537, 65_536),
];

/// Single chunks far into big files (chunk counters past 2^32 included):
/// (file size, chunk size, index, chunk length).
const FAR_CHUNKS: &[(u64, u64, u64, usize)] = &[
    (10 << 30, 65_536, (10 << 30) / 65_536 - 1, 65_536),
    ((10 << 30) + 100, 65_536, (10 << 30) / 65_536, 100),
    (1 << 43, 1024, (1 << 33) + 5, 1024),
    (1 << 44, 8 << 20, (1 << 21) + 3, 4096 + 5),
];

fn vectors() -> Value {
    let hashes: Vec<Value> = HASH_LENS
        .iter()
        .map(|&len| json!({"len": len, "blake3": hex(blake3::hash(&data(len)).as_bytes())}))
        .collect();
    let files: Vec<Value> = FILES
        .iter()
        .map(|&(size, chunk_size)| {
            let all = data(size as usize);
            let digests = chunk_digests(&all, chunk_size);
            let whole = file_hash(size, chunk_size, &digests).unwrap();
            assert_eq!(whole, *blake3::hash(&all).as_bytes());
            json!({
                "size": size,
                "chunk_size": chunk_size,
                "chunks": digests.iter().map(hex).collect::<Vec<_>>(),
                "file_hash": hex(&whole),
            })
        })
        .collect();
    let far: Vec<Value> = FAR_CHUNKS
        .iter()
        .map(|&(file_size, chunk_size, index, len)| {
            let digest = ChunkDigest::of(file_size, chunk_size, index).compute(&data(len));
            json!({
                "file_size": file_size,
                "chunk_size": chunk_size,
                "index": index,
                "len": len,
                "digest": hex(&digest),
            })
        })
        .collect();
    json!({
        "about": "BLAKE3 digests made by dataerai_proto::digest, for web/static/blake3.js \
                  (crates/dataerai-proto/tests/browser_digest_vectors.rs writes and checks them)",
        "recipe": RECIPE,
        "hashes": hashes,
        "files": files,
        "far_chunks": far,
    })
}

#[test]
fn committed_vectors_match_the_rust_digests() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/fixtures/blake3-vectors.json");
    let fresh = vectors();
    if std::env::var_os("DATAERAI_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (DATAERAI_WRITE_VECTORS=1 makes it)",
                path.display()
            )
        }))
        .unwrap();
    assert!(
        committed == fresh,
        "{} is stale: rerun with DATAERAI_WRITE_VECTORS=1",
        path.display()
    );
}

#[test]
fn the_recipe_is_the_one_written_down() {
    // What blake3.test.mjs generates from the recipe text.
    assert_eq!(data(4), [0x00, 0x79, 0xf3, 0x6d]);
}
