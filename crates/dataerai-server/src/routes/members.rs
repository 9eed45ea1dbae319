//! Project members (`/api/v1/projects/{project_id}/members`) and the audit log
//! (`/api/v1/audit`).
//!
//! Rules: any member lists the members; owners and admins add, change and
//! remove them; only an owner grants, changes or removes the `owner` role; the
//! last owner stays (the store refuses to demote or remove them). Adding an
//! email nobody has an account for invites it (see [`add`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use dataerai_proto::api::{AddMember, AuditEvent, Member, Page, PageQuery, ProjectRole};
use serde_json::json;

use super::projects::member_project;
use super::{paged, window, Ctx, MemberIdPath, ProjectIdPath};
use crate::audit;
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, AppResult};
use crate::state::AppState;

/// Members of a project (any member)
#[utoipa::path(get, path = "/api/v1/projects/{project_id}/members",
    params(ProjectIdPath, PageQuery),
    responses((status = 200, description = "A page of members", body = Page<Member>)))]
pub async fn list_members(
    Ctx { state, caller }: Ctx,
    ApiPath(project_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<Member>>> {
    member_project(&state, &caller, &project_id).await?;
    paged(window(&q), |w| state.meta.list_members(&project_id, w)).await
}

/// Most members (invited ones included) a project may have: bounds how many
/// invited accounts one project admin can make.
const MAX_MEMBERS: u64 = 1000;

/// An email address to add: 1 to 320 characters with an `@`, no control
/// characters. Every account's email passes this check, so refusing an
/// address here says nothing about who has an account.
fn check_email(email: &str) -> AppResult<&str> {
    let email = email.trim();
    if email.chars().count() > 320 || !email.contains('@') {
        return Err(AppError::invalid(
            "email must be an address like name@example.org (at most 320 characters)",
        ));
    }
    super::refuse_control_characters("email", email)?;
    Ok(email)
}

/// The caller's role, which must be owner or admin.
async fn manager_role(
    state: &AppState,
    caller: &Caller,
    project_id: &str,
) -> AppResult<ProjectRole> {
    let project = member_project(state, caller, project_id).await?;
    if !project.role.may_manage_members() {
        return Err(AppError::denied(format!(
            "only owners and admins of project {project_id} manage its members; your role is {}",
            project.role
        )));
    }
    Ok(project.role)
}

// `add` and `remove` take the state and the caller apart: the project page's
// member forms (`web::members`) call them with the caller of a web session.
/// Add a member (201) or change a member's role (200); owners and admins; only owners grant `owner`
#[utoipa::path(post, operation_id = "add_member", path = "/api/v1/projects/{project_id}/members",
    params(ProjectIdPath), request_body = AddMember,
    responses((status = 201, description = "The member was added", body = Member), (status = 200, description = "The member's role was changed", body = Member)))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(project_id): ApiPath<String>,
    ApiJson(body): ApiJson<AddMember>,
) -> AppResult<(StatusCode, Json<Member>)> {
    let my_role = manager_role(&state, &caller, &project_id).await?;
    // An unknown role string is refused while the body is read.
    let role = body.role;
    let email = check_email(&body.email)?;
    // An email without an account is invited (an account without a password
    // that a server administrator's `admin create-user` later completes), so
    // the answer is the same for known and unknown emails: adding a member
    // never tells who has an account.
    let user = state
        .meta
        .user_by_email_or_invite(email, state.default_quota)
        .await?;
    let previous = state.meta.member_role(&project_id, &user.user_id).await?;
    if previous.is_none() {
        let (_, members) = state
            .meta
            .list_members(&project_id, super::window_of(Some(0), None))
            .await?;
        if members >= MAX_MEMBERS {
            return Err(AppError::invalid(format!(
                "project {project_id} has {members} members; at most {MAX_MEMBERS} are allowed (remove some first)"
            )));
        }
    }
    if my_role != ProjectRole::Owner
        && (role == ProjectRole::Owner || previous == Some(ProjectRole::Owner))
    {
        return Err(AppError::denied(
            "only an owner may grant or change the owner role",
        ));
    }
    let (member, added) = state
        .meta
        .set_member(&project_id, &user.user_id, role, chrono::Utc::now())
        .await?;
    let (action, details) = if added {
        (
            "member.added",
            json!({"project_id": project_id, "email": member.email, "role": role}),
        )
    } else {
        (
            "member.role_changed",
            json!({"project_id": project_id, "email": member.email, "role": role, "previous_role": previous}),
        )
    };
    if added || previous != Some(role) {
        audit::by_caller(&state, &caller, action, ("user", &user.user_id), details).await;
    }
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(member)))
}

/// Remove a member (owners and admins; the last owner stays)
#[utoipa::path(delete, operation_id = "remove_member",
    path = "/api/v1/projects/{project_id}/members/{user_id}", params(ProjectIdPath, MemberIdPath),
    responses((status = 204, description = "Removed")))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((project_id, user_id)): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    let my_role = manager_role(&state, &caller, &project_id).await?;
    let role = state
        .meta
        .member_role(&project_id, &user_id)
        .await?
        .ok_or_else(|| {
            AppError::not_found(format!(
                "user {user_id} is not a member of project {project_id}"
            ))
        })?;
    if role == ProjectRole::Owner && my_role != ProjectRole::Owner {
        return Err(AppError::denied("only an owner may remove an owner"));
    }
    state.meta.remove_member(&project_id, &user_id).await?;
    // What they had reserved in the project goes with them.
    let uploads_aborted = state
        .meta
        .abort_member_uploads(&project_id, &user_id)
        .await?;
    audit::by_caller(
        &state,
        &caller,
        "member.removed",
        ("user", &user_id),
        json!({"project_id": project_id, "role": role, "uploads_aborted": uploads_aborted}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log, newest first (server admins only)
#[utoipa::path(get, path = "/api/v1/audit", params(PageQuery),
    responses((status = 200, description = "A page of audit events", body = Page<AuditEvent>)))]
pub async fn list_audit_events(
    Ctx { state, caller }: Ctx,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<AuditEvent>>> {
    let is_admin = state
        .meta
        .user_auth_by_id(&caller.user_id)
        .await?
        .is_some_and(|u| u.is_admin);
    if !is_admin {
        return Err(AppError::denied(
            "the audit log is for server administrators (`admin create-user --admin`)",
        ));
    }
    paged(window(&q), |w| state.meta.list_audit(w)).await
}
