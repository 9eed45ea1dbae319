//! `dataerai export`: an asset's lineage as a PROV-JSON file (`ID --prov FILE`),
//! and an RO-Crate folder of a search (`--ro-crate DIR --query Q`) with the
//! files downloaded by the daemon, a re-run into the same crate, a refused
//! folder that holds something else, and a metadata-only crate (`--no-data`).

mod common;

use common::{asset_id, fresh_user, write_file};
use serde_json::Value;
use std::path::Path;

#[test]
fn export_writes_prov_json_and_ro_crate_folders() {
    let (_server, user, work) = fresh_user("export@example.org");
    let mut ids = Vec::new();
    for (i, title) in ["Raw scan", "Fit"].iter().enumerate() {
        let data = format!("{i},{}\n", "x".repeat(1000 * (i + 1)));
        let f = write_file(work.path(), &format!("f{i}.csv"), data);
        ids.push(asset_id(&user.upload_json(&f, title, &[])));
    }
    let (raw, fit) = (&ids[0], &ids[1]);
    user.run_ok(&["link", fit, raw, "--type", "derived_from"]);

    // PROV-JSON.
    let prov = work.path().join("fit.prov.json");
    let said = user.run_ok(&["export", fit, "--prov", prov.to_str().unwrap()]);
    assert!(said.contains("2 entities, 1 derivation,"), "{said}");
    let doc: Value = serde_json::from_slice(&std::fs::read(&prov).unwrap()).unwrap();
    let (_, derivation) = doc["wasDerivedFrom"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(
        derivation["prov:generatedEntity"],
        format!("dataerai:{fit}")
    );
    assert_eq!(derivation["prov:usedEntity"], format!("dataerai:{raw}"));
    assert_eq!(
        doc["entity"][format!("dataerai:{raw}")]["prov:label"],
        "Raw scan"
    );
    let json = user.run_json(&[
        "export",
        raw,
        "--prov",
        prov.to_str().unwrap(),
        "--depth",
        "1",
    ]);
    assert_eq!(json["entity_count"], 2);

    // An RO-Crate of a search, files downloaded through the daemon.
    let dest = work.path().join("crate");
    let said = user.run_ok(&crate_of_search(&dest, "owner:me", &[]));
    assert!(said.contains("2 assets"), "{said}");
    let meta = crate_metadata(&dest);
    assert_eq!(
        meta["@graph"][0]["conformsTo"]["@id"],
        "https://w3id.org/ro/crate/1.1"
    );
    for (i, (id, title)) in [(raw, "Raw_scan"), (fit, "Fit")].iter().enumerate() {
        let local = dest.join(format!("personal/{title}-{}/f{i}.csv", &id[..8]));
        assert_eq!(
            std::fs::read(&local).unwrap_or_else(|e| panic!("{}: {e}", local.display())),
            std::fs::read(work.path().join(format!("f{i}.csv"))).unwrap()
        );
    }
    // The same export again completes the crate; another one into it is refused.
    let again = user.run_json(&crate_of_search(&dest, "owner:me", &[]));
    assert_eq!(again["asset_count"], 2);
    let err = user.run_err(&crate_of_search(&dest, "Fit", &[]));
    assert!(err.contains("ERR_FILE_EXISTS"), "{err}");

    // Metadata only: nothing downloaded, files named by URL.
    let bare = work.path().join("bare");
    let json = user.run_json(&crate_of_search(&bare, "owner:me", &["--no-data"]));
    assert_eq!(json["transfers"].as_array().unwrap().len(), 0);
    let meta = crate_metadata(&bare);
    let files: Vec<&Value> = meta["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["@type"] == "File")
        .collect();
    assert_eq!(files.len(), 2);
    assert!(files
        .iter()
        .all(|f| f["@id"].as_str().unwrap().starts_with("http")));

    // Neither a collection nor a query: refused by the command line.
    let out = user.run(&["export", "--ro-crate", bare.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// `dataerai export --ro-crate DIR --query QUERY EXTRA…`.
fn crate_of_search<'a>(dir: &'a Path, query: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "export",
        "--ro-crate",
        dir.to_str().unwrap(),
        "--query",
        query,
    ];
    args.extend_from_slice(extra);
    args
}

/// The `ro-crate-metadata.json` of the crate in `dir`.
fn crate_metadata(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("ro-crate-metadata.json")).unwrap()).unwrap()
}
