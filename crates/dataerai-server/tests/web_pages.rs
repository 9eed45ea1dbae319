//! The data in a browser: the home, project, asset and search pages, signed
//! in through the form, for an owner, a viewer and an outsider (who gets the
//! same 404 page for an existing and an unknown id); and the REST API
//! accepting the browser session (GET with the cookie, writes only with the
//! session's CSRF token in `x-csrf-token`).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

const PW: &str = "a long enough password";

struct World {
    lab: Lab,
    project: String,
    raw: String,
    figure: String,
    secret: String,
    sub: String,
}

/// Owner alice (project "Beamline 7" with a sub-collection, two assets linked
/// by a relationship, one with content), viewer bob, outsider carol (whose
/// personal asset alice's figure points at).
async fn world() -> (World, [User; 3]) {
    let (lab, users) = Lab::start(["alice@lab.org", "bob@lab.org", "carol@lab.org"]);
    for email in ["alice@lab.org", "bob@lab.org", "carol@lab.org"] {
        set_password(lab.path(), email, PW);
    }
    let [alice, bob, carol] = &users;
    let project = created(
        alice
            .api
            .post(
                "/api/v1/projects",
                json!({"name": "Beamline 7", "description": "Diffraction runs of 2026"}),
            )
            .await,
    )["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = alice.api.set_role(&project, "bob@lab.org", "viewer").await;
    assert!(s.is_success(), "{v}");
    let sub = alice.api.create_collection(&project, "Run 42").await;
    let raw = alice
        .api
        .new_asset(
            json!({"title": "Scan <raw> 0001", "owner_type": "project", "owner_id": project,
                "record_type": "raw_data", "tags": ["calibrated", "bright field"],
                "alias": "scan-0001", "description": "First scan of the day",
                "metadata": {"beam": {"energy_kev": 12.4, "slits": [1, 2]}, "operator": "Ada"}}),
        )
        .await;
    alice
        .api
        .upload(&raw, &[("frames/a.bin", b"hello world")], 1024)
        .await;
    let figure = alice
        .api
        .new_asset(
            json!({"title": "Figure 3", "owner_type": "project", "owner_id": project,
                "record_type": "figure", "collection_id": sub}),
        )
        .await;
    let (s, v) = alice
        .api
        .relate(
            &figure,
            json!({"to_asset_id": raw, "type": "derived_from", "analysis_mode": "non_destructive",
                "qualifiers": {"step": "integration"}}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let secret = carol.api.personal_asset(&carol.id, "Carol's notes").await;
    // A link to alice's personal asset: bob (viewer) sees only its id, locked.
    let private = alice
        .api
        .personal_asset(&alice.id, "Alice's private notes")
        .await;
    let (s, v) = alice
        .api
        .relate(&raw, json!({"to_asset_id": private, "type": "uses"}))
        .await;
    assert!(s.is_success(), "{v}");
    let _ = bob;
    (
        World {
            lab,
            project,
            raw,
            figure,
            secret,
            sub,
        },
        users,
    )
}

#[tokio::test]
async fn the_pages_show_the_data_to_members_and_nothing_to_outsiders() {
    let (w, _users) = world().await;

    // Without a session every page sends to sign-in and back.
    let mut anon = Browser::new(&w.lab.server.base);
    let home = anon.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location.as_deref(), Some("/login?next=%2F"));
    let s = anon.get("/search?q=tag:x").await;
    assert_eq!(
        s.location.as_deref(),
        Some("/login?next=%2Fsearch%3Fq%3Dtag%3Ax")
    );
    // A project page comes back to the collection, sort and page it showed.
    let p = anon.get("/projects/p1?collection=c2&page=3").await;
    assert_eq!(
        p.location.as_deref(),
        Some("/login?next=%2Fprojects%2Fp1%3Fcollection%3Dc2%26page%3D3")
    );

    // Home: the project with role, count and usage; personal space; recent.
    let mut alice = w.lab.browser("alice@lab.org", PW).await;
    let home = alice.get("/").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    let b = &home.body;
    assert!(
        b.contains(&format!("href=\"/projects/{}\"", w.project)),
        "{b}"
    );
    assert!(b.contains("Beamline 7") && b.contains("Diffraction runs of 2026"));
    assert!(b.contains(">owner</span>"), "{b}");
    assert!(b.contains("2 assets"), "{b}");
    assert!(b.contains("11 B of "), "{b}");
    assert!(b.contains("Personal space"));
    assert!(b.contains("Recent uploads") && b.contains(&format!("/assets/{}", w.figure)));
    // The search box is in the header of every page; user strings are escaped.
    assert!(b.contains("action=\"/search\" role=\"search\""));
    assert!(b.contains("Scan &lt;raw&gt; 0001") && !b.contains("<raw>"));

    // Project: tree, assets of the selected collection, members, usage.
    let p = alice.get(&format!("/projects/{}", w.project)).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let b = &p.body;
    assert!(b.contains("<h1>Beamline 7</h1>"));
    assert!(
        b.contains("<details open") && b.contains("Run 42") && b.contains("1 inside"),
        "{b}"
    );
    assert!(b.contains(&format!("/assets/{}", w.raw)), "{b}");
    assert!(
        !b.contains(&format!("/assets/{}", w.figure)),
        "root only: {b}"
    );
    assert!(b.contains("raw_data") && b.contains("bright field"));
    assert!(b.contains("bob@lab.org") && b.contains(">viewer</span>"));
    let sub = alice
        .get(&format!(
            "/projects/{}?collection={}&sort=title",
            w.project, w.sub
        ))
        .await;
    sub.assert_says(StatusCode::OK, &format!("/assets/{}", w.figure));
    assert!(sub.body.contains("<option value=\"title\" selected>"));
    // A collection of another project is not found here.
    let foreign = alice
        .get(&format!("/projects/{}?collection=nope", w.project))
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);

    // Asset: fields, metadata table, files with checksum and link, relationships.
    let a = alice.get(&format!("/assets/{}", w.raw)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = &a.body;
    assert!(b.contains("First scan of the day") && b.contains("scan-0001"));
    assert!(b.contains("<th scope=\"row\">energy_kev</th>"), "{b}");
    assert!(b.contains("frames/a.bin") && b.contains("blake3:"));
    let href = b.find("/files/0\"").expect("a download link");
    let start = b[..href].rfind("href=\"").unwrap() + 6;
    let download = b[start..href + 8].to_string();
    assert!(b.contains("derived_from") && b.contains("← from") && b.contains("non_destructive"));
    assert!(b.contains(&format!("/assets/{}", w.figure)));
    // The download link works with the browser session alone.
    let file = alice.get(&download).await;
    assert_eq!(file.status, StatusCode::OK, "{download}: {}", file.body);
    assert_eq!(file.body, "hello world");

    // Search: results, count, facet chips that add to the query.
    let s = alice.get("/search?q=tag%3Acalibrated").await;
    s.assert_says(StatusCode::OK, "<strong>1</strong> asset matches");
    assert!(s.body.contains(&format!("/assets/{}", w.raw)));
    assert!(
        s.body
            .contains("href=\"/search?q=tag%3Acalibrated+type%3Araw_data\""),
        "{}",
        s.body
    );
    assert!(s.body.contains("value=\"tag:calibrated\""));
    let bad = alice.get("/search?q=colour%3Ablue").await;
    bad.assert_says(StatusCode::BAD_REQUEST, "not a search field");

    // The viewer sees the same project, read-only.
    let mut bob = w.lab.browser("bob@lab.org", PW).await;
    let p = bob.get(&format!("/projects/{}", w.project)).await;
    p.assert_says(
        StatusCode::OK,
        "Your role: <span class=\"badge role viewer\">viewer</span>",
    );
    let a = bob.get(&format!("/assets/{}", w.raw)).await;
    a.assert_says(StatusCode::OK, "(locked)");
    assert!(!a.body.contains("Alice&#39;s private notes") && !a.body.contains("private notes"));
    let mine = alice.get(&format!("/assets/{}", w.raw)).await;
    assert!(mine.body.contains("private notes") && !mine.body.contains("(locked)"));

    // The outsider: the one 404 page, for existing and unknown ids alike.
    let mut carol = w.lab.browser("carol@lab.org", PW).await;
    let unknown_project = carol
        .get("/projects/00000000-0000-0000-0000-000000000000")
        .await;
    let known_project = carol.get(&format!("/projects/{}", w.project)).await;
    let unknown_asset = carol
        .get("/assets/00000000-0000-0000-0000-000000000000")
        .await;
    let known_asset = carol.get(&format!("/assets/{}", w.raw)).await;
    for page in [
        &unknown_project,
        &known_project,
        &unknown_asset,
        &known_asset,
    ] {
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(!page.body.contains("Beamline") && !page.body.contains("Scan"));
    }
    assert_eq!(unknown_project.body, known_project.body);
    assert_eq!(unknown_asset.body, known_asset.body);
    let home = carol.get("/").await;
    assert!(!home.body.contains("Beamline 7"));
    assert!(home.body.contains(&format!("/assets/{}", w.secret)));
    let s = carol.get("/search?q=").await;
    assert!(
        s.body.contains("<strong>1</strong> asset matches"),
        "{}",
        s.body
    );
    // And alice cannot see carol's personal asset.
    assert_eq!(
        alice.get(&format!("/assets/{}", w.secret)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_api_accepts_the_browser_session_and_writes_need_the_csrf_header() {
    let (w, [alice, ..]) = world().await;
    let mut b = w.lab.browser("alice@lab.org", PW).await;
    let csrf = b.get("/tokens").await.csrf();
    let cookie: Vec<String> = b.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let cookie = cookie.join("; ");
    let client = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", w.lab.server.base);
    // GET /api/v1/me with the cookie, and what `with` adds.
    let get_me = |with: fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder| {
        with(client.get(url("/api/v1/me")).header("cookie", &cookie)).send()
    };

    // GET with the cookie alone.
    let me = get_me(|r| r).await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["email"], "alice@lab.org");

    // A write without the header is refused; with it, it is done.
    let patch = |token: Option<&str>| {
        let mut r = client
            .patch(url(&format!("/api/v1/assets/{}", w.raw)))
            .header("cookie", &cookie)
            .json(&json!({"title": "Renamed"}));
        if let Some(t) = token {
            r = r.header("x-csrf-token", t);
        }
        r
    };
    let refused = patch(None).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let wrong = patch(Some("wrong")).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let done = patch(Some(&csrf)).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::OK);

    // A cross-site request does not get the session.
    let cross = get_me(|r| r.header("sec-fetch-site", "cross-site"))
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::UNAUTHORIZED);

    // A bearer token wins over the cookie (a bad one is refused, not ignored).
    let bearer = get_me(|r| r.bearer_auth("dtr_pat_unknown")).await.unwrap();
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    let (s, me) = alice.api.get("/api/v1/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["email"], "alice@lab.org");

    // After signing out the cookie no longer works.
    b.submit("/logout", &csrf, &[]).await;
    let gone = get_me(|r| r).await.unwrap();
    assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
}

/// Posts the project page's member form: adds `email` with `role`, or
/// changes the role of a member.
async fn member_form(b: &mut Browser, page_of: &str, csrf: &str, email: &str, role: &str) -> Page {
    let fields = [("email", email), ("role", role)];
    b.submit(&format!("{page_of}/members"), csrf, &fields).await
}

/// Posts an asset page's delete form, confirmed.
async fn delete_confirmed(b: &mut Browser, asset_page: &str, csrf: &str) -> Page {
    b.submit(&format!("{asset_page}/delete"), csrf, &[("confirm", "yes")])
        .await
}

#[tokio::test]
async fn owners_manage_members_on_the_project_page_and_viewers_cannot() {
    let (w, _users) = world().await;
    let page_of = format!("/projects/{}", w.project);
    let mut alice = w.lab.browser("alice@lab.org", PW).await;
    let p = alice.get(&page_of).await;
    assert!(p.body.contains("Add a member"), "{}", p.body);
    let csrf = p.csrf();
    // Add carol as a member, then make her a viewer, then remove her.
    let added = member_form(&mut alice, &page_of, &csrf, "carol@lab.org", "member").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let p = alice.get(&page_of).await;
    assert!(p.body.contains("carol@lab.org"));
    let changed = member_form(&mut alice, &page_of, &csrf, "carol@lab.org", "viewer").await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    let mut carol = w.lab.browser("carol@lab.org", PW).await;
    let seen = carol.get(&page_of).await;
    assert!(
        seen.body
            .contains("badge role viewer\">viewer</span> · created"),
        "{}",
        seen.body
    );
    assert!(!seen.body.contains("Add a member"), "viewers get no forms");
    // A viewer's post is refused with the REST rule's message.
    let refused = member_form(&mut carol, &page_of, &seen.csrf(), "bob@lab.org", "owner").await;
    refused.assert_says(StatusCode::FORBIDDEN, "only owners and admins");
    // Without the CSRF token nothing happens.
    let forged = alice
        .post(&format!("{page_of}/members/x/remove"), &[])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Remove carol (her user id is in the remove form's action).
    let p = alice.get(&page_of).await;
    let row = p
        .body
        .find("<td class=\"name\">carol@lab.org</td>")
        .unwrap();
    let at = row + p.body[row..].find("/remove\"").unwrap();
    let start = p.body[..at].rfind("/members/").unwrap() + 9;
    let carol_id = p.body[start..at].to_string();
    let removed = alice
        .submit(&format!("{page_of}/members/{carol_id}/remove"), &csrf, &[])
        .await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    assert_eq!(carol.get(&page_of).await.status, StatusCode::NOT_FOUND);
    // The last owner stays.
    let alice_id = &_users[0].id;
    let last = alice
        .submit(&format!("{page_of}/members/{alice_id}/remove"), &csrf, &[])
        .await;
    assert!(last.status.is_client_error(), "{}", last.body);
    assert!(alice.get(&page_of).await.status.is_success());
}

/// The asset page's lineage card: the direction and depth selector, the
/// graph's place for the script, the lists a browser without JavaScript
/// shows (locked for what the viewer may not read) and the export links.
#[tokio::test]
async fn the_asset_page_shows_the_lineage_as_lists_with_export_links() {
    let (w, _users) = world().await;
    let mut bob = w.lab.browser("bob@lab.org", PW).await;
    // figure → raw (derived_from) → alice's private notes (uses).
    let p = bob.get(&format!("/assets/{}", w.figure)).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let b = &p.body;
    assert!(b.contains("<script type=\"module\" src=\"/static/lineage.js\">"));
    assert!(
        b.contains(&format!(
            "data-asset-id=\"{}\" data-direction=\"both\" data-depth=\"5\"",
            w.figure
        )),
        "{b}"
    );
    assert!(b.contains("<option value=\"5\" selected>"), "{b}");
    let up = &b[b.find("id=\"lineage-up\"").expect("ancestors")..];
    let up = &up[..up.find("</ol>").unwrap()];
    assert!(
        up.contains("depth 1") && up.contains(&format!("href=\"/assets/{}\"", w.raw)),
        "{up}"
    );
    assert!(up.contains("depth 2") && up.contains("(locked)"), "{up}");
    assert!(!b.contains("private notes"), "{b}");
    assert!(b.contains("No descendants"), "{b}");
    // The export links: the REST exports of the same walk, as downloads.
    assert!(
        b.contains(&format!(
            "href=\"/api/v1/assets/{}/provenance?direction=both&amp;depth=5&amp;download=true\"",
            w.figure
        )),
        "{b}"
    );
    assert!(
        b.contains(&format!(
            "href=\"/api/v1/ro-crate?asset_id={}&amp;include_data=false&amp;direction=both&amp;depth=5&amp;download=true\"",
            w.figure
        )),
        "{b}"
    );
    // One way, one step: the raw scan's descendants are the figure only.
    let p = bob
        .get(&format!("/assets/{}?direction=down&depth=1", w.raw))
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.body.contains("id=\"lineage-up\""));
    let down = &p.body[p.body.find("id=\"lineage-down\"").expect("descendants")..];
    assert!(
        down.contains(&format!("href=\"/assets/{}\"", w.figure)),
        "{down}"
    );
    assert!(p.body.contains("<option value=\"down\" selected>"));
    // Anything not offered falls back to the default walk, not an error.
    let odd = bob
        .get(&format!("/assets/{}?direction=sideways&depth=99", w.raw))
        .await;
    odd.assert_says(StatusCode::OK, "data-direction=\"both\" data-depth=\"5\"");
    // The script is served.
    let js = bob.get("/static/lineage.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("export function layout("));
}

/// `GET /api/v1/ro-crate?asset_id=…`: the lineage walk as a crate, only
/// what the caller may read, relationships among what is included; both
/// exports answer as attachments when asked.
#[tokio::test]
async fn an_asset_lineage_exports_as_an_ro_crate() {
    let (w, [alice, bob, carol]) = world().await;
    let crate_of = |api: &Api, query: String| {
        let api = api.clone();
        async move { api.get(&format!("/api/v1/ro-crate?{query}")).await }
    };
    let datasets = |doc: &serde_json::Value| -> Vec<String> {
        doc["@graph"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["@type"] == "Dataset" && e["identifier"].is_string() && e["@id"] != "./")
            .filter(|e| e["url"].is_string())
            .map(|e| e["identifier"].as_str().unwrap().to_string())
            .collect()
    };
    let q = format!("asset_id={}&include_data=false", w.figure);
    let (s, doc) = crate_of(&alice.api, q.clone()).await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    let mut ids = datasets(&doc);
    ids.sort();
    assert_eq!(ids.len(), 3, "figure, raw and alice's own notes: {doc}");
    assert!(ids.contains(&w.figure) && ids.contains(&w.raw));
    let root = doc["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["@id"] == "./")
        .unwrap();
    assert_eq!(root["name"], "Lineage of Figure 3");
    assert!(root["identifier"].as_str().unwrap().ends_with(&format!(
        "ro-crate?asset_id={}&direction=both&depth=20",
        w.figure
    )));
    // Without data, a file is its download URL.
    let text = doc.to_string();
    assert!(
        text.contains(&format!("/api/v1/assets/{}/contents/", w.raw)) && text.contains("/files/0"),
        "{text}"
    );
    assert!(text.contains("isBasedOn"), "{text}");
    // The viewer does not get alice's personal asset; one step up is raw only.
    let (s, doc) = crate_of(&bob.api, q.clone()).await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    assert_eq!(datasets(&doc).len(), 2, "{doc}");
    assert!(!doc.to_string().contains("private notes"));
    let (s, doc) = crate_of(
        &bob.api,
        format!("asset_id={}&direction=down&depth=1", w.raw),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    let mut ids = datasets(&doc);
    ids.sort();
    let mut want = vec![w.raw.clone(), w.figure.clone()];
    want.sort();
    assert_eq!(ids, want);
    // An outsider gets the 404 of an unknown id; mixing variants is refused.
    let (s, v) = crate_of(&carol.api, q.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "ERR_NOT_FOUND");
    for bad in [
        format!("asset_id={}&q=tag:x", w.figure),
        format!("asset_id={}&depth=0", w.figure),
        format!("asset_id={}&direction=sideways", w.figure),
        "q=tag:x&direction=up".to_string(),
    ] {
        let (s, v) = crate_of(&alice.api, bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert_eq!(v["error"]["code"], "ERR_INVALID_INPUT", "{bad}");
    }
    // download=true: the same document as an attachment with a file name.
    let r = alice
        .api
        .download(&format!("/api/v1/ro-crate?{q}&download=true"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"ro-crate-metadata.json\""
    );
    let plain = alice
        .api
        .download(&format!("/api/v1/ro-crate?{q}"), None)
        .await;
    assert!(plain.headers().get("content-disposition").is_none());
    let figure = &w.figure;
    let r = alice
        .api
        .download(
            &format!("/api/v1/assets/{figure}/provenance?download=true"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let short: String = w.figure.chars().take(8).collect();
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"provenance-{short}.json\"").as_str()
    );
}

fn field_value(body: &str, name: &str) -> String {
    let at = body
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name} in {body}"));
    let rest = &body[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Writers edit title, description, tags and metadata and delete on the
/// asset page through forms that call the REST update and delete; viewers
/// get no forms and are refused anyway, outsiders get the 404 page, and a
/// post without the CSRF token is refused before anything happens.
#[tokio::test]
async fn writers_edit_and_delete_assets_on_the_asset_page_and_others_cannot() {
    let (w, [alice_api, ..]) = world().await;
    let page_of = format!("/assets/{}", w.raw);
    let edit = format!("{page_of}/edit");
    let mut alice = w.lab.browser("alice@lab.org", PW).await;
    let p = alice.get(&page_of).await;
    assert!(p.body.contains("Save changes") && p.body.contains("Delete this asset…"));
    assert!(p
        .body
        .contains("<script type=\"module\" src=\"/static/asset-edit.js\">"));
    let csrf = p.csrf();
    let keys = field_value(&p.body, "metadata_keys").replace("&quot;", "\"");
    assert_eq!(keys, "[\"beam\",\"operator\"]");

    // Save: `beam` left out of the text is deleted, `sample` added.
    let saved = alice
        .submit(
            &edit,
            &csrf,
            &[
                ("title", "Scan 0001 (calibrated)"),
                ("description", "Re-calibrated"),
                ("tags", "calibrated, bright field , , new"),
                (
                    "metadata",
                    "{\"operator\": \"Grace\", \"sample\": {\"id\": 7}}",
                ),
                ("metadata_keys", &keys),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(
        saved.location.as_deref(),
        Some(format!("{page_of}?done=saved").as_str())
    );
    let p = alice.get(&format!("{page_of}?done=saved")).await;
    assert!(p.body.contains("Changes saved."), "{}", p.body);
    assert!(p.body.contains("<h1>Scan 0001 (calibrated)</h1>"));
    let (_, a) = alice_api
        .api
        .get(&format!("/api/v1/assets/{}", w.raw))
        .await;
    assert_eq!(a["title"], "Scan 0001 (calibrated)");
    assert_eq!(a["description"], "Re-calibrated");
    assert_eq!(a["tags"], json!(["calibrated", "bright field", "new"]));
    assert_eq!(
        a["metadata"],
        json!({"operator": "Grace", "sample": {"id": 7}})
    );

    // Refused by the REST rules: the form again, with the ERR_* message and
    // what was typed; nothing changes.
    let post_edit = |title: &'static str, metadata: &'static str| {
        [
            ("csrf_token", csrf.clone()),
            ("title", title.to_string()),
            ("metadata", metadata.to_string()),
            ("metadata_keys", "[]".to_string()),
        ]
    };
    for (title, metadata, says) in [
        ("Ok", "{not json", "metadata is not valid JSON"),
        ("Ok", "[1, 2]", "metadata must be a JSON object"),
        ("   ", "{}", "title is required"),
    ] {
        let form = post_edit(title, metadata);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = alice.post(&edit, &form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert!(
            r.body.contains("ERR_INVALID_INPUT") && r.body.contains(says),
            "{}",
            r.body
        );
        assert!(
            r.body.contains("Save changes"),
            "the form again: {}",
            r.body
        );
    }
    let r = alice
        .submit(&edit, &csrf, &[("title", "Ok"), ("metadata", "{not json")])
        .await;
    assert!(r.body.contains("{not json"), "the text is kept: {}", r.body);
    let (_, a) = alice_api
        .api
        .get(&format!("/api/v1/assets/{}", w.raw))
        .await;
    assert_eq!(a["title"], "Scan 0001 (calibrated)");

    // Without the CSRF token: 403, nothing happens.
    let forged = alice.post(&edit, &[("title", "Forged")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = alice
        .post(&format!("{page_of}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // The viewer sees no forms and is refused with the REST message.
    let mut bob = w.lab.browser("bob@lab.org", PW).await;
    let p = bob.get(&page_of).await;
    assert!(!p.body.contains("Save changes") && !p.body.contains("Delete this asset"));
    assert!(!p.body.contains(&format!("action=\"{edit}\"")));
    let bob_csrf = p.csrf();
    let r = bob.submit(&edit, &bob_csrf, &[("title", "Mine now")]).await;
    r.assert_says(StatusCode::FORBIDDEN, "ERR_PERMISSION_DENIED");
    let r = delete_confirmed(&mut bob, &page_of, &bob_csrf).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The outsider: the 404 page of an unknown id.
    let mut carol = w.lab.browser("carol@lab.org", PW).await;
    let carol_csrf = carol.get("/tokens").await.csrf();
    for path in [edit.clone(), format!("{page_of}/delete")] {
        let r = carol
            .submit(&path, &carol_csrf, &[("title", "x"), ("confirm", "yes")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
        assert!(!r.body.contains("Scan"));
    }
    let (_, a) = alice_api
        .api
        .get(&format!("/api/v1/assets/{}", w.raw))
        .await;
    assert_eq!(a["title"], "Scan 0001 (calibrated)");

    // Delete asks again first, then deletes and goes to the project page.
    let ask = alice.submit(&format!("{page_of}/delete"), &csrf, &[]).await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.body);
    assert!(ask.body.contains("Delete for good") && ask.body.contains("cannot be undone"));
    assert!(alice.get(&page_of).await.status.is_success(), "still there");
    let done = delete_confirmed(&mut alice, &page_of, &csrf).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let to = format!("/projects/{}?done=asset-deleted", w.project);
    assert_eq!(done.location.as_deref(), Some(to.as_str()));
    let p = alice.get(&to).await;
    assert!(p.body.contains("The asset was deleted."), "{}", p.body);
    assert_eq!(alice.get(&page_of).await.status, StatusCode::NOT_FOUND);
    let (s, _) = alice_api
        .api
        .get(&format!("/api/v1/assets/{}", w.raw))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A personal asset's deletion goes home, with the same flash.
    let mine = alice_api
        .api
        .personal_asset(&alice_api.id, "Scratch notes")
        .await;
    let done = delete_confirmed(&mut alice, &format!("/assets/{mine}"), &csrf).await;
    assert_eq!(done.location.as_deref(), Some("/?done=asset-deleted"));
    assert!(alice
        .get("/?done=asset-deleted")
        .await
        .body
        .contains("The asset was deleted."));
}
