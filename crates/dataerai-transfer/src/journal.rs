//! The transfer journal: one SQLite file (`$DATAERAI_STATE_DIR/journal.db`) that
//! records every transfer, its plan (the engine's `spec`), and every chunk that
//! is durably done (uploads: acknowledged by the server; downloads: written and
//! fsynced into the partial file). It is what makes transfers survive a
//! `kill -9`: on start the daemon reads it back and continues where it stopped.
//!
//! Several daemons of one user (different sockets) may share the file; each
//! one sees only the transfers started on its own socket (`owner`), so one never
//! resumes or controls another's work. The CLI's in-process transfers use a
//! private in-memory journal.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use dataerai_proto::names::UnknownName;
use dataerai_proto::{ApiError, ErrorCode};
use futures::future::{BoxFuture, FutureExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, QueryBuilder, Row, Sqlite, SqlitePool};
use tokio::sync::oneshot;

/// A statement with its bound values.
type Statement<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// File name of the journal inside the state directory.
pub const JOURNAL_FILE: &str = "journal.db";
/// Rows per multi-row statement (a transfer row binds 19 values; SQLite
/// takes up to 32,766 per statement).
const ROWS_PER_STATEMENT: usize = 100;
/// The journal connection's page cache (SQLite's `cache_size`, in KiB).
const JOURNAL_CACHE_KIB: u32 = 16 * 1024;
/// Finished transfers are forgotten after this long.
const KEEP_FINISHED_DAYS: i64 = 7;

/// The schema, one migration per version, in order: migration `n` (1-based)
/// takes a journal from `PRAGMA user_version` `n - 1` to `n`. Append only:
/// journals live on users' machines and are upgraded in place when a newer
/// `dataerai` opens them, so a released migration never changes.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_transfers.sql"),
    include_str!("../migrations/0002_idempotency_keys.sql"),
    include_str!("../migrations/0003_upload_starts.sql"),
    include_str!("../migrations/0004_single_uploads.sql"),
];

/// A transfer's `state`: the strings of the IPC contract (`docs/ipc.md`),
/// stored as the same text in `journal.db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferState {
    Queued,
    Running,
    Retrying,
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl TransferState {
    /// Every state, in declaration order.
    pub const ALL: [TransferState; 7] = [
        TransferState::Queued,
        TransferState::Running,
        TransferState::Retrying,
        TransferState::Paused,
        TransferState::Completed,
        TransferState::Failed,
        TransferState::Cancelled,
    ];
    /// The wire strings, in the order of [`TransferState::ALL`].
    const NAMES: [&'static str; 7] = [
        "queued",
        "running",
        "retrying",
        "paused",
        "completed",
        "failed",
        "cancelled",
    ];

    /// The wire string.
    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// States a daemon start picks up again automatically.
    pub fn is_unfinished(self) -> bool {
        matches!(
            self,
            TransferState::Queued | TransferState::Running | TransferState::Retrying
        )
    }

    /// Nothing runs any more (only a resumable failure may be resumed).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TransferState::Completed | TransferState::Failed | TransferState::Cancelled
        )
    }
}

/// A transfer's `kind`, as on the IPC wire and in `journal.db`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferKind {
    Upload,
    Download,
}

impl TransferKind {
    /// Every kind, in declaration order.
    pub const ALL: [TransferKind; 2] = [TransferKind::Upload, TransferKind::Download];
    /// The wire strings, in the order of [`TransferKind::ALL`].
    const NAMES: [&'static str; 2] = ["upload", "download"];

    /// The wire string.
    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// The value of `all` whose name (in `names`, same order) is `text`.
fn from_name<T: Copy>(
    what: &'static str,
    all: &[T],
    names: &'static [&'static str],
    text: &str,
) -> Result<T, UnknownName> {
    names
        .iter()
        .position(|n| *n == text)
        .map(|i| all[i])
        .ok_or_else(|| UnknownName {
            what,
            expected: names,
            got: text.to_string(),
        })
}

impl FromStr for TransferState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        from_name("transfer state", &Self::ALL, &Self::NAMES, s)
    }
}

impl FromStr for TransferKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        from_name("transfer kind", &Self::ALL, &Self::NAMES, s)
    }
}

impl fmt::Display for TransferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for TransferKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// `{"code", "message"}` as in `transfer.failed` and the Transfer object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
}

impl From<&ApiError> for ErrorInfo {
    fn from(e: &ApiError) -> Self {
        ErrorInfo {
            code: e.code,
            message: e.message.clone(),
        }
    }
}

/// One row of `transfers`: the Transfer object of `docs/ipc.md` plus the engine's plan.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    pub transfer_id: String,
    pub owner: String,
    pub kind: TransferKind,
    pub state: TransferState,
    pub asset_id: String,
    pub content_id: Option<String>,
    pub local_path: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub chunk_count: u64,
    pub file_count: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub attempt: u32,
    pub last_error: Option<ErrorInfo>,
    pub result: Option<Value>,
    pub error: Option<ErrorInfo>,
    pub batch_id: Option<String>,
    /// Engine plan (`transfer::upload::UploadSpec` / `transfer::download::DownloadSpec`).
    pub spec: Value,
}

/// What a new transfer's row starts with; [`TransferRecord::new`] adds the rest.
pub struct NewTransfer {
    pub kind: TransferKind,
    pub asset_id: String,
    pub content_id: Option<String>,
    pub local_path: String,
    pub bytes_total: u64,
    pub chunk_count: u64,
    pub file_count: u64,
    pub batch_id: Option<String>,
    pub spec: Value,
    /// The `result` of a transfer that finished while it was prepared (a
    /// lone small upload, sent in one request): journaled `completed`.
    pub completed: Option<Value>,
}

impl TransferRecord {
    /// A new transfer of `owner`: a fresh id, `queued`, nothing done yet.
    pub fn new(owner: &str, t: NewTransfer) -> TransferRecord {
        let now = Utc::now();
        let transfer_id = uuid::Uuid::new_v4().to_string();
        let (state, bytes_done, result) = match t.completed {
            Some(mut result) => {
                result["transfer_id"] = json!(transfer_id);
                (TransferState::Completed, t.bytes_total, Some(result))
            }
            None => (TransferState::Queued, 0, None),
        };
        TransferRecord {
            transfer_id,
            owner: owner.to_string(),
            kind: t.kind,
            state,
            asset_id: t.asset_id,
            content_id: t.content_id,
            local_path: t.local_path,
            bytes_done,
            bytes_total: t.bytes_total,
            chunk_count: t.chunk_count,
            file_count: t.file_count,
            created_at: now,
            updated_at: now,
            attempt: 0,
            last_error: None,
            result,
            error: None,
            batch_id: t.batch_id,
            spec: t.spec,
        }
    }

    /// The Transfer object sent to clients (the spec stays inside the daemon).
    pub fn to_json(&self) -> Value {
        json!({
            "transfer_id": self.transfer_id,
            "kind": self.kind,
            "state": self.state,
            "asset_id": self.asset_id,
            "content_id": self.content_id,
            "local_path": self.local_path,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "chunk_count": self.chunk_count,
            "file_count": self.file_count,
            "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at),
            "attempt": self.attempt,
            "last_error": self.last_error,
            "result": self.result,
            "error": self.error,
        })
    }
}

/// An upload being started, or one whose start was given up and still holds
/// something on the server (see `migrations/0003_upload_starts.sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStart {
    pub start_id: String,
    /// The asset, once known.
    pub asset_id: Option<String>,
    /// The start created `asset_id` (so a clean-up deletes it).
    pub created_asset: bool,
    /// The open session, once known.
    pub upload_id: Option<String>,
}

/// Cheap to clone (a connection pool).
#[derive(Clone)]
pub struct Journal {
    pool: SqlitePool,
    /// Runs that begin and state changes, written many transfers at a time.
    grouped: Arc<Grouped>,
}

/// Most transfers one grouped statement writes.
const GROUPED_ROWS: usize = ROWS_PER_STATEMENT;

/// The calls that write one transfer's row each and come many at once when
/// many small files are uploaded ([`Journal::begin_run`],
/// [`Journal::set_state`]): while one statement runs, the calls that come
/// meanwhile queue, and the next statement writes them all — one trip to the
/// connection's thread and one commit for many transfers instead of one each.
/// Every call still returns only once its own row is committed.
#[derive(Default)]
struct Grouped {
    runs: Queue<RunBegins>,
    states: Queue<StateChange>,
}

/// Calls waiting for a grouped statement, and whether a writer takes them.
struct Queue<T> {
    state: std::sync::Mutex<(Vec<T>, bool)>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            state: std::sync::Mutex::new((Vec::new(), false)),
        }
    }
}

/// A call of a [`Grouped`] queue: the transfer whose row it writes.
trait Grouping: Send + 'static {
    fn transfer_id(&self) -> &str;
}

impl Grouping for RunBegins {
    fn transfer_id(&self) -> &str {
        &self.transfer_id
    }
}

impl Grouping for StateChange {
    fn transfer_id(&self) -> &str {
        &self.transfer_id
    }
}

impl<T: Grouping> Queue<T> {
    /// Queue `call`; answers whether the caller must start the writer.
    fn push(&self, call: T) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.0.push(call);
        !std::mem::replace(&mut st.1, true)
    }

    /// The next calls to write together: at most [`GROUPED_ROWS`], and never
    /// two of one transfer (those go in order, one statement after the
    /// other). Empty when none waits, and then the writer stops.
    fn next(&self) -> Vec<T> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = std::collections::HashSet::new();
        let n =
            st.0.iter()
                .take(GROUPED_ROWS)
                .take_while(|c| seen.insert(c.transfer_id().to_string()))
                .count();
        if n == 0 {
            st.1 = false;
        }
        st.0.drain(..n).collect()
    }
}

/// A [`Journal::begin_run`] call waiting for its statement.
struct RunBegins {
    owner: String,
    transfer_id: String,
    reply: oneshot::Sender<Result<Option<TransferRecord>, ApiError>>,
}

/// A [`Journal::set_state`] call waiting for its statement.
struct StateChange {
    transfer_id: String,
    state: TransferState,
    attempt: i64,
    last_error: Option<String>,
    error: Option<String>,
    result: Option<String>,
    reply: oneshot::Sender<Result<(), ApiError>>,
}

/// The answer of a grouped call whose writer went away (it never does
/// unless the runtime shuts down).
fn writer_gone<T>(_: oneshot::error::RecvError) -> Result<T, ApiError> {
    Err(ApiError::internal(
        "transfer journal: the grouped writer stopped",
    ))
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn db_error(e: sqlx::Error) -> ApiError {
    ApiError::internal(format!("transfer journal: {e}"))
}

fn to_text<T: Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref()
        .map(|v| serde_json::to_string(v).expect("journal values serialise"))
}

/// A JSON column's value. A damaged one is read as absent (the transfer stays
/// visible and can still be cancelled) and logged, never silently.
/// A column holding a count, size or index: never negative in a journal this
/// code wrote; a damaged value is logged and read as 0.
fn unsigned<T, I>(row: &SqliteRow, column: I) -> T
where
    T: TryFrom<i64> + Default,
    I: sqlx::ColumnIndex<SqliteRow> + std::fmt::Debug + Copy,
{
    let v: i64 = row.get(column);
    T::try_from(v).unwrap_or_else(|_| {
        tracing::warn!("transfer journal: column {column:?} holds {v}, not a count");
        T::default()
    })
}

fn from_text<T: serde::de::DeserializeOwned>(column: &str, s: Option<String>) -> Option<T> {
    let text = s?;
    match serde_json::from_str(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(
                "transfer journal: column {column} holds damaged JSON ({e}); ignoring it"
            );
            None
        }
    }
}

/// The state directory: `$DATAERAI_STATE_DIR`, else `$XDG_STATE_HOME/dataerai`,
/// else `~/.local/state/dataerai`.
pub fn default_state_dir() -> PathBuf {
    let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    if let Some(d) = env("DATAERAI_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = env("XDG_STATE_HOME") {
        return PathBuf::from(d).join("dataerai");
    }
    PathBuf::from(env("HOME").unwrap_or_else(|| "/".into())).join(".local/state/dataerai")
}

impl Journal {
    /// Open (creating if needed) `dir/journal.db`; `dir` is made 0700.
    pub async fn open(dir: &Path) -> Result<Journal, ApiError> {
        dataerai_client::paths::ensure_private_dir(dir).map_err(|e| {
            ApiError::internal(format!(
                "cannot create state directory {}: {e}",
                dir.display()
            ))
        })?;
        let options = SqliteConnectOptions::new()
            .filename(dir.join(JOURNAL_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL survives a process crash (what `kill -9` is); a power cut may
            // lose the last rows, which only means re-sending a chunk.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            // Transfer ids are random, so a batch's rows are all over the
            // file: a page cache of 2 MiB (SQLite's default) held a few
            // thousand transfers and re-read the rest from the OS on every
            // lookup (6 % of the daemon's CPU in `upload_many` of 1,000
            // small files, docs/performance.md).
            .pragma("cache_size", format!("-{JOURNAL_CACHE_KIB}"));
        // Create the file, switch it to WAL and bring the schema up to date on
        // a single connection first: pool connections racing to switch a
        // brand-new file to WAL can fail at once with "database is locked",
        // which the busy timeout does not cover.
        let mut first: SqliteConnection = options.connect().await.map_err(db_error)?;
        migrate(&mut first, MIGRATIONS).await.map_err(|e| {
            ApiError::new(
                e.code,
                format!("{} ({})", e.message, dir.join(JOURNAL_FILE).display()),
            )
        })?;
        first.close().await.map_err(db_error)?;
        // One connection: every statement is short, and concurrent writers on
        // several connections would wait in SQLite's sleeping busy handler
        // (many parallel small uploads spent most of their time there).
        Self::with_options(options, 1).await
    }

    /// A private journal that lives as long as the process (CLI transfers).
    pub async fn in_memory() -> Result<Journal, ApiError> {
        let options = SqliteConnectOptions::new().in_memory(true);
        // One connection: every connection to `:memory:` is its own database.
        Self::with_options(options, 1).await
    }

    async fn with_options(options: SqliteConnectOptions, conns: u32) -> Result<Journal, ApiError> {
        let pool = SqlitePoolOptions::new()
            .max_connections(conns)
            .min_connections(1)
            // Never drop the only connection of an in-memory database.
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        // A file journal is up to date already (see `open`): this only reads
        // its version. An in-memory one gets its schema here.
        let mut conn = pool.acquire().await.map_err(db_error)?;
        migrate(&mut conn, MIGRATIONS).await?;
        drop(conn);
        let j = Journal {
            pool,
            grouped: Arc::default(),
        };
        j.forget_old().await?;
        Ok(j)
    }

    async fn forget_old(&self) -> Result<(), ApiError> {
        let cutoff = ts(Utc::now() - chrono::Duration::days(KEEP_FINISHED_DAYS));
        let old = format!(
            "SELECT transfer_id FROM transfers WHERE state IN ({}) AND updated_at < ?",
            states_where(TransferState::is_final)
        );
        for table in ["chunks", "done_files", "idempotency_keys", "transfers"] {
            let statement = format!("DELETE FROM {table} WHERE transfer_id IN ({old})");
            self.execute(sqlx::query(&statement).bind(&cutoff)).await?;
        }
        Ok(())
    }

    /// Run one statement that answers no rows.
    async fn execute(&self, statement: Statement<'_>) -> Result<(), ApiError> {
        statement.execute(&self.pool).await.map_err(db_error)?;
        Ok(())
    }

    /// Run statements in one transaction (a lone statement needs none: it is
    /// one already, and `BEGIN` and `COMMIT` would cost two more round trips
    /// to the connection's thread).
    async fn execute_together(
        &self,
        mut statements: Vec<QueryBuilder<'_, Sqlite>>,
    ) -> Result<(), ApiError> {
        if let [one] = statements.as_mut_slice() {
            return self.execute(one.build()).await;
        }
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for q in &mut statements {
            q.build().execute(&mut *tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Run one query and answer its rows.
    async fn rows(&self, query: Statement<'_>) -> Result<Vec<SqliteRow>, ApiError> {
        query.fetch_all(&self.pool).await.map_err(db_error)
    }

    /// Journal a new transfer. An upload's start row (see [`UploadStart`])
    /// goes in the same transaction: from now on the transfer owns its session.
    pub async fn insert(&self, r: &TransferRecord) -> Result<(), ApiError> {
        self.insert_many(std::slice::from_ref(r)).await
    }

    /// Journal new transfers as [`Journal::insert`] does, all in one
    /// transaction (one commit for a whole `upload_many` batch) and a few
    /// multi-row statements.
    pub async fn insert_many(&self, records: &[TransferRecord]) -> Result<(), ApiError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for rows in records.chunks(ROWS_PER_STATEMENT) {
            insert_in(&mut tx, rows).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// Note that `owner` is about to start an upload (before the server hears
    /// of it): into `asset_id` when that exists already, else a new asset.
    pub async fn begin_upload_start(
        &self,
        owner: &str,
        start_id: &str,
        asset_id: Option<&str>,
    ) -> Result<(), ApiError> {
        self.begin_upload_starts(
            owner,
            &[(start_id.to_string(), asset_id.map(str::to_string))],
        )
        .await
    }

    /// Note that `owner` is about to send the lone small file at `local_path`
    /// in one request keyed `start_id` (see `small::upload_single`), into
    /// `asset_id` when that exists already, else a new asset. A retry of the
    /// same start (same key, after an answer that never came) takes the row
    /// back from the clean-up: the retry's answer settles it.
    pub async fn begin_single_upload(
        &self,
        owner: &str,
        start_id: &str,
        asset_id: Option<&str>,
        local_path: &str,
    ) -> Result<(), ApiError> {
        self.execute(
            sqlx::query(
                "INSERT INTO upload_starts
                   (start_id, owner, asset_id, created_asset, single_path, created_at)
                 VALUES (?,?,?,?,?,?)
                 ON CONFLICT (start_id) DO UPDATE SET owner = excluded.owner, abandoned = 0",
            )
            .bind(start_id)
            .bind(owner)
            .bind(asset_id)
            .bind(asset_id.is_none())
            .bind(local_path)
            .bind(ts(Utc::now())),
        )
        .await
    }

    /// The abandoned single uploads of `owner` (`(start_id, local_path)`),
    /// oldest first: the server may or may not have made them.
    pub async fn abandoned_single_uploads(
        &self,
        owner: &str,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let q = sqlx::query(
            "SELECT start_id, single_path FROM upload_starts
             WHERE owner = ? AND abandoned = 1 AND single_path IS NOT NULL ORDER BY created_at",
        );
        let rows = self.rows(q.bind(owner)).await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("start_id"), r.get("single_path")))
            .collect())
    }

    /// Journal the clean-up of an upload that was given up after it started
    /// (cancelled) and whose clean-up could not reach the server.
    pub async fn add_abandoned_upload_start(
        &self,
        owner: &str,
        start: &UploadStart,
    ) -> Result<(), ApiError> {
        self.execute(
            sqlx::query(
                "INSERT OR REPLACE INTO upload_starts
                   (start_id, owner, asset_id, created_asset, upload_id, abandoned, created_at)
                 VALUES (?,?,?,?,?,1,?)",
            )
            .bind(&start.start_id)
            .bind(owner)
            .bind(&start.asset_id)
            .bind(start.created_asset)
            .bind(&start.upload_id)
            .bind(ts(Utc::now())),
        )
        .await
    }

    /// Note that `owner` is about to start these uploads, as
    /// [`Journal::begin_upload_start`] does for one, in one transaction:
    /// `(start_id, asset_id)` each.
    pub async fn begin_upload_starts(
        &self,
        owner: &str,
        starts: &[(String, Option<String>)],
    ) -> Result<(), ApiError> {
        let at = ts(Utc::now());
        let statements = starts.chunks(ROWS_PER_STATEMENT).map(|rows| {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO upload_starts (start_id, owner, asset_id, created_asset, created_at) ",
            );
            q.push_values(rows, |mut row, (start_id, asset_id)| {
                row.push_bind(start_id)
                    .push_bind(owner)
                    .push_bind(asset_id)
                    .push_bind(asset_id.is_none())
                    .push_bind(at.clone());
            });
            q
        });
        self.execute_together(statements.collect()).await
    }

    /// Record the asset and the session each of many starts made
    /// (`(start_id, asset_id, upload_id)`), in one transaction and a few
    /// statements.
    pub async fn set_start_sessions(
        &self,
        sessions: &[(String, String, String)],
    ) -> Result<(), ApiError> {
        let statements = sessions.chunks(ROWS_PER_STATEMENT).map(|rows| {
            let mut q =
                QueryBuilder::<Sqlite>::new("WITH made (start_id, asset_id, upload_id) AS (");
            q.push_values(rows, |mut row, (start_id, asset_id, upload_id)| {
                row.push_bind(start_id)
                    .push_bind(asset_id)
                    .push_bind(upload_id);
            });
            q.push(
                ") UPDATE upload_starts SET asset_id = made.asset_id, upload_id = made.upload_id
                 FROM made WHERE upload_starts.start_id = made.start_id",
            );
            q
        });
        self.execute_together(statements.collect()).await
    }

    /// Record the asset a start created.
    pub async fn set_start_asset(&self, start_id: &str, asset_id: &str) -> Result<(), ApiError> {
        let q = sqlx::query("UPDATE upload_starts SET asset_id = ? WHERE start_id = ?");
        self.execute(q.bind(asset_id).bind(start_id)).await
    }

    /// Record the session a start opened (replacing a probe session it aborted).
    pub async fn set_start_upload(&self, start_id: &str, upload_id: &str) -> Result<(), ApiError> {
        let q = sqlx::query("UPDATE upload_starts SET upload_id = ? WHERE start_id = ?");
        self.execute(q.bind(upload_id).bind(start_id)).await
    }

    /// Forget a start: it was cleaned up, or its transfer is journaled.
    pub async fn end_upload_start(&self, start_id: &str) -> Result<(), ApiError> {
        let q = sqlx::query("DELETE FROM upload_starts WHERE start_id = ?");
        self.execute(q.bind(start_id)).await
    }

    /// Give a start up: it only waits to be cleaned up now.
    pub async fn abandon_upload_start(&self, start_id: &str) -> Result<(), ApiError> {
        let q = sqlx::query("UPDATE upload_starts SET abandoned = 1 WHERE start_id = ?");
        self.execute(q.bind(start_id)).await
    }

    /// Give up every start of `owner` (at start-up: they belong to a
    /// daemon that died).
    pub async fn abandon_upload_starts(&self, owner: &str) -> Result<(), ApiError> {
        let q = sqlx::query("UPDATE upload_starts SET abandoned = 1 WHERE owner = ?");
        self.execute(q.bind(owner)).await
    }

    /// The abandoned starts of `owner`, oldest first.
    pub async fn abandoned_upload_starts(&self, owner: &str) -> Result<Vec<UploadStart>, ApiError> {
        let q = sqlx::query(
            "SELECT start_id, asset_id, created_asset, upload_id FROM upload_starts
             WHERE owner = ? AND abandoned = 1 AND single_path IS NULL ORDER BY created_at",
        );
        let rows = self.rows(q.bind(owner)).await?;
        Ok(rows
            .iter()
            .map(|r| UploadStart {
                start_id: r.get("start_id"),
                asset_id: r.get("asset_id"),
                created_asset: r.get::<bool, _>("created_asset"),
                upload_id: r.get("upload_id"),
            })
            .collect())
    }

    /// The transfer `owner` started with idempotency key `key`, if any.
    pub async fn keyed(&self, owner: &str, key: &str) -> Result<Option<String>, ApiError> {
        let rows = self
            .rows(
                sqlx::query(
                    "SELECT transfer_id FROM idempotency_keys WHERE owner = ? AND idempotency_key = ?",
                )
                .bind(owner)
                .bind(key),
            )
            .await?;
        rows.first()
            .map(|r| r.try_get::<String, _>("transfer_id").map_err(db_error))
            .transpose()
    }

    /// Remember that `key` of `owner` names `transfer_id` (replacing a
    /// transfer it named before, which was given up).
    pub async fn set_key(&self, owner: &str, key: &str, transfer_id: &str) -> Result<(), ApiError> {
        self.execute(
            sqlx::query(
                "INSERT OR REPLACE INTO idempotency_keys (owner, idempotency_key, transfer_id)
                 VALUES (?,?,?)",
            )
            .bind(owner)
            .bind(key)
            .bind(transfer_id),
        )
        .await
    }

    pub async fn get(&self, owner: &str, id: &str) -> Result<TransferRecord, ApiError> {
        let rows = self
            .rows(
                sqlx::query("SELECT * FROM transfers WHERE transfer_id = ? AND owner = ?")
                    .bind(id)
                    .bind(owner),
            )
            .await?;
        match rows.first() {
            Some(row) => record(row),
            None => Err(ApiError::not_found(format!("transfer {id}"))),
        }
    }

    /// Every transfer of `owner`, oldest first.
    /// The owner's transfers, oldest first. A row that cannot be read (an
    /// unknown state written by a newer `dataerai`, say) is left out with a
    /// warning naming it, so one bad row does not hide or stall the others.
    pub async fn list(&self, owner: &str) -> Result<Vec<TransferRecord>, ApiError> {
        let query =
            sqlx::query("SELECT * FROM transfers WHERE owner = ? ORDER BY created_at, rowid");
        let rows = self.rows(query.bind(owner)).await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                record(row)
                    .inspect_err(|e| tracing::warn!("transfer journal: skipped: {}", e.message))
                    .ok()
            })
            .collect())
    }

    /// Start the writer of a [`Grouped`] queue (`queue` picks it): it
    /// writes what waits there with `write`, group after group, until
    /// nothing does.
    fn start_writer<T: Grouping>(
        &self,
        queue: fn(&Grouped) -> &Queue<T>,
        write: for<'a> fn(&'a Journal, Vec<T>) -> BoxFuture<'a, ()>,
    ) {
        let j = self.clone();
        tokio::spawn(async move {
            loop {
                let calls = queue(&j.grouped).next();
                if calls.is_empty() {
                    return;
                }
                write(&j, calls).await;
            }
        });
    }

    /// A run of transfer `id` of `owner` begins: when it is unfinished
    /// (queued, running or retrying), journal it `running` (attempt 0, no
    /// error) and answer it as it is now; `None` when it is anything else
    /// (paused or cancelled meanwhile) or unknown. Runs that begin at the
    /// same time are written together (see [`Grouped`]).
    pub async fn begin_run(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<TransferRecord>, ApiError> {
        let (reply, answer) = oneshot::channel();
        let call = RunBegins {
            owner: owner.to_string(),
            transfer_id: id.to_string(),
            reply,
        };
        if self.grouped.runs.push(call) {
            self.start_writer(|g| &g.runs, |j, calls| j.begin_runs(calls).boxed());
        }
        answer.await.unwrap_or_else(writer_gone)
    }

    /// [`Journal::begin_run`] for many transfers: one statement per owner.
    async fn begin_runs(&self, mut calls: Vec<RunBegins>) {
        calls.sort_by(|a, b| a.owner.cmp(&b.owner));
        while !calls.is_empty() {
            let owner = calls[0].owner.clone();
            let rest = calls.iter().position(|c| c.owner != owner);
            let later = calls.split_off(rest.unwrap_or(calls.len()));
            let mut q = QueryBuilder::<Sqlite>::new("UPDATE transfers SET state = ");
            q.push_bind(TransferState::Running.as_str());
            q.push(", attempt = 0, last_error = NULL, error = NULL, result = NULL, updated_at = ");
            q.push_bind(ts(Utc::now()));
            q.push(" WHERE owner = ");
            q.push_bind(owner);
            q.push(format!(
                " AND state IN ({}) AND transfer_id IN (",
                states_where(TransferState::is_unfinished)
            ));
            let mut ids = q.separated(", ");
            for c in &calls {
                ids.push_bind(c.transfer_id.clone());
            }
            q.push(") RETURNING *");
            let mut found: std::collections::HashMap<String, Result<TransferRecord, ApiError>> =
                Default::default();
            let outcome = self.rows(q.build()).await.map(|rows| {
                for row in &rows {
                    let id: String = row.get("transfer_id");
                    found.insert(id, record(row));
                }
            });
            for c in calls {
                let answer = match &outcome {
                    Ok(()) => found.remove(&c.transfer_id).transpose(),
                    Err(e) => Err(e.clone()),
                };
                // A caller that stopped waiting needs no answer.
                let _ = c.reply.send(answer);
            }
            calls = later;
        }
    }

    /// Change the state; `attempt`, `last_error`, `error` and `result` are
    /// set as given. Changes of many transfers at the same time are written
    /// together (see [`Grouped`]).
    pub async fn set_state(
        &self,
        id: &str,
        state: TransferState,
        attempt: u32,
        last_error: Option<&ErrorInfo>,
        error: Option<&ErrorInfo>,
        result: Option<&Value>,
    ) -> Result<(), ApiError> {
        let (reply, answer) = oneshot::channel();
        let call = StateChange {
            transfer_id: id.to_string(),
            state,
            attempt: attempt as i64,
            last_error: last_error.map(|e| serde_json::to_string(e).expect("serialises")),
            error: error.map(|e| serde_json::to_string(e).expect("serialises")),
            result: result.map(Value::to_string),
            reply,
        };
        if self.grouped.states.push(call) {
            self.start_writer(|g| &g.states, |j, calls| j.set_states(calls).boxed());
        }
        answer.await.unwrap_or_else(writer_gone)
    }

    /// [`Journal::set_state`] for many transfers (each at most once), in one
    /// statement.
    async fn set_states(&self, calls: Vec<StateChange>) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "WITH change (transfer_id, state, attempt, last_error, error, result) AS (",
        );
        q.push_values(&calls, |mut row, c| {
            row.push_bind(c.transfer_id.clone())
                .push_bind(c.state.as_str())
                .push_bind(c.attempt)
                .push_bind(c.last_error.clone())
                .push_bind(c.error.clone())
                .push_bind(c.result.clone());
        });
        q.push(
            ") UPDATE transfers SET state = change.state, attempt = change.attempt,
               last_error = change.last_error, error = change.error, result = change.result,
               bytes_done = CASE WHEN change.state = ",
        );
        q.push_bind(TransferState::Completed.as_str());
        q.push(" THEN bytes_total ELSE bytes_done END, updated_at = ");
        q.push_bind(ts(Utc::now()));
        q.push(" FROM change WHERE transfers.transfer_id = change.transfer_id");
        let outcome = self.execute(q.build()).await;
        for c in calls {
            // A caller that stopped waiting needs no answer.
            let _ = c.reply.send(outcome.clone());
        }
    }

    pub async fn set_spec(&self, id: &str, spec: &Value) -> Result<(), ApiError> {
        let statement = sqlx::query("UPDATE transfers SET spec = ? WHERE transfer_id = ?");
        self.execute(statement.bind(spec.to_string()).bind(id))
            .await
    }

    pub async fn set_bytes_done(&self, id: &str, bytes_done: u64) -> Result<(), ApiError> {
        let statement = sqlx::query(
            "UPDATE transfers SET bytes_done = ?, updated_at = ? WHERE transfer_id = ?",
        );
        self.execute(
            statement
                .bind(bytes_done as i64)
                .bind(ts(Utc::now()))
                .bind(id),
        )
        .await
    }

    /// Record a chunk as durably done.
    pub async fn add_chunk(
        &self,
        id: &str,
        file_index: u32,
        chunk_index: u64,
        len: u64,
    ) -> Result<(), ApiError> {
        let statement = sqlx::query(
            "INSERT OR REPLACE INTO chunks (transfer_id, file_index, chunk_index, len) VALUES (?,?,?,?)",
        );
        self.execute(
            statement
                .bind(id)
                .bind(file_index as i64)
                .bind(chunk_index as i64)
                .bind(len as i64),
        )
        .await
    }

    /// `(file_index, chunk_index, len)` of every chunk recorded for the transfer.
    pub async fn chunks(&self, id: &str) -> Result<Vec<(u32, u64, u64)>, ApiError> {
        let query =
            sqlx::query("SELECT file_index, chunk_index, len FROM chunks WHERE transfer_id = ?");
        let rows = self.rows(query.bind(id)).await?;
        Ok(rows
            .iter()
            .map(|r| (unsigned(r, 0), unsigned(r, 1), unsigned(r, 2)))
            .collect())
    }

    /// Forget the chunks of one file (its partial data is gone or bad).
    pub async fn clear_file(&self, id: &str, file_index: u32) -> Result<(), ApiError> {
        for table in ["chunks", "done_files"] {
            let statement = format!("DELETE FROM {table} WHERE transfer_id = ? AND file_index = ?");
            self.execute(sqlx::query(&statement).bind(id).bind(file_index as i64))
                .await?;
        }
        Ok(())
    }

    pub async fn mark_file_done(&self, id: &str, file_index: u32) -> Result<(), ApiError> {
        let statement =
            sqlx::query("INSERT OR IGNORE INTO done_files (transfer_id, file_index) VALUES (?,?)");
        self.execute(statement.bind(id).bind(file_index as i64))
            .await
    }

    pub async fn done_files(&self, id: &str) -> Result<Vec<u32>, ApiError> {
        let query = sqlx::query("SELECT file_index FROM done_files WHERE transfer_id = ?");
        let rows = self.rows(query.bind(id)).await?;
        Ok(rows.iter().map(|r| unsigned(r, 0)).collect())
    }
}

/// The key of a single upload's spec naming its start row (and its key on
/// the server), which journaling the transfer drops.
pub const SINGLE_START: &str = "single_start_id";

/// Drop the start rows whose `column` (`upload_id` or `start_id`) is one of
/// `ids`, in one statement.
async fn delete_starts(
    conn: &mut SqliteConnection,
    column: &'static str,
    ids: &[&str],
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut q =
        QueryBuilder::<Sqlite>::new(format!("DELETE FROM upload_starts WHERE {column} IN ("));
    let mut each = q.separated(",");
    for id in ids {
        each.push_bind(*id);
    }
    q.push(")");
    q.build().execute(&mut *conn).await?;
    Ok(())
}

/// Insert transfer rows on `conn` in one statement, and drop the start rows
/// of their uploads (at most [`ROWS_PER_STATEMENT`]).
async fn insert_in(conn: &mut SqliteConnection, rs: &[TransferRecord]) -> Result<(), sqlx::Error> {
    // A single upload's start row never learns its session: it is dropped
    // by its start id alone.
    let sessions: Vec<&str> = rs
        .iter()
        .filter(|r| r.kind == TransferKind::Upload && r.spec.get(SINGLE_START).is_none())
        .filter_map(|r| r.spec.get("upload_id").and_then(Value::as_str))
        .collect();
    delete_starts(conn, "upload_id", &sessions).await?;
    // Single uploads name their start row (their key) in the spec.
    let singles: Vec<&str> = rs
        .iter()
        .filter_map(|r| r.spec.get(SINGLE_START).and_then(Value::as_str))
        .collect();
    delete_starts(conn, "start_id", &singles).await?;
    let mut q = QueryBuilder::<Sqlite>::new(
        "INSERT INTO transfers (transfer_id, owner, kind, state, asset_id, content_id, local_path,
           bytes_done, bytes_total, chunk_count, file_count, created_at, updated_at, attempt,
           last_error, result, error, batch_id, spec) ",
    );
    q.push_values(rs, |mut row, r| {
        row.push_bind(&r.transfer_id)
            .push_bind(&r.owner)
            .push_bind(r.kind.as_str())
            .push_bind(r.state.as_str())
            .push_bind(&r.asset_id)
            .push_bind(&r.content_id)
            .push_bind(&r.local_path)
            .push_bind(r.bytes_done as i64)
            .push_bind(r.bytes_total as i64)
            .push_bind(r.chunk_count as i64)
            .push_bind(r.file_count as i64)
            .push_bind(ts(r.created_at))
            .push_bind(ts(r.updated_at))
            .push_bind(r.attempt as i64)
            .push_bind(to_text(&r.last_error))
            .push_bind(to_text(&r.result))
            .push_bind(to_text(&r.error))
            .push_bind(&r.batch_id)
            .push_bind(r.spec.to_string());
    });
    q.build().execute(&mut *conn).await?;
    Ok(())
}

/// The schema version of the journal on `conn` (`PRAGMA user_version`).
async fn schema_version(conn: &mut SqliteConnection) -> Result<u32, sqlx::Error> {
    let v: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// Bring the journal on `conn` up to `migrations.len()`, applying the missing
/// migrations in order, and answer the version it is at now.
///
/// Everything runs in one `BEGIN IMMEDIATE` transaction: several daemons of
/// one user may open the same file at once, and the first to take the write
/// lock migrates while the others wait and then find nothing left to do. A
/// failed migration leaves the file as it was. A journal newer than this
/// program (a downgrade) is refused rather than misread.
async fn migrate(conn: &mut SqliteConnection, migrations: &[&str]) -> Result<u32, ApiError> {
    let latest = migrations.len() as u32;
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
    let result = async {
        let found = schema_version(conn).await.map_err(db_error)?;
        if found > latest {
            return Err(ApiError::internal(format!(
                "transfer journal: schema version {found} was written by a newer dataerai \
                 (this one knows up to {latest}); upgrade dataerai or move journal.db aside"
            )));
        }
        for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
            let version = i as u32 + 1;
            sqlx::raw_sql(sql).execute(&mut *conn).await.map_err(|e| {
                ApiError::internal(format!(
                    "transfer journal: migration to schema version {version} failed: {e}"
                ))
            })?;
            // PRAGMA takes no bound parameters; `version` is our own number.
            sqlx::raw_sql(&format!("PRAGMA user_version = {version}"))
                .execute(&mut *conn)
                .await
                .map_err(db_error)?;
            tracing::info!("transfer journal: migrated to schema version {version}");
        }
        Ok(latest)
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    if let Err(e) = sqlx::raw_sql(end).execute(&mut *conn).await {
        if result.is_ok() {
            return Err(db_error(e));
        }
        tracing::warn!("transfer journal: {end} after a failed migration failed too: {e}");
    }
    result
}

/// A closed-set column (`kind`, `state`) of a `transfers` row. A value this
/// program does not know (a damaged journal) is an error naming the transfer
/// and the value, not a guess.
fn named<T: FromStr<Err = UnknownName>>(row: &SqliteRow, column: &str) -> Result<T, ApiError> {
    row.get::<String, _>(column).parse().map_err(|e| {
        ApiError::internal(format!(
            "transfer journal: transfer {}: {e}",
            row.get::<String, _>("transfer_id")
        ))
    })
}

fn record(row: &SqliteRow) -> Result<TransferRecord, ApiError> {
    let time = |name: &str| {
        let text = row.get::<String, _>(name);
        match DateTime::parse_from_rfc3339(&text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                tracing::warn!("transfer journal: column {name} holds {text:?}, not a time ({e})");
                DateTime::default()
            }
        }
    };
    Ok(TransferRecord {
        transfer_id: row.get("transfer_id"),
        owner: row.get("owner"),
        kind: named(row, "kind")?,
        state: named(row, "state")?,
        asset_id: row.get("asset_id"),
        content_id: row.get("content_id"),
        local_path: row.get("local_path"),
        bytes_done: unsigned(row, "bytes_done"),
        bytes_total: unsigned(row, "bytes_total"),
        chunk_count: unsigned(row, "chunk_count"),
        file_count: unsigned(row, "file_count"),
        created_at: time("created_at"),
        updated_at: time("updated_at"),
        attempt: unsigned(row, "attempt"),
        last_error: from_text("last_error", row.get("last_error")),
        result: from_text("result", row.get("result")),
        error: from_text("error", row.get("error")),
        batch_id: row.get("batch_id"),
        spec: from_text("spec", Some(row.get("spec"))).unwrap_or(Value::Null),
    })
}

/// The states for which `keep` holds, as an SQL list of strings (`'a','b'`).
fn states_where(keep: impl Fn(TransferState) -> bool) -> String {
    TransferState::ALL
        .iter()
        .filter(|s| keep(**s))
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start ids `owner` left without a journaled transfer, sorted.
    async fn abandoned_start_ids(j: &Journal, owner: &str) -> Vec<String> {
        let mut ids: Vec<String> = j
            .abandoned_upload_starts(owner)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.start_id)
            .collect();
        ids.sort();
        ids
    }

    fn sample(id: &str, owner: &str) -> TransferRecord {
        let mut r = TransferRecord::new(
            owner,
            NewTransfer {
                kind: TransferKind::Upload,
                asset_id: "a".into(),
                content_id: None,
                local_path: "/x".into(),
                bytes_total: 10,
                chunk_count: 2,
                file_count: 1,
                batch_id: None,
                spec: json!({"k": 1}),
                completed: None,
            },
        );
        r.transfer_id = id.into();
        r.state = TransferState::Running;
        r
    }

    /// A retried single upload (same key, after an answer that never came)
    /// takes its start row back from the clean-up, whichever daemon left it.
    #[tokio::test]
    async fn a_retried_single_upload_takes_its_start_back() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("state")).await.unwrap();
        j.begin_single_upload("d1", "k", None, "/f").await.unwrap();
        j.abandon_upload_start("k").await.unwrap();
        assert_eq!(
            j.abandoned_single_uploads("d1").await.unwrap(),
            vec![("k".to_string(), "/f".to_string())]
        );
        j.begin_single_upload("d2", "k", None, "/f").await.unwrap();
        assert!(j.abandoned_single_uploads("d1").await.unwrap().is_empty());
        assert!(j.abandoned_single_uploads("d2").await.unwrap().is_empty());
        j.abandon_upload_starts("d2").await.unwrap();
        assert_eq!(j.abandoned_single_uploads("d2").await.unwrap().len(), 1);
    }

    /// A batch of small uploads is journaled with one commit per step, and
    /// all or nothing: a batch with a bad row leaves none of its rows.
    #[tokio::test]
    async fn batches_are_journaled_in_one_transaction() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("state")).await.unwrap();
        let starts: Vec<(String, Option<String>)> = (0..3)
            .map(|i| (format!("s{i}"), (i == 2).then(|| "existing".to_string())))
            .collect();
        j.begin_upload_starts("sock", &starts).await.unwrap();
        let made = [("s0", "asset-0", "up-0"), ("s1", "asset-1", "up-1")]
            .map(|(s, a, u)| (s.to_string(), a.to_string(), u.to_string()));
        j.set_start_sessions(&made).await.unwrap();
        j.abandon_upload_starts("sock").await.unwrap();
        let rows = j.abandoned_upload_starts("sock").await.unwrap();
        assert_eq!(rows.len(), 3);
        let s0 = rows.iter().find(|r| r.start_id == "s0").unwrap();
        assert_eq!(
            (
                s0.asset_id.as_deref(),
                s0.upload_id.as_deref(),
                s0.created_asset
            ),
            (Some("asset-0"), Some("up-0"), true)
        );
        let s2 = rows.iter().find(|r| r.start_id == "s2").unwrap();
        assert_eq!(
            (s2.asset_id.as_deref(), s2.created_asset),
            (Some("existing"), false)
        );

        // Journaling the transfers drops the start rows of their sessions.
        let mut records: Vec<TransferRecord> =
            (0..3).map(|i| sample(&format!("t{i}"), "sock")).collect();
        records[0].spec = json!({"upload_id": "up-0"});
        j.insert_many(&records).await.unwrap();
        assert_eq!(j.list("sock").await.unwrap().len(), 3);
        assert_eq!(abandoned_start_ids(&j, "sock").await, ["s1", "s2"]);

        // A repeated id fails the whole batch: nothing of it is journaled.
        let again = vec![sample("t3", "sock"), sample("t0", "sock")];
        assert!(j.insert_many(&again).await.is_err());
        assert!(j.get("sock", "t3").await.is_err());
        assert_eq!(j.list("sock").await.unwrap().len(), 3);
    }

    /// A run begins only on an unfinished transfer, which is journaled
    /// running and answered as it is now; a paused, finished or unknown one
    /// (or another owner's) is left as it was.
    #[tokio::test]
    async fn a_run_begins_only_on_an_unfinished_transfer() {
        let j = Journal::in_memory().await.unwrap();
        let mut queued = sample("q", "sock");
        queued.state = TransferState::Queued;
        let mut paused = sample("p", "sock");
        paused.state = TransferState::Paused;
        j.insert_many(&[queued, paused]).await.unwrap();
        j.set_state("q", TransferState::Retrying, 3, None, None, None)
            .await
            .unwrap();

        let run = j.begin_run("sock", "q").await.unwrap().unwrap();
        assert_eq!((run.state, run.attempt), (TransferState::Running, 0));
        assert_eq!(
            j.get("sock", "q").await.unwrap().state,
            TransferState::Running
        );
        assert!(j.begin_run("sock", "p").await.unwrap().is_none());
        assert_eq!(
            j.get("sock", "p").await.unwrap().state,
            TransferState::Paused
        );
        assert!(j.begin_run("other", "q").await.unwrap().is_none());
        assert!(j.begin_run("sock", "nope").await.unwrap().is_none());
    }

    /// Runs that begin and states that change at the same time, for more
    /// transfers than one grouped statement takes, each get their own
    /// answer: a run begins only on an unfinished transfer of its owner,
    /// and every transfer ends in the state it was given (completed ones
    /// with all their bytes done), two changes of one transfer in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_and_states_of_many_transfers_are_written_together() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("state")).await.unwrap();
        let n = 2 * GROUPED_ROWS + 7;
        let records: Vec<TransferRecord> = (0..n)
            .map(|i| {
                let mut r = sample(&format!("t{i}"), "sock");
                r.state = if i % 10 == 3 {
                    TransferState::Paused
                } else {
                    TransferState::Queued
                };
                r
            })
            .collect();
        j.insert_many(&records).await.unwrap();

        let begun = futures::future::join_all((0..n).map(|i| {
            let j = j.clone();
            tokio::spawn(async move { j.begin_run("sock", &format!("t{i}")).await })
        }))
        .await;
        for (i, b) in begun.into_iter().enumerate() {
            let b = b.unwrap().unwrap();
            if i % 10 == 3 {
                assert!(b.is_none(), "t{i} is paused");
            } else {
                let rec = b.unwrap_or_else(|| panic!("t{i} begins"));
                assert_eq!(
                    (rec.transfer_id, rec.state),
                    (format!("t{i}"), TransferState::Running)
                );
            }
        }
        assert!(j.begin_run("other", "t0").await.unwrap().is_none());

        let error = ErrorInfo::from(&ApiError::invalid("no"));
        let changed = futures::future::join_all((0..n).map(|i| {
            let (j, error) = (j.clone(), error.clone());
            tokio::spawn(async move {
                let id = format!("t{i}");
                match i % 3 {
                    0 => {
                        let result = json!({"n": i});
                        j.set_state(&id, TransferState::Completed, 0, None, None, Some(&result))
                            .await
                    }
                    1 => {
                        j.set_state(
                            &id,
                            TransferState::Failed,
                            2,
                            Some(&error),
                            Some(&error),
                            None,
                        )
                        .await
                    }
                    _ => {
                        // Two changes of one transfer, one after the other.
                        j.set_state(&id, TransferState::Retrying, 1, None, None, None)
                            .await?;
                        j.set_state(&id, TransferState::Paused, 0, None, None, None)
                            .await
                    }
                }
            })
        }))
        .await;
        for c in changed {
            c.unwrap().unwrap();
        }
        for i in 0..n {
            let rec = j.get("sock", &format!("t{i}")).await.unwrap();
            match i % 3 {
                0 => {
                    assert_eq!(rec.state, TransferState::Completed);
                    assert_eq!(rec.bytes_done, rec.bytes_total);
                    assert_eq!(rec.result, Some(json!({"n": i})));
                }
                1 => {
                    assert_eq!((rec.state, rec.attempt), (TransferState::Failed, 2));
                    assert_eq!(rec.bytes_done, 0);
                    assert_eq!(rec.error.map(|e| e.message), Some(error.message.clone()));
                }
                _ => assert_eq!(rec.state, TransferState::Paused),
            }
        }
    }

    /// Batches bigger than one multi-row statement are journaled whole:
    /// every start, every session, every transfer, and every start row of
    /// a journaled transfer's session dropped.
    #[tokio::test]
    async fn batches_of_several_statements_are_journaled_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::open(&tmp.path().join("state")).await.unwrap();
        let n = 2 * ROWS_PER_STATEMENT + 7;
        let starts: Vec<(String, Option<String>)> =
            (0..n).map(|i| (format!("s{i}"), None)).collect();
        j.begin_upload_starts("sock", &starts).await.unwrap();
        let made: Vec<(String, String, String)> = (0..n)
            .map(|i| (format!("s{i}"), format!("a{i}"), format!("up{i}")))
            .collect();
        j.set_start_sessions(&made).await.unwrap();
        j.abandon_upload_starts("sock").await.unwrap();
        let rows = j.abandoned_upload_starts("sock").await.unwrap();
        assert_eq!(rows.len(), n);
        for r in &rows {
            let i = &r.start_id[1..];
            assert_eq!(r.asset_id.as_deref(), Some(format!("a{i}").as_str()));
            assert_eq!(r.upload_id.as_deref(), Some(format!("up{i}").as_str()));
        }

        // All but the last start's transfers.
        let records: Vec<TransferRecord> = (0..n - 1)
            .map(|i| {
                let mut r = sample(&format!("t{i}"), "sock");
                r.spec = json!({"upload_id": format!("up{i}")});
                r
            })
            .collect();
        j.insert_many(&records).await.unwrap();
        assert_eq!(j.list("sock").await.unwrap().len(), n - 1);
        assert_eq!(
            abandoned_start_ids(&j, "sock").await,
            [format!("s{}", n - 1)]
        );
    }

    #[tokio::test]
    async fn records_survive_reopen_and_are_private_per_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        {
            let j = Journal::open(&dir).await.unwrap();
            j.insert(&sample("t1", "sockA")).await.unwrap();
            j.insert(&sample("t2", "sockB")).await.unwrap();
            j.add_chunk("t1", 0, 1, 5).await.unwrap();
            j.add_chunk("t1", 0, 1, 5).await.unwrap(); // idempotent
            j.set_state("t1", TransferState::Paused, 2, None, None, None)
                .await
                .unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let j = Journal::open(&dir).await.unwrap();
        let a = j.list("sockA").await.unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].state, TransferState::Paused);
        assert_eq!(a[0].attempt, 2);
        assert_eq!(a[0].spec["k"], 1);
        assert_eq!(j.chunks("t1").await.unwrap(), vec![(0, 1, 5)]);
        assert_eq!(
            j.get("sockB", "t1").await.unwrap_err().code,
            ErrorCode::NotFound
        );
        j.clear_file("t1", 0).await.unwrap();
        assert!(j.chunks("t1").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn idempotency_keys_survive_reopen_per_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        {
            let j = Journal::open(&dir).await.unwrap();
            j.insert(&sample("t1", "sock-a")).await.unwrap();
            j.set_key("sock-a", "run-1", "t1").await.unwrap();
        }
        let j = Journal::open(&dir).await.unwrap();
        assert_eq!(
            j.keyed("sock-a", "run-1").await.unwrap().as_deref(),
            Some("t1")
        );
        assert_eq!(j.keyed("sock-b", "run-1").await.unwrap(), None);
        assert_eq!(j.keyed("sock-a", "run-2").await.unwrap(), None);
        // A key given up with its transfer names the new one.
        j.set_key("sock-a", "run-1", "t2").await.unwrap();
        assert_eq!(
            j.keyed("sock-a", "run-1").await.unwrap().as_deref(),
            Some("t2")
        );
    }

    #[tokio::test]
    async fn in_memory_journal_keeps_its_data() {
        let j = Journal::in_memory().await.unwrap();
        j.insert(&sample("t", "cli")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(j.list("cli").await.unwrap().len(), 1);
    }

    /// The journal exactly as `dataerai` wrote it before the schema had a
    /// version: the tables of the first migration (released migrations never
    /// change), `PRAGMA user_version` 0.
    const V1_FIXTURE: &str = include_str!("../migrations/0001_transfers.sql");

    async fn raw_connection(path: &Path) -> SqliteConnection {
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_journal_from_before_schema_versions_upgrades_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join(JOURNAL_FILE);
        let now = ts(Utc::now());
        {
            let mut c = raw_connection(&path).await;
            sqlx::raw_sql(V1_FIXTURE).execute(&mut c).await.unwrap();
            sqlx::query(
                "INSERT INTO transfers (transfer_id, owner, kind, state, asset_id, content_id,
                   local_path, bytes_done, bytes_total, chunk_count, file_count, created_at,
                   updated_at, attempt, last_error, result, error, batch_id, spec)
                 VALUES ('t-old', 'sock', 'download', 'paused', 'a1', 'c1', '/data/x', 5, 10,
                   2, 1, ?, ?, 3, '{\"code\":\"ERR_SERVER_UNREACHABLE\",\"message\":\"down\"}',
                   NULL, NULL, 'b1', '{\"chunk_size\":5}')",
            )
            .bind(&now)
            .bind(&now)
            .execute(&mut c)
            .await
            .unwrap();
            sqlx::raw_sql(
                "INSERT INTO chunks VALUES ('t-old', 0, 0, 5);
                 INSERT INTO done_files VALUES ('t-old', 0);",
            )
            .execute(&mut c)
            .await
            .unwrap();
            assert_eq!(schema_version(&mut c).await.unwrap(), 0);
            c.close().await.unwrap();
        }

        let j = Journal::open(&dir).await.unwrap();
        let t = j.get("sock", "t-old").await.unwrap();
        assert_eq!(t.kind, TransferKind::Download);
        assert_eq!(t.state, TransferState::Paused);
        assert_eq!((t.bytes_done, t.bytes_total), (5, 10));
        assert_eq!((t.chunk_count, t.file_count, t.attempt), (2, 1, 3));
        assert_eq!(t.content_id.as_deref(), Some("c1"));
        assert_eq!(t.batch_id.as_deref(), Some("b1"));
        assert_eq!(t.last_error.unwrap().code, ErrorCode::ServerUnreachable);
        assert_eq!(t.spec["chunk_size"], 5);
        assert_eq!(ts(t.created_at), now);
        assert_eq!(j.chunks("t-old").await.unwrap(), vec![(0, 0, 5)]);
        assert_eq!(j.done_files("t-old").await.unwrap(), vec![0]);
        // The upgraded journal keeps working, and says which version it is.
        j.set_state("t-old", TransferState::Running, 4, None, None, None)
            .await
            .unwrap();
        drop(j);
        let mut c = raw_connection(&path).await;
        assert_eq!(
            schema_version(&mut c).await.unwrap(),
            MIGRATIONS.len() as u32
        );
    }

    #[tokio::test]
    async fn migrations_run_once_in_order_and_newer_journals_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(JOURNAL_FILE);
        let mut c = raw_connection(&path).await;
        let v2 = "ALTER TABLE transfers ADD COLUMN note TEXT";
        assert_eq!(migrate(&mut c, &MIGRATIONS[..1]).await.unwrap(), 1);
        // Opening again with the same list changes nothing.
        assert_eq!(migrate(&mut c, &MIGRATIONS[..1]).await.unwrap(), 1);
        // A later release appends a migration: only that one runs.
        let upgraded = [MIGRATIONS[0], v2];
        assert_eq!(migrate(&mut c, &upgraded).await.unwrap(), 2);
        assert_eq!(migrate(&mut c, &upgraded).await.unwrap(), 2);
        sqlx::query("SELECT note FROM transfers")
            .fetch_all(&mut c)
            .await
            .unwrap();
        // An older program refuses the newer journal instead of misreading it.
        let e = migrate(&mut c, &MIGRATIONS[..1]).await.unwrap_err();
        assert!(e.message.contains("newer dataerai"), "{}", e.message);
        // A migration that fails leaves the journal at its previous version.
        let broken = [MIGRATIONS[0], v2, "CREATE TABLE chunks (x)"];
        assert!(migrate(&mut c, &broken).await.is_err());
        assert_eq!(schema_version(&mut c).await.unwrap(), 2);
    }

    #[test]
    fn kinds_and_states_are_the_wire_strings() {
        for state in TransferState::ALL {
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, json!(state.as_str()), "{state:?}");
            assert_eq!(state.as_str().parse::<TransferState>().unwrap(), state);
            assert_eq!(
                serde_json::from_value::<TransferState>(json).unwrap(),
                state
            );
        }
        for kind in TransferKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, json!(kind.as_str()), "{kind:?}");
            assert_eq!(kind.as_str().parse::<TransferKind>().unwrap(), kind);
        }
        let states: Vec<_> = TransferState::ALL.iter().map(|s| s.as_str()).collect();
        // The list of docs/ipc.md, frozen: journals and clients depend on it.
        let documented = "queued|running|retrying|paused|completed|failed|cancelled";
        assert_eq!(states.join("|"), documented);
        assert_eq!(TransferKind::Download.to_string(), "download");
    }

    #[tokio::test]
    async fn an_unknown_state_in_the_journal_is_an_error_naming_it() {
        let j = Journal::in_memory().await.unwrap();
        j.insert(&sample("t", "cli")).await.unwrap();
        j.insert(&sample("u", "cli")).await.unwrap();
        sqlx::query("UPDATE transfers SET state = 'frozen' WHERE transfer_id = 't'")
            .execute(&j.pool)
            .await
            .unwrap();
        let e = j.get("cli", "t").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(
            e.message.contains("transfer t:") && e.message.contains("\"frozen\""),
            "{}",
            e.message
        );
        // Listing (and so resuming at start) goes on with the readable ones.
        let listed: Vec<String> = j
            .list("cli")
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.transfer_id)
            .collect();
        assert_eq!(listed, ["u"]);
    }
}
