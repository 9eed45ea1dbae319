//! Provenance export over HTTP: an asset's lineage as PROV-JSON (shape,
//! redaction of assets the caller may not read, which agents show an email)
//! and RO-Crate metadata of a collection tree or a search (layout, files,
//! relationships, only readable assets, the size cap).

mod common;

use common::*;
use serde_json::{json, Value};

async fn link(api: &Api, from: &str, to: &str, body: Value) {
    let mut body = body;
    body["to_asset_id"] = json!(to);
    created(
        api.post(&format!("/api/v1/assets/{from}/relationships"), body)
            .await,
    );
}

/// Whether a PROV-JSON document holds the asset `id` as an entity.
fn has_entity(doc: &Value, id: &str) -> bool {
    doc["entity"].get(format!("dataerai:{id}")).is_some()
}

async fn asset_in(api: &Api, project: &str, collection: &str, title: &str, extra: Value) -> String {
    let mut body = json!({"title": title, "owner_type": "project", "owner_id": project,
                          "collection_id": collection});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    api.new_asset(body).await
}

async fn root_collection(api: &Api, project: &str) -> String {
    let (s, p) = api.get(&format!("/api/v1/projects/{project}")).await;
    assert_eq!(s, 200, "{p}");
    p["root_collection_id"].as_str().unwrap().to_string()
}

async fn collection(api: &Api, project: &str, name: &str, parent: &str) -> String {
    let c = created(
        api.post(
            &format!("/api/v1/projects/{project}/collections"),
            json!({"name": name, "parent_id": parent}),
        )
        .await,
    );
    c["collection_id"].as_str().unwrap().to_string()
}

fn entity<'v>(doc: &'v Value, id: &str) -> &'v Value {
    doc["@graph"]
        .as_array()
        .unwrap_or_else(|| panic!("no @graph: {doc}"))
        .iter()
        .find(|e| e["@id"] == id)
        .unwrap_or_else(|| panic!("no entity {id} in {doc:#}"))
}

fn datasets_with_identifier<'v>(doc: &'v Value, id: &str) -> Vec<&'v Value> {
    doc["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["@type"] == "Dataset" && e["identifier"] == id)
        .collect()
}

#[tokio::test]
async fn prov_json_of_a_lineage_redacts_what_the_caller_cannot_read_and_hides_strangers_emails() {
    let (lab, [alice, bob, carol]) = Lab::start(["alice@lab.org", "bob@lab.org", "carol@lab.org"]);
    let project = alice.api.create_project("Lab").await;
    for who in ["bob@lab.org", "carol@lab.org"] {
        let (s, v) = alice.api.set_role(&project, who, "member").await;
        assert!(s.is_success(), "{v}");
    }
    let raw = alice.api.project_asset(&project, "raw scan").await;
    let scan = data(3000, 7);
    let version = alice.api.upload(&raw, &[("scan.bin", &scan)], 1024).await;
    let calib = carol.api.project_asset(&project, "calibration").await;
    let fit = bob.api.project_asset(&project, "peak fit").await;
    link(
        &bob.api,
        &fit,
        &raw,
        json!({"type": "derived_from", "analysis_mode": "non_destructive",
               "qualifiers": {"note": "fitted peaks", "time": "2026-12-06T10:00:00Z",
                              "temperature_k": 4.2}}),
    )
    .await;
    link(&bob.api, &fit, &calib, json!({"type": "calibrated_with"})).await;
    // Alice's own notes, derived from the fit: Bob may not read them.
    let notes = alice.api.personal_asset(&alice.id, "private notes").await;
    link(
        &alice.api,
        &notes,
        &fit,
        json!({"type": "analysis_of",
                                          "qualifiers": {"note": "secret remark"}}),
    )
    .await;
    // Carol leaves the project: Bob no longer shares one with her.
    let (s, v) = alice
        .api
        .delete(&format!("/api/v1/projects/{project}/members/{}", carol.id))
        .await;
    assert!(s.is_success(), "{v}");

    let reply = bob
        .api
        .download(&format!("/api/v1/assets/{fit}/provenance"), None)
        .await;
    assert_eq!(reply.status(), 200);
    assert!(reply.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = reply.json().await.unwrap();
    let text = doc.to_string();
    assert_eq!(
        doc["prefix"]["dataerai"],
        format!("{}/api/v1/assets/", lab.server.base),
        "{doc:#}"
    );
    let raw_entity = &doc["entity"][format!("dataerai:{raw}")];
    assert_eq!(raw_entity["prov:label"], "raw scan", "{doc:#}");
    assert_eq!(raw_entity["dataerai_term:contentId"], version["content_id"]);
    assert_eq!(
        raw_entity["dataerai_term:checksum"],
        format!("blake3:{}", hex_blake3(&scan))
    );
    let derivations = doc["wasDerivedFrom"].as_object().unwrap();
    assert_eq!(derivations.len(), 3, "{doc:#}");
    let from_raw = derivations
        .values()
        .find(|d| d["prov:usedEntity"] == format!("dataerai:{raw}"))
        .unwrap();
    assert_eq!(from_raw["prov:generatedEntity"], format!("dataerai:{fit}"));
    assert_eq!(from_raw["dataerai_term:relationshipType"], "derived_from");
    assert_eq!(from_raw["dataerai_term:analysisMode"], "non_destructive");
    assert_eq!(from_raw["dataerai_term:qualifierNote"], "fitted peaks");
    assert_eq!(
        from_raw["dataerai_term:qualifierTime"]["type"],
        "xsd:dateTime"
    );
    // The notes Bob may not read: their id only, no title, no qualifier note.
    assert_eq!(doc["entity"][format!("dataerai:{notes}")], json!({}));
    assert!(
        !text.contains("private notes") && !text.contains("secret remark"),
        "{text}"
    );
    // Agents: Bob himself and Alice (a shared project) by email; Carol by id only.
    let agents = doc["agent"].as_object().unwrap();
    assert_eq!(
        agents[&format!("dataerai_user:{}", alice.id)]["dataerai_term:email"],
        "alice@lab.org"
    );
    assert_eq!(
        agents[&format!("dataerai_user:{}", bob.id)]["dataerai_term:email"],
        "bob@lab.org"
    );
    assert!(agents.contains_key(&format!("dataerai_user:{}", carol.id)));
    assert!(!text.contains("carol@lab.org"), "{text}");
    let attributions: Vec<&Value> = doc["wasAttributedTo"]
        .as_object()
        .unwrap()
        .values()
        .collect();
    assert!(
        attributions.contains(&&json!({"prov:entity": format!("dataerai:{calib}"),
                                           "prov:agent": format!("dataerai_user:{}", carol.id)}))
    );

    // Up only: the notes (derived from the fit) are not there; depth 1 from the notes
    // (Alice reads them) reaches the fit but not the raw scan.
    let (_, up) = bob
        .api
        .get(&format!("/api/v1/assets/{fit}/provenance?direction=up"))
        .await;
    assert!(!has_entity(&up, &notes), "{up:#}");
    let (_, near) = alice
        .api
        .get(&format!("/api/v1/assets/{notes}/provenance?depth=1"))
        .await;
    assert!(has_entity(&near, &fit), "{near:#}");
    assert!(!has_entity(&near, &raw), "{near:#}");

    bob.api
        .assert_queries_refused(
            &format!("/api/v1/assets/{fit}/provenance"),
            &[
                "direction=sideways",
                "depth=0",
                "depth=21",
                "type=derived_from",
            ],
        )
        .await;
    // Carol left: the asset is as unknown to her as any other id.
    let reply = carol
        .api
        .get(&format!("/api/v1/assets/{fit}/provenance"))
        .await;
    assert_err(&reply, NOT_FOUND);
}

#[tokio::test]
async fn ro_crate_of_a_collection_tree_or_a_search_holds_readable_assets_in_folders() {
    let (_lab, [alice, bob]) = Lab::start(["alice@lab.org", "bob@lab.org"]);
    let project = alice.api.create_project("Beam time").await;
    let root = root_collection(&alice.api, &project).await;
    let raw_c = collection(&alice.api, &project, "raw", &root).await;
    let day = collection(&alice.api, &project, "day 1", &raw_c).await;
    let frame = asset_in(
        &alice.api,
        &project,
        &day,
        "Frame 1",
        json!({"tags": ["tem"], "record_type": "raw_data", "description": "a frame",
               "metadata": {"voltage_kv": 200}}),
    )
    .await;
    let bytes = data(2000, 3);
    alice
        .api
        .upload(&frame, &[("frame.tif", &bytes)], 1024)
        .await;
    let fit = asset_in(&alice.api, &project, &root, "fit", json!({})).await;
    alice.api.upload(&fit, &[("fit.json", b"{}")], 1024).await;
    link(&alice.api, &fit, &frame, json!({"type": "derived_from"})).await;
    let elsewhere = alice.api.create_project("Other").await;
    alice
        .api
        .project_asset(&elsewhere, "not in the crate")
        .await;

    let (s, doc) = alice
        .api
        .get(&format!("/api/v1/ro-crate?collection_id={root}"))
        .await;
    assert_eq!(s, 200, "{doc}");
    let meta = entity(&doc, "ro-crate-metadata.json");
    assert_eq!(meta["conformsTo"]["@id"], "https://w3id.org/ro/crate/1.1");
    let crate_root = entity(&doc, "./");
    assert!(crate_root["datePublished"].is_string() && crate_root.get("license").is_none());
    assert!(crate_root["identifier"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/api/v1/ro-crate?collection_id={root}")));
    let frame_folder = format!("raw/day_1/Frame_1-{}/", &frame[..8]);
    let fit_folder = format!("fit-{}/", &fit[..8]);
    let mut top: Vec<String> = crate_root["hasPart"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["@id"].as_str().unwrap().to_string())
        .collect();
    top.sort();
    assert_eq!(top, vec![fit_folder.clone(), "raw/".to_string()]);
    assert_eq!(entity(&doc, "raw/day_1/")["identifier"], day.as_str());
    let ds = entity(&doc, &frame_folder);
    assert_eq!(ds["identifier"], frame.as_str());
    assert_eq!(ds["additionalType"], "raw_data");
    assert_eq!(ds["keywords"], json!(["tem"]));
    let file = entity(&doc, &format!("{frame_folder}frame.tif"));
    assert_eq!(file["contentSize"], "2000");
    assert_eq!(file["encodingFormat"], "image/tiff");
    let sum = entity(&doc, file["identifier"]["@id"].as_str().unwrap());
    assert_eq!(sum["value"], format!("blake3:{}", hex_blake3(&bytes)));
    let fit_ds = entity(&doc, &fit_folder);
    assert_eq!(fit_ds["isBasedOn"], json!([{"@id": frame_folder}]));
    assert!(!doc.to_string().contains("not in the crate"));

    // A sub-collection: only what is below it; the link to the fit is left out.
    let (_, sub) = alice
        .api
        .get(&format!("/api/v1/ro-crate?collection_id={raw_c}"))
        .await;
    assert_eq!(datasets_with_identifier(&sub, &frame).len(), 1, "{sub:#}");
    assert!(datasets_with_identifier(&sub, &fit).is_empty());

    // Metadata only: files are their download URLs.
    let (_, remote) = alice
        .api
        .get(&format!(
            "/api/v1/ro-crate?collection_id={root}&include_data=false"
        ))
        .await;
    let remote_ds = entity(&remote, &frame_folder);
    assert!(remote_ds["hasPart"][0]["@id"]
        .as_str()
        .unwrap()
        .contains(&format!("/api/v1/assets/{frame}/contents/")));

    // A search: one folder per project, its collections below.
    let (s, found) = alice.api.get("/api/v1/ro-crate?q=tag:tem").await;
    assert_eq!(s, 200, "{found}");
    let in_search = datasets_with_identifier(&found, &frame);
    assert_eq!(in_search[0]["@id"], format!("Beam_time/{frame_folder}"));
    assert_eq!(entity(&found, "Beam_time/")["identifier"], project.as_str());

    // Bob reads none of it: the collection is unknown to him, a search finds only his own.
    let reply = bob
        .api
        .get(&format!("/api/v1/ro-crate?collection_id={root}"))
        .await;
    assert_err(&reply, NOT_FOUND);
    let mine = bob.api.personal_asset(&bob.id, "bob's own").await;
    let (_, his) = bob.api.get("/api/v1/ro-crate?q=").await;
    let ids: Vec<&str> = his["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["@type"] == "Dataset" && e.get("url").is_some())
        .map(|e| e["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.as_str()], "{his:#}");
    assert_eq!(
        entity(&his, &format!("personal/bob_s_own-{}/", &mine[..8]))["name"],
        "bob's own"
    );

    alice
        .api
        .assert_queries_refused(
            "/api/v1/ro-crate",
            &[
                "",
                &format!("collection_id={root}&q=tem"),
                &format!("collection_id={root}&depth=2"),
                "q=(unclosed",
            ],
        )
        .await;
}

#[tokio::test]
async fn a_crate_bigger_than_the_cap_is_refused_with_a_hint_to_narrow_it() {
    let (_lab, [alice]) = Lab::start_with(["alice@lab.org"], |b| b.faults("max_crate_assets=2"));
    for title in ["one", "two"] {
        alice.api.personal_asset(&alice.id, title).await;
    }
    let (s, doc) = alice.api.get("/api/v1/ro-crate?q=").await;
    assert_eq!(s, 200, "{doc}");
    alice.api.personal_asset(&alice.id, "three").await;
    let reply = alice.api.get("/api/v1/ro-crate?q=").await;
    assert_err_mentions(&reply, INVALID_INPUT, "narrow");
    let (s, doc) = alice.api.get("/api/v1/ro-crate?q=one").await;
    assert_eq!(s, 200, "{doc}");
}
