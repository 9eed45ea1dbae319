//! `/admin`, for server administrators only (`users.is_admin`): server health
//! and storage usage (`/admin`), users (`/admin/users`: paged, filtered by
//! email; create, set a password, disable, enable) and the whole audit log
//! (`/admin/audit`: filtered by action, actor and project, newest first).
//!
//! Anyone else signed in gets the one 404 page (the area's existence is not
//! advertised), a signed-out visitor the sign-in redirect. The account forms
//! call the functions the `dataerai-server admin` commands call
//! (`crate::admin::{create_user, set_password, set_disabled}`), so the rules
//! and the audit events are the same; here the administrator is the actor.

use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use dataerai_proto::api::OwnerType;
use dataerai_store::meta::auth::{AuditEntry, AuditFilter, SessionRecord, UserListing};
use dataerai_store::meta::Window;
use dataerai_store::StoreError;
use maud::{html, Markup};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::layout::{csrf_field, Flash, Page};
use super::session::require_session;
use super::unavailable;
use super::view::{count, date, link, not_found, pager, size, usage, Params};
use crate::admin::{self as accounts, Actor, MIN_PASSWORD_LEN};
use crate::auth::Caller;
use crate::openapi::{html_answer, FormRefused, HtmlPage, SignInFirst, UsersPageAfterForm};
use crate::state::AppState;

const USERS_PER_PAGE: u64 = 50;
const EVENTS_PER_PAGE: u64 = 50;
/// Allocations listed under "Storage" (the fullest first).
const TOP_ALLOCATIONS: u64 = 20;

/// The actions the audit log holds, offered as suggestions in its filter.
const ACTIONS: &[&str] = &[
    "auth.sign_in",
    "auth.sign_in_failed",
    "auth.sign_out",
    "auth.device_approved",
    "token.created",
    "token.revoked",
    "user.created",
    "user.password_set",
    "user.disabled",
    "user.enabled",
    "member.added",
    "member.role_changed",
    "member.removed",
    "collection.created",
    "collection.updated",
    "collection.deleted",
    "collection_path.ensured",
    "asset.moved",
    "asset.deleted",
    "content.deleted",
    "upload.aborted",
];

/// The server administrator viewing an admin page. Anyone else gets a
/// response instead, before the handler runs: the sign-in redirect (back to
/// the page's path), or the 404 page of a signed-in non-administrator.
pub struct AdminSession(SessionRecord);

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = require_session(state, &parts.headers, parts.uri.path()).await?;
        if !session.is_admin {
            return Err(not_found(&session));
        }
        Ok(AdminSession(session))
    }
}

html_answer!(
    /// `404`: the one "not found" page, for a signed-in non-administrator (the
    /// answer [`AdminSession`] and [`AdminForm`] give).
    AdminOnly, "404", "Not a server administrator"
);

/// The links between the three admin pages (not a second `<nav>`: the
/// header's is the page's only one).
fn tabs(current: &str) -> Markup {
    const TABS: [(&str, &str); 3] = [
        ("/admin", "Health and storage"),
        ("/admin/users", "Users"),
        ("/admin/audit", "Audit log"),
    ];
    html! {
        ul class="tabs" {
            @for (href, label) in TABS {
                li { a href=(href) aria-current=[(href == current).then_some("page")] { (label) } }
            }
        }
    }
}

/// A server administrator's form post (its CSRF token checked) — the forms'
/// counterpart of [`AdminSession`]: a signed-in non-administrator gets the
/// 404 page before the handler runs.
pub struct AdminForm<T>(CsrfForm<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for AdminForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let posted = CsrfForm::<T>::from_request(req, state).await?;
        if !posted.session.is_admin {
            return Err(not_found(&posted.session));
        }
        Ok(AdminForm(posted))
    }
}

/// Who acts in an admin form: audited with their address.
fn actor(caller: &Caller) -> Actor<'_> {
    Actor {
        user_id: Some(&caller.user_id),
        addr: Some(&caller.addr),
    }
}

fn page<'a>(title: &'a str, session: &'a SessionRecord) -> Page<'a> {
    Page::new(title).signed_in(session).current("/admin")
}

// ---------------------------------------------------------------- health

/// Web: server health (database, blob store, version, uptime) and storage usage; server admins only (others: the 404 page)
#[utoipa::path(get, operation_id = "web_admin", path = "/admin", security(()),
    responses(HtmlPage, SignInFirst, AdminOnly))]
pub async fn admin_page(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
) -> Response {
    let database = timed(state.meta.ping()).await;
    let blobs = timed(state.blobs.check_writable()).await;
    let uploads = state.meta.open_upload_count().await;
    let storage = match state.meta.storage_usage(TOP_ALLOCATIONS).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read storage usage");
            return unavailable();
        }
    };
    let check = |r: &Result<Duration, String>, ok: &str| match r {
        Ok(t) => html! {
            span class="badge active" { "ready" } " " (ok) span class="muted small" { " (" (t.as_millis()) " ms)" }
        },
        Err(e) => html! { span class="badge revoked" { "failing" } " " (e) },
    };
    page("Administration", &session).render(html! {
        (tabs("/admin"))
        div class="project-grid two" {
            section class="card" aria-labelledby="health-h" {
                h2 id="health-h" { "Server health" }
                dl class="facts" {
                    dt { "Database" } dd { (check(&database, "answers")) }
                    dt { "Blob store" } dd { (check(&blobs, "accepts writes")) }
                    dt { "Version" } dd { "Dataerai " (env!("CARGO_PKG_VERSION")) }
                    dt { "Up for" } dd { (uptime(state.started_at.elapsed())) }
                    dt { "Open uploads" } dd {
                        @match &uploads { Ok(n) => { (count(*n)) }, Err(_) => { "unknown" } }
                    }
                }
                p class="small muted" {
                    "The same checks as " code { "/readyz" } "; counters at " code { "/metrics" } "."
                }
            }
            section class="card" aria-labelledby="totals-h" {
                h2 id="totals-h" { "Storage" }
                dl class="facts" {
                    dt { "Stored" } dd { (size(storage.used_bytes)) }
                    dt { "Uploading" } dd { (size(storage.reserved_bytes)) }
                    dt { "Files" } dd { (count(storage.file_count)) }
                    dt { "Allocations" } dd { (count(storage.allocations)) }
                }
                p class="small muted" { "As counted against quotas: a file stored once for two assets counts twice." }
            }
        }
        section class="card" aria-labelledby="alloc-h" {
            h2 id="alloc-h" { "Fullest allocations" }
            @if storage.top.is_empty() {
                p class="empty" { "No allocations yet." }
            } @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th { "Owner" } th { "Kind" } th { "Usage of quota" } } }
                        tbody {
                            @for a in &storage.top {
                                tr {
                                    td class="name" {
                                        (a.owner_name)
                                        @if a.owner_type == OwnerType::Project {
                                            br; span class="muted small" { code { (a.owner_id) } }
                                        }
                                    }
                                    td data-label="Kind" { (a.owner_type.as_str()) }
                                    td data-label="Usage" { (usage(&a.allocation)) }
                                }
                            }
                        }
                    }
                }
            }
            p class="small muted" {
                "Change a quota with " code class="cmd" { "dataerai-server admin set-quota" } "."
            }
        }
    })
}

/// How long `check` took, or why it failed.
async fn timed<E: std::fmt::Display>(
    check: impl std::future::Future<Output = Result<(), E>>,
) -> Result<Duration, String> {
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(5), check).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// `3 d 4 h`, `4 h 12 min`, `12 min`, `40 s`.
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes) = (s / 86_400, s / 3600 % 24, s / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

// ---------------------------------------------------------------- users

/// Web: the users (?q= email contains, ?page=) with forms to create, set a password, disable and enable; server admins only
#[utoipa::path(get, operation_id = "web_admin_users", path = "/admin/users", security(()),
    responses(HtmlPage, SignInFirst, AdminOnly))]
pub async fn users_page(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = Params::parse(raw.as_deref());
    users_view(&state, &session, &params, StatusCode::OK, None).await
}

async fn users_view(
    state: &AppState,
    session: &SessionRecord,
    params: &Params,
    status: StatusCode,
    flash: Option<Flash>,
) -> Response {
    let q = params.get("q").unwrap_or("").to_string();
    let page_no = params.page();
    let window = Window {
        limit: USERS_PER_PAGE,
        offset: (page_no - 1) * USERS_PER_PAGE,
    };
    let (users, total) = match state.meta.find_users(Some(&q), window).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "cannot list users");
            return unavailable();
        }
    };
    let csrf = &session.csrf_token;
    let page_link = |p: u64| link("/admin/users", &[("q", &q), ("page", &p.to_string())]);
    page("Users", session)
        .status(status)
        .flash(flash)
        .render(html! {
            (tabs("/admin/users"))
            section class="card" aria-labelledby="users-h" {
                h2 id="users-h" { "Users " span class="muted small" { "(" (count(total)) ")" } }
                form class="sort" method="get" action="/admin/users" role="search" {
                    label for="user-q" { "Email contains" }
                    input id="user-q" type="search" name="q" value=(q);
                    button type="submit" class="btn btn-small" { "Filter" }
                    @if !q.is_empty() { a href="/admin/users" { "Show all" } }
                }
                @if users.is_empty() {
                    p class="empty" { "No user matches." }
                } @else {
                    div class="table-wrap" {
                        table class="users" {
                            thead { tr {
                                th { "Email" } th { "State" } th class="nowrap" { "Created" }
                                th class="nowrap" { "Last sign-in" } th { span class="visually-hidden" { "Actions" } }
                            } }
                            tbody {
                                @for u in &users { (user_row(u, session, csrf)) }
                            }
                        }
                    }
                }
                (pager(page_no, USERS_PER_PAGE, total, page_link))
            }
            div class="project-grid two" {
                section class="card" aria-labelledby="create-h" {
                    h2 id="create-h" { "Create a user" }
                    form method="post" action="/admin/users" {
                        (csrf_field(csrf))
                        div class="form-grid" {
                            div class="field" {
                                label for="new-email" { "Email" }
                                input id="new-email" type="email" name="email" required placeholder="name@lab.org";
                            }
                            div class="field" {
                                label for="new-password" { "Password" }
                                input id="new-password" type="password" name="password" autocomplete="new-password"
                                    minlength=(MIN_PASSWORD_LEN);
                                span class="hint" { "At least " (MIN_PASSWORD_LEN) " characters; empty: set one later." }
                            }
                        }
                        label class="check" {
                            input type="checkbox" name="admin" value="yes";
                            span { "Server administrator" }
                            span class="hint" { "— may open this area" }
                        }
                        button type="submit" class="btn btn-primary" { "Create user" }
                    }
                }
                section class="card" aria-labelledby="password-h" {
                    h2 id="password-h" { "Set a password" }
                    form method="post" action="/admin/users/password" {
                        (csrf_field(csrf))
                        div class="field" {
                            label for="pw-email" { "Email" }
                            input id="pw-email" type="email" name="email" required;
                        }
                        div class="field" {
                            label for="pw-password" { "New password" }
                            input id="pw-password" type="password" name="password" required
                                autocomplete="new-password" minlength=(MIN_PASSWORD_LEN);
                        }
                        button type="submit" class="btn" { "Set password" }
                    }
                }
            }
        })
}

/// What a user's row says about them.
fn user_state(u: &UserListing) -> (&'static str, &'static str) {
    if u.disabled_at.is_some() {
        ("disabled", "revoked")
    } else if u.invited {
        ("invited", "")
    } else if !u.has_password {
        ("no password", "")
    } else {
        ("active", "active")
    }
}

fn user_row(u: &UserListing, session: &SessionRecord, csrf: &str) -> Markup {
    let (state, class) = user_state(u);
    let disabled = u.disabled_at.is_some();
    html! {
        tr data-email=(u.email) {
            td class="name" { (u.email) }
            td data-label="State" {
                span class={ "badge " (class) } { (state) }
                @if u.is_admin { " " span class="badge role admin" { "admin" } }
            }
            td class="nowrap" data-label="Created" { (date(u.created_at)) }
            td class="nowrap" data-label="Last sign-in" {
                @match u.last_sign_in_at { Some(at) => { (date(at)) }, None => { span class="muted" { "never" } } }
            }
            td class="action nowrap" {
                @if disabled {
                    form class="inline" method="post" action="/admin/users/enable" {
                        (csrf_field(csrf))
                        input type="hidden" name="email" value=(u.email);
                        button type="submit" class="btn btn-small" aria-label={ "Enable " (u.email) } { "Enable" }
                    }
                } @else if u.user_id != session.user_id {
                    form class="inline" method="post" action="/admin/users/disable" {
                        (csrf_field(csrf))
                        input type="hidden" name="email" value=(u.email);
                        button type="submit" class="btn btn-small btn-danger" aria-label={ "Disable " (u.email) } { "Disable" }
                    }
                }
            }
        }
    }
}

/// The "Create a user" form.
#[derive(Deserialize)]
pub struct NewUserFields {
    email: String,
    #[serde(default)]
    password: String,
    /// The checkbox: present (`yes`) when ticked.
    admin: Option<String>,
}

/// The "Set a password" form.
#[derive(Deserialize)]
pub struct PasswordFields {
    email: String,
    password: String,
}

/// A row's disable / enable form.
#[derive(Deserialize)]
pub struct EmailField {
    email: String,
}

/// The users page after a form: its outcome on top (a refusal is a 400 with
/// the rule's message; an unreachable store the 503 page).
async fn after_form(
    state: &AppState,
    session: &SessionRecord,
    outcome: anyhow::Result<String>,
) -> Response {
    let (status, flash) = match outcome {
        Ok(done) => (StatusCode::OK, Flash::success(done)),
        Err(e) => match e.downcast_ref::<StoreError>() {
            Some(StoreError::Conflict(_) | StoreError::NotFound(_) | StoreError::Invalid(_))
            | None => (StatusCode::BAD_REQUEST, Flash::error(format!("{e:#}"))),
            Some(other) => {
                tracing::error!(error = %other, "an account change failed");
                return unavailable();
            }
        },
    };
    users_view(state, session, &Params::parse(None), status, Some(flash)).await
}

/// The user with this email, or a refusal naming it.
async fn user_id_of(state: &AppState, email: &str) -> anyhow::Result<String> {
    match state.meta.user_by_email(email.trim()).await? {
        Some(u) => Ok(u.user_id),
        None => anyhow::bail!("There is no user with email {}.", email.trim()),
    }
}

/// Web: create a user (form email, password, admin=yes, csrf_token), as `admin create-user`; server admins only
#[utoipa::path(post, operation_id = "web_admin_create_user", path = "/admin/users", security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses(UsersPageAfterForm, FormRefused))]
pub async fn user_create(
    State(state): State<AppState>,
    AdminForm(CsrfForm {
        session,
        caller,
        form,
    }): AdminForm<NewUserFields>,
) -> Response {
    let password = Some(form.password).filter(|p| !p.is_empty());
    let admin = form.admin.is_some();
    let outcome = accounts::create_user(
        state.meta.as_ref(),
        actor(&caller),
        &form.email,
        state.default_quota,
        password,
        admin,
    )
    .await
    .map(|_| format!("User {} created.", form.email.trim()));
    after_form(&state, &session, outcome).await
}

/// Web: set a user's password (form email, password, csrf_token), as `admin set-password`; server admins only
#[utoipa::path(post, operation_id = "web_admin_set_password", path = "/admin/users/password",
    security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses(UsersPageAfterForm, FormRefused))]
pub async fn user_password(
    State(state): State<AppState>,
    AdminForm(CsrfForm {
        session,
        caller,
        form,
    }): AdminForm<PasswordFields>,
) -> Response {
    let email = form.email.trim();
    let outcome = async {
        let user_id = user_id_of(&state, email).await?;
        let actor = actor(&caller);
        accounts::set_password(state.meta.as_ref(), actor, &user_id, email, form.password).await?;
        Ok(format!("Password of {email} set."))
    }
    .await;
    after_form(&state, &session, outcome).await
}

/// Web: disable a user (form email, csrf_token), as `admin disable-user`; not oneself; server admins only
#[utoipa::path(post, operation_id = "web_admin_disable_user", path = "/admin/users/disable",
    security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses(UsersPageAfterForm, FormRefused))]
pub async fn user_disable(
    State(state): State<AppState>,
    AdminForm(posted): AdminForm<EmailField>,
) -> Response {
    set_disabled(state, posted, true).await
}

/// Web: enable a disabled user again (form email, csrf_token), as `admin enable-user`; server admins only
#[utoipa::path(post, operation_id = "web_admin_enable_user", path = "/admin/users/enable",
    security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses(UsersPageAfterForm, FormRefused))]
pub async fn user_enable(
    State(state): State<AppState>,
    AdminForm(posted): AdminForm<EmailField>,
) -> Response {
    set_disabled(state, posted, false).await
}

async fn set_disabled(state: AppState, posted: CsrfForm<EmailField>, disabled: bool) -> Response {
    let CsrfForm {
        session,
        caller,
        form,
    } = posted;
    let email = form.email.trim();
    let outcome = async {
        let user_id = user_id_of(&state, email).await?;
        let actor = actor(&caller);
        accounts::set_disabled(state.meta.as_ref(), actor, &user_id, email, disabled).await?;
        Ok(if disabled {
            format!("{email} is disabled: they cannot sign in, and their tokens and sessions no longer work.")
        } else {
            format!("{email} is enabled again.")
        })
    }
    .await;
    after_form(&state, &session, outcome).await
}

// ---------------------------------------------------------------- audit log

/// Web: the audit log, newest first (?action=&actor=&project=&page=); server admins only
#[utoipa::path(get, operation_id = "web_admin_audit", path = "/admin/audit", security(()),
    responses(HtmlPage, SignInFirst, AdminOnly))]
pub async fn audit_page(
    State(state): State<AppState>,
    AdminSession(session): AdminSession,
    RawQuery(raw): RawQuery,
) -> Response {
    let params = Params::parse(raw.as_deref());
    let given = |k: &str| params.get(k).unwrap_or("").to_string();
    let (action, actor, project) = (given("action"), given("actor"), given("project"));
    let filter = AuditFilter {
        action: Some(action.clone()),
        actor_email: Some(actor.clone()),
        project_id: Some(project.clone()),
    };
    let page_no = params.page();
    let window = Window {
        limit: EVENTS_PER_PAGE,
        offset: (page_no - 1) * EVENTS_PER_PAGE,
    };
    let (events, total) = match state.meta.find_audit(&filter, window).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the audit log");
            return unavailable();
        }
    };
    let page_link = |p: u64| {
        link(
            "/admin/audit",
            &[
                ("action", &action),
                ("actor", &actor),
                ("project", &project),
                ("page", &p.to_string()),
            ],
        )
    };
    let filtered = !(action.is_empty() && actor.is_empty() && project.is_empty());
    page("Audit log", &session).render(html! {
        (tabs("/admin/audit"))
        section class="card" aria-labelledby="audit-h" {
            h2 id="audit-h" { "Events " span class="muted small" { "(" (count(total)) ")" } }
            form class="search-row" method="get" action="/admin/audit" role="search" {
                div class="field" {
                    label for="f-action" { "Action" }
                    input id="f-action" type="text" name="action" value=(action) list="actions" placeholder="any";
                    datalist id="actions" { @for a in ACTIONS { option value=(a) {} } }
                }
                div class="field" {
                    label for="f-actor" { "Actor email" }
                    input id="f-actor" type="email" name="actor" value=(actor) placeholder="anyone";
                }
                div class="field grow" {
                    label for="f-project" { "Project id" }
                    input id="f-project" type="text" name="project" value=(project) placeholder="any project";
                }
                button type="submit" class="btn btn-small" { "Filter" }
                @if filtered { a class="small" href="/admin/audit" { "Show all" } }
            }
            @if events.is_empty() {
                p class="empty" { "No event matches." }
            } @else {
                div class="table-wrap" {
                    table class="audit" {
                        thead { tr {
                            th class="nowrap" { "When (UTC)" } th { "Actor" } th { "Action" }
                            th { "Target" } th { "Details" } th { "Address" }
                        } }
                        tbody { @for e in &events { (audit_row(e)) } }
                    }
                }
            }
            (pager(page_no, EVENTS_PER_PAGE, total, page_link))
        }
    })
}

fn audit_row(e: &AuditEntry) -> Markup {
    let ev = &e.event;
    let details = if ev.details.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(ev.details.clone()).to_string()
    };
    html! {
        tr {
            td class="nowrap" data-label="When" { (ev.at.format("%Y-%m-%d %H:%M:%S").to_string()) }
            td data-label="Actor" {
                @match (&e.actor_email, &ev.actor_user_id) {
                    (Some(email), _) => { a href=(link("/admin/audit", &[("actor", email)])) { (email) } },
                    (None, Some(id)) => { code { (id) } },
                    (None, None) => { span class="muted" { "—" } },
                }
            }
            td data-label="Action" { a href=(link("/admin/audit", &[("action", &ev.action)])) { code { (ev.action) } } }
            td data-label="Target" {
                @if let (Some(t), Some(id)) = (&ev.target_type, &ev.target_id) {
                    span class="muted small" { (t) " " } code class="small" { (id) }
                }
            }
            td data-label="Details" { @if !details.is_empty() { code class="small details" { (details) } } }
            td class="nowrap" data-label="Address" { (ev.client_addr.as_deref().unwrap_or("")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_in_the_largest_units() {
        assert_eq!(uptime(Duration::from_secs(40)), "40 s");
        assert_eq!(uptime(Duration::from_secs(12 * 60 + 5)), "12 min");
        assert_eq!(
            uptime(Duration::from_secs(4 * 3600 + 12 * 60)),
            "4 h 12 min"
        );
        assert_eq!(
            uptime(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3 d 4 h"
        );
    }

    #[test]
    fn the_admin_tabs_mark_the_current_page() {
        let html = tabs("/admin/users").into_string();
        assert!(html.contains("<a href=\"/admin/users\" aria-current=\"page\">Users</a>"));
        assert!(!html.contains("<nav"));
    }
}
