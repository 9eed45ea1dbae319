//! The server's one error type: an [`ApiError`] (stable `ERR_*` code + message)
//! rendered as `{"error": {...}}` with the code's HTTP status. Every failure —
//! ours, the store's, or axum's own extractor rejections — goes through here.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dataerai_proto::{ApiError, ErrorBody, ErrorCode};
use dataerai_store::StoreError;

#[derive(Debug)]
pub struct AppError {
    pub error: ApiError,
    /// Status other than the code's own plus extra headers (only 416 for
    /// unsatisfiable ranges). Boxed: errors travel in every `Result`.
    pub http: Option<Box<(StatusCode, HeaderMap)>>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::new(code, message).into()
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::invalid(message).into()
    }
    pub fn denied(message: impl Into<String>) -> Self {
        ApiError::denied(message).into()
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    /// 503 `ERR_SERVER_UNREACHABLE` with `Retry-After: retry_after_s`: the
    /// request may succeed if sent again later (shutting down, a fault).
    pub fn unavailable(message: impl Into<String>, retry_after_s: u64) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
        Self::new(ErrorCode::ServerUnreachable, message)
            .with_http(StatusCode::SERVICE_UNAVAILABLE, headers)
    }
    /// Answer with `status` instead of the code's own, plus `headers`.
    pub fn with_http(mut self, status: StatusCode, headers: HeaderMap) -> Self {
        self.http = Some(Box::new((status, headers)));
        self
    }
}

impl From<ApiError> for AppError {
    fn from(error: ApiError) -> Self {
        AppError { error, http: None }
    }
}

/// `Retry-After` (seconds) while PostgreSQL or the object store is unreachable.
const STORAGE_RETRY_AFTER_S: u64 = 5;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        if !e.is_no_space() && e.is_unavailable() {
            tracing::error!(error = %e, "storage backend unavailable");
            return AppError::unavailable(
                format!("the server's storage backend is unavailable ({e}); retry shortly"),
                STORAGE_RETRY_AFTER_S,
            );
        }
        let code = match &e {
            // Before the generic I/O and database arms: a full disk is the
            // operator's to fix, and the client can resume afterwards.
            e if e.is_no_space() => ErrorCode::NoSpace,
            StoreError::NotFound(_) => ErrorCode::NotFound,
            StoreError::Conflict(_) => ErrorCode::Conflict,
            StoreError::RelationshipExists => ErrorCode::RelationshipExists,
            StoreError::QuotaExceeded { .. } | StoreError::FileLimitExceeded { .. } => {
                ErrorCode::QuotaExceeded
            }
            StoreError::Invalid(_) => ErrorCode::InvalidInput,
            StoreError::Integrity(_) => ErrorCode::Integrity,
            StoreError::Db(_)
            | StoreError::Migrate(_)
            | StoreError::Io(_)
            | StoreError::ObjectStore(_) => {
                tracing::error!(error = %e, "storage failure");
                ErrorCode::Internal
            }
        };
        let message = match &e {
            StoreError::QuotaExceeded {
                quota,
                used,
                reserved,
                requested,
            } => {
                use dataerai_proto::api::human_bytes;
                let total = used.saturating_add(*reserved).saturating_add(*requested);
                format!(
                    "quota exceeded: {} of {} would be in use ({} requested, {} stored, {} reserved by open uploads); free space by deleting assets or ask an administrator for a larger quota",
                    human_bytes(total),
                    human_bytes(*quota),
                    human_bytes(*requested),
                    human_bytes(*used),
                    human_bytes(*reserved),
                )
            }
            StoreError::FileLimitExceeded {
                max_files,
                file_count,
                requested,
            } => format!(
                "file limit exceeded: {} files would be held of at most {max_files} ({requested} requested, {file_count} held); every file counts, empty ones too: pack many small files into one archive, delete assets, or ask an administrator for a larger file limit",
                file_count.saturating_add(*requested)
            ),
            StoreError::RelationshipExists => {
                "a relationship of this type between these assets already exists".to_string()
            }
            e if e.is_no_space() => format!(
                "the server's storage is full ({e}); nothing was published and the upload session stays open: resume it once space is freed"
            ),
            _ => e.to_string(),
        };
        AppError::new(code, message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let own = StatusCode::from_u16(self.error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (status, headers) = match self.http {
            Some(http) => *http,
            None => (own, HeaderMap::new()),
        };
        let code = self.error.code;
        let mut response = (status, Json(ErrorBody { error: self.error })).into_response();
        response.headers_mut().extend(headers);
        // For the metrics middleware (`dataerai_errors_total{code}`).
        response.extensions_mut().insert(code);
        response
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        AppError::invalid(format!("invalid JSON body: {}; send a JSON object with the documented fields (see /api/v1/openapi.json)", r.body_text()))
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        AppError::invalid(format!("invalid path parameter: {}", r.body_text()))
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        AppError::invalid(format!("invalid query string: {}", r.body_text()))
    }
}

/// `axum::Json` whose rejections are our JSON errors (400 `ERR_INVALID_INPUT`).
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with JSON rejections.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with JSON rejections.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);
