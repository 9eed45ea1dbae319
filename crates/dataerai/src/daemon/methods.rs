//! JSON-RPC method dispatch: one arm per method of `docs/ipc.md`.
//!
//! Long operations (`asset.upload`, `asset.download`) validate and prepare
//! synchronously and return [`Outcome::ReplyThen`]: the connection queues the
//! reply first and only then starts the transfer, so a client always sees the
//! ids before the first notification about them.

use std::sync::Arc;

use dataerai_proto::ipc::{RpcError, RpcErrorData, INVALID_PARAMS, METHOD_NOT_FOUND};
use dataerai_proto::{ApiError, ErrorCode};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::registry::{ErrorInfo, TransferInfo};
use super::DaemonState;
use crate::service::{
    AssetIdParams, CreateProjectParams, DownloadParams, ListAssetsParams, NoParams, PageParams,
    RelationshipParams, SetMetadataParams, UploadParams,
};
use crate::transfer::{download, upload, ProgressSink};

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
        "daemon.shutdown" => match params::<NoParams>(p) {
            Ok(_) => Outcome::ReplyThen(json!({}), async move { state.shutdown.cancel() }.boxed()),
            Err(e) => Outcome::Reply(Err(e)),
        },
        _ => Outcome::Reply(call(&state, method, p).await),
    }
}

async fn call(state: &DaemonState, method: &str, p: Value) -> Result<Value, RpcError> {
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
        "transfer.list" => {
            params::<NoParams>(p)?;
            Ok(json!({ "items": to_value(state.transfers.list())? }))
        }
        "transfer.get" => to_value(
            state
                .transfers
                .get(&params::<TransferIdParams>(p)?.transfer_id)?,
        ),
        "transfer.cancel" => to_value(
            state
                .transfers
                .cancel(&params::<TransferIdParams>(p)?.transfer_id)?,
        ),
        _ => Err(RpcError {
            code: METHOD_NOT_FOUND,
            message: format!("unknown method {method:?}"),
            data: Some(RpcErrorData {
                code: ErrorCode::InvalidInput,
            }),
        }),
    }
}

/// A progress sink that updates the registry and notifies every client.
fn progress_sink(state: &Arc<DaemonState>) -> ProgressSink {
    let state = state.clone();
    Arc::new(move |ev| {
        state.transfers.progress(&ev.transfer_id, ev.bytes_done);
        if let Ok(v) = serde_json::to_value(&ev) {
            state.notify("transfer.progress", v);
        }
    })
}

/// Record the end of a transfer and send `transfer.completed` or `transfer.failed`.
fn finish(state: &DaemonState, id: &str, kind: &str, outcome: Result<Value, ApiError>) {
    state.transfers.finish(id, &outcome);
    match outcome {
        Ok(result) => state.notify(
            "transfer.completed",
            json!({"transfer_id": id, "kind": kind, "result": result}),
        ),
        Err(e) => {
            tracing::warn!(transfer_id = id, "{kind} failed: {e}");
            let error = ErrorInfo {
                code: e.code,
                message: e.message,
            };
            state.notify(
                "transfer.failed",
                json!({"transfer_id": id, "kind": kind, "error": error}),
            );
        }
    }
}

async fn start_upload(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let prepared = state
        .service
        .prepare_upload(params::<UploadParams>(p)?)
        .await?;
    let reply = json!({
        "transfer_id": prepared.transfer_id,
        "kind": "upload",
        "asset_id": prepared.asset_id,
        "bytes_total": prepared.size,
        "chunk_count": prepared.chunk_count,
    });
    let cancel = CancellationToken::new();
    let id = prepared.transfer_id.clone();
    state.transfers.insert(
        TransferInfo {
            transfer_id: id.clone(),
            kind: "upload",
            state: "running",
            asset_id: prepared.asset_id.clone(),
            bytes_done: 0,
            bytes_total: prepared.size,
            chunk_count: prepared.chunk_count,
            result: None,
            error: None,
        },
        cancel.clone(),
    );
    let sink = progress_sink(&state);
    let work = async move {
        let res = upload::run(prepared, cancel, sink).await;
        let res = res
            .and_then(|r| serde_json::to_value(r).map_err(|e| ApiError::internal(e.to_string())));
        finish(&state, &id, "upload", res);
    };
    Ok(Outcome::ReplyThen(reply, work.boxed()))
}

async fn start_download(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let prepared = state
        .service
        .prepare_download(params::<DownloadParams>(p)?)
        .await?;
    let reply = json!({
        "transfer_id": prepared.transfer_id,
        "kind": "download",
        "asset_id": prepared.asset_id,
        "content_id": prepared.content_id,
        "bytes_total": prepared.bytes_total,
        "chunk_count": prepared.chunk_count,
    });
    let cancel = CancellationToken::new();
    let id = prepared.transfer_id.clone();
    state.transfers.insert(
        TransferInfo {
            transfer_id: id.clone(),
            kind: "download",
            state: "running",
            asset_id: prepared.asset_id.clone(),
            bytes_done: 0,
            bytes_total: prepared.bytes_total,
            chunk_count: prepared.chunk_count,
            result: None,
            error: None,
        },
        cancel.clone(),
    );
    let sink = progress_sink(&state);
    let work = async move {
        let res = download::run(prepared, cancel, sink).await;
        let res = res
            .and_then(|r| serde_json::to_value(r).map_err(|e| ApiError::internal(e.to_string())));
        finish(&state, &id, "download", res);
    };
    Ok(Outcome::ReplyThen(reply, work.boxed()))
}
