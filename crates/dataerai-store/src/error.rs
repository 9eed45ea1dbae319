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
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
