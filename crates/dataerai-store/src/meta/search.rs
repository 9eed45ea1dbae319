//! The search index and search itself, written once for both backends: the
//! index rows of an asset are rewritten inside the transaction that changed
//! the asset ([`reindex`]), and a search is one compiled query (plus a count
//! and the facets) over them ([`search`]).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use super::rows::{AssetRow, ASSET_COLUMNS};
use super::shared::{asset, Backend, Commit, ConnOf};
use super::sql::{insert_rows, Arg, Conn, Dialect, Marks};
use super::Window;
use crate::error::Result;
use crate::search::index::{FieldValue, IndexEntry, Indexed};
use crate::search::sql::{compile, drive_estimates, estimate_cap, metadata_count, Drive};
use crate::search::{Facets, SearchPage, SearchRequest};
use dataerai_proto::api::Asset;

/// The index rows of an asset this transaction has just created (row
/// written at `created_at`) together with its first, published version of
/// these `files` (names and sizes): the rows [`reindex`] writes, from what
/// the caller holds instead of read back (a unit test compares them), and
/// nothing to delete first. One statement per index table with rows.
pub(super) async fn index_new_asset<C: Dialect>(
    c: &mut C,
    asset_id: &str,
    asset: &super::NewAsset,
    created_at: DateTime<Utc>,
    files: &[(String, u64)],
) -> Result<()> {
    let mut rows = IndexRows::default();
    rows.push_new(asset_id, asset, created_at, files);
    rows.insert(c, "").await
}

/// Facet values returned per facet.
const FACET_VALUES: u64 = 20;
/// The facets count the first this many matches (all of them when there
/// are no more), so they cost the same for any number of matches.
pub(crate) const FACET_SAMPLE: u64 = 1_000;

/// Rewrite the index rows of `asset_id` from the asset and its latest
/// complete version (no rows when the asset is gone).
pub(super) async fn reindex<C: Dialect>(c: &mut C, asset_id: &str) -> Result<()> {
    reindex_many(c, &[asset_id]).await
}

/// Assets per [`reindex_many`] round (each binds one value per statement of
/// the round; index rows go in statements of their own size).
const ASSETS_PER_REINDEX: usize = 100;

/// [`reindex`] for many assets in one transaction: the same rows, written
/// in a few multi-row statements per [`ASSETS_PER_REINDEX`] assets instead
/// of five or more statements per asset (a batch of small files completes
/// hundreds of assets at once).
pub(super) async fn reindex_many<C: Dialect>(c: &mut C, asset_ids: &[&str]) -> Result<()> {
    type Source = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Json<Vec<String>>,
        Json<Value>,
        String,
        chrono::DateTime<chrono::Utc>,
    );
    for part in asset_ids.chunks(ASSETS_PER_REINDEX) {
        let ids = || part.iter().map(|id| Arg::from(*id)).collect::<Vec<_>>();
        let ids_marks = Marks::of::<C>().list(part.len());
        let sources: Vec<Source> = c
            .fetch_all(
                &format!(
                    "SELECT id, title, description, alias, record_type, tags, metadata, \
                     owner_type || ':' || owner_id, created_at FROM assets WHERE id IN ({ids_marks})"
                ),
                ids(),
            )
            .await?;
        if sources.is_empty() {
            continue;
        }
        let latest = format!(
            "SELECT a.id, f.name, f.size FROM assets a JOIN content_files f ON f.content_id =
               (SELECT id FROM contents WHERE asset_id = a.id AND status = 'complete'
                ORDER BY completed_at DESC, {} DESC LIMIT 1)
             WHERE a.id IN ({ids_marks}) ORDER BY a.id, f.file_index",
            C::CREATION_ORDER
        );
        let mut files: std::collections::HashMap<String, Vec<(String, i64)>> = Default::default();
        for (asset_id, name, size) in c.fetch_all::<(String, String, i64)>(&latest, ids()).await? {
            files.entry(asset_id).or_default().push((name, size));
        }
        let (mut rows, mut found) = (IndexRows::default(), Vec::new());
        for (id, title, description, alias, record_type, tag_list, metadata, owner, created_at) in
            &sources
        {
            let files = files.remove(id).unwrap_or_default();
            let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
            let entry = Indexed {
                title,
                description: description.as_deref(),
                alias: alias.as_deref(),
                record_type: record_type.as_deref(),
                tags: &tag_list.0,
                metadata: &metadata.0,
                file_names: &names,
                size_bytes: files.iter().map(|(_, s)| *s).sum(),
            }
            .entry();
            rows.push(id, entry, owner, *created_at, record_type);
            found.push(Arg::from(id));
        }
        let found_marks = Marks::of::<C>().list(found.len());
        for table in ["asset_tags", "asset_fields"] {
            c.execute(
                &format!("DELETE FROM {table} WHERE asset_id IN ({found_marks})"),
                found.clone(),
            )
            .await?;
        }
        rows.insert(
            c,
            " ON CONFLICT (asset_id) DO UPDATE SET body = excluded.body, \
             size_bytes = excluded.size_bytes, owner = excluded.owner, \
             created_at = excluded.created_at, record_type = excluded.record_type",
        )
        .await?;
    }
    Ok(())
}

/// The rows of the three index tables (`asset_search`, `asset_tags`,
/// `asset_fields`) for some assets, as [`insert_rows`] arguments: the one
/// place that knows their columns ([`reindex_many`] and the bench's loader
/// write exactly these).
#[derive(Default)]
struct IndexRows {
    search: Vec<Arg>,
    tags: Vec<Arg>,
    fields: Vec<Arg>,
}

impl IndexRows {
    /// Add the index rows of a new asset `id` written at `created_at`, whose
    /// only version (if any) has these `files` (names and sizes): what
    /// [`reindex`] would read back from the rows just written.
    fn push_new(
        &mut self,
        id: &str,
        asset: &super::NewAsset,
        created_at: DateTime<Utc>,
        files: &[(String, u64)],
    ) {
        let owner = format!("{}:{}", asset.owner_type.as_str(), asset.owner_id);
        let metadata = Value::Object(asset.metadata.clone());
        let names: Vec<String> = files.iter().map(|(name, _)| name.clone()).collect();
        let size: u64 = files.iter().map(|(_, size)| size).sum();
        let entry = Indexed {
            title: &asset.title,
            description: asset.description.as_deref(),
            alias: asset.alias.as_deref(),
            record_type: asset.record_type.as_deref(),
            tags: &asset.tags,
            metadata: &metadata,
            file_names: &names,
            size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
        }
        .entry();
        self.push(id, entry, &owner, created_at, &asset.record_type);
    }

    /// Add the index rows of asset `id` (owner key `owner`).
    fn push(
        &mut self,
        id: &str,
        entry: IndexEntry,
        owner: &str,
        created_at: DateTime<Utc>,
        record_type: &Option<String>,
    ) {
        self.search.extend([
            Arg::from(id),
            Arg::from(entry.body),
            Arg::from(entry.size_bytes),
            Arg::from(owner),
            Arg::from(created_at),
            Arg::from(record_type.clone()),
        ]);
        for tag in entry.tags {
            self.tags.extend([
                Arg::from(id),
                Arg::from(tag),
                Arg::from(owner),
                Arg::from(created_at),
                Arg::from(record_type.clone()),
            ]);
        }
        for field in entry.fields {
            let (num, txt, flag) = match field.value {
                FieldValue::Number(v) => (Some(v), None, None),
                FieldValue::Text(t) => (None, Some(t), None),
                FieldValue::Bool(b) => (None, None, Some(b)),
            };
            self.fields.extend([
                Arg::from(id),
                Arg::from(field.path),
                Arg::Float(num),
                Arg::Text(txt),
                Arg::Bool(flag),
                Arg::from(owner),
                Arg::from(created_at),
            ]);
        }
    }

    /// Insert the rows; `search_tail` ends the `asset_search` statement
    /// (an `ON CONFLICT` clause, or nothing).
    async fn insert<C: Dialect>(self, c: &mut C, search_tail: &str) -> Result<()> {
        insert_rows(
            c,
            "asset_search",
            "asset_id, body, size_bytes, owner, created_at, record_type",
            6,
            self.search,
            search_tail,
        )
        .await?;
        insert_rows(
            c,
            "asset_tags",
            "asset_id, tag, owner, created_at, record_type",
            5,
            self.tags,
            "",
        )
        .await?;
        insert_rows(
            c,
            "asset_fields",
            "asset_id, path, num, txt, flag, owner, created_at",
            7,
            self.fields,
            "",
        )
        .await
    }
}

/// Index every asset that has no index row yet (assets stored before the
/// search migration), in batches of one write transaction each.
pub(super) async fn backfill<B: Backend>(store: &B) -> Result<()> {
    loop {
        let mut tx = store.write().await?;
        let c: &mut ConnOf<B> = &mut tx;
        let missing: Vec<(String,)> = c
            .fetch_all(
                // NOT EXISTS, an anti-join on both backends: PostgreSQL runs
                // `NOT IN (subquery)` as a rescan per asset once the ids
                // exceed `work_mem` (quadratic: hours at 1,000,000 assets).
                "SELECT a.id FROM assets a WHERE NOT EXISTS \
                 (SELECT 1 FROM asset_search s WHERE s.asset_id = a.id) LIMIT 500",
                vec![],
            )
            .await?;
        if missing.is_empty() {
            return Ok(());
        }
        for (id,) in &missing {
            reindex(c, id).await?;
        }
        tx.commit().await?;
    }
}

/// The statements of a search: the page (`LIMIT`, `OFFSET` are the last two
/// placeholders) and the count with the facets; both take `args`.
pub(crate) struct SearchSql {
    pub page: String,
    /// Whether the page selects only the ids (else the asset columns).
    pub page_ids: bool,
    pub count: String,
    pub args: Vec<Arg>,
    /// The arguments of the count (no ranking).
    pub count_args: Vec<Arg>,
    /// When the page is ordered by relevance (it ranks every match): the
    /// count and the facets as `count` has them, plus the page's ids
    /// (`k` = 4, `v` the id, `n` its position on the page, counted from
    /// 1), ranked in the same pass over the first `cap + 1` matches; the
    /// page is right when those are all the matches (the count is at most
    /// the cap).
    /// Takes `args` and the page's `LIMIT`, `OFFSET`.
    pub ranked_count: Option<String>,
    /// One metadata test: `count` dedups only the first `cap + 1` index
    /// rows of the range (no sort or hash of the whole range) and adds
    /// their number (`k` = 5); when those rows held one asset twice and
    /// the distinct ones are under the cap, this statement (`count_args`)
    /// counts the distinct assets of the whole range instead.
    pub count_distinct: Option<String>,
}

/// The SQL [`search`] runs for `request` on a database of this full-text
/// kind (the benchmark explains exactly these).
pub(crate) fn statements(
    caller: &str,
    request: &SearchRequest,
    text: crate::search::sql::FullText,
    drive: Drive,
) -> SearchSql {
    let compiled = compile(&request.query, &request.sort, caller, text, drive);
    let n = compiled.args.len();
    // The page's ids alone when the assets are not needed to find them.
    let (columns, from) = match &compiled.ids_from {
        Some(ids_from) => (compiled.id.to_string(), ids_from.as_str()),
        None => (qualified(ASSET_COLUMNS), compiled.from.as_str()),
    };
    let page = format!(
        "{with}SELECT {columns} FROM {from} WHERE {filter} ORDER BY {order} LIMIT ${l} OFFSET ${o}",
        with = if compiled.ctes.is_empty() {
            String::new()
        } else {
            format!("WITH {} ", compiled.ctes)
        },
        filter = compiled.filter,
        order = compiled.order,
        l = n + 1,
        o = n + 2,
    );
    // The count and the facets need neither the ranking nor the order: the
    // first `cap + 1` matches the database finds (`m`, one pass over the
    // driving index, which holds each row's owner: no asset is read to
    // count it), counted; the facets over the first FACET_SAMPLE of them.
    let plain = compile(
        &request.query,
        &crate::search::Sort::Created { descending: false },
        caller,
        text,
        drive,
    );
    let limit = request.count_cap + 1;
    let facets = count_and_facets(request, "m");
    // The page ranks every match anyway: the same pass counts them and
    // finds the page (one statement, one pass over the matches). The page's
    // rows are numbered after the `LIMIT` (the numbers only order the page):
    // a top-N sort of the matches, not a full sort for a window over all of
    // them.
    let ranked_count = compiled.rank.as_ref().map(|(rank, desc)| {
        let ctes = ctes_before(&compiled.ctes);
        let order = format!("score{desc}, id");
        if let (Some(matches), "") = (&compiled.by_owner_number, *desc) {
            return by_owner_number(request, &ctes, matches, rank, limit, n);
        }
        format!(
            "WITH {ctes}m AS MATERIALIZED (SELECT {id} AS id, {owner} AS owner, {rank} AS score \
             FROM {from} WHERE {filter} LIMIT {limit}) {facets} UNION ALL \
             SELECT CAST(4 AS BIGINT) AS k, id AS v, ROW_NUMBER() OVER (ORDER BY {order}) AS n \
             FROM (SELECT id, score FROM m ORDER BY {order} LIMIT ${l} OFFSET ${o}) p",
            id = compiled.id,
            owner = compiled.owner,
            from = compiled.count_from,
            filter = compiled.filter,
            l = n + 1,
            o = n + 2,
        )
    });
    let (count, count_args, count_distinct) = match metadata_count(&request.query, caller) {
        // The index range can hold an asset more than once: its first
        // `cap + 1` rows, deduplicated, count the assets up to the cap
        // unless they held a duplicate (then `count_distinct`).
        Some((rows, args)) => (
            format!(
                "WITH r AS MATERIALIZED ({rows} LIMIT {limit}), \
                 m AS MATERIALIZED (SELECT DISTINCT id, owner FROM r) {facets} UNION ALL \
                 SELECT CAST(5 AS BIGINT) AS k, '' AS v, COUNT(*) AS n FROM r",
            ),
            args,
            Some(format!(
                "WITH m AS MATERIALIZED (SELECT DISTINCT id, owner FROM ({rows}) d LIMIT {limit}) \
                 {facets}",
            )),
        ),
        None => (
            format!(
                "WITH {ctes}m AS MATERIALIZED (SELECT {id} AS id, {owner} AS owner FROM {from} \
                 WHERE {filter} LIMIT {limit}) {facets}",
                ctes = ctes_before(&plain.ctes),
                id = plain.id,
                owner = plain.owner,
                from = plain.count_from,
                filter = plain.filter,
            ),
            plain.args,
            None,
        ),
    };
    SearchSql {
        page_ids: compiled.ids_from.is_some(),
        page,
        count,
        args: compiled.args,
        count_args,
        ranked_count,
        count_distinct,
    }
}

/// The one-pass relevance statement of SQLite's words alone
/// (`Compiled::by_owner_number`): `m` holds each readable match's rowid
/// and bm25 (lower is better) only, found without reading its
/// `asset_search` row; the asset ids and owners are read for the facets'
/// sample (`f`, read once for the three facets) and for the page's
/// candidates: the matches whose score is at most the page's last one (the
/// page and its ties, which the asset id orders).
fn by_owner_number(
    request: &SearchRequest,
    ctes: &str,
    matches: &str,
    rank: &str,
    limit: u64,
    n: usize,
) -> String {
    let facets = count_and_facets(request, "f");
    let sample = facet_sample(request);
    let (l, o) = (n + 1, n + 2);
    // The score of the last row of the page; all of `m` when it is shorter
    // (9e999 is infinity).
    let last = format!(
        "COALESCE((SELECT score FROM m ORDER BY score LIMIT 1 OFFSET ${l} + ${o} - 1), 9e999)"
    );
    format!(
        "WITH {ctes}m AS MATERIALIZED (SELECT asset_search_fts.rowid AS r, {rank} AS score \
         FROM {matches} LIMIT {limit}), \
         f AS MATERIALIZED (SELECT s.asset_id AS id, s.owner AS owner \
         FROM (SELECT r FROM m LIMIT {sample}) x CROSS JOIN asset_search s ON s.rowid = x.r) \
         {facets} UNION ALL \
         SELECT CAST(4 AS BIGINT) AS k, id AS v, ROW_NUMBER() OVER (ORDER BY score, id) AS n \
         FROM (SELECT s.asset_id AS id, m.score AS score FROM m \
         CROSS JOIN asset_search s ON s.rowid = m.r WHERE m.score <= {last} \
         ORDER BY score, id LIMIT ${l} OFFSET ${o}) p"
    )
}

/// A statement's own common table expressions, ready to precede `m`'s.
fn ctes_before(ctes: &str) -> String {
    if ctes.is_empty() {
        String::new()
    } else {
        format!("{ctes}, ")
    }
}

/// How many of the matches the facets count.
fn facet_sample(request: &SearchRequest) -> u64 {
    FACET_SAMPLE.min(request.count_cap)
}

/// The count and the facets of the matches `m` (at most the cap + 1 of
/// them): rows `(k, v, n)`, `k` = 0 the count, 1–3 the facets (tags,
/// record types, projects), counted over the first rows of `ids`: `m`
/// itself or a table expression giving `m`'s `id` and `owner`.
fn count_and_facets(request: &SearchRequest, ids: &str) -> String {
    let mut count = "SELECT CAST(0 AS BIGINT) AS k, '' AS v, COUNT(*) AS n FROM m".to_string();
    if request.facets {
        let counted = format!(
            "(SELECT id, owner FROM {ids} LIMIT {}) c",
            facet_sample(request)
        );
        for (k, select, from) in [
            (
                1,
                "t.tag".to_string(),
                format!("asset_tags t JOIN {counted} ON t.asset_id = c.id"),
            ),
            (
                2,
                "a.record_type".to_string(),
                format!("assets a JOIN {counted} ON a.id = c.id WHERE a.record_type IS NOT NULL"),
            ),
            (
                3,
                "substr(c.owner, 9)".to_string(),
                format!("{counted} WHERE c.owner LIKE 'project:%'"),
            ),
        ] {
            count.push_str(&format!(
                " UNION ALL SELECT * FROM (SELECT CAST({k} AS BIGINT) AS k, {select} AS v, COUNT(*) AS n \
                 FROM {from} GROUP BY {select} ORDER BY 3 DESC, 2 LIMIT {FACET_VALUES}) f{k}"
            ));
        }
    }
    count
}

/// The term a search starts from: of the terms that could drive, the one
/// with the fewest readable index rows (each counted up to
/// [`estimate_cap`], one index range each), when it has fewer than that;
/// else the fixed rule of [`compile`]. A selective term then bounds the
/// rows every statement reads, whatever the other terms match.
pub(crate) async fn choose_drive<C: Dialect>(
    c: &mut C,
    caller: &str,
    request: &SearchRequest,
) -> Result<Drive> {
    let mut best = (
        estimate_cap(&request.query, &request.sort, C::FULL_TEXT),
        Drive::Default,
    );
    for (drive, sql, args) in drive_estimates(&request.query, &request.sort, caller, C::FULL_TEXT) {
        let (n,): (i64,) = c.fetch_one(&sql, args).await?;
        let n = n.unsigned_abs();
        if n < best.0 {
            best = (n, drive);
        }
    }
    Ok(best.1)
}

/// One page of the assets `caller` may read that match `request`, the
/// total (exact up to the request's cap), and (when asked) the facet counts.
pub(super) async fn search<B: Backend>(
    store: &B,
    caller: &str,
    request: &SearchRequest,
) -> Result<SearchPage> {
    let mut conn = store.pool().acquire().await?;
    let c: &mut ConnOf<B> = &mut conn;
    let drive = choose_drive(c, caller, request).await?;
    search_from(c, caller, request, drive).await
}

/// [`search`] starting from `drive`.
async fn search_from<C: Dialect>(
    c: &mut C,
    caller: &str,
    request: &SearchRequest,
    drive: Drive,
) -> Result<SearchPage> {
    let sql = statements(caller, request, C::FULL_TEXT, drive);
    let Window { limit, offset } = request.window;
    // One row past the page says whether another page follows.
    let mut page_args = sql.args.clone();
    page_args.extend([Arg::from(limit.saturating_add(1)), Arg::from(offset)]);
    let cap = request.count_cap;
    // Ranked by relevance: count and rank in one pass first; the page
    // statement runs only when that pass stopped at the cap.
    let (counted, ranked_ids) = match &sql.ranked_count {
        Some(statement) => {
            let rows: Vec<(i64, String, i64)> = c.fetch_all(statement, page_args.clone()).await?;
            let (mut ids, counted): (Vec<_>, Vec<_>) =
                rows.into_iter().partition(|(k, _, _)| *k == 4);
            let counted_all = counted
                .iter()
                .any(|(k, _, n)| *k == 0 && n.unsigned_abs() <= cap);
            ids.sort_by_key(|(_, _, position)| *position);
            let ids = counted_all.then(|| ids.into_iter().map(|(_, id, _)| id).collect());
            (Some(counted), ids)
        }
        None => (None, None),
    };
    let mut rows: Vec<AssetRow> = match ranked_ids {
        Some(ids) => assets_by_id(c, ids).await?,
        None if sql.page_ids => {
            let ids: Vec<(String,)> = c.fetch_all(&sql.page, page_args).await?;
            assets_by_id(c, ids.into_iter().map(|(id,)| id).collect()).await?
        }
        None => c.fetch_all(&sql.page, page_args).await?,
    };
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let items = page_assets(c, rows).await?;
    let mut counted: Vec<(i64, String, i64)> = match counted {
        Some(counted) => counted,
        None => c.fetch_all(&sql.count, sql.count_args.clone()).await?,
    };
    if let Some(all) = &sql.count_distinct {
        let n = |k| {
            counted
                .iter()
                .find(|row| row.0 == k)
                .map_or(0, |row| row.2.unsigned_abs())
        };
        if n(5) > cap && n(0) <= cap {
            counted = c.fetch_all(all, sql.count_args).await?;
        }
        counted.retain(|row| row.0 != 5);
    }
    let mut total = 0;
    let mut facets = Facets::default();
    for (k, value, n) in counted {
        let n = n.unsigned_abs();
        match k {
            0 => total = n,
            1 => facets.tags.push((value, n)),
            2 => facets.record_types.push((value, n)),
            _ => facets.projects.push((value, n)),
        }
    }
    for values in [
        &mut facets.tags,
        &mut facets.record_types,
        &mut facets.projects,
    ] {
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    // The page itself proves at least `offset + items` matches.
    let seen = offset.saturating_add(items.len() as u64);
    let (total, total_is_lower_bound) = if total > cap {
        (cap.max(seen), true)
    } else {
        (total.max(seen), false)
    };
    Ok(SearchPage {
        items,
        total,
        total_is_lower_bound,
        more,
        facets: request.facets.then_some(facets),
    })
}

/// The asset rows of `ids`, in that order.
async fn assets_by_id<C: Dialect>(c: &mut C, ids: Vec<String>) -> Result<Vec<AssetRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = Marks::of::<C>().list(ids.len());
    let rows: Vec<AssetRow> = c
        .fetch_all(
            &format!("SELECT {ASSET_COLUMNS} FROM assets WHERE id IN ({marks})"),
            ids.iter().map(Arg::from).collect(),
        )
        .await?;
    let mut by_id: std::collections::HashMap<String, AssetRow> =
        rows.into_iter().map(|r| (r.id.clone(), r)).collect();
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// The assets of a page, as [`asset`] reads each one, in a few statements:
/// the collections of all of them in one, and the latest version read (by
/// [`asset`]) only for the assets that have one.
async fn page_assets<C: Dialect>(c: &mut C, rows: Vec<AssetRow>) -> Result<Vec<Asset>> {
    use std::collections::{HashMap, HashSet};
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let marks = Marks::of::<C>().list(rows.len());
    let ids: Vec<Arg> = rows.iter().map(|r| Arg::from(&r.id)).collect();
    let pairs: Vec<(String, String)> = c
        .fetch_all(
            &format!(
                "SELECT asset_id, collection_id FROM asset_collections WHERE asset_id IN ({marks}) \
                 ORDER BY asset_id, collection_id"
            ),
            ids.clone(),
        )
        .await?;
    let mut collections: HashMap<String, Vec<String>> = HashMap::new();
    for (asset_id, collection_id) in pairs {
        collections.entry(asset_id).or_default().push(collection_id);
    }
    let versioned: Vec<(String,)> = c
        .fetch_all(
            &format!(
                "SELECT DISTINCT asset_id FROM contents WHERE asset_id IN ({marks}) AND status = 'complete'"
            ),
            ids,
        )
        .await?;
    let versioned: HashSet<String> = versioned.into_iter().map(|(id,)| id).collect();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        if versioned.contains(&row.id) {
            items.push(asset(c, row).await?);
            continue;
        }
        let collection_ids = collections.remove(&row.id).unwrap_or_default();
        items.push(row.into_asset(collection_ids, None));
    }
    Ok(items)
}

/// `id, title, …` → `a.id, a.title, …`.
fn qualified(columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("a.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The benchmark's fast loader: insert `assets` (new, without content) and
/// their index rows with a few multi-row `INSERT`s inside the caller's
/// transaction. The rows are exactly those of the store's own insert path
/// ([`super::shared::insert_asset`] then [`reindex`]), which a unit test
/// checks; only the number of statements differs. Returns the new ids.
#[cfg(test)]
pub(super) async fn bulk_insert_assets<C: Dialect>(
    c: &mut C,
    assets: &[super::NewAsset],
) -> Result<Vec<String>> {
    // As one insert after another: each asset its own creation time.
    let start = super::time::now();
    let mut ids = Vec::with_capacity(assets.len());
    let (mut rows, mut index, mut collections) = (Vec::new(), IndexRows::default(), Vec::new());
    for (k, asset) in assets.iter().enumerate() {
        let id = super::shared::new_id();
        let at = start + chrono::Duration::microseconds(i64::try_from(k).unwrap_or(i64::MAX));
        rows.extend(super::shared::asset_row_args(&id, asset, None, at));
        rows.push(Arg::from(at)); // updated_at
        if let Some(collection_id) = &asset.collection_id {
            collections.extend([Arg::from(&id), Arg::from(collection_id)]);
        }
        index.push_new(&id, asset, at, &[]);
        ids.push(id);
    }
    insert_rows(
        c,
        "assets",
        &format!("{}, updated_at", super::shared::NEW_ASSET_COLUMNS),
        13,
        rows,
        "",
    )
    .await?;
    insert_rows(
        c,
        "asset_collections",
        "asset_id, collection_id",
        2,
        collections,
        "",
    )
    .await?;
    index.insert(c, "").await?;
    Ok(ids)
}

/// The benchmark's fast loader for relationships `(from, to, type)`, as the
/// store's `create_relationship` writes them (no qualifiers, no analysis mode).
#[cfg(test)]
pub(super) async fn bulk_insert_relationships<C: Dialect>(
    c: &mut C,
    created_by: &str,
    edges: &[(String, String, String)],
) -> Result<()> {
    let at = super::time::now();
    let mut rows = Vec::with_capacity(edges.len() * 8);
    for (from, to, rel_type) in edges {
        rows.extend([
            Arg::from(super::shared::new_id()),
            Arg::from(from),
            Arg::from(to),
            Arg::from(rel_type),
            Arg::Text(None),
            Arg::json(&serde_json::Map::new()),
            Arg::from(created_by),
            Arg::from(at),
        ]);
    }
    insert_rows(
        c,
        "relationships",
        "id, from_asset_id, to_asset_id, type, analysis_mode, qualifiers, created_by, created_at",
        8,
        rows,
        "",
    )
    .await
}

#[cfg(test)]
mod tests {
    use dataerai_proto::api::{OwnerType, Project};
    use serde_json::json;

    use super::*;
    use crate::meta::conformance::scratch_pg_store;
    use crate::meta::shared::insert_asset;
    use crate::meta::sql::args;
    use crate::meta::{postgres::PgStore, sqlite::SqliteStore, MetadataStore, NewAsset};
    use crate::search::SearchPage;

    /// A search for `q` sorted by `sort` (`None`: the default), from
    /// `offset`, `limit` long, counted up to the usual cap.
    fn search_for(
        q: &str,
        sort: Option<&str>,
        limit: u64,
        offset: u64,
        facets: bool,
    ) -> SearchRequest {
        let query = crate::search::parse(q).unwrap();
        SearchRequest {
            sort: crate::search::Sort::parse(sort, &query).unwrap(),
            query,
            window: Window { limit, offset },
            facets,
            count_cap: crate::search::COUNT_CAP,
        }
    }

    /// Everything the store holds of an asset and its index rows, but its id
    /// and times (equal creation and update times are part of it).
    async fn stored<C: Dialect>(c: &mut C, id: &str) -> String {
        type AssetCols = (
            String,
            Option<String>,
            Option<String>,
            Json<Value>,
            Json<Value>,
            String,
            String,
            String,
            Option<String>,
            bool,
        );
        let asset: AssetCols = c
            .fetch_one(
                "SELECT title, description, alias, tags, metadata, owner_type, owner_id, \
                 created_by, record_type, created_at = updated_at FROM assets WHERE id = $1",
                args![id],
            )
            .await
            .unwrap();
        let collections: Vec<(String,)> = c
            .fetch_all(
                "SELECT collection_id FROM asset_collections WHERE asset_id = $1 ORDER BY 1",
                args![id],
            )
            .await
            .unwrap();
        let search: (String, i64, String, bool, Option<String>) = c
            .fetch_one(
                "SELECT s.body, s.size_bytes, s.owner, s.created_at = a.created_at, s.record_type \
                 FROM asset_search s JOIN assets a ON a.id = s.asset_id WHERE s.asset_id = $1",
                args![id],
            )
            .await
            .unwrap();
        let tags: Vec<(String, String, bool, Option<String>)> = c
            .fetch_all(
                "SELECT t.tag, t.owner, t.created_at = a.created_at, t.record_type FROM asset_tags t \
                 JOIN assets a ON a.id = t.asset_id WHERE t.asset_id = $1 ORDER BY 1",
                args![id],
            )
            .await
            .unwrap();
        type FieldCols = (
            String,
            Option<f64>,
            Option<String>,
            Option<bool>,
            String,
            bool,
        );
        let fields: Vec<FieldCols> = c
            .fetch_all(
                "SELECT f.path, f.num, f.txt, f.flag, f.owner, f.created_at = a.created_at \
                 FROM asset_fields f JOIN assets a ON a.id = f.asset_id WHERE f.asset_id = $1 \
                 ORDER BY f.path, f.num, f.txt, f.flag",
                args![id],
            )
            .await
            .unwrap();
        format!("{asset:?}\n{collections:?}\n{search:?}\n{tags:?}\n{fields:?}")
    }

    /// A project's asset with every descriptive field set (tags repeated,
    /// nested metadata of each kind), in the project's root collection.
    fn described_asset(p: &Project, created_by: &str, alias: Option<&str>) -> NewAsset {
        NewAsset {
            title: "Bright-field scan 7".into(),
            description: Some("Sample A, 200 kV".into()),
            alias: alias.map(str::to_string),
            tags: vec!["t1".into(), "calibrated".into(), "t1".into()],
            metadata: json!({"voltage_kv": 200, "sample": {"name": "SrRuO3", "t": 1.5},
                             "ok": true, "modes": ["bf", "df"], "none": null})
            .as_object()
            .unwrap()
            .clone(),
            owner_type: OwnerType::Project,
            owner_id: p.project_id.clone(),
            collection_id: Some(p.root_collection_id.clone()),
            created_by: created_by.to_string(),
            record_type: Some("raw_data".into()),
            allocation_id: None,
        }
    }

    async fn bulk_load_writes_what_the_insert_path_writes<B: Backend + MetadataStore>(s: &B) {
        let me = s.create_user("me@x.org", 1 << 40).await.unwrap();
        let p = s
            .create_project("Lab", "", &me.user_id, 1 << 40)
            .await
            .unwrap();
        let sample = |alias: Option<&str>| {
            vec![
                described_asset(&p, &me.user_id, alias),
                NewAsset {
                    title: "plain".into(),
                    description: None,
                    alias: None,
                    tags: vec![],
                    metadata: serde_json::Map::new(),
                    owner_type: OwnerType::User,
                    owner_id: me.user_id.clone(),
                    collection_id: None,
                    created_by: me.user_id.clone(),
                    record_type: None,
                    allocation_id: None,
                },
            ]
        };
        let mut tx = s.write().await.unwrap();
        let c: &mut ConnOf<B> = &mut tx;
        let mut real = Vec::new();
        for asset in sample(Some("one")) {
            real.push(insert_asset(c, asset).await.unwrap().asset_id);
        }
        let bulk = bulk_insert_assets(c, &sample(Some("two"))).await.unwrap();
        bulk_insert_relationships(
            c,
            &me.user_id,
            &[(bulk[1].clone(), bulk[0].clone(), "derived_from".into())],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let mut conn = s.pool().acquire().await.unwrap();
        let c: &mut ConnOf<B> = &mut conn;
        for (r, b) in real.iter().zip(&bulk) {
            let (r, b) = (stored(c, r).await, stored(c, b).await);
            assert_eq!(r.replace("\"one\"", "\"two\"").replace(" one ", " two "), b);
        }
        // The full-text index found the bulk-loaded rows too, and the
        // relationship is one the store's own reads understand.
        let request = search_for("bright scan", None, 10, 0, false);
        let found = s.search(&me.user_id, &request).await.unwrap();
        assert_eq!(found.total, 2);
        assert!(found.items.iter().any(|a| a.asset_id == bulk[0]));
        let lineage = s
            .lineage(&bulk[1], super::super::LineageDirection::Up, 5, &[], 100)
            .await
            .unwrap();
        assert_eq!(lineage.edges.len(), 1);
        assert_eq!(lineage.edges[0].to_asset_id, bulk[0]);
    }

    /// A lone `upload()` of a new asset writes its index rows from what it
    /// holds (`index_new_asset`): the rows `reindex` writes from the stored
    /// asset and version, tags, fields, file name and size included.
    async fn a_single_upload_indexes_what_reindex_writes<B: Backend + MetadataStore>(s: &B) {
        use crate::meta::{ChunkRecord, NewUpload, SingleUploadItem, UploadTarget};
        let me = s.create_user("me@x.org", 1 << 40).await.unwrap();
        let p = s
            .create_project("Lab", "", &me.user_id, 1 << 40)
            .await
            .unwrap();
        let hash = "cd".repeat(32);
        let item = SingleUploadItem {
            key: "k".into(),
            upload: NewUpload {
                target: UploadTarget::NewAsset(described_asset(&p, &me.user_id, Some("scan-7"))),
                user_id: me.user_id.clone(),
                chunk_size: 1 << 20,
                files: vec![dataerai_proto::api::UploadFileSpec {
                    name: "scan_007.tif".into(),
                    size: 4096,
                    checksum: Some(format!("blake3:{hash}")),
                }],
                content_id: Some(crate::meta::new_content_id()),
            },
            chunk: ChunkRecord { size: 4096, hash },
        };
        let done = s
            .single_upload(item, Box::pin(async { Ok(()) }))
            .await
            .unwrap();
        let id = done.version.asset_id;
        let mut tx = s.write().await.unwrap();
        let c: &mut ConnOf<B> = &mut tx;
        let written = stored(c, &id).await;
        assert!(written.contains("scan 007 tif\", 4096,"), "{written}");
        // The collection listing took the size from the index row.
        let (size,): (i64,) = c
            .fetch_one(
                "SELECT size_bytes FROM asset_collections WHERE asset_id = $1",
                args![&id],
            )
            .await
            .unwrap();
        assert_eq!(size, 4096);
        reindex(c, &id).await.unwrap();
        assert_eq!(stored(c, &id).await, written);
        tx.commit().await.unwrap();
    }

    /// [`reindex_many`] writes exactly the rows [`reindex`] writes, for each
    /// of many assets at once (an id that names no asset is left be).
    async fn reindex_many_writes_what_reindex_writes<B: Backend + MetadataStore>(s: &B) {
        let me = s.create_user("me@x.org", 1 << 40).await.unwrap();
        let p = s
            .create_project("Lab", "", &me.user_id, 1 << 40)
            .await
            .unwrap();
        let asset = |k: usize| NewAsset {
            title: format!("Bright-field scan {k}"),
            description: k.is_multiple_of(2).then(|| "Sample A, 200 kV".into()),
            alias: None,
            tags: (0..k % 3).map(|t| format!("t{t}")).collect(),
            metadata:
                json!({"voltage_kv": k, "sample": {"name": "SrRuO3"}, "ok": k.is_multiple_of(2)})
                    .as_object()
                    .unwrap()
                    .clone(),
            owner_type: OwnerType::Project,
            owner_id: p.project_id.clone(),
            collection_id: None,
            created_by: me.user_id.clone(),
            record_type: (k % 2 == 1).then(|| "raw_data".into()),
            allocation_id: None,
        };
        let mut tx = s.write().await.unwrap();
        let c: &mut ConnOf<B> = &mut tx;
        let mut ids = Vec::new();
        for k in 0..ASSETS_PER_REINDEX + 5 {
            ids.push(insert_asset(c, asset(k)).await.unwrap().asset_id);
        }
        let mut before = Vec::new();
        for id in &ids {
            before.push(stored(c, id).await);
        }
        let count =
            "SELECT (SELECT COUNT(*) FROM asset_tags) + (SELECT COUNT(*) FROM asset_fields)";
        let (rows_before,): (i64,) = c.fetch_one(count, vec![]).await.unwrap();
        for table in ["asset_search", "asset_tags", "asset_fields"] {
            c.execute(&format!("DELETE FROM {table}"), vec![])
                .await
                .unwrap();
        }
        let mut listed: Vec<&str> = ids.iter().map(String::as_str).collect();
        listed.push("no-such-asset");
        reindex_many(c, &listed).await.unwrap();
        for (id, before) in ids.iter().zip(before) {
            assert_eq!(stored(c, id).await, before);
        }
        // Again over rows that exist: the same rows, none twice.
        reindex_many(c, &listed).await.unwrap();
        let (rows_after,): (i64,) = c.fetch_one(count, vec![]).await.unwrap();
        assert_eq!(rows_after, rows_before);
        assert!(rows_before > ids.len() as i64);
        tx.commit().await.unwrap();
    }

    /// Index rows whose owner or creation time differ from their asset's.
    async fn stale_index_rows<C: Dialect>(c: &mut C) -> i64 {
        let owner = "a.owner_type || ':' || a.owner_id";
        let mut stale = 0;
        let record_type = " OR COALESCE(x.record_type, '') <> COALESCE(a.record_type, '')";
        for (table, extra) in [
            ("asset_search", record_type),
            ("asset_tags", record_type),
            ("asset_fields", ""),
        ] {
            let (n,): (i64,) = c
                .fetch_one(
                    &format!(
                        "SELECT COUNT(*) FROM {table} x JOIN assets a ON a.id = x.asset_id \
                         WHERE x.owner <> {owner} OR x.created_at <> a.created_at{extra}"
                    ),
                    vec![],
                )
                .await
                .unwrap();
            stale += n;
        }
        if C::FULL_TEXT == crate::search::sql::FullText::Fts5 {
            // SQLite's owner numbers (migration 0020): one per `asset_search`
            // row, naming its owner, none left over.
            let (n,): (i64,) = c
                .fetch_one(
                    "SELECT (SELECT COUNT(*) FROM asset_search x \
                     LEFT JOIN asset_search_owner o ON o.id = x.rowid \
                     LEFT JOIN search_owners k ON k.no = o.owner_no WHERE k.owner IS NOT x.owner) \
                     + (SELECT COUNT(*) FROM asset_search_owner o \
                     WHERE NOT EXISTS (SELECT 1 FROM asset_search x WHERE x.rowid = o.id))",
                    vec![],
                )
                .await
                .unwrap();
            stale += n;
        }
        stale
    }

    /// The owner in the index rows follows the asset through the changes
    /// the store makes to an asset (no path changes an asset's owner: moving
    /// it between collections keeps its project), and a moved asset is
    /// still found by its project, tag and metadata.
    async fn index_rows_carry_the_owner<B: Backend + MetadataStore>(s: &B) {
        let me = s.create_user("me@x.org", 1 << 40).await.unwrap();
        let p = s
            .create_project("Lab", "", &me.user_id, 1 << 40)
            .await
            .unwrap();
        let raw = s
            .create_collection(&p.project_id, "raw", &p.root_collection_id)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for (owner_type, owner_id) in [
            (OwnerType::Project, p.project_id.clone()),
            (OwnerType::User, me.user_id.clone()),
        ] {
            let asset = s
                .create_asset(NewAsset {
                    allocation_id: None,
                    title: "scan".into(),
                    description: None,
                    alias: None,
                    tags: vec!["calibrated".into()],
                    metadata: json!({"kv": 200}).as_object().unwrap().clone(),
                    collection_id: (owner_type == OwnerType::Project)
                        .then(|| p.root_collection_id.clone()),
                    owner_type,
                    owner_id,
                    created_by: me.user_id.clone(),
                    record_type: None,
                })
                .await
                .unwrap();
            ids.push(asset.asset_id);
        }
        s.update_asset(
            &ids[0],
            dataerai_proto::api::UpdateAsset {
                tags: Some(vec!["calibrated".into(), "moved".into()]),
                metadata: Some(json!({"kv": 300}).as_object().unwrap().clone()),
                record_type: Some("analysis".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        s.move_asset_to_collection(&ids[0], &raw.collection_id)
            .await
            .unwrap();
        {
            let mut conn = s.pool().acquire().await.unwrap();
            let c: &mut ConnOf<B> = &mut conn;
            assert_eq!(stale_index_rows(c).await, 0);
        }
        for (q, expected) in [
            (format!("project:{} tag:moved md.kv>=300", p.project_id), 1),
            ("tag:calibrated".to_string(), 2),
            (format!("collection:{}", raw.collection_id), 1),
            // The index rows' copy of the record type follows the change.
            ("tag:calibrated type:analysis".to_string(), 1),
            ("type:analysis".to_string(), 1),
            ("scan type:analysis".to_string(), 1),
        ] {
            let request = search_for(&q, None, 10, 0, true);
            let found = s.search(&me.user_id, &request).await.unwrap();
            assert_eq!(found.total, expected, "{q}");
            assert_eq!(found.items.len() as u64, expected, "{q}");
        }
        // Another user reads none of it.
        let other = s.create_user("other@x.org", 1 << 40).await.unwrap();
        let request = search_for("tag:calibrated", None, 10, 0, true);
        assert_eq!(s.search(&other.user_id, &request).await.unwrap().total, 0);
        // A deleted asset leaves no index row behind, and is not found.
        s.delete_asset(&ids[1]).await.unwrap();
        {
            let mut conn = s.pool().acquire().await.unwrap();
            let c: &mut ConnOf<B> = &mut conn;
            assert_eq!(stale_index_rows(c).await, 0);
        }
        let request = search_for("scan", None, 10, 0, true);
        let found = s.search(&me.user_id, &request).await.unwrap();
        assert_eq!(found.total, 1);
        assert_eq!(found.items[0].asset_id, ids[0]);
    }

    /// A catalogue where some terms are selective and some broad, with
    /// arrays (several index rows per asset and path) and assets the caller
    /// cannot read; every term that can drive finds exactly what the fixed
    /// rule finds, in the same order, with the same total and facets.
    async fn every_drive_finds_the_same_page<B: Backend + MetadataStore>(s: &B) {
        let me = s.create_user("me@x.org", 1 << 40).await.unwrap();
        let other = s.create_user("other@x.org", 1 << 40).await.unwrap();
        let mine = s
            .create_project("Mine", "", &me.user_id, 1 << 40)
            .await
            .unwrap();
        let theirs = s
            .create_project("Theirs", "", &other.user_id, 1 << 40)
            .await
            .unwrap();
        let mut batch = Vec::new();
        for i in 0..120_u64 {
            let project = if i % 3 == 0 { &theirs } else { &mine };
            batch.push(NewAsset {
                title: format!("{} scan {i}", if i % 2 == 0 { "bright" } else { "dark" }),
                description: None,
                alias: None,
                tags: vec![format!("t{}", i % 5), "all".into()],
                metadata: json!({"run": i, "kv": i % 7, "modes": [i % 4, i % 4 + 1],
                                 "name": format!("S{}", i % 11), "ok": i % 2 == 0})
                .as_object()
                .unwrap()
                .clone(),
                owner_type: OwnerType::Project,
                owner_id: project.project_id.clone(),
                collection_id: None,
                created_by: me.user_id.clone(),
                record_type: Some(["raw_data", "figure"][(i % 2) as usize].into()),
                allocation_id: None,
            });
        }
        let mut tx = s.write().await.unwrap();
        let c: &mut ConnOf<B> = &mut tx;
        bulk_insert_assets(c, &batch).await.unwrap();
        tx.commit().await.unwrap();
        let mut conn = s.pool().acquire().await.unwrap();
        let c: &mut ConnOf<B> = &mut conn;
        let mut driven = 0;
        let mut one_pass = 0;
        for (q, sort) in [
            // Words alone (SQLite: the owner by its number), many ties in
            // bm25 broken by the asset id.
            ("scan", None),
            ("\"bright scan\"", None),
            ("md.run<10", None),
            ("md.modes>=3", None),
            ("md.modes:*", Some("-created")),
            ("type:figure md.run<30", None),
            ("tag:t2 md.kv>=3 md.modes<=2", None),
            ("tag:all md.name=\"S3\"", Some("md.run")),
            ("scan md.kv=2 tag:t1", Some("created")),
            ("bright md.run>=100", None),
            ("md.run>=20 md.run<40 -tag:t1 md.kv!=3", Some("-md.run")),
            ("md.run>=20 (tag:t1 OR dark)", None),
            ("md.modes=2 md.ok=true", Some("title")),
            // SQLite: words ranked by relevance, from a tag or a metadata
            // test too (the rank of the survivors only).
            ("scan tag:t1 md.kv>=2", None),
            ("\"bright scan\" md.run<50", None),
            ("scan (dark OR tag:t2) md.run<60", None),
            ("dark scan tag:all md.modes>=2", None),
            // The type on the driving index row, per candidate and under OR.
            ("tag:t2 type:raw_data md.kv>=3", None),
            ("scan type:figure tag:all md.run<90", None),
            (
                "tag:all (type:figure OR md.kv=1) md.run>=30",
                Some("-created"),
            ),
        ] {
            let request = search_for(q, sort, 7, 2, true);
            let fixed = search_from(c, &me.user_id, &request, Drive::Default)
                .await
                .unwrap();
            assert!(fixed.total > 0, "{q}");
            let shown = |p: &SearchPage| {
                let ids: Vec<&str> = p.items.iter().map(|a| a.asset_id.as_str()).collect();
                format!("{ids:?} {} {} {:?}", p.total, p.more, p.facets)
            };
            let estimates = crate::search::sql::drive_estimates(
                &request.query,
                &request.sort,
                &me.user_id,
                <ConnOf<B> as Dialect>::FULL_TEXT,
            );
            for (drive, _, _) in estimates {
                let page = search_from(c, &me.user_id, &request, drive).await.unwrap();
                assert_eq!(shown(&page), shown(&fixed), "{q} from {drive:?}");
                driven += 1;
            }
            // What `search` picks is one of them.
            let chosen = choose_drive(c, &me.user_id, &request).await.unwrap();
            let page = search_from(c, &me.user_id, &request, chosen).await.unwrap();
            assert_eq!(shown(&page), shown(&fixed), "{q} from {chosen:?}");
            // Ranked by relevance, the page comes from the counting pass
            // while every match is counted, else from its own statement:
            // the same page either way.
            let ranked = statements(
                &me.user_id,
                &request,
                <ConnOf<B> as Dialect>::FULL_TEXT,
                chosen,
            )
            .ranked_count
            .is_some();
            if ranked {
                let capped = SearchRequest {
                    count_cap: 3,
                    ..search_for(q, sort, 7, 2, true)
                };
                let page = search_from(c, &me.user_id, &capped, chosen).await.unwrap();
                let ids = |p: &SearchPage| {
                    let ids: Vec<&str> = p.items.iter().map(|a| a.asset_id.as_str()).collect();
                    format!("{ids:?} {}", p.more)
                };
                assert!(page.total_is_lower_bound, "{q}");
                assert_eq!(ids(&page), ids(&fixed), "{q}, counted up to 3");
                one_pass += 1;
            }
        }
        // Every query ranked by required words (eight; PostgreSQL also the
        // one with words under `OR`) had its page from one pass.
        assert!(one_pass >= 8, "{one_pass}");
        // SQLite checks the words' owners by number when nothing else filters.
        let request = search_for("scan", None, 7, 2, true);
        let ranked = statements(
            &me.user_id,
            &request,
            <ConnOf<B> as Dialect>::FULL_TEXT,
            Drive::Default,
        )
        .ranked_count
        .unwrap();
        assert_eq!(
            ranked.contains("asset_search_owner"),
            <ConnOf<B> as Dialect>::FULL_TEXT == crate::search::sql::FullText::Fts5,
            "{ranked}"
        );
        assert!(driven >= 10, "{driven}");
        // A selective metadata term drives: its index rows, not every asset.
        let request = search_for("type:figure md.run<10", None, 50, 0, true);
        let drive = choose_drive(c, &me.user_id, &request).await.unwrap();
        assert_eq!(drive, Drive::Term(1));
        let sql = statements(
            &me.user_id,
            &request,
            <ConnOf<B> as Dialect>::FULL_TEXT,
            drive,
        );
        assert!(
            sql.page.contains(
                "FROM (SELECT DISTINCT f.asset_id, f.owner, f.created_at FROM asset_fields f"
            ),
            "{}",
            sql.page
        );
        assert!(!sql.page.contains("FROM asset_search s"), "{}", sql.page);
    }

    /// A metadata range where most assets have the matching value more than
    /// once (arrays): counted up to any cap, each asset counts once, also
    /// when the first index rows the count reads repeat an asset.
    async fn a_metadata_count_counts_each_asset_once<B: Backend + MetadataStore>(s: &B) {
        let me = s.create_user("me@x.org", 1 << 40).await.unwrap();
        let mine = s
            .create_project("Mine", "", &me.user_id, 1 << 40)
            .await
            .unwrap();
        // Even assets: 5, 5 and 6 (three index rows each); odd ones: i.
        // `md.modes>=5`: 8 assets (0, 2, 4, 6, 8, 5, 7, 9), 18 index rows.
        let batch: Vec<NewAsset> = (0..10_u64)
            .map(|i| NewAsset {
                title: format!("run {i}"),
                description: None,
                alias: None,
                tags: vec![],
                metadata: json!({"modes": if i % 2 == 0 { json!([5, 5, 6]) } else { json!([i]) }})
                    .as_object()
                    .unwrap()
                    .clone(),
                owner_type: OwnerType::Project,
                owner_id: mine.project_id.clone(),
                collection_id: None,
                created_by: me.user_id.clone(),
                record_type: None,
                allocation_id: None,
            })
            .collect();
        let mut tx = s.write().await.unwrap();
        let c: &mut ConnOf<B> = &mut tx;
        bulk_insert_assets(c, &batch).await.unwrap();
        tx.commit().await.unwrap();
        for cap in [1, 3, 7, 8, 9, 17, 18, 100] {
            let request = SearchRequest {
                count_cap: cap,
                ..search_for("md.modes>=5", None, 2, 0, true)
            };
            let page = s.search(&me.user_id, &request).await.unwrap();
            let projects = &page.facets.as_ref().unwrap().projects;
            if cap < 8 {
                assert!(page.total_is_lower_bound, "cap {cap}");
                assert_eq!(page.total, cap.max(2), "cap {cap}");
            } else {
                assert!(!page.total_is_lower_bound, "cap {cap}");
                assert_eq!(page.total, 8, "cap {cap}");
                assert_eq!(projects, &vec![(mine.project_id.clone(), 8)], "cap {cap}");
            }
        }
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: run by make test-scaleout"]
    async fn statements_are_planned_with_their_values_postgres() {
        let Some(s) = scratch_pg_store().await else {
            return;
        };
        // On every connection of the pool: a prepared search statement is
        // never run with a generic plan that ignores its driver's values.
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = s.pool().acquire().await.unwrap();
            let c: &mut ConnOf<PgStore> = &mut conn;
            for (setting, value) in [
                ("plan_cache_mode", "force_custom_plan"),
                // Nor compiled, nor split over workers (slower for a few
                // thousand index rows).
                ("jit", "off"),
                ("max_parallel_workers_per_gather", "0"),
            ] {
                let (shown,): (String,) = c
                    .fetch_one(&format!("SHOW {setting}"), vec![])
                    .await
                    .unwrap();
                assert_eq!(shown, value, "{setting}");
            }
            held.push(conn);
        }
    }

    crate::meta::conformance::both_backends!(
        every_drive_finds_the_same_page,
        a_metadata_count_counts_each_asset_once,
        index_rows_carry_the_owner,
        bulk_load_writes_what_the_insert_path_writes,
        reindex_many_writes_what_reindex_writes,
        a_single_upload_indexes_what_reindex_writes,
    );
}
