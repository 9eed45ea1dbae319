//! The one error type of the storage layer. The server maps each variant to a
//! stable `ERR_*` code.

/// What can go wrong in a metadata or blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// A unique value is already taken (email, alias, …).
    #[error("{0}")]
    Conflict(String),
    /// The same (from, to, type) relationship exists already.
    #[error("this relationship already exists")]
    RelationshipExists,
    /// The allocation cannot hold the requested bytes.
    #[error("quota exceeded: {requested} bytes requested, {used} used and {reserved} reserved of {quota}")]
    QuotaExceeded {
        quota: u64,
        used: u64,
        reserved: u64,
        requested: u64,
    },
    /// The allocation cannot hold that many more files (its file limit,
    /// which counts every file however small).
    #[error("file limit exceeded: {requested} more files requested, {file_count} held of at most {max_files}")]
    FileLimitExceeded {
        max_files: u64,
        file_count: u64,
        requested: u64,
    },
    /// The request does not fit the stored state (session closed, …).
    #[error("{0}")]
    Invalid(String),
    /// Bytes did not match their expected length or BLAKE3 hash.
    #[error("{0}")]
    Integrity(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The object store (S3) failed or cannot be reached.
    #[error("object store error: {0}")]
    ObjectStore(#[from] object_store::Error),
}

impl StoreError {
    /// The disk (blob directory or database) is full: retrying after space is
    /// freed can succeed, so the server answers 507 and keeps the session open.
    pub fn is_no_space(&self) -> bool {
        match self {
            StoreError::Io(e) => is_enospc(e),
            // PostgreSQL: SQLSTATE 53100 disk_full (SQLSTATEs are always 5
            // characters). SQLite: SQLITE_FULL (13, "insertion failed because
            // database is full") and its extended codes (at most 4 digits).
            StoreError::Db(sqlx::Error::Database(d)) => d.code().is_some_and(|c| {
                c == "53100" || (c.len() < 5 && c.parse::<i32>().is_ok_and(|c| c & 0xff == 13))
            }),
            StoreError::Db(sqlx::Error::Io(e)) => is_enospc(e),
            _ => false,
        }
    }
}

impl StoreError {
    /// A backend (PostgreSQL, the object store) cannot be reached or timed
    /// out: the request may succeed on retry, so the server answers 503 +
    /// `Retry-After` instead of 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::ObjectStore(e) => !matches!(
                e,
                object_store::Error::NotFound { .. } | object_store::Error::InvalidPath { .. }
            ),
            StoreError::Db(e) => matches!(
                e,
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            ),
            _ => false,
        }
    }
}

/// ENOSPC (errno 28 on Linux and macOS) or quota exhaustion.
pub fn is_enospc(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(28)
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
