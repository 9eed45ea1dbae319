//! `/search?q=&sort=&page=`: the search language of `docs/search.md` over
//! the assets the viewer can read (the store's search, as `GET
//! /api/v1/search` calls it), with facet chips that narrow the query, the
//! number of matches and pages. Everything lives in the URL, so a search
//! can be bookmarked and shared.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use dataerai_store::meta::Window;
use dataerai_store::search::{self, Facets, SearchRequest, Sort};
use maud::{html, Markup};

use super::layout::{Flash, Page};
use super::view::{asset_table, error_page, link, pager, term, Viewer};
use crate::openapi::{HtmlPage, SignInFirst};
use crate::state::AppState;

const PER_PAGE: u64 = 25;

/// Web: search the assets you can read (?q= in the search language, &sort=, &page=), with facet chips; needs a session
#[utoipa::path(get, operation_id = "web_search", path = "/search", security(()),
    responses(HtmlPage, SignInFirst, (status = 400, description = "The query cannot be read (the page says why)", content_type = "text/html", body = String)))]
pub async fn search_page(State(state): State<AppState>, v: Viewer) -> Response {
    let params = &v.params;
    let text = params.get("q").unwrap_or("").to_string();
    let sort_text = params.get("sort").unwrap_or("").to_string();
    let page = params.page();
    let refused = |message: String| {
        Page::new("Search")
            .status(StatusCode::BAD_REQUEST)
            .signed_in(&v.session)
            .current("/search")
            .query(&text)
            .flash(Flash::error(message))
            .render(form(&text, &sort_text))
    };
    let query = match search::parse(&text) {
        Ok(q) => q,
        Err(e) => return refused(e.to_string()),
    };
    let sort = match Sort::parse(Some(&sort_text), &query) {
        Ok(s) => s,
        Err(e) => return refused(format!("sort: {}", e.message)),
    };
    let request = SearchRequest {
        query,
        sort,
        window: Window {
            limit: PER_PAGE,
            offset: (page - 1) * PER_PAGE,
        },
        facets: true,
        count_cap: search::COUNT_CAP,
    };
    let (items, total, facets) = match state.meta.search(&v.caller.user_id, &request).await {
        Ok(r) => (r.items, r.total, r.facets),
        Err(e) => return error_page(e.into(), &v.session),
    };
    // Project facets are ids: show the names of the viewer's projects.
    let names = match state
        .meta
        .list_projects(
            &v.caller.user_id,
            Window {
                limit: 1000,
                offset: 0,
            },
        )
        .await
    {
        Ok((projects, _)) => projects,
        Err(e) => return error_page(e.into(), &v.session),
    };
    let project_name = |id: &str| {
        names
            .iter()
            .find(|p| p.project_id == id)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let page_link = |p: u64| {
        let p = p.to_string();
        link(
            "/search",
            &[("q", &text), ("sort", &sort_text), ("page", &p)],
        )
    };
    Page::new("Search")
        .signed_in(&v.session)
        .current("/search")
        .query(&text)
        .render(html! {
            (form(&text, &sort_text))
            p class="result-count" role="status" {
                strong { (total) } @if total == 1 { " asset matches" } @else { " assets match" }
                @if !text.is_empty() { " " code { (text) } }
            }
            @if let Some(f) = &facets {
                (facet_chips(f, &text, &sort_text, &project_name))
            }
            div class="card" {
                @if items.is_empty() {
                    p class="empty" { "Nothing found. Try fewer words, or remove a filter." }
                } @else {
                    (asset_table(&items))
                }
            }
            (pager(page, PER_PAGE, total, page_link))
        })
}

/// The search form of the page (the header has a short one too).
fn form(text: &str, sort: &str) -> Markup {
    const SORTS: &[(&str, &str)] = &[
        ("", "Best match / newest"),
        ("-created", "Newest"),
        ("created", "Oldest"),
        ("-updated", "Recently changed"),
        ("title", "Title A–Z"),
        ("-size", "Largest"),
        ("size", "Smallest"),
    ];
    html! {
        form class="card search-form" method="get" action="/search" role="search" {
            div class="search-row" {
                div class="field grow" {
                    label for="q" { "Query" }
                    input id="q" type="text" name="q" value=(text)
                        placeholder="e.g. sample tag:calibrated type:raw_data created>=2026-01-01";
                }
                div class="field" {
                    label for="search-sort" { "Sort" }
                    select id="search-sort" name="sort" {
                        @for (k, label) in SORTS {
                            option value=(k) selected[*k == sort] { (label) }
                        }
                    }
                }
                button type="submit" class="btn btn-primary" { "Search" }
            }
            p class="hint" {
                "Words match titles, descriptions and metadata; "
                code { "tag:" } ", " code { "type:" } ", " code { "project:" } ", "
                code { "md.key>=3" } ", " code { "-" } " (not) and " code { "OR" } " narrow it down."
            }
        }
    }
}

/// Chips for the most frequent tags, record types and projects; each link
/// adds its filter to the query.
fn facet_chips(
    f: &Facets,
    text: &str,
    sort: &str,
    project_name: &dyn Fn(&str) -> String,
) -> Markup {
    let add = |field: &str, value: &str| {
        let t = term(field, value);
        let q = if text.is_empty() {
            t
        } else {
            format!("{text} {t}")
        };
        link("/search", &[("q", &q), ("sort", sort)])
    };
    type Group<'a> = (&'a str, &'a str, &'a [(String, u64)]);
    let groups: [Group; 3] = [
        ("Tags", "tag", f.tags.as_slice()),
        ("Record types", "type", f.record_types.as_slice()),
        ("Projects", "project", f.projects.as_slice()),
    ];
    html! {
        @if groups.iter().any(|g| !g.2.is_empty()) {
            div class="facets" {
                @for (label, field, values) in groups {
                    @if !values.is_empty() {
                        div class="facet" {
                            span class="facet-label" { (label) }
                            ul class="chips" {
                                @for (value, count) in values {
                                    li {
                                        a class="chip" href=(add(field, value)) {
                                            @if field == "project" { (project_name(value)) } @else { (value) }
                                            " " span class="count" { (count) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
