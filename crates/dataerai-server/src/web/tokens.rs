//! Personal access tokens (`/tokens`): list, create (shown once), revoke.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use dataerai_store::meta::auth::{SessionRecord, TokenInfo};
use dataerai_store::meta::NewToken;
use maud::{html, Markup, Render};
use serde::Deserialize;
use serde_json::json;

use super::csrf::CsrfForm;
use super::layout::{csrf_field, Flash, Page};
use super::session::require_session;
use super::{redirect, unavailable};
use crate::audit;
use crate::auth::{generate_token, hash_token, SCOPE_READ, SCOPE_WRITE};
use crate::openapi::HtmlPage;
use crate::state::AppState;

const MAX_TOKEN_NAME_LEN: usize = 100;

/// The fields of the "Create a token" form.
#[derive(Deserialize)]
pub struct NewTokenFields {
    name: Option<String>,
    /// One per ticked checkbox.
    #[serde(default)]
    scope: Vec<String>,
    expires_in_days: Option<String>,
}

/// What a token's row says about it.
fn token_state(t: &TokenInfo, now: DateTime<Utc>) -> &'static str {
    if t.revoked {
        "revoked"
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

fn create_form(csrf: &str) -> Markup {
    html! {
        div class="card" {
            h2 { "Create a token" }
            form method="post" action="/tokens" {
                (csrf_field(csrf))
                div class="form-grid" {
                    div class="field" {
                        label for="name" { "Name" }
                        input id="name" type="text" name="name" maxlength=(MAX_TOKEN_NAME_LEN)
                            placeholder="e.g. laptop, CI pipeline" required;
                        span class="hint" { "What the token is for, to recognise it later." }
                    }
                    div class="field" {
                        label for="expires_in_days" { "Expires after (days)" }
                        input id="expires_in_days" type="text" name="expires_in_days"
                            inputmode="numeric" placeholder="never";
                        span class="hint" { "1 to 3650; empty: never expires." }
                    }
                }
                fieldset {
                    legend { "Scopes" }
                    label class="check" {
                        input type="checkbox" name="scope" value="read" checked;
                        span { "read" }
                        span class="hint" { "— list and download" }
                    }
                    label class="check" {
                        input type="checkbox" name="scope" value="write" checked;
                        span { "write" }
                        span class="hint" { "— create, upload and change" }
                    }
                }
                button type="submit" class="btn btn-primary" { "Create token" }
            }
        }
    }
}

/// The user's tokens, newest first, each with its revoke form.
fn token_table(tokens: &[TokenInfo], csrf: &str, now: DateTime<Utc>) -> Markup {
    html! {
        div class="card" {
            h2 { "Your tokens" }
            @if tokens.is_empty() {
                p class="empty" { "No personal access tokens yet." }
            } @else {
                div class="table-wrap" {
                    table {
                        thead {
                            tr {
                                th { "Name" } th { "Scopes" } th { "Created" }
                                th { "Expires" } th { "State" } th {}
                            }
                        }
                        tbody {
                            @for t in tokens {
                                @let state = token_state(t, now);
                                tr data-token-id=(t.token_id) {
                                    td class="name" { (t.name) }
                                    td class="nowrap" data-label="Scopes" { (t.scopes.join(" ")) }
                                    td class="nowrap" data-label="Created" {
                                        (t.created_at.format("%Y-%m-%d %H:%M UTC").to_string())
                                    }
                                    td class="nowrap" data-label="Expires" {
                                        @match t.expires_at {
                                            Some(e) => { (e.format("%Y-%m-%d").to_string()) }
                                            None => { "never" }
                                        }
                                    }
                                    td data-label="State" { span class={ "badge " (state) } { (state) } }
                                    td class="action" {
                                        @if !t.revoked {
                                            form method="post" action={ "/tokens/" (t.token_id) "/revoke" } {
                                                (csrf_field(csrf))
                                                button type="submit" class="btn btn-danger btn-small" { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The token page: `flash` on top, the create form, the list.
async fn tokens_page(
    state: &AppState,
    s: &SessionRecord,
    status: StatusCode,
    flash: Option<Flash>,
) -> Response {
    let tokens = match state.meta.list_tokens(&s.user_id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot list tokens");
            return unavailable();
        }
    };
    Page::new("Personal access tokens")
        .status(status)
        .signed_in(s)
        .current("/tokens")
        .flash(flash)
        .render(html! {
            p class="lead" {
                "Tokens let scripts, CI jobs and the "
                code { "dataerai" }
                " command line act as you ("
                code class="cmd" { "dataerai auth login --token-stdin" }
                "). Give each its own name, and revoke it when it is no longer needed."
            }
            (create_form(&s.csrf_token))
            (token_table(&tokens, &s.csrf_token, Utc::now()))
        })
}

/// The token page again, with why the form was refused.
async fn refused(state: &AppState, s: &SessionRecord, message: impl Render) -> Response {
    let flash = Flash::error(message);
    tokens_page(state, s, StatusCode::BAD_REQUEST, Some(flash)).await
}

/// The page after a token was made: its only showing.
fn created(token: &str) -> Flash {
    Flash::success(html! {
        p { strong { "Token created." } " Copy it now — it is shown only once:" }
        // Tests find the token right after `id="new-token">`.
        code class="secret" id="new-token" { (token) }
    })
}

/// Web: your personal access tokens; needs a session
#[utoipa::path(get, operation_id = "web_tokens_page", path = "/tokens", security(()),
    responses(HtmlPage))]
pub async fn tokens_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require_session(&state, &headers, "/tokens").await {
        Ok(s) => tokens_page(&state, &s, StatusCode::OK, None).await,
        Err(r) => r,
    }
}

/// Web: create a personal access token, shown once (form name, scope=read|write repeated, expires_in_days, csrf_token)
#[utoipa::path(post, operation_id = "web_create_token", path = "/tokens", security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The new token, shown once", content_type = "text/html", body = String)))]
pub async fn tokens_post(
    State(state): State<AppState>,
    CsrfForm {
        session: s,
        caller,
        form,
    }: CsrfForm<NewTokenFields>,
) -> Response {
    let name = form
        .name
        .as_deref()
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    if name.is_empty()
        || name.chars().count() > MAX_TOKEN_NAME_LEN
        || name.chars().any(char::is_control)
    {
        let message = format!("Give the token a name of 1 to {MAX_TOKEN_NAME_LEN} characters.");
        return refused(&state, &s, message).await;
    }
    let mut scopes = form.scope;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() || scopes.iter().any(|x| x != SCOPE_READ && x != SCOPE_WRITE) {
        return refused(&state, &s, "Choose the scopes read and/or write.").await;
    }
    let expires_at = match form
        .expires_in_days
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => None,
        Some(d) => match d.parse::<u32>() {
            Ok(days) if (1..=3650).contains(&days) => {
                Some(Utc::now() + Duration::days(i64::from(days)))
            }
            _ => {
                let message = "Expiry must be a number of days from 1 to 3650, or empty.";
                return refused(&state, &s, message).await;
            }
        },
    };
    let token = generate_token();
    let created_id = state
        .meta
        .create_token(NewToken {
            user_id: s.user_id.clone(),
            name: name.clone(),
            token_hash: hash_token(&token),
            scopes: scopes.clone(),
            expires_at,
        })
        .await;
    let token_id = match created_id {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "cannot create a token");
            return unavailable();
        }
    };
    let details = json!({"name": name, "scopes": scopes});
    audit::by_caller(
        &state,
        &caller,
        "token.created",
        ("token", &token_id),
        details,
    )
    .await;
    tokens_page(&state, &s, StatusCode::OK, Some(created(&token))).await
}

/// Web: revoke one of your tokens (form csrf_token)
#[utoipa::path(post, operation_id = "web_revoke_token", path = "/tokens/{token_id}/revoke",
    security(()), params(("token_id" = String, Path, description = "The token to revoke")),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Revoked: redirect to /tokens")))]
pub async fn token_revoke(
    State(state): State<AppState>,
    Path(token_id): Path<String>,
    CsrfForm {
        session: s, caller, ..
    }: CsrfForm,
) -> Response {
    match state
        .meta
        .revoke_token(&s.user_id, &token_id, Utc::now())
        .await
    {
        Ok(true) => {
            audit::by_caller(
                &state,
                &caller,
                "token.revoked",
                ("token", &token_id),
                json!({}),
            )
            .await;
            redirect("/tokens")
        }
        Ok(false) => {
            tokens_page(
                &state,
                &s,
                StatusCode::NOT_FOUND,
                Some(Flash::error("No such active token of yours.")),
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot revoke a token");
            unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, revoked: bool, expires_at: Option<DateTime<Utc>>) -> TokenInfo {
        TokenInfo {
            token_id: "0b7c3d0e-1111-4222-8333-944445555666".into(),
            name: name.into(),
            scopes: vec!["read".into(), "write".into()],
            created_at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .with_timezone(&Utc),
            expires_at,
            revoked,
        }
    }

    #[test]
    fn a_token_name_is_escaped_in_the_page() {
        let t = token("<script>alert('pwned')</script>", false, None);
        let html = token_table(&[t], "tok", Utc::now()).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert('pwned')&lt;/script&gt;"));
        // The whole document too (the page layout wraps it unchanged).
        let page = Page::new("Personal access tokens")
            .document(html! { (token_table(&[token("<script>", false, None)], "t", Utc::now())) })
            .into_string();
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
    }

    #[test]
    fn rows_show_state_and_only_live_tokens_can_be_revoked() {
        let now = Utc::now();
        let rows = [
            token("live", false, None),
            token("old", false, Some(now - Duration::days(1))),
            token("gone", true, None),
        ];
        let html = token_table(&rows, "tok", now).into_string();
        assert_eq!(html.matches("data-token-id=\"0b7c3d0e-").count(), 3);
        assert_eq!(html.matches(">Revoke</button>").count(), 2);
        assert!(html.contains(
            "<form method=\"post\" action=\"/tokens/0b7c3d0e-1111-4222-8333-944445555666/revoke\">"
        ));
        for state in ["active", "expired", "revoked"] {
            assert!(html.contains(&format!("<span class=\"badge {state}\">{state}</span>")));
        }
        assert!(html.contains(">2026-01-02 03:04 UTC</td>"));
        assert!(html.contains("data-label=\"Expires\">never</td>"));
        assert!(token_table(&[], "tok", now)
            .into_string()
            .contains("No personal access tokens yet."));
    }

    #[test]
    fn a_new_token_is_shown_once_in_its_own_element() {
        let html = Page::new("t")
            .flash(created("dtr_pat_abc"))
            .document(html! {})
            .into_string();
        assert!(
            html.contains("<code class=\"secret\" id=\"new-token\">dtr_pat_abc</code>"),
            "{html}"
        );
    }
}
