//! The member forms of the project page (owners and admins): add a member or
//! change a role, and remove a member. Each form calls the REST handler of
//! `POST /api/v1/projects/{id}/members` or `DELETE …/members/{user_id}`, so
//! the rules (only owners grant `owner`, the last owner stays, invitations,
//! the audit log) are the same; then 303 back to the project page.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use dataerai_proto::api::{AddMember, ProjectRole, PROJECT_ROLES};
use dataerai_proto::ErrorCode;
use dataerai_store::meta::auth::SessionRecord;
use maud::{html, Markup};
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::layout::{csrf_field, Flash, Page};
use super::redirect;
use super::view::{error_page, not_found};
use crate::error::{ApiJson, ApiPath, AppError};
use crate::openapi::FormRefused;
use crate::routes::{members, MemberIdPath, ProjectIdPath};
use crate::state::AppState;

/// The fields of the "Add or change a member" form (and of a row's role form).
#[derive(Deserialize)]
pub struct MemberFields {
    email: String,
    role: String,
}

/// Web: add a member or change a role (form email, role, csrf_token); owners and admins, as POST /api/v1/projects/{id}/members
#[utoipa::path(post, operation_id = "web_set_member", path = "/projects/{project_id}/members",
    security(()), params(ProjectIdPath),
    responses((status = 303, description = "Done: back to the project page"), FormRefused))]
pub async fn member_set(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    CsrfForm {
        session,
        caller,
        form,
    }: CsrfForm<MemberFields>,
) -> Response {
    let Ok(role) = form.role.parse::<ProjectRole>() else {
        return refused(
            &session,
            &project_id,
            AppError::invalid(format!("role must be one of {}", PROJECT_ROLES.join(", "))),
        );
    };
    let body = AddMember {
        email: form.email,
        role,
    };
    match members::add(
        State(state),
        caller,
        ApiPath(project_id.clone()),
        ApiJson(body),
    )
    .await
    {
        Ok(_) => redirect(&format!("/projects/{project_id}#members-h")),
        Err(e) => refused(&session, &project_id, e),
    }
}

/// Web: remove a member (form csrf_token); owners and admins, as DELETE /api/v1/projects/{id}/members/{user_id}
#[utoipa::path(post, operation_id = "web_remove_member",
    path = "/projects/{project_id}/members/{user_id}/remove", security(()),
    params(ProjectIdPath, MemberIdPath),
    responses((status = 303, description = "Done: back to the project page"), FormRefused))]
pub async fn member_remove(
    State(state): State<AppState>,
    Path((project_id, user_id)): Path<(String, String)>,
    CsrfForm {
        session, caller, ..
    }: CsrfForm,
) -> Response {
    match members::remove(State(state), caller, ApiPath((project_id.clone(), user_id))).await {
        Ok(_) => redirect(&format!("/projects/{project_id}#members-h")),
        Err(e) => refused(&session, &project_id, e),
    }
}

/// Why a member form was refused: the REST error's message, the one 404 page
/// for a project the user is not in.
fn refused(session: &SessionRecord, project_id: &str, e: AppError) -> Response {
    let status = match e.error.code {
        ErrorCode::NotFound => return not_found(session),
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        _ => return error_page(e, session),
    };
    Page::new("Members not changed")
        .status(status)
        .signed_in(session)
        .flash(Flash::error(e.error.message))
        .render(html! {
            p { a href={ "/projects/" (project_id) } { "Back to the project" } }
        })
}

/// The role picker of a form.
fn role_select(id: &str, current: Option<ProjectRole>) -> Markup {
    html! {
        select id=(id) name="role" {
            @for r in PROJECT_ROLES {
                option value=(r) selected[current.is_some_and(|c| c.as_str() == *r)] { (r) }
            }
        }
    }
}

/// A member row's forms: change the role, remove.
pub(super) fn row_forms(
    project_id: &str,
    user_id: &str,
    email: &str,
    role: ProjectRole,
    csrf: &str,
) -> Markup {
    let select_id = format!("role-{user_id}");
    html! {
        form class="inline" method="post" action={ "/projects/" (project_id) "/members" } {
            (csrf_field(csrf))
            input type="hidden" name="email" value=(email);
            label class="visually-hidden" for=(select_id) { "Role of " (email) }
            (role_select(&select_id, Some(role)))
            button type="submit" class="btn btn-small" { "Change" }
        }
        form class="inline" method="post" action={ "/projects/" (project_id) "/members/" (user_id) "/remove" } {
            (csrf_field(csrf))
            button type="submit" class="btn btn-small btn-danger" aria-label={ "Remove " (email) } { "Remove" }
        }
    }
}

/// The "Add a member" form under the member table.
pub(super) fn add_form(project_id: &str, csrf: &str) -> Markup {
    html! {
        form class="add-member" method="post" action={ "/projects/" (project_id) "/members" } {
            (csrf_field(csrf))
            div class="field grow" {
                label for="member-email" { "Add a member" }
                input id="member-email" type="email" name="email" placeholder="name@lab.org" required;
            }
            div class="field" {
                label for="member-role" { "Role" }
                (role_select("member-role", Some(ProjectRole::Member)))
            }
            button type="submit" class="btn btn-primary" { "Add" }
        }
    }
}
