//! `dataerai upload` and `dataerai download`: a transfer run in this process
//! (no daemon), with a progress view; Ctrl-C cancels and cleans up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use dataerai_client::credentials;
use dataerai_proto::api::OwnerType;
use dataerai_proto::ApiError;
use dataerai_transfer::journal::Journal;
use dataerai_transfer::{
    download, upload, Observer, Plan, ProgressEvent, ProgressSink, RunContext, Stop,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::assets::AssetFields;
use super::output::{human_bytes, print_json, ProgressView};
use super::Result;
use crate::service::{DownloadParams, Service, UploadParams};

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("owner").args(["project", "user"])))]
pub struct UploadArgs {
    /// The file or directory to upload (a directory becomes one asset).
    pub file: PathBuf,
    /// Title of the new asset (required unless --asset).
    #[arg(long, required_unless_present = "asset")]
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
    /// Replace local files that exist and differ (default: refuse, nothing written;
    /// files already there with the same bytes are always skipped).
    #[arg(long)]
    pub overwrite: bool,
    /// Allow hidden paths (`.bashrc`, `.ssh/…`) when downloading into your home directory.
    #[arg(long)]
    pub allow_hidden: bool,
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
            super::output::printable(&error.message),
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
        dataerai_transfer::DEFAULT_RETRY_WINDOW,
    );
    Ok((ctx, view))
}

fn stopped(s: Stop) -> ApiError {
    match s {
        Stop::Error(e) => e,
        Stop::Paused => ApiError::internal("transfer paused"),
    }
}

pub async fn upload_cmd(svc: &Service, as_json: bool, mut a: UploadArgs) -> Result<()> {
    let (owner_type, owner_id) = match (&a.asset, a.project) {
        (Some(_), _) => (None, None),
        (None, Some(p)) => (Some(OwnerType::Project.to_string()), Some(p)),
        (None, None) => (
            Some(OwnerType::User.to_string()),
            Some(credentials::load_credentials(svc.config_dir())?.user_id),
        ),
    };
    let params = UploadParams {
        local_path: a.file.to_string_lossy().into_owned(),
        title: a.title,
        owner_type,
        owner_id,
        asset_id: a.asset,
        metadata: a.fields.metadata()?.map(Value::Object),
        tags: a.fields.tags(),
        description: a.fields.description,
        alias: a.fields.alias,
        collection_id: a.collection,
        record_type: a.fields.record_type,
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
        crate::outln!(
            "Uploaded {what} ({}, {} chunk{}, {} sent) as asset {}",
            human_bytes(r.total_bytes),
            r.chunk_count,
            if r.chunk_count == 1 { "" } else { "s" },
            human_bytes(r.bytes_sent),
            r.asset_id
        );
        if let [one] = r.files.as_slice() {
            crate::outln!("content: {}  checksum: {}", r.content_id, one.checksum);
        } else {
            crate::outln!("content: {}", r.content_id);
        }
    }
    Ok(())
}

pub async fn download_cmd(svc: &Service, as_json: bool, a: DownloadArgs) -> Result<()> {
    let spec = svc
        .prepare_download(DownloadParams {
            asset_id: a.asset_id,
            dest_dir: a.output.to_string_lossy().into_owned(),
            content_id: a.content_id,
            chunk_size_mb: a.chunk_size_mb,
            overwrite: a.overwrite,
            allow_hidden: a.allow_hidden,
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
            let note = if f.skipped {
                ", already there: skipped"
            } else {
                ""
            };
            crate::outln!("{}  ({}{note})", f.local_path, human_bytes(f.size));
        }
    }
    Ok(())
}
