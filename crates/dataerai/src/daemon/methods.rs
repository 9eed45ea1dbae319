//! JSON-RPC method dispatch: one arm per method of `docs/ipc.md`.
//!
//! Long operations (`asset.upload`, `asset.upload_many`, `asset.download`)
//! validate, prepare and journal synchronously and return
//! [`Outcome::ReplyThen`]: the connection queues the reply first and only then
//! starts the transfer, so a client always sees the ids before the first
//! notification about them.

use std::sync::Arc;

use dataerai_proto::ipc::{RpcError, RpcErrorData, INVALID_PARAMS, METHOD_NOT_FOUND};
use dataerai_proto::{ApiError, ErrorCode};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::transfers;
use super::DaemonState;
use crate::service::{
    AddMemberParams, AssetIdParams, CreateProjectParams, DownloadParams, ListAssetsParams,
    ListMembersParams, ListVersionsParams, NoParams, PageParams, RelationshipParams,
    RemoveMemberParams, SetMetadataParams, UploadParams,
};
use dataerai_transfer::journal::{ErrorInfo, TransferRecord};
use dataerai_transfer::upload::UploadSpec;
use dataerai_transfer::Plan;

pub enum Outcome {
    Reply(Result<Value, RpcError>),
    /// Reply with the value, then run the future (detached from the connection).
    ReplyThen(Value, BoxFuture<'static, ()>),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferIdParams {
    transfer_id: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadManyParams {
    items: Value,
    concurrency: Option<i64>,
    chunk_size_mb: Option<i64>,
}

/// Most items one `asset.upload_many` call takes.
const MAX_BATCH_ITEMS: usize = 10_000;

/// Decode `params` (absent/null means no parameters); unknown names are refused.
fn params<T: DeserializeOwned>(v: Value) -> Result<T, RpcError> {
    let v = if v.is_null() { json!({}) } else { v };
    if !v.is_object() {
        return Err(invalid_params(
            "params must be a JSON object (parameters by name)",
        ));
    }
    serde_json::from_value(v).map_err(|e| invalid_params(&format!("invalid params: {e}")))
}

fn invalid_params(msg: &str) -> RpcError {
    RpcError {
        code: INVALID_PARAMS,
        message: msg.to_string(),
        data: Some(RpcErrorData {
            code: ErrorCode::InvalidInput,
        }),
    }
}

fn to_value<T: Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()).into())
}

pub async fn dispatch(state: Arc<DaemonState>, method: &str, p: Value) -> Outcome {
    match method {
        "asset.upload" => start_upload(state, p)
            .await
            .unwrap_or_else(|e| Outcome::Reply(Err(e))),
        "asset.download" => start_download(state, p)
            .await
            .unwrap_or_else(|e| Outcome::Reply(Err(e))),
        "asset.upload_many" => start_upload_many(state, p)
            .await
            .unwrap_or_else(|e| Outcome::Reply(Err(e))),
        "daemon.shutdown" => match params::<NoParams>(p) {
            Ok(_) => Outcome::ReplyThen(json!({}), async move { state.shutdown.cancel() }.boxed()),
            Err(e) => Outcome::Reply(Err(e)),
        },
        _ => Outcome::Reply(call(&state, method, p).await),
    }
}

async fn call(state: &Arc<DaemonState>, method: &str, p: Value) -> Result<Value, RpcError> {
    let svc = &state.service;
    match method {
        "daemon.ping" => {
            params::<NoParams>(p)?;
            Ok(json!({
                "version": env!("CARGO_PKG_VERSION"),
                "pid": std::process::id(),
                "socket_path": state.socket_path.to_string_lossy(),
            }))
        }
        "auth.status" => {
            params::<NoParams>(p)?;
            Ok(svc.auth_status().await?)
        }
        "project.create" => to_value(
            svc.create_project(params::<CreateProjectParams>(p)?)
                .await?,
        ),
        "project.list" => to_value(svc.list_projects(params::<PageParams>(p)?).await?),
        "project.list_members" => {
            to_value(svc.list_members(params::<ListMembersParams>(p)?).await?)
        }
        "project.add_member" => to_value(svc.add_member(params::<AddMemberParams>(p)?).await?),
        "project.remove_member" => {
            svc.remove_member(params::<RemoveMemberParams>(p)?).await?;
            Ok(json!({}))
        }
        "asset.list" => to_value(svc.list_assets(params::<ListAssetsParams>(p)?).await?),
        "asset.get_metadata" => to_value(
            svc.get_metadata(&params::<AssetIdParams>(p)?.asset_id)
                .await?,
        ),
        "asset.set_metadata" => to_value(svc.set_metadata(params::<SetMetadataParams>(p)?).await?),
        "relationship.create" => to_value(
            svc.create_relationship(params::<RelationshipParams>(p)?)
                .await?,
        ),
        "asset.list_versions" => {
            to_value(svc.list_versions(params::<ListVersionsParams>(p)?).await?)
        }
        "transfer.list" => {
            params::<NoParams>(p)?;
            let items: Vec<Value> = state
                .transfers
                .list()
                .await?
                .iter()
                .map(|r| r.to_json())
                .collect();
            Ok(json!({ "items": items }))
        }
        "transfer.get" => {
            let id = params::<TransferIdParams>(p)?.transfer_id;
            Ok(state.transfers.get(&id).await?.to_json())
        }
        "transfer.pause" => {
            let id = params::<TransferIdParams>(p)?.transfer_id;
            Ok(transfers::pause(state, &id).await?.to_json())
        }
        "transfer.resume" => {
            let id = params::<TransferIdParams>(p)?.transfer_id;
            Ok(transfers::resume(state, &id).await?.to_json())
        }
        "transfer.cancel" => {
            let id = params::<TransferIdParams>(p)?.transfer_id;
            Ok(transfers::cancel(state, &id).await?.to_json())
        }
        _ => Err(RpcError {
            code: METHOD_NOT_FOUND,
            message: format!("unknown method {method:?}"),
            data: Some(RpcErrorData {
                code: ErrorCode::InvalidInput,
            }),
        }),
    }
}

/// Journal a new transfer that runs `plan`.
async fn register<P: Plan>(
    state: &DaemonState,
    plan: &P,
    batch_id: Option<String>,
) -> Result<TransferRecord, ApiError> {
    state.transfers.register(plan.new_transfer(batch_id)?).await
}

/// The reply of a method that started a transfer (`asset.upload`, `asset.download`).
fn started(rec: &TransferRecord) -> Value {
    json!({
        "transfer_id": rec.transfer_id,
        "kind": rec.kind,
        "asset_id": rec.asset_id,
        "bytes_total": rec.bytes_total,
        "chunk_count": rec.chunk_count,
        "file_count": rec.file_count,
    })
}

/// Prepare and journal one upload; returns the `asset.upload` reply.
async fn register_upload(
    state: &DaemonState,
    p: UploadParams,
    batch_id: Option<String>,
) -> Result<Value, ApiError> {
    let spec: UploadSpec = state.service.prepare_upload(p).await?;
    journal_upload(state, spec, batch_id).await
}

/// Journal a prepared upload; returns the `asset.upload` reply.
async fn journal_upload(
    state: &DaemonState,
    spec: UploadSpec,
    batch_id: Option<String>,
) -> Result<Value, ApiError> {
    Ok(started(&register(state, &spec, batch_id).await?))
}

/// Reply with `reply`, then start the transfer it names.
fn reply_then_start(state: Arc<DaemonState>, reply: Value) -> Outcome {
    let id = reply["transfer_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Outcome::ReplyThen(
        reply,
        async move {
            transfers::start(&state, &id, None);
        }
        .boxed(),
    )
}

async fn start_upload(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let reply = register_upload(&state, params::<UploadParams>(p)?, None).await?;
    Ok(reply_then_start(state, reply))
}

async fn start_download(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let spec = state
        .service
        .prepare_download(params::<DownloadParams>(p)?)
        .await?;
    let rec = register(&state, &spec, None).await?;
    let mut reply = started(&rec);
    reply["content_id"] = json!(rec.content_id);
    Ok(reply_then_start(state, reply))
}

/// `asset.upload_many`: every item is prepared (at most `concurrency` at once);
/// one that fails gets an `error` and no transfer, the others are started with
/// at most `concurrency` of them running at a time.
async fn start_upload_many(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let p = params::<UploadManyParams>(p)?;
    let items = match p.items {
        Value::Array(items) if !items.is_empty() && items.len() <= MAX_BATCH_ITEMS => items,
        _ => {
            return Err(ApiError::invalid(format!(
                "items must be a list of 1 to {MAX_BATCH_ITEMS} upload parameter objects"
            ))
            .into())
        }
    };
    let concurrency = match p.concurrency {
        None => 8,
        Some(c) if (1..=64).contains(&c) => c.unsigned_abs() as usize,
        Some(c) => {
            return Err(
                ApiError::invalid(format!("concurrency must be between 1 and 64, got {c}")).into(),
            )
        }
    };
    dataerai_transfer::chunk_size_from_mb(p.chunk_size_mb)?;
    let batch_id = uuid::Uuid::new_v4().to_string();
    let parsed: Vec<Result<UploadParams, ApiError>> = items
        .into_iter()
        .map(|item| {
            let mut up: UploadParams = serde_json::from_value(item)
                .map_err(|e| ApiError::invalid(format!("invalid item: {e}")))?;
            if up.chunk_size_mb.is_some() {
                return Err(ApiError::invalid(
                    "chunk_size_mb is a parameter of the whole batch, not of an item",
                ));
            }
            up.chunk_size_mb = p.chunk_size_mb;
            Ok(up)
        })
        .collect();
    let specs = state.service.prepare_uploads(parsed, concurrency).await;
    let mut prepared = Vec::with_capacity(specs.len());
    for (index, spec) in specs.into_iter().enumerate() {
        let journaled = match spec {
            Ok(spec) => journal_upload(&state, spec, Some(batch_id.clone())).await,
            Err(e) => Err(e),
        };
        prepared.push(match journaled {
            Ok(r) => json!({"index": index, "transfer_id": r["transfer_id"],
                            "asset_id": r["asset_id"], "error": null}),
            Err(e) => json!({"index": index, "transfer_id": null, "asset_id": null,
                             "error": ErrorInfo::from(&e)}),
        });
    }
    let ids: Vec<String> = prepared
        .iter()
        .filter_map(|i| i["transfer_id"].as_str().map(str::to_string))
        .collect();
    let reply = json!({"batch_id": batch_id, "items": prepared});
    let work = async move { transfers::start_in_order(&state, ids, concurrency) };
    Ok(Outcome::ReplyThen(reply, work.boxed()))
}
