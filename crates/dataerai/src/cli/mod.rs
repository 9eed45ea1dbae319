//! The command line: clap definitions and one function per command. Commands
//! run in-process through [`crate::service::Service`] (no daemon needed), except
//! `dataerai transfers …`, which lists and controls a running daemon's transfers
//! over its socket ([`daemon_client`]).

pub mod daemon_client;
pub mod output;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dataerai_proto::{ApiError, ErrorCode};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::api_client::ApiClient;
use crate::auth;
use crate::config::{self, Credentials};
use crate::journal::Journal;
use crate::service::{
    AddMemberParams, CreateProjectParams, DownloadParams, ListAssetsParams, ListMembersParams,
    ListVersionsParams, PageParams, RelationshipParams, RemoveMemberParams, Service,
    SetMetadataParams, UploadParams,
};
use crate::transfer::{download, upload, Observer, ProgressEvent, ProgressSink, RunContext, Stop};
use daemon_client::DaemonClient;
use output::{human_bytes, print_json, ProgressView};

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
    /// List projects or assets.
    #[command(subcommand)]
    List(ListCommand),
    /// Record a provenance relationship FROM (dependent) → TO (origin).
    Link(LinkArgs),
    /// List an asset's content versions, newest first.
    Versions { asset_id: String },
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
pub enum TransfersCommand {
    /// Every transfer of the daemon (including earlier runs).
    List,
    /// One transfer.
    Show { transfer_id: String },
    /// Stop a transfer and give it up.
    Cancel { transfer_id: String },
    /// Let chunks in flight finish and start no new ones.
    Pause { transfer_id: String },
    /// Continue a paused (or resumable failed) transfer.
    Resume { transfer_id: String },
    /// Wait until a transfer completes or fails (exit 1 if it fails).
    Wait { transfer_id: String },
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Sign in in a browser (device code), or save a personal access token.
    Login {
        /// Server URL, e.g. https://data.example.org
        #[arg(long)]
        server: String,
        /// Read a personal access token from standard input instead of signing in
        /// in a browser (for scripts and CI; keeps it out of `ps` and shell history).
        #[arg(long)]
        token_stdin: bool,
        /// Do not try to open a browser; just print the address and the code.
        #[arg(long, conflicts_with = "token_stdin")]
        no_browser: bool,
    },
    /// Show who you are signed in as.
    Status,
    /// Forget the saved credentials.
    Logout,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("owner").args(["project", "user"])))]
pub struct UploadArgs {
    /// The file or directory to upload (a directory becomes one asset).
    pub file: PathBuf,
    /// Title of the new asset (required unless --asset).
    #[arg(long, required_unless_present = "asset")]
    pub title: Option<String>,
    /// Add a new content version to this existing asset instead.
    #[arg(long, conflicts_with_all = ["title", "project", "user", "alias", "collection", "description", "metadata", "tags"])]
    pub asset: Option<String>,
    /// Owning project id (one of --project / --user is required unless --asset).
    #[arg(long, required_unless_present_any = ["user", "asset"])]
    pub project: Option<String>,
    /// Make it a personal asset of the signed-in user.
    #[arg(long)]
    pub user: bool,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub alias: Option<String>,
    /// A tag (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Metadata as a JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// Collection to file the asset in.
    #[arg(long)]
    pub collection: Option<String>,
    /// Chunk size in MiB: a power of two from 1 to 512 (default 64).
    #[arg(long)]
    pub chunk_size_mb: Option<i64>,
}

#[derive(Args, Debug)]
pub struct DownloadArgs {
    pub asset_id: String,
    /// Destination directory (created if missing).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// A specific content version (default: the latest).
    #[arg(long)]
    pub content_id: Option<String>,
    /// Chunk size in MiB: a power of two from 1 to 512 (default 64).
    #[arg(long)]
    pub chunk_size_mb: Option<i64>,
}

#[derive(Subcommand, Debug)]
pub enum MetadataCommand {
    /// Show an asset.
    Get { asset_id: String },
    /// Change fields; `--metadata`/`--set` are merged key by key (JSON null deletes a key).
    Set(SetArgs),
}

#[derive(Args, Debug)]
pub struct SetArgs {
    pub asset_id: String,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub alias: Option<String>,
    /// Replace the tags (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Metadata keys to merge, as a JSON object.
    #[arg(long)]
    pub metadata: Option<String>,
    /// One key: `key=VALUE`, VALUE parsed as JSON if it can be, else a string (repeatable).
    #[arg(long = "set")]
    pub set: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Create a project (with its root collection and default allocation).
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// List, add or remove a project's members.
    #[command(subcommand)]
    Members(MembersCommand),
}

#[derive(Subcommand, Debug)]
pub enum MembersCommand {
    /// Everyone in the project and their role.
    List { project_id: String },
    /// Add someone (by email), or change their role (owners/admins only).
    Add {
        project_id: String,
        email: String,
        /// owner, admin, member or viewer.
        #[arg(long)]
        role: String,
    },
    /// Remove someone from the project (owners/admins only).
    Remove { project_id: String, email: String },
}

#[derive(Subcommand, Debug)]
pub enum ListCommand {
    /// Projects you belong to.
    Projects,
    /// Assets: yours by default, or a project's or a collection's.
    Assets {
        #[arg(long, conflicts_with_all = ["collection", "user"])]
        project: Option<String>,
        #[arg(long, conflicts_with = "user")]
        collection: Option<String>,
        #[arg(long)]
        user: bool,
    },
}

#[derive(Args, Debug)]
pub struct LinkArgs {
    /// The dependent asset (e.g. the analysis result).
    pub from: String,
    /// The origin asset (e.g. the raw data).
    pub to: String,
    /// Relationship type, e.g. derived_from.
    #[arg(long = "type")]
    pub rel_type: String,
    #[arg(long)]
    pub analysis_mode: Option<String>,
    #[arg(long)]
    pub note: Option<String>,
    /// ISO-8601 time.
    #[arg(long)]
    pub time: Option<String>,
    /// Extra qualifiers as a JSON object.
    #[arg(long)]
    pub qualifiers: Option<String>,
}

/// Run a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    let svc = Service::from_env();
    if let Command::Daemon {
        socket,
        retry_window_s,
    } = cli.command
    {
        let socket = socket.unwrap_or_else(config::default_socket_path);
        let opts = crate::daemon::DaemonOptions {
            socket_path: std::path::absolute(&socket).unwrap_or(socket),
            state_dir: crate::journal::default_state_dir(),
            retry_window: Duration::from_secs(retry_window_s),
        };
        return crate::daemon::run(opts, svc).await;
    }
    match dispatch(&svc, cli.json, cli.command).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {} ({})", e.message, e.code);
            1
        }
    }
}

async fn dispatch(svc: &Service, as_json: bool, cmd: Command) -> Result<()> {
    match cmd {
        Command::Auth(AuthCommand::Login {
            server,
            token_stdin,
            no_browser,
        }) => {
            if token_stdin {
                login(svc, as_json, &server, token_stdin).await
            } else {
                device_login(svc, as_json, &server, no_browser).await
            }
        }
        Command::Auth(AuthCommand::Status) => {
            let st = svc.auth_status().await?;
            if as_json {
                print_json(&st);
            } else {
                let s = |k: &str| st[k].as_str().unwrap_or("-").to_string();
                let scopes: Vec<&str> = st["scopes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!("server:   {}", s("server"));
                println!("email:    {}", s("user_email"));
                println!("user id:  {}", s("user_id"));
                let kind = match st["token_kind"].as_str() {
                    Some("oauth") => "browser sign-in (renewed automatically)",
                    _ => "personal access token",
                };
                println!("token:    {kind}");
                println!("expires:  {}", st["expires_at"].as_str().unwrap_or("never"));
                if let Some(r) = st["refresh_expires_at"].as_str() {
                    println!("sign-in valid until: {r}");
                }
                println!("scopes:   {}", scopes.join(", "));
            }
            Ok(())
        }
        Command::Auth(AuthCommand::Logout) => {
            let had = config::remove_credentials(svc.config_dir())
                .map_err(|e| ApiError::internal(format!("cannot remove credentials: {e}")))?;
            if as_json {
                print_json(&json!({"signed_out": had}));
            } else if had {
                println!("Signed out.");
            } else {
                println!("Not signed in.");
            }
            Ok(())
        }
        Command::Upload(a) => upload_cmd(svc, as_json, a).await,
        Command::Download(a) => download_cmd(svc, as_json, a).await,
        Command::Metadata(MetadataCommand::Get { asset_id }) => {
            let asset = svc.get_metadata(&asset_id).await?;
            print_json(&asset);
            Ok(())
        }
        Command::Metadata(MetadataCommand::Set(a)) => {
            let mut metadata = match &a.metadata {
                Some(m) => Some(parse_object("--metadata", m)?),
                None => None,
            };
            for kv in &a.set {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    ApiError::invalid(format!("--set expects key=value, got {kv:?}"))
                })?;
                if k.is_empty() {
                    return Err(ApiError::invalid(format!("--set has an empty key: {kv:?}")));
                }
                let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
                metadata
                    .get_or_insert_with(Map::new)
                    .insert(k.to_string(), v);
            }
            let asset = svc
                .set_metadata(SetMetadataParams {
                    asset_id: a.asset_id,
                    title: a.title,
                    description: a.description,
                    alias: a.alias,
                    tags: if a.tags.is_empty() {
                        None
                    } else {
                        Some(a.tags)
                    },
                    metadata: metadata.map(Value::Object),
                })
                .await?;
            print_json(&asset);
            Ok(())
        }
        Command::Project(ProjectCommand::Create { name, description }) => {
            let p = svc
                .create_project(CreateProjectParams { name, description })
                .await?;
            if as_json {
                print_json(&p);
            } else {
                println!("Created project {} ({})", p.name, p.project_id);
                println!("root collection: {}", p.root_collection_id);
            }
            Ok(())
        }
        Command::Project(ProjectCommand::Members(cmd)) => members_cmd(svc, as_json, cmd).await,
        Command::List(ListCommand::Projects) => {
            let page = svc.list_projects(PageParams::default()).await?;
            if as_json {
                print_json(&page);
            } else {
                for p in &page.items {
                    println!("{}  {:<8} {}", p.project_id, p.role, p.name);
                }
                println!("({} of {} projects)", page.items.len(), page.total);
            }
            Ok(())
        }
        Command::List(ListCommand::Assets {
            project,
            collection,
            user,
        }) => {
            let mut params = ListAssetsParams::default();
            if let Some(p) = project {
                params.owner_type = Some("project".into());
                params.owner_id = Some(p);
            } else if let Some(c) = collection {
                params.collection_id = Some(c);
            } else if user {
                params.owner_type = Some("user".into());
                params.owner_id = Some(config::load_credentials(svc.config_dir())?.user_id);
            }
            let page = svc.list_assets(params).await?;
            if as_json {
                print_json(&page);
            } else {
                for a in &page.items {
                    let size = a
                        .latest_content
                        .as_ref()
                        .map(|c| human_bytes(c.total_bytes));
                    println!(
                        "{}  {:>10}  {}",
                        a.asset_id,
                        size.as_deref().unwrap_or("-"),
                        a.title
                    );
                }
                println!("({} of {} assets)", page.items.len(), page.total);
            }
            Ok(())
        }
        Command::Link(a) => {
            let qualifiers = match &a.qualifiers {
                Some(q) => Some(Value::Object(parse_object("--qualifiers", q)?)),
                None => None,
            };
            let rel = svc
                .create_relationship(RelationshipParams {
                    from_asset_id: a.from,
                    to_asset_id: a.to,
                    relationship_type: a.rel_type,
                    analysis_mode: a.analysis_mode,
                    qualifier_note: a.note,
                    qualifier_time: a.time,
                    qualifiers,
                })
                .await?;
            if as_json {
                print_json(&rel);
            } else {
                println!(
                    "Linked {} -[{}]-> {} ({}) as {}",
                    rel.from_asset_id,
                    rel.rel_type,
                    rel.to_asset_id,
                    rel.related_asset.title,
                    rel.id
                );
            }
            Ok(())
        }
        Command::Versions { asset_id } => {
            let page = svc
                .list_versions(ListVersionsParams {
                    asset_id,
                    limit: None,
                    offset: None,
                })
                .await?;
            if as_json {
                print_json(&page);
            } else {
                for v in &page.items {
                    println!(
                        "{}  {}  {:>10}  {} file{}",
                        v.content_id,
                        v.completed_at
                            .unwrap_or(v.created_at)
                            .format("%Y-%m-%d %H:%M:%S"),
                        human_bytes(v.total_bytes),
                        v.files.len(),
                        if v.files.len() == 1 { "" } else { "s" }
                    );
                }
                println!("({} of {} versions)", page.items.len(), page.total);
            }
            Ok(())
        }
        Command::Transfers { socket, command } => {
            let socket = socket.unwrap_or_else(config::default_socket_path);
            transfers_cmd(&socket, as_json, command).await
        }
        Command::Daemon { .. } => unreachable!("handled in run()"),
    }
}

fn parse_object(flag: &str, text: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::invalid(format!("{flag} must be a JSON object"))),
        Err(e) => Err(ApiError::invalid(format!("{flag} is not valid JSON: {e}"))),
    }
}

async fn login(svc: &Service, as_json: bool, server: &str, token_stdin: bool) -> Result<()> {
    let stdin = std::io::stdin();
    if !token_stdin && stdin.is_terminal() {
        eprintln!("Paste your API token and press Enter (or use --token-stdin):");
    }
    let mut token = String::new();
    stdin
        .lock()
        .read_to_string(&mut token)
        .map_err(|e| ApiError::invalid(format!("cannot read the token from stdin: {e}")))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::invalid("no token on standard input"));
    }
    let client = ApiClient::new(server, token)?;
    let me = client.me().await.map_err(|e| match e.code {
        ErrorCode::AuthRequired => ApiError::new(
            ErrorCode::AuthRequired,
            format!(
                "the server {} refused this token: {}",
                client.server(),
                e.message
            ),
        ),
        _ => e,
    })?;
    let creds = Credentials::pat(
        client.server().to_string(),
        token.to_string(),
        me.user_id.clone(),
        me.email.clone(),
        me.expires_at,
    );
    config::save_credentials(svc.config_dir(), &creds).map_err(|e| {
        ApiError::internal(format!(
            "cannot save credentials in {}: {e}",
            svc.config_dir().display()
        ))
    })?;
    if as_json {
        print_json(&json!({
            "server": creds.server, "user_id": me.user_id, "user_email": me.email,
            "expires_at": me.expires_at, "scopes": me.scopes,
        }));
    } else {
        println!(
            "Signed in to {} as {} ({})",
            creds.server, me.email, me.user_id
        );
    }
    Ok(())
}

/// Try to show `url` in a browser: `$BROWSER`, else `xdg-open` when a desktop
/// session is there. Never fails: the address is printed anyway.
fn open_browser(url: &str) {
    let program = match std::env::var("BROWSER") {
        Ok(b) if !b.trim().is_empty() => b,
        _ if std::env::var_os("DISPLAY").is_some()
            || std::env::var_os("WAYLAND_DISPLAY").is_some() =>
        {
            "xdg-open".to_string()
        }
        _ => return,
    };
    // $BROWSER may hold several commands separated by ':' (first one wins here).
    let first = program
        .split(':')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut words = first.split_whitespace();
    let Some(cmd) = words.next() else { return };
    let _ = std::process::Command::new(cmd)
        .args(words)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// `dataerai auth login` without `--token-stdin`: the OAuth device flow.
async fn device_login(svc: &Service, as_json: bool, server: &str, no_browser: bool) -> Result<()> {
    // Validates the URL the same way as every other client.
    let server = ApiClient::new(server, "-")?.server().to_string();
    let http = auth::http_client();
    let code = auth::request_device_code(&http, &server).await?;
    let complete = code
        .verification_uri_complete
        .clone()
        .unwrap_or_else(|| code.verification_uri.clone());
    eprintln!("To sign in, open this address in a browser:");
    eprintln!();
    eprintln!("    {}", code.verification_uri);
    eprintln!();
    eprintln!("and enter the code:  {}", code.user_code);
    eprintln!();
    eprintln!("(or open {complete} directly)");
    if !no_browser {
        open_browser(&complete);
    }
    eprintln!("Waiting for approval… (Ctrl-C to stop)");
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(code.expires_in.clamp(1, 3600));
    let mut interval = Duration::from_secs(code.interval.unwrap_or(5).clamp(1, 60));
    let tokens = loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                ErrorCode::AuthRequired,
                "the code expired before it was approved: run `dataerai auth login` again",
            ));
        }
        let sent_at = chrono::Utc::now();
        match auth::poll_device_token(&http, &server, &code.device_code).await {
            Ok(auth::Poll::Granted(t)) => break (t, sent_at),
            Ok(auth::Poll::Pending) => {}
            Ok(auth::Poll::SlowDown) => interval += Duration::from_secs(5),
            // The network may blip while the user is in the browser; keep polling.
            Err(e) if e.code == ErrorCode::ServerUnreachable => {
                tracing::warn!("polling for approval: {}", e.message)
            }
            Err(e) => return Err(e),
        }
    };
    let (t, issued_at) = tokens;
    let me = ApiClient::new(&server, &t.access_token)?.me().await?;
    let mut creds =
        auth::oauth_credentials(&server, me.user_id.clone(), me.email.clone(), &t, issued_at);
    if me.expires_at.is_some() {
        creds.expires_at = me.expires_at;
    }
    {
        // Hold the refresh lock while replacing the file, so a daemon that is
        // refreshing the previous login cannot overwrite this one.
        let dir = svc.config_dir().to_path_buf();
        let _lock = tokio::task::spawn_blocking(move || config::lock_credentials(&dir))
            .await
            .map_err(|e| ApiError::internal(format!("lock task failed: {e}")))?
            .map_err(|e| ApiError::internal(format!("cannot lock the credentials: {e}")))?;
        config::save_credentials(svc.config_dir(), &creds).map_err(|e| {
            ApiError::internal(format!(
                "cannot save credentials in {}: {e}",
                svc.config_dir().display()
            ))
        })?;
    }
    if as_json {
        print_json(&json!({
            "server": creds.server, "user_id": me.user_id, "user_email": me.email,
            "expires_at": creds.expires_at, "refresh_expires_at": creds.refresh_expires_at,
            "scopes": me.scopes, "token_kind": creds.kind(),
        }));
    } else {
        println!(
            "Signed in to {} as {} ({})",
            creds.server, me.email, me.user_id
        );
    }
    Ok(())
}

async fn members_cmd(svc: &Service, as_json: bool, cmd: MembersCommand) -> Result<()> {
    match cmd {
        MembersCommand::List { project_id } => {
            let mut items = Vec::new();
            let mut total;
            loop {
                let page = svc
                    .list_members(ListMembersParams {
                        project_id: project_id.clone(),
                        limit: Some(1000),
                        offset: Some(items.len() as u64),
                    })
                    .await?;
                total = page.total;
                let got = page.items.len();
                items.extend(page.items);
                if got == 0 || items.len() as u64 >= total {
                    break;
                }
            }
            if as_json {
                print_json(&json!({"items": items, "total": total}));
            } else {
                for m in &items {
                    println!("{:<8} {}  {}", m.role, m.email, m.user_id);
                }
                println!("({} members)", items.len());
            }
        }
        MembersCommand::Add {
            project_id,
            email,
            role,
        } => {
            let m = svc
                .add_member(AddMemberParams {
                    project_id: project_id.clone(),
                    email,
                    role,
                })
                .await?;
            if as_json {
                print_json(&m);
            } else {
                println!("{} is now {} of project {project_id}", m.email, m.role);
            }
        }
        MembersCommand::Remove { project_id, email } => {
            svc.remove_member(RemoveMemberParams {
                project_id: project_id.clone(),
                email: email.clone(),
            })
            .await?;
            if as_json {
                print_json(&json!({"removed": email, "project_id": project_id}));
            } else {
                println!("Removed {email} from project {project_id}");
            }
        }
    }
    Ok(())
}

/// Cancel `token` on Ctrl-C so a transfer cleans up after itself.
fn cancel_on_ctrl_c(token: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: cancelling the transfer…");
            token.cancel();
        }
    })
}

/// CLI side of a transfer: a progress bar, retries reported on stderr.
struct CliObserver(ProgressSink);

impl Observer for CliObserver {
    fn progress(&self, ev: ProgressEvent) {
        (self.0)(ev)
    }
    fn retrying(&self, attempt: u32, delay: Duration, error: &ApiError) {
        eprintln!(
            "{} ({}): retry {attempt} in {:.1}s",
            error.message,
            error.code,
            delay.as_secs_f64()
        );
    }
    fn recovered(&self) {}
}

/// An in-process run: a private journal (a CLI transfer ends with the process),
/// a progress view, Ctrl-C cancels.
async fn local_run(svc: &Service, label: &str, total: u64) -> Result<(RunContext, ProgressView)> {
    let view = ProgressView::new(label, total);
    let ctx = RunContext::new(
        uuid::Uuid::new_v4().to_string(),
        svc.client()?,
        Journal::in_memory().await?,
        Arc::new(CliObserver(view.sink(label))),
        crate::transfer::DEFAULT_RETRY_WINDOW,
    );
    Ok((ctx, view))
}

fn stopped(s: Stop) -> ApiError {
    match s {
        Stop::Error(e) => e,
        Stop::Paused => ApiError::internal("transfer paused"),
    }
}

async fn upload_cmd(svc: &Service, as_json: bool, a: UploadArgs) -> Result<()> {
    let (owner_type, owner_id) = match (&a.asset, a.project) {
        (Some(_), _) => (None, None),
        (None, Some(p)) => (Some("project".to_string()), Some(p)),
        (None, None) => (
            Some("user".to_string()),
            Some(config::load_credentials(svc.config_dir())?.user_id),
        ),
    };
    let metadata = match &a.metadata {
        Some(m) => Some(Value::Object(parse_object("--metadata", m)?)),
        None => None,
    };
    let params = UploadParams {
        local_path: a.file.to_string_lossy().into_owned(),
        title: a.title,
        owner_type,
        owner_id,
        asset_id: a.asset,
        description: a.description,
        alias: a.alias,
        tags: if a.tags.is_empty() {
            None
        } else {
            Some(a.tags)
        },
        metadata,
        collection_id: a.collection,
        chunk_size_mb: a.chunk_size_mb,
    };
    let spec = svc.prepare_upload(params).await?;
    let label = format!("upload {}", spec.label());
    let (mut ctx, view) = local_run(svc, &label, spec.bytes_total()).await?;
    ctx.fresh = true; // the session was opened just now
    let ctrl_c = cancel_on_ctrl_c(ctx.cancel.clone());
    let res = upload::run(&ctx, spec.clone()).await.map_err(stopped);
    ctrl_c.abort();
    view.finish();
    if res.is_err() {
        upload::discard(&ctx.client, &spec).await;
    }
    let r = res?;
    if as_json {
        print_json(&r);
    } else {
        let what = match r.files.as_slice() {
            [one] => one.name.clone(),
            many => format!("{} files", many.len()),
        };
        println!(
            "Uploaded {what} ({}, {} chunk{}, {} sent) as asset {}",
            human_bytes(r.total_bytes),
            r.chunk_count,
            if r.chunk_count == 1 { "" } else { "s" },
            human_bytes(r.bytes_sent),
            r.asset_id
        );
        if let [one] = r.files.as_slice() {
            println!("content: {}  checksum: {}", r.content_id, one.checksum);
        } else {
            println!("content: {}", r.content_id);
        }
    }
    Ok(())
}

async fn download_cmd(svc: &Service, as_json: bool, a: DownloadArgs) -> Result<()> {
    let spec = svc
        .prepare_download(DownloadParams {
            asset_id: a.asset_id,
            dest_dir: a.output.to_string_lossy().into_owned(),
            content_id: a.content_id,
            chunk_size_mb: a.chunk_size_mb,
        })
        .await?;
    let label = format!("download {}", spec.label());
    let (ctx, view) = local_run(svc, &label, spec.bytes_total()).await?;
    let ctrl_c = cancel_on_ctrl_c(ctx.cancel.clone());
    let res = download::run(&ctx, &spec).await.map_err(stopped);
    ctrl_c.abort();
    view.finish();
    if res.is_err() {
        download::discard(&spec).await;
    }
    let r = res?;
    if as_json {
        print_json(&r);
    } else {
        for f in &r.files {
            println!("{}  ({})", f.local_path, human_bytes(f.size));
        }
    }
    Ok(())
}

fn transfer_line(t: &Value) -> String {
    let done = t["bytes_done"].as_u64().unwrap_or(0);
    let total = t["bytes_total"].as_u64().unwrap_or(0);
    let pct = if total == 0 {
        100.0
    } else {
        done as f64 * 100.0 / total as f64
    };
    let mut line = format!(
        "{}  {:<8} {:<9} {:>5.1}%  {:>10}  asset {}",
        t["transfer_id"].as_str().unwrap_or("-"),
        t["kind"].as_str().unwrap_or("-"),
        t["state"].as_str().unwrap_or("-"),
        pct,
        human_bytes(total),
        t["asset_id"].as_str().unwrap_or("-"),
    );
    for key in ["error", "last_error"] {
        if let (Some(code), Some(msg)) = (t[key]["code"].as_str(), t[key]["message"].as_str()) {
            line.push_str(&format!("\n    {}: {msg} ({code})", key.replace('_', " ")));
        }
    }
    line
}

async fn transfers_cmd(socket: &Path, as_json: bool, cmd: TransfersCommand) -> Result<()> {
    let mut client = DaemonClient::connect(socket).await?;
    let (method, id) = match &cmd {
        TransfersCommand::List => {
            let r = client.call("transfer.list", json!({})).await?;
            if as_json {
                print_json(&r);
            } else {
                let items = r["items"].as_array().cloned().unwrap_or_default();
                for t in &items {
                    println!("{}", transfer_line(t));
                }
                println!("({} transfers)", items.len());
            }
            return Ok(());
        }
        TransfersCommand::Show { transfer_id } => ("transfer.get", transfer_id),
        TransfersCommand::Cancel { transfer_id } => ("transfer.cancel", transfer_id),
        TransfersCommand::Pause { transfer_id } => ("transfer.pause", transfer_id),
        TransfersCommand::Resume { transfer_id } => ("transfer.resume", transfer_id),
        TransfersCommand::Wait { transfer_id } => ("transfer.get", transfer_id),
    };
    let mut t = client.call(method, json!({"transfer_id": id})).await?;
    if matches!(cmd, TransfersCommand::Wait { .. }) {
        t = wait_for_end(&mut client, id, t).await?;
    }
    if as_json {
        print_json(&t);
    } else {
        println!("{}", transfer_line(&t));
    }
    match (
        matches!(cmd, TransfersCommand::Wait { .. }),
        t["error"].as_object(),
    ) {
        (true, Some(e)) => Err(ApiError::new(
            serde_json::from_value(e["code"].clone()).unwrap_or(ErrorCode::Internal),
            e["message"]
                .as_str()
                .unwrap_or("transfer failed")
                .to_string(),
        )),
        _ => Ok(()),
    }
}

/// Follow notifications until transfer `id` ends; returns its final Transfer object.
async fn wait_for_end(client: &mut DaemonClient, id: &str, mut t: Value) -> Result<Value> {
    let finished = |t: &Value| {
        matches!(
            t["state"].as_str(),
            Some("completed" | "failed" | "cancelled" | "paused")
        )
    };
    while !finished(&t) {
        let n = client.next_notification().await?;
        let method = n["method"].as_str().unwrap_or("");
        let ends = matches!(method, "transfer.completed" | "transfer.failed")
            || (method == "transfer.state" && n["params"]["state"] == "paused");
        if n["params"]["transfer_id"] == id && ends {
            t = client
                .call("transfer.get", json!({"transfer_id": id}))
                .await?;
        }
    }
    Ok(t)
}
