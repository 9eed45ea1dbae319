//! Stable error codes. The string form (`ERR_NOT_FOUND`, …) is the contract: the
//! server puts it in JSON error bodies, the daemon in `error.data.code`, and the
//! Python SDK in `DaemonError.code`. Never rename a variant's string.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorCode {
    /// No credentials, or the token is missing, malformed, expired or revoked.
    #[serde(rename = "ERR_AUTH_REQUIRED")]
    AuthRequired,
    /// Signed in, but not allowed (role, ownership or token scope).
    #[serde(rename = "ERR_PERMISSION_DENIED")]
    PermissionDenied,
    #[serde(rename = "ERR_NOT_FOUND")]
    NotFound,
    #[serde(rename = "ERR_INVALID_INPUT")]
    InvalidInput,
    #[serde(rename = "ERR_QUOTA_EXCEEDED")]
    QuotaExceeded,
    #[serde(rename = "ERR_RELATIONSHIP_EXISTS")]
    RelationshipExists,
    /// A unique value (alias, email, …) is already taken.
    #[serde(rename = "ERR_CONFLICT")]
    Conflict,
    /// Data failed a BLAKE3 check (chunk, whole file, or blob at rest).
    #[serde(rename = "ERR_INTEGRITY")]
    Integrity,
    /// The server could not be reached (daemon/CLI side only).
    #[serde(rename = "ERR_SERVER_UNREACHABLE")]
    ServerUnreachable,
    /// A transfer was cancelled by a client.
    #[serde(rename = "ERR_CANCELLED")]
    Cancelled,
    /// A download would replace a different local file (daemon/CLI side only).
    #[serde(rename = "ERR_FILE_EXISTS")]
    FileExists,
    /// Local or server disk is full.
    #[serde(rename = "ERR_NO_SPACE")]
    NoSpace,
    /// Anything else; the message says what happened.
    #[serde(rename = "ERR_INTERNAL")]
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthRequired => "ERR_AUTH_REQUIRED",
            ErrorCode::PermissionDenied => "ERR_PERMISSION_DENIED",
            ErrorCode::NotFound => "ERR_NOT_FOUND",
            ErrorCode::InvalidInput => "ERR_INVALID_INPUT",
            ErrorCode::QuotaExceeded => "ERR_QUOTA_EXCEEDED",
            ErrorCode::RelationshipExists => "ERR_RELATIONSHIP_EXISTS",
            ErrorCode::Conflict => "ERR_CONFLICT",
            ErrorCode::Integrity => "ERR_INTEGRITY",
            ErrorCode::ServerUnreachable => "ERR_SERVER_UNREACHABLE",
            ErrorCode::Cancelled => "ERR_CANCELLED",
            ErrorCode::FileExists => "ERR_FILE_EXISTS",
            ErrorCode::NoSpace => "ERR_NO_SPACE",
            ErrorCode::Internal => "ERR_INTERNAL",
        }
    }

    /// HTTP status the server uses for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::AuthRequired => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::InvalidInput => 400,
            ErrorCode::QuotaExceeded => 413,
            ErrorCode::RelationshipExists | ErrorCode::Conflict | ErrorCode::FileExists => 409,
            ErrorCode::Integrity => 422,
            ErrorCode::NoSpace => 507,
            ErrorCode::ServerUnreachable => 503,
            ErrorCode::Cancelled => 499,
            ErrorCode::Internal => 500,
        }
    }

    /// Whether retrying the same request later can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::ServerUnreachable | ErrorCode::Internal | ErrorCode::Integrity
        )
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable code and a message that says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PermissionDenied, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// JSON body of every non-2xx REST response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ApiError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_as_strings() {
        let json = serde_json::to_string(&ErrorCode::RelationshipExists).unwrap();
        assert_eq!(json, "\"ERR_RELATIONSHIP_EXISTS\"");
        for c in [
            ErrorCode::AuthRequired,
            ErrorCode::NoSpace,
            ErrorCode::Internal,
        ] {
            let s = serde_json::to_string(&c).unwrap();
            assert_eq!(s.trim_matches('"'), c.as_str());
        }
    }
}
