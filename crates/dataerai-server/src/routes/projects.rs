//! `/me` and projects (collections: `collections.rs`).

use axum::http::StatusCode;
use axum::Json;
use dataerai_proto::api::{
    CreateProject, Me, Page, PageQuery, Project, MAX_PROJECT_DESCRIPTION_BYTES,
};

use super::{found, paged, window, Ctx, ProjectIdPath};
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, AppResult};
use crate::state::AppState;

const MAX_NAME_LEN: usize = 255;

pub(super) fn check_name(what: &str, name: &str) -> AppResult<String> {
    super::check_text(&format!("{what} name"), name, MAX_NAME_LEN)
}

/// A project's or collection's description: at most 64 KiB.
pub(super) fn check_description(what: &str, description: &str) -> AppResult<()> {
    if description.len() > MAX_PROJECT_DESCRIPTION_BYTES {
        return Err(AppError::invalid(format!(
            "{what} description is {} bytes; at most {MAX_PROJECT_DESCRIPTION_BYTES} bytes (64 KiB) are allowed",
            description.len()
        )));
    }
    Ok(())
}

/// Who the token belongs to
#[utoipa::path(get, path = "/api/v1/me",
    responses((status = 200, description = "The caller", body = Me)))]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        user_id: caller.user_id,
        email: caller.email,
        scopes: caller.scopes,
        expires_at: caller.expires_at,
    })
}

/// Create a project (root collection, owner membership, allocation)
#[utoipa::path(post, path = "/api/v1/projects", request_body = CreateProject,
    responses((status = 201, description = "The new project", body = Project)))]
pub async fn create_project(
    Ctx { state, caller }: Ctx,
    ApiJson(body): ApiJson<CreateProject>,
) -> AppResult<(StatusCode, Json<Project>)> {
    let name = check_name("project", &body.name)?;
    check_description("project", &body.description)?;
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

/// Projects the caller belongs to
#[utoipa::path(get, path = "/api/v1/projects", params(PageQuery),
    responses((status = 200, description = "A page of projects", body = Page<Project>)))]
pub async fn list_projects(
    Ctx { state, caller }: Ctx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<Project>>> {
    paged(window(&q), |w| state.meta.list_projects(&caller.user_id, w)).await
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

/// A project (members only)
#[utoipa::path(get, path = "/api/v1/projects/{project_id}", params(ProjectIdPath),
    responses((status = 200, description = "The project", body = Project)))]
pub async fn get_project(
    Ctx { state, caller }: Ctx,
    ApiPath(project_id): ApiPath<String>,
) -> AppResult<Json<Project>> {
    Ok(Json(member_project(&state, &caller, &project_id).await?))
}
