//! `GET /metrics` and the middleware that counts every answer; the counters
//! themselves are [`crate::metrics::Metrics`], held in [`AppState`].

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dataerai_proto::ErrorCode;

use crate::error::AppResult;
use crate::state::AppState;

/// Method label with a bounded set of values (clients can send any method).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: count every answer by method and status, and error answers by
/// code (the error renderer leaves the [`ErrorCode`] in the response extensions).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let response = next.run(request).await;
    let code = response.extensions().get::<ErrorCode>().copied();
    state
        .metrics
        .answered(method, response.status().as_u16(), code);
    response
}

/// Prometheus metrics (text exposition format)
#[utoipa::path(get, path = "/metrics", security(()),
    responses((status = 200, description = "The metrics", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> AppResult<Response> {
    let active = state.meta.open_upload_count().await?;
    let mut response = state.metrics.render(active).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
