//! The search benchmark (`make bench-search`, not in `make test`: compiled only
//! with the feature `search-bench`): a generated catalogue of
//! `DATAERAI_BENCH_ASSETS` assets (default 1,000,000) with 5–10 metadata keys
//! each and a tenth as many relationships (chains of 20 edges), loaded with
//! the bulk loader of [`super::search`] (the rows the store's insert path
//! writes, in multi-row `INSERT`s), then p50/p99 of text, tag,
//! metadata-range, combined and browse queries as one reader sees them
//! (through [`MetadataStore::search`], facets on, as the REST default) and of
//! depth-20 lineage walks. Prints Markdown tables for `docs/performance.md`;
//! `DATAERAI_BENCH_SQL=1` adds the plans of every query's statements.
//!
//! `DATAERAI_BENCH_DB` keeps the catalogue between runs (SQLite: a file
//! path; PostgreSQL: a database name on the test server): a run that finds
//! it loaded times the queries without loading again (a catalogue loaded by
//! an older build gains its new index columns from the store's migrations
//! when it opens). `DATAERAI_BENCH_LOAD_ONLY=1` stops after loading.

use std::time::{Duration, Instant};

use dataerai_proto::api::OwnerType;
use serde_json::{json, Map, Value};

use super::conformance::scratch_pg_url;
use super::search::{bulk_insert_assets, bulk_insert_relationships};
use super::shared::{Backend, Commit, ConnOf};
use super::sql::{Conn, Dialect};
use super::{LineageDirection, MetadataStore, NewAsset, Window};
use crate::meta::{postgres::PgStore, sqlite::SqliteStore};
use crate::search::sql::FullText;
use crate::search::{parse, SearchRequest, Sort, COUNT_CAP};

/// Assets per write transaction while loading.
const BATCH: usize = 5_000;
/// Edges per lineage chain (the depth of the lineage walk timed).
const CHAIN: usize = 20;
/// Timed runs of each query: RUNS, or as many as fit in QUERY_BUDGET but
/// at least MIN_RUNS.
const RUNS: usize = 100;
const MIN_RUNS: usize = 10;
const QUERY_BUDGET: Duration = Duration::from_secs(20);
const WORDS: [&str; 24] = [
    "scan",
    "calibration",
    "tomography",
    "diffraction",
    "bright",
    "dark",
    "field",
    "spectrum",
    "sample",
    "beam",
    "detector",
    "thin",
    "film",
    "crystal",
    "phase",
    "map",
    "raw",
    "fit",
    "model",
    "noise",
    "drift",
    "stack",
    "series",
    "tilt",
];
/// Record types of generated assets (the web benchmark draws from them too).
pub(super) const TYPES: [&str; 6] = [
    "raw_data", "analysis", "figure", "config", "notebook", "log",
];

/// A small deterministic generator (no dependency for a benchmark's dice).
pub(super) struct Dice(pub(super) u64);
impl Dice {
    pub(super) fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    pub(super) fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[usize::try_from(self.next(items.len() as u64)).unwrap_or(0)]
    }
}

/// A project asset by `created_by` with the given title and metadata, and a
/// description, two tags and a record type drawn (in that order) from `dice`.
pub(super) fn generated_asset(
    dice: &mut Dice,
    words: &[&str],
    title: String,
    metadata: Map<String, Value>,
    project_id: &str,
    created_by: &str,
) -> NewAsset {
    NewAsset {
        title,
        description: Some(format!("{} of {}", dice.pick(words), dice.pick(words))),
        alias: None,
        tags: vec![
            format!("t{}", dice.next(200)),
            format!("t{}", dice.next(200)),
        ],
        metadata,
        owner_type: OwnerType::Project,
        owner_id: project_id.to_string(),
        collection_id: None,
        created_by: created_by.to_string(),
        record_type: Some(dice.pick(&TYPES).to_string()),
        allocation_id: None,
    }
}

/// What the loader made.
struct Loaded {
    reader: String,
    took: Duration,
    /// (first, last) asset of each lineage chain.
    chains: Vec<(String, String)>,
    relationships: usize,
}

async fn load<B: Backend + MetadataStore>(store: &B, n: usize, relationships: usize) -> Loaded {
    let me = store.create_user("reader@x.org", 1 << 50).await.unwrap();
    let other = store.create_user("other@x.org", 1 << 50).await.unwrap();
    // The reader belongs to 10 of 20 projects: half the catalogue is readable.
    let mut owners = Vec::new();
    for p in 0..20 {
        let owner = if p % 2 == 0 { &me } else { &other };
        let project = store
            .create_project(&format!("P{p}"), "", &owner.user_id, 1 << 50)
            .await
            .unwrap();
        owners.push((project.project_id, owner.user_id.clone()));
    }
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let remake = {
        let mut conn = store.pool().acquire().await.unwrap();
        let c: &mut ConnOf<B> = &mut conn;
        drop_secondary_indexes(c).await
    };
    // Every readable asset's id, in creation order, for the lineage chains.
    let mut readable = Vec::new();
    for start in (0..n).step_by(BATCH) {
        let mut batch = Vec::with_capacity(BATCH);
        for i in start..(start + BATCH).min(n) {
            let (project, creator) = &owners[i % owners.len()];
            let title = format!("{} {} {}", dice.pick(&WORDS), dice.pick(&WORDS), i);
            let mut md = Map::new();
            md.insert("voltage_kv".into(), json!(dice.next(301)));
            md.insert("run".into(), json!(i));
            md.insert(
                "sample".into(),
                json!({"name": format!("S{}", dice.next(500)), "thickness_nm": dice.next(100)}),
            );
            md.insert("operator".into(), json!(format!("op{}", dice.next(40))));
            for k in 0..dice.next(6) {
                md.insert(format!("extra_{k}"), json!(dice.next(1000)));
            }
            batch.push(generated_asset(
                &mut dice, &WORDS, title, md, project, creator,
            ));
        }
        let mut tx = store.write().await.unwrap();
        let c: &mut ConnOf<B> = &mut tx;
        if <ConnOf<B> as Dialect>::FULL_TEXT == FullText::Fts5 {
            // Loading only: the random ids spread every batch over all of
            // each index, so the loading connection gets a 1 GiB cache.
            c.execute("PRAGMA cache_size = -1048576", vec![])
                .await
                .unwrap();
        }
        let ids = bulk_insert_assets(c, &batch).await.unwrap();
        tx.commit().await.unwrap();
        // Even project indices are the reader's.
        readable.extend(
            ids.into_iter()
                .enumerate()
                .filter(|(k, _)| (start + k) % owners.len() % 2 == 0)
                .map(|(_, id)| id),
        );
    }
    // Relationships: chains of CHAIN readable assets, each derived from the
    // one before it, until RELATIONSHIPS edges (or the readable assets) run out.
    let mut chains = Vec::new();
    let mut edges = Vec::new();
    for chain in readable.chunks_exact(CHAIN + 1) {
        if edges.len() + CHAIN > relationships {
            break;
        }
        for pair in chain.windows(2) {
            edges.push((pair[1].clone(), pair[0].clone(), "derived_from".to_string()));
        }
        chains.push((chain[0].clone(), chain[CHAIN].clone()));
    }
    for batch in edges.chunks(BATCH * 5) {
        let mut tx = store.write().await.unwrap();
        let c: &mut ConnOf<B> = &mut tx;
        bulk_insert_relationships(c, &me.user_id, batch)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    {
        let mut conn = store.pool().acquire().await.unwrap();
        let c: &mut ConnOf<B> = &mut conn;
        if <ConnOf<B> as Dialect>::FULL_TEXT == FullText::TsVector {
            // Sorts of the index builds in memory.
            c.execute("SET maintenance_work_mem = '1GB'", vec![])
                .await
                .unwrap();
        }
        for statement in remake {
            c.execute(&statement, vec![]).await.unwrap();
        }
    }
    Loaded {
        reader: me.user_id,
        took: started.elapsed(),
        chains,
        relationships: edges.len(),
    }
}

/// The tables [`load`] fills.
const LOADED_TABLES: &str =
    "'assets', 'asset_search', 'asset_tags', 'asset_fields', 'relationships'";

/// Drop the secondary indexes of the tables [`load`] fills (and SQLite's
/// trigger that adds each `asset_search` row to the full-text index), and
/// answer the statements that make them again, each as the migrations
/// wrote it: an index built once from every row is much faster than one
/// updated row by row (a million random inserts into a dozen B-trees and
/// the full-text index). The primary keys stay: the rows' foreign keys and
/// `ON CONFLICT` need them.
async fn drop_secondary_indexes<C: Dialect>(c: &mut C) -> Vec<String> {
    let found: Vec<(String, String)> = if C::FULL_TEXT == FullText::Fts5 {
        c.fetch_all(
            &format!(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                 AND tbl_name IN ({LOADED_TABLES}) ORDER BY name"
            ),
            vec![],
        )
        .await
        .unwrap()
    } else {
        c.fetch_all(
            &format!(
                "SELECT i.indexname::text, i.indexdef FROM pg_indexes i \
                 WHERE i.schemaname = current_schema() AND i.tablename IN ({LOADED_TABLES}) \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname) \
                 ORDER BY 1"
            ),
            vec![],
        )
        .await
        .unwrap()
    };
    let mut remake = Vec::new();
    for (name, sql) in found {
        c.execute(&format!("DROP INDEX \"{name}\""), vec![])
            .await
            .unwrap();
        remake.push(sql);
    }
    if C::FULL_TEXT == FullText::Fts5 {
        let (trigger,): (String,) = c
            .fetch_one(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'asset_search_ai'",
                vec![],
            )
            .await
            .unwrap();
        c.execute("DROP TRIGGER asset_search_ai", vec![])
            .await
            .unwrap();
        // The full-text index of every `asset_search` row, in one pass.
        remake.push("INSERT INTO asset_search_fts(asset_search_fts) VALUES ('rebuild')".into());
        remake.push(trigger);
    }
    remake
}

/// What [`load`] made, found again in a kept catalogue: the chains are the
/// assets that only derive (their last asset) and that are only derived
/// from (their first), paired in id order (any last with any first walks
/// a whole chain: the pairing only matters for the table's edge count).
async fn reloaded<B: Backend + MetadataStore>(store: &B, reader: String) -> Loaded {
    let mut conn = store.pool().acquire().await.unwrap();
    let c: &mut ConnOf<B> = &mut conn;
    let ends = |from: &str, to: &str| {
        format!(
            "SELECT r.{from} FROM relationships r WHERE NOT EXISTS \
             (SELECT 1 FROM relationships q WHERE q.{to} = r.{from}) ORDER BY 1"
        )
    };
    let firsts: Vec<(String,)> = c
        .fetch_all(&ends("to_asset_id", "from_asset_id"), vec![])
        .await
        .unwrap();
    let lasts: Vec<(String,)> = c
        .fetch_all(&ends("from_asset_id", "to_asset_id"), vec![])
        .await
        .unwrap();
    let (relationships,): (i64,) = c
        .fetch_one("SELECT COUNT(*) FROM relationships", vec![])
        .await
        .unwrap();
    Loaded {
        reader,
        took: Duration::ZERO,
        chains: firsts
            .into_iter()
            .zip(lasts)
            .map(|((first,), (last,))| (first, last))
            .collect(),
        relationships: usize::try_from(relationships).unwrap_or(0),
    }
}

async fn bench<B: Backend + MetadataStore>(store: &B, backend: &str) {
    let n: usize = std::env::var("DATAERAI_BENCH_ASSETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let loaded = match store.user_by_email("reader@x.org").await.unwrap() {
        Some(reader) => reloaded(store, reader.user_id).await,
        None => {
            let loaded = load(store, n, n / 10).await;
            if <ConnOf<B> as Dialect>::FULL_TEXT == FullText::TsVector {
                // What autovacuum does some minutes after a bulk load: the
                // planner's statistics (an analyze during the load saw a
                // fraction of the rows) and the visibility map (index-only
                // scans without a heap fetch per row).
                let mut conn = store.pool().acquire().await.unwrap();
                let c: &mut ConnOf<B> = &mut conn;
                c.execute("VACUUM ANALYZE", vec![]).await.unwrap();
            }
            loaded
        }
    };
    if std::env::var("DATAERAI_BENCH_LOAD_ONLY").is_ok() {
        println!("loaded in {:.0} s", loaded.took.as_secs_f64());
        return;
    }
    let reader = loaded.reader.clone();
    // As the server's housekeeping timer does every few minutes.
    MetadataStore::refresh_statistics(store).await.unwrap();
    println!(
        "\n### Search, {backend}: {n} assets (half readable), {} relationships, loaded in {:.0} s\n",
        loaded.relationships,
        loaded.took.as_secs_f64()
    );
    println!("| query | matches | p50 ms | p99 ms | runs |\n|---|---:|---:|---:|---:|");
    // One title word that only one (readable) asset has: its number.
    let unique = format!("{}", n / 2 / 20 * 20);
    let queries = [
        ("selective text", unique.as_str()),
        ("text", "calibration tomography"),
        ("phrase", "\"bright field\""),
        ("tag", "tag:t42"),
        ("metadata range", "md.voltage_kv>=295"),
        ("nested metadata", "md.sample.name=\"S7\""),
        ("combined", "scan tag:t7 md.voltage_kv>=150 type:raw_data"),
        ("type, sorted by metadata", "type:figure md.run<2000"),
        ("browse (empty query, newest first)", ""),
    ];
    for (name, q) in queries {
        let query = parse(q).unwrap();
        let sort = Sort::parse(None, &query).unwrap();
        let request = SearchRequest {
            query,
            sort,
            window: Window {
                limit: 50,
                offset: 0,
            },
            facets: true,
            count_cap: COUNT_CAP,
        };
        if std::env::var("DATAERAI_BENCH_SQL").is_ok() {
            explain(store, backend, name, &reader, &request).await;
        }
        let mut times = Vec::with_capacity(RUNS);
        let mut total = String::new();
        let began = Instant::now();
        // A slow query gets fewer runs (at least MIN_RUNS), so one run of
        // the benchmark stays within minutes; the table says how many.
        while times.len() < RUNS && (times.len() < MIN_RUNS || began.elapsed() < QUERY_BUDGET) {
            let t = Instant::now();
            let page = store.search(&reader, &request).await.unwrap();
            times.push(t.elapsed());
            let bound = if page.total_is_lower_bound { "+" } else { "" };
            total = format!("{}{bound}", page.total);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let runs = times.len();
        println!(
            "| {name}: `{q}` | {total} | {:.1} | {:.1} | {runs} |",
            ms(times[runs / 2]),
            ms(times[runs * 99 / 100])
        );
    }
    // Lineage: the whole chain (CHAIN edges) up from its last asset and
    // down from its first, as `GET …/lineage?depth=20` asks the store.
    for (name, up) in [("up", true), ("down", false)] {
        if loaded.chains.is_empty() {
            break;
        }
        let mut times = Vec::with_capacity(RUNS);
        let mut edges = 0;
        for k in 0..RUNS {
            let (first, last) = &loaded.chains[k * 7919 % loaded.chains.len()];
            let (root, direction) = if up {
                (last, LineageDirection::Up)
            } else {
                (first, LineageDirection::Down)
            };
            let t = Instant::now();
            let lineage = store
                .lineage(root, direction, CHAIN as u32, &[], 1000)
                .await
                .unwrap();
            times.push(t.elapsed());
            edges = lineage.edges.len();
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| lineage {name}, depth {CHAIN} | {edges} edges | {:.1} | {:.1} | {RUNS} |",
            ms(times[RUNS / 2]),
            ms(times[RUNS * 99 / 100])
        );
    }
}

/// Print the plans of the statements a search runs (SQLite: `EXPLAIN QUERY
/// PLAN`; PostgreSQL: `EXPLAIN ANALYZE`, so with the rows each step saw).
async fn explain<B: Backend + MetadataStore>(
    store: &B,
    backend: &str,
    name: &str,
    reader: &str,
    request: &SearchRequest,
) {
    use super::sql::Arg;
    let mut conn = store.pool().acquire().await.unwrap();
    let c: &mut ConnOf<B> = &mut conn;
    let drive = super::search::choose_drive(c, reader, request)
        .await
        .unwrap();
    let sql = super::search::statements(reader, request, <ConnOf<B> as Dialect>::FULL_TEXT, drive);
    let mut page_args = sql.args.clone();
    page_args.extend([Arg::from(51_u64), Arg::from(0_u64)]);
    println!("\n#### {backend}, {name}\n\nstarts from: {drive:?}\n");
    let mut statements = vec![
        ("page", sql.page.clone(), page_args.clone()),
        (
            "count and facets",
            sql.count.clone(),
            sql.count_args.clone(),
        ),
    ];
    if let Some(ranked) = &sql.ranked_count {
        // What runs instead of both while the count is under the cap.
        statements = vec![(
            "page, count and facets in one pass",
            ranked.clone(),
            page_args,
        )];
    }
    for (what, statement, args) in statements {
        println!("{what}:\n```");
        if backend == "SQLite" {
            let plan: Vec<(i64, i64, i64, String)> = c
                .fetch_all(&format!("EXPLAIN QUERY PLAN {statement}"), args)
                .await
                .unwrap();
            // Indent each step under its parent.
            let mut depth: Vec<(i64, usize)> = Vec::new();
            for (id, parent, _, step) in plan {
                while depth.last().is_some_and(|(p, _)| *p != parent) {
                    depth.pop();
                }
                let level = depth.last().map_or(0, |(_, l)| l + 1);
                println!("{}{step}", "  ".repeat(level));
                depth.push((id, level));
            }
        } else {
            let plan: Vec<(String,)> = c
                .fetch_all(
                    &format!("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {statement}"),
                    args,
                )
                .await
                .unwrap();
            for (line,) in plan {
                println!("{line}");
            }
        }
        println!("```");
    }
}

#[tokio::test]
async fn search_speed_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = match std::env::var("DATAERAI_BENCH_DB") {
        Ok(kept) => std::path::PathBuf::from(kept),
        Err(_) => dir.path().join("bench.db"),
    };
    let store = SqliteStore::open(&path).await.unwrap();
    bench(&store, "SQLite").await;
}

#[tokio::test]
async fn search_speed_postgres() {
    let Some(url) = scratch_pg_url("bench") else {
        return;
    };
    let url = match std::env::var("DATAERAI_BENCH_DB") {
        Ok(kept) => format!("{}/{kept}", url.rsplit_once('/').unwrap().0),
        Err(_) => url,
    };
    let store = PgStore::open(&url).await.unwrap();
    bench(&store, "PostgreSQL").await;
}
