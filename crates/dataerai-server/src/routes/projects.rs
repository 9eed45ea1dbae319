//! `/me`, projects and collections.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use dataerai_proto::api::{
    Asset, Collection, CreateCollection, CreateProject, Me, Page, PageQuery, Project,
    MAX_PROJECT_DESCRIPTION_BYTES,
};

use super::{found, page, project_access, require, window, Access};
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, AppResult};
use crate::state::AppState;

const MAX_NAME_LEN: usize = 255;

fn check_name(what: &str, name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(AppError::invalid(format!(
            "{what} name must be 1 to {MAX_NAME_LEN} characters"
        )));
    }
    super::refuse_control_characters(&format!("{what} name"), name)?;
    Ok(name.to_string())
}

#[utoipa::path(
    get,
    operation_id = "me",
    path = "/api/v1/me",
    summary = "Who the token belongs to",
    responses((status = 200, description = "The caller", body = Me))
)]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        user_id: caller.user_id,
        email: caller.email,
        scopes: caller.scopes,
        expires_at: caller.expires_at,
    })
}

#[utoipa::path(
    post,
    operation_id = "create_project",
    path = "/api/v1/projects",
    summary = "Create a project (root collection, owner membership, allocation)",
    request_body = CreateProject,
    responses((status = 201, description = "The new project", body = Project))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProject>,
) -> AppResult<(StatusCode, Json<Project>)> {
    let name = check_name("project", &body.name)?;
    if body.description.len() > MAX_PROJECT_DESCRIPTION_BYTES {
        return Err(AppError::invalid(format!(
            "project description is {} bytes; at most {MAX_PROJECT_DESCRIPTION_BYTES} bytes (64 KiB) are allowed",
            body.description.len()
        )));
    }
    let project = state
        .meta
        .create_project(
            &name,
            &body.description,
            &caller.user_id,
            state.default_quota,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(project)))
}

#[utoipa::path(
    get,
    operation_id = "list_projects",
    path = "/api/v1/projects",
    summary = "Projects the caller belongs to",
    params(PageQuery),
    responses((status = 200, description = "A page of projects", body = Page<Project>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<Project>>> {
    let w = window(&q);
    Ok(Json(page(
        state.meta.list_projects(&caller.user_id, w).await?,
        w,
    )))
}

/// The project if the caller is a member; 404 `project {id} not found`
/// otherwise, whether or not it exists (see [`super::require`]).
pub(crate) async fn member_project(
    state: &AppState,
    caller: &Caller,
    project_id: &str,
) -> AppResult<Project> {
    let project = state
        .meta
        .project_for_member(project_id, &caller.user_id)
        .await?;
    found(project, "project", project_id)
}

#[utoipa::path(
    get,
    operation_id = "get_project",
    path = "/api/v1/projects/{project_id}",
    summary = "A project (members only)",
    params(("project_id" = String, Path, description = "Project id")),
    responses((status = 200, description = "The project", body = Project))
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(project_id): ApiPath<String>,
) -> AppResult<Json<Project>> {
    Ok(Json(member_project(&state, &caller, &project_id).await?))
}

#[utoipa::path(
    get,
    operation_id = "list_collections",
    path = "/api/v1/projects/{project_id}/collections",
    summary = "Collections of a project",
    params(("project_id" = String, Path, description = "Project id"), PageQuery),
    responses((status = 200, description = "A page of collections", body = Page<Collection>))
)]
pub async fn list_collections(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(project_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<Collection>>> {
    member_project(&state, &caller, &project_id).await?;
    let w = window(&q);
    Ok(Json(page(
        state.meta.list_collections(&project_id, w).await?,
        w,
    )))
}

#[utoipa::path(
    post,
    operation_id = "create_collection",
    path = "/api/v1/projects/{project_id}/collections",
    summary = "Create a collection",
    params(("project_id" = String, Path, description = "Project id")),
    request_body = CreateCollection,
    responses((status = 201, description = "The new collection", body = Collection))
)]
pub async fn create_collection(
    State(state): State<AppState>,
    caller: Caller,
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
        .create_collection(&project_id, &name, &parent)
        .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// A collection the caller may read (member of its project); 404 otherwise.
async fn readable_collection(
    state: &AppState,
    caller: &Caller,
    collection_id: &str,
) -> AppResult<Collection> {
    let c = state.meta.get_collection(collection_id).await?;
    let c = found(c, "collection", collection_id)?;
    let access = project_access(state, caller, &c.project_id).await?;
    require(access, Access::Read, "collection", collection_id)?;
    Ok(c)
}

#[utoipa::path(
    get,
    operation_id = "get_collection",
    path = "/api/v1/collections/{collection_id}",
    summary = "A collection",
    params(("collection_id" = String, Path, description = "Collection id")),
    responses((status = 200, description = "The collection", body = Collection))
)]
pub async fn get_collection(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(collection_id): ApiPath<String>,
) -> AppResult<Json<Collection>> {
    Ok(Json(
        readable_collection(&state, &caller, &collection_id).await?,
    ))
}

#[utoipa::path(
    get,
    operation_id = "list_collection_assets",
    path = "/api/v1/collections/{collection_id}/assets",
    summary = "Assets in a collection",
    params(("collection_id" = String, Path, description = "Collection id"), PageQuery),
    responses((status = 200, description = "A page of assets", body = Page<Asset>))
)]
pub async fn collection_assets(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(collection_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<Asset>>> {
    readable_collection(&state, &caller, &collection_id).await?;
    let w = window(&q);
    Ok(Json(page(
        state.meta.list_collection_assets(&collection_id, w).await?,
        w,
    )))
}
