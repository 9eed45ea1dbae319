//! OAuth 2.0 Device Authorization Grant (RFC 8628) and refresh-token rotation.
//!
//! - `POST /oauth/device/code` mints a device code (only its hash is stored)
//!   and a short user code (`ABCD-EFGH`, consonants only, so it cannot spell
//!   words and has no 0/O or 1/I confusion) that the user types on `/device`.
//! - `POST /oauth/token` with the device code answers `authorization_pending`
//!   / `slow_down` / `access_denied` / `expired_token` until the user approves,
//!   then an access token (`--access-token-ttl-s`, 1 h) and a refresh token
//!   (30 days). Presenting the refresh token rotates it; presenting an
//!   already-rotated one revokes its whole family (theft detection).
//!
//! Errors use the RFC's JSON shape, not `ERR_*`. Everything is in the
//! metadata store, so any replica answers any poll.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use chrono::{Duration, Utc};
use dataerai_proto::api::{DeviceCodeResponse, OAuthError, TokenResponse};
use dataerai_store::meta::auth::{DevicePoll, IssuedTokens, NewDeviceCode, RefreshOutcome};
use dataerai_store::StoreError;
use rand::Rng;
use std::collections::HashMap;

use crate::auth::{hash_token, random_hex, ACCESS_PREFIX, REFRESH_PREFIX, SCOPE_READ, SCOPE_WRITE};
use crate::connections::ServedAt;
use crate::state::AppState;
use crate::state::DeviceLimits;
use crate::web::session::ClientAddr;

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Device codes live 10 minutes.
const DEVICE_CODE_TTL_S: u64 = 600;
const REFRESH_TTL_DAYS: i64 = 30;
/// Letters of user codes: 20 consonants (RFC 8628 §6.1), 20^8 ≈ 2.6e10 codes.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// An OAuth error answer (`400` unless said otherwise).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        no_store(),
        Json(OAuthError {
            error: error.to_string(),
            error_description: Some(description.to_string()),
        }),
    )
        .into_response()
}

/// RFC 6749 §5.2: every refused request (other than a storage failure) is a 400.
fn bad_request(error: &str, description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

/// RFC 6749 §5.1: token answers must not be cached.
fn no_store() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, "no-store".parse().unwrap());
    h.insert(header::PRAGMA, "no-cache".parse().unwrap());
    h
}

/// A form body as a map (the last value wins; invalid UTF-8 is replaced).
pub fn parse_form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// `XXXX-XXXX` from the unambiguous alphabet.
pub fn new_user_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let mut code: String = (0..8)
        .map(|_| USER_CODE_ALPHABET[rng.gen_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect();
    code.insert(4, '-');
    code
}

/// What a user typed → the stored form (`abcd efgh`, `ABCDEFGH` → `ABCD-EFGH`);
/// `None` when it cannot be a user code.
pub fn normalize_user_code(input: &str) -> Option<String> {
    let letters: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() != 8 || !letters.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)) {
        return None;
    }
    Some(format!("{}-{}", &letters[..4], &letters[4..]))
}

/// `scope` parameter → the stored scopes; `None` for unknown scopes.
fn parse_scopes(scope: Option<&String>) -> Option<Vec<String>> {
    let scope = scope.map(String::as_str).unwrap_or("read write");
    let mut scopes = Vec::new();
    for s in scope.split([' ', ',']).filter(|s| !s.is_empty()) {
        if s != SCOPE_READ && s != SCOPE_WRITE {
            return None;
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    if scopes.is_empty() {
        return None;
    }
    // Stored in a fixed order so equal grants look equal.
    scopes.sort();
    Some(scopes)
}

/// The base URL of links shown to the user: `public_url`, else the address
/// the client connected to. Never the request's `Host` header: any client
/// could then have the server hand out links to a site of its choosing.
pub fn base_url(state: &AppState, served_at: Option<ServedAt>) -> String {
    match (&state.auth.public_url, served_at) {
        (Some(url), _) => url.clone(),
        (None, Some(ServedAt(addr))) => format!("http://{addr}"),
        (None, None) => "http://localhost".to_string(),
    }
}

const CANNOT_STORE_CODE: &str = "the server cannot store the device code now; retry shortly";

/// 503 with the OAuth error `temporarily_unavailable`.
fn temporarily_unavailable(description: &str) -> Response {
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        description,
    )
}

/// RFC 8628 device authorization request (form client_id, scope)
#[utoipa::path(post, operation_id = "oauth_device_code", path = "/oauth/device/code", security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The codes", body = DeviceCodeResponse), (status = 400, description = "An OAuth error", body = OAuthError)))]
pub async fn device_code(
    State(state): State<AppState>,
    served_at: Option<Extension<ServedAt>>,
    ClientAddr(addr): ClientAddr,
    body: Bytes,
) -> Response {
    // Unauthenticated: bounded per address and in total before any work.
    if let Err(wait_s) = DeviceLimits::check(&state.device_limits.codes, &addr) {
        let mut r = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            &format!("too many device codes requested from your address; retry in {wait_s} s"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait_s));
        return r;
    }
    match state.meta.pending_device_codes(Utc::now()).await {
        Ok(n) if n < state.auth.max_pending_device_codes => {}
        Ok(_) => {
            tracing::warn!("device codes: the pending-code cap is reached");
            return temporarily_unavailable(
                "too many device logins are waiting for approval; retry in a few minutes",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot count pending device codes");
            return temporarily_unavailable(CANNOT_STORE_CODE);
        }
    }
    let form = parse_form(&body);
    let client_id = form.get("client_id").map(|s| s.trim()).unwrap_or("");
    if client_id.is_empty() || client_id.len() > 100 || client_id.chars().any(char::is_control) {
        return bad_request(
            "invalid_request",
            "client_id is required (e.g. client_id=dataerai-cli)",
        );
    }
    let Some(scopes) = parse_scopes(form.get("scope")) else {
        return bad_request(
            "invalid_scope",
            "scope must be `read`, `write` or `read write`",
        );
    };
    let device_code = random_hex();
    let now = Utc::now();
    let interval = state.auth.device_poll_interval_s;
    let mut user_code = new_user_code();
    // A user-code collision is astronomically rare; draw again a few times.
    for attempt in 0.. {
        let created = state
            .meta
            .create_device_code(NewDeviceCode {
                device_hash: hash_token(&device_code),
                user_code: user_code.clone(),
                client_id: client_id.to_string(),
                scopes: scopes.clone(),
                interval_s: interval as i64,
                now,
                expires_at: now + Duration::seconds(DEVICE_CODE_TTL_S as i64),
            })
            .await;
        match created {
            Ok(()) => break,
            Err(StoreError::Conflict(_)) if attempt < 5 => user_code = new_user_code(),
            Err(e) => {
                tracing::error!(error = %e, "cannot store a device code");
                return temporarily_unavailable(CANNOT_STORE_CODE);
            }
        }
    }
    let base = base_url(&state, served_at.map(|Extension(at)| at));
    let reply = DeviceCodeResponse {
        verification_uri: format!("{base}/device"),
        verification_uri_complete: format!("{base}/device?user_code={user_code}"),
        device_code,
        user_code,
        expires_in: DEVICE_CODE_TTL_S,
        interval,
    };
    (StatusCode::OK, no_store(), Json(reply)).into_response()
}

/// Fresh tokens for a grant (stored by the store only if the grant succeeds).
fn mint(state: &AppState, client: &str) -> (String, String, IssuedTokens) {
    let access = format!("{ACCESS_PREFIX}{}", random_hex());
    let refresh = format!("{REFRESH_PREFIX}{}", random_hex());
    let now = Utc::now();
    let issued = IssuedTokens {
        access_hash: hash_token(&access),
        access_expires_at: now + Duration::seconds(state.auth.access_token_ttl_s as i64),
        refresh_hash: hash_token(&refresh),
        refresh_expires_at: now + Duration::days(REFRESH_TTL_DAYS),
        name: format!("device login ({client})"),
    };
    (access, refresh, issued)
}

fn granted(state: &AppState, access: String, refresh: String, scopes: &[String]) -> Response {
    let reply = TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.auth.access_token_ttl_s,
        refresh_token: refresh,
        scope: scopes.join(" "),
        // Every rotation starts a fresh 30-day refresh token.
        refresh_token_expires_in: Some(REFRESH_TTL_DAYS as u64 * 86_400),
    };
    (StatusCode::OK, no_store(), Json(reply)).into_response()
}

fn unavailable(e: StoreError) -> Response {
    tracing::error!(error = %e, "token endpoint: storage failure");
    temporarily_unavailable("the server cannot answer now; retry shortly")
}

/// RFC 8628 / RFC 6749 token request (device_code or refresh_token grant); errors are OAuthError with 400
#[utoipa::path(post, operation_id = "oauth_token", path = "/oauth/token", security(()),
    request_body(content = crate::openapi::Form, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The tokens", body = TokenResponse), (status = 400, description = "An OAuth error", body = OAuthError)))]
pub async fn token(State(state): State<AppState>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let now = Utc::now();
    let grant = match form.get("grant_type").map(String::as_str) {
        Some(DEVICE_GRANT) => Grant::DeviceCode,
        Some("refresh_token") => Grant::RefreshToken,
        Some(_) => return bad_request("unsupported_grant_type", UNSUPPORTED_GRANT),
        None => return bad_request("invalid_request", "grant_type is required"),
    };
    let field = grant.field();
    let Some(presented) = form.get(field).filter(|c| !c.is_empty()) else {
        return bad_request("invalid_request", &format!("{field} is required"));
    };
    let client = form
        .get("client_id")
        .map(String::as_str)
        .unwrap_or("client");
    let (access, refresh, issued) = mint(&state, client);
    let presented = hash_token(presented);
    let outcome = match grant {
        Grant::DeviceCode => state
            .meta
            .poll_device(&presented, now, &issued)
            .await
            .map(device_poll_answer),
        Grant::RefreshToken => state
            .meta
            .rotate_refresh(&presented, now, &issued)
            .await
            .map(refresh_answer),
    };
    match outcome {
        Err(e) => unavailable(e),
        Ok(Ok(scopes)) => granted(&state, access, refresh, &scopes),
        Ok(Err((error, description))) => bad_request(error, description),
    }
}

const UNSUPPORTED_GRANT: &str =
    "grant_type must be urn:ietf:params:oauth:grant-type:device_code or refresh_token";

/// The two grants `/oauth/token` accepts.
#[derive(Clone, Copy)]
enum Grant {
    DeviceCode,
    RefreshToken,
}

impl Grant {
    /// The form field carrying what the client presents.
    fn field(self) -> &'static str {
        match self {
            Grant::DeviceCode => "device_code",
            Grant::RefreshToken => "refresh_token",
        }
    }
}

/// The granted scopes, or the OAuth error `(error, error_description)`.
type GrantAnswer = Result<Vec<String>, (&'static str, &'static str)>;

fn device_poll_answer(poll: DevicePoll) -> GrantAnswer {
    Err(match poll {
        DevicePoll::Issued { scopes, .. } => return Ok(scopes),
        DevicePoll::Pending => (
            "authorization_pending",
            "the user has not approved the code yet",
        ),
        DevicePoll::SlowDown => (
            "slow_down",
            "polling too fast; wait 5 seconds longer between polls",
        ),
        DevicePoll::Denied => ("access_denied", "the user denied the request"),
        DevicePoll::Expired => (
            "expired_token",
            "the device code expired; start the login again",
        ),
        DevicePoll::Invalid => ("invalid_grant", "unknown or already used device code"),
    })
}

fn refresh_answer(outcome: RefreshOutcome) -> GrantAnswer {
    Err(match outcome {
        RefreshOutcome::Rotated { scopes, .. } => return Ok(scopes),
        RefreshOutcome::Reused => {
            tracing::warn!("a rotated refresh token was presented again; its family is revoked");
            (
                "invalid_grant",
                "this refresh token was already used; every token of this login is revoked — run `dataerai auth login`",
            )
        }
        RefreshOutcome::Invalid => (
            "invalid_grant",
            "unknown, expired or revoked refresh token; run `dataerai auth login`",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_unambiguous_and_normalize() {
        for _ in 0..100 {
            let c = new_user_code();
            assert_eq!(c.len(), 9);
            assert_eq!(normalize_user_code(&c).as_deref(), Some(c.as_str()));
            assert_eq!(
                normalize_user_code(&c.to_lowercase().replace('-', " ")).as_deref(),
                Some(c.as_str())
            );
        }
        assert_eq!(
            normalize_user_code("ABCD-EFGH"),
            None,
            "vowels are not used"
        );
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("BCDF-GHJK'"), None);
    }

    #[test]
    fn scopes() {
        assert_eq!(parse_scopes(None).unwrap(), vec!["read", "write"]);
        assert_eq!(parse_scopes(Some(&"read".into())).unwrap(), vec!["read"]);
        assert!(parse_scopes(Some(&"admin".into())).is_none());
        assert!(parse_scopes(Some(&"".into())).is_none());
    }
}
