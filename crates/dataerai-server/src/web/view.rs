//! What the data pages (home, project, asset, search) share: the signed-in
//! caller of a page, the error pages, query strings, sizes and dates, the
//! pager, usage bars and the asset table.
//!
//! A page decides access exactly as the REST routes do: it turns the
//! browser session into a [`Caller`] and calls the same checks
//! (`routes::load_asset`, `routes::project_access`, the store's permission
//! filter of search). Whoever may not read a thing gets [`error_page`]'s one
//! 404, the page an unknown id gets.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use dataerai_proto::api::{Allocation, Asset};
use dataerai_proto::ErrorCode;
use dataerai_store::meta::auth::SessionRecord;
use maud::{html, Markup};

use super::layout::{Flash, Page};
use super::session::{require_session, url_encode};
use super::{try_again_shortly, unavailable};
use crate::auth::{client_addr, Caller};
use crate::error::AppError;
use crate::state::AppState;

/// The signed-in person of a page: their session (layout, CSRF) and the
/// [`Caller`] the REST access checks take, with the page's query string.
///
/// As an extractor, a signed-out visitor gets the redirect to sign in and
/// come back to the page with its query string (the collection, sort and
/// page shown) before the handler runs.
pub struct Viewer {
    pub(super) session: SessionRecord,
    pub(super) caller: Caller,
    pub(super) params: Params,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let addr = client_addr(&parts.extensions);
        viewer(
            state,
            &parts.headers,
            addr,
            parts.uri.path(),
            parts.uri.query(),
        )
        .await
    }
}

/// The viewer of the page at `path`, or the redirect to sign in and come
/// back to it with `query`.
pub(super) async fn viewer(
    state: &AppState,
    headers: &HeaderMap,
    addr: String,
    path: &str,
    query: Option<&str>,
) -> Result<Viewer, Response> {
    let here = match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    };
    let session = require_session(state, headers, &here).await?;
    let caller = Caller::of_session(&session, addr);
    let params = Params::parse(query);
    Ok(Viewer {
        session,
        caller,
        params,
    })
}

/// The page for an error of the shared access checks or the store: the one
/// 404 (unknown, or not readable by this viewer), 400 with the message,
/// 503 when the store is unreachable, 500 otherwise.
pub(super) fn error_page(e: AppError, session: &SessionRecord) -> Response {
    match e.error.code {
        ErrorCode::NotFound => not_found(session),
        ErrorCode::InvalidInput => Page::new("Request refused")
            .status(StatusCode::BAD_REQUEST)
            .signed_in(session)
            .flash(Flash::error(e.error.message))
            .render(html! { p { a href="/" { "Back to your projects" } } }),
        ErrorCode::ServerUnreachable => unavailable(),
        _ => {
            tracing::error!(error = %e.error.message, "a web page failed");
            try_again_shortly("Something went wrong on the server. Please retry shortly.")
        }
    }
}

/// The one "not found" page: the same for an unknown id and for one the
/// viewer may not see.
pub(super) fn not_found(session: &SessionRecord) -> Response {
    Page::new("Not found")
        .status(StatusCode::NOT_FOUND)
        .signed_in(session)
        .flash(Flash::error(
            "There is nothing here, or it belongs to a project you are not a member of.",
        ))
        .render(html! { p { a href="/" { "Back to your projects" } } })
}

/// The decoded `key=value` pairs of a query string.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`, if given and not blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// `?page=` (1-based; anything unreadable is page 1).
    pub fn page(&self) -> u64 {
        self.get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .filter(|p| *p >= 1 && *p <= 1_000_000)
            .unwrap_or(1)
    }
}

/// What a form just did, carried to the page it redirects to as `?done=`
/// (a fixed word, so a link cannot put words of its own on a page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    Saved,
    Deleted,
}

impl Done {
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Saved => "saved",
            Done::Deleted => "asset-deleted",
        }
    }
}

/// The flash of `?done=` (nothing for anything else).
pub(super) fn done_flash(params: &Params) -> Option<Flash> {
    match params.get("done") {
        Some("saved") => Some(Flash::success("Changes saved.")),
        Some("asset-deleted") => Some(Flash::success("The asset was deleted.")),
        _ => None,
    }
}

/// `path?k=v&…` with the values encoded, leaving out empty ones.
pub(super) fn link(path: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> = params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `20.0 GiB`.
pub(super) fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A count with thousands separators: `1,000,000`.
pub(super) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn date(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// Used of quota as a bar with the numbers (reserved bytes count as used).
pub(super) fn usage(a: &Allocation) -> Markup {
    let used = a.used_bytes.saturating_add(a.reserved_bytes);
    let percent = used
        .saturating_mul(100)
        .checked_div(a.quota_bytes)
        .map_or(100, |p| p.min(100));
    html! {
        div class="usage" {
            meter min="0" max="100" value=(percent) aria-label="Storage used" {}
            span class="small muted" {
                (size(a.used_bytes)) " of " (size(a.quota_bytes))
                @if a.reserved_bytes > 0 { " (+ " (size(a.reserved_bytes)) " uploading)" }
                @if a.max_files > 0 { " · " (count(a.file_count)) " of " (count(a.max_files)) " files" }
                @else { " · " (count(a.file_count)) " files" }
            }
        }
    }
}

/// Tags as chips; each links to the search for it.
pub(super) fn tags(tags: &[String]) -> Markup {
    html! {
        @if !tags.is_empty() {
            ul class="chips" {
                @for t in tags {
                    li { a class="chip" href=(link("/search", &[("q", &term("tag", t))])) { (t) } }
                }
            }
        }
    }
}

/// A search term `field:value`, the value quoted when it must be.
pub(super) fn term(field: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if plain {
        format!("{field}:{value}")
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("{field}:\"{escaped}\"")
    }
}

/// The record type as a badge (nothing when there is none).
pub(super) fn record_type(t: Option<&str>) -> Markup {
    html! { @if let Some(t) = t { span class="badge type" { (t) } } }
}

/// A table of assets: title (linked), type, tags, size, created.
pub(super) fn asset_table(assets: &[Asset]) -> Markup {
    html! {
        div class="table-wrap" {
            table class="assets" {
                thead { tr { th { "Title" } th { "Type" } th { "Tags" } th class="nowrap" { "Size" } th class="nowrap" { "Created" } } }
                tbody {
                    @for a in assets {
                        tr {
                            td class="name" { a href={ "/assets/" (a.asset_id) } { (a.title) } }
                            td data-label="Type" { (record_type(a.record_type.as_deref())) }
                            td data-label="Tags" { (tags(&a.tags)) }
                            td class="nowrap" data-label="Size" {
                                @match &a.latest_content {
                                    Some(c) => { (size(c.total_bytes)) }
                                    None => { span class="muted" { "no content" } }
                                }
                            }
                            td class="nowrap" data-label="Created" { (date(a.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// A card headed `heading` (the `id` labels it) showing `content`, or the
/// sentence `empty` when there is nothing to show.
pub(super) fn card_or_empty(
    id: &str,
    heading: &str,
    content: Option<Markup>,
    empty: &str,
) -> Markup {
    html! {
        section class="card" aria-labelledby=(id) {
            h2 id=(id) { (heading) }
            @match content {
                Some(content) => { (content) }
                None => { p class="empty" { (empty) } }
            }
        }
    }
}

/// "Previous / page n of m / Next" links; `href(page)` makes a page's link.
pub(super) fn pager(page: u64, per_page: u64, total: u64, href: impl Fn(u64) -> String) -> Markup {
    let pages = total.div_ceil(per_page).max(1);
    html! {
        @if pages > 1 {
            div class="pager" role="group" aria-label="Pages" {
                @if page > 1 { a rel="prev" href=(href(page - 1)) { "← Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a rel="next" href=(href(page + 1)) { "Next →" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(20 * 1024 * 1024 * 1024), "20.0 GiB");
    }

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_000_000), "1,000,000");
    }

    #[test]
    fn facet_terms_quote_what_the_query_language_would_split() {
        assert_eq!(term("tag", "raw"), "tag:raw");
        assert_eq!(term("tag", "bright field"), "tag:\"bright field\"");
        assert_eq!(term("tag", "a\"b"), "tag:\"a\\\"b\"");
    }

    #[test]
    fn links_encode_values_and_drop_empty_ones() {
        assert_eq!(
            link("/search", &[("q", "tag:a b"), ("sort", "")]),
            "/search?q=tag%3Aa+b"
        );
        assert_eq!(link("/search", &[]), "/search");
    }

    #[test]
    fn pages_are_one_based_and_bounded() {
        assert_eq!(Params::parse(Some("page=3")).page(), 3);
        assert_eq!(Params::parse(Some("page=0")).page(), 1);
        assert_eq!(Params::parse(Some("page=x")).page(), 1);
        assert_eq!(Params::parse(None).page(), 1);
    }
}
