//! Approve a device login (`/device`): the page a person opens from
//! `dataerai auth login` (RFC 8628) to type the code, check it and approve
//! or deny it.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::Utc;
use dataerai_store::meta::auth::{DeviceRecord, SessionRecord};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

use super::csrf::CsrfForm;
use super::layout::{csrf_field, Flash, Page};
use super::session::{require_session, url_encode, ClientAddr};
use super::unavailable;
use crate::audit;
use crate::oauth::normalize_user_code;
use crate::openapi::HtmlPage;
use crate::state::{AppState, DeviceLimits};

const UNKNOWN_CODE: &str =
    "This code is unknown, expired or already used. Run `dataerai auth login` again.";

/// The fields of the approve/deny form.
#[derive(Deserialize)]
pub struct Decision {
    user_code: Option<String>,
    action: Option<String>,
}

/// The code entry page, with `message` (an error) above the form.
fn code_entry(status: StatusCode, s: &SessionRecord, message: Option<&str>) -> Response {
    Page::new("Device login")
        .status(status)
        .signed_in(s)
        .current("/device")
        .narrow()
        .flash(message.map(Flash::error))
        .render(html! {
            div class="card" {
                p {
                    "Enter the code shown by "
                    code class="cmd" { "dataerai auth login" }
                    " in your terminal."
                }
                form method="get" action="/device" {
                    div class="field" {
                        label for="user_code" { "Code" }
                        input id="user_code" class="code-input" type="text" name="user_code"
                            placeholder="XXXX-XXXX" autocomplete="off" autocapitalize="characters"
                            spellcheck="false" required autofocus;
                    }
                    button type="submit" class="btn btn-primary btn-block" { "Continue" }
                }
            }
        })
}

/// Whether a device login comes from our own client: `dataerai auth login`
/// sends `client_id=dataerai-cli` (the SDK and the daemon sign in through it).
fn is_our_client(client_id: &str) -> bool {
    client_id == "dataerai" || client_id.starts_with("dataerai-")
}

/// The confirmation: who asks, for what, and the code to compare.
fn confirmation(record: &DeviceRecord, s: &SessionRecord) -> Markup {
    html! {
        div class="card" {
            p {
                @if is_our_client(&record.client_id) {
                    "The " code { "dataerai" } " command line on a device"
                } @else {
                    "A program calling itself " code { (record.client_id) }
                    " (not the " code { "dataerai" } " command line)"
                }
                " asks to access Dataerai as " strong { (s.email) }
                " with the scopes " strong { (record.scopes.join(" ")) } "."
            }
            p class="muted small" { "Code" }
            span class="code" { (record.user_code) }
            p class="note" {
                "Approve only if this code is the one shown in your own terminal."
            }
            form method="post" action="/device" {
                (csrf_field(&s.csrf_token))
                input type="hidden" name="user_code" value=(record.user_code);
                div class="actions" {
                    button type="submit" name="action" value="approve" class="btn btn-primary" {
                        "Approve"
                    }
                    button type="submit" name="action" value="deny" class="btn btn-danger" {
                        "Deny"
                    }
                }
            }
        }
    }
}

/// Web: enter (or, with ?user_code=, confirm) a device login code; needs a session
#[utoipa::path(get, operation_id = "web_device_page", path = "/device", security(()),
    responses(HtmlPage))]
pub async fn device_get(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let here = match q.get("user_code") {
        Some(c) => format!("/device?user_code={}", url_encode(c)),
        None => "/device".to_string(),
    };
    let s = match require_session(&state, &headers, &here).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(typed) = q.get("user_code").filter(|c| !c.trim().is_empty()) else {
        return code_entry(StatusCode::OK, &s, None);
    };
    if let Some(refused) = lookup_refused(&state, &addr, &s) {
        return refused;
    }
    let Some(code) = normalize_user_code(typed) else {
        return code_entry(
            StatusCode::NOT_FOUND,
            &s,
            Some("That is not a valid code. Check the code in your terminal and try again."),
        );
    };
    let record = match state.meta.device_by_user_code(&code).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot read a device code");
            return unavailable();
        }
    };
    let Some(record) = record.filter(|r| r.awaits_decision(Utc::now())) else {
        return code_entry(StatusCode::NOT_FOUND, &s, Some(UNKNOWN_CODE));
    };
    Page::new("Approve device login")
        .signed_in(&s)
        .current("/device")
        .narrow()
        .render(confirmation(&record, &s))
}

/// Web: approve or deny a device code (form user_code, action=approve|deny, csrf_token)
#[utoipa::path(post, operation_id = "web_device_decision", path = "/device", security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The outcome", content_type = "text/html", body = String)))]
pub async fn device_post(
    State(state): State<AppState>,
    CsrfForm {
        session: s,
        caller,
        form,
    }: CsrfForm<Decision>,
) -> Response {
    let approve = match form.action.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => return code_entry(StatusCode::BAD_REQUEST, &s, Some("Choose Approve or Deny.")),
    };
    if let Some(refused) = lookup_refused(&state, &caller.addr, &s) {
        return refused;
    }
    let Some(code) = form.user_code.as_deref().and_then(normalize_user_code) else {
        return code_entry(StatusCode::NOT_FOUND, &s, Some("That is not a valid code."));
    };
    match state
        .meta
        .decide_device(&code, &s.user_id, approve, Utc::now())
        .await
    {
        Ok(true) if approve => {
            let target = ("device_code", code.as_str());
            audit::by_caller(&state, &caller, "auth.device_approved", target, json!({})).await;
            decided(
                &s,
                "Device approved",
                "Device approved. You can close this page and return to your terminal.",
            )
        }
        Ok(true) => decided(
            &s,
            "Device denied",
            "Device denied. The login in the terminal will fail.",
        ),
        Ok(false) => code_entry(StatusCode::NOT_FOUND, &s, Some(UNKNOWN_CODE)),
        Err(e) => {
            tracing::error!(error = %e, "cannot decide a device code");
            unavailable()
        }
    }
}

/// User codes are short: looking them up is limited per address, so they
/// cannot be guessed. `Some` is the 429 page for an address over its limit.
fn lookup_refused(state: &AppState, addr: &str, s: &SessionRecord) -> Option<Response> {
    DeviceLimits::check(&state.device_limits.lookups, addr)
        .err()
        .map(|wait_s| {
            let mut r = code_entry(
                StatusCode::TOO_MANY_REQUESTS,
                s,
                Some(&format!(
                    "Too many codes entered from your address. Try again in {} minutes.",
                    wait_s.div_ceil(60)
                )),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait_s));
            r
        })
}

/// The page after Approve or Deny.
fn decided(s: &SessionRecord, title: &str, message: &str) -> Response {
    Page::new(title)
        .signed_in(s)
        .current("/device")
        .narrow()
        .flash(Flash::success(message))
        .render(html! {
            p class="muted" {
                a href="/device" { "Approve another device" }
                " · "
                a href="/tokens" { "Your access tokens" }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmation_escapes_what_the_device_sent() {
        let record = DeviceRecord {
            user_code: "BCDF-GHJK".into(),
            client_id: "<script>alert(1)</script>".into(),
            scopes: vec!["read".into(), "<b>".into()],
            status: "pending".into(),
            expires_at: chrono::DateTime::UNIX_EPOCH,
        };
        let s = SessionRecord {
            user_id: "u".into(),
            email: "ada@lab.org".into(),
            is_admin: false,
            csrf_token: "tok".into(),
            expires_at: chrono::DateTime::UNIX_EPOCH,
        };
        let html = confirmation(&record, &s).into_string();
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>"));
        assert!(html.contains("<span class=\"code\">BCDF-GHJK</span>"));
        assert!(html.contains("name=\"csrf_token\" value=\"tok\""));
        assert!(html.contains("name=\"user_code\" value=\"BCDF-GHJK\""));
        assert!(html.contains("name=\"action\" value=\"approve\""));
        assert!(html.contains("(not the <code>dataerai</code> command line)"));
        let ours = DeviceRecord {
            client_id: "dataerai-cli".into(),
            ..record
        };
        let html = confirmation(&ours, &s).into_string();
        assert!(
            html.contains("The <code>dataerai</code> command line on a device asks"),
            "{html}"
        );
    }
}
