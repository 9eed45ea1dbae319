//! Command line of `dataerai-server`. Every flag can also come from an
//! environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// 1 TiB.
pub const DEFAULT_QUOTA: u64 = 1 << 40;

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
    /// Bootstrap users, tokens and quotas directly in the data directory
    /// (works while a server runs on it).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Args)]
pub struct DataDir {
    /// Data directory: `dataerai.db` (metadata) and `blobs/` (content).
    #[arg(long, env = "DATAERAI_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "DATAERAI_LISTEN", default_value = "127.0.0.1:8470")]
    pub listen: SocketAddr,
    /// Quota of new users' and projects' allocations, in bytes.
    #[arg(long, env = "DATAERAI_DEFAULT_QUOTA_BYTES", default_value_t = DEFAULT_QUOTA)]
    pub default_quota_bytes: u64,
    /// After SIGTERM/SIGINT, keep listening this long (milliseconds) and answer
    /// new requests 503 with `Retry-After` (and `/readyz` 503) before stopping,
    /// so clients and load balancers learn the server is going away.
    #[arg(long, env = "DATAERAI_SHUTDOWN_DRAIN_MS", default_value_t = 0)]
    pub shutdown_drain_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user; prints the user id.
    CreateUser {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        email: String,
        /// Quota of the user's personal allocation, in bytes.
        #[arg(long, env = "DATAERAI_DEFAULT_QUOTA_BYTES", default_value_t = DEFAULT_QUOTA)]
        default_quota_bytes: u64,
    },
    /// Create an access token for a user; prints only the token.
    CreateToken {
        #[command(flatten)]
        data: DataDir,
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
    /// Set the quota of a project's or a user's allocation.
    SetQuota {
        #[command(flatten)]
        data: DataDir,
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        project: Option<String>,
        /// The user's email.
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        bytes: u64,
    },
}
