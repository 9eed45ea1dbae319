//! The search query language (`docs/search.md`): text in, a checked [`Query`]
//! out, or a [`QueryError`] naming the character position where it went wrong.
//!
//! ```text
//! query   := or?
//! or      := and ("OR" and)*
//! and     := unary (("AND")? unary)*          -- juxtaposition is AND
//! unary   := ("NOT" | "-") unary | primary
//! primary := "(" or ")" | "\"phrase\"" | field op value | word
//! ```
//!
//! Fields: `tag:`, `type:`, `project:`, `collection:`, `within:` (a collection
//! and its descendants), `owner:`, `created`/`updated` with `:`/`=`/`<`/`<=`/
//! `>`/`>=`, `size` with the same, and `md.<key>[.<key>…]` with those plus `!=`
//! and `:*` (exists). A word with `:` whose field is unknown is an error, not
//! free text, so a typo never silently matches nothing.
//!
//! The grammar is small and its errors must point at a character, so it is a
//! hand-written recursive descent over a hand-written tokenizer; limits on
//! length, terms and nesting keep a hostile query cheap.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 4096;
/// Most terms (words, phrases, predicates) in one query.
pub const MAX_TERMS: usize = 64;
/// Deepest nesting of parentheses and `NOT`.
pub const MAX_DEPTH: usize = 16;
/// Longest metadata key path (`md.a.b.c` has three parts).
pub const MAX_KEY_PARTS: usize = 8;

/// A malformed query: what is wrong and where (a 1-based character position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "search query: {} at position {}",
            self.message, self.position
        )
    }
}

impl std::error::Error for QueryError {}

/// A parsed query. `None` inside [`Query::expr`] matches every readable asset.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub expr: Option<Expr>,
}

impl Query {
    /// Every free word and phrase in the query outside a `NOT`, for ranking.
    pub fn ranking_text(&self) -> Vec<&Text> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Text>) {
            match e {
                Expr::And(items) | Expr::Or(items) => items.iter().for_each(|i| walk(i, out)),
                Expr::Not(_) => {}
                Expr::Term(Term::Text(t)) => out.push(t),
                Expr::Term(_) => {}
            }
        }
        let mut out = Vec::new();
        if let Some(e) = &self.expr {
            walk(e, &mut out);
        }
        out
    }
}

/// A boolean combination of terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Term(Term),
}

/// Free text: one word, or a quoted phrase (its words in this order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub words: Vec<String>,
    pub phrase: bool,
}

/// One predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Text(Text),
    Tag(String),
    RecordType(String),
    Project(String),
    /// A collection; `descendants` also matches its sub-collections (`within:`).
    Collection {
        id: String,
        descendants: bool,
    },
    /// `owner:me` is the caller (`None`), otherwise a user id or email.
    Owner(Option<String>),
    Time {
        field: TimeField,
        cmp: Cmp,
        at: DateTime<Utc>,
    },
    Size {
        cmp: Cmp,
        bytes: i64,
    },
    Metadata {
        path: Vec<String>,
        test: MetaTest,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    Created,
    Updated,
}

/// A comparison. `Eq` on a whole day (`created:2026-11-01`) becomes a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// What a metadata predicate checks of the value at its key path.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaTest {
    Exists,
    Compare(Cmp, MetaValue),
}

/// A typed metadata value: numbers compare as numbers, strings as strings.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// How results are ordered (`sort=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sort {
    Relevance,
    Created {
        descending: bool,
    },
    Updated {
        descending: bool,
    },
    Title {
        descending: bool,
    },
    Size {
        descending: bool,
    },
    /// By record type (assets without one last), then newest first.
    RecordType {
        descending: bool,
    },
    Metadata {
        path: Vec<String>,
        descending: bool,
    },
}

impl Sort {
    /// `relevance`, `created`, `-created`, `updated`, `title`, `size`,
    /// `type`, `md.<key>` (a leading `-` sorts descending). No sort: relevance when
    /// the query has free text, newest first otherwise.
    pub fn parse(text: Option<&str>, query: &Query) -> Result<Sort, QueryError> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(if query.ranking_text().is_empty() {
                Sort::Created { descending: true }
            } else {
                Sort::Relevance
            });
        };
        let (descending, key) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        Ok(match key {
            "relevance" if !descending => Sort::Relevance,
            "created" => Sort::Created { descending },
            "updated" => Sort::Updated { descending },
            "title" => Sort::Title { descending },
            "size" => Sort::Size { descending },
            "type" => Sort::RecordType { descending },
            _ if key.starts_with("md.") => Sort::Metadata {
                path: key_path(&key[3..], 1 + usize::from(descending) + 3)?,
                descending,
            },
            _ => {
                return Err(QueryError {
                    position: 1,
                    message: format!(
                        "unknown sort `{text}`; use relevance, created, updated, title, size, \
                         type or md.<key>, with a leading - for descending"
                    ),
                })
            }
        })
    }
}

/// Parse a query (empty or blank text matches everything).
pub fn parse(text: &str) -> Result<Query, QueryError> {
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError {
            position: MAX_QUERY_CHARS + 1,
            message: format!("the query is longer than {MAX_QUERY_CHARS} characters"),
        });
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        terms: 0,
        end: text.chars().count() + 1,
    };
    if parser.tokens.is_empty() {
        return Ok(Query { expr: None });
    }
    let expr = parser.or(0)?;
    if let Some(tok) = parser.peek() {
        return Err(QueryError {
            position: tok.position,
            message: match tok.kind {
                TokenKind::Close => "`)` without a matching `(`".into(),
                _ => format!("unexpected {}", tok.kind.describe()),
            },
        });
    }
    Ok(Query { expr: Some(expr) })
}

// --- tokens ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    Open,
    Close,
    And,
    Or,
    Not,
    /// `-` right before a term.
    Minus,
    Phrase(String),
    Word(String),
    /// `field op value`; `quoted` when the value was in double quotes.
    Field {
        field: String,
        op: Op,
        value: String,
        quoted: bool,
        value_position: usize,
    },
}

impl TokenKind {
    fn describe(&self) -> String {
        match self {
            TokenKind::Open => "`(`".into(),
            TokenKind::Close => "`)`".into(),
            TokenKind::And => "`AND`".into(),
            TokenKind::Or => "`OR`".into(),
            TokenKind::Not => "`NOT`".into(),
            TokenKind::Minus => "`-`".into(),
            TokenKind::Phrase(p) => format!("phrase \"{p}\""),
            TokenKind::Word(w) => format!("`{w}`"),
            TokenKind::Field { field, .. } => format!("`{field}`"),
        }
    }
}

/// The operator between a field and its value, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Colon,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn cmp(self) -> Cmp {
        match self {
            Op::Colon | Op::Eq => Cmp::Eq,
            Op::Ne => Cmp::Ne,
            Op::Lt => Cmp::Lt,
            Op::Le => Cmp::Le,
            Op::Gt => Cmp::Gt,
            Op::Ge => Cmp::Ge,
        }
    }
    fn text(self) -> &'static str {
        match self {
            Op::Colon => ":",
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    kind: TokenKind,
    /// 1-based character position of its first character.
    position: usize,
}

fn is_field_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.' || c == '-'
}

fn ends_word(c: char) -> bool {
    c.is_whitespace() || c == '(' || c == ')'
}

fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let kind = match c {
            '(' => {
                i += 1;
                TokenKind::Open
            }
            ')' => {
                i += 1;
                TokenKind::Close
            }
            '"' => {
                let (s, next) = quoted(&chars, i)?;
                i = next;
                TokenKind::Phrase(s)
            }
            '-' if chars
                .get(i + 1)
                .is_some_and(|n| !ends_word(*n) && *n != '-') =>
            {
                i += 1;
                TokenKind::Minus
            }
            _ => {
                let (kind, next) = word_or_field(&chars, i)?;
                i = next;
                kind
            }
        };
        tokens.push(Token { kind, position });
    }
    Ok(tokens)
}

/// A double-quoted string starting at `chars[start] == '"'`; `\"` and `\\`
/// escape. Returns the text and the index after the closing quote.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let mut s = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((s, i + 1)),
            '\\' if matches!(chars.get(i + 1), Some('"' | '\\')) => {
                s.push(chars[i + 1]);
                i += 2;
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    Err(QueryError {
        position: start + 1,
        message: "a `\"` that is never closed".into(),
    })
}

fn word_or_field(chars: &[char], start: usize) -> Result<(TokenKind, usize), QueryError> {
    // A field name, then an operator?
    let mut i = start;
    while i < chars.len() && is_field_char(chars[i]) {
        i += 1;
    }
    let op = if i > start {
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match (chars.get(i), two.as_str()) {
            (_, ">=") => Some((Op::Ge, 2)),
            (_, "<=") => Some((Op::Le, 2)),
            (_, "!=") => Some((Op::Ne, 2)),
            (Some(':'), _) => Some((Op::Colon, 1)),
            (Some('='), _) => Some((Op::Eq, 1)),
            (Some('<'), _) => Some((Op::Lt, 1)),
            (Some('>'), _) => Some((Op::Gt, 1)),
            _ => None,
        }
    } else {
        None
    };
    if let Some((op, len)) = op {
        let field: String = chars[start..i].iter().collect();
        let value_start = i + len;
        let (value, quoted_value, next) = if chars.get(value_start) == Some(&'"') {
            let (v, next) = quoted(chars, value_start)?;
            (v, true, next)
        } else {
            let mut j = value_start;
            while j < chars.len() && !ends_word(chars[j]) {
                j += 1;
            }
            (chars[value_start..j].iter().collect(), false, j)
        };
        if value.is_empty() && !quoted_value {
            return Err(QueryError {
                position: value_start + 1,
                message: format!("`{field}{}` needs a value", op.text()),
            });
        }
        return Ok((
            TokenKind::Field {
                field,
                op,
                value,
                quoted: quoted_value,
                value_position: value_start + 1,
            },
            next,
        ));
    }
    let mut j = start;
    while j < chars.len() && !ends_word(chars[j]) {
        j += 1;
    }
    let word: String = chars[start..j].iter().collect();
    let kind = match word.as_str() {
        "AND" => TokenKind::And,
        "OR" => TokenKind::Or,
        "NOT" => TokenKind::Not,
        _ => {
            if let Some(k) = word.find([':', '=', '<', '>']) {
                return Err(QueryError {
                    position: start + 1 + word[..k].chars().count(),
                    message: format!(
                        "`{}` is not a search field; fields: tag, type, project, collection, \
                         within, owner, created, updated, size, md.<key> (quote text that \
                         contains `{}`)",
                        &word[..k],
                        &word[k..=k]
                    ),
                });
            }
            TokenKind::Word(word)
        }
    };
    Ok((kind, j))
}

// --- parser -----------------------------------------------------------------

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    terms: usize,
    /// The position just past the text, for "ends too early" errors.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn err<T>(&self, position: usize, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError {
            position,
            message: message.into(),
        })
    }

    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.and(depth)?];
        while self.peek().is_some_and(|t| t.kind == TokenKind::Or) {
            let at = self.tokens[self.next].position;
            self.next += 1;
            if self.starts_operand().is_none() {
                return self.err(at, "`OR` needs a term on both sides");
            }
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    /// The next token if it can start an operand.
    fn starts_operand(&self) -> Option<&Token> {
        self.peek()
            .filter(|t| !matches!(t.kind, TokenKind::Or | TokenKind::And | TokenKind::Close))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut items = vec![self.unary(depth)?];
        loop {
            match self.peek().map(|t| (&t.kind, t.position)) {
                Some((TokenKind::And, at)) => {
                    self.next += 1;
                    if self.starts_operand().is_none() {
                        return self.err(at, "`AND` needs a term on both sides");
                    }
                }
                Some((TokenKind::Or | TokenKind::Close, _)) | None => break,
                Some(_) => {}
            }
            items.push(self.unary(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let Some(tok) = self.peek().cloned() else {
            return self.err(self.end, "the query ends where a term was expected");
        };
        if depth >= MAX_DEPTH {
            return self.err(
                tok.position,
                format!("nested more than {MAX_DEPTH} levels deep"),
            );
        }
        match tok.kind {
            TokenKind::Not | TokenKind::Minus => {
                self.next += 1;
                if self.starts_operand().is_none() {
                    return self.err(tok.position, "nothing to negate");
                }
                Ok(Expr::Not(Box::new(self.unary(depth + 1)?)))
            }
            TokenKind::Open => {
                self.next += 1;
                if self.peek().is_some_and(|t| t.kind == TokenKind::Close) {
                    return self.err(tok.position, "empty parentheses");
                }
                let inner = self.or(depth + 1)?;
                match self.peek() {
                    Some(t) if t.kind == TokenKind::Close => {
                        self.next += 1;
                        Ok(inner)
                    }
                    _ => self.err(tok.position, "`(` is never closed"),
                }
            }
            TokenKind::Close => self.err(tok.position, "`)` without a matching `(`"),
            TokenKind::And | TokenKind::Or => self.err(
                tok.position,
                format!("{} needs a term before it", tok.kind.describe()),
            ),
            TokenKind::Phrase(p) => {
                self.next += 1;
                self.count(tok.position)?;
                let words = text_words(&p);
                if words.is_empty() {
                    return self.err(tok.position, "an empty phrase");
                }
                Ok(Expr::Term(Term::Text(Text {
                    words,
                    phrase: true,
                })))
            }
            TokenKind::Word(w) => {
                self.next += 1;
                self.count(tok.position)?;
                let words = text_words(&w);
                if words.is_empty() {
                    return self.err(tok.position, format!("`{w}` has no letters or digits"));
                }
                // `foo-bar` searches the words in order, like a phrase.
                let phrase = words.len() > 1;
                Ok(Expr::Term(Term::Text(Text { words, phrase })))
            }
            TokenKind::Field {
                field,
                op,
                value,
                quoted,
                value_position,
            } => {
                self.next += 1;
                self.count(tok.position)?;
                field_expr(&field, op, value, quoted, tok.position, value_position)
            }
        }
    }

    fn count(&mut self, position: usize) -> Result<(), QueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return self.err(position, format!("more than {MAX_TERMS} terms"));
        }
        Ok(())
    }
}

/// The words of free text as the full-text index sees them: runs of letters
/// and digits, lower-cased.
pub fn text_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A `field op value` token as an expression: one term, or for a whole day
/// (`created:2026-11-01`) the two bounds of that day.
fn field_expr(
    field: &str,
    op: Op,
    value: String,
    quoted: bool,
    position: usize,
    value_position: usize,
) -> Result<Expr, QueryError> {
    if field == "created" || field == "updated" {
        if op == Op::Ne {
            return Err(QueryError {
                position: position + field.len(),
                message: format!("`{field}` takes :, =, <, <=, > or >="),
            });
        }
        let field = if field == "created" {
            TimeField::Created
        } else {
            TimeField::Updated
        };
        let mut bounds: Vec<Expr> = time_bounds(&value, op.cmp(), value_position)?
            .into_iter()
            .map(|(cmp, at)| Expr::Term(Term::Time { field, cmp, at }))
            .collect();
        return Ok(if bounds.len() == 1 {
            bounds.remove(0)
        } else {
            Expr::And(bounds)
        });
    }
    field_term(field, op, value, quoted, position, value_position).map(Expr::Term)
}

fn field_term(
    field: &str,
    op: Op,
    value: String,
    quoted: bool,
    position: usize,
    value_position: usize,
) -> Result<Term, QueryError> {
    let err = |position: usize, message: String| Err(QueryError { position, message });
    let equality_only = |name: &str| -> Result<(), QueryError> {
        if op == Op::Colon || op == Op::Eq {
            Ok(())
        } else {
            Err(QueryError {
                position: position + name.chars().count(),
                message: format!(
                    "`{name}` takes `:` (as in `{name}:value`), not `{}`",
                    op.text()
                ),
            })
        }
    };
    let bounded = |what: &str, value: String, max: usize| -> Result<String, QueryError> {
        if value.is_empty() || value.chars().count() > max {
            Err(QueryError {
                position: value_position,
                message: format!("{what} must be 1 to {max} characters"),
            })
        } else {
            Ok(value)
        }
    };
    match field {
        "tag" => {
            equality_only(field)?;
            Ok(Term::Tag(bounded("a tag", value, 256)?))
        }
        "type" => {
            equality_only(field)?;
            Ok(Term::RecordType(bounded("a record type", value, 64)?))
        }
        "project" => {
            equality_only(field)?;
            Ok(Term::Project(bounded("a project id", value, 256)?))
        }
        "collection" | "within" => {
            equality_only(field)?;
            Ok(Term::Collection {
                id: bounded("a collection id", value, 256)?,
                descendants: field == "within",
            })
        }
        "owner" => {
            equality_only(field)?;
            let value = bounded("an owner", value, 320)?;
            Ok(Term::Owner((value != "me").then_some(value)))
        }
        "size" => {
            if op == Op::Ne {
                return err(position + 4, "`size` takes :, =, <, <=, > or >=".into());
            }
            Ok(Term::Size {
                cmp: op.cmp(),
                bytes: size_value(&value, value_position)?,
            })
        }
        _ if field.starts_with("md.") => {
            let path = key_path(&field[3..], position + 3)?;
            if op == Op::Colon && value == "*" && !quoted {
                return Ok(Term::Metadata {
                    path,
                    test: MetaTest::Exists,
                });
            }
            let value = if quoted {
                MetaValue::Text(value)
            } else if value == "true" || value == "false" {
                MetaValue::Bool(value == "true")
            } else if let Some(n) = value.parse::<f64>().ok().filter(|n| n.is_finite()) {
                MetaValue::Number(n)
            } else {
                MetaValue::Text(value)
            };
            if matches!(value, MetaValue::Bool(_)) && !matches!(op, Op::Colon | Op::Eq | Op::Ne) {
                return err(
                    value_position,
                    "true and false compare only with :, = or !=".into(),
                );
            }
            Ok(Term::Metadata {
                path,
                test: MetaTest::Compare(op.cmp(), value),
            })
        }
        _ => err(
            position,
            format!(
                "`{field}` is not a search field; fields: tag, type, project, collection, within, \
                 owner, created, updated, size, md.<key>"
            ),
        ),
    }
}

/// `a.b.c` → `["a", "b", "c"]`: non-empty parts, at most [`MAX_KEY_PARTS`].
fn key_path(text: &str, position: usize) -> Result<Vec<String>, QueryError> {
    let parts: Vec<String> = text.split('.').map(str::to_owned).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(QueryError {
            position,
            message: format!("`md.{text}` has an empty key; write md.<key>[.<key>…]"),
        });
    }
    if parts.len() > MAX_KEY_PARTS {
        return Err(QueryError {
            position,
            message: format!("a metadata key path has at most {MAX_KEY_PARTS} parts"),
        });
    }
    Ok(parts)
}

/// A date (`2026-11-01`, a whole UTC day) or an RFC 3339 time, as one or
/// two bounds: `:`/`=` on a day means "during that day" (`>=` its start and
/// `<` the next), `>` a day means from the next day on, `<=` a day includes it.
fn time_bounds(
    value: &str,
    cmp: Cmp,
    position: usize,
) -> Result<Vec<(Cmp, DateTime<Utc>)>, QueryError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(vec![(cmp, t.with_timezone(&Utc))]);
    }
    let start = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    let Some(start) = start else {
        return Err(QueryError {
            position,
            message: format!("`{value}` is not a date; write 2026-11-01 or 2026-11-01T12:00:00Z"),
        });
    };
    let next = start + chrono::Duration::days(1);
    Ok(match cmp {
        Cmp::Eq => vec![(Cmp::Ge, start), (Cmp::Lt, next)],
        Cmp::Gt => vec![(Cmp::Ge, next)],
        Cmp::Le => vec![(Cmp::Lt, next)],
        other => vec![(other, start)],
    })
}

/// `1GB`, `1.5GiB`, `200k`, `4096`: decimal units (k, KB, MB, GB, TB = powers
/// of 1000) and binary ones (KiB, MiB, GiB, TiB = powers of 1024).
fn size_value(value: &str, position: usize) -> Result<i64, QueryError> {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let factor: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(QueryError {
                position: position + split,
                message: format!(
                    "`{unit}` is not a size unit; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
                ),
            })
        }
    };
    let n: f64 = number.parse().map_err(|_| QueryError {
        position,
        message: format!("`{value}` is not a size; write e.g. 500MB or 1.5GiB"),
    })?;
    let bytes = n * factor;
    if !(0.0..=9.0e18).contains(&bytes) {
        return Err(QueryError {
            position,
            message: format!("`{value}` is out of range"),
        });
    }
    // Checked above: finite, non-negative and below i64::MAX.
    #[allow(clippy::cast_possible_truncation)]
    Ok(bytes.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(q: &str) -> Term {
        match parse(q).unwrap().expr.unwrap() {
            Expr::Term(t) => t,
            other => panic!("{q}: not one term: {other:?}"),
        }
    }

    fn error(q: &str) -> QueryError {
        parse(q).expect_err(q)
    }

    fn word(w: &str) -> Expr {
        Expr::Term(Term::Text(Text {
            words: vec![w.into()],
            phrase: false,
        }))
    }

    #[test]
    fn blank_queries_match_everything() {
        assert_eq!(parse("").unwrap().expr, None);
        assert_eq!(parse("   \t").unwrap().expr, None);
    }

    #[test]
    fn words_are_anded_and_or_binds_looser() {
        assert_eq!(
            parse("a b OR c").unwrap().expr.unwrap(),
            Expr::Or(vec![Expr::And(vec![word("a"), word("b")]), word("c")])
        );
        assert_eq!(
            parse("a AND (b OR c)").unwrap().expr.unwrap(),
            Expr::And(vec![word("a"), Expr::Or(vec![word("b"), word("c")])])
        );
        assert_eq!(
            parse("-a NOT b").unwrap().expr.unwrap(),
            Expr::And(vec![
                Expr::Not(Box::new(word("a"))),
                Expr::Not(Box::new(word("b")))
            ])
        );
    }

    #[test]
    fn phrases_and_words_are_lowercased_runs_of_letters_and_digits() {
        assert_eq!(
            term("\"Bright Field\""),
            Term::Text(Text {
                words: vec!["bright".into(), "field".into()],
                phrase: true
            })
        );
        assert_eq!(
            term("SrRuO3-film"),
            Term::Text(Text {
                words: vec!["srruo3".into(), "film".into()],
                phrase: true
            })
        );
        assert_eq!(
            term(r#""say \"hi\"""#),
            Term::Text(Text {
                words: vec!["say".into(), "hi".into()],
                phrase: true
            })
        );
    }

    #[test]
    fn fields() {
        assert_eq!(term("tag:calibrated"), Term::Tag("calibrated".into()));
        assert_eq!(term("tag:\"two words\""), Term::Tag("two words".into()));
        assert_eq!(term("type:raw_data"), Term::RecordType("raw_data".into()));
        assert_eq!(term("project:p1"), Term::Project("p1".into()));
        assert_eq!(
            term("within:c1"),
            Term::Collection {
                id: "c1".into(),
                descendants: true
            }
        );
        assert_eq!(term("owner:me"), Term::Owner(None));
        assert_eq!(term("owner:u@x.org"), Term::Owner(Some("u@x.org".into())));
        assert_eq!(
            term("size>1GB"),
            Term::Size {
                cmp: Cmp::Gt,
                bytes: 1_000_000_000
            }
        );
        assert_eq!(
            term("size<=1.5KiB"),
            Term::Size {
                cmp: Cmp::Le,
                bytes: 1536
            }
        );
        assert_eq!(
            term("size:0"),
            Term::Size {
                cmp: Cmp::Eq,
                bytes: 0
            }
        );
    }

    #[test]
    fn dates_are_whole_utc_days_or_times() {
        let day = |s: &str| -> DateTime<Utc> {
            DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
        };
        assert_eq!(
            term("created>=2026-11-01"),
            Term::Time {
                field: TimeField::Created,
                cmp: Cmp::Ge,
                at: day("2026-11-01T00:00:00Z")
            }
        );
        // After a day starts at the next one; up to a day includes it.
        assert_eq!(
            term("updated>2026-11-01"),
            Term::Time {
                field: TimeField::Updated,
                cmp: Cmp::Ge,
                at: day("2026-11-02T00:00:00Z")
            }
        );
        assert_eq!(
            term("created<=2026-11-01"),
            Term::Time {
                field: TimeField::Created,
                cmp: Cmp::Lt,
                at: day("2026-11-02T00:00:00Z")
            }
        );
        assert_eq!(
            term("created<2026-11-01T12:30:00+02:00"),
            Term::Time {
                field: TimeField::Created,
                cmp: Cmp::Lt,
                at: day("2026-11-01T10:30:00Z")
            }
        );
        // On a day: from its start to the next one's.
        assert_eq!(
            parse("created:2026-11-01").unwrap().expr.unwrap(),
            Expr::And(vec![
                Expr::Term(Term::Time {
                    field: TimeField::Created,
                    cmp: Cmp::Ge,
                    at: day("2026-11-01T00:00:00Z")
                }),
                Expr::Term(Term::Time {
                    field: TimeField::Created,
                    cmp: Cmp::Lt,
                    at: day("2026-11-02T00:00:00Z")
                }),
            ])
        );
    }

    #[test]
    fn metadata_values_are_typed() {
        let md = |q: &str| match term(q) {
            Term::Metadata { path, test } => (path.join("."), test),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            md("md.voltage_kv>=200"),
            (
                "voltage_kv".into(),
                MetaTest::Compare(Cmp::Ge, MetaValue::Number(200.0))
            )
        );
        assert_eq!(
            md("md.sample.name=\"SrRuO3\""),
            (
                "sample.name".into(),
                MetaTest::Compare(Cmp::Eq, MetaValue::Text("SrRuO3".into()))
            )
        );
        // Quoted digits stay text; bare ones are numbers.
        assert_eq!(
            md("md.run=\"007\""),
            (
                "run".into(),
                MetaTest::Compare(Cmp::Eq, MetaValue::Text("007".into()))
            )
        );
        assert_eq!(
            md("md.run:7"),
            (
                "run".into(),
                MetaTest::Compare(Cmp::Eq, MetaValue::Number(7.0))
            )
        );
        assert_eq!(
            md("md.ok!=true"),
            (
                "ok".into(),
                MetaTest::Compare(Cmp::Ne, MetaValue::Bool(true))
            )
        );
        assert_eq!(
            md("md.detector.mode:*"),
            ("detector.mode".into(), MetaTest::Exists)
        );
        assert_eq!(
            md("md.mode:\"*\""),
            (
                "mode".into(),
                MetaTest::Compare(Cmp::Eq, MetaValue::Text("*".into()))
            )
        );
    }

    #[test]
    fn errors_name_the_position() {
        let cases: &[(&str, usize, &str)] = &[
            ("a (b", 3, "never closed"),
            ("a b)", 4, "without a matching"),
            ("colour:red", 1, "not a search field"),
            ("x foo=1", 3, "not a search field"),
            ("\"open", 1, "never closed"),
            ("a OR", 3, "both sides"),
            ("OR a", 1, "needs a term before"),
            ("size>1XB", 7, "not a size unit"),
            ("created>=yesterday", 10, "not a date"),
            ("tag>=x", 4, "takes `:`"),
            ("md..x:1", 4, "empty key"),
            ("md.x>true", 6, "compare only"),
            ("tag:", 5, "needs a value"),
            ("()", 1, "empty parentheses"),
            ("NOT", 1, "nothing to negate"),
            ("- a", 1, "no letters"),
        ];
        for (q, position, message) in cases {
            let e = error(q);
            assert_eq!(e.position, *position, "{q}: {e}");
            assert!(e.message.contains(message), "{q}: {e}");
        }
    }

    #[test]
    fn hostile_queries_are_bounded() {
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(error(&deep).message.contains("nested"));
        let many = "a ".repeat(MAX_TERMS + 1);
        assert!(error(&many).message.contains("terms"));
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert!(error(&long).message.contains("longer"));
        let nots = "NOT ".repeat(100) + "a";
        assert!(error(&nots).message.contains("nested"));
    }

    #[test]
    fn sorts() {
        let q = parse("x").unwrap();
        let all = parse("").unwrap();
        assert_eq!(Sort::parse(None, &q).unwrap(), Sort::Relevance);
        assert_eq!(
            Sort::parse(None, &all).unwrap(),
            Sort::Created { descending: true }
        );
        assert_eq!(
            Sort::parse(Some("-created"), &q).unwrap(),
            Sort::Created { descending: true }
        );
        assert_eq!(
            Sort::parse(Some("md.sample.temp"), &q).unwrap(),
            Sort::Metadata {
                path: vec!["sample".into(), "temp".into()],
                descending: false
            }
        );
        assert!(Sort::parse(Some("colour"), &q).is_err());
        assert!(Sort::parse(Some("-relevance"), &q).is_err());
    }
}
