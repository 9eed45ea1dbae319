//! A small JSON-RPC client for the running daemon's socket, used by
//! `dataerai transfers …` to list and control the daemon's transfers.

use std::path::Path;

use dataerai_proto::{ApiError, ErrorCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

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
