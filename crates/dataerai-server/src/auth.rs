//! Bearer-token authentication and scope checks, and the small crypto helpers
//! of sign-in (random secrets, Argon2id passwords, constant-time compares).
//!
//! Tokens look like `dtr_pat_<64 hex>` (personal access tokens), `dtr_at_…`
//! (device-login access tokens) and `dtr_rt_…` (refresh tokens): 32 bytes of
//! OS randomness each. The database only holds their BLAKE3 digest, so a
//! leaked database does not leak tokens. Revoked and expired tokens are
//! refused with 401. Every `GET`/`HEAD` needs the `read` scope, every other
//! method `write`.
//!
//! Without an `Authorization` header the browser's session cookie (the one
//! the web pages sign in with) is accepted too, for same-origin requests:
//! `GET`/`HEAD` with the cookie alone, every other method only with the
//! session's CSRF token in the `x-csrf-token` header (a cross-site form
//! cannot set a header). A bearer token wins when both are present.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use chrono::{DateTime, Utc};
use dataerai_proto::ErrorCode;
use dataerai_store::meta::auth::SessionRecord;
use rand::RngCore;

use crate::error::AppError;
use crate::state::AppState;

pub const SCOPE_READ: &str = "read";
pub const SCOPE_WRITE: &str = "write";

/// Prefix of personal access tokens.
pub const PAT_PREFIX: &str = "dtr_pat_";
/// Prefix of device-login access tokens.
pub const ACCESS_PREFIX: &str = "dtr_at_";
/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "dtr_rt_";

/// 32 bytes of OS randomness as hex.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Make a new random personal access token (shown once, never stored).
pub fn generate_token() -> String {
    format!("{PAT_PREFIX}{}", random_hex())
}

/// Constant-time equality of two secrets (CSRF tokens).
pub fn secrets_match(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Argon2id (default parameters) PHC string of a password. CPU-heavy: runs
/// on the blocking pool.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
    })
    .await?
}

/// How long a sign-in waits for a free password check before it is shed.
const PASSWORD_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// How many password checks may run at once: each Argon2id hash holds about
/// 19 MiB and a core, so a burst of sign-ins queues instead of growing memory.
pub fn password_check_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4))
}

/// Whether `password` matches the stored hash (`None`: no password set —
/// then a hash is computed anyway, so a wrong email takes as long as a wrong
/// password and does not reveal which accounts exist). At most
/// [`password_check_slots`] run at once; `None` when none came free within
/// [`PASSWORD_QUEUE_WAIT`].
pub async fn verify_password(
    state: &AppState,
    hash: Option<String>,
    password: String,
) -> Option<bool> {
    use argon2::password_hash::{
        rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
    };
    let slot = tokio::time::timeout(PASSWORD_QUEUE_WAIT, state.password_checks.acquire())
        .await
        .ok()?
        .ok()?;
    let _running = state.metrics.password_check();
    let matched = tokio::task::spawn_blocking(move || {
        let argon = argon2::Argon2::default();
        let Some(hash) = hash else {
            let _ = argon.hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng));
            return false;
        };
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false);
    drop(slot);
    Some(matched)
}

/// The client's address, for rate limits and the audit log: the
/// connection's peer, or what a trusted proxy says it forwarded for
/// ([`crate::connections::ClientIp`], set on every request by the accept loop).
pub fn client_addr(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<crate::connections::ClientIp>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The digest under which a token is stored.
pub fn hash_token(token: &str) -> String {
    blake3::hash(token.as_bytes()).to_hex().to_string()
}

/// The authenticated user of a request, with the token's scopes already
/// checked against the request method.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub email: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The client's address (audit log).
    pub addr: String,
}

impl Caller {
    /// A signed-in browser session acting from `addr`: both scopes, until
    /// the session ends (the REST API's cookie callers and the web pages).
    pub fn of_session(session: &SessionRecord, addr: String) -> Caller {
        Caller {
            user_id: session.user_id.clone(),
            email: session.email.clone(),
            scopes: vec![SCOPE_READ.to_string(), SCOPE_WRITE.to_string()],
            expires_at: Some(session.expires_at),
            addr,
        }
    }
}

fn sign_in(message: &str) -> AppError {
    AppError::new(
        ErrorCode::AuthRequired,
        format!(
            "{message}; sign in with `dataerai auth login` or send `Authorization: Bearer <token>`"
        ),
    )
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Some(header) = parts.headers.get(header::AUTHORIZATION) else {
            // No bearer token: the browser session cookie, same-origin only.
            return session_caller(parts, state).await;
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| sign_in("the Authorization header is not a bearer token"))?;
        let record = state
            .meta
            .token_by_hash(&hash_token(token))
            .await?
            .ok_or_else(|| sign_in("the access token is unknown or revoked"))?;
        if record.expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(sign_in("the access token has expired"));
        }
        let needed = if matches!(parts.method, Method::GET | Method::HEAD) {
            SCOPE_READ
        } else {
            SCOPE_WRITE
        };
        if !record.scopes.iter().any(|s| s == needed) {
            return Err(AppError::denied(format!(
                "this token lacks the `{needed}` scope; create a token with the `read` and `write` scopes on the server's /tokens page (or sign in again with `dataerai auth login`)"
            )));
        }
        Ok(Caller {
            user_id: record.user_id,
            email: record.email,
            scopes: record.scopes,
            expires_at: record.expires_at,
            addr: client_addr(&parts.extensions),
        })
    }
}

/// The header carrying the session's CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The caller of a request without a bearer token: the signed-in browser
/// session of its cookie, if the request is same-origin (a browser's
/// `Sec-Fetch-Site` says `same-origin` or `none`, or is absent for non-browser
/// clients, who cannot hold the cookie). Writes need [`CSRF_HEADER`] equal to
/// the session's CSRF token (403 otherwise). A session acts with both scopes.
async fn session_caller(parts: &Parts, state: &AppState) -> Result<Caller, AppError> {
    let none = || sign_in("this endpoint needs an access token");
    let cross_site = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v != "same-origin" && v != "none");
    if cross_site {
        return Err(none());
    }
    let Some(id) = crate::web::session::cookie(&parts.headers, crate::web::session::SESSION_COOKIE)
    else {
        return Err(none());
    };
    let session = state
        .meta
        .session(&hash_token(&id), Utc::now())
        .await?
        .ok_or_else(|| sign_in("the browser session has ended"))?;
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !secrets_match(sent, &session.csrf_token) {
            return Err(AppError::denied(format!(
                "a change made with the browser session needs the session's CSRF token in the `{CSRF_HEADER}` header"
            )));
        }
    }
    Ok(Caller::of_session(&session, client_addr(&parts.extensions)))
}
