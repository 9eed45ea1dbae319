//! The web pages' speed (`make bench-web`, not in `make test`: compiled only
//! with the feature `search-bench`): one project of `DATAERAI_BENCH_WEB_ASSETS`
//! assets (default 100,000) in its root collection, loaded with the search
//! benchmark's bulk loader ([`super::search::bulk_insert_assets`]) straight
//! into the SQLite database of a data directory; then the real
//! `dataerai-server` (next to this test binary: `target/<profile>/`) serves
//! it, a user signs in through the form, and every page is timed as the
//! browser sees it (p50/p99 over `RUNS` requests): home, the project (first
//! page, a later and the last page, each sort), the REST list of the
//! collection, an asset, a search. Prints the plans of the collection
//! listing's statements (`EXPLAIN QUERY PLAN`) and a Markdown table for
//! `docs/performance.md`, and fails when a page's p50 is over the 100 ms
//! target.

use std::time::{Duration, Instant};

use dataerai_testkit::server::{set_password, TestServer};
use dataerai_testkit::web::Browser;
use serde_json::{json, Map};

use super::search::bulk_insert_assets;
use super::search_bench::{generated_asset, Dice};
use super::shared::{Backend, Commit, ConnOf};
use super::{MetadataStore, NewAsset};
use crate::meta::sqlite::SqliteStore;

const BATCH: usize = 5_000;
const RUNS: usize = 25;
const TARGET: Duration = Duration::from_millis(100);
const PASSWORD: &str = "a long enough bench password";
const WORDS: [&str; 12] = [
    "scan",
    "calibration",
    "tomography",
    "diffraction",
    "bright",
    "field",
    "spectrum",
    "sample",
    "beam",
    "crystal",
    "phase",
    "drift",
];

/// What the loader made: the project, its root collection, one of its assets.
struct Loaded {
    project_id: String,
    collection_id: String,
    asset_id: String,
    took: Duration,
}

async fn load(store: &SqliteStore, n: usize) -> Loaded {
    let me = store.create_user("bench@lab.org", 1 << 50).await.unwrap();
    let project = store
        .create_project(
            "Beamline 7",
            "The web benchmark's project",
            &me.user_id,
            1 << 50,
        )
        .await
        .unwrap();
    for name in ["raw", "processed", "figures"] {
        store
            .create_collection(&project.project_id, name, &project.root_collection_id)
            .await
            .unwrap();
    }
    let started = Instant::now();
    let mut dice = Dice(0x2545_f491_4f6c_dd1d);
    let mut some_id = String::new();
    for start in (0..n).step_by(BATCH) {
        let mut batch = Vec::with_capacity(BATCH);
        for i in start..(start + BATCH).min(n) {
            let title = format!("{} {} {i}", dice.pick(&WORDS), dice.pick(&WORDS));
            let mut md = Map::new();
            md.insert("voltage_kv".into(), json!(dice.next(301)));
            md.insert("run".into(), json!(i));
            md.insert(
                "sample".into(),
                json!({"name": format!("S{}", dice.next(500))}),
            );
            batch.push(NewAsset {
                collection_id: Some(project.root_collection_id.clone()),
                ..generated_asset(
                    &mut dice,
                    &WORDS,
                    title,
                    md,
                    &project.project_id,
                    &me.user_id,
                )
            });
        }
        let mut tx = store.write().await.unwrap();
        let c: &mut ConnOf<SqliteStore> = &mut tx;
        let ids = bulk_insert_assets(c, &batch).await.unwrap();
        tx.commit().await.unwrap();
        if some_id.is_empty() {
            some_id = ids[ids.len() / 2].clone();
        }
    }
    MetadataStore::refresh_statistics(store).await.unwrap();
    Loaded {
        project_id: project.project_id,
        collection_id: project.root_collection_id,
        asset_id: some_id,
        took: started.elapsed(),
    }
}

#[tokio::test]
async fn web_speed() {
    let n: usize = std::env::var("DATAERAI_BENCH_WEB_ASSETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let loaded = {
        // The server's embedded database in its data directory.
        let store = SqliteStore::open(&dir.path().join("dataerai.db"))
            .await
            .unwrap();
        let loaded = load(&store, n).await;
        listing_plans(&store, &loaded.collection_id, n).await;
        loaded
    };
    set_password(dir.path(), PASSWORD_USER, PASSWORD);
    let server = TestServer::start(dir.path());
    let mut browser = Browser::new(&server.base);
    let signed = browser.sign_in(PASSWORD_USER, PASSWORD).await;
    assert!(signed.status.is_redirection(), "{}", signed.body);

    let project = format!("/projects/{}", loaded.project_id);
    let later = n.div_ceil(25) / 2;
    let mut pages: Vec<(String, String)> = vec![
        ("home".into(), "/".into()),
        ("project, first page (newest first)".into(), project.clone()),
        (
            format!("project, page {later}"),
            format!("{project}?page={later}"),
        ),
    ];
    for sort in [
        "created", "title", "-title", "size", "-size", "type", "-type",
    ] {
        pages.push((
            format!("project, sorted by {sort}"),
            format!("{project}?sort={sort}"),
        ));
    }
    pages.push((
        format!("project, page {later}, sorted by type"),
        format!("{project}?sort=type&page={later}"),
    ));
    let last = n.div_ceil(25);
    pages.push((
        format!("project, last page ({last})"),
        format!("{project}?page={last}"),
    ));
    pages.push((
        format!("REST list of the collection, page {later}"),
        format!(
            "/api/v1/collections/{}/assets?limit=25&offset={}",
            loaded.collection_id,
            (later - 1) * 25
        ),
    ));
    pages.push(("asset".into(), format!("/assets/{}", loaded.asset_id)));
    pages.push(("search, text".into(), "/search?q=calibration+beam".into()));
    pages.push((
        "search, tag and type".into(),
        "/search?q=tag:t42+type:figure".into(),
    ));
    pages.push(("search, empty query".into(), "/search".into()));

    println!(
        "\n### Web pages, SQLite: one project of {n} assets (loaded in {:.0} s)\n",
        loaded.took.as_secs_f64()
    );
    println!("| page | p50 ms | p99 ms | runs |\n|---|---:|---:|---:|");
    let mut slow = Vec::new();
    for (name, path) in &pages {
        // One untimed request warms the caches, as a page seen before.
        let first = browser.get(path).await;
        assert_eq!(first.status.as_u16(), 200, "{path}: {}", first.body);
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let page = browser.get(path).await;
            times.push(t.elapsed());
            assert_eq!(page.status.as_u16(), 200, "{path}");
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (p50, p99) = (times[RUNS / 2], times[RUNS * 99 / 100]);
        println!(
            "| {name}: `{path}` | {:.1} | {:.1} | {RUNS} |",
            ms(p50),
            ms(p99)
        );
        if p50 > TARGET {
            slow.push(format!("{name} ({:.0} ms)", ms(p50)));
        }
    }
    server.stop();
    assert!(slow.is_empty(), "over the {TARGET:?} target: {slow:?}");
}

const PASSWORD_USER: &str = "bench@lab.org";

/// The plans of the collection listing's statements (the count, and a page
/// in the middle of the collection in each order): one covering index
/// each, read in order.
async fn listing_plans(store: &SqliteStore, collection_id: &str, n: usize) {
    use super::sql::Conn;
    let offset = u64::try_from(n / 2).unwrap_or(0);
    let mut conn = store.pool().acquire().await.unwrap();
    let c: &mut ConnOf<SqliteStore> = &mut conn;
    println!("\n### Collection listing plans (SQLite, page at offset {offset})\n");
    println!("```");
    for (name, sql, args) in super::collection_listing::statements(collection_id, offset) {
        let plan: Vec<(i64, i64, i64, String)> = c
            .fetch_all(&format!("EXPLAIN QUERY PLAN {sql}"), args)
            .await
            .unwrap();
        for (_, _, _, step) in plan {
            println!("{name}: {step}");
        }
    }
    println!("```");
}
