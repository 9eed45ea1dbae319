//! Bearer-token authentication and scope checks.
//!
//! Tokens look like `dtr_<64 hex>` (32 bytes of OS randomness). The database
//! only holds their BLAKE3 digest, so a leaked database does not leak tokens.
//! Every `GET`/`HEAD` needs the `read` scope, every other method `write`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use chrono::{DateTime, Utc};
use dataerai_proto::ErrorCode;
use rand::RngCore;

use crate::error::AppError;
use crate::state::AppState;

pub const SCOPE_READ: &str = "read";
pub const SCOPE_WRITE: &str = "write";

/// Make a new random token (shown once, never stored).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("dtr_{}", hex::encode(bytes))
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
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| sign_in("this endpoint needs an access token"))?;
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
                "this token lacks the `{needed}` scope; create a token with `--scope read,write`"
            )));
        }
        Ok(Caller {
            user_id: record.user_id,
            email: record.email,
            scopes: record.scopes,
            expires_at: record.expires_at,
        })
    }
}
