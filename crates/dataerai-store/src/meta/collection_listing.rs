//! One collection's assets, a page at a time, in the orders the project page
//! offers — read straight from `asset_collections`, not through a search.
//!
//! Each `asset_collections` row carries its asset's sort keys (title, record
//! type, creation time, size), kept by the triggers of the
//! `collection_listing` migrations on every write path, and each order has
//! an index starting with the collection. So a page reads the ids of one
//! index range in order (an `OFFSET` steps over index entries, never over
//! asset rows), then only that page's assets; the total is an exact count of
//! the range. No row of `assets` outside the page is read, however large the
//! collection.
//!
//! Who may read the collection is the caller's decision (the server checks
//! project membership): every asset of a collection belongs to its project.

use std::collections::HashMap;

use dataerai_proto::api::Asset;

use super::rows::{AssetRow, ASSET_COLUMNS};
use super::shared::{asset, marks, Backend, ConnOf};
use super::sql::{args, Arg, Conn};
use super::Window;
use crate::error::Result;

/// What a collection's assets are sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionSortKey {
    /// Creation time.
    Created,
    /// Title, byte order (as a search sorts titles).
    Title,
    /// Total size of the latest complete version (0 without one).
    Size,
    /// Record type (untyped assets last in either direction), the newest
    /// first within a type.
    RecordType,
}

/// A collection listing's order: a key and a direction. Ties go by asset id
/// in the same direction, so every order is exactly one index's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionSort {
    pub key: CollectionSortKey,
    pub descending: bool,
}

impl CollectionSort {
    /// The newest first (the project page's default).
    pub const NEWEST: CollectionSort = CollectionSort {
        key: CollectionSortKey::Created,
        descending: true,
    };
    /// The oldest first (the REST list's order).
    pub const OLDEST: CollectionSort = CollectionSort {
        key: CollectionSortKey::Created,
        descending: false,
    };

    /// `created`, `title`, `size` or `type`, descending with a leading `-`
    /// (the `sort=` values of the search and the project page); `None` for
    /// anything else.
    pub fn parse(text: &str) -> Option<CollectionSort> {
        let (descending, key) = match text.strip_prefix('-') {
            Some(key) => (true, key),
            None => (false, text),
        };
        let key = match key {
            "created" => CollectionSortKey::Created,
            "title" => CollectionSortKey::Title,
            "size" => CollectionSortKey::Size,
            "type" => CollectionSortKey::RecordType,
            _ => return None,
        };
        Some(CollectionSort { key, descending })
    }

    /// The `ORDER BY` over `asset_collections`, exactly the columns (and
    /// expressions, and directions) of one of its `asset_collections_by_*`
    /// indexes, read forwards or backwards.
    pub(crate) fn order_by(self) -> &'static str {
        use CollectionSortKey::*;
        match (self.key, self.descending) {
            (Created, false) => "created_at, asset_id",
            (Created, true) => "created_at DESC, asset_id DESC",
            (Title, false) => "title, asset_id",
            (Title, true) => "title DESC, asset_id DESC",
            (Size, false) => "size_bytes, asset_id",
            (Size, true) => "size_bytes DESC, asset_id DESC",
            (RecordType, false) => {
                "(record_type IS NULL), record_type, created_at DESC, asset_id DESC"
            }
            (RecordType, true) => {
                "(record_type IS NULL), record_type DESC, created_at DESC, asset_id DESC"
            }
        }
    }
}

/// The statement selecting one page's asset ids (`$1` the collection, `$2`
/// the limit, `$3` the offset); the benchmark explains it.
pub(crate) fn page_sql(sort: CollectionSort) -> String {
    format!(
        "SELECT asset_id FROM asset_collections WHERE collection_id = $1 \
         ORDER BY {} LIMIT $2 OFFSET $3",
        sort.order_by()
    )
}

/// The statement counting a collection's assets (`$1`).
pub(crate) const COUNT_SQL: &str =
    "SELECT COUNT(*) FROM asset_collections WHERE collection_id = $1";

/// One page of the assets of `collection_id` in `sort` order, and how many
/// it holds (exact). An unknown collection holds none.
pub(super) async fn page<B: Backend>(
    b: &B,
    collection_id: &str,
    sort: CollectionSort,
    window: Window,
) -> Result<(Vec<Asset>, u64)> {
    let mut conn = b.pool().acquire().await?;
    let c: &mut ConnOf<B> = &mut conn;
    let (total,): (i64,) = c.fetch_one(COUNT_SQL, args![collection_id]).await?;
    let ids: Vec<(String,)> = c
        .fetch_all(
            &page_sql(sort),
            args![collection_id, window.limit, window.offset],
        )
        .await?;
    let mut items = Vec::with_capacity(ids.len());
    if !ids.is_empty() {
        let rows: Vec<AssetRow> = c
            .fetch_all(
                &format!(
                    "SELECT {ASSET_COLUMNS} FROM assets WHERE id IN ({})",
                    marks(0, ids.len())
                ),
                ids.iter().map(|(id,)| Arg::from(id)).collect(),
            )
            .await?;
        let mut by_id: HashMap<String, AssetRow> =
            rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        // In the page's order; an asset deleted between the two reads is
        // left out.
        for (id,) in &ids {
            if let Some(row) = by_id.remove(id) {
                items.push(asset(c, row).await?);
            }
        }
    }
    Ok((items, crate::rules::unsigned("count", total)?))
}

/// Every order's statements and arguments for a page at `offset`, and the
/// count's (what the plans below and the benchmark explain).
#[cfg(test)]
pub(crate) fn statements(collection_id: &str, offset: u64) -> Vec<(String, String, Vec<Arg>)> {
    use CollectionSortKey::*;
    let mut out = vec![(
        "count".to_string(),
        COUNT_SQL.to_string(),
        args![collection_id],
    )];
    for key in [Created, Title, Size, RecordType] {
        for descending in [false, true] {
            let sort = CollectionSort { key, descending };
            out.push((
                format!("page, {sort:?}"),
                page_sql(sort),
                args![collection_id, 25_u64, offset],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::conformance::scratch_pg_store;
    use crate::meta::shared::Commit;
    use crate::meta::{postgres::PgStore, sqlite::SqliteStore, MetadataStore, NewAsset};

    /// A project whose root collection holds `n` assets of a few titles
    /// and record types (some untyped); answers the collection.
    async fn filled<B: Backend + MetadataStore>(s: &B, n: usize) -> String {
        let u = s.create_user("a@x.org", 1 << 40).await.unwrap();
        let p = s
            .create_project("Lab", "", &u.user_id, 1 << 40)
            .await
            .unwrap();
        let assets: Vec<NewAsset> = (0..n)
            .map(|i| NewAsset {
                record_type: (i % 5 != 0).then(|| format!("type {}", i % 3)),
                ..NewAsset::in_root(&p, &u.user_id, &format!("scan {}", i % 97))
            })
            .collect();
        let mut tx = s.write().await.unwrap();
        let c: &mut ConnOf<B> = &mut tx;
        crate::meta::search::bulk_insert_assets(c, &assets)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        MetadataStore::refresh_statistics(s).await.unwrap();
        p.root_collection_id
    }

    /// SQLite reads each order from one covering index, in order (no sort
    /// step), and counts from an index of the collection.
    #[tokio::test]
    async fn each_order_reads_one_index_in_order_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let collection = filled(&s, 2_000).await;
        let mut conn = s.pool().acquire().await.unwrap();
        let c: &mut ConnOf<SqliteStore> = &mut conn;
        for (name, sql, args) in statements(&collection, 1_000) {
            let plan: Vec<(i64, i64, i64, String)> = c
                .fetch_all(&format!("EXPLAIN QUERY PLAN {sql}"), args)
                .await
                .unwrap();
            let plan: Vec<String> = plan.into_iter().map(|r| r.3).collect();
            assert_eq!(plan.len(), 1, "{name}: {plan:?}");
            assert!(
                plan[0].starts_with(
                    "SEARCH asset_collections USING COVERING INDEX asset_collections_"
                ),
                "{name}: {plan:?}"
            );
        }
    }

    /// PostgreSQL: each order is exactly one index's order, so with sorting
    /// priced out the plan reads that index in order rather than sorting
    /// (an order no index matched would still show a Sort node).
    #[tokio::test]
    #[ignore = "needs PostgreSQL: run by make test-scaleout"]
    async fn each_order_reads_one_index_in_order_postgres() {
        let Some(s) = scratch_pg_store().await else {
            return;
        };
        let collection = filled(&s, 2_000).await;
        let mut conn = s.pool().acquire().await.unwrap();
        let c: &mut ConnOf<PgStore> = &mut conn;
        c.execute("VACUUM ANALYZE asset_collections", vec![])
            .await
            .unwrap();
        c.execute("SET enable_seqscan = off", vec![]).await.unwrap();
        c.execute("SET enable_sort = off", vec![]).await.unwrap();
        for (name, sql, args) in statements(&collection, 1_000) {
            let plan: Vec<(String,)> = c
                .fetch_all(&format!("EXPLAIN (COSTS OFF) {sql}"), args)
                .await
                .unwrap();
            let plan: Vec<String> = plan.into_iter().map(|r| r.0).collect();
            let text = plan.join("\n");
            // The lines docs/performance.md quotes (`--nocapture`).
            println!("{name}:\n{text}");
            assert!(
                text.contains("Index Only Scan using asset_collections_")
                    || text.contains("Index Scan using asset_collections_")
                    || text.contains("Index Scan Backward using asset_collections_")
                    || text.contains("Index Only Scan Backward using asset_collections_"),
                "{name}:\n{text}"
            );
            assert!(!text.contains("Sort"), "{name}:\n{text}");
        }
    }

    #[test]
    fn sort_values_parse_as_the_page_offers_them() {
        for (text, key, descending) in [
            ("created", CollectionSortKey::Created, false),
            ("-created", CollectionSortKey::Created, true),
            ("title", CollectionSortKey::Title, false),
            ("-title", CollectionSortKey::Title, true),
            ("size", CollectionSortKey::Size, false),
            ("-size", CollectionSortKey::Size, true),
            ("type", CollectionSortKey::RecordType, false),
            ("-type", CollectionSortKey::RecordType, true),
        ] {
            assert_eq!(
                CollectionSort::parse(text),
                Some(CollectionSort { key, descending }),
                "{text}"
            );
        }
        for bad in ["", "-", "relevance", "updated", "md.kv", "--title", "Title"] {
            assert_eq!(CollectionSort::parse(bad), None, "{bad}");
        }
        assert_eq!(
            CollectionSort::parse("-created"),
            Some(CollectionSort::NEWEST)
        );
        assert_eq!(
            CollectionSort::parse("created"),
            Some(CollectionSort::OLDEST)
        );
    }
}
