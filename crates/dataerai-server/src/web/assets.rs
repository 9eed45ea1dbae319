//! `/assets/{id}`: an asset's fields, metadata as a nested table, its
//! content versions with their files (download links go to the REST route,
//! which accepts the browser session), and its relationships both ways.
//! Readers only; everyone else gets the 404 page of an unknown id.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use dataerai_proto::api::{Asset, ContentVersion, OwnerType, Relationship};
use dataerai_store::meta::{RelationshipSides, Window};
use maud::{html, Markup};
use serde_json::{Map, Value};

use super::layout::Page;
use super::session::ClientAddr;
use super::view::{date, error_page, record_type, size, tags, viewer, Viewer};
use crate::error::AppResult;
use crate::routes::{load_asset, Access, ReadableOwners};
use crate::state::AppState;

/// Content versions and relationships shown (newest versions first).
const MAX_VERSIONS: u64 = 50;
const MAX_RELATIONSHIPS: u64 = 500;

/// `GET /assets/{asset_id}`
#[utoipa::path(get, operation_id = "web_asset", path = "/assets/{asset_id}",
    summary = "Web: an asset, its metadata, versions, files and relationships; readers only (others: the 404 page)",
    security(()),
    params(("asset_id" = String, Path, description = "Asset id")),
    responses((status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 303, description = "Not signed in: to /login"),
        (status = 404, description = "No such asset, or not readable", content_type = "text/html", body = String)))]
pub async fn asset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    Path(asset_id): Path<String>,
) -> Response {
    let v = match viewer(&state, &headers, addr, &format!("/assets/{asset_id}")).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    match render(&state, &v, &asset_id).await {
        Ok(r) => r,
        Err(e) => error_page(e, &v.session),
    }
}

async fn render(state: &AppState, v: &Viewer, asset_id: &str) -> AppResult<Response> {
    let asset = load_asset(state, &v.caller, asset_id, Access::Read).await?;
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
    Ok(Page::new(&asset.title).signed_in(&v.session).render(html! {
        @if let Some(d) = &asset.description { p class="lead" { (d) } }
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
        section class="card" aria-labelledby="md-h" {
            h2 id="md-h" { "Metadata" }
            @if asset.metadata.is_empty() {
                p class="empty" { "No metadata." }
            } @else {
                div class="md-wrap" { (metadata_table(&asset.metadata, 0)) }
            }
        }
        section class="card" aria-labelledby="files-h" {
            h2 id="files-h" { "Content versions " span class="muted small" { "(" (version_total) ")" } }
            @if versions.is_empty() {
                p class="empty" { "No content uploaded yet." }
            }
            @for (i, c) in versions.iter().enumerate() {
                (version(c, i == 0))
            }
        }
        section class="card" aria-labelledby="rel-h" {
            h2 id="rel-h" { "Relationships" }
            @if relationships.is_empty() {
                p class="empty" { "No relationships." }
            } @else {
                (relationship_table(&relationships))
            }
        }
    }))
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
