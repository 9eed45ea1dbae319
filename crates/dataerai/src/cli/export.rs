//! `dataerai export ID --prov FILE` (an asset's lineage as a W3C PROV-JSON
//! file, in-process) and `dataerai export --ro-crate DIR (--collection ID |
//! --query Q) [--no-data]` (an RO-Crate folder). A crate with data is
//! filled by the daemon — one journaled download per asset, followed here
//! with one progress view for the whole crate, as `download` does; Ctrl-C
//! cancels the downloads. A metadata-only crate needs no daemon.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use dataerai_proto::ApiError;
use dataerai_transfer::ProgressEvent;
use serde_json::{json, Value};

use super::daemon_client::{transfer_error, without_nulls, DaemonClient};
use super::output::{counted, human_bytes, print_json, print_result, ProgressView};
use super::transfer::{absolute, in_daemon};
use super::Result;
use crate::export::{ProvenanceParams, RoCrateParams};
use crate::service::Service;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("what").args(["prov", "ro_crate"]).required(true)))]
#[command(group(clap::ArgGroup::new("source").args(["collection", "query"])))]
pub struct ExportArgs {
    /// The asset whose lineage to export (with --prov).
    #[arg(requires = "prov", conflicts_with = "ro_crate")]
    pub asset_id: Option<String>,
    /// Write the asset's lineage (origins and what was derived from it) as a W3C
    /// PROV-JSON file.
    #[arg(long, value_name = "FILE", requires = "asset_id")]
    pub prov: Option<PathBuf>,
    /// Follow at most N relationships each way (1 to 20, default 20; with --prov).
    #[arg(long, requires = "prov")]
    pub depth: Option<u32>,
    /// Write an RO-Crate 1.1 folder (ro-crate-metadata.json and the files) into DIR,
    /// which must be empty, new, or a crate of the same export (then it is completed).
    #[arg(long, value_name = "DIR", requires = "source")]
    pub ro_crate: Option<PathBuf>,
    /// The crate holds this collection and every collection below it.
    #[arg(long, requires = "ro_crate")]
    pub collection: Option<String>,
    /// The crate holds what this search finds (docs/search.md).
    #[arg(long, requires = "ro_crate")]
    pub query: Option<String>,
    /// Metadata only: files are named by their download URL, nothing is downloaded.
    #[arg(long, requires = "ro_crate")]
    pub no_data: bool,
}

pub async fn run(svc: &Service, as_json: bool, a: ExportArgs) -> Result<()> {
    match (a.prov, a.ro_crate) {
        (Some(file), None) => {
            let asset_id = a.asset_id.unwrap_or_default();
            let r = svc
                .provenance(ProvenanceParams {
                    asset_id,
                    path: Some(absolute(&file)),
                    format: None,
                    direction: None,
                    depth: a.depth,
                })
                .await?;
            print_result(as_json, &r, || {
                let n = |key: &str| r[key].as_u64().unwrap_or_default();
                format!(
                    "Wrote {} (PROV-JSON: {}, {}, {})",
                    r["path"].as_str().unwrap_or_default(),
                    counted(n("entity_count"), "entity", "entities"),
                    counted(n("derivation_count"), "derivation", "derivations"),
                    counted(n("agent_count"), "agent", "agents")
                )
            });
            Ok(())
        }
        (None, Some(dir)) => {
            let params = RoCrateParams {
                dest_dir: absolute(&dir),
                collection_id: a.collection,
                query: a.query,
                include_data: Some(!a.no_data),
                concurrency: None,
            };
            let r = if a.no_data {
                let c = svc.prepare_ro_crate(params).await?;
                json!({
                    "dest_dir": c.dest_dir.to_string_lossy(),
                    "metadata_path": c.metadata_path.to_string_lossy(),
                    "asset_count": c.asset_count, "file_count": c.file_count,
                    "bytes_total": c.bytes_total, "transfers": [],
                })
            } else {
                in_daemon(async |client| follow_crate(client, params).await).await?
            };
            if as_json {
                print_json(&r);
            } else {
                let data = if a.no_data {
                    "metadata only".to_string()
                } else {
                    format!(
                        "{} files, {}",
                        r["file_count"],
                        human_bytes(r["bytes_total"].as_u64().unwrap_or(0))
                    )
                };
                crate::outln!(
                    "Wrote the RO-Crate {} ({} assets, {data})",
                    r["dest_dir"].as_str().unwrap_or_default(),
                    r["asset_count"]
                );
            }
            Ok(())
        }
        _ => Err(ApiError::invalid(
            "give ID --prov FILE, or --ro-crate DIR with --collection or --query",
        )),
    }
}

/// `export.ro_crate` in the daemon, followed until every download ended.
async fn follow_crate(client: &mut DaemonClient, p: RoCrateParams) -> Result<Value> {
    let params = without_nulls(
        json!({"dest_dir": p.dest_dir, "collection_id": p.collection_id,
                                      "query": p.query, "include_data": p.include_data}),
    );
    let mut reply = client.call("export.ro_crate", params).await?;
    let ids: Vec<String> = reply["transfers"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t["transfer_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let total: u64 = reply["transfers"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["bytes_total"].as_u64()).sum())
        .unwrap_or(0);
    let label = "RO-Crate";
    let view = ProgressView::new(label, total);
    let sink = view.sink(label);
    let mut done: HashMap<String, u64> = HashMap::new();
    let mut results: HashMap<String, Value> = HashMap::new();
    let mut failure: Option<ApiError> = None;
    while results.len() < ids.len() && failure.is_none() {
        let n = tokio::select! {
            n = client.next_notification() => n?,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted: cancelling the downloads…");
                for id in &ids {
                    let _ = client.call("transfer.cancel", json!({"transfer_id": id})).await;
                }
                continue;
            }
        };
        let p = &n["params"];
        let Some(id) = p["transfer_id"]
            .as_str()
            .filter(|id| ids.iter().any(|x| x == id))
        else {
            continue;
        };
        match n["method"].as_str().unwrap_or("") {
            "transfer.progress" => {
                if let Ok(mut ev) = serde_json::from_value::<ProgressEvent>(p.clone()) {
                    done.insert(id.to_string(), ev.bytes_done);
                    ev.bytes_done = done.values().sum();
                    ev.bytes_total = total;
                    sink(ev);
                }
            }
            "transfer.completed" => {
                results.insert(id.to_string(), p["result"].clone());
            }
            "transfer.failed" => {
                let e = transfer_error(&p["error"], "download failed");
                failure = Some(ApiError::new(
                    e.code,
                    format!("downloading asset {}: {}", p["asset_id"], e.message),
                ));
            }
            _ => {}
        }
    }
    view.finish();
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(items) = reply["transfers"].as_array_mut() {
        for t in items {
            let id = t["transfer_id"].as_str().unwrap_or_default().to_string();
            if let Some(r) = results.remove(&id) {
                t["result"] = r;
            }
        }
    }
    Ok(reply)
}
