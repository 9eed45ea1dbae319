//! `dataerai upload` and `dataerai download`: the transfer is handed to the
//! daemon ([`super::daemon_client::connect_or_start`] starts one when none
//! answers) and journaled there, and this command follows its notifications
//! with a progress view. So a CLI that is killed (or whose terminal closes)
//! leaves a transfer the daemon finishes, resumes after a crash, and that a
//! re-run with the same `--idempotency-key` follows instead of starting
//! again. Ctrl-C cancels the transfer (the daemon cleans up). A daemon this
//! command started is asked to stop at the end; it declines while other
//! transfers run.

use std::path::{Path, PathBuf};

use clap::Args;
use dataerai_proto::api::OwnerType;
use dataerai_proto::ApiError;
use dataerai_transfer::ProgressEvent;
use serde_json::{json, Value};

use super::assets::AssetFields;
use super::daemon_client::{connect_or_start, transfer_error, without_nulls, DaemonClient};
use super::output::{human_bytes, print_json, ProgressView};
use super::Result;
use crate::service::{DownloadParams, Service, UploadParams};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("owner").args(["project", "user"])))]
#[command(
    after_help = "--metadata also takes a JSON file (--metadata FILE.json) holding title, description, tags and metadata (and alias, record_type); flags given on the command line win over the file."
)]
pub struct UploadArgs {
    /// The file or directory to upload (a directory becomes one asset).
    #[arg(required_unless_present = "file_flag", conflicts_with = "file_flag")]
    pub file: Option<PathBuf>,
    /// The file or directory to upload, as an option (the same as FILE).
    #[arg(long = "file", id = "file_flag", value_name = "PATH")]
    pub file_flag: Option<PathBuf>,
    /// Title of the new asset (required unless --asset, or a --metadata file holds it).
    #[arg(long, required_unless_present_any = ["asset", "metadata"])]
    pub title: Option<String>,
    /// Add a new content version to this existing asset instead.
    #[arg(long, conflicts_with_all = ["title", "project", "user", "alias", "collection", "description", "metadata", "tags", "record_type"])]
    pub asset: Option<String>,
    /// Owning project id (one of --project / --user is required unless --asset).
    #[arg(long, required_unless_present_any = ["user", "asset"])]
    pub project: Option<String>,
    /// Make it a personal asset of the signed-in user.
    #[arg(long)]
    pub user: bool,
    #[command(flatten)]
    pub fields: AssetFields,
    /// Collection to file the asset in.
    #[arg(long)]
    pub collection: Option<String>,
    /// The storage allocation to charge: any you may write to, e.g. a project's for a personal
    /// upload (default: the owner's).
    #[arg(long)]
    pub allocation_id: Option<String>,
    /// Chunk size in MiB: a power of two from 1 to 512 (default 64).
    #[arg(long)]
    pub chunk_size_mb: Option<i64>,
    /// Name this upload: running the command again with the same key follows the
    /// transfer the first run started (e.g. after the CLI was killed) instead of
    /// uploading again.
    #[arg(long)]
    pub idempotency_key: Option<String>,
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
    /// Replace local files that exist and differ (default: refuse, nothing written;
    /// files already there with the same bytes are always skipped).
    #[arg(long)]
    pub overwrite: bool,
    /// Allow hidden paths (`.bashrc`, `.ssh/…`) when downloading into your home directory.
    #[arg(long)]
    pub allow_hidden: bool,
    /// Name this download: running the command again with the same key follows the
    /// transfer the first run started instead of downloading again.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// A path as the daemon (whose working directory differs) must see it.
pub(super) fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// Hand `method` to the daemon and follow the transfer it starts to its end;
/// answers its result. Ctrl-C cancels it.
pub(super) async fn run_in_daemon(method: &str, params: Value, label: &str) -> Result<Value> {
    in_daemon(async |client| follow(client, method, params, label).await).await
}

/// Run `work` with a daemon ([`connect_or_start`] starts one when none
/// answers), then ask a daemon this command started to stop.
pub(super) async fn in_daemon<T>(
    work: impl AsyncFnOnce(&mut DaemonClient) -> Result<T>,
) -> Result<T> {
    let (mut client, started) = connect_or_start().await?;
    let outcome = work(&mut client).await;
    stop_started_daemon(&mut client, started).await;
    outcome
}

/// Ask a daemon this command started to stop. It declines (and stays) while
/// other transfers run; else wait for it to exit, so the next command does
/// not reach a daemon on its way out.
async fn stop_started_daemon(client: &mut DaemonClient, started: Option<std::process::Child>) {
    let Some(mut daemon) = started else {
        return;
    };
    match client.call("daemon.shutdown", json!({})).await {
        Ok(r) if r["stopping"] == true => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while matches!(daemon.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        Ok(_) => {}
        Err(e) => tracing::debug!("daemon.shutdown: {e}"),
    }
}

async fn follow(
    client: &mut DaemonClient,
    method: &str,
    params: Value,
    label: &str,
) -> Result<Value> {
    let reply = client.call(method, params).await?;
    let id = reply["transfer_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let view = ProgressView::new(label, reply["bytes_total"].as_u64().unwrap_or(0));
    let sink = view.sink(label);
    let outcome = loop {
        let n = tokio::select! {
            n = client.next_notification() => n?,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted: cancelling the transfer…");
                client.call("transfer.cancel", json!({"transfer_id": id})).await?;
                continue;
            }
        };
        let p = &n["params"];
        if p["transfer_id"] != id.as_str() {
            continue;
        }
        match n["method"].as_str().unwrap_or("") {
            "transfer.progress" => {
                if let Ok(ev) = serde_json::from_value::<ProgressEvent>(p.clone()) {
                    sink(ev);
                }
            }
            "transfer.retrying" => eprintln!(
                "{} ({}): retry {} in {:.1}s",
                super::output::printable(p["error"]["message"].as_str().unwrap_or("")),
                p["error"]["code"].as_str().unwrap_or(""),
                p["attempt"],
                p["delay_s"].as_f64().unwrap_or(0.0)
            ),
            "transfer.completed" => break Ok(p["result"].clone()),
            "transfer.failed" => break Err(transfer_error(&p["error"], "transfer failed")),
            _ => {}
        }
    };
    view.finish();
    outcome
}

/// `asset.upload` params of a parsed upload (absent fields left out).
fn upload_params(p: UploadParams) -> Value {
    // Every field the daemon takes, by construction (the same struct reads them).
    without_nulls(serde_json::to_value(p).unwrap_or_default())
}

/// What a `--metadata FILE.json` describes: the asset's fields, beside its metadata.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadDescription {
    title: Option<String>,
    description: Option<String>,
    alias: Option<String>,
    record_type: Option<String>,
    tags: Option<Vec<String>>,
    metadata: Option<serde_json::Map<String, Value>>,
}

/// `--metadata`: inline JSON metadata (`'{"k": 1}'`, as for `metadata set`), or
/// the name of a JSON file holding `title, description, tags, metadata` (and
/// `alias`, `record_type`); flags given on the command line win over the file.
fn upload_description(fields: &AssetFields) -> Result<UploadDescription> {
    let Some(value) = fields.metadata.as_deref() else {
        return Ok(UploadDescription::default());
    };
    if value.trim_start().starts_with('{') {
        return Ok(UploadDescription {
            metadata: fields.metadata()?,
            ..UploadDescription::default()
        });
    }
    let text = std::fs::read_to_string(value).map_err(|e| {
        ApiError::invalid(format!(
            "--metadata {value}: cannot read it ({e}); give a JSON object or a JSON file"
        ))
    })?;
    let d = serde_json::from_str(&text).map_err(|e| {
        ApiError::invalid(format!(
            "--metadata {value}: not a JSON object with title, description, tags, metadata ({e})"
        ))
    })?;
    Ok(d)
}

pub async fn upload_cmd(svc: &Service, as_json: bool, mut a: UploadArgs) -> Result<()> {
    let (owner_type, owner_id) = match (&a.asset, a.project) {
        (Some(_), _) => (None, None),
        (None, Some(p)) => (Some(OwnerType::Project.to_string()), Some(p)),
        (None, None) => (
            Some(OwnerType::User.to_string()),
            Some(svc.user_id().await?),
        ),
    };
    let described = upload_description(&a.fields)?;
    let file = a.file.or(a.file_flag).unwrap_or_default();
    let params = UploadParams {
        local_path: absolute(&file),
        title: a.title.or(described.title),
        owner_type,
        owner_id,
        asset_id: a.asset,
        metadata: described.metadata.map(Value::Object),
        tags: a.fields.tags().or(described.tags),
        description: a.fields.description.or(described.description),
        alias: a.fields.alias.or(described.alias),
        collection_id: a.collection,
        record_type: a.fields.record_type.or(described.record_type),
        allocation_id: a.allocation_id,
        chunk_size_mb: a.chunk_size_mb,
        idempotency_key: a.idempotency_key,
    };
    // Checked here first, so bad input is reported without a daemon.
    svc.check_upload(params.clone())?;
    let label = format!(
        "upload {}",
        file.file_name().unwrap_or_default().to_string_lossy()
    );
    let r = run_in_daemon("asset.upload", upload_params(params), &label).await?;
    if as_json {
        print_json(&r);
    } else {
        let files = r["files"].as_array().cloned().unwrap_or_default();
        let what = match files.as_slice() {
            [one] => one["name"].as_str().unwrap_or_default().to_string(),
            many => format!("{} files", many.len()),
        };
        let chunks = r["chunk_count"].as_u64().unwrap_or(0);
        crate::outln!(
            "Uploaded {what} ({}, {chunks} chunk{}, {} sent) as asset {}",
            human_bytes(r["total_bytes"].as_u64().unwrap_or(0)),
            if chunks == 1 { "" } else { "s" },
            human_bytes(r["bytes_sent"].as_u64().unwrap_or(0)),
            r["asset_id"].as_str().unwrap_or_default()
        );
        let content = r["content_id"].as_str().unwrap_or_default();
        if let [one] = files.as_slice() {
            let checksum = one["checksum"].as_str().unwrap_or_default();
            crate::outln!("content: {content}  checksum: {checksum}");
        } else {
            crate::outln!("content: {content}");
        }
    }
    Ok(())
}

pub async fn download_cmd(_svc: &Service, as_json: bool, a: DownloadArgs) -> Result<()> {
    let p = DownloadParams {
        asset_id: a.asset_id,
        dest_dir: absolute(&a.output),
        content_id: a.content_id,
        chunk_size_mb: a.chunk_size_mb,
        overwrite: a.overwrite,
        allow_hidden: a.allow_hidden,
        idempotency_key: a.idempotency_key,
    };
    let params = without_nulls(json!({
        "asset_id": p.asset_id, "dest_dir": p.dest_dir, "content_id": p.content_id,
        "chunk_size_mb": p.chunk_size_mb, "overwrite": p.overwrite,
        "allow_hidden": p.allow_hidden, "idempotency_key": p.idempotency_key,
    }));
    let label = format!("download {}", p.asset_id);
    let r = run_in_daemon("asset.download", params, &label).await?;
    if as_json {
        print_json(&r);
    } else {
        for f in r["files"].as_array().cloned().unwrap_or_default() {
            let note = if f["skipped"] == true {
                ", already there: skipped"
            } else {
                ""
            };
            crate::outln!(
                "{}  ({}{note})",
                f["local_path"].as_str().unwrap_or_default(),
                human_bytes(f["size"].as_u64().unwrap_or(0))
            );
        }
    }
    Ok(())
}
