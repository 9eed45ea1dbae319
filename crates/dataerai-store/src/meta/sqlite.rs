//! [`MetadataStore`] on SQLite: the embedded default. One file
//! (`DATA_DIR/dataerai.db`) in WAL mode, so the admin commands can write while a
//! server runs. Writes run in `BEGIN IMMEDIATE` transactions: the write lock is
//! taken up front, so a read-check-write sequence (quota, merge) never races
//! another writer and never fails half way with `SQLITE_BUSY`. Within the
//! process, writers also queue on an async lock before they begin: SQLite's own
//! busy handler waits by sleeping (up to 100 ms a try), which under concurrent
//! small uploads cost far more time than the writes themselves. Write
//! transactions run on a connection of their own (`writers`, a pool of one):
//! a connection that another one's commit finds idle drops its whole page
//! cache and reads its pages again, so the one connection every write uses
//! keeps its cache between them; reads use the pool of eight.
//!
//! The queries and rules are shared with PostgreSQL ([`super::shared`]); this
//! module says how transactions start and what SQLite's dialect does
//! differently ([`Dialect`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool};

use super::rows::PointerRow;
use super::shared::{Backend, Commit};
use super::sql::{args, Conn, Dialect, Marks, StoredFileKey};
use super::BlobLocation;
use crate::error::Result;
use crate::search::sql::FullText;

/// Files per statement of [`Dialect::stored_files`] (five arguments each).
const DEDUP_KEYS_PER_SELECT: usize = 500;

/// The SQLite metadata store.
#[derive(Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
    /// The one connection write transactions run on.
    writers: SqlitePool,
    /// Held by every write transaction of this process while it runs (a
    /// fair queue: the pool's own wait is not first come, first served).
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction holding the process's write lock until it ends.
/// Derefs to the connection, like `sqlx::Transaction` does.
pub(crate) struct WriteTx {
    // Declared first: the transaction ends before the lock is released.
    tx: sqlx::Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

#[async_trait]
impl Commit for WriteTx {
    async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
    async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and run the migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a chunk ack or a published version must survive a power cut.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // SQLite's default page cache is 2 MB: at a million assets every
            // index lookup of a search then went to the OS. 64 MiB of cache
            // per connection (a limit: pages are allocated as used), and
            // reads of the file through a shared memory map of up to 1 GiB
            // (docs/performance.md, search section).
            .pragma("cache_size", "-65536")
            .pragma("mmap_size", "1073741824");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let writers = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let store = SqliteStore {
            pool,
            writers,
            writer: Arc::new(tokio::sync::Mutex::new(())),
        };
        super::search::backfill(&store).await?;
        store.refresh_statistics().await?;
        Ok(store)
    }

    pub(super) async fn begin_write(&self) -> Result<WriteTx> {
        let turn = self.writer.clone().lock_owned().await;
        Ok(WriteTx {
            tx: self.writers.begin_with("BEGIN IMMEDIATE").await?,
            _turn: turn,
        })
    }
}

#[async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;
    type Write = WriteTx;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn write(&self) -> Result<WriteTx> {
        self.begin_write().await
    }

    /// SQLite keeps no statistics unless asked; without them it drives a
    /// search from the permission filter (every readable asset) instead of
    /// the selective term's index. `analysis_limit` bounds the work per index.
    async fn refresh_statistics(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        conn.execute("PRAGMA analysis_limit = 1000", vec![]).await?;
        conn.execute("PRAGMA optimize = 0x10002", vec![]).await?;
        Ok(())
    }
}

#[async_trait]
impl Dialect for SqliteConnection {
    const FOR_UPDATE: &'static str = "";
    const FOR_SHARE: &'static str = "";
    const CREATION_ORDER: &'static str = "rowid";
    const FULL_TEXT: FullText = FullText::Fts5;
    const NUMBERED_MARKS: bool = false;
    /// SQLite takes up to 32,766; a connection keeps its recent statements
    /// prepared, and a prepared statement grows with its rows.
    const MAX_ARGS: usize = 4_000;

    async fn unreferenced(&mut self, candidates: Vec<String>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for id in candidates {
            let (used,): (bool,) = self
                .fetch_one(
                    "SELECT EXISTS (SELECT 1 FROM content_files f JOIN contents c ON c.id = f.content_id
                                    WHERE c.status != 'aborted'
                                      AND (f.blob_content_id = $1
                                           OR (f.content_id = $1 AND f.blob_content_id IS NULL)))",
                    args![&id],
                )
                .await?;
            if !used {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// One statement per [`DEDUP_KEYS_PER_SELECT`] files, not one per file:
    /// the lookup of `shared::find_stored_file` as a subquery per listed
    /// file, which finds the first matching file row (by rowid) or `NULL`.
    async fn stored_files(
        &mut self,
        wanted: &[StoredFileKey],
    ) -> Result<Vec<Option<BlobLocation>>> {
        let mut out = Vec::with_capacity(wanted.len());
        for part in wanted.chunks(DEDUP_KEYS_PER_SELECT) {
            let mut args = Vec::with_capacity(5 * part.len());
            for (n, key) in (0u64..).zip(part) {
                args.extend(args![
                    n,
                    &key.checksum,
                    key.size,
                    key.owner_type,
                    &key.owner_id
                ]);
            }
            let wanted = Marks::of::<Self>().rows(part.len(), 5);
            let rows: Vec<PointerRow> = self
                .fetch_all(
                    &format!(
                        "WITH w(n, checksum, size, owner_type, owner_id) AS (VALUES {wanted})
                         SELECT COALESCE(f.blob_content_id, f.content_id) AS blob_content_id,
                                COALESCE(f.blob_file_index, f.file_index) AS blob_file_index,
                                COALESCE(f.blob_chunk_size, c.chunk_size) AS blob_chunk_size
                         FROM w LEFT JOIN content_files f ON f.rowid = (
                                  SELECT g.rowid FROM content_files g
                                       JOIN contents d ON d.id = g.content_id
                                       JOIN assets a ON a.id = d.asset_id
                                  WHERE g.checksum = w.checksum AND g.size = w.size
                                    AND d.status = 'complete'
                                    AND a.owner_type = w.owner_type AND a.owner_id = w.owner_id
                                  LIMIT 1)
                              LEFT JOIN contents c ON c.id = f.content_id
                         ORDER BY w.n"
                    ),
                    args,
                )
                .await?;
            for row in &rows {
                out.push(row.pointer()?);
            }
        }
        Ok(out)
    }

    async fn set_checksums(&mut self, content_id: &str, checksums: &[String]) -> Result<()> {
        for (i, checksum) in (0u32..).zip(checksums) {
            self.execute(
                "UPDATE content_files SET checksum = $1 WHERE content_id = $2 AND file_index = $3",
                args![checksum, content_id, i],
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StoreError;
    use crate::meta::{MetadataStore, NewAsset, NewRelationship, Window};

    fn asset(owner: &str) -> NewAsset {
        NewAsset {
            title: "t".into(),
            description: None,
            alias: None,
            tags: vec!["a".into()],
            metadata: serde_json::Map::new(),
            owner_type: dataerai_proto::api::OwnerType::User,
            owner_id: owner.into(),
            collection_id: None,
            created_by: owner.into(),
            record_type: None,
            allocation_id: None,
        }
    }

    /// A JSON column that does not hold what it should is a database error
    /// naming the column (the server answers `ERR_INTERNAL`), never `{}`.
    #[tokio::test]
    async fn corrupt_json_columns_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
        let u = s.create_user("a@x.org", 100).await.unwrap();
        let a = s.create_asset(asset(&u.user_id)).await.unwrap();
        let b = s.create_asset(asset(&u.user_id)).await.unwrap();
        s.create_relationship(NewRelationship {
            from_asset_id: a.asset_id.clone(),
            to_asset_id: b.asset_id.clone(),
            rel_type: "derived_from".into(),
            analysis_mode: None,
            qualifiers: serde_json::Map::new(),
            created_by: u.user_id.clone(),
        })
        .await
        .unwrap();

        let corrupt = |sql: &'static str| {
            let pool = s.pool.clone();
            async move { sqlx::query(sql).execute(&pool).await.unwrap() }
        };
        for (value, column) in [("{not json", "metadata"), ("[1, 2]", "metadata")] {
            sqlx::query("UPDATE assets SET metadata = $1 WHERE id = $2")
                .bind(value)
                .bind(&a.asset_id)
                .execute(&s.pool)
                .await
                .unwrap();
            let e = s.get_asset(&a.asset_id).await.unwrap_err();
            assert!(matches!(e, StoreError::Db(_)), "{e:?}");
            assert!(e.to_string().contains(column), "{e}");
        }
        corrupt("UPDATE assets SET tags = '{\"a\": 1}'").await;
        let e = s.get_asset(&b.asset_id).await.unwrap_err();
        assert!(e.to_string().contains("tags"), "{e}");

        corrupt("UPDATE relationships SET qualifiers = 'nope'").await;
        let all = Window {
            limit: 10,
            offset: 0,
        };
        let e = s
            .list_relationships(&a.asset_id, crate::meta::RelationshipSides::Out, all)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("qualifiers"), "{e}");
    }

    fn small_upload(owner: &str, size: u64) -> crate::meta::NewUpload {
        crate::meta::NewUpload {
            content_id: None,
            target: crate::meta::UploadTarget::NewAsset(asset(owner)),
            user_id: owner.into(),
            chunk_size: 1 << 20,
            files: vec![dataerai_proto::api::UploadFileSpec {
                name: "f".into(),
                size,
                checksum: None,
            }],
        }
    }

    /// Small upload sessions of `sizes`, opened in one batch.
    async fn open_small(
        s: &SqliteStore,
        owner: &str,
        sizes: &[u64],
    ) -> Vec<dataerai_proto::api::UploadSession> {
        s.create_uploads(sizes.iter().map(|&n| small_upload(owner, n)).collect())
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect()
    }

    /// Records chunk 0 of file 0 of `upload_id` as `size` bytes hashing to `hash`.
    async fn record_first_chunk(s: &SqliteStore, upload_id: &str, size: u64, hash: &str) {
        let chunk = crate::meta::ChunkRecord {
            size,
            hash: hash.into(),
        };
        s.record_chunk(upload_id, 0, 0, chunk).await.unwrap();
    }

    fn finish(upload_id: &str, hash: &str, size: u64) -> crate::meta::SmallFinish {
        crate::meta::SmallFinish {
            upload_id: upload_id.into(),
            chunk: crate::meta::ChunkRecord {
                size,
                hash: hash.into(),
            },
        }
    }

    /// New rows get time-ordered ids (UUIDv7): a batch's assets, contents and
    /// sessions sort in the order they were made, so their rows share B-tree
    /// pages.
    #[tokio::test]
    async fn new_ids_are_time_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
        let u = s.create_user("a@x.org", 1 << 30).await.unwrap();
        let items = (0..20).map(|_| small_upload(&u.user_id, 10)).collect();
        let made: Vec<_> = s
            .create_uploads(items)
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        for ids in [
            made.iter().map(|m| &m.asset_id).collect::<Vec<_>>(),
            made.iter().map(|m| &m.content_id).collect(),
            made.iter().map(|m| &m.upload_id).collect(),
        ] {
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
            let v = uuid::Uuid::parse_str(ids[0]).unwrap().get_version_num();
            assert_eq!(v, 7);
        }
    }

    /// `get_uploads` answers, in the order asked, what `get_upload` answers
    /// for each id (unknown ids as `None`).
    #[tokio::test]
    async fn sessions_are_read_together_in_the_order_asked() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
        let u = s.create_user("a@x.org", 1 << 30).await.unwrap();
        let made = open_small(&s, &u.user_id, &[10, 20]).await;
        record_first_chunk(&s, &made[1].upload_id, 20, "bb").await;
        let ids = [
            made[1].upload_id.clone(),
            "nope".to_string(),
            made[0].upload_id.clone(),
        ];
        let together = s.get_uploads(&ids).await.unwrap();
        assert_eq!(together.len(), 3);
        assert!(together[1].is_none());
        for (i, one) in [(0, &made[1]), (2, &made[0])] {
            let alone = s.get_upload(&one.upload_id).await.unwrap().unwrap();
            let got = together[i].as_ref().unwrap();
            assert_eq!(got.session.upload_id, one.upload_id);
            assert_eq!(got.session.files.len(), 1);
            assert_eq!(
                got.session.files[0].received_chunks,
                alone.session.files[0].received_chunks
            );
            assert_eq!(got.session.content_id, alone.session.content_id);
            assert_eq!(got.owner, alone.owner);
            // The session create_uploads answered is the one stored.
            assert_eq!(one.files[0].size, alone.session.files[0].size);
            assert_eq!(one.created_at, alone.session.created_at);
        }
        assert_eq!(
            together[0].as_ref().unwrap().session.files[0].received_chunks,
            [0]
        );
    }

    /// A finish batch decides every item as one at a time would: a session
    /// listed twice is no longer open the second time, an unknown one is not
    /// found, other bytes recorded first are a conflict; and when an item's
    /// quota check fails the batch goes item by item with the same answers.
    #[tokio::test]
    async fn a_finish_batch_answers_as_one_item_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
        let u = s.create_user("a@x.org", 100).await.unwrap();
        let made = open_small(&s, &u.user_id, &[10, 10, 10]).await;
        record_first_chunk(&s, &made[2].upload_id, 10, "other").await;
        let done = s
            .finish_small(&[
                finish(&made[0].upload_id, "aa", 10),
                finish(&made[0].upload_id, "aa", 10),
                finish("nope", "cc", 10),
                finish(&made[2].upload_id, "cc", 10),
                finish(&made[1].upload_id, "bb", 10),
            ])
            .await
            .unwrap();
        assert_eq!(done[0].as_ref().unwrap().content_id, made[0].content_id);
        assert!(
            matches!(done[1], Err(StoreError::Invalid(_))),
            "{:?}",
            done[1]
        );
        assert!(matches!(done[2], Err(StoreError::NotFound(_))));
        assert!(matches!(done[3], Err(StoreError::Conflict(_))));
        let version = done[4].as_ref().unwrap();
        assert_eq!(version.files[0].checksum.as_deref(), Some("blake3:bb"));
        assert_eq!(version.status, dataerai_proto::api::ContentStatus::Complete);
        let asset = s.get_asset(&made[1].asset_id).await.unwrap().unwrap();
        assert_eq!(asset.latest_content.unwrap().content_id, made[1].content_id);
        let a = s
            .allocation(dataerai_proto::api::OwnerType::User, &u.user_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((a.used_bytes, a.reserved_bytes), (20, 10));

        // Over the quota now: each item is refused as it would be on its own.
        let more = open_small(&s, &u.user_id, &[10, 10]).await;
        s.set_quota(dataerai_proto::api::OwnerType::User, &u.user_id, 35)
            .await
            .unwrap();
        let done = s
            .finish_small(&[
                finish(&more[0].upload_id, "dd", 10),
                finish("nope", "ee", 10),
                finish(&more[1].upload_id, "ff", 10),
            ])
            .await
            .unwrap();
        assert!(matches!(done[0], Err(StoreError::QuotaExceeded { .. })));
        assert!(matches!(done[1], Err(StoreError::NotFound(_))));
        assert!(matches!(done[2], Err(StoreError::QuotaExceeded { .. })));
    }

    /// The batched dedup lookup answers, in the order asked, what the lookup
    /// of one file answers for each (hits, a pointer's own location, misses
    /// by size, checksum and owner), across statements of
    /// [`DEDUP_KEYS_PER_SELECT`] files.
    #[tokio::test]
    async fn dedup_lookups_together_answer_as_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
        let u = s.create_user("a@x.org", 1 << 30).await.unwrap();
        let other = s.create_user("b@x.org", 1 << 30).await.unwrap();
        let first = s.create_asset(asset(&u.user_id)).await.unwrap();
        let spec = |size, sum: &str| dataerai_proto::api::UploadFileSpec {
            name: "f".into(),
            size,
            checksum: Some(sum.into()),
        };
        let up = s
            .create_upload(&first.asset_id, &u.user_id, 100, &[spec(10, "blake3:aa")])
            .await
            .unwrap();
        let stored = s
            .complete_upload(&up.upload_id, &["blake3:aa".into()])
            .await
            .unwrap()
            .content_id;
        // A second version of the same bytes: a pointer to the first.
        let up = s
            .create_upload(&first.asset_id, &u.user_id, 100, &[spec(10, "blake3:aa")])
            .await
            .unwrap();
        assert!(up.files[0].deduplicated);
        s.complete_upload(&up.upload_id, &["blake3:aa".into()])
            .await
            .unwrap();
        let key = |owner: &str, size, sum: &str| StoredFileKey {
            owner_type: dataerai_proto::api::OwnerType::User,
            owner_id: owner.into(),
            size,
            checksum: sum.into(),
        };
        let mut wanted = vec![
            key(&u.user_id, 10, "blake3:aa"),
            key(&u.user_id, 11, "blake3:aa"),
            key(&u.user_id, 10, "blake3:bb"),
            key(&other.user_id, 10, "blake3:aa"),
        ];
        for i in 0..DEDUP_KEYS_PER_SELECT {
            wanted.push(key(&u.user_id, 10, &format!("blake3:{i}")));
        }
        wanted.push(key(&u.user_id, 10, "blake3:aa"));
        let mut conn = s.pool.acquire().await.unwrap();
        let together = conn.stored_files(&wanted).await.unwrap();
        assert_eq!(together.len(), wanted.len());
        for (k, got) in wanted.iter().zip(&together) {
            let alone = super::super::shared::find_stored_file(&mut *conn, k)
                .await
                .unwrap();
            assert_eq!(got, &alone, "{} {}", k.checksum, k.size);
        }
        for hit in [&together[0], together.last().unwrap()] {
            assert_eq!(hit.as_ref().unwrap().content_id, stored);
        }
        assert!(together[1..wanted.len() - 1].iter().all(Option::is_none));
    }

    /// Times are stored as fixed-width RFC 3339 UTC text (see `meta::time`).
    #[tokio::test]
    async fn times_are_stored_as_fixed_width_utc_text() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.db")).await.unwrap();
        let u = s.create_user("a@x.org", 100).await.unwrap();
        let (text,): (String,) = sqlx::query_as("SELECT created_at FROM users WHERE id = $1")
            .bind(&u.user_id)
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(text, super::super::time::db_time(u.created_at).text());
        assert_eq!(text.len(), "2026-12-06T12:41:04.123456Z".len());
        assert_eq!(
            s.user_by_email("a@x.org")
                .await
                .unwrap()
                .unwrap()
                .created_at,
            u.created_at
        );
    }
}
