//! Search over assets: the query language ([`query`]), what the index holds
//! of an asset ([`index`]), and the query compiled to SQL ([`sql`]) that the
//! metadata store runs, with the caller's permissions inside, so totals, pages
//! and facets count the same rows (`docs/search.md`).

pub mod index;
pub mod query;
pub(crate) mod sql;

pub use query::{parse, Query, QueryError, Sort};

use dataerai_proto::api::Asset;

use crate::meta::Window;

/// How many matches a search counts (and facets) at most: past it, the
/// total is this number and only a lower bound, so a broad query costs the
/// same at any catalogue size.
pub const COUNT_CAP: u64 = 10_000;

/// One search: what, in which order, which page, whether to count facets,
/// and how many matches to count at most (normally [`COUNT_CAP`]).
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: Query,
    pub sort: Sort,
    pub window: Window,
    pub facets: bool,
    pub count_cap: u64,
}

/// What a search answers.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// The page of matches.
    pub items: Vec<Asset>,
    /// The number of matches, exact up to the request's `count_cap`; past
    /// it `count_cap` itself, with `total_is_lower_bound` set.
    pub total: u64,
    pub total_is_lower_bound: bool,
    /// Whether matches follow this page.
    pub more: bool,
    /// When asked: the facet counts over the first 1,000 matches found
    /// (all of them when there are no more).
    pub facets: Option<Facets>,
}

/// Counts of the most frequent values among the counted matches (not just the page),
/// most frequent first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub tags: Vec<(String, u64)>,
    pub record_types: Vec<(String, u64)>,
    /// Project ids.
    pub projects: Vec<(String, u64)>,
}
