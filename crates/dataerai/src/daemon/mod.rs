//! The transfer daemon: a JSON-RPC 2.0 server on a Unix socket (`docs/ipc.md`).
//!
//! - [`protocol`]: size-capped line reading and request classification.
//! - [`methods`]: one handler per method, on top of [`crate::service`].
//! - [`transfers`]: journaled transfers and their control (pause/resume/cancel).
//!
//! Each connection has a reader (requests are handled concurrently, each in its
//! own task), a writer task fed by one mpsc channel, and a forwarder that copies
//! broadcast notifications into that same channel. Because replies and
//! notifications share one queue, a reply queued before a transfer starts is
//! always written before that transfer's first notification. A request that
//! starts transfers before it replies (`asset.upload_many`, group by group)
//! holds their notifications back ([`HeldBack`]) until its reply is queued.

pub mod methods;
pub mod protocol;
pub mod transfers;

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dataerai_proto::ipc::{Notification, Response, RpcError, INVALID_REQUEST, MAX_LINE_BYTES};
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::service::Service;
use dataerai_transfer::journal::Journal;

/// Exit code when another daemon already answers on the socket.
pub const EXIT_ALREADY_RUNNING: i32 = 2;

/// Notifications buffered per slow client before it starts missing some.
const EVENT_BUFFER: usize = 4096;
/// Outgoing lines queued per connection.
const CONN_QUEUE: usize = 1024;

pub struct DaemonState {
    pub service: Service,
    pub socket_path: PathBuf,
    pub transfers: transfers::Transfers,
    pub shutdown: CancellationToken,
    /// Set when a `daemon.shutdown` was declined: the daemon then stops by
    /// itself once no transfer runs and no client is connected.
    exit_when_idle: AtomicBool,
    /// Open client connections.
    connections: AtomicUsize,
    events: broadcast::Sender<Arc<str>>,
    /// Notifications held back, in order, by transfer id (see [`HeldBack`]).
    held: std::sync::Mutex<HashMap<String, Vec<Held>>>,
}

/// A notification held back (see [`HeldBack`]).
struct Held {
    line: Arc<str>,
    /// A `transfer.progress`: replaced by the transfer's next one while held.
    progress: bool,
}

/// Holds back the notifications of the transfers it is given until it is
/// dropped, then lets them go in the order they were sent: a request that
/// starts transfers before its reply is queued drops it after, so every
/// client reads the reply (with the transfer ids) before any notification
/// about them.
pub struct HeldBack {
    state: Arc<DaemonState>,
    ids: Vec<String>,
}

impl HeldBack {
    pub fn new(state: &Arc<DaemonState>) -> HeldBack {
        HeldBack {
            state: state.clone(),
            ids: Vec::new(),
        }
    }

    /// Hold back the notifications of transfer `id` (call before it starts).
    pub fn hold(&mut self, id: &str) {
        self.state.held().insert(id.to_string(), Vec::new());
        self.ids.push(id.to_string());
    }
}

impl Drop for HeldBack {
    fn drop(&mut self) {
        let mut held = self.state.held();
        for id in &self.ids {
            for h in held.remove(id).unwrap_or_default() {
                drop(self.state.events.send(h.line));
            }
        }
    }
}

impl DaemonState {
    /// After a declined `daemon.shutdown`: stop once every transfer has ended
    /// and the last client has gone (checked every half second), so a daemon a
    /// script started does not outlive the transfers it was kept for. `false`
    /// if this was already arranged.
    pub fn exit_when_idle(self: &Arc<Self>) -> bool {
        if self.exit_when_idle.swap(true, Ordering::SeqCst) {
            return false;
        }
        let state = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = state.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                if state.connections.load(Ordering::SeqCst) > 0 {
                    continue;
                }
                match state.transfers.running().await {
                    Ok(running) if running.is_empty() => {
                        tracing::info!(
                            "stopping: the transfers a declined daemon.shutdown waited for have \
                             ended and no client is connected"
                        );
                        state.shutdown.cancel();
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cannot list transfers: {e}"),
                }
            }
        });
        true
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Held>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Send a notification to every connected client (or hold it back with
    /// the others of its transfer, see [`HeldBack`]).
    pub fn notify(&self, method: &str, params: Value) {
        let id = params
            .get("transfer_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let line: Arc<str> = match serde_json::to_string(&Notification::new(method, params)) {
            Ok(line) => line.into(),
            Err(e) => return tracing::error!("cannot encode notification {method}: {e}"),
        };
        // Under the lock: a transfer's held lines and its later ones keep their order.
        let mut held = self.held();
        if let Some(lines) = id.and_then(|id| held.get_mut(&id)) {
            let progress = method == "transfer.progress";
            if progress && lines.last().is_some_and(|h| h.progress) {
                lines.pop(); // only the latest progress of a held transfer matters
            }
            return lines.push(Held { line, progress });
        }
        // No receivers just means no client is connected right now.
        drop(self.events.send(line));
    }
}

/// Settings of `dataerai daemon`.
pub struct DaemonOptions {
    pub socket_path: PathBuf,
    /// Where `journal.db` lives.
    pub state_dir: PathBuf,
    /// How long consecutive failures are retried before a transfer fails.
    pub retry_window: Duration,
}

/// Run the daemon until SIGINT/SIGTERM or `daemon.shutdown`; returns the exit code.
/// Transfers a previous daemon on the same socket left unfinished are resumed.
pub async fn run(opts: DaemonOptions, service: Service) -> i32 {
    let socket_path = opts.socket_path;
    let listener = match bind(&socket_path).await {
        Ok(l) => l,
        Err(BindError::AlreadyRunning) => {
            eprintln!(
                "a dataerai daemon is already running on {}",
                socket_path.display()
            );
            return EXIT_ALREADY_RUNNING;
        }
        Err(BindError::Other(msg)) => {
            eprintln!("error: {msg}");
            return 1;
        }
    };
    // Only after the socket is ours: a refused second daemon must not touch
    // the journal (it would resume transfers the running one owns).
    let journal = match Journal::open(&opts.state_dir).await {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {} ({})", e.message, e.code);
            remove_socket(&socket_path);
            return 1;
        }
    };
    tracing::info!("listening on {}", socket_path.display());

    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let state = Arc::new(DaemonState {
        service,
        socket_path: socket_path.clone(),
        transfers: transfers::Transfers::new(
            journal,
            socket_path.to_string_lossy().into_owned(),
            opts.retry_window,
        ),
        shutdown: CancellationToken::new(),
        exit_when_idle: AtomicBool::new(false),
        connections: AtomicUsize::new(0),
        events,
        held: Default::default(),
    });
    transfers::resume_unfinished(&state).await;
    // Upload starts journaled by a daemon that died are given up (nothing
    // is starting them any more) and cleaned up.
    if let Err(e) = state
        .transfers
        .journal
        .abandon_upload_starts(&state.transfers.owner)
        .await
    {
        tracing::error!("cannot read the upload starts a previous daemon left: {e}");
    }
    tokio::spawn(transfers::clean_up_starts(state.clone()));

    let mut sigterm = signal_stream(tokio::signal::unix::SignalKind::terminate(), "SIGTERM");
    let mut sigint = signal_stream(tokio::signal::unix::SignalKind::interrupt(), "SIGINT");
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            _ = recv_signal(&mut sigterm) => break,
            _ = recv_signal(&mut sigint) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if peer_is_owner(&stream) {
                        tokio::spawn(serve_connection(state.clone(), stream));
                    } else {
                        // Dropping the stream closes it without a word.
                        drop(stream);
                    }
                }
                Err(e) => {
                    // E.g. out of file descriptors: keep serving the others.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    remove_socket(&socket_path);
    // Give writer tasks a moment to flush the `daemon.shutdown` reply.
    tokio::time::sleep(Duration::from_millis(200)).await;
    tracing::info!("daemon stopped");
    0
}

/// The daemon's own uid: only this user may talk to it.
fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Remove our socket file on the way out. Already gone is fine; otherwise the
/// next daemon start finds a stale socket (it checks and replaces it), so a
/// failure is worth a line in the log, not an error.
fn remove_socket(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove socket {}: {e}", path.display()),
    }
}

/// A stream of `kind` signals, or `None` (logged) when the handler cannot be
/// installed: the daemon then still stops on `daemon.shutdown`.
fn signal_stream(
    kind: tokio::signal::unix::SignalKind,
    name: &str,
) -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(kind) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("cannot listen for {name}: {e}; stop the daemon with daemon.shutdown");
            None
        }
    }
}

/// Whether a peer with `peer_uid` may use a daemon running as `own_uid`.
/// Only the same user: the socket's 0600 mode already says so, this check
/// holds even if the socket's or its directory's mode is loosened later.
pub fn peer_allowed(peer_uid: Option<u32>, own_uid: u32) -> bool {
    peer_uid == Some(own_uid)
}

/// `SO_PEERCRED` check of a new connection; refusals are logged (uid only).
fn peer_is_owner(stream: &UnixStream) -> bool {
    let peer = stream.peer_cred().ok().map(|c| c.uid());
    let ok = peer_allowed(peer, own_uid());
    if !ok {
        tracing::warn!(
            "refused a connection from uid {} (the daemon serves uid {} only)",
            peer.map_or_else(|| "unknown".to_string(), |u| u.to_string()),
            own_uid()
        );
    }
    ok
}

async fn recv_signal(sig: &mut Option<tokio::signal::unix::Signal>) {
    match sig {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

enum BindError {
    AlreadyRunning,
    Other(String),
}

/// Bind the socket: refuse if a daemon answers, remove a stale socket file,
/// create the directory 0700 if missing, make the socket 0600.
async fn bind(path: &Path) -> Result<UnixListener, BindError> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if UnixStream::connect(path).await.is_ok() {
            return Err(BindError::AlreadyRunning);
        }
        if !meta.file_type().is_socket() {
            return Err(BindError::Other(format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            )));
        }
        tracing::info!("removing stale socket {}", path.display());
        std::fs::remove_file(path).map_err(|e| {
            BindError::Other(format!(
                "cannot remove stale socket {}: {e}",
                path.display()
            ))
        })?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        dataerai_client::paths::ensure_private_dir(dir).map_err(|e| {
            BindError::Other(format!(
                "cannot create socket directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    // Create the socket with no group/other bits from the start, so there is no
    // window in which another user could connect; chmod afterwards to be exact.
    // SAFETY: umask only swaps the process file-mode mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above; this restores the mask read a line earlier.
    unsafe { libc::umask(old) };
    let listener =
        bound.map_err(|e| BindError::Other(format!("cannot listen on {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| BindError::Other(format!("cannot chmod {}: {e}", path.display())))?;
    Ok(listener)
}

async fn serve_connection(state: Arc<DaemonState>, stream: UnixStream) {
    state.connections.fetch_add(1, Ordering::SeqCst);
    // Counted down however the connection ends.
    struct Gone(Arc<DaemonState>);
    impl Drop for Gone {
        fn drop(&mut self) {
            self.0.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _gone = Gone(state.clone());
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Arc<str>>(CONN_QUEUE);

    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let mut bytes = Vec::with_capacity(line.len() + 1);
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });

    let mut events = state.events.subscribe();
    let forward_tx = tx.clone();
    let forwarder = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(line) => {
                    if forward_tx.send(line).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("a slow client missed {n} notifications");
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });

    let mut reader = BufReader::new(rd);
    tracing::debug!("client connected");
    let mut buf = Vec::new();
    loop {
        let line = protocol::read_line_capped(&mut reader, &mut buf, MAX_LINE_BYTES).await;
        match line {
            Err(_) | Ok(protocol::Line::Eof) => break,
            Ok(protocol::Line::TooLong) => {
                let err = RpcError::protocol(
                    INVALID_REQUEST,
                    format!("request line longer than {MAX_LINE_BYTES} bytes was refused"),
                );
                send(&tx, Response::err(Value::Null, err)).await;
            }
            Ok(protocol::Line::Complete) => match protocol::parse_line(&buf) {
                protocol::Incoming::Ignore => {}
                protocol::Incoming::Invalid { id, error } => {
                    send(&tx, Response::err(id, error)).await;
                }
                protocol::Incoming::Request { id, method, params } => {
                    // Each request in its own task: a slow one must not block the rest.
                    let state = state.clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        match methods::dispatch(state, &method, params).await {
                            methods::Outcome::Reply(Ok(v)) => send(&tx, Response::ok(id, v)).await,
                            methods::Outcome::Reply(Err(e)) => {
                                send(&tx, Response::err(id, e)).await
                            }
                            methods::Outcome::ReplyThen(v, work) => {
                                send(&tx, Response::ok(id, v)).await;
                                tokio::spawn(work);
                            }
                        }
                    });
                }
            },
        }
    }
    // Reader gone: stop forwarding; the writer ends once in-flight handlers finish.
    forwarder.abort();
    drop(tx);
    if let Err(e) = writer.await {
        tracing::warn!("connection writer task ended abnormally: {e}");
    }
}

async fn send(tx: &mpsc::Sender<Arc<str>>, resp: Response) {
    match serde_json::to_string(&resp) {
        Ok(line) => {
            if tx.send(line.into()).await.is_err() {
                // The writer ends when the client hangs up: nobody left to answer.
                tracing::debug!("client disconnected before its reply was sent");
            }
        }
        Err(e) => tracing::error!("cannot encode response: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_uid_is_served() {
        assert!(peer_allowed(Some(1000), 1000));
        assert!(!peer_allowed(Some(0), 1000));
        assert!(!peer_allowed(Some(65534), 0));
        assert!(!peer_allowed(None, 1000));
    }

    #[tokio::test]
    async fn own_connections_pass_the_peer_check() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(peer_is_owner(&a));
    }
}
