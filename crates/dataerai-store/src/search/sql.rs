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
    /// Common table expressions (`name AS (…)`, or empty) that `from` and
    /// `count_from` read.
    pub ctes: String,
    /// The page's `FROM` (always with `assets a`).
    pub from: String,
    /// When neither the filter nor the order reads `assets a`: the page's
    /// `FROM` without it, to select the page's ids (the assets are read for
    /// those ids only).
    pub ids_from: Option<String>,
    /// The count's `FROM`: only the tables the filter needs (a tag query is
    /// counted from its index rows alone).
    pub count_from: String,
    pub filter: String,
    pub order: String,
    /// When the order is a relevance rank that `count_from` can compute:
    /// the rank's expression and its direction (`""` or `" DESC"`); ties
    /// are broken by the asset id, ascending. The page then ranks every
    /// match, so the count's pass over the matches can rank them too
    /// (`meta::search::statements`).
    pub rank: Option<(String, &'static str)>,
    /// The asset id and its owner key in `count_from`.
    pub id: &'static str,
    pub owner: &'static str,
    /// SQLite, when the filter is the required words and the read
    /// permission alone: the same matches as `FROM {count_from} WHERE
    /// {filter}`, by rowid (`asset_search_fts.rowid`), the owner checked by
    /// its number in `asset_search_owner` (10 bytes per asset) instead of in
    /// each match's `asset_search` row (migration sqlite 0020).
    pub by_owner_number: Option<String>,
    pub args: Vec<Arg>,
}

/// The table a search starts from, whose index holds the term and the
/// owner, so the term and the read permission are one index range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    /// The full-text index (SQLite: the required words are its `MATCH`).
    Words,
    /// One tag's index rows (`asset_tags d`), newest first.
    Tag,
    /// One metadata test's index rows (`asset_fields`, one row per matching
    /// asset as `d`), put newest first from the index alone.
    Field,
    /// Every asset's index row (`asset_search s`), newest first.
    All,
}

struct Builder {
    args: Vec<Arg>,
    text: FullText,
    /// The columns holding the asset id and its owner key in the
    /// statement's driving table.
    id: &'static str,
    owner: &'static str,
    /// Whether the filter reads `asset_search s` / `assets a`.
    uses_search: bool,
    uses_asset: bool,
    /// The caller's readable owner keys, as a subquery.
    readable: String,
    /// Whether a term is checked per candidate row (a top-level term that
    /// does not drive: one index probe per candidate, whose owner the
    /// driver has already checked) rather than as the set of its matches.
    correlated: bool,
    /// The driving table's copy of the candidate's record type, when it
    /// has one (`asset_tags` and `asset_search` rows do; a metadata
    /// driver's rows do not).
    row_type: Option<&'static str>,
}

/// Which term a search's statements start from. [`Drive::Default`] is the
/// fixed rule of [`compile`]; the store picks a [`Drive::Term`] when its
/// capped count ([`drive_estimates`]) shows it is the most selective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Drive {
    #[default]
    Default,
    /// The top-level `AND` term at this position (a tag or a metadata test).
    Term(usize),
}

/// Estimates count at most this many rows: a term with fewer readable
/// matches drives (reading all of its index rows costs less than walking
/// newest first); with more, the fixed rule applies. At 1,000,000 assets
/// PostgreSQL read a 10,000-match range (20,000 index rows, parallel
/// workers, a sort) slower than the newest-first walk that finds a page of
/// such a common match after a few thousand rows (docs/performance.md).
pub(crate) const ESTIMATE_CAP: u64 = 5_000;

/// The owner keys `$1` (a user id) may read: `user:<id>` and the projects it
/// is a member of (`project:<id>`), as the index rows hold them.
fn readable_owners(me: &str) -> String {
    format!(
        "(SELECT 'user:' || CAST({me} AS TEXT) UNION ALL \
         SELECT 'project:' || m.project_id FROM memberships m WHERE m.user_id = {me})"
    )
}

impl Builder {
    /// A builder whose statement reads the asset id and owner from `id`
    /// and `owner`, with no argument yet.
    fn new(text: FullText, id: &'static str, owner: &'static str) -> Self {
        Builder {
            args: Vec::new(),
            text,
            id,
            owner,
            uses_search: false,
            uses_asset: false,
            readable: String::new(),
            correlated: false,
            row_type: None,
        }
    }

    /// Add an argument; returns its placeholder.
    fn arg(&mut self, arg: impl Into<Arg>) -> String {
        self.args.push(arg.into());
        format!("${}", self.args.len())
    }

    fn s(&mut self, column: &str) -> String {
        self.uses_search = true;
        format!("s.{column}")
    }

    fn a(&mut self, column: &str) -> String {
        self.uses_asset = true;
        format!("a.{column}")
    }

    /// A text column of `assets a`, compared in byte order on both
    /// backends (PostgreSQL's "C" collation is SQLite's BINARY).
    fn asset_text(&mut self, column: &str) -> String {
        let c = self.a(column);
        match self.text {
            FullText::Fts5 => c,
            FullText::TsVector => format!("{c} COLLATE \"C\""),
        }
    }

    fn expr(&mut self, e: &Expr) -> String {
        match e {
            Expr::And(items) => self.join(items, " AND "),
            Expr::Or(items) => self.join(items, " OR "),
            // A test of a missing value (an asset with no record type) is
            // NULL, and NOT NULL is NULL: such an asset must still match
            // "not of this type", so the inner unknown counts as false.
            Expr::Not(inner) => format!("NOT COALESCE(({}), FALSE)", self.expr(inner)),
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
                let rowid = self.s("rowid");
                format!(
                    "{rowid} IN (SELECT rowid FROM asset_search_fts WHERE asset_search_fts MATCH {p})"
                )
            }
            FullText::TsVector => {
                let sep = if t.phrase { " <-> " } else { " & " };
                let p = self.arg(t.words.join(sep));
                let v = self.s("body_vector");
                format!("{v} @@ to_tsquery('simple', {p})")
            }
        }
    }

    fn term(&mut self, t: &Term) -> String {
        let id = self.id;
        match t {
            Term::Text(t) => self.text(t),
            Term::Tag(tag) if self.correlated => {
                let p = self.arg(tag.as_str());
                format!(
                    "EXISTS (SELECT 1 FROM asset_tags t WHERE t.tag = {p} AND t.asset_id = {id})"
                )
            }
            Term::Metadata { path, test } if self.correlated => {
                let path = self.arg(path.join("."));
                let has = format!(
                    "EXISTS (SELECT 1 FROM asset_fields f WHERE f.asset_id = {id} AND f.path = {path}"
                );
                match test {
                    MetaTest::Exists => format!("{has})"),
                    MetaTest::Compare(Cmp::Ne, value) => {
                        let (column, v) = self.value(value);
                        format!("{has}) AND NOT {has} AND f.{column} = {v})")
                    }
                    MetaTest::Compare(cmp, value) => {
                        let (column, v) = self.value(value);
                        format!("{has} AND f.{column} {} {v})", cmp.sql())
                    }
                }
            }
            Term::Tag(tag) => {
                let p = self.arg(tag.as_str());
                let r = self.readable.clone();
                format!(
                    "{id} IN (SELECT t.asset_id FROM asset_tags t WHERE t.tag = {p} AND t.owner IN {r})"
                )
            }
            Term::RecordType(rt) => {
                let p = self.arg(rt.as_str());
                match self.row_type {
                    // The driving index row's copy: no row read.
                    Some(column) => format!("{column} = {p}"),
                    // Per candidate, a lookup PostgreSQL cannot turn into a
                    // join (it merge-joined every asset of the type to a
                    // metadata driver's thousand candidates: 1.2 s at
                    // 1,000,000 assets).
                    None if self.correlated => {
                        format!("(SELECT x.record_type FROM assets x WHERE x.id = {id}) = {p}")
                    }
                    None => format!("{} = {p}", self.s("record_type")),
                }
            }
            Term::Project(id) => {
                let p = self.arg(id.as_str());
                let owner = match self.owner {
                    "s.owner" => self.s("owner"),
                    other => other.to_string(),
                };
                format!("{owner} = 'project:' || CAST({p} AS TEXT)")
            }
            Term::Collection { id: c, descendants } => {
                let p = self.arg(c.as_str());
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
                    "{id} IN (SELECT ac.asset_id FROM asset_collections ac WHERE ac.collection_id IN {ids})"
                )
            }
            // `$1` is the caller.
            Term::Owner(None) => format!("{} = $1", self.a("created_by")),
            Term::Owner(Some(who)) => {
                let p = self.arg(who.as_str());
                format!(
                    "{} IN (SELECT u.id FROM users u WHERE u.id = {p} OR u.email = {p})",
                    self.a("created_by")
                )
            }
            Term::Time { field, cmp, at } => {
                let column = match field {
                    TimeField::Created => self.s("created_at"),
                    TimeField::Updated => self.a("updated_at"),
                };
                format!("{column} {} {}", cmp.sql(), self.arg(*at))
            }
            Term::Size { cmp, bytes } => {
                let column = self.s("size_bytes");
                format!("{column} {} {}", cmp.sql(), self.arg(*bytes))
            }
            Term::Metadata { path, test } => {
                let path = self.arg(path.join("."));
                let r = self.readable.clone();
                let having =
                    format!("{id} IN (SELECT f.asset_id FROM asset_fields f WHERE f.path = ");
                match test {
                    MetaTest::Exists => format!("{having}{path} AND f.owner IN {r})"),
                    MetaTest::Compare(Cmp::Ne, value) => {
                        let (column, v) = self.value(value);
                        format!(
                            "{having}{path} AND f.owner IN {r}) AND {id} NOT IN (SELECT f.asset_id \
                             FROM asset_fields f WHERE f.path = {path} AND f.{column} = {v})"
                        )
                    }
                    MetaTest::Compare(cmp, value) => {
                        let (column, v) = self.value(value);
                        format!(
                            "{having}{path} AND f.{column} {} {v} AND f.owner IN {r})",
                            cmp.sql()
                        )
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

/// The FTS5 query of required words and phrases (all of them).
fn required_match(required: &[Text]) -> String {
    required
        .iter()
        .map(|t| format!("({})", fts5(t)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The top-level `AND` terms of a query.
fn conjuncts(e: &Expr) -> Vec<Expr> {
    match e {
        Expr::And(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// The words and phrases every match must contain (the query's top-level
/// text terms), and the rest of the query.
fn split_required(e: &Expr) -> (Vec<Text>, Vec<Expr>) {
    let mut required = Vec::new();
    let mut rest = Vec::new();
    for item in conjuncts(e) {
        match item {
            Expr::Term(Term::Text(t)) => required.push(t),
            other => rest.push(other),
        }
    }
    (required, rest)
}

/// The first top-level tag of a query and the rest of it.
fn split_tag(e: &Expr) -> Option<(String, Vec<Expr>)> {
    let mut items = conjuncts(e);
    let k = items
        .iter()
        .position(|i| matches!(i, Expr::Term(Term::Tag(_))))?;
    let Expr::Term(Term::Tag(tag)) = items.remove(k) else {
        return None;
    };
    Some((tag, items))
}

/// The count's matches for a query that is one metadata comparison (or
/// existence test): `id, owner` of its readable index rows straight from
/// the `asset_fields` index range with the owner in it (no asset row read;
/// an asset with several matching values, e.g. array elements, has a row
/// for each), and its arguments. `None` for any other query.
pub(crate) fn metadata_count(query: &Query, caller: &str) -> Option<(String, Vec<Arg>)> {
    let Some(Expr::Term(Term::Metadata { path, test })) = &query.expr else {
        return None;
    };
    if matches!(test, MetaTest::Compare(Cmp::Ne, _)) {
        return None;
    }
    let (rows, mut args) = field_matches(path, test, &readable_owners("$1"), 1);
    args.insert(0, Arg::from(caller));
    Some((
        format!("SELECT f.asset_id AS id, f.owner AS owner FROM asset_fields f WHERE {rows}"),
        args,
    ))
}

/// The order top-level checks are written in: comparisons of the
/// candidate's own columns, then index probes, then full text, then
/// compound expressions.
fn check_cost(e: &Expr) -> u8 {
    match e {
        Expr::Term(Term::Tag(_)) => 1,
        Expr::Term(Term::Metadata { .. }) => 2,
        Expr::Term(Term::Collection { .. }) => 3,
        Expr::Term(Term::Text(_)) => 4,
        Expr::Term(_) => 0,
        _ => 5,
    }
}

/// `asset_fields f` conditions of a metadata test (not `!=`) that a
/// driving, estimating or counting statement reads as one index range with
/// the owner inside, and their
/// arguments numbered after `before` others. `readable` is the caller's
/// owner keys.
fn field_matches(
    path: &[String],
    test: &MetaTest,
    readable: &str,
    before: usize,
) -> (String, Vec<Arg>) {
    let mut b = Builder {
        args: vec![Arg::Text(None); before],
        ..Builder::new(FullText::Fts5, "f.asset_id", "f.owner")
    };
    let p = b.arg(path.join("."));
    let value = match test {
        MetaTest::Compare(cmp, value) => {
            let (column, v) = b.value(value);
            format!(" AND f.{column} {} {v}", cmp.sql())
        }
        MetaTest::Exists => String::new(),
    };
    (
        format!("f.path = {p}{value} AND f.owner IN {readable}"),
        b.args.split_off(before),
    )
}

/// Whether a metadata test can drive (see [`field_matches`]).
fn drives(test: &MetaTest) -> bool {
    !matches!(
        test,
        MetaTest::Compare(Cmp::Ne, _) | MetaTest::Compare(_, MetaValue::Bool(_))
    )
}

/// Estimates of SQLite's required words ranked by relevance count up to
/// this many rows instead: their fixed rule reads and ranks every document
/// with the words (a sixth of the catalogue for one common word), so a term
/// with up to this many readable rows, whose candidates are each checked
/// for the words with one full-text probe and only the survivors ranked,
/// costs less.
pub(crate) const RANKED_WORDS_ESTIMATE_CAP: u64 = 20_000;

/// The cap of [`drive_estimates`]: a term must have fewer readable index
/// rows than this to drive.
pub(crate) fn estimate_cap(query: &Query, sort: &Sort, text: FullText) -> u64 {
    let ranked_words = text == FullText::Fts5
        && *sort == Sort::Relevance
        && query
            .expr
            .as_ref()
            .is_some_and(|e| !split_required(e).0.is_empty());
    if ranked_words {
        RANKED_WORDS_ESTIMATE_CAP
    } else {
        ESTIMATE_CAP
    }
}

/// For each top-level term that could drive instead of the fixed rule
/// (a tag, or a metadata test on an ordered value), its position and a
/// statement counting its readable index rows up to [`estimate_cap`] (one
/// index range, the owner inside); on SQLite also the required words'
/// documents (the fixed rule, [`Drive::Default`]). Empty when the fixed
/// rule stands: no such term, or a lone tag (it drives anyway).
pub(crate) fn drive_estimates(
    query: &Query,
    sort: &Sort,
    caller: &str,
    text: FullText,
) -> Vec<(Drive, String, Vec<Arg>)> {
    let Some(e) = &query.expr else {
        return vec![];
    };
    let cap = estimate_cap(query, sort, text);
    let (required, _) = split_required(e);
    let items = conjuncts(e);
    let mut out = Vec::new();
    let mut has_field = false;
    for (k, item) in items.iter().enumerate() {
        let me = Arg::from(caller);
        let r = readable_owners("$1");
        let (rows, mut args) = match item {
            Expr::Term(Term::Tag(tag)) => (
                format!("SELECT 1 FROM asset_tags t WHERE t.tag = $2 AND t.owner IN {r}"),
                vec![Arg::from(tag.as_str())],
            ),
            Expr::Term(Term::Metadata { path, test }) if drives(test) => {
                has_field = true;
                let (rows, args) = field_matches(path, test, &r, 1);
                (format!("SELECT 1 FROM asset_fields f WHERE {rows}"), args)
            }
            _ => continue,
        };
        args.insert(0, me);
        out.push((
            Drive::Term(k),
            format!("SELECT COUNT(*) FROM ({rows} LIMIT {cap}) x"),
            args,
        ));
    }
    // SQLite's required words: their document count.
    if text == FullText::Fts5 && !required.is_empty() {
        let m = required_match(&required);
        out.push((
            Drive::Default,
            format!(
                "SELECT COUNT(*) FROM (SELECT rowid FROM asset_search_fts \
                 WHERE asset_search_fts MATCH $1 LIMIT {cap}) x"
            ),
            vec![Arg::from(m)],
        ));
    }
    // A lone tag drives anyway: nothing to weigh.
    if !has_field && out.len() < 2 {
        return vec![];
    }
    out
}

/// Compile `query` for `caller` (a user id, always `$1`) sorted by `sort`.
///
/// Every statement starts from an index that holds the owner of each row
/// (`owner_type:owner_id`), so the caller's read permission is checked on
/// the index rows: SQLite's required words start from the full-text index;
/// a query with a top-level tag starts from that tag's rows (newest first,
/// so a page sorted by creation reads no more rows than it shows, plus the
/// unreadable ones between them); any other query from `asset_search`
/// (newest first). Terms on tags and metadata are `IN` subqueries over their
/// index with the owner inside.
pub(crate) fn compile(
    query: &Query,
    sort: &Sort,
    caller: &str,
    text: FullText,
    drive: Drive,
) -> Compiled {
    let mut b = Builder::new(text, "s.asset_id", "s.owner");
    let me = b.arg(caller);
    b.readable = readable_owners(&me);
    let readable = b.readable.clone();
    // A chosen term drives: it goes first among the conjuncts.
    let chosen = match (drive, &query.expr) {
        (Drive::Term(k), Some(e)) => {
            let mut items = conjuncts(e);
            match items.get(k) {
                Some(Expr::Term(Term::Tag(_) | Term::Metadata { .. })) => {
                    let first = items.remove(k);
                    items.insert(0, first);
                    Some(items)
                }
                _ => None,
            }
        }
        _ => None,
    };
    let (driver, required, rest) = match (chosen, &query.expr, text) {
        (Some(items), _, _) => {
            let driver = match &items[0] {
                Expr::Term(Term::Tag(_)) => Driver::Tag,
                _ => Driver::Field,
            };
            (driver, vec![], items)
        }
        (None, Some(e), FullText::Fts5) if !split_required(e).0.is_empty() => {
            let (required, rest) = split_required(e);
            (Driver::Words, required, rest)
        }
        (None, Some(e), _) => match split_tag(e) {
            Some((tag, rest)) => (Driver::Tag, vec![], {
                let mut all = vec![Expr::Term(Term::Tag(tag))];
                all.extend(rest);
                all
            }),
            None => (Driver::All, vec![], conjuncts(e)),
        },
        (None, None, _) => (Driver::All, vec![], vec![]),
    };
    let mut filter;
    let mut by_owner_number = None;
    let mut rest = rest;
    // The driving table when a metadata test drives: its matching assets,
    // each once, with the owner and creation time from the index.
    let mut field_rows = String::new();
    match driver {
        Driver::Words => {
            let m = b.arg(required_match(&required));
            b.uses_search = true;
            b.row_type = Some("s.record_type");
            filter = format!("asset_search_fts MATCH {m} AND s.owner IN {readable}");
            by_owner_number = rest.is_empty().then(|| {
                format!(
                    "asset_search_fts CROSS JOIN asset_search_owner o \
                     ON o.id = asset_search_fts.rowid WHERE asset_search_fts MATCH {m} \
                     AND o.owner_no IN (SELECT no FROM search_owners WHERE owner IN {readable})"
                )
            });
        }
        Driver::Tag => {
            b.id = "d.asset_id";
            b.owner = "d.owner";
            b.row_type = Some("d.record_type");
            let Expr::Term(Term::Tag(tag)) = rest.remove(0) else {
                unreachable!("the tag driver starts with its tag")
            };
            let p = b.arg(tag);
            filter = format!("d.tag = {p} AND d.owner IN {readable}");
        }
        Driver::Field => {
            b.id = "d.asset_id";
            b.owner = "d.owner";
            let Expr::Term(Term::Metadata { path, test }) = rest.remove(0) else {
                unreachable!("the field driver starts with its metadata test")
            };
            let (rows, args) = field_matches(&path, &test, &readable, b.args.len());
            b.args.extend(args);
            field_rows = format!(
                "(SELECT DISTINCT f.asset_id, f.owner, f.created_at FROM asset_fields f WHERE {rows}) d"
            );
            filter = "1 = 1".to_string();
        }
        Driver::All => {
            b.uses_search = true;
            b.row_type = Some("s.record_type");
            filter = format!("s.owner IN {readable}");
        }
    }
    // The whole query when it is one `OR`/`NOT` expression, else the terms
    // left after the driver's: each checked per candidate, the cheap
    // column comparisons first and the full text last.
    // SQLite, a tag or metadata test driving: the required words are not
    // probed per candidate (a full-text probe for one rowid reads the
    // word's whole doclist: O(matches) per candidate) but matched once, in
    // `words` below, against the candidates the rest of the filter passes.
    let mut required_words = Vec::new();
    if text == FullText::Fts5 && matches!(driver, Driver::Tag | Driver::Field) {
        rest.retain(|e| match e {
            Expr::Term(Term::Text(t)) => {
                required_words.push(t.clone());
                false
            }
            _ => true,
        });
    }
    if !rest.is_empty() {
        rest.sort_by_key(check_cost);
        for e in &rest {
            b.correlated = matches!(e, Expr::Term(_));
            let check = b.expr(e);
            b.correlated = false;
            filter = format!("{filter} AND ({check})");
        }
    }
    let (created, id): (&str, &str) = match driver {
        Driver::Tag | Driver::Field => ("d.created_at", "d.asset_id"),
        _ => ("s.created_at", "s.asset_id"),
    };
    let desc = |d: bool| if d { " DESC" } else { "" };
    // Ties in the order are broken by the asset id, in the same direction
    // as a creation-time order (so that order is one index's order).
    let mut tie = format!(", {id}");
    // SQLite: the rank of a document among those with any ranking word,
    // joined to the page's `s`.
    let mut ranked = String::new();
    // Its MATCH placeholder: the rank is computed (in `with`) for the
    // documents that pass the filter only.
    let mut rank_match = None;
    // The rank, when `count_from` has what it reads (see `Compiled::rank`).
    let mut rank = None;
    // The required words' MATCH when they are matched in `words`.
    let words_match = (!required_words.is_empty()).then(|| {
        b.uses_search = true;
        b.arg(required_match(&required_words))
    });
    let order = match sort {
        Sort::Relevance if driver == Driver::Words => {
            // bm25: lower is better.
            rank = Some(("bm25(asset_search_fts)".to_string(), ""));
            "bm25(asset_search_fts)".to_string()
        }
        // The same MATCH as when the words drive, so the same bm25.
        Sort::Relevance if words_match.is_some() => {
            rank = Some(("ranked.rank".to_string(), ""));
            "ranked.rank".to_string()
        }
        Sort::Relevance => {
            let words: Vec<String> = query
                .ranking_text()
                .iter()
                .flat_map(|t| t.words.iter().cloned())
                .collect();
            if words.is_empty() {
                tie = format!(", {id} DESC");
                format!("{created} DESC")
            } else {
                match text {
                    FullText::Fts5 => {
                        // Words under `OR` only: any ranking word.
                        let q = b.arg(
                            words
                                .iter()
                                .map(|w| format!("\"{w}\""))
                                .collect::<Vec<_>>()
                                .join(" OR "),
                        );
                        rank_match = Some(q);
                        ranked = " LEFT JOIN ranked ON ranked.r = s.rowid".to_string();
                        // bm25: lower is better.
                        "(ranked.rank IS NULL), ranked.rank".to_string()
                    }
                    FullText::TsVector => {
                        let q = b.arg(words.join(" | "));
                        let r = format!("ts_rank(s.body_vector, to_tsquery('simple', {q}))");
                        // `count_from` reads `s` when the filter does.
                        if b.uses_search {
                            rank = Some((r.clone(), " DESC"));
                        }
                        format!("{r} DESC")
                    }
                }
            }
        }
        Sort::Created { descending } => {
            tie = format!(", {id}{}", desc(*descending));
            format!("{created}{}", desc(*descending))
        }
        Sort::Updated { descending } => {
            b.uses_asset = true;
            format!("a.updated_at{}", desc(*descending))
        }
        Sort::Title { descending } => {
            format!("{}{}", b.asset_text("title"), desc(*descending))
        }
        Sort::Size { descending } => {
            format!("(s.size_bytes IS NULL), s.size_bytes{}", desc(*descending))
        }
        Sort::RecordType { descending } => {
            let record_type = b.asset_text("record_type");
            format!(
                "(a.record_type IS NULL), {record_type}{}, {created} DESC",
                desc(*descending)
            )
        }
        Sort::Metadata { path, descending } => {
            let p = b.arg(path.join("."));
            let d = desc(*descending);
            format!(
                "(SELECT MIN(f.num) FROM asset_fields f WHERE f.asset_id = {id} AND f.path = {p}) IS NULL, \
                 (SELECT MIN(f.num) FROM asset_fields f WHERE f.asset_id = {id} AND f.path = {p}){d}, \
                 (SELECT MIN(f.txt) FROM asset_fields f WHERE f.asset_id = {id} AND f.path = {p}) IS NULL, \
                 (SELECT MIN(f.txt) FROM asset_fields f WHERE f.asset_id = {id} AND f.path = {p}){d}"
            )
        }
    };
    let (mut from, mut count_from) = match driver {
        Driver::Words => (
            "asset_search_fts CROSS JOIN asset_search s ON s.rowid = asset_search_fts.rowid \
             CROSS JOIN assets a ON a.id = s.asset_id"
                .to_string(),
            "asset_search_fts CROSS JOIN asset_search s ON s.rowid = asset_search_fts.rowid"
                .to_string(),
        ),
        Driver::Tag => {
            let mut count = "asset_tags d".to_string();
            if b.uses_search {
                count.push_str(" JOIN asset_search s ON s.asset_id = d.asset_id");
            }
            (
                "asset_tags d JOIN asset_search s ON s.asset_id = d.asset_id \
                 JOIN assets a ON a.id = d.asset_id"
                    .to_string(),
                count,
            )
        }
        Driver::Field => {
            let mut count = field_rows.clone();
            if b.uses_search {
                count.push_str(" JOIN asset_search s ON s.asset_id = d.asset_id");
            }
            let search = if b.uses_search || !ranked.is_empty() {
                " JOIN asset_search s ON s.asset_id = d.asset_id"
            } else {
                ""
            };
            (
                format!("{field_rows}{search} JOIN assets a ON a.id = d.asset_id"),
                count,
            )
        }
        Driver::All => (
            "asset_search s JOIN assets a ON a.id = s.asset_id".to_string(),
            "asset_search s".to_string(),
        ),
    };
    // The page's ids without the rank.
    let ids_base = (!b.uses_asset).then(|| match driver {
        Driver::Words => {
            "asset_search_fts CROSS JOIN asset_search s ON s.rowid = asset_search_fts.rowid"
                .to_string()
        }
        Driver::Tag => "asset_tags d JOIN asset_search s ON s.asset_id = d.asset_id".to_string(),
        Driver::Field if b.uses_search || !ranked.is_empty() => {
            format!("{field_rows} JOIN asset_search s ON s.asset_id = d.asset_id")
        }
        Driver::Field => field_rows.clone(),
        Driver::All => "asset_search s".to_string(),
    });
    // SQLite: the words are matched, and ranked, once per statement, for
    // the candidates the filter lets through only: one pass over the
    // words' doclist (no row read), each rowid checked against those
    // candidates (`+rowid`: a filter, not a full-text lookup per rowid,
    // which would read the doclist again and recount the words' documents
    // for bm25 every time), bm25 computed for the survivors.
    // Materialised, so the full-text cursor is not re-run per row.
    let rows = ids_base.clone().unwrap_or_else(|| from.clone());
    let ctes = match (&words_match, &rank_match) {
        (Some(q), _) => {
            let rank = if *sort == Sort::Relevance {
                "bm25(asset_search_fts)"
            } else {
                "0"
            };
            ranked = " JOIN ranked ON ranked.r = s.rowid".to_string();
            count_from.push_str(&ranked);
            format!(
                "ranked AS MATERIALIZED (SELECT rowid AS r, {rank} AS rank \
                 FROM asset_search_fts WHERE asset_search_fts MATCH {q} AND +rowid IN \
                 (SELECT s.rowid FROM {rows} WHERE {filter}))"
            )
        }
        (None, Some(q)) => format!(
            "ranked AS MATERIALIZED (SELECT rowid AS r, bm25(asset_search_fts) AS rank \
             FROM asset_search_fts WHERE asset_search_fts MATCH {q} AND +rowid IN \
             (SELECT s.rowid FROM {rows} WHERE {filter}))"
        ),
        (None, None) => String::new(),
    };
    from.push_str(&ranked);
    let ids_from = ids_base.map(|ids| format!("{ids}{ranked}"));
    if b.uses_asset {
        // SQLite: in the words' order (CROSS JOIN keeps the join order), not
        // from an index of `assets` that matches far more.
        let join = if driver == Driver::Words {
            "CROSS JOIN"
        } else {
            "JOIN"
        };
        count_from.push_str(&format!(" {join} assets a ON a.id = {id}"));
    }
    let owner = match driver {
        Driver::Tag | Driver::Field => "d.owner",
        _ => "s.owner",
    };
    Compiled {
        ctes,
        from,
        ids_from,
        count_from,
        filter,
        order: format!("{order}{tie}"),
        rank,
        id,
        owner,
        by_owner_number,
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
        compile(&query, &sort, "u1", text, Drive::Default)
    }

    #[test]
    fn every_query_is_filtered_by_read_permission_first() {
        for (q, text) in [
            ("", FullText::TsVector),
            ("a", FullText::TsVector),
            ("tag:x OR -tag:y", FullText::Fts5),
        ] {
            let c = sql(q, text);
            assert!(
                c.filter.starts_with(
                    "s.owner IN (SELECT 'user:' || CAST($1 AS TEXT) UNION ALL \
                     SELECT 'project:' || m.project_id FROM memberships m WHERE m.user_id = $1)"
                ),
                "{q}: {}",
                c.filter
            );
            assert!(matches!(&c.args[0], Arg::Text(Some(u)) if u == "u1"));
            // Counted from the index rows alone, newest first.
            assert_eq!(c.count_from, "asset_search s");
        }
        let c = sql("", FullText::Fts5);
        assert_eq!(c.order, "s.created_at DESC, s.asset_id DESC");
    }

    #[test]
    fn a_tag_drives_with_the_owner_in_its_index_rows() {
        let c = sql("tag:x md.k>=2", FullText::Fts5);
        assert!(c.from.starts_with("asset_tags d JOIN"), "{}", c.from);
        assert!(
            c.filter.starts_with("d.tag = $2 AND d.owner IN (SELECT"),
            "{}",
            c.filter
        );
        // The metadata term is checked per candidate (whose owner the tag's
        // row has given), and the count reads neither `asset_search` nor
        // `assets`.
        assert!(
            c.filter.contains(
                "AND (EXISTS (SELECT 1 FROM asset_fields f WHERE f.asset_id = d.asset_id AND f.path = $3 AND f.num >= $4))"
            ),
            "{}",
            c.filter
        );
        assert_eq!(c.count_from, "asset_tags d");
        assert_eq!((c.id, c.owner), ("d.asset_id", "d.owner"));
        // Newest first is the index's order: (tag, created_at, asset_id, owner).
        assert_eq!(c.order, "d.created_at DESC, d.asset_id DESC");
        // A term on the asset row joins it for the count.
        let c = sql("tag:x updated>=2026-01-01", FullText::TsVector);
        assert_eq!(
            c.count_from,
            "asset_tags d JOIN assets a ON a.id = d.asset_id"
        );
        // The type is looked up per candidate.
        let c = sql("tag:x type:raw_data", FullText::TsVector);
        assert_eq!(c.count_from, "asset_tags d");
    }

    #[test]
    fn a_chosen_metadata_test_drives_from_its_index_rows() {
        let query = parse("type:figure md.run<2000").unwrap();
        let sort = Sort::parse(None, &query).unwrap();
        let c = compile(&query, &sort, "u1", FullText::TsVector, Drive::Term(1));
        assert!(
            c.from.starts_with(
                "(SELECT DISTINCT f.asset_id, f.owner, f.created_at FROM asset_fields f \
                 WHERE f.path = $2 AND f.num < $3 AND f.owner IN (SELECT"
            ),
            "{}",
            c.from
        );
        // Newest first from the index rows, the type on the asset row, no
        // `asset_search` row read.
        assert!(!c.from.contains("asset_search"), "{}", c.from);
        assert_eq!(c.order, "d.created_at DESC, d.asset_id DESC");
        assert_eq!(
            c.filter,
            "1 = 1 AND ((SELECT x.record_type FROM assets x WHERE x.id = d.asset_id) = $4)"
        );
        assert_eq!(c.ids_from.as_deref(), Some(c.count_from.as_str()));
        assert!(matches!(&c.args[1], Arg::Text(Some(p)) if p == "run"));
        assert!(matches!(&c.args[2], Arg::Float(Some(n)) if *n == 2000.0));
        // What may drive: the metadata test (the type cannot).
        let estimates = drive_estimates(&query, &sort, "u1", FullText::TsVector);
        assert_eq!(estimates.len(), 1);
        assert_eq!(estimates[0].0, Drive::Term(1));
        assert!(
            estimates[0]
                .1
                .starts_with("SELECT COUNT(*) FROM (SELECT 1 FROM asset_fields f"),
            "{}",
            estimates[0].1
        );
        // A lone tag and a `!=` keep the fixed rule.
        for (q, text) in [
            ("tag:x type:y", FullText::Fts5),
            ("md.k!=3", FullText::TsVector),
        ] {
            let query = parse(q).unwrap();
            let sort = Sort::parse(None, &query).unwrap();
            assert!(drive_estimates(&query, &sort, "u1", text).is_empty(), "{q}");
        }
    }

    #[test]
    fn a_term_can_drive_sqlite_words_ranked_by_relevance() {
        // The metadata test and the words (the fixed rule) are weighed, up
        // to the larger cap: the words' fixed rule ranks every document
        // that has them.
        let query = parse("scan md.k>=3").unwrap();
        let sort = Sort::parse(None, &query).unwrap();
        assert_eq!(sort, Sort::Relevance);
        let estimates = drive_estimates(&query, &sort, "u1", FullText::Fts5);
        let drives: Vec<Drive> = estimates.iter().map(|e| e.0).collect();
        assert_eq!(drives, [Drive::Term(1), Drive::Default]);
        assert!(
            estimates[0].1.ends_with("LIMIT 20000) x"),
            "{}",
            estimates[0].1
        );
        assert_eq!(
            estimate_cap(&query, &sort, FullText::TsVector),
            ESTIMATE_CAP
        );
        // From the metadata test, the words are matched once against the
        // candidates the rest of the filter passes (not probed per
        // candidate), and ranked (the same MATCH as when the words drive,
        // so the same bm25) for the survivors only.
        let c = compile(&query, &sort, "u1", FullText::Fts5, Drive::Term(1));
        assert!(
            c.from.starts_with("(SELECT DISTINCT f.asset_id"),
            "{}",
            c.from
        );
        assert!(!c.filter.contains("asset_search_fts"), "{}", c.filter);
        assert_eq!(
            c.ctes,
            format!(
                "ranked AS MATERIALIZED (SELECT rowid AS r, bm25(asset_search_fts) AS rank \
                 FROM asset_search_fts WHERE asset_search_fts MATCH $4 AND +rowid IN \
                 (SELECT s.rowid FROM {} JOIN asset_search s ON s.asset_id = d.asset_id WHERE {}))",
                c.count_from.split(" JOIN").next().unwrap(),
                c.filter
            )
        );
        assert!(
            c.from.ends_with(" JOIN ranked ON ranked.r = s.rowid"),
            "{}",
            c.from
        );
        assert!(
            c.count_from.ends_with(" JOIN ranked ON ranked.r = s.rowid"),
            "{}",
            c.count_from
        );
        assert!(matches!(&c.args[3], Arg::Text(Some(q)) if q == "(\"scan\")"));
        assert_eq!(c.order, "ranked.rank, d.asset_id");
        // Sorted otherwise: matched the same way, not ranked.
        let created = Sort::Created { descending: true };
        let c = compile(&query, &created, "u1", FullText::Fts5, Drive::Term(1));
        assert!(
            c.ctes
                .starts_with("ranked AS MATERIALIZED (SELECT rowid AS r, 0 AS rank"),
            "{}",
            c.ctes
        );
        assert_eq!(c.order, "d.created_at DESC, d.asset_id DESC");
    }

    #[test]
    fn required_words_drive_sqlite_from_the_full_text_index() {
        let c = sql("scan \"bright field\" tag:x", FullText::Fts5);
        assert!(
            c.from.starts_with("asset_search_fts CROSS JOIN"),
            "{}",
            c.from
        );
        assert!(
            c.filter
                .starts_with("asset_search_fts MATCH $2 AND s.owner IN (SELECT"),
            "{}",
            c.filter
        );
        assert!(
            matches!(&c.args[1], Arg::Text(Some(q)) if q == "(\"scan\") AND (\"bright field\")")
        );
        assert_eq!(c.order, "bm25(asset_search_fts), s.asset_id");
        // The permission is still inside, and the words are not matched twice.
        assert!(c.filter.contains("memberships"));
        assert_eq!(c.filter.matches("MATCH").count(), 1);
        // Words under OR or NOT cannot drive.
        let c = sql("scan OR tag:x", FullText::Fts5);
        assert!(c.from.starts_with("asset_search s"), "{}", c.from);
    }

    #[test]
    fn or_and_not_keep_their_grouping() {
        let c = sql("tag:a OR NOT (tag:b type:c)", FullText::Fts5);
        assert!(
            c.filter.contains(") OR (NOT COALESCE(((s.asset_id IN"),
            "{}",
            c.filter
        );
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
