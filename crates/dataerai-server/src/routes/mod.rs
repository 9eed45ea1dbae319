//! The HTTP surface: the route table of `docs/api.md`, shared helpers
//! (pagination, access checks) and the handlers, one module per resource.

mod assets;
mod batches;
mod collections;
mod compat;
mod content;
mod lineage;
pub(crate) mod members;
mod metrics;
pub mod openapi;
mod path_params;
mod projects;
mod provenance;
mod search;
mod uploads;

/// What the asset page shares with the REST routes: the lineage as the
/// caller may see it, and the update and delete its forms call.
pub(crate) use assets::{delete_asset, update_asset};
pub(crate) use lineage::readable_lineage;
/// The shared path parameters of the OpenAPI document (the web pages use them too).
pub(crate) use path_params::*;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use dataerai_proto::api::{Asset, OwnerType, Page, PageQuery};
use dataerai_store::meta::Window;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::{oauth, web};

/// Largest JSON body accepted (chunk bodies are streamed and not limited by this).
const JSON_BODY_LIMIT: usize = 1024 * 1024;
/// Largest `POST /uploads/batch` body (up to 256 items with their metadata).
const BATCH_BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Largest `POST /uploads/finish` body: the files plus the manifest and framing.
const FINISH_BODY_LIMIT: usize = dataerai_proto::api::MAX_FINISH_BYTES as usize + 2 * 1024 * 1024;

/// Largest `POST /uploads/single` body: one small file plus its request and framing.
const SINGLE_BODY_LIMIT: usize =
    dataerai_proto::api::MAX_SMALL_FILE as usize + JSON_BODY_LIMIT + 64 * 1024;

/// The service: [`documented_routes`] plus the fallbacks and the layers that
/// wrap every request.
pub fn router(state: AppState) -> Router {
    let (routes, _) = documented_routes();
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), refuse_while_stopping))
        // Outermost, so it also counts the answers of the layers inside.
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Every route with its OpenAPI operations (`crate::openapi::document` adds
/// what they share). `routes!(handler)` routes a handler at the path and
/// methods of its `#[utoipa::path]` attribute and documents it from there.
pub fn documented_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    // Chunk bodies are streamed and not limited by the JSON body limit.
    let (chunk_routes, chunk_doc) = OpenApiRouter::new()
        .routes(routes!(uploads::put_chunk))
        .layer(DefaultBodyLimit::disable())
        // Small files' bytes in one request: guarded and drained like chunk PUTs.
        .routes(
            routes!(batches::finish_small_uploads).layer(DefaultBodyLimit::max(FINISH_BODY_LIMIT)),
        )
        .routes(routes!(batches::single_upload).layer(DefaultBodyLimit::max(SINGLE_BODY_LIMIT)))
        .split_for_parts();
    #[cfg(feature = "fault-injection")]
    let chunk_routes = crate::faults::guard_chunk_route(chunk_routes);
    let chunk_routes = chunk_routes.layer(axum::middleware::from_fn(drain_unread_body));
    let (routes, mut doc) = OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi_document))
        .routes(routes!(projects::me))
        .routes(routes!(projects::create_project, projects::list_projects))
        .routes(routes!(projects::get_project))
        .routes(routes!(members::list_members, members::add))
        .routes(routes!(members::remove))
        .routes(routes!(members::list_audit_events))
        .routes(routes!(search::search_assets))
        // OAuth 2.0 device login (RFC 8628) and the web pages.
        .routes(routes!(oauth::device_code))
        .routes(routes!(oauth::token))
        .routes(routes!(web::home::home))
        .routes(routes!(web::projects::project_page))
        .routes(routes!(web::members::member_set))
        .routes(routes!(web::members::member_remove))
        .routes(routes!(web::assets::asset_page))
        .routes(routes!(web::assets::asset_edit))
        .routes(routes!(web::assets::asset_delete))
        .routes(routes!(web::search::search_page))
        .routes(routes!(web::admin::admin_page))
        .routes(routes!(web::admin::users_page, web::admin::user_create))
        .routes(routes!(web::admin::user_password))
        .routes(routes!(web::admin::user_disable))
        .routes(routes!(web::admin::user_enable))
        .routes(routes!(web::admin::audit_page))
        .routes(routes!(web::static_files::static_file))
        .routes(routes!(web::login::login_get, web::login::login_post))
        .routes(routes!(web::login::logout))
        .routes(routes!(web::device::device_get, web::device::device_post))
        .routes(routes!(web::tokens::tokens_get, web::tokens::tokens_post))
        .routes(routes!(web::tokens::token_revoke))
        // The collection tree (`collections.rs`).
        .routes(routes!(
            collections::list_collections,
            collections::create_collection
        ))
        .routes(routes!(
            collections::get_collection,
            collections::update_collection,
            collections::delete_collection
        ))
        .routes(routes!(collections::list_collection_children))
        .routes(routes!(collections::list_collection_assets))
        .routes(routes!(collections::ensure_collection_path))
        .routes(routes!(collections::move_asset))
        .routes(routes!(assets::create_asset, assets::list_assets))
        .routes(routes!(
            assets::get_asset,
            assets::update_asset,
            assets::delete_asset
        ))
        .routes(routes!(content::list_contents))
        .routes(routes!(content::get_content, content::delete_content))
        .routes(routes!(content::download_file))
        .routes(routes!(
            assets::create_relationship,
            assets::list_relationships
        ))
        .routes(routes!(lineage::asset_lineage))
        // Provenance export: PROV-JSON of a lineage, RO-Crate metadata of a set of assets.
        .routes(routes!(provenance::asset_provenance))
        .routes(routes!(provenance::ro_crate_metadata))
        .routes(routes!(uploads::create_upload))
        .routes(
            routes!(batches::create_upload_batch).layer(DefaultBodyLimit::max(BATCH_BODY_LIMIT)),
        )
        .routes(routes!(uploads::get_upload, uploads::abort_upload))
        .routes(routes!(uploads::complete_upload))
        .routes(routes!(batches::get_single_upload))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .split_for_parts();
    // The unversioned surface older scripts call: a thin adapter over the
    // handlers above whose errors also carry "detail" (`compat.rs`).
    let (compat_routes, compat_doc) = OpenApiRouter::new()
        .routes(routes!(compat::create_relationship))
        .routes(routes!(compat::get_asset, compat::update_asset))
        .routes(routes!(compat::list_projects))
        .routes(routes!(compat::list_collections, compat::create_collection))
        .routes(routes!(compat::complete_transfer))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(axum::middleware::from_fn(compat::with_detail))
        .split_for_parts();
    doc.merge(chunk_doc);
    doc.merge(compat_doc);
    (routes.merge(chunk_routes).merge(compat_routes), doc)
}

/// What every API handler takes: the service's state and the caller, who
/// must be signed in (a bearer token, or the session cookie of the web pages).
#[derive(Clone)]
pub(crate) struct Ctx {
    pub state: AppState,
    pub caller: Caller,
}

impl axum::extract::FromRequestParts<AppState> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, AppError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(Ctx {
            state: state.clone(),
            caller,
        })
    }
}

/// Names and titles are shown in terminals and pages: a control character
/// (C0, DEL, C1 — escape sequences, carriage returns, newlines) is refused.
pub(crate) fn refuse_control_characters(what: &str, text: &str) -> AppResult<()> {
    match text.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(AppError::invalid(format!(
            "{what} must not contain control characters (found U+{:04X})",
            u32::from(c)
        ))),
    }
}

/// A short piece of text (a name, an alias, a record type): surrounding
/// spaces trimmed, no control characters, 1 to `max` characters.
pub(crate) fn check_text(what: &str, text: &str, max: usize) -> AppResult<String> {
    let t = text.trim();
    refuse_control_characters(what, t)?;
    if t.is_empty() || t.chars().count() > max {
        return Err(AppError::invalid(format!(
            "{what} must be 1 to {max} characters"
        )));
    }
    Ok(t.to_string())
}

/// Liveness check
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", security(()),
    responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// `{"status": "ok"}` (liveness) or `{"status": "ready"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    status: String,
}

/// How long the server keeps reading a chunk body nobody wanted.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Read to its end whatever part of a chunk body the handler left unread (an
/// early error, a chunk already held, a 503) before the answer goes out.
///
/// A client is still writing its chunk when such an answer is ready; if the
/// server closed the connection on it, the client would see only a broken
/// pipe (a transport error) instead of the answer: a permanent `ERR_*` would
/// look retryable, and `Retry-After` or an idempotent ack would be lost. Bodies
/// declared larger than a chunk can be are not drained, nor the rest of a
/// chunked body (no declared length) beyond a chunk's largest size: the
/// connection closes. The body is handed on frame by frame, so a trailer
/// (the chunk's digest after its bytes) reaches the handler.
async fn drain_unread_body(request: Request, next: Next) -> Response {
    use http_body_util::BodyExt;
    use std::sync::Arc;

    let most = dataerai_proto::api::MAX_CHUNK_SIZE;
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > most) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let shared = Arc::new(tokio::sync::Mutex::new(body));
    let handed = futures::stream::unfold(shared.clone(), |s| async move {
        let frame = s.lock().await.frame().await?;
        Some((frame, s))
    });
    let body = axum::body::Body::new(http_body_util::StreamBody::new(handed));
    let response = next.run(Request::from_parts(parts, body)).await;
    let mut rest = shared.lock().await;
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut read = 0u64;
        while let Some(Ok(frame)) = rest.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > most {
                return false;
            }
        }
        true
    })
    .await;
    if drained != Ok(true) {
        tracing::debug!("gave up draining an unread chunk body");
    }
    response
}

/// Seconds clients are told to wait when the server cannot serve them now.
const RETRY_AFTER_S: u64 = 5;

/// Once a shutdown signal arrived, answer new requests 503 + `Retry-After`
/// (liveness and metrics stay up for the orchestrator); otherwise run the
/// request on its own task so a disconnecting client cannot cancel it.
async fn refuse_while_stopping(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if state.is_stopping() && path != "/healthz" && path != "/metrics" {
        return AppError::unavailable(
            "the server is shutting down; retry in a few seconds",
            RETRY_AFTER_S,
        )
        .into_response();
    }
    // Run every request to completion on its own task, so a client that
    // disconnects drops only the response, never a handler half-way through
    // a store transaction (sqlx's BEGIN is not cancel-safe: a cancelled one
    // can return a connection to the pool still inside a transaction, after
    // which every SQLite write reports "database is locked").
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => AppError::new(
            dataerai_proto::ErrorCode::Internal,
            format!("request handler failed: {e}"),
        )
        .into_response(),
    }
}

/// Readiness: the metadata store answers and the blob store accepts writes (503 + Retry-After otherwise, and while shutting down)
#[utoipa::path(get, operation_id = "readyz", path = "/readyz", security(()),
    responses((status = 200, description = "Ready", body = Health)))]
async fn readyz(State(state): State<AppState>) -> AppResult<Json<Health>> {
    if state.is_stopping() {
        return Err(AppError::unavailable(
            "the server is shutting down",
            RETRY_AFTER_S,
        ));
    }
    state.meta.ping().await.map_err(|e| {
        AppError::unavailable(
            format!("the metadata store does not answer: {e}"),
            RETRY_AFTER_S,
        )
    })?;
    state.blobs.check_writable().await.map_err(|e| {
        AppError::unavailable(
            format!("the blob store does not accept writes: {e}"),
            RETRY_AFTER_S,
        )
    })?;
    Ok(Json(Health {
        status: "ready".into(),
    }))
}

async fn not_found(uri: Uri) -> AppError {
    AppError::not_found(format!(
        "no route {}; see /api/v1/openapi.json for the routes",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::not_found(format!(
        "no route {method} {}; see /api/v1/openapi.json for the routes",
        uri.path()
    ))
}

// ---------------------------------------------------------------- helpers

/// `?limit=&offset=` → a store window (limit defaults to 100, at most 1000).
pub(crate) fn window(q: &PageQuery) -> Window {
    window_of(q.limit, q.offset)
}

pub(crate) fn window_of(limit: Option<u64>, offset: Option<u64>) -> Window {
    Window {
        limit: limit.unwrap_or(100).min(1000),
        // SQLite takes i64; larger offsets only ever select nothing anyway.
        offset: offset.unwrap_or(0).min(i64::MAX as u64),
    }
}

pub(crate) fn page<T>((items, total): (Vec<T>, u64), w: Window) -> Page<T> {
    Page {
        items,
        total,
        limit: w.limit,
        offset: w.offset,
    }
}

/// The answer of a list endpoint: the page `list` reads for window `w`.
pub(crate) async fn paged<T, List>(
    w: Window,
    list: impl FnOnce(Window) -> List,
) -> AppResult<Json<Page<T>>>
where
    List: std::future::Future<Output = Result<(Vec<T>, u64), dataerai_store::StoreError>>,
{
    Ok(Json(page(list(w).await?, w)))
}

/// Every item of a paged list: `page(offset)` answers the items from
/// `offset` on (a page of them) and how many there are in all.
pub(crate) async fn every_page<T, E, Page>(mut page: impl FnMut(u64) -> Page) -> Result<Vec<T>, E>
where
    Page: std::future::Future<Output = Result<(Vec<T>, u64), E>>,
{
    let mut all = Vec::new();
    loop {
        let (items, total) = page(all.len() as u64).await?;
        let last = items.is_empty();
        all.extend(items);
        if last || all.len() as u64 >= total {
            return Ok(all);
        }
    }
}

/// Delete the blobs of the content ids a store write freed (`delete_asset`,
/// `delete_content`, `abort_upload`). The rows went first, so a failure here
/// only leaves unreferenced bytes for the garbage collector: it is logged,
/// not answered.
pub(crate) async fn delete_freed_blobs(state: &AppState, freed: Vec<String>, of_what: &str) {
    for content_id in freed {
        if let Err(e) = state.blobs.delete_content(&content_id).await {
            tracing::warn!(%content_id, error = %e, "could not delete the blobs of {of_what}");
        }
    }
}

/// What a lookup by id found, or 404 `{what} {id} not found`.
pub(crate) fn found<T>(item: Option<T>, what: &str, id: &str) -> AppResult<T> {
    item.ok_or_else(|| not_found_error(what, id))
}

/// The one 404 of a lookup by id. Callers who may not read a thing get it
/// too (see [`require`]), so an outsider cannot tell an existing id from an
/// unknown one.
pub(crate) fn not_found_error(what: &str, id: &str) -> AppError {
    AppError::not_found(format!("{what} {id} not found"))
}

/// What a caller may do with something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    None,
    Read,
    Write,
}

/// Access from a project role: `owner`, `admin`, `member` write, `viewer` reads.
pub(crate) async fn project_access(
    state: &AppState,
    caller: &Caller,
    project_id: &str,
) -> AppResult<Access> {
    Ok(
        match state.meta.member_role(project_id, &caller.user_id).await? {
            Some(role) if role.may_write() => Access::Write,
            Some(_) => Access::Read,
            None => Access::None,
        },
    )
}

/// The owner id a request names, with a personal owner given by email resolved:
/// existing code passes `owner_type="user", owner_id=<the caller's email>` for
/// the caller's personal space, so that email means the caller's user id.
/// Another user's email is refused exactly like another user's id — the same
/// 403 whether or not an account has that email, so emails cannot be probed.
pub(crate) fn resolve_owner_id(
    caller: &Caller,
    owner_type: OwnerType,
    owner_id: String,
) -> AppResult<String> {
    if owner_type != OwnerType::User || !owner_id.contains('@') {
        return Ok(owner_id);
    }
    if owner_id.trim().eq_ignore_ascii_case(caller.email.trim()) {
        return Ok(caller.user_id.clone());
    }
    Err(AppError::denied(format!(
        "personal assets belong to their user only; use owner_id = your user id ({}) or your own email ({})",
        caller.user_id, caller.email
    )))
}

/// What the caller may do with the assets of one owner.
pub(crate) async fn owner_access(
    state: &AppState,
    caller: &Caller,
    owner_type: OwnerType,
    owner_id: &str,
) -> AppResult<Access> {
    match owner_type {
        OwnerType::User if owner_id == caller.user_id => Ok(Access::Write),
        OwnerType::User => Ok(Access::None),
        OwnerType::Project => project_access(state, caller, owner_id).await,
    }
}

/// Whether the caller may read the assets of an owner, asked once per owner
/// (redacting a listing checks many assets of few owners).
#[derive(Default)]
pub(crate) struct ReadableOwners(Vec<((OwnerType, String), bool)>);

impl ReadableOwners {
    pub(crate) async fn may_read(
        &mut self,
        state: &AppState,
        caller: &Caller,
        owner_type: OwnerType,
        owner_id: &str,
    ) -> AppResult<bool> {
        if let Some((_, r)) = self
            .0
            .iter()
            .find(|((t, id), _)| *t == owner_type && id == owner_id)
        {
            return Ok(*r);
        }
        let r = owner_access(state, caller, owner_type, owner_id).await? != Access::None;
        self.0.push(((owner_type, owner_id.to_string()), r));
        Ok(r)
    }
}

/// Load an asset the caller may at least read (`need = Read`) or write.
pub(crate) async fn load_asset(
    state: &AppState,
    caller: &Caller,
    asset_id: &str,
    need: Access,
) -> AppResult<Asset> {
    let asset = found(state.meta.get_asset(asset_id).await?, "asset", asset_id)?;
    let access = owner_access(state, caller, asset.owner_type, &asset.owner_id).await?;
    require(access, need, "asset", asset_id)?;
    Ok(asset)
}

/// Refuse unless `access` covers `need` on `{what} {id}`.
///
/// Whoever may not read the thing gets exactly the 404 of an unknown id
/// (status, code and message), so ids cannot be probed; a reader who needs
/// write access gets 403 `ERR_PERMISSION_DENIED`.
pub(crate) fn require(access: Access, need: Access, what: &str, id: &str) -> AppResult<()> {
    match (access, need) {
        (Access::None, _) => Err(not_found_error(what, id)),
        (Access::Read, Access::Write) => Err(AppError::denied(format!(
            "you may read {what} {id} but not change it; ask a project owner or admin for the member role"
        ))),
        _ => Ok(()),
    }
}
