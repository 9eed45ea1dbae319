//! [`BlobStore`] on an S3-compatible object store (AWS S3, MinIO, Ceph RGW,
//! Garage, s3s-fs): the scale-out backend several replicas share.
//!
//! Layout: `PREFIX/content/<content_id>/<file_index>/<chunk_index>/<hash>`,
//! one object per chunk, where `<hash>` is the first 128 bits of the chunk's
//! verified BLAKE3 in hex ([`key_hash`]; two different chunks sharing it would
//! take a 128-bit BLAKE3 collision, and the short key keeps within the file
//! name limits of file-backed S3 servers). S3 has no rename and no portable no-clobber write,
//! so the verified hash is part of the key instead:
//! - A chunk body is streamed into a (multipart, above [`PART_SIZE`]) upload
//!   while it is hashed; the upload is completed only if length and hash
//!   match, otherwise aborted, so a bad chunk is never visible.
//! - A chunk whose digest comes after its body (an HTTP trailer) is streamed
//!   into a staging object under `…/<chunk_index>/staging/`, checked, then
//!   copied under its key inside the object store ([`S3BlobStore::put_staged`]).
//! - Different bytes for the same chunk go to a different key, so an
//!   acknowledged chunk can never be overwritten; identical bytes go to the
//!   same key (rewriting them is harmless). Which of two different versions
//!   counts is decided by the metadata store (`record_chunk`, first wins); the
//!   loser is removed with [`BlobStore::discard_chunk`].
//! - A read names the object from the chunk's digest as the metadata store
//!   recorded it (the same value the key was made from when it was written)
//!   and streams the range with one ranged GET, piece by piece as the body
//!   arrives. Only without a recorded digest (a deduplicated file that
//!   outlived the session which stored its bytes), or when no object has
//!   that name, is the chunk's `…/<chunk_index>/` prefix listed to find it.
//!
//! The chunk (up to 512 MiB) is the resumable unit of an upload; S3 multipart
//! parts are an implementation detail inside one chunk request. Memory per
//! chunk request is bounded by [`PART_SIZE`] × [`PART_CONCURRENCY`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, RetryConfig};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{
    check_content_id, BlobStore, BodyCheck, ByteStream, ChunkCheck, ChunkKey, Claimed, PutOutcome,
    StoredContent,
};
use crate::error::{Result, StoreError};

/// Bytes buffered before a multipart part is sent (S3's minimum part size).
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts of one chunk in flight at once.
pub const PART_CONCURRENCY: usize = 2;

/// Where the bucket is and how to sign in. Every field is optional: what is
/// missing comes from the usual AWS environment variables (see
/// [`S3Settings::with_env`]) or the library defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// e.g. `http://127.0.0.1:9000`; default: AWS for the region.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Allow `http://` endpoints (loopback test servers, a private network).
    pub allow_http: Option<bool>,
    /// `https://bucket.host/…` instead of `https://host/bucket/…`.
    pub virtual_hosted_style: Option<bool>,
}

impl S3Settings {
    /// These settings overridden by the AWS environment variables that are
    /// set: `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`), `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`, `AWS_VIRTUAL_HOSTED_STYLE_REQUEST`.
    pub fn with_env(self, env: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()));
        let flag = |name: &str| {
            first(&[name]).map(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "True"))
        };
        S3Settings {
            endpoint: first(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]).or(self.endpoint),
            region: first(&["AWS_REGION", "AWS_DEFAULT_REGION"]).or(self.region),
            access_key_id: first(&["AWS_ACCESS_KEY_ID"]).or(self.access_key_id),
            secret_access_key: first(&["AWS_SECRET_ACCESS_KEY"]).or(self.secret_access_key),
            session_token: first(&["AWS_SESSION_TOKEN"]).or(self.session_token),
            allow_http: flag("AWS_ALLOW_HTTP").or(self.allow_http),
            virtual_hosted_style: flag("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")
                .or(self.virtual_hosted_style),
        }
    }
}

/// Split `s3://bucket/some/prefix` into the bucket and the key prefix.
pub fn parse_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        StoreError::Invalid(format!(
            "blob store {url:?} is not an s3://bucket/prefix URL"
        ))
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError::Invalid(format!(
            "blob store {url:?} names no bucket"
        )));
    }
    Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
}

#[derive(Clone)]
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Key prefix (no leading or trailing slash; may be empty).
    prefix: String,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3BlobStore({}, prefix {:?})", self.store, self.prefix)
    }
}

impl S3BlobStore {
    /// Connect to `s3://bucket/prefix` with `settings`. Nothing is contacted
    /// yet: the readiness probe ([`BlobStore::check_writable`]) does that.
    pub fn open(url: &str, settings: &S3Settings) -> Result<Self> {
        let (bucket, prefix) = parse_url(url)?;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(
                settings
                    .region
                    .clone()
                    .unwrap_or_else(|| "us-east-1".into()),
            )
            .with_virtual_hosted_style_request(settings.virtual_hosted_style.unwrap_or(false))
            // Fail over quickly to the client's own retry (it resends the
            // chunk) instead of holding a request for minutes.
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
                ..Default::default()
            })
            // (allow_http lives in the client options: set it here, not on
            // the builder, or these options would reset it.)
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(settings.allow_http.unwrap_or(false))
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300)),
            );
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &settings.access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token);
        }
        Ok(S3BlobStore {
            store: Arc::new(builder.build()?),
            prefix,
        })
    }

    fn path(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn content_path(&self, content_id: &str) -> Result<Path> {
        // Ids come from our own database, but a key must stay under the prefix.
        check_content_id(content_id)?;
        Ok(self.path(&format!("content/{content_id}")))
    }

    /// The "directory" holding the object(s) of one chunk.
    fn chunk_dir(&self, key: &ChunkKey) -> Result<Path> {
        Ok(self
            .content_path(&key.content_id)?
            .child(key.file_index.to_string())
            .child(key.chunk_index.to_string()))
    }

    /// The object of a chunk whose digest is not known: the one object under
    /// its `…/<chunk_index>/` prefix (one level: cheap on every S3 server).
    async fn find_chunk(&self, key: &ChunkKey, dir: &Path) -> Result<Path> {
        let mut objects = self.store.list_with_delimiter(Some(dir)).await?.objects;
        if objects.len() > 1 {
            // A losing concurrent write not yet discarded: the older object
            // was completed first.
            tracing::warn!(chunk = %dir, count = objects.len(), "several objects for one chunk");
            objects.sort_by_key(|o| o.last_modified);
        }
        let object = objects.into_iter().next().ok_or_else(|| not_found(key))?;
        Ok(object.location)
    }

    /// A ranged GET of `location` (chunk `key`), its body streamed as it
    /// arrives; a missing object is [`StoreError::NotFound`].
    async fn get_range(
        &self,
        key: &ChunkKey,
        location: &Path,
        len: u64,
        range: GetRange,
    ) -> Result<ByteStream> {
        let missing = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => not_found(key),
            e => e.into(),
        };
        if len == 0 {
            // (A zero-length range is not valid HTTP: only check the object.)
            self.store.head(location).await.map_err(missing)?;
            return Ok(Box::pin(futures::stream::empty()));
        }
        let options = GetOptions {
            range: Some(range),
            ..Default::default()
        };
        let got = self
            .store
            .get_opts(location, options)
            .await
            .map_err(missing)?;
        Ok(Box::pin(got.into_stream().map_err(std::io::Error::other)))
    }

    /// Stream `body` into a new object at `path`, checking it: the object
    /// is completed (durable when S3 answers) only if the body passes, and
    /// aborted otherwise, so a bad chunk is never visible. Answers the chunk
    /// as verified.
    async fn write_verified(
        &self,
        path: Path,
        mut body: ByteStream,
        check: BodyCheck,
    ) -> Result<ChunkCheck> {
        let mut writer = BufWriter::with_capacity(self.store.clone(), path, PART_SIZE)
            .with_max_concurrency(PART_CONCURRENCY);
        let mut verifier = check.verifier();
        let written = async {
            while let Some(piece) = verifier.next(&mut body).await? {
                writer.put(piece).await?;
            }
            verifier.finish()
        }
        .await;
        match written {
            Ok(verified) => {
                writer.shutdown().await.map_err(std::io::Error::other)?;
                Ok(verified)
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "aborting a rejected chunk upload failed");
                }
                Err(e)
            }
        }
    }

    /// A chunk whose digest follows its body: the object's key names the
    /// digest, which is known only at the end, so the body goes to a
    /// staging object under `…/<chunk_index>/staging/` (never listed as the
    /// chunk: [`S3BlobStore::find_chunk`] lists one level only), is copied
    /// under its key once verified, and the staging object is deleted. The
    /// copy happens inside the object store; one left behind by a crash is
    /// removed with its content id.
    async fn put_staged(
        &self,
        key: &ChunkKey,
        body: ByteStream,
        check: BodyCheck,
    ) -> Result<PutOutcome> {
        let dir = self.chunk_dir(key)?;
        let staging = dir
            .child(STAGING)
            .child(Uuid::new_v4().to_string().as_str());
        let verified = self.write_verified(staging.clone(), body, check).await?;
        let path = dir.child(key_hash(&verified.hash));
        // The same bytes again under the same key are harmless.
        let copied = self.store.copy(&staging, &path).await;
        if let Err(e) = self.store.delete(&staging).await {
            tracing::warn!(error = %e, object = %staging, "could not delete a staging object");
        }
        copied?;
        Ok(PutOutcome::Stored)
    }
}

/// The folder, under a chunk's own, of objects whose digest was not known
/// when they were written ([`S3BlobStore::put_staged`]).
const STAGING: &str = "staging";

/// The hash part of a chunk's object key: 32 hex digits (128 bits).
pub fn key_hash(hash: &[u8; 32]) -> String {
    hex::encode(&hash[..16])
}

/// [`key_hash`] of a digest recorded as hex (`None` if it is not one).
fn digest_key_hash(recorded: &str) -> Option<String> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(recorded, &mut digest).ok()?;
    Some(key_hash(&digest))
}

fn not_found(key: &ChunkKey) -> StoreError {
    StoreError::NotFound(format!(
        "chunk {} of file {} of content {}",
        key.chunk_index, key.file_index, key.content_id
    ))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put_chunk(
        &self,
        key: &ChunkKey,
        body: ByteStream,
        check: BodyCheck,
    ) -> Result<PutOutcome> {
        let hash = match &check.claimed {
            Claimed::Before(hash) => *hash,
            Claimed::After(_) => return self.put_staged(key, body, check).await,
        };
        let path = self.chunk_dir(key)?.child(key_hash(&hash));
        // Stored earlier (the metadata record was lost, or a retry raced it):
        // the key names verified bytes, so there is nothing to write. Asked
        // only for a chunk sent in parts: one that fits a single PUT is
        // simply written (the same bytes again under the same key; a PUT
        // replaces an object whole), which costs what the HEAD would — a
        // small file is one request, not two.
        if check.len > PART_SIZE as u64 {
            match self.store.head(&path).await {
                Ok(_) => return Ok(PutOutcome::AlreadyStored),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.write_verified(path, body, check).await?;
        Ok(PutOutcome::Stored)
    }

    async fn read_chunk(
        &self,
        key: &ChunkKey,
        digest: Option<&str>,
        offset: u64,
        len: u64,
    ) -> Result<ByteStream> {
        let dir = self.chunk_dir(key)?;
        let range = GetRange::Bounded(offset..offset + len);
        // The recorded digest names the object: one GET, no LIST.
        if let Some(name) = digest.and_then(digest_key_hash) {
            match self
                .get_range(key, &dir.child(name), len, range.clone())
                .await
            {
                Err(StoreError::NotFound(_)) => {
                    // Not where its record says: look it up (below) rather
                    // than fail a download that can still be served.
                    tracing::warn!(chunk = %dir, "no object under the recorded digest; listing");
                }
                got => return got,
            }
        }
        let location = self.find_chunk(key, &dir).await?;
        self.get_range(key, &location, len, range).await
    }

    fn names_by_digest(&self) -> bool {
        true
    }

    async fn discard_chunk(&self, key: &ChunkKey, hash: [u8; 32]) -> Result<()> {
        let path = self.chunk_dir(key)?.child(key_hash(&hash));
        match self.store.delete(&path).await {
            Err(object_store::Error::NotFound { .. }) | Ok(()) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_content(&self, content_id: &str) -> Result<()> {
        let prefix = self.content_path(content_id)?;
        let locations = self
            .store
            .list(Some(&prefix))
            .map_ok(|o| o.location)
            .boxed();
        self.store
            .delete_stream(locations)
            .try_for_each(|_| futures::future::ready(Ok(())))
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(()),
                e => Err(e.into()),
            })
    }

    async fn list_contents(&self) -> Result<Vec<StoredContent>> {
        let area = self.path("content");
        let mut by_id: std::collections::BTreeMap<String, StoredContent> = Default::default();
        let mut objects = self.store.list(Some(&area));
        while let Some(object) = objects.try_next().await? {
            // `…/content/<content_id>/<file_index>/<chunk_index>/<hash>`
            let Some(content_id) = object
                .location
                .prefix_match(&area)
                .and_then(|mut rest| rest.next())
            else {
                continue;
            };
            let content_id = content_id.as_ref();
            if check_content_id(content_id).is_err() {
                continue;
            }
            let stored = by_id
                .entry(content_id.to_string())
                .or_insert_with(|| StoredContent {
                    content_id: content_id.to_string(),
                    objects: 0,
                    bytes: 0,
                    newest: object.last_modified,
                });
            stored.objects += 1;
            stored.bytes += object.size;
            stored.newest = stored.newest.max(object.last_modified);
        }
        Ok(by_id.into_values().collect())
    }

    async fn check_writable(&self) -> Result<()> {
        let probe = self.path(&format!(".ready-{}", Uuid::new_v4()));
        self.store.put(&probe, "ok".into()).await?;
        self.store.delete(&probe).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{
        ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions, PutOptions, PutPayload,
        PutResult,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The requests a [`Counting`] store saw, by kind.
    #[derive(Debug, Default)]
    struct Requests {
        lists: AtomicUsize,
        gets: AtomicUsize,
        heads: AtomicUsize,
        puts: AtomicUsize,
    }

    impl Requests {
        fn take(&self) -> (usize, usize, usize) {
            (
                self.lists.swap(0, Ordering::SeqCst),
                self.gets.swap(0, Ordering::SeqCst),
                self.heads.swap(0, Ordering::SeqCst),
            )
        }
    }

    /// An object store that counts the requests it passes on.
    #[derive(Debug)]
    struct Counting {
        inner: Arc<dyn ObjectStore>,
        seen: Arc<Requests>,
    }

    impl std::fmt::Display for Counting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Counting({})", self.inner)
        }
    }

    #[async_trait]
    impl ObjectStore for Counting {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.seen.puts.fetch_add(1, Ordering::SeqCst);
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.seen.puts.fetch_add(1, Ordering::SeqCst);
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            let counter = if options.head {
                &self.seen.heads
            } else {
                &self.seen.gets
            };
            counter.fetch_add(1, Ordering::SeqCst);
            self.inner.get_opts(location, options).await
        }
        async fn head(&self, location: &Path) -> object_store::Result<ObjectMeta> {
            self.seen.heads.fetch_add(1, Ordering::SeqCst);
            self.inner.head(location).await
        }
        async fn delete(&self, location: &Path) -> object_store::Result<()> {
            self.inner.delete(location).await
        }
        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.seen.lists.fetch_add(1, Ordering::SeqCst);
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.seen.lists.fetch_add(1, Ordering::SeqCst);
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
            self.inner.copy(from, to).await
        }
        async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
            self.inner.copy_if_not_exists(from, to).await
        }
    }

    /// The S3 test server's store (`scripts/test-backends.sh`), counting its
    /// requests; `None` (skip) without it.
    fn counted_s3() -> Option<(S3BlobStore, Arc<Requests>)> {
        let bucket = dataerai_testkit::scaleout_var("DATAERAI_TEST_BUCKET")?;
        let settings = S3Settings::default().with_env(|n| std::env::var(n).ok());
        let url = format!("s3://{bucket}/reads-{}", Uuid::new_v4());
        let real = S3BlobStore::open(&url, &settings).unwrap();
        let seen = Arc::new(Requests::default());
        let counting = Counting {
            inner: real.store.clone(),
            seen: seen.clone(),
        };
        Some((
            S3BlobStore {
                store: Arc::new(counting),
                prefix: real.prefix,
            },
            seen,
        ))
    }

    fn once(data: Vec<u8>) -> ByteStream {
        Box::pin(futures::stream::once(async move {
            Ok(bytes::Bytes::from(data))
        }))
    }

    #[tokio::test]
    #[ignore = "needs the S3 test server: run by make test-scaleout"]
    async fn reads_get_the_object_named_by_its_digest_without_listing() {
        let Some((store, seen)) = counted_s3() else {
            return;
        };
        // 12 MiB: a body the server sends in many pieces.
        let data: Vec<u8> = (0..12 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
        let hash = *blake3::hash(&data).as_bytes();
        let key = ChunkKey {
            content_id: "c-reads".into(),
            file_index: 0,
            chunk_index: 3,
        };
        let check = ChunkCheck::whole_file(data.len() as u64, hash);
        assert_eq!(
            store
                .put_chunk(&key, once(data.clone()), check.into())
                .await
                .unwrap(),
            PutOutcome::Stored
        );
        seen.take();
        let recorded = hex::encode(hash);

        // With the recorded digest: one GET, no LIST; the bytes arrive intact
        // and in pieces (streamed as they come, not buffered as one chunk).
        let mut body = store
            .read_chunk(&key, Some(&recorded), 0, data.len() as u64)
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut pieces = 0;
        while let Some(piece) = body.next().await {
            got.extend_from_slice(&piece.unwrap());
            pieces += 1;
        }
        assert_eq!(got, data);
        assert!(pieces > 1, "the chunk arrived as one buffered piece");
        assert_eq!(seen.take(), (0, 1, 0), "(lists, gets, heads) of a read");
        let mid = super::super::read_to_vec(
            store
                .read_chunk(&key, Some(&recorded), 5_000_000, 1234)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(mid, &data[5_000_000..5_001_234]);
        assert_eq!(seen.take(), (0, 1, 0));

        // Without a recorded digest (a deduplicated file whose source
        // session is gone), or with one naming no object: found by listing.
        for digest in [None, Some(hex::encode([7u8; 32]))] {
            let got = super::super::read_to_vec(
                store
                    .read_chunk(&key, digest.as_deref(), 10, 20)
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(got, &data[10..30]);
            let (lists, gets, _) = seen.take();
            assert_eq!(lists, 1, "{digest:?}");
            assert!(gets >= 1);
        }

        // A chunk that is not stored is NotFound either way.
        let absent = ChunkKey {
            chunk_index: 4,
            ..key.clone()
        };
        for digest in [Some(recorded.as_str()), None] {
            assert!(matches!(
                store.read_chunk(&absent, digest, 0, 1).await,
                Err(StoreError::NotFound(_))
            ));
        }
        store.delete_content("c-reads").await.unwrap();
    }

    #[tokio::test]
    #[ignore = "needs the S3 test server: run by make test-scaleout"]
    async fn a_small_chunk_is_one_put_and_a_resent_one_is_rewritten_whole() {
        let Some((store, seen)) = counted_s3() else {
            return;
        };
        let data = vec![7u8; 64 * 1024];
        let hash = *blake3::hash(&data).as_bytes();
        let key = ChunkKey {
            content_id: "c-small".into(),
            file_index: 0,
            chunk_index: 0,
        };
        let check = ChunkCheck::whole_file(data.len() as u64, hash);
        for _ in 0..2 {
            let put = store
                .put_chunk(&key, once(data.clone()), check.into())
                .await;
            assert_eq!(put.unwrap(), PutOutcome::Stored);
            assert_eq!(
                seen.take(),
                (0, 0, 0),
                "(lists, gets, heads) of a small PUT"
            );
            assert_eq!(
                seen.puts.swap(0, Ordering::SeqCst),
                1,
                "requests to write it"
            );
        }
        let read = store
            .read_chunk(&key, Some(&hex::encode(hash)), 0, data.len() as u64)
            .await
            .unwrap();
        assert_eq!(super::super::read_to_vec(read).await.unwrap(), data);
        // Bad bytes are still refused before anything is written.
        let bad = store
            .put_chunk(&key, once(vec![8u8; 64 * 1024]), check.into())
            .await;
        assert!(matches!(bad, Err(StoreError::Integrity(_))), "{bad:?}");
        assert_eq!(seen.puts.swap(0, Ordering::SeqCst), 0);
        store.delete_content("c-small").await.unwrap();
    }

    #[tokio::test]
    #[ignore = "needs the S3 test server: run by make test-scaleout"]
    async fn a_digest_that_follows_the_body_is_checked_before_the_chunk_is_kept() {
        let Some((store, _)) = counted_s3() else {
            return;
        };
        super::super::scenarios::digest_after_body(&store, "c-after").await;
        store.delete_content("c-after").await.unwrap();
    }

    #[test]
    fn urls_and_env_precedence() {
        assert_eq!(
            parse_url("s3://b/x/y/").unwrap(),
            ("b".to_string(), "x/y".to_string())
        );
        assert_eq!(
            parse_url("s3://b").unwrap(),
            ("b".to_string(), String::new())
        );
        assert!(parse_url("s3:///x").is_err());
        assert!(parse_url("/var/lib/x").is_err());

        let file = S3Settings {
            endpoint: Some("http://file".into()),
            region: Some("file-region".into()),
            allow_http: Some(false),
            ..Default::default()
        };
        let env = |name: &str| match name {
            "AWS_ENDPOINT_URL" => Some("http://env".to_string()),
            "AWS_ALLOW_HTTP" => Some("true".to_string()),
            "AWS_REGION" => Some(String::new()), // set but empty: ignored
            _ => None,
        };
        let merged = file.with_env(env);
        assert_eq!(merged.endpoint.as_deref(), Some("http://env"));
        assert_eq!(merged.region.as_deref(), Some("file-region"));
        assert_eq!(merged.allow_http, Some(true));
        assert_eq!(merged.access_key_id, None);
    }
}
