//! How a failed HTTP exchange becomes an [`ApiError`], for every request this
//! crate sends (REST calls in [`crate::api`], OAuth calls in [`crate::auth`]).

use dataerai_proto::{ApiError, ErrorCode};
use reqwest::StatusCode;

/// Error code for a non-2xx status without a JSON error body.
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::AuthRequired,
        403 => ErrorCode::PermissionDenied,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::QuotaExceeded,
        422 => ErrorCode::Integrity,
        507 => ErrorCode::NoSpace,
        502..=504 => ErrorCode::ServerUnreachable,
        400..=499 => ErrorCode::InvalidInput,
        _ => ErrorCode::Internal,
    }
}

/// `ERR_SERVER_UNREACHABLE` for a request to `server` that got no HTTP answer
/// (connection refused, DNS, TLS, a timeout, a body cut short), with the whole
/// chain of causes: all of them mean "could not talk to the server" and are
/// worth a retry.
pub fn unreachable(server: &str, e: reqwest::Error) -> ApiError {
    let mut msg = format!("cannot reach the Dataerai server at {server}: {e}");
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    ApiError::new(ErrorCode::ServerUnreachable, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_codes() {
        for (status, code) in [
            (StatusCode::UNAUTHORIZED, ErrorCode::AuthRequired),
            (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::QuotaExceeded),
            (StatusCode::BAD_GATEWAY, ErrorCode::ServerUnreachable),
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        ] {
            assert_eq!(code_for_status(status), code, "{status}");
        }
    }
}
