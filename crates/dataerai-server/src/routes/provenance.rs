//! Provenance export: `GET /api/v1/assets/{asset_id}/provenance` (an asset's
//! lineage as W3C PROV-JSON) and `GET /api/v1/ro-crate` (a collection tree or
//! a search result as RO-Crate 1.1 metadata). This module gathers the input —
//! one lineage or search, then the details of all assets at once — and
//! decides what the caller may see; `crate::provenance` shapes the documents.

use std::collections::{HashMap, HashSet};

use axum::{Extension, Json};
use dataerai_proto::api::{
    Asset, Collection, OwnerType, ProvenanceQuery, RoCrateQuery, MAX_CRATE_ASSETS,
    MAX_LINEAGE_EDGES,
};
use dataerai_store::meta::{LineageDirection, Window};
use dataerai_store::search::{self, SearchRequest, Sort};
use serde_json::Value;

use super::{every_page, found, load_asset, project_access, require, Access, Ctx};
use crate::auth::Caller;
use crate::connections::ServedAt;
use crate::error::{ApiPath, ApiQuery, AppError, AppResult};
use crate::provenance::{prov_json, ro_crate};
use crate::state::AppState;

/// Search results per page while collecting a crate's assets.
const CRATE_PAGE: u64 = 1000;

#[utoipa::path(
    get,
    path = "/api/v1/assets/{asset_id}/provenance",
    summary = "An asset's lineage as W3C PROV-JSON (entities, wasDerivedFrom, agents)",
    params(("asset_id" = String, Path, description = "Asset id"), ProvenanceQuery),
    responses((status = 200, description = "A PROV-JSON document", body = Object))
)]
pub async fn asset_provenance(
    Ctx { state, caller }: Ctx,
    served_at: Option<Extension<ServedAt>>,
    ApiPath(asset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ProvenanceQuery>,
) -> AppResult<Json<Value>> {
    let (direction, depth) =
        super::lineage::walk_of(q.direction.as_deref(), LineageDirection::Both, q.depth)?;
    load_asset(&state, &caller, &asset_id, Access::Read).await?;
    let mut lineage = state
        .meta
        .lineage(&asset_id, direction, depth, &[], MAX_LINEAGE_EDGES)
        .await?;
    super::lineage::redact_nodes(&state, &caller, &mut lineage.nodes).await?;
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
    Ok(Json(prov_json::document(&prov_json::ProvInput {
        base_url: &base,
        lineage: &lineage,
        facts: &facts,
        qualifiers: &qualifiers,
        emails: &emails,
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/ro-crate",
    summary = "RO-Crate 1.1 metadata (ro-crate-metadata.json) for a collection tree or a search",
    params(RoCrateQuery),
    responses((status = 200, description = "The crate's ro-crate-metadata.json", body = Object))
)]
pub async fn ro_crate_metadata(
    Ctx { state, caller }: Ctx,
    served_at: Option<Extension<ServedAt>>,
    ApiQuery(q): ApiQuery<RoCrateQuery>,
) -> AppResult<Json<Value>> {
    let base = crate::oauth::base_url(&state, served_at.map(|Extension(s)| s));
    let base = crate::provenance::trim_base(&base).to_string();
    let (text, plan) =
        match (&q.collection_id, &q.q) {
            (Some(id), None) => {
                let c = state.meta.get_collection(id).await?;
                let c = found(c, "collection", id)?;
                let access = project_access(&state, &caller, &c.project_id).await?;
                require(access, Access::Read, "collection", id)?;
                (format!("within:{id}"), Plan::Collection(c))
            }
            (None, Some(text)) => (text.clone(), Plan::Search(text.clone())),
            _ => return Err(AppError::invalid(
                "give exactly one of collection_id (a collection and the collections below it) \
                 or q (a search)",
            )),
        };
    let assets = crate_assets(&state, &caller, &text).await?;
    let ids: Vec<String> = assets.iter().map(|a| a.asset_id.clone()).collect();
    let relationships = state.meta.relationships_among(&ids).await?;
    let (folders, parents) = match &plan {
        Plan::Collection(c) => collection_layout(&state, c, &assets).await?,
        Plan::Search(_) => search_layout(&state, &caller, &assets).await?,
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
    };
    let items = assets
        .iter()
        .map(|a| ro_crate::CrateAsset {
            asset: a,
            parent: parents.get(&a.asset_id).cloned().unwrap_or_default(),
        })
        .collect();
    Ok(Json(ro_crate::document(&ro_crate::CrateInput {
        base_url: &base,
        identifier,
        name,
        description,
        date_published: chrono::Utc::now(),
        include_data: q.include_data.unwrap_or(true),
        folders,
        assets: items,
        relationships: &relationships,
    })))
}

enum Plan {
    Collection(Collection),
    Search(String),
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
        let stem = ro_crate::folder_name(&project.name, "project");
        let mut name = stem.clone();
        let mut n = 2;
        while !used.insert(name.clone()) {
            name = format!("{stem}-{n}");
            n += 1;
        }
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
