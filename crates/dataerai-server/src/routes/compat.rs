//! Compatibility routes: the small unversioned surface (`/api/…/`, with the
//! trailing slash) that scripts written against other Dataerai deployments
//! call without the SDK.
//!
//! A thin adapter and nothing more: each handler reshapes its request, calls
//! the `/api/v1` handler that does the work — so the checks, the permission
//! rules (404 for what the caller may not read, 403 for read without write)
//! and the store calls are the same ones — and reshapes the answer. Lists are
//! `{"results": [...], "count": N}`; every error carries `"detail"` (the
//! message) beside the usual `"error"` object ([`with_detail`]). New behaviour
//! goes into `/api/v1`, never here. `docs/api.md` ("Compatibility routes")
//! lists them.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use dataerai_proto::api::{
    Asset, Collection, CollectionListQuery, CompleteUpload, ContentVersion, CreateCollection,
    CreateRelationship, OwnerType, Relationship, UpdateAsset, UploadStatus,
};
use dataerai_proto::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    assets, collections, every_page, resolve_owner_id, uploads, window_of, AssetIdPath, Ctx,
    UploadIdPath,
};
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, AppResult};

/// The `detail` of a duplicate relationship, as scripts compare it.
pub const RELATIONSHIP_EXISTS_DETAIL: &str = "An identical relationship already exists.";

/// Items read from `/api/v1` per page while a compatibility list collects all of them.
const PAGE: u64 = 1000;

/// Add `"detail"` (the error's message) to every JSON error answer.
pub(super) async fn with_detail(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if !response.status().is_client_error() && !response.status().is_server_error() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, Body::from(bytes)),
    };
    if let (Some(message), Some(object)) = (
        value["error"]["message"].as_str().map(str::to_string),
        value.as_object_mut(),
    ) {
        object.insert("detail".into(), Value::String(message));
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&value).unwrap_or_else(|_| bytes.to_vec());
    Response::from_parts(parts, Body::from(body))
}

/// A list answer: every item, and how many there are.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Results<T> {
    pub results: Vec<T>,
    pub count: u64,
}

impl<T> From<Vec<T>> for Results<T> {
    fn from(results: Vec<T>) -> Self {
        Results {
            count: results.len() as u64,
            results,
        }
    }
}

// ---------------------------------------------------------------- assets

/// `POST /api/assets/{id}/relationships/`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewRelationship {
    pub to_asset_id: String,
    #[serde(rename = "type")]
    pub rel_type: String,
    #[schema(value_type = Option<Object>)]
    pub qualifiers: Option<Map<String, Value>>,
    pub analysis_mode: Option<String>,
    /// Stored as `qualifiers.note`.
    pub qualifier_note: Option<String>,
}

/// Compatibility: create a relationship (as POST /api/v1/assets/{asset_id}/relationships; 409 detail "An identical relationship already exists.")
#[utoipa::path(post, operation_id = "compat_create_relationship",
    path = "/api/assets/{asset_id}/relationships/",
    params(("asset_id" = String, Path, description = "Source asset id")),
    request_body = NewRelationship,
    responses((status = 201, description = "The new relationship", body = Relationship)))]
pub async fn create_relationship(
    ctx: Ctx,
    asset_id: ApiPath<String>,
    ApiJson(body): ApiJson<NewRelationship>,
) -> AppResult<(StatusCode, Json<Relationship>)> {
    let mut qualifiers = body.qualifiers;
    if let Some(note) = body.qualifier_note {
        qualifiers
            .get_or_insert_with(Map::new)
            .insert("note".into(), Value::String(note));
    }
    let v1 = CreateRelationship {
        to_asset_id: body.to_asset_id,
        rel_type: body.rel_type,
        analysis_mode: body.analysis_mode,
        qualifiers,
    };
    assets::create_relationship(ctx, asset_id, ApiJson(v1))
        .await
        .map_err(|e| match e.error.code {
            ErrorCode::RelationshipExists => {
                AppError::new(ErrorCode::RelationshipExists, RELATIONSHIP_EXISTS_DETAIL)
            }
            _ => e,
        })
}

/// The content a download gets now: `available` once a version is published;
/// `uploading` (and `id` null) before the first one is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrentContent {
    pub id: Option<String>,
    /// `uploading` or `available`.
    pub status: String,
}

/// An asset as `/api/v1` answers it, plus `id` and `current_content`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AssetView {
    /// The asset id (also `asset_id`).
    pub id: String,
    pub current_content: CurrentContent,
    #[serde(flatten)]
    pub asset: Asset,
}

impl From<Asset> for AssetView {
    fn from(asset: Asset) -> Self {
        let current_content = match &asset.latest_content {
            Some(c) => CurrentContent {
                id: Some(c.content_id.clone()),
                status: "available".into(),
            },
            None => CurrentContent {
                id: None,
                status: "uploading".into(),
            },
        };
        AssetView {
            id: asset.asset_id.clone(),
            current_content,
            asset,
        }
    }
}

/// Compatibility: an asset with record_type and current_content {id, status}
#[utoipa::path(get, operation_id = "compat_get_asset", path = "/api/assets/{asset_id}/",
    params(AssetIdPath), responses((status = 200, description = "The asset", body = AssetView)))]
pub async fn get_asset(ctx: Ctx, asset_id: ApiPath<String>) -> AppResult<Json<AssetView>> {
    let Json(asset) = assets::get_asset(ctx, asset_id).await?;
    Ok(Json(asset.into()))
}

/// Compatibility: change any of record_type, title, description, tags, metadata (as PATCH /api/v1/assets/{asset_id})
#[utoipa::path(patch, operation_id = "compat_update_asset", path = "/api/assets/{asset_id}/",
    params(AssetIdPath), request_body = UpdateAsset,
    responses((status = 200, description = "The updated asset", body = AssetView)))]
pub async fn update_asset(
    ctx: Ctx,
    asset_id: ApiPath<String>,
    patch: ApiJson<UpdateAsset>,
) -> AppResult<Json<AssetView>> {
    let Json(asset) = assets::update_asset(ctx, asset_id, patch).await?;
    Ok(Json(asset.into()))
}

// ---------------------------------------------------------------- projects

/// `GET /api/projects/?q=&access_scope=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectsQuery {
    /// Only projects whose name contains this (case-insensitive).
    pub q: Option<String>,
    /// `home` (the default): the projects you belong to.
    pub access_scope: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The user who created the project.
    pub owner_id: String,
    pub created_at: DateTime<Utc>,
    pub root_collection_id: String,
}

fn matches(name: &str, q: &Option<String>) -> bool {
    q.as_deref()
        .map(str::trim)
        .is_none_or(|q| name.to_lowercase().contains(&q.to_lowercase()))
}

/// Compatibility: projects you belong to, by name (q), as {results, count}
#[utoipa::path(get, operation_id = "compat_list_projects", path = "/api/projects/",
    params(ProjectsQuery),
    responses((status = 200, description = "Every matching project", body = Results<ProjectView>)))]
pub async fn list_projects(
    Ctx { state, caller }: Ctx,
    ApiQuery(q): ApiQuery<ProjectsQuery>,
) -> AppResult<Json<Results<ProjectView>>> {
    if let Some(scope) = q.access_scope.as_deref().filter(|s| *s != "home") {
        return Err(AppError::invalid(format!(
            "access_scope {scope:?} is not supported; use home (the projects you belong to)"
        )));
    }
    let projects = every_page(|offset| {
        let w = window_of(Some(PAGE), Some(offset));
        state.meta.list_projects(&caller.user_id, w)
    })
    .await?;
    Ok(Json(
        projects
            .into_iter()
            .filter(|p| matches(&p.name, &q.q))
            .map(|p| ProjectView {
                id: p.project_id,
                name: p.name,
                description: p.description,
                owner_id: p.created_by,
                created_at: p.created_at,
                root_collection_id: p.root_collection_id,
            })
            .collect::<Vec<_>>()
            .into(),
    ))
}

// ---------------------------------------------------------------- collections

/// `GET /api/collections/?owner_type=&owner_id=&q=`
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CollectionsQuery {
    /// `project` (collections belong to projects; `user` answers an empty list).
    pub owner_type: Option<OwnerType>,
    /// The project id (or, with `user`, your user id or email).
    pub owner_id: Option<String>,
    /// Only collections whose title contains this (case-insensitive).
    pub q: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CollectionView {
    pub id: String,
    pub title: String,
    pub created_at: DateTime<Utc>,
    /// `None` for a project's root collection.
    pub parent_id: Option<String>,
    pub owner_project_id: String,
}

impl From<Collection> for CollectionView {
    fn from(c: Collection) -> Self {
        CollectionView {
            id: c.collection_id,
            title: c.name,
            created_at: c.created_at,
            parent_id: c.parent_id,
            owner_project_id: c.project_id,
        }
    }
}

/// `user` owners have no collections: the caller's own id (or email) answers
/// an empty list, anyone else's the refusal of [`resolve_owner_id`].
fn personal_owner(caller: &Caller, owner_id: String) -> AppResult<()> {
    let id = resolve_owner_id(caller, OwnerType::User, owner_id)?;
    if id != caller.user_id {
        return Err(AppError::denied(format!(
            "user {id} is not you; personal collections are their user's only"
        )));
    }
    Ok(())
}

/// Compatibility: collections of a project (owner_type=project&owner_id=ID), by title (q), as {results, count}
#[utoipa::path(get, operation_id = "compat_list_collections", path = "/api/collections/",
    params(CollectionsQuery),
    responses((status = 200, description = "Every matching collection", body = Results<CollectionView>)))]
pub async fn list_collections(
    ctx: Ctx,
    ApiQuery(q): ApiQuery<CollectionsQuery>,
) -> AppResult<Json<Results<CollectionView>>> {
    let (Some(owner_type), Some(owner_id)) = (q.owner_type, q.owner_id) else {
        return Err(AppError::invalid(
            "give owner_type=project and owner_id=<project id>",
        ));
    };
    if owner_type == OwnerType::User {
        personal_owner(&ctx.caller, owner_id)?;
        return Ok(Json(Vec::new().into()));
    }
    let found = every_page(|offset| {
        let q = CollectionListQuery {
            parent_id: None,
            limit: Some(PAGE),
            offset: Some(offset),
        };
        let page =
            collections::list_collections(ctx.clone(), ApiPath(owner_id.clone()), ApiQuery(q));
        async move {
            let Json(page) = page.await?;
            Ok::<_, AppError>((page.items, page.total))
        }
    })
    .await?;
    Ok(Json(
        found
            .into_iter()
            .filter(|c| matches(&c.name, &q.q))
            .map(CollectionView::from)
            .collect::<Vec<_>>()
            .into(),
    ))
}

/// `POST /api/collections/`. `description`, `tags` and `type` are accepted
/// and not stored (collections have a name and a parent only).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
// `description`, `tags` and `type` are read from the body only to accept them.
#[allow(dead_code)]
pub struct NewCollection {
    pub title: String,
    pub owner_type: OwnerType,
    pub owner_id: String,
    /// Default: the project's root collection.
    pub parent_id: Option<String>,
    /// Accepted, not stored.
    pub description: Option<String>,
    /// Accepted, not stored.
    pub tags: Option<Vec<String>>,
    /// Accepted, not stored.
    #[serde(rename = "type")]
    pub collection_type: Option<String>,
}

/// Compatibility: create a collection in a project (as POST /api/v1/projects/{project_id}/collections)
#[utoipa::path(post, operation_id = "compat_create_collection", path = "/api/collections/",
    request_body = NewCollection,
    responses((status = 201, description = "The new collection", body = CollectionView)))]
pub async fn create_collection(
    ctx: Ctx,
    ApiJson(body): ApiJson<NewCollection>,
) -> AppResult<(StatusCode, Json<CollectionView>)> {
    if body.owner_type == OwnerType::User {
        personal_owner(&ctx.caller, body.owner_id)?;
        return Err(AppError::invalid(
            "collections belong to projects: give owner_type=project and owner_id=<project id>",
        ));
    }
    // Built from JSON so fields `/api/v1` adds later keep their defaults.
    let v1: CreateCollection = serde_json::from_value(serde_json::json!({
        "name": body.title, "parent_id": body.parent_id, "description": body.description,
    }))
    .map_err(|e| AppError::invalid(format!("invalid collection: {e}")))?;
    let (status, Json(c)) =
        collections::create_collection(ctx, ApiPath(body.owner_id), ApiJson(v1)).await?;
    Ok((status, Json(c.into())))
}

// ---------------------------------------------------------------- transfers

/// Compatibility: complete an upload session (as POST /api/v1/uploads/{upload_id}/complete; 409 when another completion won)
#[utoipa::path(post, operation_id = "compat_complete_transfer",
    path = "/api/transfers/{upload_id}/complete/", params(UploadIdPath),
    request_body = CompleteUpload,
    responses((status = 200, description = "The published content version", body = ContentVersion)))]
pub async fn complete_transfer(
    Ctx { state, caller }: Ctx,
    ApiPath(upload_id): ApiPath<String>,
    body: ApiJson<CompleteUpload>,
) -> AppResult<Json<ContentVersion>> {
    let ctx = Ctx {
        state: state.clone(),
        caller: caller.clone(),
    };
    let done = uploads::complete_upload(ctx, ApiPath(upload_id.clone()), body).await;
    match done {
        Err(e) if e.error.code == ErrorCode::InvalidInput => {
            // A session someone else completed first: a conflict, not bad input.
            match uploads::own_upload(&state, &caller, &upload_id).await {
                Ok(r) if r.session.status == UploadStatus::Complete => Err(AppError::new(
                    ErrorCode::Conflict,
                    format!("upload {upload_id} was already completed"),
                )),
                _ => Err(e),
            }
        }
        other => other,
    }
}
