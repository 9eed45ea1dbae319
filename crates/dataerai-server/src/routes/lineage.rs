//! `GET /api/v1/assets/{asset_id}/lineage`: the assets reachable from one
//! along relationships (up: its origins, down: what was derived from it), in
//! one recursive store query. Nodes the caller may not read keep their id only.

use axum::extract::RawQuery;
use axum::Json;
use dataerai_proto::api::{
    Lineage, LineageNode, LineageQuery, MAX_LINEAGE_DEPTH, MAX_LINEAGE_EDGES,
    MAX_RELATIONSHIP_TYPE_LEN,
};
use dataerai_store::meta::LineageDirection;

use super::{load_asset, Access, AssetIdPath, Ctx, ReadableOwners};
use crate::auth::Caller;
use crate::error::{ApiPath, AppError, AppResult};
use crate::state::AppState;

/// Most relationship types one request may filter on.
const MAX_TYPES: usize = 50;

/// Lineage: assets reachable along relationships (up: origins, down: derived)
#[utoipa::path(get, path = "/api/v1/assets/{asset_id}/lineage", params(AssetIdPath, LineageQuery),
    responses((status = 200, description = "Nodes and edges", body = Lineage)))]
pub async fn asset_lineage(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> AppResult<Json<Lineage>> {
    // serde_html_form: `type` may repeat (axum's Query takes one value).
    let q: LineageQuery = serde_html_form::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| AppError::invalid(format!("query string: {e}")))?;
    let (direction, depth) = walk_of(q.direction.as_deref(), LineageDirection::Up, q.depth)?;
    let mut types: Vec<String> = Vec::new();
    for t in q.types.iter().flat_map(|t| t.split(',')) {
        let t = t.trim();
        if t.is_empty() || t.chars().count() > MAX_RELATIONSHIP_TYPE_LEN {
            return Err(AppError::invalid(format!(
                "type must be 1 to {MAX_RELATIONSHIP_TYPE_LEN} characters"
            )));
        }
        if !types.iter().any(|x| x == t) {
            types.push(t.to_string());
        }
    }
    if types.len() > MAX_TYPES {
        return Err(AppError::invalid(format!(
            "at most {MAX_TYPES} relationship types"
        )));
    }
    load_asset(&state, &caller, &asset_id, Access::Read).await?;
    let lineage = readable_lineage(&state, &caller, &asset_id, direction, depth, &types).await?;
    Ok(Json(lineage))
}

/// The lineage walk from `asset_id` (at most [`MAX_LINEAGE_EDGES`] edges;
/// `types` empty: every relationship type) as the caller may see it: nodes
/// they may not read keep their id only. The caller's access to the root is
/// checked before.
pub(crate) async fn readable_lineage(
    state: &AppState,
    caller: &Caller,
    asset_id: &str,
    direction: LineageDirection,
    depth: u32,
    types: &[String],
) -> AppResult<Lineage> {
    let mut lineage = state
        .meta
        .lineage(asset_id, direction, depth, types, MAX_LINEAGE_EDGES)
        .await?;
    redact_nodes(state, caller, &mut lineage.nodes).await?;
    Ok(lineage)
}

/// A lineage walk's `direction` (`up`, `down` or `both`; `default` when
/// absent) and `depth` (1 to the maximum, which is also the default).
pub(crate) fn walk_of(
    direction: Option<&str>,
    default: LineageDirection,
    depth: Option<u32>,
) -> AppResult<(LineageDirection, u32)> {
    let direction = match direction {
        None => default,
        Some("up") => LineageDirection::Up,
        Some("down") => LineageDirection::Down,
        Some("both") => LineageDirection::Both,
        Some(other) => {
            return Err(AppError::invalid(format!(
                "direction {other:?} is not one of up, down, both"
            )))
        }
    };
    let depth = depth.unwrap_or(MAX_LINEAGE_DEPTH);
    if depth == 0 || depth > MAX_LINEAGE_DEPTH {
        return Err(AppError::invalid(format!(
            "depth must be 1 to {MAX_LINEAGE_DEPTH}"
        )));
    }
    Ok((direction, depth))
}

/// Whoever may not read a node sees its id only (one access check per owner).
async fn redact_nodes(
    state: &AppState,
    caller: &Caller,
    nodes: &mut [LineageNode],
) -> AppResult<()> {
    let mut readable = ReadableOwners::default();
    for node in nodes {
        let (Some(owner_type), Some(owner_id)) = (node.owner_type, node.owner_id.clone()) else {
            node.redact();
            continue;
        };
        if !readable
            .may_read(state, caller, owner_type, &owner_id)
            .await?
        {
            node.redact();
        }
    }
    Ok(())
}
