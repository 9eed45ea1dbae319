//! Search over assets: the query language ([`query`]), compiled to SQL by the
//! metadata store so permissions, totals and pages are computed in one query.

pub mod query;

pub use query::{parse, Query, QueryError, Sort};
