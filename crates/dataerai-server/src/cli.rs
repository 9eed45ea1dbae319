//! Command line of `dataerai-server`. Every flag can also come from an
//! environment variable or the `--config` TOML file (precedence: flag >
//! environment > file > default; resolved in `config`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dataerai-server",
    version,
    about = "The Dataerai service: REST API over a metadata store and a blob store"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Bootstrap users, tokens and quotas directly in the metadata store
    /// (works while servers run on it).
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// Where metadata and blobs live; shared by `serve` and the admin commands.
#[derive(Debug, Args, Clone)]
pub struct StorageArgs {
    /// TOML file with any of the settings (see docs/deployment.md); flags and
    /// environment variables override it.
    #[arg(long, env = "DATAERAI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory of the embedded backends: `dataerai.db` (metadata,
    /// unless --database-url) and `blobs/` (content, unless --blob-store).
    #[arg(long, env = "DATAERAI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL metadata store, `postgres://user:password@host:port/db`
    /// (the database is created if missing; migrations run at start).
    #[arg(long, env = "DATAERAI_DATABASE_URL")]
    pub database_url: Option<String>,
    /// S3-compatible blob store, `s3://bucket/prefix` (endpoint, region and
    /// credentials from the config file's [s3] section or AWS_* variables),
    /// or a directory.
    #[arg(long, env = "DATAERAI_BLOB_STORE")]
    pub blob_store: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:8470].
    #[arg(long, env = "DATAERAI_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Quota of new users' and projects' allocations, in bytes [default: 1 TiB].
    #[arg(long, env = "DATAERAI_DEFAULT_QUOTA_BYTES")]
    pub default_quota_bytes: Option<u64>,
    /// After SIGTERM/SIGINT, keep listening this long (milliseconds) and answer
    /// new requests 503 with `Retry-After` (and `/readyz` 503) before stopping,
    /// so clients and load balancers learn the server is going away [default: 0].
    #[arg(long, env = "DATAERAI_SHUTDOWN_DRAIN_MS")]
    pub shutdown_drain_ms: Option<u64>,
    /// Lifetime of access tokens issued by the device login, in seconds
    /// [default: 3600].
    #[arg(long, env = "DATAERAI_ACCESS_TOKEN_TTL_S")]
    pub access_token_ttl_s: Option<u64>,
    /// Seconds a device-login client is told to wait between polls
    /// [default: 5; tests use 1].
    #[arg(long, env = "DATAERAI_DEVICE_POLL_INTERVAL_S")]
    pub device_poll_interval_s: Option<u64>,
    /// The server's public base URL (e.g. `https://data.example.org`), used in
    /// the device login's verification URL [default: the address the client connected to].
    #[arg(long, env = "DATAERAI_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user; prints the user id.
    CreateUser {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long)]
        email: String,
        /// Read the user's web sign-in password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Make the user a server administrator (may read the audit log).
        #[arg(long)]
        admin: bool,
        /// Quota of the user's personal allocation, in bytes [default: the
        /// config file's default_quota_bytes, else 1 TiB].
        #[arg(long, env = "DATAERAI_DEFAULT_QUOTA_BYTES")]
        default_quota_bytes: Option<u64>,
    },
    /// Create an access token for a user; prints only the token.
    CreateToken {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long)]
        email: String,
        /// Comma-separated scopes: read, write.
        #[arg(long, default_value = "read,write")]
        scope: String,
        /// Days until the token expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// A name to recognise the token by.
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Set (or replace) a user's web sign-in password. The password is read
    /// from a prompt (without echo) on a terminal, else one line of standard
    /// input; never from the command line.
    SetPassword {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        user: UserEmail,
        /// Read the password from standard input (one line) even on a terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every user: email, id, status (active, no password, invited,
    /// disabled), whether a server administrator, and when created.
    ListUsers {
        #[command(flatten)]
        storage: StorageArgs,
        /// One JSON object per user instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they cannot sign in, and their tokens and web sessions
    /// stop working at once. `enable-user` undoes it.
    DisableUser {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        user: UserEmail,
    },
    /// Enable a disabled user again (tokens revoked by the disable stay
    /// revoked; personal access tokens work again).
    EnableUser {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        user: UserEmail,
    },
    /// Set the byte quota and/or the file limit of a project's or a user's
    /// allocation.
    SetQuota {
        #[command(flatten)]
        storage: StorageArgs,
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        project: Option<String>,
        /// The user's email.
        #[arg(long)]
        user: Option<String>,
        /// Byte quota.
        #[arg(long, required_unless_present = "files")]
        bytes: Option<u64>,
        /// File limit: most files (of complete versions and open upload
        /// sessions) the allocation holds, each file counting once however
        /// small [default for new allocations: 1000000].
        #[arg(long)]
        files: Option<u64>,
    },
    /// Delete chunks no content version uses any more (aborted or expired
    /// uploads, deleted assets, interrupted writes); prints what it found
    /// and reclaimed. Safe while servers run on the same stores.
    Gc {
        #[command(flatten)]
        storage: StorageArgs,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Leave content written to within this many seconds alone
        /// [default: the config file's [gc] grace_s, else 3600].
        #[arg(long)]
        grace_s: Option<u64>,
    },
}

/// A user's email, as `EMAIL` or `--email EMAIL`.
#[derive(Debug, Args)]
pub struct UserEmail {
    /// The user's email.
    #[arg(value_name = "EMAIL", required_unless_present = "email")]
    pub email_arg: Option<String>,
    /// The user's email (same as the positional EMAIL).
    #[arg(long = "email", conflicts_with = "email_arg")]
    pub email: Option<String>,
}

impl UserEmail {
    pub fn get(&self) -> &str {
        self.email_arg
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or_default()
            .trim()
    }
}
