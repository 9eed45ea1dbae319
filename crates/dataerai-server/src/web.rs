//! The server's few web pages, server-rendered HTML with inline CSS: sign in
//! (`/login`), sign out (`/logout`), approve a device login (`/device`) and
//! manage personal access tokens (`/tokens`).
//!
//! - Sessions: the `dataerai_session` cookie holds 32 random bytes; the
//!   database holds their BLAKE3 hash (`web_sessions`), so any replica knows
//!   the session. Cookies are HttpOnly, SameSite=Lax and Secure.
//! - CSRF: every form carries a token compared in constant time — the
//!   session's own token once signed in; on the sign-in form (no session yet)
//!   a random value that must equal the `dataerai_login_csrf` cookie
//!   (double submit). A missing or wrong token → 403 page.
//! - Rate limit: 5 failed sign-ins per email, or 20 per client address (a
//!   lab behind one NAT shares an address), in 15 minutes → 429 +
//!   `Retry-After`, counted in the database (so across all replicas).
//!
//! The markup is kept plain and stable (input names, button labels, the
//! `new-token` id): browser tests drive it.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use dataerai_store::meta::auth::{SessionRecord, SignInLimit};
use dataerai_store::meta::NewToken;
use serde_json::json;
use std::collections::HashMap;

use crate::audit;
use crate::auth::{
    client_addr, generate_token, hash_token, random_hex, secrets_match, verify_password,
    SCOPE_READ, SCOPE_WRITE,
};
use crate::oauth::{normalize_user_code, parse_form};
use crate::state::AppState;

const SESSION_COOKIE: &str = "dataerai_session";
const LOGIN_CSRF_COOKIE: &str = "dataerai_login_csrf";
const SESSION_TTL_H: i64 = 12;
/// Sign-in failures allowed per email in the window.
pub const MAX_FAILURES_PER_EMAIL: u64 = 5;
/// Sign-in failures allowed per client address in the window.
pub const MAX_FAILURES_PER_ADDR: u64 = 20;
pub const FAILURE_WINDOW_S: i64 = 15 * 60;
const SIGN_IN_LIMIT: SignInLimit = SignInLimit {
    window_s: FAILURE_WINDOW_S,
    max_per_email: MAX_FAILURES_PER_EMAIL,
    max_per_addr: MAX_FAILURES_PER_ADDR,
};
const MAX_TOKEN_NAME_LEN: usize = 100;

// ---------------------------------------------------------------- rendering

/// HTML-escape text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}\
input[type=email],input[type=password],input[type=text]{width:100%;padding:.5rem;box-sizing:border-box;font-size:1rem}\
button{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem;cursor:pointer}\
.err{color:#a00;background:#fee;padding:.6rem;border-radius:4px}.ok{color:#060;background:#efe;padding:.6rem;border-radius:4px}\
code{background:#f4f4f4;padding:.2rem .4rem;word-break:break-all}table{width:100%;border-collapse:collapse}\
td,th{text-align:left;padding:.3rem;border-bottom:1px solid #ddd}nav{margin-bottom:1.5rem}nav form{display:inline}\
.code{font-size:1.6rem;letter-spacing:.2rem;font-family:monospace}";

/// A whole page. `session` adds the navigation with a sign-out form.
fn page(status: StatusCode, title: &str, session: Option<&SessionRecord>, body: &str) -> Response {
    let nav = match session {
        Some(s) => format!(
            "<nav>Signed in as {email} · <a href=\"/tokens\">Tokens</a> · <a href=\"/device\">Device login</a> · \
             <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <button type=\"submit\" style=\"margin:0;padding:.1rem .5rem\">Sign out</button></form></nav>",
            email = esc(&s.email),
            csrf = esc(&s.csrf_token)
        ),
        None => String::new(),
    };
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Dataerai</title><style>{CSS}</style></head><body>{nav}<h1>{title}</h1>{body}</body></html>",
        title = esc(title)
    );
    let mut response = (status, html).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn forbidden_csrf() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Request refused",
        None,
        "<p class=\"err\">This form has expired or did not come from this site (missing or wrong CSRF token). \
         Go back, reload the page and try again.</p>",
    )
}

fn unavailable() -> Response {
    let mut r = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        None,
        "<p class=\"err\">The server cannot reach its database right now. Please retry in a few seconds.</p>",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(5));
    r
}

fn set_cookie(response: &mut Response, name: &str, value: &str, max_age_s: i64) {
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age_s}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Only local paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.clone()
        }
        _ => "/tokens".to_string(),
    }
}

fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---------------------------------------------------------------- sessions

/// The signed-in session of a request, if any. `Err` = the database failed.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<SessionRecord>, Response> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    state
        .meta
        .session(&hash_token(&id), Utc::now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read a web session");
            unavailable()
        })
}

/// The session, or a redirect to the sign-in page coming back to `here`.
async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<SessionRecord, Response> {
    match session(state, headers).await? {
        Some(s) => Ok(s),
        None => Err(redirect(&format!("/login?next={}", url_encode(here)))),
    }
}

/// The session of a form post with a valid CSRF token; a 403 page otherwise.
async fn form_session(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<SessionRecord, Response> {
    let Some(s) = session(state, headers).await? else {
        return Err(forbidden_csrf());
    };
    match form.get("csrf_token") {
        Some(t) if secrets_match(t, &s.csrf_token) => Ok(s),
        _ => Err(forbidden_csrf()),
    }
}

// ---------------------------------------------------------------- /login

fn login_form(next: &str, csrf: &str, email: &str, message: Option<&str>) -> String {
    let message = message
        .map(|m| format!("<p class=\"err\">{}</p>", esc(m)))
        .unwrap_or_default();
    format!(
        "{message}<form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <label for=\"email\">Email</label><input id=\"email\" type=\"email\" name=\"email\" value=\"{email}\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" type=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\">Sign in</button></form>",
        csrf = esc(csrf),
        next = esc(next),
        email = esc(email)
    )
}

/// Render the sign-in page with a fresh login CSRF cookie.
fn login_page(status: StatusCode, next: &str, email: &str, message: Option<&str>) -> Response {
    let csrf = random_hex();
    let mut r = page(
        status,
        "Sign in to Dataerai",
        None,
        &login_form(next, &csrf, email, message),
    );
    set_cookie(&mut r, LOGIN_CSRF_COOKIE, &csrf, 3600);
    r
}

/// `GET /login?next=/path`
pub async fn login_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let next = safe_next(q.get("next"));
    match session(&state, &headers).await {
        Ok(Some(_)) => redirect(&next),
        Ok(None) => login_page(StatusCode::OK, &next, "", None),
        Err(r) => r,
    }
}

/// `POST /login` (form `email`, `password`, `csrf_token`, `next`)
pub async fn login_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    request_parts: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let next = safe_next(form.get("next"));
    let csrf_ok = match (form.get("csrf_token"), cookie(&headers, LOGIN_CSRF_COOKIE)) {
        (Some(f), Some(c)) => !c.is_empty() && secrets_match(f, &c),
        _ => false,
    };
    if !csrf_ok {
        return forbidden_csrf();
    }
    let addr = client_addr(&request_parts);
    let email = form
        .get("email")
        .map(|e| e.trim().to_lowercase())
        .unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    if email.is_empty() || password.is_empty() || email.len() > 320 || password.len() > 1024 {
        return login_page(
            StatusCode::BAD_REQUEST,
            &next,
            &email,
            Some("Enter your email and password."),
        );
    }
    let now = Utc::now();
    let since = SIGN_IN_LIMIT.window_start(now);
    let counts = match state.meta.login_failures_since(&email, &addr, since).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot read sign-in failures");
            return unavailable();
        }
    };
    if let Some(retry_s) = SIGN_IN_LIMIT.retry_after_s(&counts, now) {
        let mut r = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &email,
            Some(&format!(
                "Too many failed sign-in attempts. Try again in {} minutes.",
                (retry_s + 59) / 60
            )),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_s));
        return r;
    }
    // Users are stored with the email as given at creation; try it as typed
    // too, so a mixed-case address created by an admin still signs in.
    let typed = form
        .get("email")
        .map(|e| e.trim().to_string())
        .unwrap_or_default();
    let user = match state.meta.user_auth_by_email(&typed).await {
        Ok(Some(u)) => Some(u),
        Ok(None) => state.meta.user_auth_by_email(&email).await.unwrap_or(None),
        Err(e) => {
            tracing::error!(error = %e, "cannot look up a user");
            return unavailable();
        }
    };
    let ok = verify_password(
        user.as_ref().and_then(|u| u.password_hash.clone()),
        password,
    )
    .await;
    let Some(user) = user.filter(|_| ok) else {
        if let Err(e) = state.meta.record_login_failure(&email, &addr, now).await {
            tracing::error!(error = %e, "cannot record a sign-in failure");
        }
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

/// `POST /logout`
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let s = match form_session(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.meta.delete_session(&hash_token(&id)).await {
            tracing::error!(error = %e, "cannot delete a web session");
            return unavailable();
        }
    }
    audit::record(
        &state,
        Some(&s.user_id),
        "auth.sign_out",
        Some(("user", &s.user_id)),
        json!({}),
        &client_addr(&extensions),
    )
    .await;
    let mut r = redirect("/login");
    set_cookie(&mut r, SESSION_COOKIE, "", 0);
    r
}

// ---------------------------------------------------------------- /device

fn code_entry_form(message: Option<&str>) -> String {
    let message = message
        .map(|m| format!("<p class=\"err\">{}</p>", esc(m)))
        .unwrap_or_default();
    format!(
        "{message}<p>Enter the code shown by <code>dataerai auth login</code>.</p>\
         <form method=\"get\" action=\"/device\">\
         <label for=\"user_code\">Code</label>\
         <input id=\"user_code\" type=\"text\" name=\"user_code\" placeholder=\"XXXX-XXXX\" autocomplete=\"off\" autocapitalize=\"characters\" required autofocus>\
         <button type=\"submit\">Continue</button></form>"
    )
}

/// `GET /device[?user_code=…]`: enter a code, or confirm one.
pub async fn device_get(
    State(state): State<AppState>,
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
        return page(
            StatusCode::OK,
            "Device login",
            Some(&s),
            &code_entry_form(None),
        );
    };
    let not_found = |msg: &str| {
        page(
            StatusCode::NOT_FOUND,
            "Device login",
            Some(&s),
            &code_entry_form(Some(msg)),
        )
    };
    let Some(code) = normalize_user_code(typed) else {
        return not_found(
            "That is not a valid code. Check the code in your terminal and try again.",
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
        return not_found(
            "This code is unknown, expired or already used. Run `dataerai auth login` again.",
        );
    };
    let body = format!(
        "<p>A device running <code>{client}</code> asks to access Dataerai as <b>{email}</b> with the scopes <b>{scopes}</b>.</p>\
         <p>Code: <span class=\"code\">{code}</span></p>\
         <p>Approve only if this code is the one shown in your own terminal.</p>\
         <form method=\"post\" action=\"/device\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"user_code\" value=\"{code}\">\
         <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button> \
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
        client = esc(&record.client_id),
        email = esc(&s.email),
        scopes = esc(&record.scopes.join(" ")),
        code = esc(&record.user_code),
        csrf = esc(&s.csrf_token)
    );
    page(StatusCode::OK, "Approve device login", Some(&s), &body)
}

/// `POST /device` (form `user_code`, `action=approve|deny`, `csrf_token`)
pub async fn device_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let s = match form_session(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let approve = match form.get("action").map(String::as_str) {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Device login",
                Some(&s),
                &code_entry_form(Some("Choose Approve or Deny.")),
            )
        }
    };
    let Some(code) = form.get("user_code").and_then(|c| normalize_user_code(c)) else {
        return page(
            StatusCode::NOT_FOUND,
            "Device login",
            Some(&s),
            &code_entry_form(Some("That is not a valid code.")),
        );
    };
    match state
        .meta
        .decide_device(&code, &s.user_id, approve, Utc::now())
        .await
    {
        Ok(true) if approve => {
            audit::record(
                &state,
                Some(&s.user_id),
                "auth.device_approved",
                Some(("device_code", &code)),
                json!({}),
                &client_addr(&extensions),
            )
            .await;
            page(
                StatusCode::OK,
                "Device approved",
                Some(&s),
                "<p class=\"ok\">Device approved. You can close this page and return to your terminal.</p>",
            )
        }
        Ok(true) => page(
            StatusCode::OK,
            "Device denied",
            Some(&s),
            "<p class=\"ok\">Device denied. The login in the terminal will fail.</p>",
        ),
        Ok(false) => page(
            StatusCode::NOT_FOUND,
            "Device login",
            Some(&s),
            &code_entry_form(Some(
                "This code is unknown, expired or already used. Run `dataerai auth login` again.",
            )),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot decide a device code");
            unavailable()
        }
    }
}

// ---------------------------------------------------------------- /tokens

async fn tokens_page(
    state: &AppState,
    s: &SessionRecord,
    status: StatusCode,
    top: &str,
) -> Response {
    let tokens = match state.meta.list_tokens(&s.user_id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot list tokens");
            return unavailable();
        }
    };
    let now = Utc::now();
    let mut rows = String::new();
    for t in &tokens {
        let state_text = if t.revoked {
            "revoked".to_string()
        } else if t.expires_at.is_some_and(|e| e <= now) {
            "expired".to_string()
        } else {
            "active".to_string()
        };
        let action = if t.revoked {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"/tokens/{id}/revoke\" style=\"margin:0\">\
                 <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
                 <button type=\"submit\" style=\"margin:0\">Revoke</button></form>",
                id = esc(&t.token_id),
                csrf = esc(&s.csrf_token)
            )
        };
        rows.push_str(&format!(
            "<tr data-token-id=\"{id}\"><td>{name}</td><td>{scopes}</td><td>{created}</td><td>{expires}</td><td>{state_text}</td><td>{action}</td></tr>",
            id = esc(&t.token_id),
            name = esc(&t.name),
            scopes = esc(&t.scopes.join(" ")),
            created = t.created_at.format("%Y-%m-%d %H:%M UTC"),
            expires = t
                .expires_at
                .map(|e| e.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "never".into()),
        ));
    }
    let table = if tokens.is_empty() {
        "<p>No personal access tokens yet.</p>".to_string()
    } else {
        format!("<table><tr><th>Name</th><th>Scopes</th><th>Created</th><th>Expires</th><th>State</th><th></th></tr>{rows}</table>")
    };
    let body = format!(
        "{top}<h2>Create a token</h2>\
         <form method=\"post\" action=\"/tokens\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <label for=\"name\">Name</label><input id=\"name\" type=\"text\" name=\"name\" maxlength=\"{MAX_TOKEN_NAME_LEN}\" required>\
         <label><input type=\"checkbox\" name=\"scope\" value=\"read\" checked> read</label>\
         <label><input type=\"checkbox\" name=\"scope\" value=\"write\"> write</label>\
         <label for=\"expires_in_days\">Expires after (days, empty = never)</label>\
         <input id=\"expires_in_days\" type=\"text\" name=\"expires_in_days\" inputmode=\"numeric\">\
         <button type=\"submit\">Create token</button></form>\
         <h2>Your tokens</h2>{table}",
        csrf = esc(&s.csrf_token)
    );
    page(status, "Personal access tokens", Some(s), &body)
}

/// `GET /tokens`
pub async fn tokens_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require_session(&state, &headers, "/tokens").await {
        Ok(s) => tokens_page(&state, &s, StatusCode::OK, "").await,
        Err(r) => r,
    }
}

/// `POST /tokens` (form `name`, `scope` (repeated), `expires_in_days`, `csrf_token`)
pub async fn tokens_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let s = match form_session(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let err = |m: &str| format!("<p class=\"err\">{}</p>", esc(m));
    let name = form
        .get("name")
        .map(|n| n.trim().to_string())
        .unwrap_or_default();
    if name.is_empty()
        || name.chars().count() > MAX_TOKEN_NAME_LEN
        || name.chars().any(char::is_control)
    {
        return tokens_page(
            &state,
            &s,
            StatusCode::BAD_REQUEST,
            &err(&format!(
                "Give the token a name of 1 to {MAX_TOKEN_NAME_LEN} characters."
            )),
        )
        .await;
    }
    // `scope` is repeated (one per checkbox): read every value.
    let mut scopes: Vec<String> = form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .collect();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() || scopes.iter().any(|x| x != SCOPE_READ && x != SCOPE_WRITE) {
        return tokens_page(
            &state,
            &s,
            StatusCode::BAD_REQUEST,
            &err("Choose the scopes read and/or write."),
        )
        .await;
    }
    let expires_at = match form
        .get("expires_in_days")
        .map(|d| d.trim())
        .filter(|d| !d.is_empty())
    {
        None => None,
        Some(d) => match d.parse::<u32>() {
            Ok(days) if (1..=3650).contains(&days) => {
                Some(Utc::now() + Duration::days(i64::from(days)))
            }
            _ => {
                return tokens_page(
                    &state,
                    &s,
                    StatusCode::BAD_REQUEST,
                    &err("Expiry must be a number of days from 1 to 3650, or empty."),
                )
                .await
            }
        },
    };
    let token = generate_token();
    let created = state
        .meta
        .create_token(NewToken {
            user_id: s.user_id.clone(),
            name: name.clone(),
            token_hash: hash_token(&token),
            scopes: scopes.clone(),
            expires_at,
        })
        .await;
    let token_id = match created {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "cannot create a token");
            return unavailable();
        }
    };
    audit::record(
        &state,
        Some(&s.user_id),
        "token.created",
        Some(("token", &token_id)),
        json!({"name": name, "scopes": scopes}),
        &client_addr(&extensions),
    )
    .await;
    let top = format!(
        "<div class=\"ok\"><p>Token created. Copy it now — it is shown only once:</p>\
         <p><code id=\"new-token\">{}</code></p></div>",
        esc(&token)
    );
    tokens_page(&state, &s, StatusCode::OK, &top).await
}

/// `POST /tokens/{token_id}/revoke` (form `csrf_token`)
pub async fn token_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(token_id): Path<String>,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let s = match form_session(&state, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match state
        .meta
        .revoke_token(&s.user_id, &token_id, Utc::now())
        .await
    {
        Ok(true) => {
            audit::record(
                &state,
                Some(&s.user_id),
                "token.revoked",
                Some(("token", &token_id)),
                json!({}),
                &client_addr(&extensions),
            )
            .await;
            redirect("/tokens")
        }
        Ok(false) => {
            tokens_page(
                &state,
                &s,
                StatusCode::NOT_FOUND,
                "<p class=\"err\">No such active token of yours.</p>",
            )
            .await
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot revoke a token");
            unavailable()
        }
    }
}

/// `GET /`: the token page (or the sign-in page on the way there).
pub async fn home() -> Response {
    redirect("/tokens")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_redirects() {
        assert_eq!(
            esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        assert_eq!(
            safe_next(Some(&"/device?user_code=AB".into())),
            "/device?user_code=AB"
        );
        for bad in [
            "//evil.org",
            "https://evil.org",
            "/\\evil.org",
            "",
            "javascript:x",
        ] {
            assert_eq!(safe_next(Some(&bad.to_string())), "/tokens", "{bad}");
        }
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; dataerai_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
