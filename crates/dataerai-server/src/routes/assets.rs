//! Assets (create, list, read, patch, delete) and their relationships.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use dataerai_proto::api::{
    Asset, AssetQuery, CreateAsset, CreateRelationship, Page, PageQuery, Relationship, UpdateAsset,
    ANALYSIS_MODES, MAX_RELATIONSHIP_TYPE_LEN,
};
use dataerai_store::meta::{NewAsset, NewRelationship, OWNER_PROJECT, OWNER_USER};

use super::{load_asset, page, project_access, window, window_of, Access};
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, AppResult};
use crate::state::AppState;

const MAX_TITLE_LEN: usize = 1000;
const MAX_ALIAS_LEN: usize = 255;
const MAX_TAGS: usize = 100;

fn check_title(title: &str) -> AppResult<String> {
    let t = title.trim();
    if t.is_empty() {
        return Err(AppError::invalid("title is required and must not be empty"));
    }
    if t.chars().count() > MAX_TITLE_LEN {
        return Err(AppError::invalid(format!(
            "title is longer than {MAX_TITLE_LEN} characters"
        )));
    }
    Ok(t.to_string())
}

fn check_alias(alias: &str) -> AppResult<String> {
    let a = alias.trim();
    if a.is_empty() || a.chars().count() > MAX_ALIAS_LEN {
        return Err(AppError::invalid(format!(
            "alias must be 1 to {MAX_ALIAS_LEN} characters"
        )));
    }
    Ok(a.to_string())
}

fn check_tags(tags: Vec<String>) -> AppResult<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(AppError::invalid(format!(
            "at most {MAX_TAGS} tags are allowed"
        )));
    }
    if tags.iter().any(|t| t.trim().is_empty()) {
        return Err(AppError::invalid("tags must not be empty strings"));
    }
    Ok(tags)
}

/// Check the caller may create/list assets of this owner. Answers the
/// project's root collection for project owners.
async fn check_owner(
    state: &AppState,
    caller: &Caller,
    owner_type: &str,
    owner_id: &str,
    need: Access,
) -> AppResult<Option<String>> {
    match owner_type {
        OWNER_USER => {
            if owner_id != caller.user_id {
                return Err(AppError::denied(format!(
                    "personal assets of user {owner_id} belong to that user only; use owner_id = your user id ({})",
                    caller.user_id
                )));
            }
            Ok(None)
        }
        OWNER_PROJECT => {
            let access = project_access(state, caller, owner_id).await?;
            if access == Access::None && !state.meta.project_exists(owner_id).await? {
                return Err(AppError::not_found(format!("project {owner_id} not found")));
            }
            let ok = match need {
                Access::Write => access == Access::Write,
                _ => access != Access::None,
            };
            if !ok {
                return Err(AppError::denied(format!(
                    "you need the member role in project {owner_id} for this; ask a project admin"
                )));
            }
            let project = state
                .meta
                .project_for_member(owner_id, &caller.user_id)
                .await?;
            Ok(project.map(|p| p.root_collection_id))
        }
        other => Err(AppError::invalid(format!(
            "owner_type must be \"user\" or \"project\", not {other:?}"
        ))),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateAsset>,
) -> AppResult<(StatusCode, Json<Asset>)> {
    let title = check_title(&body.title)?;
    let alias = body.alias.as_deref().map(check_alias).transpose()?;
    let tags = check_tags(body.tags.unwrap_or_default())?;
    let root = check_owner(
        &state,
        &caller,
        &body.owner_type,
        &body.owner_id,
        Access::Write,
    )
    .await?;
    let collection_id = match (body.owner_type.as_str(), body.collection_id) {
        (OWNER_USER, Some(_)) => {
            return Err(AppError::invalid(
                "collection_id applies to project assets only; omit it for personal assets",
            ))
        }
        (OWNER_USER, None) => None,
        (_, Some(cid)) => {
            match state.meta.get_collection(&cid).await? {
                Some(c) if c.project_id == body.owner_id => {}
                Some(_) => {
                    return Err(AppError::invalid(format!(
                        "collection {cid} does not belong to project {}",
                        body.owner_id
                    )))
                }
                None => return Err(AppError::not_found(format!("collection {cid} not found"))),
            }
            Some(cid)
        }
        (_, None) => root,
    };
    let asset = state
        .meta
        .create_asset(NewAsset {
            title,
            description: body.description,
            alias,
            tags,
            metadata: body.metadata.unwrap_or_default(),
            owner_type: body.owner_type,
            owner_id: body.owner_id,
            collection_id,
            created_by: caller.user_id,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(asset)))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AssetQuery>,
) -> AppResult<Json<Page<Asset>>> {
    let (owner_type, owner_id) = match (q.owner_type, q.owner_id) {
        (None, None) => (OWNER_USER.to_string(), caller.user_id.clone()),
        (Some(t), None) if t == OWNER_USER => (t, caller.user_id.clone()),
        (Some(t), Some(id)) => (t, id),
        _ => {
            return Err(AppError::invalid(
                "give both owner_type and owner_id (or neither, for your personal assets)",
            ))
        }
    };
    check_owner(&state, &caller, &owner_type, &owner_id, Access::Read).await?;
    let w = window_of(q.limit, q.offset);
    Ok(Json(page(
        state.meta.list_assets(&owner_type, &owner_id, w).await?,
        w,
    )))
}

pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(asset_id): ApiPath<String>,
) -> AppResult<Json<Asset>> {
    Ok(Json(
        load_asset(&state, &caller, &asset_id, Access::Read).await?,
    ))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(asset_id): ApiPath<String>,
    ApiJson(mut patch): ApiJson<UpdateAsset>,
) -> AppResult<Json<Asset>> {
    load_asset(&state, &caller, &asset_id, Access::Write).await?;
    patch.title = patch.title.as_deref().map(check_title).transpose()?;
    patch.alias = patch.alias.as_deref().map(check_alias).transpose()?;
    patch.tags = patch.tags.map(check_tags).transpose()?;
    Ok(Json(state.meta.update_asset(&asset_id, patch).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(asset_id): ApiPath<String>,
) -> AppResult<StatusCode> {
    load_asset(&state, &caller, &asset_id, Access::Write).await?;
    // Metadata first: once the rows are gone nothing points at the blobs, so a
    // crash in between only leaves unreferenced files, never dangling versions.
    for content_id in state.meta.delete_asset(&asset_id).await? {
        if let Err(e) = state.blobs.delete_content(&content_id).await {
            tracing::warn!(%content_id, error = %e, "could not delete blobs of a deleted asset");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn create_relationship(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(asset_id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateRelationship>,
) -> AppResult<(StatusCode, Json<Relationship>)> {
    let rel_type = body.rel_type.trim().to_string();
    if rel_type.is_empty() || rel_type.chars().count() > MAX_RELATIONSHIP_TYPE_LEN {
        return Err(AppError::invalid(format!(
            "relationship type must be 1 to {MAX_RELATIONSHIP_TYPE_LEN} characters (e.g. \"derived_from\")"
        )));
    }
    if let Some(mode) = &body.analysis_mode {
        if !ANALYSIS_MODES.contains(&mode.as_str()) {
            return Err(AppError::invalid(format!(
                "analysis_mode {mode:?} is not one of {}",
                ANALYSIS_MODES.join(", ")
            )));
        }
    }
    if body.to_asset_id == asset_id {
        return Err(AppError::invalid(
            "an asset cannot have a relationship with itself",
        ));
    }
    load_asset(&state, &caller, &asset_id, Access::Write).await?;
    load_asset(&state, &caller, &body.to_asset_id, Access::Read).await?;
    let rel = state
        .meta
        .create_relationship(NewRelationship {
            from_asset_id: asset_id,
            to_asset_id: body.to_asset_id,
            rel_type,
            analysis_mode: body.analysis_mode,
            qualifiers: body.qualifiers.unwrap_or_default(),
            created_by: caller.user_id,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(rel)))
}

pub async fn list_relationships(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(asset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<Relationship>>> {
    load_asset(&state, &caller, &asset_id, Access::Read).await?;
    let w = window(&q);
    Ok(Json(page(
        state.meta.list_relationships(&asset_id, w).await?,
        w,
    )))
}
