//! `dataerai search`: a page with a cursor hint, `--all`, `--json`, the
//! record type set with `upload --record-type` / `metadata set --record-type`,
//! and a malformed query as a clear error with a non-zero exit.

mod common;

use common::fresh_user;

#[test]
fn search_pages_all_json_and_errors() {
    let (_server, user, work) = fresh_user("sam@example.org");
    let titles = ["Scan alpha", "Scan beta", "Scan gamma"];
    let extra = ["--record-type", "raw_data", "--tag", "beamtime"];
    let ids = user.upload_titled(work.path(), &titles, &extra);
    user.run_ok(&["metadata", "set", &ids[2], "--record-type", "figure"]);

    let human = user.run_ok(&[
        "search",
        "scan type:raw_data",
        "--limit",
        "1",
        "--sort",
        "title",
    ]);
    assert!(
        human.contains("Scan alpha") && human.contains("raw_data"),
        "{human}"
    );
    assert!(
        human.contains("(1 of 2 matches; next page: --cursor"),
        "{human}"
    );
    let all = user.run_ok(&[
        "search",
        "tag:beamtime",
        "--all",
        "--limit",
        "1",
        "--sort",
        "-title",
    ]);
    let order: Vec<usize> = ["Scan gamma", "Scan beta", "Scan alpha"]
        .iter()
        .map(|t| all.find(t).unwrap_or_else(|| panic!("{t} missing: {all}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{all}");
    assert!(all.contains("(3 matches)"), "{all}");
    let json = user.run_json(&["search", "type:figure"]);
    assert_eq!(json["total"], 1);
    assert_eq!(json["items"][0]["asset_id"], ids[2].as_str());
    assert_eq!(json["facets"]["record_types"][0]["value"], "figure");

    let err = user.run_err(&["search", "scan (tag:x"]);
    assert!(
        err.contains("ERR_INVALID_INPUT") || err.contains("position 6"),
        "{err}"
    );
    assert!(err.contains("position 6"), "{err}");
}
