//! `/assets/{id}`: an asset's fields, metadata as a nested table, its
//! content versions with their files (download links go to the REST route,
//! which accepts the browser session), its relationships both ways, and its
//! lineage: ancestors and descendants to a chosen depth, drawn as a graph by
//! `static/lineage.js` over a server-rendered list (what a browser without
//! JavaScript shows), with links that export it as PROV-JSON or RO-Crate.
//! Readers only; everyone else gets the 404 page of an unknown id.
//!
//! Writers also get the edit form (`POST /assets/{id}/edit`: title,
//! description, tags, metadata as JSON) and the delete form (`POST
//! /assets/{id}/delete`, which asks again before it deletes). Both call the
//! REST handlers (`PATCH`/`DELETE /api/v1/assets/{id}`), so the rules and
//! messages are the REST ones; done → 303 with a flash.

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dataerai_proto::api::{
    Asset, ContentVersion, Lineage, LineageNode, OwnerType, Relationship, UpdateAsset,
};
use dataerai_proto::ErrorCode;
use dataerai_store::meta::auth::SessionRecord;
use dataerai_store::meta::{LineageDirection, RelationshipSides, Window};
use maud::{html, Markup};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::csrf::CsrfForm;
use super::layout::{csrf_field, Flash, Page};
use super::redirect;
use super::view::{
    card_or_empty, date, done_flash, error_page, link, not_found, record_type, size, tags, Done,
    Params, Viewer,
};
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, AppError, AppResult};
use crate::openapi::{HtmlPage, MayNotWrite, NoSuchAsset, SignInFirst};
use crate::routes::{
    delete_asset, load_asset, owner_access, readable_lineage, update_asset, Access, AssetIdPath,
    Ctx, ReadableOwners,
};
use crate::state::AppState;

/// Content versions and relationships shown (newest versions first).
const MAX_VERSIONS: u64 = 50;
const MAX_RELATIONSHIPS: u64 = 500;

/// The depths the lineage selector offers, and the one shown first.
const DEPTHS: [u32; 5] = [1, 2, 5, 10, 20];
const DEFAULT_DEPTH: u32 = 5;

/// Which lineage the page shows (`?direction=up|down|both&depth=N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Walk {
    direction: LineageDirection,
    depth: u32,
}

impl Walk {
    /// From the query string; anything not offered is the default (both
    /// ways, depth 5), never an error page.
    fn of(params: &Params) -> Walk {
        let direction = match params.get("direction") {
            Some("up") => LineageDirection::Up,
            Some("down") => LineageDirection::Down,
            _ => LineageDirection::Both,
        };
        let depth = params
            .get("depth")
            .and_then(|d| d.parse::<u32>().ok())
            .filter(|d| DEPTHS.contains(d))
            .unwrap_or(DEFAULT_DEPTH);
        Walk { direction, depth }
    }

    fn direction_str(self) -> &'static str {
        match self.direction {
            LineageDirection::Up => "up",
            LineageDirection::Down => "down",
            LineageDirection::Both => "both",
        }
    }
}

/// Web: an asset, its metadata, versions, files and relationships; readers only (others: the 404 page)
#[utoipa::path(get, operation_id = "web_asset", path = "/assets/{asset_id}", security(()),
    params(AssetIdPath), responses(HtmlPage, SignInFirst, NoSuchAsset))]
pub async fn asset_page(
    State(state): State<AppState>,
    v: Viewer,
    Path(asset_id): Path<String>,
) -> Response {
    match render(&state, &v, &asset_id, &v.params).await {
        Ok(r) => r,
        Err(e) => error_page(e, &v.session),
    }
}

async fn render(
    state: &AppState,
    v: &Viewer,
    asset_id: &str,
    params: &Params,
) -> AppResult<Response> {
    let asset = load_asset(state, &v.caller, asset_id, Access::Read).await?;
    let writer =
        owner_access(state, &v.caller, asset.owner_type, &asset.owner_id).await? == Access::Write;
    let walk = Walk::of(params);
    let lineage = lineage_lists(state, v, asset_id, walk).await?;
    let all = |limit| Window { limit, offset: 0 };
    let (versions, version_total) = state
        .meta
        .list_contents(asset_id, all(MAX_VERSIONS))
        .await?;
    let (mut relationships, _) = state
        .meta
        .list_relationships(asset_id, RelationshipSides::Both, all(MAX_RELATIONSHIPS))
        .await?;
    // As `GET …/relationships`: an asset the viewer may not read shows only its id.
    let mut readable = ReadableOwners::default();
    for rel in &mut relationships {
        let other = &rel.related_asset;
        let (Some(t), Some(o)) = (other.owner_type, other.owner_id.clone()) else {
            continue;
        };
        if !readable.may_read(state, &v.caller, t, &o).await? {
            rel.related_asset = rel.related_asset.clone().redacted();
        }
    }
    let owner = owner(state, v, &asset).await?;
    let edit = EditFields::of(&asset);
    Ok(Page::new(&asset.title)
        .signed_in(&v.session)
        .flash(done_flash(params))
        .script("lineage.js")
        .script("asset-edit.js")
        .render(html! {
        @if let Some(d) = asset.description.as_deref().filter(|d| !d.is_empty()) { p class="lead" { (d) } }
        div class="card" {
            dl class="facts" {
                dt { "Record type" } dd { (record_type(asset.record_type.as_deref())) @if asset.record_type.is_none() { span class="muted" { "—" } } }
                dt { "Alias" } dd { @match &asset.alias { Some(a) => { code { (a) } }, None => { span class="muted" { "—" } } } }
                dt { "Tags" } dd { (tags(&asset.tags)) @if asset.tags.is_empty() { span class="muted" { "—" } } }
                dt { "Owner" } dd { (owner) }
                dt { "Created" } dd { (date(asset.created_at)) " UTC" }
                dt { "Updated" } dd { (date(asset.updated_at)) " UTC" }
                dt { "Id" } dd { code { (asset.asset_id) } }
            }
        }
        (card_or_empty("md-h", "Metadata", (!asset.metadata.is_empty()).then(|| html! { div class="md-wrap" { (metadata_table(&asset.metadata, 0)) } }), "No metadata."))
        section class="card" aria-labelledby="files-h" {
            h2 id="files-h" { "Content versions " span class="muted small" { "(" (version_total) ")" } }
            @if versions.is_empty() {
                p class="empty" { "No content uploaded yet." }
            }
            @for (i, c) in versions.iter().enumerate() {
                (version(c, i == 0))
            }
        }
        (card_or_empty("rel-h", "Relationships", (!relationships.is_empty()).then(|| relationship_table(&relationships)), "No relationships."))
        (lineage_section(&asset, walk, &lineage))
        @if writer {
            details class="card edit" id="edit" {
                summary { h2 { "Edit" } }
                (edit_form(&asset.asset_id, &edit, &v.session.csrf_token))
            }
            section class="card danger-zone" aria-labelledby="delete-h" {
                h2 id="delete-h" { "Delete" }
                p class="small muted" { "Deletes the asset with its content versions, files and relationships." }
                form method="post" action={ "/assets/" (asset.asset_id) "/delete" } {
                    (csrf_field(&v.session.csrf_token))
                    button type="submit" class="btn btn-danger" { "Delete this asset…" }
                }
            }
        }
    }))
}

/// The lineage of the page as lists: ancestors (up) and descendants (down),
/// each walked as `GET …/lineage` walks it, unreadable nodes redacted.
struct LineageLists {
    up: Option<Lineage>,
    down: Option<Lineage>,
}

async fn lineage_lists(
    state: &AppState,
    v: &Viewer,
    asset_id: &str,
    walk: Walk,
) -> AppResult<LineageLists> {
    let one = |direction| async move {
        readable_lineage(state, &v.caller, asset_id, direction, walk.depth, &[]).await
    };
    let up = match walk.direction {
        LineageDirection::Up | LineageDirection::Both => Some(one(LineageDirection::Up).await?),
        LineageDirection::Down => None,
    };
    let down = match walk.direction {
        LineageDirection::Down | LineageDirection::Both => Some(one(LineageDirection::Down).await?),
        LineageDirection::Up => None,
    };
    Ok(LineageLists { up, down })
}

/// The lineage card: the direction and depth selector (a GET form, so it
/// works without JavaScript), the graph's place (`#lineage-graph`, filled by
/// `lineage.js` from `GET /api/v1/assets/{id}/lineage`) and the lists, which
/// the script folds away once the graph is drawn.
fn lineage_section(asset: &Asset, walk: Walk, lists: &LineageLists) -> Markup {
    let id = &asset.asset_id;
    let directions = [
        ("both", "Ancestors and descendants"),
        ("up", "Ancestors (what it came from)"),
        ("down", "Descendants (what came from it)"),
    ];
    html! {
        section class="card lineage" id="lineage" aria-labelledby="lineage-h" {
            h2 id="lineage-h" { "Lineage" }
            form class="lineage-controls" method="get" action={ "/assets/" (id) "#lineage" } {
                div class="field" {
                    label for="lineage-direction" { "Show" }
                    select id="lineage-direction" name="direction" {
                        @for (value, label) in directions {
                            option value=(value) selected[walk.direction_str() == value] { (label) }
                        }
                    }
                }
                div class="field" {
                    label for="lineage-depth" { "Depth" }
                    select id="lineage-depth" name="depth" {
                        @for d in DEPTHS {
                            option value=(d) selected[walk.depth == d] {
                                (d) @if d == 1 { " relationship" } @else { " relationships" }
                            }
                        }
                    }
                }
                button type="submit" class="btn" { "Show" }
            }
            div id="lineage-graph" class="lineage-graph" hidden
                data-asset-id=(id) data-direction=(walk.direction_str()) data-depth=(walk.depth) {}
            (export_links(id, walk))
            details class="lineage-list" open {
                summary { "As a list" }
                @if let Some(up) = &lists.up {
                    (lineage_list("Ancestors", "lineage-up", up, "No ancestors: nothing it was derived from is recorded."))
                }
                @if let Some(down) = &lists.down {
                    (lineage_list("Descendants", "lineage-down", down, "No descendants: nothing derived from it is recorded."))
                }
            }
        }
    }
}

/// One way of the lineage as a list by depth, nearest first.
fn lineage_list(heading: &str, id: &str, lineage: &Lineage, empty: &str) -> Markup {
    let mut nodes: Vec<&LineageNode> = lineage
        .nodes
        .iter()
        .filter(|n| n.id != lineage.root)
        .collect();
    nodes.sort_by(|a, b| {
        a.depth
            .cmp(&b.depth)
            .then_with(|| a.redacted.cmp(&b.redacted))
            .then_with(|| a.title.cmp(&b.title))
            .then_with(|| a.id.cmp(&b.id))
    });
    html! {
        h3 id=(id) { (heading) " " span class="muted small" { "(" (nodes.len()) ")" } }
        @if nodes.is_empty() {
            p class="empty" { (empty) }
        } @else {
            ol class="lineage-nodes" aria-labelledby=(id) {
                @for n in nodes {
                    li class=(if n.redacted { "lineage-node locked" } else { "lineage-node" }) data-depth=(n.depth) {
                        span class="depth" { "depth " (n.depth) }
                        @match &n.title {
                            Some(t) if !n.redacted => {
                                a href={ "/assets/" (n.id) } { (t) }
                                " " (record_type(n.record_type.as_deref()))
                            },
                            _ => {
                                span title="You may not read this asset" {
                                    span aria-hidden="true" { "🔒 " }
                                    code { (n.id) }
                                    span class="visually-hidden" { " (locked)" }
                                }
                            },
                        }
                    }
                }
            }
            @if lineage.truncated {
                p class="small muted" { "More relationships were reachable than one page shows; choose a smaller depth." }
            }
        }
    }
}

/// The owner: the project (linked, by name) or "personal".
async fn owner(state: &AppState, v: &Viewer, asset: &Asset) -> AppResult<Markup> {
    Ok(match asset.owner_type {
        OwnerType::User => {
            html! { "Personal space of " (if asset.owner_id == v.caller.user_id { "you" } else { "another user" }) }
        }
        OwnerType::Project => {
            let name = state
                .meta
                .project_for_member(&asset.owner_id, &v.caller.user_id)
                .await?
                .map(|p| p.name)
                .unwrap_or_else(|| asset.owner_id.clone());
            html! { "Project " a href={ "/projects/" (asset.owner_id) } { (name) } }
        }
    })
}

/// One content version: when, how big, its files with checksums and links.
fn version(c: &ContentVersion, latest: bool) -> Markup {
    let base = format!("/api/v1/assets/{}/contents/{}", c.asset_id, c.content_id);
    html! {
        div class="version" {
            h3 {
                a href=(base) { "Version " code { (short(&c.content_id)) } }
                @if latest { " " span class="badge active" { "latest" } }
            }
            p class="small muted" {
                (c.files.len()) @if c.files.len() == 1 { " file, " } @else { " files, " }
                (size(c.total_bytes)) " · " (date(c.completed_at.unwrap_or(c.created_at))) " UTC"
            }
            div class="table-wrap" {
                table class="files" {
                    thead { tr { th { "File" } th class="nowrap" { "Size" } th { "Checksum" } th {} } }
                    tbody {
                        @for f in &c.files {
                            tr {
                                td class="name" { (f.name) }
                                td class="nowrap" data-label="Size" { (size(f.size)) }
                                td data-label="Checksum" { code class="checksum" { (f.checksum.as_deref().unwrap_or("—")) } }
                                td class="action" {
                                    a class="btn btn-small" href={ (base) "/files/" (f.file_index) } download=(file_name(&f.name)) { "Download" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The last path segment of a file's name (what the browser saves it as).
fn file_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn relationship_table(rels: &[Relationship]) -> Markup {
    html! {
        div class="table-wrap" {
            table class="relationships" {
                thead { tr { th { "Direction" } th { "Type" } th { "Asset" } th { "Analysis mode" } th { "Qualifiers" } } }
                tbody {
                    @for r in rels {
                        @let other = &r.related_asset;
                        tr {
                            td class="nowrap" data-label="Direction" {
                                @match r.direction.as_str() {
                                    "in" => { "← from" },
                                    _ => { "→ to" },
                                }
                            }
                            td data-label="Type" { code { (r.rel_type) } }
                            td class="name" data-label="Asset" {
                                @match &other.title {
                                    Some(t) => { a href={ "/assets/" (other.id) } { (t) } },
                                    None => {
                                        span class="locked" title="You may not read this asset" {
                                            span aria-hidden="true" { "🔒 " }
                                            code { (other.id) }
                                            span class="visually-hidden" { " (locked)" }
                                        }
                                    },
                                }
                            }
                            td data-label="Analysis mode" { (r.analysis_mode.as_deref().unwrap_or("—")) }
                            td data-label="Qualifiers" {
                                @if r.qualifiers.is_empty() { span class="muted" { "—" } }
                                @else { (metadata_table(&r.qualifiers, 1)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A JSON object as a table of key and value, nested objects and arrays as
/// tables inside the cell (at most 8 levels; deeper shows the JSON text).
fn metadata_table(map: &Map<String, Value>, depth: usize) -> Markup {
    html! {
        table class="md" {
            tbody {
                @for (k, v) in map {
                    tr { th scope="row" { (k) } td { (json_value(v, depth + 1)) } }
                }
            }
        }
    }
}

fn json_value(v: &Value, depth: usize) -> Markup {
    html! {
        @match v {
            Value::Object(m) if depth < 8 && !m.is_empty() => { (metadata_table(m, depth)) },
            Value::Array(items) if depth < 8 && !items.is_empty() => {
                ol class="md-list" start="0" {
                    @for item in items { li { (json_value(item, depth + 1)) } }
                }
            },
            Value::String(s) => { (s) },
            Value::Null => { span class="muted" { "null" } },
            other => { code { (other.to_string()) } },
        }
    }
}

/// "Export PROV-JSON" and "Export RO-Crate" for the lineage shown: the REST
/// exports with `download=true`, which the browser saves as files.
fn export_links(id: &str, walk: Walk) -> Markup {
    let depth = walk.depth.to_string();
    let common = [
        ("direction", walk.direction_str()),
        ("depth", depth.as_str()),
        ("download", "true"),
    ];
    let prov = link(&format!("/api/v1/assets/{id}/provenance"), &common);
    let mut crate_params = vec![("asset_id", id), ("include_data", "false")];
    crate_params.extend(common);
    let crate_link = link("/api/v1/ro-crate", &crate_params);
    let stem: String = id.chars().take(8).collect();
    html! {
        p class="asset-actions lineage-export" {
            a class="btn btn-small" href=(prov) download={ "provenance-" (stem) ".json" } { "Export PROV-JSON" }
            a class="btn btn-small" href=(crate_link) download="ro-crate-metadata.json" { "Export RO-Crate" }
            span class="small muted" { "of the lineage shown (files linked by their download addresses)" }
        }
    }
}

// ---------------------------------------------------------------- editing

/// The edit form's fields: tags comma-separated, metadata a JSON object,
/// `metadata_keys` the top-level keys the form showed (JSON), so a key
/// removed from the text is deleted while one added meanwhile stays.
#[derive(Deserialize)]
pub struct EditFields {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    metadata: String,
    #[serde(default)]
    metadata_keys: String,
}

impl EditFields {
    fn of(asset: &Asset) -> EditFields {
        let keys: Vec<&String> = asset.metadata.keys().collect();
        EditFields {
            title: asset.title.clone(),
            description: asset.description.clone().unwrap_or_default(),
            tags: asset.tags.join(", "),
            metadata: serde_json::to_string_pretty(&asset.metadata).unwrap_or_default(),
            metadata_keys: serde_json::to_string(&keys).unwrap_or_default(),
        }
    }

    /// The REST patch: the title, description and tags as given, metadata
    /// replaced by the text (keys the form showed and the text no longer has
    /// set to `null`, which the merge deletes).
    fn patch(&self) -> Result<UpdateAsset, AppError> {
        let text = self.metadata.trim();
        let mut metadata = if text.is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(AppError::invalid(
                        "metadata must be a JSON object, e.g. {\"sample\": \"SrRuO3\"}",
                    ))
                }
                Err(e) => {
                    return Err(AppError::invalid(format!(
                        "metadata is not valid JSON: {e}"
                    )))
                }
            }
        };
        let shown: Vec<String> = serde_json::from_str(&self.metadata_keys).unwrap_or_default();
        for key in shown {
            metadata.entry(key).or_insert(Value::Null);
        }
        let tags: Vec<String> = self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        Ok(UpdateAsset {
            title: Some(self.title.clone()),
            record_type: None,
            description: Some(self.description.trim().to_string()),
            alias: None,
            tags: Some(tags),
            metadata: Some(metadata),
        })
    }
}

/// The edit form, filled with `f` (the asset, or what was just refused).
fn edit_form(asset_id: &str, f: &EditFields, csrf: &str) -> Markup {
    html! {
        form class="edit-form" method="post" action={ "/assets/" (asset_id) "/edit" } {
            (csrf_field(csrf))
            input type="hidden" name="metadata_keys" value=(f.metadata_keys);
            div class="field" {
                label for="edit-title" { "Title" }
                input id="edit-title" type="text" name="title" value=(f.title) required maxlength="500";
            }
            div class="field" {
                label for="edit-description" { "Description" }
                textarea id="edit-description" class="short" name="description" { (f.description) }
            }
            div class="field" {
                label for="edit-tags" { "Tags" span class="hint" { "Separated by commas, e.g. calibrated, bright field" } }
                input id="edit-tags" type="text" name="tags" value=(f.tags);
            }
            div class="field" {
                label for="edit-metadata" { "Metadata" span class="hint" { "A JSON object; a key you remove is deleted" } }
                textarea id="edit-metadata" name="metadata" spellcheck="false" aria-describedby="edit-metadata-error" { (f.metadata) }
                p id="edit-metadata-error" class="field-error" role="alert" hidden {}
            }
            button type="submit" class="btn btn-primary" { "Save changes" }
        }
    }
}

/// Web: change title, description, tags and metadata (form title, description, tags, metadata as JSON, metadata_keys, csrf_token); writers, as PATCH /api/v1/assets/{id}
#[utoipa::path(post, operation_id = "web_edit_asset", path = "/assets/{asset_id}/edit",
    security(()), params(AssetIdPath),
    responses((status = 303, description = "Saved: back to the asset page"), (status = 400, description = "Refused: the form again with the message", content_type = "text/html", body = String), MayNotWrite, NoSuchAsset))]
pub async fn asset_edit(State(state): State<AppState>, posted: WriterForm<EditFields>) -> Response {
    let WriterForm {
        asset: Asset { asset_id, .. },
        session,
        caller,
        form,
    } = posted;
    let result = match form.patch() {
        Ok(patch) => update_asset(
            Ctx { state, caller },
            ApiPath(asset_id.clone()),
            ApiJson(patch),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => redirect(&format!("/assets/{asset_id}?done={}", Done::Saved.as_str())),
        Err(e) if e.error.code == ErrorCode::InvalidInput => {
            let message = format!("{}: {}", e.error.code, e.error.message);
            Page::new("Edit asset")
                .status(StatusCode::BAD_REQUEST)
                .signed_in(&session)
                .flash(Flash::error(message))
                .script("asset-edit.js")
                .render(html! {
                    div class="card" {
                        (edit_form(&asset_id, &form, &session.csrf_token))
                    }
                    p { a href={ "/assets/" (asset_id) } { "Back to the asset, without saving" } }
                })
        }
        Err(e) => refused(&session, &asset_id, e),
    }
}

/// The delete form: `confirm=yes` deletes; without it, the page that asks.
#[derive(Deserialize)]
pub struct DeleteFields {
    #[serde(default)]
    confirm: String,
}

/// Web: delete an asset (form csrf_token; without confirm=yes the page that asks again); writers, as DELETE /api/v1/assets/{id}
#[utoipa::path(post, operation_id = "web_delete_asset", path = "/assets/{asset_id}/delete",
    security(()), params(AssetIdPath),
    responses((status = 200, description = "The confirmation form", content_type = "text/html", body = String), (status = 303, description = "Deleted: to the project page (or home for a personal asset)"), MayNotWrite, NoSuchAsset))]
pub async fn asset_delete(
    State(state): State<AppState>,
    posted: WriterForm<DeleteFields>,
) -> Response {
    let WriterForm {
        asset,
        session,
        caller,
        form,
    } = posted;
    let asset_id = asset.asset_id.clone();
    if form.confirm != "yes" {
        return confirm_delete(&session, &asset);
    }
    match delete_asset(Ctx { state, caller }, ApiPath(asset_id.clone())).await {
        Ok(_) => {
            let done = Done::Deleted.as_str();
            match asset.owner_type {
                OwnerType::Project => {
                    redirect(&format!("/projects/{}?done={done}", asset.owner_id))
                }
                OwnerType::User => redirect(&format!("/?done={done}")),
            }
        }
        Err(e) => refused(&session, &asset_id, e),
    }
}

/// The page that asks before deleting.
fn confirm_delete(session: &SessionRecord, asset: &Asset) -> Response {
    let title = format!("Delete {}?", asset.title);
    Page::new(&title)
        .signed_in(session)
        .narrow()
        .render(html! {
            div class="card danger-zone" {
                p {
                    "This deletes " strong { (asset.title) } " with all its content versions, files and "
                    "relationships. It cannot be undone."
                }
                form method="post" action={ "/assets/" (asset.asset_id) "/delete" } class="asset-actions" {
                    (csrf_field(&session.csrf_token))
                    input type="hidden" name="confirm" value="yes";
                    button type="submit" class="btn btn-danger" { "Delete for good" }
                    a class="btn" href={ "/assets/" (asset.asset_id) } { "Cancel" }
                }
            }
        })
}

/// An edit or delete form of an asset: the asset (its id from the path) and
/// the CSRF-checked form. Who may not write is refused ([`refused`]: 403 for
/// a reader, the 404 page for who may not read) before the form is acted on.
pub struct WriterForm<T> {
    asset: Asset,
    session: SessionRecord,
    caller: Caller,
    form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for WriterForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Path(asset_id) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let posted = CsrfForm::<T>::from_request(Request::from_parts(parts, body), state).await?;
        match load_asset(state, &posted.caller, &asset_id, Access::Write).await {
            Ok(asset) => Ok(WriterForm {
                asset,
                session: posted.session,
                caller: posted.caller,
                form: posted.form,
            }),
            Err(e) => Err(refused(&posted.session, &asset_id, e)),
        }
    }
}

/// Why an edit or delete was refused: the REST error's message (403 for a
/// reader, 400 for bad input), the one 404 page for who may not read.
fn refused(session: &SessionRecord, asset_id: &str, e: AppError) -> Response {
    let status = match e.error.code {
        ErrorCode::NotFound => return not_found(session),
        ErrorCode::InvalidInput | ErrorCode::Conflict => StatusCode::BAD_REQUEST,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        _ => return error_page(e, session),
    };
    Page::new("Asset not changed")
        .status(status)
        .signed_in(session)
        .flash(Flash::error(format!(
            "{}: {}",
            e.error.code, e.error.message
        )))
        .render(html! {
            p { a href={ "/assets/" (asset_id) } { "Back to the asset" } }
        })
}
