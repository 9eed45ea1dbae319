//! `dataerai lineage`: the tree up from a figure to its raw data, down from
//! the raw data, an asset met twice shown once then `(see above)`, `--depth`,
//! `--type`, `--json` (the server's answer) and a refused depth.

mod common;

use common::fresh_user;

#[test]
fn lineage_is_drawn_as_a_tree_both_ways() {
    let (_server, user, work) = fresh_user("lin@example.org");
    let ids = user.upload_titled(work.path(), &["Raw scan", "Fit", "Figure"], &[]);
    let (raw, fit, fig) = (&ids[0], &ids[1], &ids[2]);
    user.run_ok(&["link", fit, raw, "--type", "derived_from"]);
    user.run_ok(&["link", fig, fit, "--type", "derived_from"]);
    user.run_ok(&["link", fig, raw, "--type", "uses"]);

    let up = user.run_ok(&["lineage", fig]);
    let expected = format!(
        "{fig}  Figure\n\
         ├── derived_from  {fit}  Fit\n\
         │   └── derived_from  {raw}  Raw scan\n\
         └── uses  {raw}  Raw scan  (see above)\n"
    );
    assert_eq!(up, expected);

    let down = user.run_ok(&["lineage", raw, "--down"]);
    assert!(down.starts_with(&format!("{raw}  Raw scan\n")), "{down}");
    assert!(
        down.contains(&format!("derived_from  {fit}  Fit")),
        "{down}"
    );
    assert!(down.contains(&format!("uses  {fig}  Figure")), "{down}");

    let near = user.run_ok(&["lineage", fig, "--depth", "1", "--type", "derived_from"]);
    assert_eq!(
        near,
        format!("{fig}  Figure\n└── derived_from  {fit}  Fit\n")
    );
    let both = user.run_ok(&["lineage", fit, "--both"]);
    assert!(
        both.contains("origins (up):") && both.contains("derived (down):"),
        "{both}"
    );

    let json = user.run_json(&["lineage", fig]);
    assert_eq!(json["root"], fig.as_str());
    assert_eq!(json["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(json["edges"].as_array().unwrap().len(), 3);
    assert_eq!(json["truncated"], false);

    let err = user.run_err(&["lineage", fig, "--depth", "99"]);
    assert!(err.contains("depth"), "{err}");
}
