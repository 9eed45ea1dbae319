//! `dataerai search QUERY`: the server's search (`docs/search.md`), one page
//! or (`--all`) every match.

use clap::Args;
use dataerai_proto::api::{Asset, SearchResults};
use serde_json::json;

use super::assets::print_asset_rows;
use super::output::print_json;
use super::Result;
use crate::service::{SearchParams, Service};

/// Results per request with `--all`.
const ALL_PAGE_SIZE: u64 = 500;

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The query, e.g. 'tag:calibrated md.voltage_kv>=200 "bright field"' (quote it for the
    /// shell; see docs/search.md). Empty: every asset you can read.
    #[arg(default_value = "")]
    pub query: String,
    /// Matches per page (1 to 1000).
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    /// Every match, fetched page by page (`--limit` is then the page size hint only).
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
    /// Continue after a previous page (its `next_cursor`).
    #[arg(long)]
    pub cursor: Option<String>,
    /// relevance, created, updated, title, size, type or md.<key>; a leading - sorts descending.
    #[arg(long, allow_hyphen_values = true)]
    pub sort: Option<String>,
}

pub async fn run(svc: &Service, as_json: bool, a: SearchArgs) -> Result<()> {
    let page = |cursor: Option<String>, limit: u64, facets: bool| SearchParams {
        query: a.query.clone(),
        sort: a.sort.clone(),
        limit: Some(limit),
        cursor,
        facets: Some(facets),
    };
    if !a.all {
        let results = svc.search(page(a.cursor.clone(), a.limit, as_json)).await?;
        if as_json {
            print_json(&results);
        } else {
            print_asset_rows(&results.items);
            summary(&results);
        }
        return Ok(());
    }
    let mut items: Vec<Asset> = Vec::new();
    let mut listed: u64 = 0;
    let mut cursor = None;
    loop {
        let results = svc
            .search(page(cursor, a.limit.max(ALL_PAGE_SIZE), false))
            .await?;
        listed += results.items.len() as u64;
        if !as_json {
            print_asset_rows(&results.items);
        } else {
            items.extend(results.items);
        }
        cursor = results.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    // Every match was listed: their number is the exact total.
    if as_json {
        print_json(&json!({ "items": items, "total": listed }));
    } else {
        crate::outln!("({listed} matches)");
    }
    Ok(())
}

/// The total as people read it: "10000+" when it is a lower bound.
fn total_text(results: &SearchResults) -> String {
    if results.total_is_lower_bound {
        format!("{}+", results.total)
    } else {
        results.total.to_string()
    }
}

fn summary(results: &SearchResults) {
    match &results.next_cursor {
        Some(next) => crate::outln!(
            "({} of {} matches; next page: --cursor {next}, or --all)",
            results.items.len(),
            total_text(results)
        ),
        None => crate::outln!(
            "({} of {} matches)",
            results.items.len(),
            total_text(results)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_total_reads_as_a_lower_bound() {
        let mut results = SearchResults {
            items: vec![],
            total: 10_000,
            total_is_lower_bound: true,
            facets: None,
            next_cursor: Some("o50".into()),
        };
        assert_eq!(total_text(&results), "10000+");
        results.total_is_lower_bound = false;
        assert_eq!(total_text(&results), "10000");
    }
}
