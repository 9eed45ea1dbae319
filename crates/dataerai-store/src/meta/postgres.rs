//! [`MetadataStore`] on PostgreSQL: the scale-out backend shared by several
//! server replicas. Migrations in `migrations/postgres/` run at open; a missing
//! database is created first (when the role may), so a fresh cluster needs no
//! manual step.
//!
//! The queries and rules are shared with SQLite ([`super::shared`], which
//! also documents the lock order). Where SQLite takes its one write lock up
//! front (`BEGIN IMMEDIATE`), a read-check-write here locks the rows it
//! decides on with `SELECT … FOR UPDATE`; this module says how, and what
//! else PostgreSQL's dialect does differently ([`Dialect`]). A batch of
//! small uploads is one transaction (one commit, one WAL flush) that locks
//! every allocation and session it decides on before its first item, in id
//! order (see the lock order in [`super::shared`]).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::Postgres;

use super::rows::PointerRow;
use super::shared::Backend;
use super::sql::{Dialect, StoredFileKey};
use super::BlobLocation;
use crate::error::Result;
use crate::rules::signed;
use crate::search::sql::FullText;

/// SQLSTATE of "database does not exist".
const INVALID_CATALOG_NAME: &str = "3D000";

/// The PostgreSQL metadata store.
#[derive(Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
}

type Tx = sqlx::Transaction<'static, Postgres>;

impl PgStore {
    /// Connect to `url` (`postgres://user:password@host:port/database`),
    /// creating the database if it does not exist, and run the migrations.
    pub async fn open(url: &str) -> Result<Self> {
        // Every statement is planned with its values: sqlx prepares each
        // statement once per connection, and after five runs PostgreSQL may
        // switch to a generic plan costed without them, which for a search
        // ignores how selective its driving term is (a metadata range that
        // drives 1,000 candidates was planned as a merge join over every
        // asset of a record type; docs/performance.md). Planning a statement
        // costs well under a millisecond.
        // No JIT and no parallel workers: every statement here is a few
        // index ranges and probes; a search's per-candidate subqueries are
        // costed past `jit_above_cost`, and compiling it (50–250 ms on a
        // busy machine) or starting two workers for a thousand index rows
        // cost more than the statement itself (docs/performance.md).
        let options = PgConnectOptions::from_str(url)?.options([
            ("plan_cache_mode", "force_custom_plan"),
            ("jit", "off"),
            ("max_parallel_workers_per_gather", "0"),
        ]);
        let pool_options = || {
            PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
        };
        let pool = match pool_options().connect_with(options.clone()).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(INVALID_CATALOG_NAME) => {
                tracing::info!(
                    database = options.get_database().unwrap_or_default(),
                    "creating the missing database"
                );
                Postgres::create_database(url).await?;
                pool_options().connect_with(options).await?
            }
            other => other?,
        };
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let store = PgStore { pool };
        super::search::backfill(&store).await?;
        Ok(store)
    }

    pub(super) async fn begin(&self) -> Result<Tx> {
        Ok(self.pool.begin().await?)
    }
}

#[async_trait]
impl Backend for PgStore {
    type Db = Postgres;
    type Write = Tx;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn write(&self) -> Result<Tx> {
        self.begin().await
    }
}

/// The dedup lookup of a batch ([`Dialect::stored_files`]): the conditions
/// of `shared::find_stored_file` for each listed file, the files given as
/// arrays (checksums, sizes, owner types, owner ids), answered in order.
///
/// Written so that each file's lookup can only start from its checksum
/// (`content_files_checksum`: a BLAKE3 digest matches one stored file or a
/// few copies) and read the matches' content and asset rows by primary key:
/// the owner is compared in a subquery per match, not joined. Joined, the
/// planner could drive the lookup from the owner's assets (`assets_owner`)
/// instead, and did whenever the statistics said the owner had few — as
/// they do for tables not analyzed since they grew, a new database's
/// included — probing every asset of the owner for each file: 6.3 s for
/// 256 files of an owner of 2,000 assets, 0.5 ms this way
/// (docs/performance.md).
const STORED_FILES: &str = "
    SELECT p.blob_content_id, p.blob_file_index, p.blob_chunk_size
    FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[])
             WITH ORDINALITY AS w(checksum, size, owner_type, owner_id, n)
         LEFT JOIN LATERAL (
             SELECT COALESCE(f.blob_content_id, f.content_id) AS blob_content_id,
                    COALESCE(f.blob_file_index, f.file_index) AS blob_file_index,
                    COALESCE(f.blob_chunk_size, c.chunk_size) AS blob_chunk_size
             FROM content_files f JOIN contents c ON c.id = f.content_id
             WHERE f.checksum = w.checksum AND f.size = w.size AND c.status = 'complete'
               AND (SELECT a.owner_type = w.owner_type AND a.owner_id = w.owner_id
                    FROM assets a WHERE a.id = c.asset_id)
             LIMIT 1) p ON TRUE
    ORDER BY w.n";

#[async_trait]
impl Dialect for PgConnection {
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_SHARE: &'static str = " FOR SHARE";
    const CREATION_ORDER: &'static str = "seq";
    const FULL_TEXT: FullText = FullText::TsVector;

    /// One query for all candidates (an array parameter).
    async fn unreferenced(&mut self, candidates: Vec<String>) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM UNNEST($1::TEXT[]) AS cand(id)
             WHERE NOT EXISTS (SELECT 1 FROM content_files f JOIN contents c ON c.id = f.content_id
                               WHERE c.status != 'aborted'
                                 AND (f.blob_content_id = cand.id
                                      OR (f.content_id = cand.id AND f.blob_content_id IS NULL)))
             ORDER BY id",
        )
        .bind(&candidates)
        .fetch_all(&mut *self)
        .await?)
    }

    /// One query for the whole list (array parameters), not one per file.
    async fn stored_files(
        &mut self,
        wanted: &[StoredFileKey],
    ) -> Result<Vec<Option<BlobLocation>>> {
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let column = |f: fn(&StoredFileKey) -> String| wanted.iter().map(f).collect::<Vec<_>>();
        let sizes: Vec<i64> = wanted.iter().map(|k| signed(k.size)).collect();
        let rows: Vec<PointerRow> = sqlx::query_as(STORED_FILES)
            .bind(column(|k| k.checksum.clone()))
            .bind(sizes)
            .bind(column(|k| k.owner_type.as_str().to_string()))
            .bind(column(|k| k.owner_id.clone()))
            .fetch_all(&mut *self)
            .await?;
        rows.iter().map(PointerRow::pointer).collect()
    }

    /// One statement for all files (an array parameter).
    async fn set_checksums(&mut self, content_id: &str, checksums: &[String]) -> Result<()> {
        sqlx::query(
            "UPDATE content_files SET checksum = sums.checksum
             FROM UNNEST($1::TEXT[]) WITH ORDINALITY AS sums(checksum, n)
             WHERE content_id = $2 AND file_index = sums.n - 1",
        )
        .bind(checksums)
        .bind(content_id)
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::conformance::scratch_pg_store;

    /// The batch dedup lookup reads each file's matches by checksum, never
    /// the owner's assets, on a database whose tables were never analyzed
    /// (where a join on the owner was planned from `assets_owner`).
    #[tokio::test]
    #[ignore = "needs PostgreSQL: run by make test-scaleout"]
    async fn the_batch_dedup_lookup_starts_from_the_checksum_postgres() {
        let Some(s) = scratch_pg_store().await else {
            return;
        };
        let mut conn = s.pool.acquire().await.unwrap();
        let two = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
        let plan: Vec<(String,)> = sqlx::query_as(&format!("EXPLAIN (COSTS OFF) {STORED_FILES}"))
            .bind(two("blake3:aa", "blake3:bb"))
            .bind(vec![1i64, 2])
            .bind(two("user", "user"))
            .bind(two("u1", "u1"))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        let text: Vec<String> = plan.into_iter().map(|r| r.0).collect();
        let text = text.join("\n");
        assert!(
            text.contains("using content_files_checksum on content_files"),
            "{text}"
        );
        assert!(!text.contains("assets_owner"), "{text}");
    }
}
