//! The daemon's transfers: journaled, started, paused, resumed and cancelled here.
//!
//! The [`Journal`] is the single source of truth for a transfer's state; this
//! module only keeps, for each transfer that has a task right now, the two
//! tokens that stop it: `cancel` (in-flight requests
//! are dropped, the transfer is given up) and `pause` (no new chunk starts; the
//! ones in flight finish). Every state change is written to the journal first
//! and then announced (`transfer.state`, `transfer.completed`, `transfer.failed`).
//!
//! After a run ends with an error that space, time or a retry can fix
//! (`ERR_NO_SPACE`, `ERR_SERVER_UNREACHABLE`, `ERR_INTEGRITY`) the upload session
//! / partial files are kept for `transfer.resume`; any other failure, and a
//! cancel, gives the transfer up (session aborted, new asset deleted, partial
//! files removed) so nothing half-done lingers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataerai_proto::{ApiError, ErrorCode};
use dataerai_transfer::small::Slot;
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::DaemonState;
use dataerai_transfer::journal::{
    ErrorInfo, Journal, NewTransfer, TransferKind, TransferRecord, TransferState, UploadStart,
};
use dataerai_transfer::{download, upload, Observer, ProgressEvent, RunContext, Stop};

/// Transfers resumed at daemon start that run at once; the rest wait `queued`.
const STARTUP_SLOTS: usize = 8;

#[derive(Clone)]
struct Control {
    cancel: CancellationToken,
    pause: CancellationToken,
    /// Cancelled once the task has stopped and left the active table.
    stopped: CancellationToken,
}

impl Control {
    fn new() -> Control {
        Control {
            cancel: CancellationToken::new(),
            pause: CancellationToken::new(),
            stopped: CancellationToken::new(),
        }
    }
}

pub struct Transfers {
    pub journal: Journal,
    /// This daemon's socket path: it owns the journal rows it started.
    pub owner: String,
    pub retry_window: Duration,
    active: Mutex<HashMap<String, Control>>,
    /// Transfers registered by this process that have not run yet: their
    /// upload session was just opened, so the first run need not ask the
    /// server which chunks it holds.
    fresh: Mutex<std::collections::HashSet<String>>,
    /// Every upload's small files go through this one (see `transfer::small`).
    finisher: dataerai_transfer::small::Finisher,
    /// Held from looking an idempotency key up to journaling the transfer it
    /// names, so two calls with the same key cannot both start one.
    pub keys: tokio::sync::Mutex<()>,
    /// New transfers whose preparation waits for an unreachable server (not
    /// journaled yet), by transfer id.
    waiting: Mutex<HashMap<String, Waiting>>,
    /// Wakes [`clean_up_starts`]: an upload start was given up.
    pub cleanups: tokio::sync::Notify,
}

impl Transfers {
    pub fn new(journal: Journal, owner: String, retry_window: Duration) -> Transfers {
        Transfers {
            journal,
            owner,
            retry_window,
            active: Mutex::default(),
            fresh: Mutex::default(),
            finisher: Default::default(),
            keys: Default::default(),
            waiting: Mutex::default(),
            cleanups: tokio::sync::Notify::new(),
        }
    }

    /// Where new uploads journal their start (see `upload::StartLog`).
    pub fn start_log(&self) -> dataerai_transfer::upload::StartLog<'_> {
        dataerai_transfer::upload::StartLog {
            journal: &self.journal,
            owner: &self.owner,
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, Control>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Journal a new transfer (state `queued`); returns its record.
    pub async fn register(&self, t: NewTransfer) -> Result<TransferRecord, ApiError> {
        let mut recs = self.register_many(vec![t]).await?;
        Ok(recs.remove(0))
    }

    /// Journal new transfers (state `queued`) in one transaction; returns
    /// their records in order.
    pub async fn register_many(
        &self,
        ts: Vec<NewTransfer>,
    ) -> Result<Vec<TransferRecord>, ApiError> {
        let recs: Vec<TransferRecord> = ts
            .into_iter()
            .map(|t| TransferRecord::new(&self.owner, t))
            .collect();
        self.journal.insert_many(&recs).await?;
        self.fresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(recs.iter().map(|r| r.transfer_id.clone()));
        Ok(recs)
    }

    /// Journal a new transfer under an id its caller already announced.
    pub async fn register_as(&self, id: &str, t: NewTransfer) -> Result<TransferRecord, ApiError> {
        let mut rec = TransferRecord::new(&self.owner, t);
        rec.transfer_id = id.to_string();
        self.journal.insert(&rec).await?;
        self.fresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rec.transfer_id.clone());
        Ok(rec)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Note a new transfer that waits for the server before it is journaled;
    /// answers the token that `transfer.cancel` cancels.
    pub fn wait_begins(
        &self,
        id: &str,
        kind: TransferKind,
        key: Option<String>,
    ) -> CancellationToken {
        let cancel = CancellationToken::new();
        let now = chrono::Utc::now();
        self.waiting().insert(
            id.to_string(),
            Waiting {
                kind,
                key,
                cancel: cancel.clone(),
                created_at: now,
                attempt: 0,
                last_error: None,
            },
        );
        cancel
    }

    /// A waiting transfer's latest failed attempt.
    pub fn wait_failed(&self, id: &str, attempt: u32, error: ErrorInfo) {
        if let Some(w) = self.waiting().get_mut(id) {
            w.attempt = attempt;
            w.last_error = Some(error);
        }
    }

    pub fn wait_ends(&self, id: &str) {
        self.waiting().remove(id);
    }

    /// The waiting transfer that idempotency key `key` names.
    pub fn waiting_with_key(&self, key: &str) -> Option<String> {
        self.waiting()
            .iter()
            .find(|(_, w)| w.key.as_deref() == Some(key))
            .map(|(id, _)| id.clone())
    }

    /// The Transfer object of a waiting transfer (`retrying`, nothing known
    /// but its kind yet).
    pub fn waiting_json(&self, id: &str) -> Option<Value> {
        let waiting = self.waiting();
        let w = waiting.get(id)?;
        let at = w
            .created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        Some(json!({
            "transfer_id": id, "kind": w.kind, "state": TransferState::Retrying,
            "asset_id": null, "content_id": null, "local_path": null, "bytes_done": 0,
            "bytes_total": null, "chunk_count": null, "file_count": null, "created_at": at,
            "updated_at": at, "attempt": w.attempt, "last_error": w.last_error,
            "result": null, "error": null,
        }))
    }

    /// Cancel a waiting transfer; `false` if `id` is not one.
    pub fn cancel_waiting(&self, id: &str) -> bool {
        match self.waiting().get(id) {
            Some(w) => {
                w.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Remember that `key` names the transfer `id`.
    pub async fn set_key(&self, key: &str, id: &str) -> Result<(), ApiError> {
        self.journal.set_key(&self.owner, key, id).await
    }

    /// The transfer idempotency key `key` names, if it is still there.
    pub async fn keyed(&self, key: &str) -> Result<Option<TransferRecord>, ApiError> {
        let Some(id) = self.journal.keyed(&self.owner, key).await? else {
            return Ok(None);
        };
        match self.get(&id).await {
            Ok(rec) => Ok(Some(rec)),
            Err(e) if e.code == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get(&self, id: &str) -> Result<TransferRecord, ApiError> {
        self.journal.get(&self.owner, id).await
    }

    pub async fn list(&self) -> Result<Vec<TransferRecord>, ApiError> {
        self.journal.list(&self.owner).await
    }

    /// Ids of the transfers that are queued, running or retrying (journal
    /// states), have a task in this process right now, or wait for the
    /// server to start.
    pub async fn running(&self) -> Result<Vec<String>, ApiError> {
        let mut ids: Vec<String> = self
            .list()
            .await?
            .into_iter()
            .filter(|r| r.state.is_unfinished())
            .map(|r| r.transfer_id)
            .collect();
        let busy: Vec<String> = self
            .active()
            .keys()
            .chain(self.waiting().keys())
            .cloned()
            .collect();
        for id in busy {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// A new transfer that waits for the server before it can be prepared.
struct Waiting {
    kind: TransferKind,
    key: Option<String>,
    cancel: CancellationToken,
    created_at: chrono::DateTime<chrono::Utc>,
    attempt: u32,
    last_error: Option<ErrorInfo>,
}

/// Errors after which the session / partial files are kept for `transfer.resume`.
pub fn is_resumable(e: &ErrorInfo) -> bool {
    matches!(
        e.code,
        ErrorCode::NoSpace | ErrorCode::ServerUnreachable | ErrorCode::Integrity
    )
}

fn notify_state(
    st: &DaemonState,
    rec: &TransferRecord,
    new_state: TransferState,
    attempt: u32,
    last_error: Option<&ErrorInfo>,
) {
    st.notify(
        "transfer.state",
        json!({"transfer_id": rec.transfer_id, "kind": rec.kind, "state": new_state,
               "attempt": attempt, "last_error": last_error}),
    );
}

/// Start (or continue) a transfer in its own task; `false` if it already has one.
/// `permit` is its slot of a batch, held while it runs.
pub fn start(st: &Arc<DaemonState>, id: &str, permit: Option<OwnedSemaphorePermit>) -> bool {
    let control = Control::new();
    {
        let mut active = st.transfers.active();
        if active.contains_key(id) {
            return false;
        }
        active.insert(id.to_string(), control.clone());
    }
    let st = st.clone();
    let id = id.to_string();
    // Given back when the run ends, or earlier by a small file queued to be sent.
    let slot = Slot::new(permit);
    tokio::spawn(async move {
        let stopped = control.stopped.clone();
        drive(&st, &id, control, slot.clone()).await;
        st.transfers.active().remove(&id);
        stopped.cancel();
        slot.release();
    });
    true
}

/// Start `ids` in order, one per free slot of `slots`; the others stay
/// `queued` (and can be paused or cancelled) until a slot frees up.
pub fn start_in_order(st: &Arc<DaemonState>, ids: Vec<String>, slots: Arc<Semaphore>) {
    let starter = start_as_sent(st, slots);
    for id in ids {
        drop(starter.send(id));
    }
}

/// [`start_in_order`] for ids that come one after the other: each id sent
/// is started in turn, once a slot of `slots` is free.
pub fn start_as_sent(
    st: &Arc<DaemonState>,
    slots: Arc<Semaphore>,
) -> tokio::sync::mpsc::UnboundedSender<String> {
    let (starter, mut ids) = tokio::sync::mpsc::unbounded_channel::<String>();
    let st = st.clone();
    tokio::spawn(async move {
        while let Some(id) = ids.recv().await {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            // One paused or cancelled while it waited is left be: its run
            // reads its state first and stops at once (freeing the slot).
            start(&st, &id, Some(permit));
        }
    });
    starter
}

/// How long the clean-up of given-up upload starts sleeps when nothing is
/// left to clean up (it is woken early when a start is given up).
const CLEANUP_IDLE: Duration = Duration::from_secs(60);

/// Clean up, for as long as the daemon runs, after upload starts that were
/// given up: those a previous daemon left (it died while starting them) and
/// those whose clean-up could not reach the server. Each is retried with
/// back-off until the server confirms (a 404 counts as done).
pub async fn clean_up_starts(st: Arc<DaemonState>) {
    let tr = &st.transfers;
    let mut attempt = 0u32;
    loop {
        let woken = tr.cleanups.notified();
        let pending = match tr.journal.abandoned_upload_starts(&tr.owner).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read the upload starts to clean up: {e}");
                Vec::new()
            }
        };
        let mut failed = false;
        for start in &pending {
            let cleaned = match st.service.client() {
                Ok(client) => dataerai_transfer::upload::clean_up_start(&client, start).await,
                Err(e) => Err(e),
            };
            match cleaned {
                Ok(()) => {
                    tracing::info!(
                        "cleaned up after an abandoned upload start (asset {:?}, session {:?})",
                        start.asset_id,
                        start.upload_id
                    );
                    if let Err(e) = tr.journal.end_upload_start(&start.start_id).await {
                        tracing::warn!("cannot journal a clean-up: {e}");
                    }
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(
                        "cannot clean up after an abandoned upload start yet (asset {:?}, \
                         session {:?}): {e}",
                        start.asset_id,
                        start.upload_id
                    );
                }
            }
        }
        failed |= !settle_single_uploads(&st).await;
        let pause = if failed {
            attempt += 1;
            dataerai_transfer::backoff(attempt, None)
        } else {
            attempt = 0;
            CLEANUP_IDLE
        };
        tokio::select! {
            _ = st.shutdown.cancelled() => return,
            _ = woken, if !failed => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Settle the lone small uploads whose start rows a daemon left behind (it
/// died, or the answer never came): ask the server by each one's key, and
/// journal the upload completed when the server made it (it then shows in
/// `transfer.list`), or drop the row when it did not. Answers false when the
/// server could not tell for some of them (tried again later).
async fn settle_single_uploads(st: &DaemonState) -> bool {
    let tr = &st.transfers;
    let pending = match tr.journal.abandoned_single_uploads(&tr.owner).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("cannot read the single uploads to settle: {e}");
            return false;
        }
    };
    let mut settled = true;
    for (start_id, local_path) in pending {
        let found = match st.service.client() {
            Ok(client) => {
                dataerai_transfer::small::settle_single(&client, &start_id, &local_path).await
            }
            Err(e) => Err(e),
        };
        let journaled = match found {
            Ok(Some(t)) => {
                tracing::info!(
                    "the upload of {local_path} (start {start_id}) was made on the server as \
                     asset {}; journaled it completed",
                    t.asset_id
                );
                tr.register(t).await.map(drop)
            }
            Ok(None) => {
                tracing::info!(
                    "the upload of {local_path} (start {start_id}) never reached the server"
                );
                tr.journal.end_upload_start(&start_id).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = journaled {
            settled = false;
            tracing::warn!("cannot settle the upload of {local_path} (start {start_id}) yet: {e}");
        }
    }
    settled
}

/// Resume every transfer a previous daemon left unfinished.
pub async fn resume_unfinished(st: &Arc<DaemonState>) {
    match st.transfers.list().await {
        Ok(recs) => {
            let ids = recs
                .into_iter()
                .filter(|r| r.state.is_unfinished())
                .map(|r| {
                    tracing::info!(transfer_id = %r.transfer_id, "resuming {} left {}", r.kind, r.state);
                    r.transfer_id
                })
                .collect();
            start_in_order(st, ids, Arc::new(Semaphore::new(STARTUP_SLOTS)));
        }
        Err(e) => tracing::error!("cannot read the transfer journal: {e}"),
    }
}

async fn drive(st: &Arc<DaemonState>, id: &str, control: Control, slot: Slot) {
    let tr = &st.transfers;
    // Journaled running and read in one statement.
    let rec = match tr.journal.begin_run(&tr.owner, id).await {
        Ok(Some(r)) => r,
        Ok(None) => return, // paused or cancelled in the meantime
        Err(e) => return tracing::error!(transfer_id = id, "cannot start: {e}"),
    };
    notify_state(st, &rec, TransferState::Running, 0, None);
    let client = match st.service.client() {
        Ok(c) => c,
        Err(e) => return finish(st, &rec, Err(e.into())).await,
    };
    let observer = Arc::new(DaemonObserver {
        st: st.clone(),
        rec: rec.clone(),
    });
    let mut ctx = RunContext::new(
        id.to_string(),
        client,
        tr.journal.clone(),
        observer,
        tr.retry_window,
    );
    ctx.cancel = control.cancel;
    ctx.pause = control.pause;
    ctx.finisher = tr.finisher.clone();
    ctx.slot = slot;
    ctx.fresh = tr
        .fresh
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(id);
    let outcome = run_engine(&ctx, &rec).await;
    finish(st, &rec, outcome).await;
}

async fn run_engine(ctx: &RunContext, rec: &TransferRecord) -> Result<Value, Stop> {
    let bad_spec = |e: serde_json::Error| ApiError::internal(format!("damaged journal entry: {e}"));
    let value =
        |r: Result<Value, serde_json::Error>| r.map_err(|e| ApiError::internal(e.to_string()));
    match rec.kind {
        TransferKind::Upload => {
            let spec: upload::UploadSpec =
                serde_json::from_value(rec.spec.clone()).map_err(bad_spec)?;
            let r = upload::run(ctx, spec).await?;
            Ok(value(serde_json::to_value(r))?)
        }
        TransferKind::Download => {
            let spec: download::DownloadSpec =
                serde_json::from_value(rec.spec.clone()).map_err(bad_spec)?;
            let r = download::run(ctx, &spec).await?;
            Ok(value(serde_json::to_value(r))?)
        }
    }
}

/// Give a transfer up: abort the session / remove partial files (best effort).
async fn discard(st: &DaemonState, rec: &TransferRecord) {
    let id = rec.transfer_id.as_str();
    let leftover = |what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(
            transfer_id = id,
            "cannot clean up after the transfer ({what}: {e})"
        );
    };
    if rec.kind == TransferKind::Upload {
        match (
            serde_json::from_value::<upload::UploadSpec>(rec.spec.clone()),
            st.service.client(),
        ) {
            (Ok(spec), Ok(client)) => {
                let start = UploadStart {
                    start_id: id.to_string(),
                    asset_id: Some(spec.asset_id.clone()),
                    created_asset: spec.created_asset,
                    upload_id: Some(spec.upload_id.clone()),
                };
                if let Err(e) = upload::clean_up_start(&client, &start).await {
                    // Left to `clean_up_starts`, which retries until it gets through.
                    leftover("will try again", &e);
                    let tr = &st.transfers;
                    match tr
                        .journal
                        .add_abandoned_upload_start(&tr.owner, &start)
                        .await
                    {
                        Ok(()) => tr.cleanups.notify_one(),
                        Err(e) => leftover("cannot journal the clean-up", &e),
                    }
                }
            }
            (Err(e), _) => leftover("damaged journal entry", &e),
            (_, Err(e)) => leftover("no client to abort the upload session", &e),
        }
    } else {
        match serde_json::from_value::<download::DownloadSpec>(rec.spec.clone()) {
            Ok(spec) => download::discard(&spec).await,
            Err(e) => leftover("damaged journal entry", &e),
        }
    }
}

/// Record how a run ended and tell every client.
async fn finish(st: &DaemonState, rec: &TransferRecord, outcome: Result<Value, Stop>) {
    let j = &st.transfers.journal;
    let id = rec.transfer_id.as_str();
    let kind = rec.kind;
    match outcome {
        Ok(result) => {
            if let Err(e) = j
                .set_state(id, TransferState::Completed, 0, None, None, Some(&result))
                .await
            {
                tracing::error!(transfer_id = id, "cannot journal completion: {e}");
            }
            st.notify(
                "transfer.completed",
                json!({"transfer_id": id, "kind": kind, "result": result}),
            );
        }
        Err(Stop::Paused) => {
            if let Err(e) = j
                .set_state(id, TransferState::Paused, 0, None, None, None)
                .await
            {
                tracing::error!(transfer_id = id, "cannot journal pause: {e}");
            }
            notify_state(st, rec, TransferState::Paused, 0, None);
        }
        Err(Stop::Error(e)) => fail(st, rec, &e).await,
    }
}

async fn fail(st: &DaemonState, rec: &TransferRecord, e: &ApiError) {
    let id = rec.transfer_id.as_str();
    let info = ErrorInfo::from(e);
    if !is_resumable(&info) {
        discard(st, rec).await;
    }
    let new_state = if e.code == ErrorCode::Cancelled {
        TransferState::Cancelled
    } else {
        TransferState::Failed
    };
    tracing::warn!(transfer_id = id, "{} {new_state}: {e}", rec.kind);
    if let Err(je) = st
        .transfers
        .journal
        .set_state(id, new_state, 0, None, Some(&info), None)
        .await
    {
        tracing::error!(transfer_id = id, "cannot journal failure: {je}");
    }
    st.notify(
        "transfer.failed",
        json!({"transfer_id": id, "kind": rec.kind, "error": info}),
    );
}

/// Holds a transfer's place in the active map while a control method changes
/// an idle transfer, so that no task can start it meanwhile.
struct Claim<'a> {
    st: &'a DaemonState,
    id: String,
}

impl<'a> Claim<'a> {
    /// The claim, or the control of the task that already runs the transfer.
    fn take(st: &'a DaemonState, id: &str) -> Result<Claim<'a>, Control> {
        let mut active = st.transfers.active();
        if let Some(c) = active.get(id) {
            return Err(c.clone());
        }
        active.insert(id.to_string(), Control::new());
        Ok(Claim {
            st,
            id: id.to_string(),
        })
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.st.transfers.active().remove(&self.id) {
            c.stopped.cancel();
        }
    }
}

fn not_now(rec: &TransferRecord, what: &str) -> ApiError {
    ApiError::invalid(format!(
        "cannot {what} transfer {}: it is {}",
        rec.transfer_id, rec.state
    ))
}

/// `transfer.pause`
pub async fn pause(st: &Arc<DaemonState>, id: &str) -> Result<TransferRecord, ApiError> {
    let rec = st.transfers.get(id).await?;
    if rec.state.is_final() {
        return Err(not_now(&rec, "pause"));
    }
    match Claim::take(st, id) {
        Err(running) => running.pause.cancel(),
        Ok(_claim) => {
            // Re-read: a task may have ended between the first read and the claim.
            let rec = st.transfers.get(id).await?;
            if !rec.state.is_final() && rec.state != TransferState::Paused {
                finish(st, &rec, Err(Stop::Paused)).await;
            }
        }
    }
    st.transfers.get(id).await
}

/// `transfer.resume`: a paused transfer, or one that failed for lack of space,
/// of the server, or of integrity, continues from where it stopped.
pub async fn resume(st: &Arc<DaemonState>, id: &str) -> Result<TransferRecord, ApiError> {
    let rec = st.transfers.get(id).await?;
    let resumable = match rec.state {
        TransferState::Failed => rec.error.as_ref().is_some_and(is_resumable),
        TransferState::Completed | TransferState::Cancelled => false,
        _ => true,
    };
    if !resumable {
        return Err(not_now(&rec, "resume"));
    }
    // A pause that was asked for but has not taken effect yet (chunks in
    // flight still finishing) cannot be taken back: wait for the task to stop,
    // then start the transfer again below. Without this, a resume arriving in
    // that window would be lost and the transfer would stay paused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stopping = match st.transfers.active().get(id) {
            None => break,
            Some(c) if c.pause.is_cancelled() => c.stopped.clone(),
            Some(_) => return Ok(rec), // running, nothing to resume
        };
        if tokio::time::timeout_at(deadline, stopping.cancelled())
            .await
            .is_err()
        {
            return Err(ApiError::internal(format!(
                "transfer {id} is still pausing; try transfer.resume again"
            )));
        }
    }
    let rec = st.transfers.get(id).await?;
    if matches!(
        rec.state,
        TransferState::Completed | TransferState::Cancelled
    ) {
        return Ok(rec); // it ended while pausing
    }
    // Queued before answering, so a `transfer.get` right after sees it going again.
    st.transfers
        .journal
        .set_state(id, TransferState::Queued, 0, None, None, None)
        .await?;
    notify_state(st, &rec, TransferState::Queued, 0, None);
    start(st, id, None);
    st.transfers.get(id).await
}

/// `transfer.cancel`: stops a running or queued transfer, gives up a paused or
/// resumable one; a finished transfer is returned as it is.
pub async fn cancel(st: &Arc<DaemonState>, id: &str) -> Result<TransferRecord, ApiError> {
    let rec = st.transfers.get(id).await?;
    let _claim = match Claim::take(st, id) {
        Ok(claim) => claim,
        Err(running) => {
            running.cancel.cancel();
            return Ok(rec);
        }
    };
    let rec = st.transfers.get(id).await?;
    let idle_but_open = match rec.state {
        TransferState::Failed => rec.error.as_ref().is_some_and(is_resumable),
        s => !s.is_final(),
    };
    if idle_but_open {
        fail(st, &rec, &dataerai_transfer::cancelled()).await;
    }
    st.transfers.get(id).await
}

/// Turns engine events into notifications.
struct DaemonObserver {
    st: Arc<DaemonState>,
    rec: TransferRecord,
}

impl Observer for DaemonObserver {
    fn progress(&self, ev: ProgressEvent) {
        match serde_json::to_value(&ev) {
            Ok(v) => self.st.notify("transfer.progress", v),
            Err(e) => tracing::warn!("cannot encode a progress notification: {e}"),
        }
    }

    fn retrying(&self, attempt: u32, delay: Duration, error: &ApiError) {
        let info = ErrorInfo::from(error);
        self.st.notify(
            "transfer.retrying",
            json!({"transfer_id": self.rec.transfer_id, "kind": self.rec.kind, "attempt": attempt,
                   "delay_s": delay.as_secs_f64(), "error": info}),
        );
        notify_state(
            &self.st,
            &self.rec,
            TransferState::Retrying,
            attempt,
            Some(&info),
        );
    }

    fn recovered(&self) {
        notify_state(&self.st, &self.rec, TransferState::Running, 0, None);
    }
}
