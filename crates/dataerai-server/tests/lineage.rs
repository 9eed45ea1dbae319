//! Relationships from either end and lineage over HTTP: directions, the depth
//! limit, the type filter, cycles, redaction of nodes the caller may not read
//! and refused query parameters. (Both databases: the store's conformance
//! scenario `relationships_both_ways_and_lineage`.)

mod common;

use common::*;
use serde_json::{json, Value};

async fn link(api: &Api, from: &str, to: &str, rel_type: &str) {
    created(
        api.post(
            &format!("/api/v1/assets/{from}/relationships"),
            json!({"to_asset_id": to, "type": rel_type}),
        )
        .await,
    );
}

/// `(id, depth)` of every node, sorted.
fn nodes(lineage: &Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = lineage["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes: {lineage}"))
        .iter()
        .map(|n| {
            (
                n["id"].as_str().unwrap().to_string(),
                n["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `(id, depth)` pairs as [`nodes`] lists them.
fn sorted(pairs: &[(&String, u64)]) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = pairs.iter().map(|(id, d)| (id.to_string(), *d)).collect();
    v.sort();
    v
}

/// The lineage of `asset` with query `q` (`""`: the defaults).
async fn lineage(api: &Api, asset: &str, q: &str) -> Value {
    let (s, lineage) = api
        .get(&format!("/api/v1/assets/{asset}/lineage?{q}"))
        .await;
    assert_eq!(s, 200, "{lineage}");
    lineage
}

/// The node of `id` in a lineage.
fn node<'a>(lineage: &'a Value, id: &str) -> &'a Value {
    item(&lineage["nodes"], "id", id)
}

/// Personal assets of `user` with these titles; answers their ids.
async fn personal_assets<const N: usize>(api: &Api, user: &str, titles: [&str; N]) -> [String; N] {
    let mut ids = Vec::new();
    for title in titles {
        ids.push(api.personal_asset(user, title).await);
    }
    ids.try_into().unwrap()
}

#[tokio::test]
async fn relationships_list_from_either_end_and_refuse_unknown_parameters() {
    let (_lab, [alice]) = Lab::start(["alice@x.org"]);
    let api = &alice.api;
    let [raw, fit, fig] = personal_assets(api, &alice.id, ["raw", "fit", "fig"]).await;
    link(api, &fit, &raw, "derived_from").await;
    link(api, &fig, &fit, "derived_from").await;

    let (s, out) = api
        .get(&format!("/api/v1/assets/{fit}/relationships"))
        .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["total"], 1);
    assert_eq!(out["items"][0]["direction"], "out");
    assert_eq!(out["items"][0]["related_asset"]["id"], raw.as_str());
    let (_, inc) = api
        .get(&format!("/api/v1/assets/{fit}/relationships?direction=in"))
        .await;
    assert_eq!(inc["total"], 1, "{inc}");
    assert_eq!(inc["items"][0]["direction"], "in");
    assert_eq!(inc["items"][0]["related_asset"]["id"], fig.as_str());
    assert_eq!(inc["items"][0]["related_asset"]["title"], "fig");
    let (_, both) = api
        .get(&format!(
            "/api/v1/assets/{fit}/relationships?direction=both&limit=1&offset=1"
        ))
        .await;
    assert_eq!(page_counts(&both), (Some(2), 1));

    api.assert_queries_refused(
        &format!("/api/v1/assets/{fit}/relationships"),
        &["direction=sideways", "dir=in", "limit=x"],
    )
    .await;
}

#[tokio::test]
async fn lineage_walks_up_and_down_bounded_filtered_and_through_cycles() {
    let (_lab, [alice]) = Lab::start(["alice@x.org"]);
    let api = &alice.api;
    let titles = ["raw scan", "fit", "figure", "config"];
    let [raw, fit, fig, cfg] = personal_assets(api, &alice.id, titles).await;
    link(api, &fit, &raw, "derived_from").await;
    link(api, &fig, &fit, "derived_from").await;
    link(api, &fit, &cfg, "configured_by").await;

    // Up from the figure reaches the raw scan; the default direction is up.
    let up = lineage(api, &fig, "").await;
    assert_eq!(up["root"], fig.as_str());
    assert_eq!(
        nodes(&up),
        sorted(&[(&fig, 0), (&fit, 1), (&raw, 2), (&cfg, 2)])
    );
    assert_eq!(up["edges"].as_array().unwrap().len(), 3);
    assert_eq!(up["truncated"], false);
    assert_eq!(node(&up, &raw)["title"], "raw scan");
    assert_eq!(node(&up, &raw)["redacted"], false);
    let edge = up["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["from_asset_id"] == fit.as_str() && e["to_asset_id"] == raw.as_str())
        .unwrap();
    assert_eq!(edge["type"], "derived_from");

    // Down from the raw scan reaches the figure.
    let down = lineage(api, &raw, "direction=down").await;
    assert_eq!(nodes(&down), sorted(&[(&raw, 0), (&fit, 1), (&fig, 2)]));
    // Depth and type bound the walk; types repeat or come comma-separated.
    let near = lineage(api, &fig, "depth=1").await;
    assert_eq!(nodes(&near), sorted(&[(&fig, 0), (&fit, 1)]));
    let typed = lineage(api, &fig, "type=derived_from").await;
    assert_eq!(nodes(&typed), sorted(&[(&fig, 0), (&fit, 1), (&raw, 2)]));
    for q in [
        "type=derived_from&type=configured_by",
        "type=derived_from,configured_by",
    ] {
        let all = lineage(api, &fig, q).await;
        assert_eq!(all["nodes"].as_array().unwrap().len(), 4, "{q}: {all}");
    }
    let both = lineage(api, &fit, "direction=both").await;
    assert_eq!(both["nodes"].as_array().unwrap().len(), 4, "{both}");

    // A cycle terminates, every edge listed once.
    link(api, &raw, &fig, "cites").await;
    let round = lineage(api, &fig, "direction=both").await;
    assert_eq!(round["edges"].as_array().unwrap().len(), 4, "{round}");
    assert_eq!(round["nodes"].as_array().unwrap().len(), 4, "{round}");

    api.assert_queries_refused(
        &format!("/api/v1/assets/{fig}/lineage"),
        &[
            "depth=21",
            "depth=0",
            "depth=x",
            "direction=sideways",
            "type=",
            "levels=3",
        ],
    )
    .await;
}

#[tokio::test]
async fn lineage_redacts_nodes_the_caller_cannot_read() {
    let (_lab, [alice, bob, carol]) = Lab::start(["alice@x.org", "bob@x.org", "carol@x.org"]);
    let project = alice.api.create_project("Lab").await;
    let (s, _) = alice.api.set_role(&project, "bob@x.org", "member").await;
    assert!(s.is_success());
    // raw (project) ← fit (Alice's own, Bob cannot read it) ← fig (project).
    let raw = alice.api.project_asset(&project, "raw").await;
    let fit = alice.api.personal_asset(&alice.id, "private fit").await;
    let fig = alice.api.project_asset(&project, "fig").await;
    link(&alice.api, &fit, &raw, "derived_from").await;
    link(&alice.api, &fig, &fit, "derived_from").await;

    let up = lineage(&bob.api, &fig, "").await;
    assert_eq!(nodes(&up), sorted(&[(&fig, 0), (&fit, 1), (&raw, 2)]));
    let hidden = node(&up, &fit);
    assert_eq!(hidden["redacted"], true, "{hidden}");
    assert!(
        hidden.get("title").is_none() && hidden.get("owner_id").is_none(),
        "{hidden}"
    );
    assert!(!up.to_string().contains("private fit"), "{up}");
    assert_eq!(node(&up, &raw)["title"], "raw");

    // Relationships pointing at a readable asset from an unreadable one: id only.
    let (_, inc) = bob
        .api
        .get(&format!("/api/v1/assets/{raw}/relationships?direction=in"))
        .await;
    assert_eq!(
        inc["items"][0]["related_asset"],
        json!({"id": fit}),
        "{inc}"
    );

    // The root itself must be readable: an outsider gets the 404 of an unknown id.
    assert_err(
        &carol
            .api
            .get(&format!("/api/v1/assets/{fig}/lineage"))
            .await,
        NOT_FOUND,
    );
    assert_err(
        &bob.api.get(&format!("/api/v1/assets/{fit}/lineage")).await,
        NOT_FOUND,
    );
}
