//! A [`Query`] compiled to one SQL `WHERE` clause over `assets a` (joined to
//! its `asset_search s` row), with the caller's read permission inside, so the
//! total, the pages and the facets all count the same rows. Every predicate is
//! an indexed lookup (`IN (SELECT … FROM asset_tags | asset_fields |
//! asset_search_fts …)`), so a selective term never scans every asset.

use super::query::{Cmp, Expr, MetaTest, MetaValue, Query, Sort, Term, Text, TimeField};
use crate::meta::sql::Arg;

/// The one thing the backends do differently here: full text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FullText {
    /// SQLite FTS5 (`asset_search_fts`, external content over `asset_search`).
    Fts5,
    /// PostgreSQL `tsvector` (`asset_search.body_vector`, 'simple' configuration).
    TsVector,
}

/// The SQL of a search: `FROM …` (with joins), `WHERE …` and `ORDER BY …`,
/// and their arguments in placeholder order.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub from: String,
    pub filter: String,
    pub order: String,
    pub args: Vec<Arg>,
}

struct Builder {
    args: Vec<Arg>,
    text: FullText,
}

impl Builder {
    /// Add an argument; returns its placeholder.
    fn arg(&mut self, arg: impl Into<Arg>) -> String {
        self.args.push(arg.into());
        format!("${}", self.args.len())
    }

    fn expr(&mut self, e: &Expr) -> String {
        match e {
            Expr::And(items) => self.join(items, " AND "),
            Expr::Or(items) => self.join(items, " OR "),
            Expr::Not(inner) => format!("NOT ({})", self.expr(inner)),
            Expr::Term(t) => self.term(t),
        }
    }

    fn join(&mut self, items: &[Expr], sep: &str) -> String {
        let parts: Vec<String> = items
            .iter()
            .map(|i| format!("({})", self.expr(i)))
            .collect();
        parts.join(sep)
    }

    /// The full-text condition on `s` for words (all of them) or a phrase.
    fn text(&mut self, t: &Text) -> String {
        match self.text {
            FullText::Fts5 => {
                let p = self.arg(fts5(t));
                format!(
                    "s.rowid IN (SELECT rowid FROM asset_search_fts WHERE asset_search_fts MATCH {p})"
                )
            }
            FullText::TsVector => {
                let sep = if t.phrase { " <-> " } else { " & " };
                let p = self.arg(t.words.join(sep));
                format!("s.body_vector @@ to_tsquery('simple', {p})")
            }
        }
    }

    fn term(&mut self, t: &Term) -> String {
        match t {
            Term::Text(t) => self.text(t),
            Term::Tag(tag) => {
                let p = self.arg(tag.as_str());
                format!("a.id IN (SELECT t.asset_id FROM asset_tags t WHERE t.tag = {p})")
            }
            Term::RecordType(rt) => format!("a.record_type = {}", self.arg(rt.as_str())),
            Term::Project(id) => {
                format!(
                    "a.owner_type = 'project' AND a.owner_id = {}",
                    self.arg(id.as_str())
                )
            }
            Term::Collection { id, descendants } => {
                let p = self.arg(id.as_str());
                let ids = if *descendants {
                    format!(
                        "(WITH RECURSIVE sub(id) AS (SELECT CAST({p} AS TEXT) UNION \
                         SELECT c.id FROM collections c JOIN sub ON c.parent_id = sub.id) \
                         SELECT id FROM sub)"
                    )
                } else {
                    format!("({p})")
                };
                format!(
                    "a.id IN (SELECT ac.asset_id FROM asset_collections ac WHERE ac.collection_id IN {ids})"
                )
            }
            // `$1` is the caller.
            Term::Owner(None) => "a.created_by = $1".into(),
            Term::Owner(Some(who)) => {
                let p = self.arg(who.as_str());
                format!(
                    "a.created_by IN (SELECT u.id FROM users u WHERE u.id = {p} OR u.email = {p})"
                )
            }
            Term::Time { field, cmp, at } => {
                let column = match field {
                    TimeField::Created => "a.created_at",
                    TimeField::Updated => "a.updated_at",
                };
                format!("{column} {} {}", cmp.sql(), self.arg(*at))
            }
            Term::Size { cmp, bytes } => format!("s.size_bytes {} {}", cmp.sql(), self.arg(*bytes)),
            Term::Metadata { path, test } => {
                let path = self.arg(path.join("."));
                let having = "a.id IN (SELECT f.asset_id FROM asset_fields f WHERE f.path = ";
                match test {
                    MetaTest::Exists => format!("{having}{path})"),
                    MetaTest::Compare(Cmp::Ne, value) => {
                        let (column, v) = self.value(value);
                        format!(
                            "{having}{path}) AND a.id NOT IN (SELECT f.asset_id FROM asset_fields f \
                             WHERE f.path = {path} AND f.{column} = {v})"
                        )
                    }
                    MetaTest::Compare(cmp, value) => {
                        let (column, v) = self.value(value);
                        format!("{having}{path} AND f.{column} {} {v})", cmp.sql())
                    }
                }
            }
        }
    }

    /// The `asset_fields` column a value compares with, and its placeholder.
    fn value(&mut self, v: &MetaValue) -> (&'static str, String) {
        match v {
            MetaValue::Number(n) => ("num", self.arg(Arg::Float(Some(*n)))),
            MetaValue::Text(t) => ("txt", self.arg(t.as_str())),
            MetaValue::Bool(b) => ("flag", self.arg(Arg::Bool(Some(*b)))),
        }
    }
}

/// A word or phrase as an FTS5 query (words quoted: no operators inside).
fn fts5(t: &Text) -> String {
    if t.phrase {
        format!("\"{}\"", t.words.join(" "))
    } else {
        t.words
            .iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// The words and phrases every match must contain (the query's top-level
/// text terms), and the rest of the query.
fn split_required(e: &Expr) -> (Vec<&Text>, Option<Expr>) {
    match e {
        Expr::Term(Term::Text(t)) => (vec![t], None),
        Expr::And(items) => {
            let mut required = Vec::new();
            let mut rest = Vec::new();
            for item in items {
                match item {
                    Expr::Term(Term::Text(t)) => required.push(t),
                    other => rest.push(other.clone()),
                }
            }
            let rest = match rest.len() {
                0 => None,
                1 => rest.pop(),
                _ => Some(Expr::And(rest)),
            };
            (required, rest)
        }
        other => (Vec::new(), Some(other.clone())),
    }
}

/// Compile `query` for `caller` (a user id, always `$1`) sorted by `sort`.
pub(crate) fn compile(query: &Query, sort: &Sort, caller: &str, text: FullText) -> Compiled {
    let mut b = Builder {
        args: Vec::new(),
        text,
    };
    let me = b.arg(caller);
    let readable = format!(
        "(a.owner_type = 'user' AND a.owner_id = {me} OR a.owner_type = 'project' AND \
         a.owner_id IN (SELECT m.project_id FROM memberships m WHERE m.user_id = {me}))"
    );
    // SQLite: a query with required words is driven by the full-text index
    // (the words are the `MATCH` in `FROM`: only documents that have them
    // are ever looked at) and ranked by bm25 over them; the permission and
    // the other terms filter those rows. PostgreSQL's planner chooses the
    // GIN index for a selective `@@` by itself.
    let (required, rest) = match (&query.expr, text) {
        (Some(e), FullText::Fts5) => split_required(e),
        (e, _) => (Vec::new(), e.clone()),
    };
    let mut from = "assets a LEFT JOIN asset_search s ON s.asset_id = a.id".to_string();
    let mut filter = readable;
    if !required.is_empty() {
        let m = b.arg(
            required
                .iter()
                .map(|t| format!("({})", fts5(t)))
                .collect::<Vec<_>>()
                .join(" AND "),
        );
        from = "asset_search_fts JOIN asset_search s ON s.rowid = asset_search_fts.rowid \
                JOIN assets a ON a.id = s.asset_id"
            .to_string();
        filter = format!("asset_search_fts MATCH {m} AND {filter}");
    }
    if let Some(e) = &rest {
        filter = format!("{filter} AND ({})", b.expr(e));
    }
    let desc = |d: bool| if d { " DESC" } else { "" };
    let order = match sort {
        Sort::Relevance if !required.is_empty() => {
            // bm25: lower is better.
            "bm25(asset_search_fts)".to_string()
        }
        Sort::Relevance => {
            let words: Vec<String> = query
                .ranking_text()
                .iter()
                .flat_map(|t| t.words.iter().cloned())
                .collect();
            if words.is_empty() {
                "a.created_at DESC".to_string()
            } else {
                match text {
                    FullText::Fts5 => {
                        let q = b.arg(
                            words
                                .iter()
                                .map(|w| format!("\"{w}\""))
                                .collect::<Vec<_>>()
                                .join(" OR "),
                        );
                        from.push_str(&format!(
                            " LEFT JOIN (SELECT rowid AS r, bm25(asset_search_fts) AS rank \
                             FROM asset_search_fts WHERE asset_search_fts MATCH {q}) ranked \
                             ON ranked.r = s.rowid"
                        ));
                        // bm25: lower is better.
                        "(ranked.rank IS NULL), ranked.rank".to_string()
                    }
                    FullText::TsVector => {
                        let q = b.arg(words.join(" | "));
                        format!("ts_rank(s.body_vector, to_tsquery('simple', {q})) DESC")
                    }
                }
            }
        }
        Sort::Created { descending } => format!("a.created_at{}", desc(*descending)),
        Sort::Updated { descending } => format!("a.updated_at{}", desc(*descending)),
        Sort::Title { descending } => {
            let title = match text {
                FullText::Fts5 => "a.title",
                // Byte order, as SQLite's BINARY collation.
                FullText::TsVector => "a.title COLLATE \"C\"",
            };
            format!("{title}{}", desc(*descending))
        }
        Sort::Size { descending } => {
            format!("(s.size_bytes IS NULL), s.size_bytes{}", desc(*descending))
        }
        Sort::RecordType { descending } => {
            let record_type = match text {
                FullText::Fts5 => "a.record_type",
                // Byte order, as SQLite's BINARY collation.
                FullText::TsVector => "a.record_type COLLATE \"C\"",
            };
            format!(
                "(a.record_type IS NULL), {record_type}{}, a.created_at DESC",
                desc(*descending)
            )
        }
        Sort::Metadata { path, descending } => {
            let p = b.arg(path.join("."));
            let d = desc(*descending);
            format!(
                "(SELECT MIN(f.num) FROM asset_fields f WHERE f.asset_id = a.id AND f.path = {p}) IS NULL, \
                 (SELECT MIN(f.num) FROM asset_fields f WHERE f.asset_id = a.id AND f.path = {p}){d}, \
                 (SELECT MIN(f.txt) FROM asset_fields f WHERE f.asset_id = a.id AND f.path = {p}) IS NULL, \
                 (SELECT MIN(f.txt) FROM asset_fields f WHERE f.asset_id = a.id AND f.path = {p}){d}"
            )
        }
    };
    Compiled {
        from,
        filter,
        order: format!("{order}, a.id"),
        args: b.args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::parse;

    fn sql(q: &str, text: FullText) -> Compiled {
        let query = parse(q).unwrap();
        let sort = Sort::parse(None, &query).unwrap();
        compile(&query, &sort, "u1", text)
    }

    #[test]
    fn every_query_is_filtered_by_read_permission_first() {
        for q in ["", "a", "tag:x OR -tag:y"] {
            let c = sql(q, FullText::TsVector);
            assert!(
                c.filter
                    .starts_with("(a.owner_type = 'user' AND a.owner_id = $1"),
                "{q}: {}",
                c.filter
            );
            assert!(matches!(&c.args[0], Arg::Text(Some(u)) if u == "u1"));
        }
    }

    #[test]
    fn required_words_drive_sqlite_from_the_full_text_index() {
        let c = sql("scan \"bright field\" tag:x", FullText::Fts5);
        assert!(c.from.starts_with("asset_search_fts JOIN"), "{}", c.from);
        assert!(
            c.filter
                .starts_with("asset_search_fts MATCH $2 AND (a.owner_type = 'user'"),
            "{}",
            c.filter
        );
        assert!(
            matches!(&c.args[1], Arg::Text(Some(q)) if q == "(\"scan\") AND (\"bright field\")")
        );
        assert_eq!(c.order, "bm25(asset_search_fts), a.id");
        // The permission is still inside, and the words are not matched twice.
        assert!(c.filter.contains("memberships"));
        assert_eq!(c.filter.matches("MATCH").count(), 1);
        // Words under OR or NOT cannot drive: the old plan.
        let c = sql("scan OR tag:x", FullText::Fts5);
        assert!(c.from.starts_with("assets a"), "{}", c.from);
    }

    #[test]
    fn or_and_not_keep_their_grouping() {
        let c = sql("tag:a OR NOT (tag:b type:c)", FullText::Fts5);
        assert!(c.filter.contains(") OR (NOT ((a.id IN"), "{}", c.filter);
        assert_eq!(c.args.len(), 4);
    }

    #[test]
    fn full_text_differs_only_in_its_operator() {
        let fts = sql("\"bright field\"", FullText::Fts5);
        assert!(matches!(&fts.args[1], Arg::Text(Some(q)) if q == "(\"bright field\")"));
        let ts = sql("\"bright field\"", FullText::TsVector);
        assert!(matches!(&ts.args[1], Arg::Text(Some(q)) if q == "bright <-> field"));
        assert!(ts.order.starts_with("ts_rank"));
    }
}
