//! `GET /api/v1/openapi.json`: the document of `crate::openapi`.

use axum::Json;
use serde_json::Value;

/// This document
#[utoipa::path(get, path = "/api/v1/openapi.json", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_document() -> Json<&'static Value> {
    Json(crate::openapi::document())
}
