//! Search over assets: the query language ([`query`]), what the index holds
//! of an asset ([`index`]), and the query compiled to SQL ([`sql`]) that the
//! metadata store runs, with the caller's permissions inside, so totals, pages
//! and facets count the same rows (`docs/search.md`).

pub mod index;
pub mod query;
pub(crate) mod sql;

pub use query::{parse, Query, QueryError, Sort};

use crate::meta::Window;

/// One search: what, in which order, which page, and whether to count facets.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: Query,
    pub sort: Sort,
    pub window: Window,
    pub facets: bool,
}

/// Counts of the most frequent values among all matches (not just the page),
/// most frequent first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub tags: Vec<(String, u64)>,
    pub record_types: Vec<(String, u64)>,
    /// Project ids.
    pub projects: Vec<(String, u64)>,
}
