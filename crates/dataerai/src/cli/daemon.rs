//! `dataerai daemon` (run the transfer daemon) and `dataerai transfers …`
//! (list and control a running daemon's transfers over its socket).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use dataerai_transfer::journal::TransferState;
use serde_json::{json, Value};

use super::daemon_client::{transfer_error, DaemonClient};
use super::output::{human_bytes, print_json, print_result};
use super::Result;
use crate::config;
use crate::service::Service;

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

/// `dataerai daemon`: serve on `socket` (default: [`config::default_socket_path`])
/// until stopped; returns the exit code.
pub async fn run_daemon(svc: Service, socket: Option<PathBuf>, retry_window_s: u64) -> i32 {
    let socket = socket.unwrap_or_else(config::default_socket_path);
    let opts = crate::daemon::DaemonOptions {
        socket_path: std::path::absolute(&socket).unwrap_or(socket),
        state_dir: dataerai_transfer::journal::default_state_dir(),
        retry_window: Duration::from_secs(retry_window_s),
    };
    crate::daemon::run(opts, svc).await
}

/// `dataerai transfers …` against the daemon on `socket` (default as for `dataerai daemon`).
pub async fn transfers(
    socket: Option<PathBuf>,
    as_json: bool,
    cmd: TransfersCommand,
) -> Result<()> {
    let socket = socket.unwrap_or_else(config::default_socket_path);
    transfers_cmd(&socket, as_json, cmd).await
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
                    crate::outln!("{}", transfer_line(t));
                }
                crate::outln!("({} transfers)", items.len());
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
    print_result(as_json, &t, || transfer_line(&t));
    match (
        matches!(cmd, TransfersCommand::Wait { .. }),
        t["error"].as_object(),
    ) {
        (true, Some(_)) => Err(transfer_error(&t["error"], "transfer failed")),
        _ => Ok(()),
    }
}

/// Follow notifications until transfer `id` ends; returns its final Transfer object.
async fn wait_for_end(client: &mut DaemonClient, id: &str, mut t: Value) -> Result<Value> {
    let finished = |t: &Value| {
        let state = t["state"].as_str().and_then(|s| s.parse().ok());
        state.is_some_and(|s: TransferState| s.is_final() || s == TransferState::Paused)
    };
    while !finished(&t) {
        let n = client.next_notification().await?;
        let method = n["method"].as_str().unwrap_or("");
        let ends = matches!(method, "transfer.completed" | "transfer.failed")
            || (method == "transfer.state"
                && n["params"]["state"] == TransferState::Paused.as_str());
        if n["params"]["transfer_id"] == id && ends {
            t = client
                .call("transfer.get", json!({"transfer_id": id}))
                .await?;
        }
    }
    Ok(t)
}
