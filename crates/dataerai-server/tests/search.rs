//! `GET /api/v1/search` over HTTP: permission filtering, paging by cursor,
//! facets, record types set at creation and by PATCH, and refusals that name
//! the position of what is wrong. (The query language's semantics on both
//! databases are the store's conformance scenario `search_matches_the_same_assets`.)

mod common;

use common::*;
use serde_json::{json, Value};

fn titles(page: &Value) -> Vec<&str> {
    item_strs(page, "title")
}

#[tokio::test]
async fn search_finds_what_the_caller_may_read_page_by_page() {
    let (_lab, [alice, bob]) = Lab::start(["alice@x.org", "bob@x.org"]);
    let project = alice.api.create_project("Lab").await;
    for (i, title) in ["Scan one", "Scan two", "Scan three"].iter().enumerate() {
        let body = json!({
            "title": title, "owner_type": "project", "owner_id": project,
            "tags": ["tem"], "record_type": "raw_data", "metadata": {"run": i}
        });
        created(alice.api.post("/api/v1/assets", body).await);
    }
    let fit = created(
        alice
            .api
            .post(
                "/api/v1/assets",
                json!({"title": "Scan fit", "owner_type": "user", "owner_id": alice.id, "record_type": "analysis"}),
            )
            .await,
    );
    assert_eq!(fit["record_type"], "analysis");
    bob.personal_asset("Scan of bob").await;

    // Alice sees her four, never Bob's.
    let (status, page) = alice
        .api
        .get("/api/v1/search?q=scan&sort=title&limit=3")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 4);
    // An exact total (under the count cap) carries no lower-bound flag.
    assert!(page.get("total_is_lower_bound").is_none(), "{page}");
    assert_eq!(titles(&page), ["Scan fit", "Scan one", "Scan three"]);
    let facets = &page["facets"];
    assert_eq!(facets["tags"], json!([{"value": "tem", "count": 3}]));
    assert_eq!(
        facets["record_types"][0],
        json!({"value": "raw_data", "count": 3})
    );
    assert_eq!(facets["projects"], json!([{"value": project, "count": 3}]));
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, last) = alice
        .api
        .get(&format!(
            "/api/v1/search?q=scan&sort=title&limit=3&cursor={cursor}&facets=false"
        ))
        .await;
    assert_eq!(titles(&last), ["Scan two"]);
    assert!(
        last.get("next_cursor").is_none() && last.get("facets").is_none(),
        "{last}"
    );

    // Typed metadata, record types and PATCH are searchable at once.
    let (_, page) = alice
        .api
        .get("/api/v1/search?q=type:raw_data%20md.run%3E%3D1")
        .await;
    assert_eq!(page["total"], 2, "{page}");
    let id = fit["asset_id"].as_str().unwrap();
    let (s, _) = alice
        .api
        .update_asset(id, json!({"record_type": "figure"}))
        .await;
    assert_eq!(s, 200);
    let (_, page) = alice.api.get("/api/v1/search?q=type:figure").await;
    assert_eq!(titles(&page), ["Scan fit"]);

    // Bob sees his own only; joining the project shows him its assets.
    let (_, page) = bob.api.get("/api/v1/search?q=scan").await;
    assert_eq!(titles(&page), ["Scan of bob"]);
    alice.api.set_role(&project, "bob@x.org", "viewer").await;
    let (_, page) = bob.api.get("/api/v1/search?q=tag:tem").await;
    assert_eq!(page["total"], 3);
}

#[tokio::test]
async fn malformed_searches_are_refused_naming_the_position() {
    let (_lab, [alice]) = Lab::start(["alice@x.org"]);
    let cases = [
        ("q=scan%20(tag:x", "position 6"),
        ("q=colour:red", "not a search field"),
        ("q=size%3E1XB", "size unit"),
        ("sort=colour", "unknown sort"),
        ("limit=0", "limit"),
        ("cursor=12", "cursor"),
        ("query=x", "query"),
    ];
    for (params, words) in cases {
        let reply = alice.api.get(&format!("/api/v1/search?{params}")).await;
        assert_err_for(params, &reply, INVALID_INPUT);
        let message = reply.1["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(words),
            "{params}: {words:?} not in {message}"
        );
    }
    let reply = alice
        .api
        .post("/api/v1/assets", json!({"title": "t", "owner_type": "user", "owner_id": alice.id, "record_type": "x".repeat(65)}))
        .await;
    assert_err_mentions(&reply, INVALID_INPUT, "record_type");
}
