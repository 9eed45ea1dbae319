//! Collections as a tree: create, list (a project's, or one collection's
//! children), rename and move, delete when empty, move an asset between
//! collections of its project, and resolve a collection path
//! (`Project/raw/2026-12-06`), creating what is missing.
//!
//! Reading needs membership of the collection's project (anyone else gets the
//! 404 of an unknown id, see [`super::require`]); writing needs the member
//! role. The store keeps the tree consistent (see
//! `dataerai_store::meta::collections`).

use axum::http::StatusCode;
use axum::Json;
use dataerai_proto::api::ProjectRole;
use dataerai_proto::api::{
    collection_path_segments, Asset, Collection, CollectionListQuery, CollectionPath,
    CreateCollection, EnsureCollectionPath, MoveAsset, Page, PageQuery, UpdateCollection,
};
use dataerai_store::meta::{EnsurePath, Ensured, NewCollection};

use super::projects::{check_description, check_name, member_project};
use super::{
    found, load_asset, not_found_error, page, paged, project_access, require, window, window_of,
    Access, AssetIdPath, CollectionIdPath, Ctx, ProjectIdPath,
};
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, AppResult};
use crate::state::AppState;

/// A collection and what the caller may do in its project (`None`: the 404
/// of an unknown id).
async fn collection_with_access(
    state: &AppState,
    caller: &Caller,
    collection_id: &str,
    need: Access,
) -> AppResult<Collection> {
    let c = state.meta.get_collection(collection_id).await?;
    let c = found(c, "collection", collection_id)?;
    let access = project_access(state, caller, &c.project_id).await?;
    require(access, need, "collection", collection_id)?;
    Ok(c)
}

/// Collections of a project (every one, or those directly under `parent_id`)
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/collections",
    params(ProjectIdPath, CollectionListQuery),
    responses((status = 200, description = "A page of collections", body = Page<Collection>)))]
pub async fn list_collections(
    Ctx { state, caller }: Ctx,
    ApiPath(project_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<CollectionListQuery>,
) -> AppResult<Json<Page<Collection>>> {
    member_project(&state, &caller, &project_id).await?;
    let w = window_of(q.limit, q.offset);
    let items = match &q.parent_id {
        None => state.meta.list_collections(&project_id, w).await?,
        Some(parent) => {
            match state.meta.get_collection(parent).await? {
                Some(c) if c.project_id == project_id => {}
                _ => return Err(not_found_error("collection", parent)),
            }
            state.meta.collection_children(parent, w).await?
        }
    };
    Ok(Json(page(items, w)))
}

/// Create a collection (sibling names are unique within a parent)
#[utoipa::path(post, path = "/api/v1/projects/{project_id}/collections", params(ProjectIdPath),
    request_body = CreateCollection,
    responses((status = 201, description = "The new collection", body = Collection)))]
pub async fn create_collection(
    Ctx { state, caller }: Ctx,
    ApiPath(project_id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateCollection>,
) -> AppResult<(StatusCode, Json<Collection>)> {
    let project = member_project(&state, &caller, &project_id).await?;
    if project_access(&state, &caller, &project_id).await? != Access::Write {
        return Err(AppError::denied(
            "viewers cannot create collections; ask a project admin for the member role",
        ));
    }
    let name = check_name("collection", &body.name)?;
    let description = body.description.unwrap_or_default();
    check_description("collection", &description)?;
    let parent = body.parent_id.unwrap_or(project.root_collection_id);
    match state.meta.get_collection(&parent).await? {
        Some(c) if c.project_id == project_id => {}
        _ => {
            return Err(AppError::invalid(format!(
                "parent collection {parent} is not a collection of this project"
            )))
        }
    }
    let c = state
        .meta
        .create_child_collection(NewCollection {
            project_id: project_id.clone(),
            parent_id: parent,
            name,
            description,
        })
        .await?;
    crate::audit::by_caller(
        &state,
        &caller,
        "collection.created",
        ("collection", &c.collection_id),
        serde_json::json!({"name": c.name, "parent_id": c.parent_id, "project_id": project_id}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(c)))
}

/// A collection (with its asset and child counts)
#[utoipa::path(get, path = "/api/v1/collections/{collection_id}", params(CollectionIdPath),
    responses((status = 200, description = "The collection", body = Collection)))]
pub async fn get_collection(
    Ctx { state, caller }: Ctx,
    ApiPath(collection_id): ApiPath<String>,
) -> AppResult<Json<Collection>> {
    Ok(Json(
        collection_with_access(&state, &caller, &collection_id, Access::Read).await?,
    ))
}

/// Rename and/or move a collection (not the root; not into its own subtree or another project)
#[utoipa::path(patch, path = "/api/v1/collections/{collection_id}", params(CollectionIdPath),
    request_body = UpdateCollection,
    responses((status = 200, description = "The updated collection", body = Collection)))]
pub async fn update_collection(
    Ctx { state, caller }: Ctx,
    ApiPath(collection_id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateCollection>,
) -> AppResult<Json<Collection>> {
    let before = collection_with_access(&state, &caller, &collection_id, Access::Write).await?;
    if body.name.is_none() && body.parent_id.is_none() {
        return Err(AppError::invalid(
            "nothing to change: give `name` (rename), `parent_id` (move) or both",
        ));
    }
    let name = body
        .name
        .as_deref()
        .map(|n| check_name("collection", n))
        .transpose()?;
    let after = state
        .meta
        .update_collection(&collection_id, name.as_deref(), body.parent_id.as_deref())
        .await?;
    crate::audit::by_caller(
        &state,
        &caller,
        "collection.updated",
        ("collection", &collection_id),
        serde_json::json!({
            "name": after.name, "parent_id": after.parent_id,
            "old_name": before.name, "old_parent_id": before.parent_id,
        }),
    )
    .await;
    Ok(Json(after))
}

/// Delete an empty collection (not the root)
#[utoipa::path(delete, path = "/api/v1/collections/{collection_id}", params(CollectionIdPath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_collection(
    Ctx { state, caller }: Ctx,
    ApiPath(collection_id): ApiPath<String>,
) -> AppResult<StatusCode> {
    let c = collection_with_access(&state, &caller, &collection_id, Access::Write).await?;
    state.meta.delete_collection(&collection_id).await?;
    crate::audit::by_caller(
        &state,
        &caller,
        "collection.deleted",
        ("collection", &collection_id),
        serde_json::json!({"name": c.name, "parent_id": c.parent_id, "project_id": c.project_id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The collections directly under a collection, oldest first
#[utoipa::path(get, path = "/api/v1/collections/{collection_id}/children",
    params(CollectionIdPath, PageQuery),
    responses((status = 200, description = "A page of collections", body = Page<Collection>)))]
pub async fn list_collection_children(
    Ctx { state, caller }: Ctx,
    ApiPath(collection_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<Collection>>> {
    collection_with_access(&state, &caller, &collection_id, Access::Read).await?;
    paged(window(&q), |w| {
        state.meta.collection_children(&collection_id, w)
    })
    .await
}

/// Assets in a collection
#[utoipa::path(get, path = "/api/v1/collections/{collection_id}/assets",
    params(CollectionIdPath, PageQuery),
    responses((status = 200, description = "A page of assets", body = Page<Asset>)))]
pub async fn list_collection_assets(
    Ctx { state, caller }: Ctx,
    ApiPath(collection_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<Asset>>> {
    collection_with_access(&state, &caller, &collection_id, Access::Read).await?;
    paged(window(&q), |w| {
        state.meta.list_collection_assets(&collection_id, w)
    })
    .await
}

/// File a project asset in one collection of its project (replacing its collection links)
#[utoipa::path(put, path = "/api/v1/assets/{asset_id}/collection", params(AssetIdPath),
    request_body = MoveAsset,
    responses((status = 200, description = "The asset, in its new collection", body = Asset)))]
pub async fn move_asset(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
    ApiJson(body): ApiJson<MoveAsset>,
) -> AppResult<Json<Asset>> {
    let asset = load_asset(&state, &caller, &asset_id, Access::Write).await?;
    // An unknown collection and another project's answer alike, so ids of
    // projects the caller cannot see cannot be probed.
    let target = state.meta.get_collection(&body.collection_id).await?;
    let same_project = asset.owner_type == dataerai_proto::api::OwnerType::Project
        && target.is_some_and(|c| c.project_id == asset.owner_id);
    if !same_project {
        return Err(AppError::invalid(format!(
            "collection {} is not a collection of the project that owns asset {asset_id}; an asset moves only between collections of its project",
            body.collection_id
        )));
    }
    state
        .meta
        .move_asset_to_collection(&asset_id, &body.collection_id)
        .await?;
    crate::audit::by_caller(
        &state,
        &caller,
        "asset.moved",
        ("asset", &asset_id),
        serde_json::json!({"collection_id": body.collection_id, "old_collection_ids": asset.collection_ids}),
    )
    .await;
    let moved = state.meta.get_asset(&asset_id).await?;
    Ok(Json(found(moved, "asset", &asset_id)?))
}

/// Resolve a collection path (`Project/raw/2026-12-06`), creating what is missing
#[utoipa::path(post, path = "/api/v1/collections/ensure", request_body = EnsureCollectionPath,
    responses((status = 200, description = "The path's project and last collection", body = CollectionPath)))]
pub async fn ensure_collection_path(
    Ctx { state, caller }: Ctx,
    ApiJson(body): ApiJson<EnsureCollectionPath>,
) -> AppResult<Json<CollectionPath>> {
    let segments = collection_path_segments(&body.path).map_err(AppError::invalid)?;
    let mut checked = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let what = if i == 0 { "project" } else { "collection" };
        checked.push(check_name(what, segment)?);
    }
    let path = checked.join("/");
    let project_name = checked[0].clone();
    let ensured = state
        .meta
        .ensure_collection_path(EnsurePath {
            user_id: caller.user_id.clone(),
            segments: checked,
            create_project: body.create_project,
            project_quota_bytes: state.default_quota,
            may_create: ProjectRole::may_write,
        })
        .await?;
    match ensured {
        Ensured::Resolved {
            project_id,
            project_name,
            collection_id,
            created,
        } => {
            if created {
                crate::audit::by_caller(
                    &state,
                    &caller,
                    "collection_path.ensured",
                    ("collection", &collection_id),
                    serde_json::json!({"path": path, "project_id": project_id}),
                )
                .await;
            }
            Ok(Json(CollectionPath {
                path,
                project_id,
                project_name,
                collection_id,
            }))
        }
        Ensured::NoProject => Err(AppError::not_found(format!(
            "project {project_name:?} not found among your projects; pass create_project to create it"
        ))),
        Ensured::SeveralProjects(ids) => Err(AppError::new(
            dataerai_proto::ErrorCode::Conflict,
            format!(
                "you belong to {} projects named {project_name:?} ({}); use a collection id instead of a path",
                ids.len(),
                ids.join(", ")
            ),
        )),
        Ensured::MayNotCreate {
            project_id,
            segment,
        } => Err(AppError::denied(format!(
            "collection {segment:?} of path {path:?} does not exist and your role in project {project_id} may not create it; ask a project owner or admin for the member role"
        ))),
    }
}
