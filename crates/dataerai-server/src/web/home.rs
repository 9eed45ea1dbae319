//! `/` once signed in: my projects (role, asset count, usage of quota), my
//! personal space, and the newest assets I can read.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use dataerai_proto::api::{Asset, OwnerType, Project};
use dataerai_store::meta::Window;
use dataerai_store::search::{self, SearchRequest, Sort};
use maud::html;

use super::layout::{Flash, Page};
use super::session::ClientAddr;
use super::view::{
    asset_table, card_or_empty, done_flash, error_page, size, usage, viewer, Params, Viewer,
};
use crate::error::AppResult;
use crate::openapi::HtmlPage;
use crate::state::AppState;

/// Projects listed on the home page (the REST list pages further).
const MAX_PROJECTS: u64 = 200;
/// Newest assets shown under "Recent uploads".
const RECENT: u64 = 10;

/// Web: your projects, personal space and recent uploads; needs a session (else 303 to /login)
#[utoipa::path(get, operation_id = "web_home", path = "/", security(()),
    responses(HtmlPage, (status = 303, description = "Not signed in: to /login?next=/")))]
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientAddr(addr): ClientAddr,
    RawQuery(raw): RawQuery,
) -> Response {
    let v = match viewer(&state, &headers, addr, "/", None).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let done = done_flash(&Params::parse(raw.as_deref()));
    match render(&state, &v, done).await {
        Ok(r) => r,
        Err(e) => error_page(e, &v.session),
    }
}

struct ProjectRow {
    project: Project,
    assets: u64,
}

async fn render(state: &AppState, v: &Viewer, done: Option<Flash>) -> AppResult<Response> {
    let me = &v.caller.user_id;
    let all = Window {
        limit: MAX_PROJECTS,
        offset: 0,
    };
    let count = Window {
        limit: 1,
        offset: 0,
    };
    let (projects, project_total) = state.meta.list_projects(me, all).await?;
    let mut rows = Vec::with_capacity(projects.len());
    for project in projects {
        let (_, assets) = state
            .meta
            .list_assets(OwnerType::Project, &project.project_id, count)
            .await?;
        rows.push(ProjectRow { project, assets });
    }
    let personal = state.meta.allocation(OwnerType::User, me).await?;
    let (_, personal_assets) = state.meta.list_assets(OwnerType::User, me, count).await?;
    let recent = recent_assets(state, me).await?;
    Ok(Page::new("Your data")
        .signed_in(&v.session)
        .current("/")
        .flash(done)
        .render(html! {
            section class="card" aria-labelledby="projects-h" {
                h2 id="projects-h" { "Projects" }
                @if rows.is_empty() {
                    p class="empty" {
                        "You are not a member of any project yet. Create one with "
                        code class="cmd" { "dataerai project create NAME" }
                        ", or ask a project owner to add you."
                    }
                } @else {
                    ul class="project-list" {
                        @for row in &rows {
                            li class="project" {
                                div class="project-head" {
                                    a class="project-name" href={ "/projects/" (row.project.project_id) } { (row.project.name) }
                                    span class={ "badge role " (row.project.role.as_str()) } { (row.project.role.as_str()) }
                                }
                                @if !row.project.description.is_empty() {
                                    p class="muted small description" { (row.project.description) }
                                }
                                p class="small" {
                                    (row.assets) @if row.assets == 1 { " asset" } @else { " assets" }
                                }
                                (usage(&row.project.allocation))
                            }
                        }
                    }
                    @if project_total > rows.len() as u64 {
                        p class="muted small" { "Showing " (rows.len()) " of " (project_total) " projects." }
                    }
                }
            }
            section class="card" aria-labelledby="personal-h" {
                h2 id="personal-h" { "Personal space" }
                p class="small" {
                    (personal_assets) @if personal_assets == 1 { " asset" } @else { " assets" }
                    " only you can see"
                    @if let Some(a) = &personal { ", " (size(a.used_bytes)) " stored" }
                    "."
                }
                @if let Some(a) = &personal { (usage(a)) }
            }
            (card_or_empty("recent-h", "Recent uploads", (!recent.is_empty()).then(|| asset_table(&recent)), "Nothing uploaded yet."))
        }))
}

/// The newest assets the viewer may read: the search of `GET /api/v1/search`
/// with an empty query, newest first.
async fn recent_assets(state: &AppState, user_id: &str) -> AppResult<Vec<Asset>> {
    let query = search::parse("").map_err(|e| crate::error::AppError::invalid(e.to_string()))?;
    let request = SearchRequest {
        query,
        sort: Sort::Created { descending: true },
        window: Window {
            limit: RECENT,
            offset: 0,
        },
        facets: false,
        count_cap: search::COUNT_CAP,
    };
    Ok(state.meta.search(user_id, &request).await?.items)
}
