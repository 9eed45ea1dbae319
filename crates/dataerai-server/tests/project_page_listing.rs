//! The project page's asset list, read from the store's collection listing:
//! every page of a collection larger than a search counts exactly (10,000)
//! reachable, with the exact total; the same assets in the same order as a
//! search for the collection; the order following edits; and nothing of it
//! for someone outside the project.

mod common;

use common::*;
use dataerai_proto::api::UploadFileSpec;
use dataerai_store::meta::{MetadataStore, NewAsset, NewUpload, UploadTarget};
use dataerai_store::{PgStore, SqliteStore};
use reqwest::StatusCode;
use serde_json::json;

const PW: &str = "a long enough password";

/// The asset ids of a page's asset table, in order.
fn listed(body: &str) -> Vec<String> {
    let table = body
        .split_once("<table class=\"assets\">")
        .map_or("", |(_, t)| t);
    table
        .split("<a href=\"/assets/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or("").to_string())
        .collect()
}

/// The metadata store a server on `data_dir` uses: SQLite in its data
/// directory, or the PostgreSQL database the scale-out stage names.
async fn server_store(data_dir: &std::path::Path) -> Box<dyn MetadataStore> {
    let args = dataerai_testkit::backend_args(data_dir);
    match args.iter().position(|a| a == "--database-url") {
        Some(i) => Box::new(PgStore::open(&args[i + 1]).await.unwrap()),
        None => Box::new(
            SqliteStore::open(&data_dir.join("dataerai.db"))
                .await
                .unwrap(),
        ),
    }
}

/// 10,001 assets (one more than a search counts exactly): the first made is
/// alone on the last page, and every page up to it is linked.
#[tokio::test]
async fn every_page_of_a_large_collection_is_reachable() {
    const N: usize = 10_001;
    let dir = tempfile::tempdir().unwrap();
    let user_id = make_user_with_password(dir.path(), "alice@lab.org", PW, false);
    let (project_id, first) = {
        // Loaded through the store the server will use, in one write
        // transaction (the REST API would take a request per asset).
        let store = server_store(dir.path()).await;
        let p = store
            .create_project("Big", "", &user_id, 1 << 40)
            .await
            .unwrap();
        let asset = |title: String| NewAsset::in_root(&p, &user_id, &title);
        let first = store
            .create_asset(asset("The very first".into()))
            .await
            .unwrap()
            .asset_id;
        let items = (1..N)
            .map(|i| NewUpload {
                content_id: None,
                target: UploadTarget::NewAsset(asset(format!("scan {i:05}"))),
                user_id: user_id.clone(),
                chunk_size: 1 << 20,
                files: vec![UploadFileSpec {
                    name: "f.bin".into(),
                    size: 1,
                    checksum: None,
                }],
            })
            .collect();
        let made = store.create_uploads(items).await.unwrap();
        assert!(made.iter().all(Result::is_ok));
        (p.project_id, first)
    };
    let server = TestServer::start(dir.path());
    let mut alice = Browser::new(&server.base);
    let signed = alice.sign_in("alice@lab.org", PW).await;
    assert!(signed.status.is_redirection(), "{}", signed.body);

    let base = format!("/projects/{project_id}");
    let page = alice.get(&base).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains("(10001)"),
        "the exact total: {}",
        page.body
    );
    assert!(page.body.contains("Page 1 of 401"), "{}", page.body);
    assert_eq!(listed(&page.body).len(), 25);

    let next_to_last = alice.get(&format!("{base}?page=400")).await;
    assert_eq!(next_to_last.status, StatusCode::OK);
    assert!(next_to_last.body.contains("Page 400 of 401"));
    assert!(
        next_to_last.body.contains("rel=\"next\""),
        "{}",
        next_to_last.body
    );
    assert_eq!(listed(&next_to_last.body).len(), 25);

    let last = alice.get(&format!("{base}?page=401")).await;
    assert_eq!(last.status, StatusCode::OK);
    assert!(last.body.contains("Page 401 of 401"), "{}", last.body);
    assert!(!last.body.contains("rel=\"next\""));
    assert_eq!(listed(&last.body), vec![first.clone()]);
    // Oldest first, it leads the first page.
    let oldest = alice.get(&format!("{base}?sort=created")).await;
    assert_eq!(listed(&oldest.body)[0], first);
    // By title (byte order: capitals first) it leads, and ends the
    // descending order alone on the last page.
    let by_title = alice.get(&format!("{base}?sort=title")).await;
    assert_eq!(listed(&by_title.body)[0], first);
    let by_title = alice.get(&format!("{base}?sort=-title&page=401")).await;
    assert_eq!(listed(&by_title.body), vec![first]);
    server.stop();
}

/// A project of six assets with content of distinct sizes, titles and
/// (some) record types, in its root collection; another asset in a
/// sub-collection. Owner alice, viewer bob, outsider carol.
struct World {
    lab: Lab,
    project: String,
    root: String,
    ids: Vec<String>,
}

async fn world() -> (World, [User; 3]) {
    let (lab, users) = Lab::start(["alice@lab.org", "bob@lab.org", "carol@lab.org"]);
    for email in ["alice@lab.org", "bob@lab.org", "carol@lab.org"] {
        let out = admin_stdin(lab.path(), &["set-password", email], &format!("{PW}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let [alice, _, _] = &users;
    let p = created(
        alice
            .api
            .post("/api/v1/projects", json!({"name": "Beamline 7"}))
            .await,
    );
    let project = p["project_id"].as_str().unwrap().to_string();
    let root = p["root_collection_id"].as_str().unwrap().to_string();
    let (s, v) = alice.api.set_role(&project, "bob@lab.org", "viewer").await;
    assert!(s.is_success(), "{v}");
    let sub = created(
        alice
            .api
            .post(
                &format!("/api/v1/projects/{project}/collections"),
                json!({"name": "Run 42"}),
            )
            .await,
    )["collection_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ids = Vec::new();
    for (title, record_type, size) in [
        ("Drift map", Some("analysis"), 300),
        ("beam profile", None, 100),
        ("Calibration", Some("raw_data"), 500),
        ("Apertures", Some("analysis"), 200),
        ("exposure log", Some("raw_data"), 400),
        ("Bright field", None, 600),
    ] {
        let a = alice
            .api
            .new_asset(
                json!({"title": title, "owner_type": "project", "owner_id": project,
                              "record_type": record_type}),
            )
            .await;
        alice
            .api
            .upload(&a, &[("data.bin", &data(size, 7))], 1024)
            .await;
        ids.push(a);
    }
    alice
        .api
        .new_asset(
            json!({"title": "Elsewhere", "owner_type": "project", "owner_id": project,
                          "collection_id": sub}),
        )
        .await;
    (
        World {
            lab,
            project,
            root,
            ids,
        },
        users,
    )
}

/// Every sort the page offers lists what a search for the collection
/// finds, in the same order, a page at a time; the order follows a new
/// title and a new version's size.
#[tokio::test]
async fn the_page_lists_a_collection_as_a_search_for_it_does() {
    let (w, [alice_api, _, _]) = world().await;
    let mut alice = w.lab.browser("alice@lab.org", PW).await;
    let base = format!("/projects/{}", w.project);
    let sorts = [
        "", "-created", "created", "title", "-title", "-size", "size", "type", "-type",
    ];
    for sort in sorts {
        let page = alice.get(&format!("{base}?sort={sort}")).await;
        assert_eq!(page.status, StatusCode::OK, "{sort}: {}", page.body);
        assert!(page.body.contains("(6)"), "{sort}");
        let search = alice
            .get(&format!("/search?q=collection%3A{}&sort={sort}", w.root))
            .await;
        assert_eq!(search.status, StatusCode::OK, "{sort}: {}", search.body);
        assert_eq!(listed(&page.body).len(), 6, "{sort}");
        assert_eq!(listed(&page.body), listed(&search.body), "sort={sort}");
    }
    // Titles in byte order (capitals first), sizes, types (untyped last,
    // the newest first within a type).
    let ids = &w.ids;
    let expect = |idx: &[usize]| idx.iter().map(|&i| ids[i].clone()).collect::<Vec<_>>();
    for (sort, order) in [
        ("title", [3, 5, 2, 0, 1, 4]),
        ("-size", [5, 2, 4, 0, 3, 1]),
        ("type", [3, 0, 4, 2, 5, 1]),
    ] {
        let page = alice.get(&format!("{base}?sort={sort}")).await;
        assert_eq!(listed(&page.body), expect(&order), "{sort}");
    }
    // A page past the end answers, empty.
    let second = alice.get(&format!("{base}?page=2")).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(listed(&second.body).is_empty());

    // A new title and a new, larger version reorder the list.
    let (s, v) = alice_api
        .api
        .patch(
            &format!("/api/v1/assets/{}", ids[4]),
            json!({"title": "AAA first"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let by_title = alice.get(&format!("{base}?sort=title")).await;
    assert_eq!(listed(&by_title.body)[0], ids[4]);
    alice_api
        .api
        .upload(&ids[1], &[("data.bin", &data(900, 3))], 1024)
        .await;
    let by_size = alice.get(&format!("{base}?sort=-size")).await;
    assert_eq!(listed(&by_size.body)[0], ids[1]);
}

/// Members read the list (a viewer too); an outsider gets the one 404 page
/// for every page and sort of it, as for an unknown project.
#[tokio::test]
async fn only_members_reach_the_list() {
    let (w, _users) = world().await;
    let base = format!("/projects/{}", w.project);
    let mut bob = w.lab.browser("bob@lab.org", PW).await;
    let page = bob.get(&format!("{base}?sort=size&page=1")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(listed(&page.body).len(), 6);

    let mut carol = w.lab.browser("carol@lab.org", PW).await;
    let unknown = carol
        .get("/projects/00000000-0000-0000-0000-000000000000?sort=size&page=1")
        .await;
    for path in [
        format!("{base}?sort=size&page=1"),
        format!("{base}?collection={}&sort=-title&page=2", w.root),
        base.clone(),
    ] {
        let page = carol.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(page.body, unknown.body, "{path}");
        assert!(listed(&page.body).is_empty());
        for id in &w.ids {
            assert!(!page.body.contains(id.as_str()));
        }
    }
}
