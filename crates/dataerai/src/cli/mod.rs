//! The command line: clap definitions and one module per command group.
//! Commands run in-process through [`crate::service::Service`] (no daemon
//! needed), except `dataerai transfers …`, which lists and controls a running
//! daemon's transfers over its socket ([`daemon_client`]).
//!
//! - [`auth`]: `auth login|status|logout`.
//! - [`transfer`]: `upload`, `download`.
//! - [`assets`]: `metadata get|set`, `list assets`, `link`, `versions`.
//! - [`projects`]: `project create|members`, `list projects`.
//! - [`collections`]: `collection create|list|ensure|move|rename|rm|download`.
//! - [`search`]: `search QUERY`.
//! - [`lineage`]: `lineage ID` (drawn as a tree).
//! - [`export`]: `export ID --prov FILE`, `export --ro-crate DIR` (provenance export).
//! - [`daemon`]: `daemon`, `transfers list|show|pause|resume|cancel|wait`.
//! - [`output`]: results on stdout (`--json`), progress and errors on stderr.
//!
//! A new command goes into its group's module: its clap type there, one arm
//! in [`Command`] and in `dispatch` here.

pub mod assets;
pub mod auth;
pub mod collections;
pub mod daemon;
pub mod daemon_client;
pub mod export;
pub mod lineage;
pub mod output;
pub mod projects;
pub mod search;
pub mod transfer;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use dataerai_proto::ApiError;
use serde_json::{Map, Value};

use crate::service::Service;
use assets::{LinkArgs, MetadataCommand};
use auth::AuthCommand;
use collections::CollectionCommand;
use daemon::TransfersCommand;
use export::ExportArgs;
use lineage::LineageArgs;
use projects::ProjectCommand;
use search::SearchArgs;
use transfer::{DownloadArgs, UploadArgs};

type Result<T> = std::result::Result<T, ApiError>;

#[derive(Parser, Debug)]
#[command(name = "dataerai", version, about = "Dataerai CLI and transfer daemon")]
pub struct Cli {
    /// Print results as JSON (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sign in, check or sign out.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Upload a file or a directory as a new asset (or a new version of one).
    Upload(UploadArgs),
    /// Download an asset's latest (or a given) content version.
    Download(DownloadArgs),
    /// Read or change an asset's metadata.
    #[command(subcommand)]
    Metadata(MetadataCommand),
    /// Manage projects.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Collections as a tree: create, list (--tree), ensure a path, move, rename,
    /// delete, download.
    #[command(subcommand)]
    Collection(CollectionCommand),
    /// List projects or assets.
    #[command(subcommand)]
    List(ListCommand),
    /// Search the assets you can read: words, "phrases", tag:, type:, md.<key>>=…
    /// (docs/search.md).
    Search(SearchArgs),
    /// Record a provenance relationship FROM (dependent) → TO (origin).
    Link(LinkArgs),
    /// Show an asset's lineage as a tree: its origins (--up, default), what was
    /// derived from it (--down) or both.
    Lineage(LineageArgs),
    /// Export provenance: an asset's lineage as W3C PROV-JSON (ID --prov FILE), or a
    /// collection tree or a search as an RO-Crate folder (--ro-crate DIR).
    Export(ExportArgs),
    /// List an asset's content versions, newest first.
    Versions {
        asset_id: String,
        #[command(flatten)]
        pages: output::PageArgs,
    },
    /// Delete an asset with all its versions and relationships, or (--version)
    /// one of its versions (write access needed).
    Delete {
        asset_id: String,
        /// Delete only this content version (not the asset's only one).
        #[arg(long, value_name = "CONTENT_ID")]
        version: Option<String>,
    },
    /// List and control the running daemon's transfers.
    Transfers {
        /// Daemon socket (default: as for `dataerai daemon`).
        #[arg(long)]
        socket: Option<PathBuf>,
        #[command(subcommand)]
        command: TransfersCommand,
    },
    /// Run the transfer daemon on a Unix socket.
    Daemon {
        /// Socket path (default: $DATAERAI_SOCKET, else $XDG_RUNTIME_DIR/dataerai-transfer.sock, …).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Keep retrying a transfer whose server cannot be reached for this long (seconds).
        #[arg(long, default_value_t = 3600)]
        retry_window_s: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ListCommand {
    /// Projects you belong to.
    Projects {
        #[command(flatten)]
        pages: output::PageArgs,
    },
    /// Assets: yours by default, or a project's or a collection's.
    Assets {
        #[arg(long, conflicts_with_all = ["collection", "user"])]
        project: Option<String>,
        #[arg(long, conflicts_with = "user")]
        collection: Option<String>,
        #[arg(long)]
        user: bool,
        #[command(flatten)]
        pages: output::PageArgs,
    },
}

/// Run a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let svc = Service::from_env();
    if let Command::Daemon {
        socket,
        retry_window_s,
    } = cli.command
    {
        return daemon::run_daemon(svc, socket, retry_window_s).await;
    }
    match dispatch(&svc, cli.json, cli.command).await {
        Ok(()) => 0,
        Err(e) => {
            output::print_error(cli.json, e.code.as_str(), &e.message);
            1
        }
    }
}

async fn dispatch(svc: &Service, as_json: bool, cmd: Command) -> Result<()> {
    match cmd {
        Command::Auth(cmd) => auth::run(svc, as_json, cmd).await,
        Command::Upload(a) => transfer::upload_cmd(svc, as_json, a).await,
        Command::Download(a) => transfer::download_cmd(svc, as_json, a).await,
        Command::Metadata(cmd) => assets::metadata(svc, cmd).await,
        Command::Project(cmd) => projects::run(svc, as_json, cmd).await,
        Command::Collection(cmd) => collections::run(svc, as_json, cmd).await,
        Command::List(ListCommand::Projects { pages }) => projects::list(svc, as_json, pages).await,
        Command::List(ListCommand::Assets {
            project,
            collection,
            user,
            pages,
        }) => {
            let which = assets::Which {
                project,
                collection,
                user,
            };
            assets::list(svc, as_json, which, pages).await
        }
        Command::Search(a) => search::run(svc, as_json, a).await,
        Command::Link(a) => assets::link(svc, as_json, a).await,
        Command::Lineage(a) => lineage::run(svc, as_json, a).await,
        Command::Export(a) => export::run(svc, as_json, a).await,
        Command::Versions { asset_id, pages } => {
            assets::versions(svc, as_json, asset_id, pages).await
        }
        Command::Delete { asset_id, version } => {
            assets::delete(svc, as_json, asset_id, version).await
        }
        Command::Transfers { socket, command } => daemon::transfers(socket, as_json, command).await,
        Command::Daemon { .. } => unreachable!("handled in run()"),
    }
}

/// A flag's value that must be a JSON object (`--metadata`, `--qualifiers`).
/// An optional flag's JSON object ([`parse_object`]).
fn parse_optional_object(flag: &str, text: &Option<String>) -> Result<Option<Map<String, Value>>> {
    text.as_deref().map(|t| parse_object(flag, t)).transpose()
}

fn parse_object(flag: &str, text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid(format!("{flag} must be a JSON object"))),
        Err(e) => Err(ApiError::invalid(format!("{flag} is not valid JSON: {e}"))),
    }
}
