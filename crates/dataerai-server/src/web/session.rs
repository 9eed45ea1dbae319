//! Browser sessions and cookies.
//!
//! The `dataerai_session` cookie holds 32 random bytes; the database holds
//! their BLAKE3 hash (`web_sessions`), so any replica knows the session.
//! Cookies are HttpOnly, SameSite=Lax and Secure.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use chrono::Utc;
use dataerai_store::meta::auth::SessionRecord;

use super::{redirect, unavailable};
use crate::auth::hash_token;
use crate::state::AppState;

pub(crate) const SESSION_COOKIE: &str = "dataerai_session";
/// The sign-in form's double-submit CSRF cookie (there is no session yet).
/// `__Host-`: the browser only accepts it Secure, for `/`, from this very
/// host — a sibling subdomain cannot plant one to defeat the check.
pub(super) const LOGIN_CSRF_COOKIE: &str = "__Host-dataerai_login_csrf";
pub(super) const SESSION_TTL_H: i64 = 12;

/// The signed-in session of a request, if any. `Err` = the database failed
/// (the 503 page).
pub(super) async fn session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SessionRecord>, Response> {
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
pub(super) async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
    here: &str,
) -> Result<SessionRecord, Response> {
    match session(state, headers).await? {
        Some(s) => Ok(s),
        None => Err(redirect(&format!("/login?next={}", url_encode(here)))),
    }
}

pub(super) fn set_cookie(response: &mut Response, name: &str, value: &str, max_age_s: i64) {
    let cookie =
        format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age_s}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Where to go after signing in: only local paths (no open redirect).
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

pub(super) fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The client's IP address, for the audit log and sign-in rate limits.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(crate::auth::client_addr(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/device?user_code=AB")),
            "/device?user_code=AB"
        );
        for bad in [
            "//evil.org",
            "https://evil.org",
            "/\\evil.org",
            "",
            "javascript:x",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
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

    #[test]
    fn cookies_are_http_only_secure_and_lax() {
        let mut r = Response::new(axum::body::Body::empty());
        set_cookie(&mut r, SESSION_COOKIE, "v", 60);
        assert_eq!(
            r.headers()[header::SET_COOKIE],
            "dataerai_session=v; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=60"
        );
    }
}
