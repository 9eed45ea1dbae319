//! Provenance export: `GET /api/v1/assets/{asset_id}/provenance` (an asset's
//! lineage as W3C PROV-JSON) and `GET /api/v1/ro-crate` (a collection tree, a
//! search result or an asset's lineage as RO-Crate 1.1 metadata). This module
//! gathers the input — one lineage or search, then the details of all assets
//! at once — and decides what the caller may see; `crate::provenance` shapes
//! the documents. `?download=true` adds `Content-Disposition: attachment`, so
//! a link on a web page saves the document as a file.

use std::collections::{HashMap, HashSet};

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use dataerai_proto::api::{
    Asset, Collection, LineageEdge, OwnerType, ProvenanceQuery, RoCrateQuery, MAX_CRATE_ASSETS,
};
use dataerai_store::meta::{LineageDirection, Window};
use dataerai_store::search::{self, SearchRequest, Sort};
use serde_json::Value;

use super::lineage::readable_lineage;
use super::{every_page, found, load_asset, project_access, require, Access, AssetIdPath, Ctx};
use crate::auth::Caller;
use crate::connections::ServedAt;
use crate::error::{ApiPath, ApiQuery, AppError, AppResult};
use crate::provenance::{prov_json, ro_crate};
use crate::state::AppState;

/// Search results per page while collecting a crate's assets.
const CRATE_PAGE: u64 = 1000;

/// An asset's lineage as W3C PROV-JSON (entities, wasDerivedFrom, agents)
#[utoipa::path(get, path = "/api/v1/assets/{asset_id}/provenance",
    params(AssetIdPath, ProvenanceQuery),
    responses((status = 200, description = "A PROV-JSON document", body = Object)))]
pub async fn asset_provenance(
    Ctx { state, caller }: Ctx,
    served_at: Option<Extension<ServedAt>>,
    ApiPath(asset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ProvenanceQuery>,
) -> AppResult<Response> {
    let (direction, depth) =
        super::lineage::walk_of(q.direction.as_deref(), LineageDirection::Both, q.depth)?;
    load_asset(&state, &caller, &asset_id, Access::Read).await?;
    let lineage = readable_lineage(&state, &caller, &asset_id, direction, depth, &[]).await?;
    let readable: Vec<String> = lineage
        .nodes
        .iter()
        .filter(|n| !n.redacted)
        .map(|n| n.id.clone())
        .collect();
    let facts = state.meta.asset_facts(&readable).await?;
    let edge_ids: Vec<String> = lineage.edges.iter().map(|e| e.id.clone()).collect();
    let qualifiers = state.meta.relationship_qualifiers(&edge_ids).await?;
    let mut creators: Vec<String> = facts.iter().map(|f| f.created_by.clone()).collect();
    creators.sort();
    creators.dedup();
    let emails = state
        .meta
        .visible_emails(&caller.user_id, &creators)
        .await?;
    let base = crate::oauth::base_url(&state, served_at.map(|Extension(s)| s));
    let document = prov_json::document(&prov_json::ProvInput {
        base_url: &base,
        lineage: &lineage,
        facts: &facts,
        qualifiers: &qualifiers,
        emails: &emails,
    });
    let name = format!("provenance-{}.json", file_stem(&asset_id));
    Ok(json_answer(document, q.download.unwrap_or(false), &name))
}

/// A JSON document, as an attachment named `file_name` when `download`.
fn json_answer(document: Value, download: bool, file_name: &str) -> Response {
    let mut r = Json(document).into_response();
    if download {
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    r
}

/// An id as part of a file name: its first 8 safe characters.
fn file_stem(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(8)
        .collect()
}

/// RO-Crate 1.1 metadata (ro-crate-metadata.json) for a collection tree, a search or an asset's lineage
#[utoipa::path(get, path = "/api/v1/ro-crate", params(RoCrateQuery),
    responses((status = 200, description = "The crate's ro-crate-metadata.json", body = Object)))]
pub async fn ro_crate_metadata(
    Ctx { state, caller }: Ctx,
    served_at: Option<Extension<ServedAt>>,
    ApiQuery(q): ApiQuery<RoCrateQuery>,
) -> AppResult<Response> {
    let base = crate::oauth::base_url(&state, served_at.map(|Extension(s)| s));
    let base = crate::provenance::trim_base(&base).to_string();
    if q.asset_id.is_none() && (q.direction.is_some() || q.depth.is_some()) {
        return Err(AppError::invalid(
            "direction and depth go with asset_id (an asset's lineage)",
        ));
    }
    let plan = match (&q.collection_id, &q.q, &q.asset_id) {
        (Some(id), None, None) => {
            let c = state.meta.get_collection(id).await?;
            let c = found(c, "collection", id)?;
            let access = project_access(&state, &caller, &c.project_id).await?;
            require(access, Access::Read, "collection", id)?;
            Plan::Collection(c)
        }
        (None, Some(text), None) => Plan::Search(text.clone()),
        (None, None, Some(id)) => {
            let (direction, depth) =
                super::lineage::walk_of(q.direction.as_deref(), LineageDirection::Both, q.depth)?;
            let root = load_asset(&state, &caller, id, Access::Read).await?;
            Plan::Lineage {
                root: Box::new(root),
                direction,
                depth,
            }
        }
        _ => {
            return Err(AppError::invalid(
                "give exactly one of collection_id (a collection and the collections below it), \
                 q (a search) or asset_id (an asset's lineage)",
            ))
        }
    };
    let (assets, relationships) = match &plan {
        Plan::Collection(c) => {
            let assets =
                crate_assets(&state, &caller, &format!("within:{}", c.collection_id)).await?;
            let relationships = relationships_of(&state, &assets).await?;
            (assets, relationships)
        }
        Plan::Search(text) => {
            let assets = crate_assets(&state, &caller, text).await?;
            let relationships = relationships_of(&state, &assets).await?;
            (assets, relationships)
        }
        Plan::Lineage {
            root,
            direction,
            depth,
        } => lineage_assets(&state, &caller, root, *direction, *depth).await?,
    };
    let (folders, parents) = match &plan {
        Plan::Collection(c) => collection_layout(&state, c, &assets).await?,
        Plan::Search(_) | Plan::Lineage { .. } => search_layout(&state, &caller, &assets).await?,
    };
    let (identifier, name, description) = match &plan {
        Plan::Collection(c) => {
            let project = state
                .meta
                .project_for_member(&c.project_id, &caller.user_id)
                .await?
                .map(|p| p.name)
                .unwrap_or_default();
            (
                format!("{base}/api/v1/ro-crate?collection_id={}", c.collection_id),
                c.name.clone(),
                format!(
                    "Collection {:?} of project {project:?} and the collections below it, \
                     exported from Dataerai",
                    c.name
                ),
            )
        }
        Plan::Search(text) => (
            format!(
                "{base}/api/v1/ro-crate?{}",
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("q", text)
                    .finish()
            ),
            format!("Search: {text}"),
            format!("The assets matching the search {text:?}, exported from Dataerai"),
        ),
        Plan::Lineage {
            root,
            direction,
            depth,
        } => {
            let direction = match direction {
                LineageDirection::Up => "up",
                LineageDirection::Down => "down",
                LineageDirection::Both => "both",
            };
            let what = match direction {
                "up" => "and what it was derived from",
                "down" => "and what was derived from it",
                _ => "with what it was derived from and what was derived from it",
            };
            (
                format!(
                    "{base}/api/v1/ro-crate?asset_id={}&direction={direction}&depth={depth}",
                    root.asset_id
                ),
                format!("Lineage of {}", root.title),
                format!(
                    "The asset {:?} {what}, up to {depth} relationships away, exported from Dataerai",
                    root.title
                ),
            )
        }
    };
    let items = assets
        .iter()
        .map(|a| ro_crate::CrateAsset {
            asset: a,
            parent: parents.get(&a.asset_id).cloned().unwrap_or_default(),
        })
        .collect();
    let document = ro_crate::document(&ro_crate::CrateInput {
        base_url: &base,
        identifier,
        name,
        description,
        date_published: chrono::Utc::now(),
        include_data: q.include_data.unwrap_or(true),
        folders,
        assets: items,
        relationships: &relationships,
    });
    Ok(json_answer(
        document,
        q.download.unwrap_or(false),
        ro_crate::METADATA_FILE,
    ))
}

enum Plan {
    Collection(Collection),
    Search(String),
    Lineage {
        root: Box<Asset>,
        direction: LineageDirection,
        depth: u32,
    },
}

/// The relationships among a crate's assets.
async fn relationships_of(state: &AppState, assets: &[Asset]) -> AppResult<Vec<LineageEdge>> {
    let ids: Vec<String> = assets.iter().map(|a| a.asset_id.clone()).collect();
    Ok(state.meta.relationships_among(&ids).await?)
}

/// An asset's lineage as a crate's assets: the walk of `GET …/lineage`, the
/// nodes the caller may read (the root first, then nearest first) and the
/// walked relationships between two of them. More than the crate cap is
/// refused as for the other exports.
async fn lineage_assets(
    state: &AppState,
    caller: &Caller,
    root: &Asset,
    direction: LineageDirection,
    depth: u32,
) -> AppResult<(Vec<Asset>, Vec<LineageEdge>)> {
    let lineage = readable_lineage(state, caller, &root.asset_id, direction, depth, &[]).await?;
    let mut nodes: Vec<_> = lineage.nodes.iter().filter(|n| !n.redacted).collect();
    nodes.sort_by_key(|n| (n.id != root.asset_id, n.depth));
    let cap = crate_cap();
    if nodes.len() as u64 > cap {
        return Err(AppError::invalid(format!(
            "the export would hold {} assets; one RO-Crate holds at most {cap}: \
             choose a smaller depth or one direction",
            nodes.len()
        )));
    }
    let mut assets = Vec::with_capacity(nodes.len());
    for n in nodes {
        // One asset may be deleted meanwhile: it is left out.
        if let Some(a) = state.meta.get_asset(&n.id).await? {
            assets.push(a);
        }
    }
    let included: HashSet<&str> = assets.iter().map(|a| a.asset_id.as_str()).collect();
    let edges = lineage
        .edges
        .iter()
        .filter(|e| {
            included.contains(e.from_asset_id.as_str()) && included.contains(e.to_asset_id.as_str())
        })
        .cloned()
        .collect();
    Ok((assets, edges))
}

/// Every asset the search `text` finds for the caller (the store filters by
/// read permission), oldest first; more than [`MAX_CRATE_ASSETS`] is refused
/// before any is loaded beyond the first page.
async fn crate_assets(state: &AppState, caller: &Caller, text: &str) -> AppResult<Vec<Asset>> {
    let query = search::parse(text).map_err(|e| AppError::invalid(e.to_string()))?;
    let sort = Sort::parse(Some("created"), &query)
        .map_err(|e| AppError::invalid(format!("sort: {}", e.message)))?;
    let request = SearchRequest {
        query,
        sort,
        window: Window {
            limit: CRATE_PAGE,
            offset: 0,
        },
        facets: false,
        // One past the cap: enough to tell an export that is too big.
        count_cap: crate_cap().saturating_add(1),
    };
    let mut out: Vec<Asset> = every_page(|offset| {
        let request = SearchRequest {
            window: Window {
                offset,
                ..request.window
            },
            ..request.clone()
        };
        async move {
            let found = state.meta.search(&caller.user_id, &request).await?;
            let (total, cap) = (found.total, crate_cap());
            if total > cap {
                return Err(AppError::invalid(format!(
                    "the export would hold {total} assets; one RO-Crate holds at most \
                     {cap}: narrow it (a collection further down, or more search terms)"
                )));
            }
            Ok((found.items, total))
        }
    })
    .await?;
    // An asset filed twice would be found once, but pages of a changing
    // catalogue may overlap.
    let mut seen = HashSet::new();
    out.retain(|a| seen.insert(a.asset_id.clone()));
    Ok(out)
}

/// Most assets one crate holds ([`MAX_CRATE_ASSETS`]; tests lower it with
/// the `max_crate_assets` fault).
fn crate_cap() -> u64 {
    #[cfg(feature = "fault-injection")]
    if let Some(n) = crate::faults::max_crate_assets() {
        return n;
    }
    MAX_CRATE_ASSETS
}

/// Every collection of a project.
async fn project_collections(state: &AppState, project_id: &str) -> AppResult<Vec<Collection>> {
    let collections = every_page(|offset| {
        let window = Window {
            limit: 1000,
            offset,
        };
        state.meta.list_collections(project_id, window)
    });
    Ok(collections.await?)
}

/// The folder of each asset: the first of its collections found in
/// `folders` (by collection id), else `fallback`.
fn parents_of(
    assets: &[Asset],
    folders: &HashMap<String, String>,
    fallback: impl Fn(&Asset) -> String,
) -> HashMap<String, String> {
    assets
        .iter()
        .map(|a| {
            let parent = a
                .collection_ids
                .iter()
                .find_map(|c| folders.get(c).cloned())
                .unwrap_or_else(|| fallback(a));
            (a.asset_id.clone(), parent)
        })
        .collect()
}

type Layout = (Vec<ro_crate::CrateFolder>, HashMap<String, String>);

/// A collection export: the collection is the crate root, the collections
/// below it nested folders.
async fn collection_layout(
    state: &AppState,
    top: &Collection,
    assets: &[Asset],
) -> AppResult<Layout> {
    let all = project_collections(state, &top.project_id).await?;
    let below = ro_crate::collection_folders(&all, &top.collection_id, "");
    let mut by_id: HashMap<String, String> = below
        .iter()
        .map(|(id, f)| (id.clone(), f.path.clone()))
        .collect();
    by_id.insert(top.collection_id.clone(), String::new());
    let parents = parents_of(assets, &by_id, |_| String::new());
    Ok((below.into_iter().map(|(_, f)| f).collect(), parents))
}

/// A search export: one folder per project (its collections below it) and
/// `personal/` for the caller's own assets.
async fn search_layout(state: &AppState, caller: &Caller, assets: &[Asset]) -> AppResult<Layout> {
    let mut projects: Vec<String> = assets
        .iter()
        .filter(|a| a.owner_type == OwnerType::Project)
        .map(|a| a.owner_id.clone())
        .collect();
    projects.sort();
    projects.dedup();
    let mut folders: Vec<ro_crate::CrateFolder> = Vec::new();
    let mut by_id: HashMap<String, String> = HashMap::new();
    let mut used: HashSet<String> = HashSet::new();
    let mut project_folder: HashMap<String, String> = HashMap::new();
    let personal = "personal/".to_string();
    if assets.iter().any(|a| a.owner_type == OwnerType::User) {
        used.insert("personal".into());
        folders.push(ro_crate::CrateFolder {
            path: personal.clone(),
            name: "Personal assets".into(),
            identifier: caller.user_id.clone(),
        });
    }
    for project_id in &projects {
        let Some(project) = state
            .meta
            .project_for_member(project_id, &caller.user_id)
            .await?
        else {
            continue;
        };
        let name = ro_crate::unique_folder_name(&mut used, &project.name, "project");
        let path = format!("{name}/");
        folders.push(ro_crate::CrateFolder {
            path: path.clone(),
            name: project.name.clone(),
            identifier: project.project_id.clone(),
        });
        by_id.insert(project.root_collection_id.clone(), path.clone());
        project_folder.insert(project.project_id.clone(), path.clone());
        let all = project_collections(state, project_id).await?;
        for (id, f) in ro_crate::collection_folders(&all, &project.root_collection_id, &path) {
            by_id.insert(id, f.path.clone());
            folders.push(f);
        }
    }
    let parents = parents_of(assets, &by_id, |a| match a.owner_type {
        OwnerType::User => personal.clone(),
        OwnerType::Project => project_folder.get(&a.owner_id).cloned().unwrap_or_default(),
    });
    Ok((folders, parents))
}
