//! Assets (create, list, read, patch, delete) and their relationships.

use axum::http::StatusCode;
use axum::Json;
use dataerai_proto::api::{
    check_relationship_kind, Asset, AssetQuery, CreateAsset, CreateRelationship, OwnerType, Page,
    Relationship, RelationshipsQuery, UpdateAsset, MAX_METADATA_BYTES,
};
use dataerai_store::meta::{NewAsset, NewRelationship, RelationshipSides};
use serde_json::{Map, Value};

use super::{check_text, refuse_control_characters, AssetIdPath};
use super::{
    found, load_asset, not_found_error, owner_access, page, paged, project_access, require,
    resolve_owner_id, window_of, Access, Ctx, ReadableOwners,
};
use crate::auth::Caller;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, AppResult};
use crate::state::AppState;

const MAX_TITLE_LEN: usize = 1000;
const MAX_ALIAS_LEN: usize = 255;
/// Longest record type (`raw_data`, `analysis`, …).
const MAX_RECORD_TYPE_LEN: usize = 64;
const MAX_TAGS: usize = 100;
const MAX_TAG_LEN: usize = 100;
const MAX_DESCRIPTION_LEN: usize = 100_000;
/// Deepest nesting of metadata / qualifier objects and arrays.
const MAX_JSON_DEPTH: usize = 32;
/// Largest metadata / qualifier object, serialised.
const MAX_JSON_BYTES: usize = MAX_METADATA_BYTES;

fn json_depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(json_depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Metadata (and relationship qualifiers) must stay small and shallow: they
/// are stored and returned whole with every asset.
fn check_json_object(what: &str, m: &Map<String, Value>) -> AppResult<()> {
    // The object itself is level 1.
    let depth = 1 + m.values().map(json_depth).max().unwrap_or(0);
    if depth > MAX_JSON_DEPTH {
        return Err(AppError::invalid(format!(
            "{what} is nested {depth} levels deep; at most {MAX_JSON_DEPTH} are allowed"
        )));
    }
    let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_JSON_BYTES {
        return Err(AppError::invalid(format!(
            "{what} is {size} bytes as JSON; at most {MAX_JSON_BYTES} are allowed"
        )));
    }
    Ok(())
}

fn check_description(d: Option<String>) -> AppResult<Option<String>> {
    if d.as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
    {
        return Err(AppError::invalid(format!(
            "description is longer than {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    Ok(d)
}

fn check_title(title: &str) -> AppResult<String> {
    let t = title.trim();
    if t.is_empty() {
        return Err(AppError::invalid("title is required and must not be empty"));
    }
    refuse_control_characters("title", t)?;
    if t.chars().count() > MAX_TITLE_LEN {
        return Err(AppError::invalid(format!(
            "title is longer than {MAX_TITLE_LEN} characters"
        )));
    }
    Ok(t.to_string())
}

fn check_alias(alias: &str) -> AppResult<String> {
    check_text("alias", alias, MAX_ALIAS_LEN)
}

/// A record type: free text (`raw_data`, `analysis`, `figure`, …), 1 to
/// [`MAX_RECORD_TYPE_LEN`] characters.
fn check_record_type(record_type: &str) -> AppResult<String> {
    check_text("record_type", record_type, MAX_RECORD_TYPE_LEN)
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
    if tags.iter().any(|t| t.chars().count() > MAX_TAG_LEN) {
        return Err(AppError::invalid(format!(
            "tags must be at most {MAX_TAG_LEN} characters each"
        )));
    }
    Ok(tags)
}

/// Check the caller may create/list assets of this owner. Answers the
/// project's root collection for project owners.
async fn check_owner(
    state: &AppState,
    caller: &Caller,
    owner_type: OwnerType,
    owner_id: &str,
    need: Access,
) -> AppResult<Option<String>> {
    match owner_type {
        OwnerType::User => {
            if owner_id != caller.user_id {
                return Err(AppError::denied(format!(
                    "personal assets of user {owner_id} belong to that user only; use owner_id = your user id ({})",
                    caller.user_id
                )));
            }
            Ok(None)
        }
        OwnerType::Project => {
            let access = project_access(state, caller, owner_id).await?;
            require(access, need, "project", owner_id)?;
            let project = state
                .meta
                .project_for_member(owner_id, &caller.user_id)
                .await?;
            Ok(project.map(|p| p.root_collection_id))
        }
    }
}

/// `allocation_id` may name any allocation the caller may write to, whoever
/// owns the asset: their own personal one, or that of a project where they
/// may write (a personal upload charged to a project, say). An unknown id
/// and one the caller cannot see are the same 404 (as `routes::require`
/// answers for anything unreadable); one of a project the caller may only
/// read is 403.
async fn check_allocation(state: &AppState, caller: &Caller, allocation_id: &str) -> AppResult<()> {
    let owner = state.meta.allocation_owner(allocation_id).await?;
    let (alloc_type, alloc_owner) = found(owner, "allocation", allocation_id)?;
    let access = owner_access(state, caller, alloc_type, &alloc_owner).await?;
    require(access, Access::Write, "allocation", allocation_id)
}

/// A new version of `asset` is charged to the asset's allocation: when that
/// is not its owner's, the caller must still be allowed to write to it
/// (403 otherwise — the asset names the allocation to whoever reads it).
pub(crate) async fn check_new_version_allocation(
    state: &AppState,
    caller: &Caller,
    asset: &Asset,
) -> AppResult<()> {
    let Some(allocation_id) = &asset.allocation_id else {
        return Ok(());
    };
    let access = match state.meta.allocation_owner(allocation_id).await? {
        Some((t, owner)) => owner_access(state, caller, t, &owner).await?,
        None => Access::None,
    };
    if access != Access::Write {
        return Err(AppError::denied(format!(
            "asset {} is charged to allocation {allocation_id}, which you may not write to; ask its owner for write access, or upload a new asset",
            asset.asset_id
        )));
    }
    Ok(())
}

/// Create an asset
#[utoipa::path(post, path = "/api/v1/assets", request_body = CreateAsset,
    responses((status = 201, description = "The new asset", body = Asset)))]
pub async fn create_asset(
    Ctx { state, caller }: Ctx,
    ApiJson(body): ApiJson<CreateAsset>,
) -> AppResult<(StatusCode, Json<Asset>)> {
    let asset = new_asset(&state, &caller, body).await?;
    let asset = state.meta.create_asset(asset).await?;
    Ok((StatusCode::CREATED, Json(asset)))
}

/// Check a `CreateAsset` (fields, the caller's write access to the owner, the
/// collection) and turn it into what the store creates.
pub async fn new_asset(
    state: &AppState,
    caller: &Caller,
    mut body: CreateAsset,
) -> AppResult<NewAsset> {
    body.owner_id = resolve_owner_id(caller, body.owner_type, std::mem::take(&mut body.owner_id))?;
    let title = check_title(&body.title)?;
    let alias = body.alias.as_deref().map(check_alias).transpose()?;
    let record_type = body
        .record_type
        .as_deref()
        .map(check_record_type)
        .transpose()?;
    let tags = check_tags(body.tags.unwrap_or_default())?;
    let description = check_description(body.description)?;
    let metadata = body.metadata.unwrap_or_default();
    check_json_object("metadata", &metadata)?;
    let root = check_owner(
        state,
        caller,
        body.owner_type,
        &body.owner_id,
        Access::Write,
    )
    .await?;
    if let Some(allocation_id) = &body.allocation_id {
        check_allocation(state, caller, allocation_id).await?;
    }
    let collection_id = match (body.owner_type, body.collection_id) {
        (OwnerType::User, Some(_)) => {
            return Err(AppError::invalid(
                "collection_id applies to project assets only; omit it for personal assets",
            ))
        }
        (OwnerType::User, None) => None,
        (_, Some(cid)) => {
            let c = found(state.meta.get_collection(&cid).await?, "collection", &cid)?;
            if c.project_id != body.owner_id {
                // Someone else's collection is as unknown as a missing one.
                if project_access(state, caller, &c.project_id).await? == Access::None {
                    return Err(not_found_error("collection", &cid));
                }
                return Err(AppError::invalid(format!(
                    "collection {cid} does not belong to project {}",
                    body.owner_id
                )));
            }
            Some(cid)
        }
        (_, None) => root,
    };
    Ok(NewAsset {
        title,
        description,
        alias,
        tags,
        metadata,
        owner_type: body.owner_type,
        owner_id: body.owner_id,
        collection_id,
        created_by: caller.user_id.clone(),
        record_type,
        allocation_id: body.allocation_id,
    })
}

/// Assets of an owner (default: the caller's personal assets); query owner_type, owner_id
#[utoipa::path(get, path = "/api/v1/assets", params(AssetQuery),
    responses((status = 200, description = "A page of assets", body = Page<Asset>)))]
pub async fn list_assets(
    Ctx { state, caller }: Ctx,
    ApiQuery(q): ApiQuery<AssetQuery>,
) -> AppResult<Json<Page<Asset>>> {
    let (owner_type, owner_id) = match (q.owner_type, q.owner_id) {
        (None, None) | (Some(OwnerType::User), None) => (OwnerType::User, caller.user_id.clone()),
        (Some(t), Some(id)) => (t, resolve_owner_id(&caller, t, id)?),
        _ => {
            return Err(AppError::invalid(
                "give both owner_type and owner_id (or neither, for your personal assets)",
            ))
        }
    };
    check_owner(&state, &caller, owner_type, &owner_id, Access::Read).await?;
    paged(window_of(q.limit, q.offset), |w| {
        state.meta.list_assets(owner_type, &owner_id, w)
    })
    .await
}

/// An asset
#[utoipa::path(get, path = "/api/v1/assets/{asset_id}", params(AssetIdPath),
    responses((status = 200, description = "The asset", body = Asset)))]
pub async fn get_asset(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
) -> AppResult<Json<Asset>> {
    Ok(Json(
        load_asset(&state, &caller, &asset_id, Access::Read).await?,
    ))
}

/// Update an asset; metadata merged key by key (null deletes)
#[utoipa::path(patch, path = "/api/v1/assets/{asset_id}", params(AssetIdPath),
    request_body = UpdateAsset,
    responses((status = 200, description = "The updated asset", body = Asset)))]
pub async fn update_asset(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
    ApiJson(mut patch): ApiJson<UpdateAsset>,
) -> AppResult<Json<Asset>> {
    load_asset(&state, &caller, &asset_id, Access::Write).await?;
    patch.title = patch.title.as_deref().map(check_title).transpose()?;
    patch.alias = patch.alias.as_deref().map(check_alias).transpose()?;
    patch.record_type = patch
        .record_type
        .as_deref()
        .map(check_record_type)
        .transpose()?;
    patch.tags = patch.tags.map(check_tags).transpose()?;
    patch.description = check_description(patch.description)?;
    if let Some(m) = &patch.metadata {
        check_json_object("metadata", m)?;
    }
    Ok(Json(state.meta.update_asset(&asset_id, patch).await?))
}

/// Delete an asset with its versions, relationships and blobs
#[utoipa::path(delete, path = "/api/v1/assets/{asset_id}", params(AssetIdPath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_asset(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
) -> AppResult<StatusCode> {
    let asset = load_asset(&state, &caller, &asset_id, Access::Write).await?;
    // Metadata first: once the rows are gone nothing points at the blobs, so a
    // crash in between only leaves unreferenced files, never dangling versions.
    let freed = state.meta.delete_asset(&asset_id).await?;
    super::delete_freed_blobs(&state, freed, "a deleted asset").await;
    crate::audit::by_caller(
        &state,
        &caller,
        "asset.deleted",
        ("asset", &asset_id),
        serde_json::json!({"title": asset.title, "owner_type": asset.owner_type, "owner_id": asset.owner_id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a relationship (write on source, read on target)
#[utoipa::path(post, path = "/api/v1/assets/{asset_id}/relationships", params(AssetIdPath),
    request_body = CreateRelationship,
    responses((status = 201, description = "The new relationship", body = Relationship)))]
pub async fn create_relationship(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
    ApiJson(body): ApiJson<CreateRelationship>,
) -> AppResult<(StatusCode, Json<Relationship>)> {
    let rel_type = body.rel_type.trim().to_string();
    check_relationship_kind(&rel_type, body.analysis_mode.as_deref())?;
    if body.to_asset_id == asset_id {
        return Err(AppError::invalid(
            "an asset cannot have a relationship with itself",
        ));
    }
    if let Some(q) = &body.qualifiers {
        check_json_object("qualifiers", q)?;
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

/// Relationships from (out), at (in) or from and at (both) an asset
#[utoipa::path(get, path = "/api/v1/assets/{asset_id}/relationships",
    params(AssetIdPath, RelationshipsQuery),
    responses((status = 200, description = "A page of relationships", body = Page<Relationship>)))]
pub async fn list_relationships(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RelationshipsQuery>,
) -> AppResult<Json<Page<Relationship>>> {
    let sides = match q.direction.as_deref() {
        None | Some("out") => RelationshipSides::Out,
        Some("in") => RelationshipSides::In,
        Some("both") => RelationshipSides::Both,
        Some(other) => {
            return Err(AppError::invalid(format!(
                "direction {other:?} is not one of out, in, both"
            )))
        }
    };
    load_asset(&state, &caller, &asset_id, Access::Read).await?;
    let w = window_of(q.limit, q.offset);
    let (mut items, total) = state.meta.list_relationships(&asset_id, sides, w).await?;
    // The other asset, if the caller may not read it is shown by its id only (the link was
    // made by someone who could, or the caller lost access since).
    let mut readable = ReadableOwners::default();
    for rel in &mut items {
        let target = &rel.related_asset;
        let (Some(owner_type), Some(owner_id)) = (target.owner_type, target.owner_id.clone())
        else {
            continue;
        };
        if !readable
            .may_read(&state, &caller, owner_type, &owner_id)
            .await?
        {
            rel.related_asset = rel.related_asset.clone().redacted();
        }
    }
    Ok(Json(page((items, total), w)))
}
