//! JSON-RPC method dispatch: one arm per method of `docs/ipc.md`.
//!
//! Long operations (`asset.upload`, `asset.upload_many`, `asset.download`)
//! validate, prepare and journal synchronously and return
//! [`Outcome::ReplyThen`]: the connection queues the reply first and only then
//! starts the transfer, so a client always sees the ids before the first
//! notification about them.

use std::future::Future;
use std::sync::Arc;

use dataerai_proto::api::check_key;
use dataerai_proto::ipc::{RpcError, RpcErrorData, INVALID_PARAMS, METHOD_NOT_FOUND};
use dataerai_proto::{ApiError, ErrorCode};
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::transfers;
use super::{DaemonState, HeldBack};
use crate::service;
use crate::service::{DownloadParams, NoParams, UploadParams};
use dataerai_transfer::journal::{
    ErrorInfo, NewTransfer, TransferKind, TransferRecord, TransferState,
};
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

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ShutdownParams {
    /// Stop even while transfers run (they resume when a daemon starts again).
    #[serde(default)]
    force: bool,
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

/// Most items of one `asset.upload_many` call started before its reply. Their
/// notifications are held back until the reply is queued, then go out at
/// once (about three per small file), and the burst must fit the
/// notification buffer (`EVENT_BUFFER`) with room to spare, or a client
/// would miss some.
const EARLY_STARTS: usize = 768;

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

/// A method that is one service call: decode its parameters (the call's
/// argument type says which), run it, and answer what it returns.
async fn answer<P, T, F>(p: Value, run: impl FnOnce(P) -> F) -> Result<Value, RpcError>
where
    P: DeserializeOwned,
    T: Serialize,
    F: Future<Output = service::Result<T>>,
{
    to_value(run(params(p)?).await?)
}

/// As [`answer`], for a service call that returns nothing: the reply is `{}`.
async fn answer_empty<P, F>(p: Value, run: impl FnOnce(P) -> F) -> Result<Value, RpcError>
where
    P: DeserializeOwned,
    F: Future<Output = service::Result<()>>,
{
    run(params(p)?).await?;
    Ok(json!({}))
}

pub async fn dispatch(state: Arc<DaemonState>, method: &str, p: Value) -> Outcome {
    let started = match method {
        "asset.upload" => start_upload(state, p).await,
        "asset.download" => start_download(state, p).await,
        "asset.upload_many" => start_upload_many(state, p).await,
        "daemon.shutdown" => shutdown(state, p).await,
        "export.ro_crate" => start_ro_crate(state, p).await,
        _ => return Outcome::Reply(call(&state, method, p).await),
    };
    started.unwrap_or_else(|e| Outcome::Reply(Err(e)))
}

/// `daemon.shutdown`: stops the daemon, unless transfers are queued, running
/// or retrying and `force` is not set — then it keeps running (a client that
/// started the daemon and exits, e.g. on Ctrl-C, must not stop transfers other
/// clients or a re-run of the same script are waiting for), says so, and stops
/// by itself once they have ended and no client is connected.
async fn shutdown(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let p = params::<ShutdownParams>(p)?;
    let running = state.transfers.running().await?;
    if !running.is_empty() && !p.force {
        tracing::info!(
            "daemon.shutdown declined: {} transfer(s) still running",
            running.len()
        );
        state.exit_when_idle();
        return Ok(Outcome::Reply(Ok(json!({
            "stopping": false,
            "running_transfers": running,
            "exit_when_idle": true,
        }))));
    }
    Ok(Outcome::ReplyThen(
        json!({"stopping": true}),
        async move { state.shutdown.cancel() }.boxed(),
    ))
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
        "project.create" => answer(p, |q| svc.create_project(q)).await,
        "project.list" => answer(p, |q| svc.list_projects(q)).await,
        "project.list_members" => answer(p, |q| svc.list_members(q)).await,
        "project.add_member" => answer(p, |q| svc.add_member(q)).await,
        "project.remove_member" => answer_empty(p, |q| svc.remove_member(q)).await,
        "asset.list" => answer(p, |q| svc.list_assets(q)).await,
        "asset.search" => answer(p, |q| svc.search(q)).await,
        "asset.delete" => answer_empty(p, |q| svc.delete_asset(q)).await,
        "asset.delete_version" => answer_empty(p, |q| svc.delete_version(q)).await,
        "asset.get_metadata" => answer(p, |q| svc.get_metadata(q)).await,
        "asset.set_metadata" => answer(p, |q| svc.set_metadata(q)).await,
        "relationship.create" => answer(p, |q| svc.create_relationship(q)).await,
        "relationship.list" => answer(p, |q| svc.list_relationships(q)).await,
        "asset.lineage" => answer(p, |q| svc.lineage(q)).await,
        // The collection tree (`service/collections.rs`).
        "collection.create" => answer(p, |q| svc.create_collection(q)).await,
        "collection.list" => answer(p, |q| svc.list_collections(q)).await,
        "collection.rename" => answer(p, |q| svc.rename_collection(q)).await,
        "collection.move" => answer(p, |q| svc.move_collection(q)).await,
        "collection.delete" => answer_empty(p, |q| svc.delete_collection(q)).await,
        "collection.ensure_path" => answer(p, |q| svc.ensure_collection_path(q)).await,
        "collection.download_plan" => answer(p, |q| svc.plan_collection_download(q)).await,
        "asset.move" => answer(p, |q| svc.move_asset(q)).await,
        "asset.provenance" => answer(p, |q| svc.provenance(q)).await,
        "asset.list_versions" => answer(p, |q| svc.list_versions(q)).await,
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
            if let Some(t) = state.transfers.waiting_json(&id) {
                return Ok(t);
            }
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
            if let Some(t) = state.transfers.waiting_json(&id) {
                state.transfers.cancel_waiting(&id);
                return Ok(t);
            }
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

/// The transfer an earlier call with idempotency key `key` started, to attach
/// to: running, queued, retrying or completed as it is; a paused one or one
/// that failed resumably is resumed first. `None` when there is none, or it
/// was given up (cancelled, failed for good): then the key starts a new one.
async fn repeat_of(
    state: &Arc<DaemonState>,
    key: &str,
    kind: TransferKind,
) -> Result<Option<TransferRecord>, ApiError> {
    check_key("idempotency_key", key)?;
    let Some(rec) = state.transfers.keyed(key).await? else {
        return Ok(None);
    };
    if rec.kind != kind {
        return Err(ApiError::invalid(format!(
            "idempotency_key {key:?} already names {} transfer {}",
            rec.kind, rec.transfer_id
        )));
    }
    let resumable = rec.error.as_ref().is_some_and(transfers::is_resumable);
    match rec.state {
        TransferState::Cancelled => Ok(None),
        TransferState::Failed if !resumable => Ok(None),
        TransferState::Failed | TransferState::Paused => {
            Ok(Some(transfers::resume(state, &rec.transfer_id).await?))
        }
        _ => Ok(Some(rec)),
    }
}

/// Reply to a repeated call with the transfer it attaches to; a transfer that
/// already completed is announced again (`transfer.completed`) right after
/// the reply, so a client following it gets its result.
fn attach(state: Arc<DaemonState>, rec: TransferRecord) -> Outcome {
    let mut reply = started(&rec);
    reply["content_id"] = json!(rec.content_id);
    reply["repeated"] = json!(true);
    add_result(&mut reply, &rec);
    Outcome::ReplyThen(
        reply,
        async move { announce_completed(&state, &rec) }.boxed(),
    )
}

/// A transfer that completed already carries its result in the reply, so
/// the caller need not wait for `transfer.completed` (still announced to
/// every client right after the reply).
fn add_result(reply: &mut Value, rec: &TransferRecord) {
    if rec.state == TransferState::Completed {
        reply["state"] = json!(rec.state);
        reply["result"] = json!(rec.result);
    }
}

fn announce_completed(state: &DaemonState, rec: &TransferRecord) {
    if rec.state == TransferState::Completed {
        state.notify(
            "transfer.completed",
            json!({"transfer_id": rec.transfer_id, "kind": rec.kind, "result": rec.result}),
        );
    }
}

async fn start_upload(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let p = params::<UploadParams>(p)?;
    let key = p.idempotency_key.clone();
    let prepare = prepare_upload(state.clone(), p, None);
    begin(state, TransferKind::Upload, key, prepare).await
}

/// Prepares the upload `p` describes (as part of batch `batch_id`, if any).
/// Every attempt sends a lone small file with the same key, so an attempt
/// after an answer that never came gets the upload the server made then.
fn prepare_upload(state: Arc<DaemonState>, p: UploadParams, batch_id: Option<String>) -> Prepare {
    let single_key = uuid::Uuid::new_v4().to_string();
    Box::new(move || {
        let (state, p, batch_id) = (state.clone(), p.clone(), batch_id.clone());
        let single_key = Some(single_key.clone());
        async move {
            let log = Some(state.transfers.start_log());
            let prepared = state
                .service
                .prepare_upload_journaled(p, log, single_key)
                .await;
            if prepared.is_err() {
                // Its clean-up may have to wait for the server.
                state.transfers.cleanups.notify_one();
            }
            prepared?.new_transfer(batch_id)
        }
        .boxed()
    })
}

async fn start_download(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let p = params::<DownloadParams>(p)?;
    let key = p.idempotency_key.clone();
    let prepare = {
        let state = state.clone();
        move || {
            let (state, p) = (state.clone(), p.clone());
            async move { state.service.prepare_download(p).await?.new_transfer(None) }.boxed()
        }
    };
    begin(state, TransferKind::Download, key, prepare).await
}

/// Prepares a new transfer (creates the asset and its upload session, or
/// looks the content version up): what needs the server before a transfer
/// can be journaled.
type Prepare = Box<dyn Fn() -> BoxFuture<'static, Result<NewTransfer, ApiError>> + Send + Sync>;

/// Start a new transfer: attach to the one an idempotency key names, or
/// prepare, journal and start it. When the server cannot be reached, answer
/// at once with a transfer id and keep trying in the background
/// ([`wait_for_server`]) instead of failing.
async fn begin<F>(
    state: Arc<DaemonState>,
    kind: TransferKind,
    key: Option<String>,
    prepare: F,
) -> Result<Outcome, RpcError>
where
    F: Fn() -> BoxFuture<'static, Result<NewTransfer, ApiError>> + Send + Sync + 'static,
{
    let _keys = match &key {
        Some(key) => {
            let held = state.transfers.keys.lock().await;
            if let Some(id) = state.transfers.waiting_with_key(key) {
                return Ok(Outcome::Reply(Ok(waiting_reply(&id, kind, true))));
            }
            if let Some(rec) = repeat_of(&state, key, kind).await? {
                return Ok(attach(state.clone(), rec));
            }
            Some(held)
        }
        None => None,
    };
    match prepare().await {
        Ok(t) => {
            let rec = state.transfers.register(t).await?;
            if let Some(key) = &key {
                state.transfers.set_key(key, &rec.transfer_id).await?;
            }
            let mut reply = started(&rec);
            if kind == TransferKind::Download {
                reply["content_id"] = json!(rec.content_id);
            }
            if rec.state == TransferState::Completed {
                // A lone small file: uploaded while it was prepared.
                reply["content_id"] = json!(rec.content_id);
                add_result(&mut reply, &rec);
                let state = state.clone();
                return Ok(Outcome::ReplyThen(
                    reply,
                    async move { announce_completed(&state, &rec) }.boxed(),
                ));
            }
            Ok(reply_then_start(state.clone(), reply))
        }
        Err(e) if e.code == ErrorCode::ServerUnreachable => {
            let id = uuid::Uuid::new_v4().to_string();
            let cancel = state.transfers.wait_begins(&id, kind, key.clone());
            let reply = waiting_reply(&id, kind, false);
            let work = wait_for_server(
                state.clone(),
                id,
                kind,
                key,
                Box::new(prepare),
                e,
                cancel,
                None,
            );
            Ok(Outcome::ReplyThen(reply, work.boxed()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The reply of a transfer that waits for the server (nothing is known yet
/// but its id).
fn waiting_reply(id: &str, kind: TransferKind, repeated: bool) -> Value {
    let mut reply = json!({
        "transfer_id": id, "kind": kind, "state": "retrying", "asset_id": null,
        "content_id": null, "bytes_total": null, "chunk_count": null, "file_count": null,
    });
    if repeated {
        reply["repeated"] = json!(true);
    }
    reply
}

/// Prepare a new transfer again and again (backing off, announcing
/// `transfer.retrying` each time) while the server cannot be reached, within
/// the daemon's retry window; then journal and start it under the id already
/// given out — or announce `transfer.failed` (`ERR_SERVER_UNREACHABLE` once
/// the window is over, or the error that is not about reaching the server).
/// With `slot` (an item of a batch), it first waits for a slot of the
/// batch's, and holds it while the transfer runs.
#[allow(clippy::too_many_arguments)]
async fn wait_for_server(
    state: Arc<DaemonState>,
    id: String,
    kind: TransferKind,
    key: Option<String>,
    prepare: Prepare,
    first: ApiError,
    cancel: tokio_util::sync::CancellationToken,
    slot: Option<Arc<Semaphore>>,
) {
    let permit = match slot {
        Some(slots) => tokio::select! {
            permit = slots.acquire_owned() => permit.ok(),
            _ = cancel.cancelled() => None,
        },
        None => None,
    };
    let since = std::time::Instant::now();
    let window = state.transfers.retry_window;
    let mut error = first;
    let mut attempt = 0u32;
    let prepared = loop {
        if cancel.is_cancelled() {
            break Err(dataerai_transfer::cancelled());
        }
        if since.elapsed() >= window {
            break Err(ApiError::new(
                ErrorCode::ServerUnreachable,
                format!(
                    "the server could not be reached for {} s (the daemon's retry window): {}",
                    window.as_secs(),
                    error.message
                ),
            ));
        }
        attempt += 1;
        let delay =
            dataerai_transfer::backoff(attempt, None).min(window.saturating_sub(since.elapsed()));
        let info = ErrorInfo::from(&error);
        tracing::warn!(transfer_id = %id, attempt, "the server cannot be reached; retrying in {delay:?}: {}", error.message);
        state.notify(
            "transfer.retrying",
            json!({"transfer_id": id, "kind": kind, "attempt": attempt,
                   "delay_s": delay.as_secs_f64(), "error": info}),
        );
        state.notify(
            "transfer.state",
            json!({"transfer_id": id, "kind": kind, "state": "retrying",
                   "attempt": attempt, "last_error": info}),
        );
        state.transfers.wait_failed(&id, attempt, info);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => break Err(dataerai_transfer::cancelled()),
        }
        match prepare().await {
            Ok(t) => break Ok(t),
            Err(e) if e.code == ErrorCode::ServerUnreachable => error = e,
            Err(e) => break Err(e),
        }
    };
    let journaled = match prepared {
        Ok(t) => match state.transfers.register_as(&id, t).await {
            Ok(rec) => match &key {
                Some(key) => state.transfers.set_key(key, &id).await.map(|()| rec),
                None => Ok(rec),
            },
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    state.transfers.wait_ends(&id);
    match journaled {
        // A lone small file: uploaded while it was prepared.
        Ok(rec) if rec.state == TransferState::Completed => announce_completed(&state, &rec),
        Ok(_) => {
            transfers::start(&state, &id, permit);
        }
        Err(e) => {
            tracing::warn!(transfer_id = %id, "{kind} failed before it started: {e}");
            state.notify(
                "transfer.failed",
                json!({"transfer_id": id, "kind": kind, "error": ErrorInfo::from(&e)}),
            );
        }
    }
}

/// `asset.upload_many`: every item is prepared (at most `concurrency` at once);
/// one that fails gets an `error` and no transfer, the others are started with
/// at most `concurrency` of them running at a time. An item that could not be
/// prepared because the server cannot be reached gets a transfer id at once
/// and waits for the server like a single upload ([`wait_for_server`]).
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
    // Items whose idempotency key names an earlier transfer attach to it and
    // are not prepared again.
    let keyed = parsed
        .iter()
        .any(|p| matches!(p, Ok(up) if up.idempotency_key.is_some()));
    let keys_held = if keyed {
        Some(state.transfers.keys.lock().await)
    } else {
        None
    };
    let mut repeats: Vec<Option<TransferRecord>> = Vec::with_capacity(parsed.len());
    let mut to_prepare = Vec::with_capacity(parsed.len());
    for item in parsed {
        let key = match &item {
            Ok(up) => up.idempotency_key.clone(),
            Err(_) => None,
        };
        let repeat = match &key {
            Some(key) => repeat_of(&state, key, TransferKind::Upload).await,
            None => Ok(None),
        };
        match repeat {
            Ok(Some(rec)) => {
                repeats.push(Some(rec));
                to_prepare.push(Err(ApiError::internal("attached to an earlier transfer")));
            }
            Ok(None) => {
                repeats.push(None);
                to_prepare.push(item);
            }
            Err(e) => {
                repeats.push(None);
                to_prepare.push(Err(e));
            }
        }
    }
    let keys: Vec<Option<String>> = to_prepare
        .iter()
        .map(|p| p.as_ref().ok().and_then(|up| up.idempotency_key.clone()))
        .collect();
    // Kept to prepare again the items that must wait for the server.
    let mut retry_params: Vec<Option<UploadParams>> = to_prepare
        .iter()
        .map(|p| p.as_ref().ok().cloned())
        .collect();
    let log = Some(state.transfers.start_log());
    // At most `concurrency` transfers of the batch run at a time, waiting ones included.
    let slots = Arc::new(Semaphore::new(concurrency));
    let starter = transfers::start_as_sent(&state, slots.clone());
    // Small items start group by group as their sessions open, while the
    // next groups are opened; their notifications wait for the reply.
    let mut held = HeldBack::new(&state);
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::unbounded_channel();
    let prepare = async {
        let on_open = move |group: Vec<(usize, UploadSpec)>| drop(opened_tx.send(group));
        state
            .service
            .prepare_uploads(to_prepare, concurrency, log, Some(&on_open))
            .await
    };
    let start_opened = async {
        let mut started = Vec::new();
        let mut early = true;
        while let Some(group) = opened_rx.recv().await {
            // Once a group waits for the reply, so do the later ones (items start in order).
            early = early && started.len() + group.len() <= EARLY_STARTS;
            if !early {
                continue; // journaled and started after the reply, with the others
            }
            let journaled = journal_batch(&state, group, &batch_id, &keys).await;
            for (index, rec) in journaled {
                if let Ok(rec) = &rec {
                    held.hold(&rec.transfer_id);
                    drop(starter.send(rec.transfer_id.clone()));
                }
                started.push((index, rec));
            }
        }
        started
    };
    let (specs, started) = tokio::join!(prepare, start_opened);
    if specs.iter().any(Result::is_err) {
        state.transfers.cleanups.notify_one();
    }
    let mut prepared: Vec<Value> = vec![Value::Null; specs.len()];
    let mut done = vec![false; specs.len()];
    for (index, rec) in started {
        prepared[index] = item_started(index, rec);
        done[index] = true;
    }
    let mut completed = Vec::new();
    let mut waiting = Vec::new();
    // Prepared items not started yet are journaled together at the end (one commit).
    let mut to_journal = Vec::new();
    for (index, spec) in specs.into_iter().enumerate() {
        if done[index] {
            continue;
        }
        if let Some(rec) = repeats[index].take() {
            prepared[index] = json!({"index": index, "transfer_id": rec.transfer_id,
                                     "asset_id": rec.asset_id, "error": null, "repeated": true});
            completed.push(rec);
            continue;
        }
        match (spec, retry_params[index].take()) {
            (Err(e), Some(up)) if e.code == ErrorCode::ServerUnreachable => {
                let id = uuid::Uuid::new_v4().to_string();
                let key = keys[index].clone();
                let cancel = state
                    .transfers
                    .wait_begins(&id, TransferKind::Upload, key.clone());
                let prepare = prepare_upload(state.clone(), up, Some(batch_id.clone()));
                waiting.push(wait_for_server(
                    state.clone(),
                    id.clone(),
                    TransferKind::Upload,
                    key,
                    prepare,
                    e,
                    cancel,
                    Some(slots.clone()),
                ));
                prepared[index] = json!({"index": index, "transfer_id": id, "asset_id": null,
                                         "error": null, "state": "retrying"});
            }
            (Ok(spec), _) => to_journal.push((index, spec)),
            (Err(e), _) => prepared[index] = item_started(index, Err(e)),
        }
    }
    let mut ids = Vec::new();
    for (index, rec) in journal_batch(&state, to_journal, &batch_id, &keys).await {
        if let Ok(rec) = &rec {
            ids.push(rec.transfer_id.clone());
        }
        prepared[index] = item_started(index, rec);
    }
    drop(keys_held);
    let reply = json!({"batch_id": batch_id, "items": prepared});
    let work = async move {
        // The reply is queued: the held notifications may follow it.
        drop(held);
        for rec in &completed {
            announce_completed(&state, rec);
        }
        for wait in waiting {
            tokio::spawn(wait);
        }
        for id in ids {
            drop(starter.send(id));
        }
    };
    Ok(Outcome::ReplyThen(reply, work.boxed()))
}

/// Journal prepared uploads of batch `batch_id` as transfers (one commit),
/// each with its idempotency key from `keys` (by item index); answers each
/// item's record or error, by index.
async fn journal_batch(
    state: &DaemonState,
    specs: Vec<(usize, UploadSpec)>,
    batch_id: &str,
    keys: &[Option<String>],
) -> Vec<(usize, Result<TransferRecord, ApiError>)> {
    let mut out = Vec::with_capacity(specs.len());
    let mut news = Vec::with_capacity(specs.len());
    for (index, spec) in specs {
        match spec.new_transfer(Some(batch_id.to_string())) {
            Ok(t) => news.push((index, t)),
            Err(e) => out.push((index, Err(e))),
        }
    }
    if news.is_empty() {
        return out;
    }
    let (indices, news): (Vec<usize>, Vec<NewTransfer>) = news.into_iter().unzip();
    let journaled = state.transfers.register_many(news).await;
    for (n, index) in indices.into_iter().enumerate() {
        let rec = match &journaled {
            Ok(recs) => Ok(recs[n].clone()),
            Err(e) => Err(e.clone()),
        };
        let keyed = match (rec, &keys[index]) {
            (Ok(rec), Some(key)) => state
                .transfers
                .set_key(key, &rec.transfer_id)
                .await
                .map(|()| rec),
            (other, _) => other,
        };
        out.push((index, keyed));
    }
    out
}

/// An `asset.upload_many` reply item: the transfer that item started, or why not.
fn item_started(index: usize, rec: Result<TransferRecord, ApiError>) -> Value {
    match rec {
        Ok(rec) => json!({"index": index, "transfer_id": rec.transfer_id,
                          "asset_id": rec.asset_id, "error": null}),
        Err(e) => json!({"index": index, "transfer_id": null, "asset_id": null,
                         "error": ErrorInfo::from(&e)}),
    }
}

// ---------------------------------------------------------------- provenance export

/// `export.ro_crate`: the crate's metadata is written and its folders made
/// before the reply; then one journaled download per asset fills its folder,
/// at most `concurrency` at a time. The reply lists the transfers (followed
/// like any download's).
async fn start_ro_crate(state: Arc<DaemonState>, p: Value) -> Result<Outcome, RpcError> {
    let p = params::<crate::export::RoCrateParams>(p)?;
    let prepared = state.service.prepare_ro_crate(p).await?;
    let batch_id = uuid::Uuid::new_v4().to_string();
    let mut items = Vec::with_capacity(prepared.downloads.len());
    let mut ids = Vec::with_capacity(prepared.downloads.len());
    for (asset_id, spec) in &prepared.downloads {
        let rec = register(&state, spec, Some(batch_id.clone())).await?;
        ids.push(rec.transfer_id.clone());
        let mut started = started(&rec);
        started["asset_id"] = json!(asset_id);
        started["content_id"] = json!(rec.content_id);
        items.push(started);
    }
    let reply = json!({
        "dest_dir": prepared.dest_dir.to_string_lossy(),
        "metadata_path": prepared.metadata_path.to_string_lossy(),
        "asset_count": prepared.asset_count,
        "file_count": prepared.file_count,
        "bytes_total": prepared.bytes_total,
        "batch_id": batch_id,
        "transfers": items,
    });
    let concurrency = prepared.concurrency;
    let slots = Arc::new(Semaphore::new(concurrency));
    let work = async move { transfers::start_in_order(&state, ids, slots) };
    Ok(Outcome::ReplyThen(reply, work.boxed()))
}
