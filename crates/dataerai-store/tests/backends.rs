//! The scale-out backends against real servers: PostgreSQL and an S3-compatible
//! store, as started by `scripts/test-backends.sh` (which prints the env this
//! reads: `DATAERAI_TEST_PG_URL`, `DATAERAI_TEST_BUCKET`, `AWS_*`). They are
//! ignored by a plain `cargo test` and run by `make test-scaleout`
//! (`--include-ignored`, `DATAERAI_REQUIRE_SCALEOUT=1`).

use std::io;

use bytes::Bytes;
use dataerai_store::blob::{read_to_vec, ByteStream, PutOutcome};
use dataerai_store::{BlobStore, ChunkCheck, ChunkKey, S3BlobStore, S3Settings, StoreError};

/// The test bucket; `None` (skip) without the backends, a failure when the
/// scale-out stage requires them.
fn bucket() -> Option<String> {
    dataerai_testkit::scaleout_var("DATAERAI_TEST_BUCKET")
}

fn s3(prefix: &str) -> Option<S3BlobStore> {
    let bucket = bucket()?;
    let settings = S3Settings::default().with_env(|n| std::env::var(n).ok());
    Some(
        S3BlobStore::open(
            &format!("s3://{bucket}/{prefix}-{}", uuid::Uuid::new_v4()),
            &settings,
        )
        .unwrap(),
    )
}

fn body(parts: Vec<Vec<u8>>) -> ByteStream {
    let items: Vec<io::Result<Bytes>> = parts.into_iter().map(|p| Ok(Bytes::from(p))).collect();
    Box::pin(futures::stream::iter(items))
}

async fn read_all(s: ByteStream) -> Vec<u8> {
    read_to_vec(s).await.unwrap()
}

fn key(content: &str, chunk: u64) -> ChunkKey {
    ChunkKey {
        content_id: content.into(),
        file_index: 0,
        chunk_index: chunk,
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL + S3: run by make test-scaleout"]
async fn s3_put_verify_read_discard_delete() {
    let Some(store) = s3("unit") else { return };
    store.check_writable().await.unwrap();

    // 12 MiB: more than two multipart parts, streamed in uneven pieces.
    let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let hash = *blake3::hash(&data).as_bytes();
    let parts: Vec<Vec<u8>> = data.chunks(700_001).map(<[u8]>::to_vec).collect();
    let k = key("c-1", 0);
    let out = store
        .put_chunk(
            &k,
            body(parts),
            ChunkCheck::whole_file(data.len() as u64, hash).into(),
        )
        .await
        .unwrap();
    assert_eq!(out, PutOutcome::Stored);
    assert_eq!(
        read_all(
            store
                .read_chunk(&k, Some(&hex::encode(hash)), 0, data.len() as u64)
                .await
                .unwrap()
        )
        .await,
        data
    );
    let mid = read_all(store.read_chunk(&k, None, 5_000_000, 1234).await.unwrap()).await;
    assert_eq!(mid, &data[5_000_000..5_001_234]);
    assert!(read_all(store.read_chunk(&k, None, 7, 0).await.unwrap())
        .await
        .is_empty());
    // Same bytes again: nothing rewritten.
    let again = store
        .put_chunk(
            &k,
            body(vec![data.clone()]),
            ChunkCheck::whole_file(data.len() as u64, hash).into(),
        )
        .await
        .unwrap();
    assert_eq!(again, PutOutcome::AlreadyStored);

    // Bad length or hash: an error, and nothing becomes visible.
    let small = b"abc".to_vec();
    let h = *blake3::hash(&small).as_bytes();
    let k1 = key("c-1", 1);
    type Refusal = fn(&StoreError) -> bool;
    let bad_length: Refusal = |e| matches!(e, StoreError::Invalid(_));
    let bad_hash: Refusal = |e| matches!(e, StoreError::Integrity(_));
    let bad_puts = [
        ("one byte too many", b"abcd".to_vec(), 3, bad_length),
        ("other bytes", b"abd".to_vec(), 3, bad_hash),
        // A big body with a wrong hash: the multipart upload is aborted.
        (
            "big body, wrong hash",
            data.clone(),
            data.len() as u64,
            bad_hash,
        ),
    ];
    for (case, bytes, len, refused) in bad_puts {
        let put = store
            .put_chunk(
                &k1,
                body(vec![bytes]),
                ChunkCheck::whole_file(len, h).into(),
            )
            .await;
        assert!(put.as_ref().is_err_and(refused), "{case}: {put:?}");
    }
    assert!(matches!(
        store.read_chunk(&k1, Some(&hex::encode(h)), 0, 3).await,
        Err(StoreError::NotFound(_))
    ));

    // Other bytes for an acknowledged chunk go to another key: the first copy
    // is untouched, and discarding the loser leaves exactly the first.
    let other = vec![9u8; 10];
    let ho = *blake3::hash(&other).as_bytes();
    let k2 = key("c-1", 2);
    store
        .put_chunk(
            &k2,
            body(vec![small.clone()]),
            ChunkCheck::whole_file(3, h).into(),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .put_chunk(
                &k2,
                body(vec![other.clone()]),
                ChunkCheck::whole_file(10, ho).into()
            )
            .await
            .unwrap(),
        PutOutcome::Stored
    );
    store.discard_chunk(&k2, ho).await.unwrap();
    assert_eq!(
        read_all(
            store
                .read_chunk(&k2, Some(&hex::encode(h)), 0, 3)
                .await
                .unwrap()
        )
        .await,
        small
    );

    store.delete_content("c-1").await.unwrap();
    assert!(matches!(
        store.read_chunk(&k, None, 0, 1).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_content("c-1").await.unwrap();
    assert!(store.read_chunk(&key("../x", 0), None, 0, 1).await.is_err());
}

#[tokio::test]
#[ignore = "needs PostgreSQL + S3: run by make test-scaleout"]
async fn s3_unreachable_is_unavailable() {
    if bucket().is_none() {
        return;
    }
    let settings = S3Settings {
        endpoint: Some("http://127.0.0.1:9".into()),
        allow_http: Some(true),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        ..Default::default()
    };
    let store = S3BlobStore::open("s3://nowhere/x", &settings).unwrap();
    let err = store.check_writable().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
}
