//! `/projects/{id}`: the collection tree, the assets of the selected
//! collection (paged, sorted), the members and the allocation's usage.
//! Members only; everyone else gets the 404 page of an unknown id.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use dataerai_proto::api::{Collection, Project};
use dataerai_store::meta::{CollectionSort, Window};
use maud::{html, Markup};

use super::layout::Page;
use super::members;
use super::view::{
    asset_table, date, done_flash, error_page, link, not_found, pager, usage, Params, Viewer,
};
use crate::error::AppResult;
use crate::openapi::{HtmlPage, SignInFirst};
use crate::routes::{found, ProjectIdPath};
use crate::state::AppState;

const PER_PAGE: u64 = 25;
/// Collections read for the tree (a project with more shows the first ones).
const MAX_COLLECTIONS: u64 = 1000;
const MAX_MEMBERS: u64 = 1000;
/// Chunk size of browser uploads (`data-chunk-size` of the upload zone): a
/// power of two, small enough that three chunks in flight stay light.
const UPLOAD_CHUNK_SIZE: u64 = 8 * 1024 * 1024;

/// The sorts offered above the asset table: `sort=` value and label (each
/// one a [`CollectionSort`]).
const SORTS: &[(&str, &str)] = &[
    ("-created", "Newest"),
    ("created", "Oldest"),
    ("title", "Title A–Z"),
    ("-title", "Title Z–A"),
    ("-size", "Largest"),
    ("size", "Smallest"),
    ("type", "Type A–Z"),
    ("-type", "Type Z–A"),
];

/// Web: a project's collections, assets (?collection=&sort=&page=), members and usage; members only (others: the 404 page)
#[utoipa::path(get, operation_id = "web_project", path = "/projects/{project_id}", security(()),
    params(ProjectIdPath),
    responses(HtmlPage, SignInFirst, (status = 404, description = "No such project, or not a member", content_type = "text/html", body = String)))]
pub async fn project_page(
    State(state): State<AppState>,
    v: Viewer,
    Path(project_id): Path<String>,
) -> Response {
    let params = &v.params;
    match render(
        &state,
        &v.caller.user_id,
        &v.session.csrf_token,
        &project_id,
        params,
    )
    .await
    {
        Ok(Some((project, body))) => {
            let page = Page::new(&project.name)
                .signed_in(&v.session)
                .flash(done_flash(params));
            // The browser upload (static/upload.js), for those who may write.
            let page = if project.role.may_write() {
                page.script("upload.js")
            } else {
                page
            };
            page.render(body)
        }
        Ok(None) => not_found(&v.session),
        Err(e) => error_page(e, &v.session),
    }
}

/// The page body, or `None` when the selected collection is not one of the
/// project's.
async fn render(
    state: &AppState,
    user_id: &str,
    csrf: &str,
    project_id: &str,
    params: &Params,
) -> AppResult<Option<(Project, Markup)>> {
    let project = found(
        state.meta.project_for_member(project_id, user_id).await?,
        "project",
        project_id,
    )?;
    let (collections, _) = state
        .meta
        .list_collections(
            project_id,
            Window {
                limit: MAX_COLLECTIONS,
                offset: 0,
            },
        )
        .await?;
    let selected_id = params
        .get("collection")
        .unwrap_or(&project.root_collection_id)
        .to_string();
    let Some(selected) = collections
        .iter()
        .find(|c| c.collection_id == selected_id)
        .cloned()
    else {
        return Ok(None);
    };
    let sort_key = params
        .get("sort")
        .filter(|s| SORTS.iter().any(|(k, _)| k == s))
        .unwrap_or("-created")
        .to_string();
    let page = params.page();
    // Straight from the collection's listing index: an exact total, every
    // page reachable, whatever the collection's size.
    let sort = CollectionSort::parse(&sort_key).unwrap_or(CollectionSort::NEWEST);
    let (assets, total) = state
        .meta
        .collection_assets_sorted(
            &selected_id,
            sort,
            Window {
                limit: PER_PAGE,
                offset: (page - 1) * PER_PAGE,
            },
        )
        .await?;
    let (members, _) = state
        .meta
        .list_members(
            project_id,
            Window {
                limit: MAX_MEMBERS,
                offset: 0,
            },
        )
        .await?;
    let manage = project.role.may_manage_members();
    let base = format!("/projects/{project_id}");
    let tree = Tree::new(&collections);
    let page_link = |p: u64| {
        let p = p.to_string();
        link(
            &base,
            &[
                ("collection", &selected_id),
                ("sort", &sort_key),
                ("page", &p),
            ],
        )
    };
    let body = html! {
        @if !project.description.is_empty() { p class="lead" { (project.description) } }
        p class="small muted" {
            "Your role: " span class={ "badge role " (project.role.as_str()) } { (project.role.as_str()) }
            " · created " (date(project.created_at))
        }
        div class="project-grid" {
            aside class="card tree" aria-labelledby="tree-h" {
                h2 id="tree-h" { "Collections" }
                (tree.render(&project.root_collection_id, &selected_id, &base))
            }
            section class="card" aria-labelledby="assets-h" {
                h2 id="assets-h" { (selected.name) " " span class="muted small" { "(" (total) ")" } }
                @if project.role.may_write() { (upload_zone(project_id, &selected)) }
                form class="sort" method="get" action=(base) {
                    input type="hidden" name="collection" value=(selected_id);
                    label for="sort" { "Sort by" }
                    select id="sort" name="sort" {
                        @for (k, label) in SORTS {
                            option value=(k) selected[*k == sort_key] { (label) }
                        }
                    }
                    button type="submit" class="btn btn-small" { "Sort" }
                }
                @if assets.is_empty() {
                    p class="empty" { "No assets in this collection." }
                } @else {
                    (asset_table(&assets))
                }
                (pager(page, PER_PAGE, total, page_link))
            }
        }
        div class="project-grid two" {
            section class="card" aria-labelledby="members-h" {
                h2 id="members-h" { "Members" }
                div class="table-wrap" {
                    table {
                        thead { tr { th { "Email" } th { "Role" } th class="nowrap" { "Since" } @if manage { th {} } } }
                        tbody {
                            @for m in &members {
                                tr {
                                    td class="name" { (m.email) }
                                    td data-label="Role" { span class={ "badge role " (m.role.as_str()) } { (m.role.as_str()) } }
                                    td class="nowrap" data-label="Since" { (date(m.added_at)) }
                                    @if manage {
                                        td class="action nowrap" {
                                            (members::row_forms(project_id, &m.user_id, &m.email, m.role, csrf))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if manage { (members::add_form(project_id, csrf)) }
            }
            section class="card" aria-labelledby="usage-h" {
                h2 id="usage-h" { "Storage" }
                (usage(&project.allocation))
            }
        }
    };
    Ok(Some((project, body)))
}

/// The collections by parent, for the nested list.
struct Tree<'a> {
    children: BTreeMap<&'a str, Vec<&'a Collection>>,
    by_id: BTreeMap<&'a str, &'a Collection>,
}

impl<'a> Tree<'a> {
    fn new(collections: &'a [Collection]) -> Tree<'a> {
        let mut children: BTreeMap<&str, Vec<&Collection>> = BTreeMap::new();
        for c in collections {
            if let Some(p) = c.parent_id.as_deref() {
                children.entry(p).or_default().push(c);
            }
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let by_id = collections
            .iter()
            .map(|c| (c.collection_id.as_str(), c))
            .collect();
        Tree { children, by_id }
    }

    /// Whether `id` is `selected` or one of its ancestors (kept open).
    fn leads_to(&self, id: &str, selected: &str) -> bool {
        let mut at = Some(selected);
        // Bounded: a cycle in bad data cannot loop forever.
        for _ in 0..=self.by_id.len() {
            match at {
                Some(a) if a == id => return true,
                Some(a) => at = self.by_id.get(a).and_then(|c| c.parent_id.as_deref()),
                None => return false,
            }
        }
        false
    }

    fn render(&self, root: &str, selected: &str, base: &str) -> Markup {
        html! { ul class="tree-list" { (self.node(root, selected, base, 0)) } }
    }

    fn node(&self, id: &str, selected: &str, base: &str, depth: usize) -> Markup {
        let Some(c) = self.by_id.get(id) else {
            return html! {};
        };
        let href = link(base, &[("collection", id)]);
        let current = (id == selected).then_some("page");
        let label = c.name.as_str();
        let kids = self.children.get(id).map(Vec::as_slice).unwrap_or(&[]);
        html! {
            li {
                a href=(href) aria-current=[current] { (label) }
                @if !kids.is_empty() && depth <= 32 {
                    // The toggle is its own control (a link inside <summary>
                    // would nest two interactive elements).
                    details open[depth == 0 || self.leads_to(id, selected)] {
                        summary { span class="muted small" { (kids.len()) " inside" span class="visually-hidden" { " " (label) } } }
                        ul {
                            @for k in kids { (self.node(&k.collection_id, selected, base, depth + 1)) }
                        }
                    }
                }
            }
        }
    }
}

/// The upload zone of the selected collection (writers only): drop files or
/// a folder, or choose them with the buttons; `static/upload.js` does the
/// rest (chunks, BLAKE3 in a worker, progress, resume after a reload). The
/// zone stays hidden without JavaScript, which `<noscript>` explains.
fn upload_zone(project_id: &str, collection: &Collection) -> Markup {
    html! {
        div class="upload" data-upload-zone data-project-id=(project_id)
            data-collection-id=(collection.collection_id) data-chunk-size=(UPLOAD_CHUNK_SIZE) {
            noscript {
                p class="note small" {
                    "Uploading from the browser needs JavaScript. Without it, use the command line: "
                    code class="cmd" { "dataerai upload PATH --title TITLE --project " (project_id) " --collection " (collection.collection_id) }
                }
            }
            div class="dropzone" hidden {
                p class="dropzone-lead" {
                    strong { "Drop files or a folder here" }
                    " to upload them to " em { (collection.name) } "."
                }
                p class="hint" {
                    "Each file becomes an asset titled with its name; a folder becomes one asset "
                    "holding all its files (sub-folders kept). Large files resume after a reload."
                }
                div class="dropzone-actions" {
                    button type="button" class="btn btn-small" data-choose="files" { "Choose files…" }
                    button type="button" class="btn btn-small" data-choose="folder" { "Choose a folder…" }
                    input id="upload-files" type="file" multiple hidden aria-label="Files to upload";
                    input id="upload-folder" type="file" webkitdirectory hidden aria-label="A folder to upload";
                }
            }
            p class="visually-hidden" role="status" aria-live="polite" data-upload-status {}
        }
    }
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    #[test]
    fn every_offered_sort_is_a_collection_listing_order() {
        for (value, _) in SORTS {
            assert!(CollectionSort::parse(value).is_some(), "{value}");
        }
        assert_eq!(
            CollectionSort::parse(SORTS[0].0),
            Some(CollectionSort::NEWEST)
        );
    }
}

#[cfg(test)]
mod upload_zone_tests {
    use super::*;

    #[test]
    fn the_zone_names_its_collection_and_stays_hidden_without_javascript() {
        let collection: Collection = serde_json::from_value(serde_json::json!({
            "collection_id": "c-1",
            "project_id": "p-1",
            "name": "Run <42>",
            "parent_id": null,
            "created_at": "2026-12-07T00:00:00Z",
        }))
        .unwrap();
        let html = upload_zone("p-1", &collection).into_string();
        assert!(html.contains("data-project-id=\"p-1\""), "{html}");
        assert!(html.contains("data-collection-id=\"c-1\""), "{html}");
        assert!(html.contains("data-chunk-size=\"8388608\""), "{html}");
        assert!(html.contains("<div class=\"dropzone\" hidden>"), "{html}");
        assert!(html.contains("<noscript>"), "{html}");
        assert!(html.contains("--collection c-1"), "{html}");
        assert!(html.contains("webkitdirectory"), "{html}");
        assert!(html.contains("Run &lt;42&gt;"), "{html}");
    }
}
