//! `GET /api/v1/search`: the query language of `docs/search.md` over the
//! assets the caller can read (the store filters by permission inside the
//! query, so totals and pages are right).

use axum::Json;
use dataerai_proto::api::{FacetCount, SearchFacets, SearchQuery, SearchResults};
use dataerai_store::meta::Window;
use dataerai_store::search::{self, SearchRequest, Sort};

use super::Ctx;
use crate::error::{ApiQuery, AppError, AppResult};

/// Results per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 1000;

/// Search the assets you can read (query language: docs/search.md)
#[utoipa::path(get, path = "/api/v1/search", params(SearchQuery),
    responses((status = 200, description = "A page of matches, the total and facet counts", body = SearchResults)))]
pub async fn search_assets(
    Ctx { state, caller }: Ctx,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> AppResult<Json<SearchResults>> {
    let text = q.q.unwrap_or_default();
    let query = search::parse(&text).map_err(|e| AppError::invalid(e.to_string()))?;
    let sort = Sort::parse(q.sort.as_deref(), &query)
        .map_err(|e| AppError::invalid(format!("sort: {}", e.message)))?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(AppError::invalid(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let offset = match q.cursor.as_deref() {
        None | Some("") => 0,
        Some(c) => decode_cursor(c)?,
    };
    let request = SearchRequest {
        query,
        sort,
        window: Window { limit, offset },
        facets: q.facets.unwrap_or(true),
        count_cap: search::COUNT_CAP,
    };
    let page = state.meta.search(&caller.user_id, &request).await?;
    let next = offset + page.items.len() as u64;
    let counts = |values: Vec<(String, u64)>| {
        values
            .into_iter()
            .map(|(value, count)| FacetCount { value, count })
            .collect()
    };
    Ok(Json(SearchResults {
        next_cursor: page.more.then(|| encode_cursor(next)),
        items: page.items,
        total: page.total,
        total_is_lower_bound: page.total_is_lower_bound,
        facets: page.facets.map(|f| SearchFacets {
            tags: counts(f.tags),
            record_types: counts(f.record_types),
            projects: counts(f.projects),
        }),
    }))
}

/// A cursor names where the next page starts. It is opaque to callers; today
/// it is `o` and an offset.
fn encode_cursor(offset: u64) -> String {
    format!("o{offset}")
}

fn decode_cursor(cursor: &str) -> AppResult<u64> {
    cursor
        .strip_prefix('o')
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| {
            AppError::invalid(format!(
                "cursor {cursor:?} is not one this server gave out; pass next_cursor unchanged"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode_cursor(&encode_cursor(150)).unwrap(), 150);
        for bad in ["150", "ox", "o-1", "o99999999999999999999"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
