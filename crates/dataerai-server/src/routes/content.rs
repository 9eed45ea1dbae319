//! Content versions and file downloads (streamed, with single-range support).

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dataerai_proto::api::{ContentVersion, Page, PageQuery};
use dataerai_store::blob::recorded_digest;
use dataerai_store::meta::{BlobLocation, ContentRecord, MetadataStore};
use dataerai_store::{BlobStore, ChunkKey};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;

use crate::openapi::RawBytes;

use super::{load_asset, page, window, Access, Ctx};
use super::{AssetIdPath, ContentIdOrLatestPath, ContentIdPath, FileIndexPath};
use crate::auth::Caller;
use crate::error::{ApiPath, ApiQuery, AppError, AppResult};
use crate::metrics::Metrics;
use crate::state::AppState;

/// Header with the whole file's `blake3:<hex>` on downloads.
pub const CHECKSUM_HEADER: &str = "x-dataerai-checksum";

/// Complete content versions, newest first
#[utoipa::path(get, path = "/api/v1/assets/{asset_id}/contents", params(AssetIdPath, PageQuery),
    responses((status = 200, description = "A page of content versions", body = Page<ContentVersion>)))]
pub async fn list_contents(
    Ctx { state, caller }: Ctx,
    ApiPath(asset_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Page<ContentVersion>>> {
    load_asset(&state, &caller, &asset_id, Access::Read).await?;
    let w = window(&q);
    Ok(Json(page(state.meta.list_contents(&asset_id, w).await?, w)))
}

/// A complete content version of an asset the caller may read.
async fn readable_content(
    state: &AppState,
    caller: &Caller,
    asset_id: &str,
    content_id: &str,
) -> AppResult<ContentRecord> {
    load_asset(state, caller, asset_id, Access::Read).await?;
    state
        .meta
        .get_content(asset_id, content_id)
        .await?
        .ok_or_else(|| {
            AppError::not_found(format!(
                "no complete content version {content_id} for asset {asset_id}"
            ))
        })
}

/// A complete content version (`latest` allowed)
#[utoipa::path(get, path = "/api/v1/assets/{asset_id}/contents/{content_id}",
    params(AssetIdPath, ContentIdOrLatestPath),
    responses((status = 200, description = "The content version", body = ContentVersion)))]
pub async fn get_content(
    Ctx { state, caller }: Ctx,
    ApiPath((asset_id, content_id)): ApiPath<(String, String)>,
) -> AppResult<Json<ContentVersion>> {
    let content = readable_content(&state, &caller, &asset_id, &content_id).await?;
    Ok(Json(content.version))
}

/// Delete one content version (not the asset's only one: delete the asset instead)
#[utoipa::path(delete, path = "/api/v1/assets/{asset_id}/contents/{content_id}",
    params(AssetIdPath, ContentIdPath), responses((status = 204, description = "Deleted")))]
pub async fn delete_content(
    Ctx { state, caller }: Ctx,
    ApiPath((asset_id, content_id)): ApiPath<(String, String)>,
) -> AppResult<StatusCode> {
    load_asset(&state, &caller, &asset_id, Access::Write).await?;
    // Metadata first, as for a whole asset: a crash in between leaves only
    // unreferenced blobs (the garbage collector's), never a dangling version.
    let freed = state.meta.delete_content(&asset_id, &content_id).await?;
    super::delete_freed_blobs(&state, freed, "a deleted version").await;
    crate::audit::record(
        &state,
        Some(&caller.user_id),
        "content.deleted",
        Some(("asset", &asset_id)),
        serde_json::json!({ "content_id": content_id }),
        &caller.addr,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Parse a `Range` header against a file of `size` bytes: `Ok(None)` = whole
/// file, `Ok(Some((first, last)))` inclusive, `Err(message)` = unsatisfiable or malformed.
pub(crate) fn parse_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, String> {
    let spec = value
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| format!("unsupported Range {value:?}; use bytes=FIRST-LAST"))?;
    if spec.contains(',') {
        return Err("only a single byte range is supported".into());
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| format!("malformed Range {value:?}"))?;
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| format!("malformed Range {value:?}"))
    };
    let (first, last) = if a.trim().is_empty() {
        // Suffix: the last N bytes.
        let n = num(b)?;
        if n == 0 || size == 0 {
            return Err(format!(
                "range {value:?} selects no bytes of a {size}-byte file"
            ));
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let first = num(a)?;
        let last = if b.trim().is_empty() {
            size.saturating_sub(1)
        } else {
            num(b)?.min(size.saturating_sub(1))
        };
        if first >= size || (!b.trim().is_empty() && num(b)? < first) {
            return Err(format!("range {value:?} is outside the {size}-byte file"));
        }
        (first, last)
    };
    Ok(Some((first, last)))
}

/// Stream bytes `first..=last` of a file stored at `at` (its own chunks or,
/// when deduplicated, the ones it points at), counting what is sent.
fn file_stream(
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetadataStore>,
    metrics: Arc<Metrics>,
    at: &BlobLocation,
    first: u64,
    last: u64,
) -> Body {
    let BlobLocation {
        content_id,
        file_index,
        chunk_size,
    } = at.clone();
    let pieces: Vec<(ChunkKey, u64, u64)> = (first / chunk_size..=last / chunk_size)
        .map(|chunk_index| {
            let start = chunk_index * chunk_size;
            let from = first.max(start);
            let to = last.min(start + chunk_size - 1);
            (
                ChunkKey {
                    content_id: content_id.clone(),
                    file_index,
                    chunk_index,
                },
                from - start,
                to - from + 1,
            )
        })
        .collect();
    let stream = futures::stream::iter(pieces)
        .then(move |(key, offset, len)| {
            let (blobs, meta) = (blobs.clone(), meta.clone());
            async move {
                let digest = recorded_digest(&*blobs, &*meta, &key)
                    .await
                    .map_err(std::io::Error::other)?;
                blobs
                    .read_chunk(&key, digest.as_deref(), offset, len)
                    .await
                    .map_err(std::io::Error::other)
            }
        })
        .try_flatten()
        .inspect_ok(move |piece| metrics.downloaded(piece.len() as u64));
    Body::from_stream(stream)
}

/// Download a file; single `Range` supported (206); `x-dataerai-checksum` header
#[utoipa::path(get, path = "/api/v1/assets/{asset_id}/contents/{content_id}/files/{file_index}",
    params(AssetIdPath, ContentIdOrLatestPath, FileIndexPath, ("Range" = Option<String>, Header, description = "One byte range, `bytes=start-end`")),
    responses((status = 200, description = "The whole file", content_type = "application/octet-stream", body = RawBytes), (status = 206, description = "Partial content", content_type = "application/octet-stream", body = RawBytes)))]
pub async fn download_file(
    Ctx { state, caller }: Ctx,
    ApiPath((asset_id, content_id, file_index)): ApiPath<(String, String, u32)>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let content = readable_content(&state, &caller, &asset_id, &content_id).await?;
    let file = content
        .version
        .files
        .get(file_index as usize)
        .ok_or_else(|| {
            AppError::not_found(format!(
                "file {file_index} not found; this content version has {} file(s)",
                content.version.files.len()
            ))
        })?;
    let size = file.size;
    let at = content.locations.get(file_index as usize).ok_or_else(|| {
        AppError::new(
            dataerai_proto::ErrorCode::Internal,
            format!("file {file_index} has no stored location"),
        )
    })?;
    let range = match headers.get(header::RANGE).map(|v| v.to_str().unwrap_or("")) {
        None => None,
        Some(v) => parse_range(v, size).map_err(|msg| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            AppError::invalid(msg).with_http(StatusCode::RANGE_NOT_SATISFIABLE, headers)
        })?,
    };

    let mut response = match range {
        None if size == 0 => Body::empty().into_response(),
        None => file_stream(
            state.blobs.clone(),
            state.meta.clone(),
            state.metrics.clone(),
            at,
            0,
            size - 1,
        )
        .into_response(),
        Some((first, last)) => {
            let body = file_stream(
                state.blobs.clone(),
                state.meta.clone(),
                state.metrics.clone(),
                at,
                first,
                last,
            );
            let mut r = (StatusCode::PARTIAL_CONTENT, body).into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {first}-{last}/{size}")).expect("ascii"),
            );
            r
        }
    };
    let len = range.map_or(size, |(a, b)| b - a + 1);
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(sum) = file
        .checksum
        .as_deref()
        .and_then(|s| HeaderValue::from_str(s).ok())
    {
        h.insert(CHECKSUM_HEADER, sum);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=90-500", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-500", 100), Ok(Some((0, 99))));
        assert!(parse_range("bytes=100-", 100).is_err());
        assert!(parse_range("bytes=5-2", 100).is_err());
        assert!(parse_range("bytes=-0", 100).is_err());
        assert!(parse_range("bytes=0-0", 0).is_err());
        assert!(parse_range("bytes=0-1,3-4", 100).is_err());
        assert!(parse_range("items=0-1", 100).is_err());
    }
}
