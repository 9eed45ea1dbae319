//! `dataerai auth …`: sign in (browser device code or a pasted personal
//! access token), show who is signed in, sign out.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use clap::Subcommand;
use dataerai_client::credentials::{self, Credentials};
use dataerai_client::{auth, ApiClient};
use dataerai_proto::api::Me;
use dataerai_proto::{ApiError, ErrorCode};
use serde_json::{json, Value};

use super::output::{self, print_json};
use super::Result;
use crate::service::Service;

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Sign in in a browser (device code), or save a personal access token.
    Login {
        /// Server URL, e.g. https://data.example.org (default: $DATAERAI_SERVER)
        #[arg(long, env = "DATAERAI_SERVER")]
        server: String,
        /// Sign in in a browser with a device code (the default; accepted for scripts that say so).
        #[arg(long, conflicts_with = "token_stdin")]
        device: bool,
        /// OAuth client id: accepted for compatibility; this server's sign-in has one
        /// public client (`dataerai-cli`), which is used whatever is given.
        #[arg(long, value_name = "ID", conflicts_with = "token_stdin")]
        client_id: Option<String>,
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

pub async fn run(svc: &Service, as_json: bool, cmd: AuthCommand) -> Result<()> {
    match cmd {
        AuthCommand::Login {
            server,
            token_stdin,
            no_browser,
            device: _,
            client_id: _,
        } => {
            if token_stdin {
                login(svc, as_json, &server, token_stdin).await
            } else {
                device_login(svc, as_json, &server, no_browser).await
            }
        }
        AuthCommand::Status => {
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
                crate::outln!("server:   {}", s("server"));
                crate::outln!("email:    {}", s("user_email"));
                crate::outln!("user id:  {}", s("user_id"));
                let kind = match st["token_kind"].as_str() {
                    Some("oauth") => "browser sign-in (renewed automatically)",
                    Some("env") => "from DATAERAI_TOKEN (not saved)",
                    _ => "personal access token",
                };
                crate::outln!("token:    {kind}");
                crate::outln!("expires:  {}", st["expires_at"].as_str().unwrap_or("never"));
                if let Some(r) = st["refresh_expires_at"].as_str() {
                    crate::outln!("sign-in valid until: {r}");
                }
                crate::outln!("scopes:   {}", scopes.join(", "));
            }
            Ok(())
        }
        AuthCommand::Logout => {
            let had = credentials::remove_credentials(svc.config_dir())
                .map_err(|e| ApiError::internal(format!("cannot remove credentials: {e}")))?;
            if as_json {
                print_json(&json!({"signed_out": had}));
            } else if had {
                crate::outln!("Signed out.");
            } else {
                crate::outln!("Not signed in.");
            }
            Ok(())
        }
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
    save_login(svc, as_json, &creds, &me, json!({})).await
}

/// Save a new login and say so (`--json`: the login's summary plus `extra`).
/// The file is replaced under the refresh lock, so a daemon that is
/// refreshing the previous login cannot overwrite this one.
async fn save_login(
    svc: &Service,
    as_json: bool,
    creds: &Credentials,
    me: &Me,
    extra: Value,
) -> Result<()> {
    let dir = svc.config_dir().to_path_buf();
    let _lock = tokio::task::spawn_blocking(move || credentials::lock_credentials(&dir))
        .await
        .map_err(|e| ApiError::internal(format!("lock task failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("cannot lock the credentials: {e}")))?;
    credentials::save_credentials(svc.config_dir(), creds).map_err(|e| {
        ApiError::internal(format!(
            "cannot save credentials in {}: {e}",
            svc.config_dir().display()
        ))
    })?;
    if as_json {
        let mut summary = json!({
            "server": creds.server, "user_id": me.user_id, "user_email": me.email,
            "expires_at": creds.expires_at, "scopes": me.scopes,
        });
        if let (Some(summary), Value::Object(extra)) = (summary.as_object_mut(), extra) {
            summary.extend(extra);
        }
        print_json(&summary);
    } else {
        crate::outln!(
            "Signed in to {} as {} ({})",
            creds.server,
            me.email,
            me.user_id
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
    // The URL is on the screen already: a browser that does not start is
    // only worth a line in the log (`DATAERAI_LOG=info`).
    if let Err(e) = std::process::Command::new(cmd)
        .args(words)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        tracing::info!("cannot start the browser {cmd:?}: {e}");
    }
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
    eprintln!("    {}", output::printable(&code.verification_uri));
    eprintln!();
    eprintln!(
        "and enter the code:  {}",
        output::printable(&code.user_code)
    );
    eprintln!();
    eprintln!("(or open {} directly)", output::printable(&complete));
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
    let extra = json!({
        "refresh_expires_at": creds.refresh_expires_at, "token_kind": creds.kind(),
    });
    save_login(svc, as_json, &creds, &me, extra).await
}
