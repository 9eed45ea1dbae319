//! Sign in (`/login`) and sign out (`/logout`).
//!
//! Rate limit: 5 failed sign-ins per email, or 20 per client address (a lab
//! behind one NAT shares an address), in 15 minutes → 429 + `Retry-After`,
//! counted in the database (so across all replicas).

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

use super::csrf::{CsrfForm, SignInForm};
use super::layout::{Flash, Page};
use super::session::{
    cookie, safe_next, session, set_cookie, ClientAddr, LOGIN_CSRF_COOKIE, SESSION_COOKIE,
    SESSION_TTL_H,
};
use super::{redirect, try_again_shortly, unavailable};
use dataerai_store::meta::auth::SignInLimit;

use crate::audit;
use crate::auth::{hash_token, random_hex, verify_password};
use crate::openapi::HtmlPage;
use crate::state::AppState;

/// Sign-in failures per email in the window before attempts slow down.
pub const MAX_FAILURES_PER_EMAIL: u64 = 5;
/// Sign-in failures allowed per client address in the window.
pub const MAX_FAILURES_PER_ADDR: u64 = 20;
pub const FAILURE_WINDOW_S: i64 = 15 * 60;
/// The longest an attempt on a much-guessed email waits.
pub const MAX_SIGN_IN_DELAY_S: u64 = 30;
const SIGN_IN_LIMIT: SignInLimit = SignInLimit {
    window_s: FAILURE_WINDOW_S,
    max_per_email: MAX_FAILURES_PER_EMAIL,
    max_per_addr: MAX_FAILURES_PER_ADDR,
    max_delay_s: MAX_SIGN_IN_DELAY_S,
};

/// The fields of the sign-in form.
#[derive(Deserialize)]
pub struct SignInFields {
    email: Option<String>,
    password: Option<String>,
    next: Option<String>,
}

fn login_form(next: &str, csrf: &str, email: &str) -> Markup {
    html! {
        div class="card" {
            form method="post" action="/login" {
                input type="hidden" name="csrf_token" value=(csrf);
                input type="hidden" name="next" value=(next);
                div class="field" {
                    label for="email" { "Email" }
                    input id="email" type="email" name="email" value=(email)
                        autocomplete="username" required autofocus;
                }
                div class="field" {
                    label for="password" { "Password" }
                    input id="password" type="password" name="password"
                        autocomplete="current-password" required;
                }
                button type="submit" class="btn btn-primary btn-block" { "Sign in" }
            }
        }
        p class="muted small" {
            "Signing in from a terminal? Run "
            code class="cmd" { "dataerai auth login" }
            ": it shows a code to approve here."
        }
    }
}

/// The sign-in page with a fresh login CSRF cookie.
fn login_page(status: StatusCode, next: &str, email: &str, message: Option<&str>) -> Response {
    let csrf = random_hex();
    let mut r = Page::new("Sign in to Dataerai")
        .status(status)
        .narrow()
        .flash(message.map(Flash::error))
        .render(login_form(next, &csrf, email));
    set_cookie(&mut r, LOGIN_CSRF_COOKIE, &csrf, 3600);
    r
}

/// Web: sign-in page (`?next=/path` to come back)
#[utoipa::path(get, operation_id = "web_login_page", path = "/login", security(()),
    responses(HtmlPage))]
pub async fn login_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = safe_next(q.get("next").map(String::as_str));
    match session(&state, &headers).await {
        Ok(Some(_)) => redirect(&next),
        Ok(None) => login_page(StatusCode::OK, &next, "", None),
        Err(r) => r,
    }
}

/// Web: sign in (form email, password, csrf_token, next); attempts on an email slow down after 5 failures in 15 min; 429 + Retry-After after 20 failures from one address
#[utoipa::path(post, operation_id = "web_sign_in", path = "/login", security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Signed in: redirect to `next`")))]
pub async fn login_post(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    SignInForm(form): SignInForm<SignInFields>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    // Users are stored with the email as given at creation; it is tried as
    // typed too, so a mixed-case address created by an admin still signs in.
    let typed = form
        .email
        .as_deref()
        .map(|e| e.trim().to_string())
        .unwrap_or_default();
    let email = typed.to_lowercase();
    let password = form.password.unwrap_or_default();
    if email.is_empty() || password.is_empty() || email.len() > 320 || password.len() > 1024 {
        return login_page(
            StatusCode::BAD_REQUEST,
            &next,
            &email,
            Some("Enter your email and password."),
        );
    }
    let now = Utc::now();
    // The attempt is recorded as a failure before anything is checked (and
    // forgotten below if the password is right): concurrent guesses all
    // count against the limit, none slips past it.
    if let Err(e) = state.meta.record_login_failure(&email, &addr, now).await {
        tracing::error!(error = %e, "cannot record a sign-in attempt");
        return unavailable();
    }
    let since = SIGN_IN_LIMIT.window_start(now);
    let counts = match state.meta.login_failures_since(&email, &addr, since).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot read sign-in failures");
            return unavailable();
        }
    };
    if let Some(retry_s) = SIGN_IN_LIMIT.address_retry_after_s(&counts, now) {
        state.metrics.sign_in_refused();
        let mut r = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &email,
            Some(&format!(
                "Too many failed sign-in attempts from your address. Try again in {} minutes.",
                (retry_s + 59) / 60
            )),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_s));
        return r;
    }
    let delay_s = SIGN_IN_LIMIT.email_delay_s(&counts);
    if delay_s > 0 {
        state.metrics.sign_in_slowed();
        tokio::time::sleep(std::time::Duration::from_secs(delay_s)).await;
    }
    let user = match state.meta.user_auth_by_email(&typed).await {
        Ok(Some(u)) => Some(u),
        Ok(None) => state.meta.user_auth_by_email(&email).await.unwrap_or(None),
        Err(e) => {
            tracing::error!(error = %e, "cannot look up a user");
            return unavailable();
        }
    };
    let Some(ok) = verify_password(
        &state,
        user.as_ref().and_then(|u| u.password_hash.clone()),
        password,
    )
    .await
    else {
        return busy();
    };
    let Some(user) = user.filter(|_| ok) else {
        audit::record(
            &state,
            None,
            "auth.sign_in_failed",
            Some(("user", &email)),
            json!({"email": email}),
            &addr,
        )
        .await;
        return login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            &email,
            Some("Wrong email or password."),
        );
    };
    if user.disabled {
        // The password was right, so saying why is no leak.
        return login_page(
            StatusCode::FORBIDDEN,
            &next,
            &email,
            Some("This account is disabled; ask the server administrator."),
        );
    }
    let _ = state.meta.clear_login_failures(&email).await;
    let session_id = random_hex();
    let created = state
        .meta
        .create_session(
            &hash_token(&session_id),
            &user.user_id,
            &random_hex(),
            now,
            now + Duration::hours(SESSION_TTL_H),
        )
        .await;
    if let Err(e) = created {
        tracing::error!(error = %e, "cannot store a web session");
        return unavailable();
    }
    audit::record(
        &state,
        Some(&user.user_id),
        "auth.sign_in",
        Some(("user", &user.user_id)),
        json!({"email": user.email}),
        &addr,
    )
    .await;
    let mut r = redirect(&next);
    set_cookie(&mut r, SESSION_COOKIE, &session_id, SESSION_TTL_H * 3600);
    set_cookie(&mut r, LOGIN_CSRF_COOKIE, "", 0);
    r
}

/// Web: sign out (form csrf_token)
#[utoipa::path(post, operation_id = "web_sign_out", path = "/logout", security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Signed out: redirect to the sign-in page")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm { caller, .. }: CsrfForm,
) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.meta.delete_session(&hash_token(&id)).await {
            tracing::error!(error = %e, "cannot delete a web session");
            return unavailable();
        }
    }
    audit::by_caller(
        &state,
        &caller,
        "auth.sign_out",
        ("user", &caller.user_id),
        json!({}),
    )
    .await;
    let mut r = redirect("/login");
    set_cookie(&mut r, SESSION_COOKIE, "", 0);
    r
}

/// Too many password checks queued: the server sheds the attempt.
fn busy() -> Response {
    try_again_shortly("The server is busy checking other sign-ins. Please retry in a few seconds.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_typed_email_is_kept_in_the_form_escaped() {
        let html = login_form("/device?user_code=A&b=\"c\"", "tok", "<x>@lab.org").into_string();
        assert!(html.contains("name=\"csrf_token\" value=\"tok\""), "{html}");
        assert!(html.contains("name=\"next\" value=\"/device?user_code=A&amp;b=&quot;c&quot;\""));
        assert!(html.contains("value=\"&lt;x&gt;@lab.org\""));
    }
}
