//! A small JSON-RPC client for the running daemon's socket, used by
//! `dataerai transfers …` to list and control the daemon's transfers.

use std::path::Path;

use dataerai_proto::{ApiError, ErrorCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// A transfer's recorded error, `{"code": "ERR_…", "message": …}` as the
/// daemon reports it, as an [`ApiError`]: an unknown code reads as
/// `ERR_INTERNAL`, a missing message as `fallback`.
pub fn transfer_error(error: &Value, fallback: &str) -> ApiError {
    ApiError::new(
        serde_json::from_value(error["code"].clone()).unwrap_or(ErrorCode::Internal),
        error["message"].as_str().unwrap_or(fallback),
    )
}

/// Request params with their absent (null) fields left out, as the daemon
/// reads optional params.
pub fn without_nulls(mut params: Value) -> Value {
    if let Some(m) = params.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    params
}

pub struct DaemonClient {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    /// Notifications that arrived while waiting for a response, oldest first.
    pending: Vec<Value>,
}

impl DaemonClient {
    pub async fn connect(socket: &Path) -> Result<DaemonClient, ApiError> {
        let stream = UnixStream::connect(socket).await.map_err(|e| {
            ApiError::new(
                ErrorCode::ServerUnreachable,
                format!(
                    "no dataerai daemon is running on {} ({e}); start one with `dataerai daemon`",
                    socket.display()
                ),
            )
        })?;
        let (rd, wr) = stream.into_split();
        Ok(DaemonClient {
            reader: BufReader::new(rd),
            writer: wr,
            next_id: 1,
            pending: Vec::new(),
        })
    }

    async fn read(&mut self) -> Result<Value, ApiError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .await
            .map_err(|e| ApiError::internal(format!("reading from the daemon: {e}")))?;
        if n == 0 {
            return Err(ApiError::new(
                ErrorCode::ServerUnreachable,
                "the daemon closed the connection",
            ));
        }
        serde_json::from_str(&line)
            .map_err(|e| ApiError::internal(format!("bad line from the daemon: {e}")))
    }

    /// Call a method; an error answer becomes an [`ApiError`] with its `ERR_*` code.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ApiError> {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = req.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|e| ApiError::internal(format!("writing to the daemon: {e}")))?;
        loop {
            let msg = self.read().await?;
            if msg.get("id").is_none() {
                self.pending.push(msg);
                continue;
            }
            if msg["id"] != json!(id) {
                continue;
            }
            if let Some(err) = msg.get("error") {
                let code = serde_json::from_value(err["data"]["code"].clone())
                    .unwrap_or(ErrorCode::Internal);
                let message = err["message"]
                    .as_str()
                    .unwrap_or("daemon error")
                    .to_string();
                return Err(ApiError::new(code, message));
            }
            return Ok(msg["result"].clone());
        }
    }

    /// The next notification (queued ones first).
    pub async fn next_notification(&mut self) -> Result<Value, ApiError> {
        if !self.pending.is_empty() {
            return Ok(self.pending.remove(0));
        }
        loop {
            let msg = self.read().await?;
            if msg.get("id").is_none() {
                return Ok(msg);
            }
        }
    }
}

/// How long [`connect_or_start`] waits for a daemon it started to answer.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Name of the log of a daemon the CLI starts, next to its socket (the SDK's too).
const DAEMON_LOG: &str = "dataerai-daemon.log";

/// Connect to the daemon on the default socket (`$DATAERAI_SOCKET`, else as
/// for `dataerai daemon`), starting one when none answers — as the SDK does:
/// `dataerai daemon --socket S` in its own process group (a Ctrl-C at the
/// terminal is meant for the CLI, not for it), logging to
/// `dataerai-daemon.log` next to the socket. Answers the daemon process too
/// when this call started it.
pub async fn connect_or_start() -> Result<(DaemonClient, Option<std::process::Child>), ApiError> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    let socket = crate::config::default_socket_path();
    if let Ok(c) = DaemonClient::connect(&socket).await {
        return Ok((c, None));
    }
    let cannot = |what: String| ApiError::internal(format!("cannot start the daemon: {what}"));
    let dir = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dataerai_client::paths::ensure_private_dir(dir)
        .map_err(|e| cannot(format!("{}: {e}", dir.display())))?;
    let log_path = dir.join(DAEMON_LOG);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| cannot(format!("{}: {e}", log_path.display())))?;
    let err_log = log
        .try_clone()
        .map_err(|e| cannot(format!("{}: {e}", log_path.display())))?;
    let exe = std::env::current_exe().map_err(|e| cannot(e.to_string()))?;
    let mut child = std::process::Command::new(exe)
        .arg("daemon")
        .arg("--socket")
        .arg(&socket)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .process_group(0)
        .spawn()
        .map_err(|e| cannot(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let mut ours = true;
    loop {
        if let Ok(c) = DaemonClient::connect(&socket).await {
            return Ok((c, ours.then_some(child)));
        }
        if ours {
            if let Ok(Some(status)) = child.try_wait() {
                if status.code() != Some(crate::daemon::EXIT_ALREADY_RUNNING) {
                    return Err(cannot(format!(
                        "it exited with {status}; see {}",
                        log_path.display()
                    )));
                }
                ours = false; // another one started first: use it
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(ApiError::new(
                ErrorCode::ServerUnreachable,
                format!(
                    "the daemon did not answer on {} within {} s; see {}",
                    socket.display(),
                    START_TIMEOUT.as_secs(),
                    log_path.display()
                ),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
