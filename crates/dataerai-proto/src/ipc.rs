//! JSON-RPC 2.0 envelopes for the daemon socket. One compact JSON object per
//! line, UTF-8. The method list and parameter shapes are in `docs/ipc.md`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

/// Longest request line the daemon accepts (bytes, without the newline).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// JSON-RPC error codes (the `error.code` number). Application errors use
/// [`APPLICATION_ERROR`] and carry the stable `ERR_*` string in `error.data.code`.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const APPLICATION_ERROR: i64 = -32000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub jsonrpc: String,
    pub method: String,
    #[serde(default)]
    pub params: Value,
    /// Absent for notifications (which the daemon does not expect from clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<RpcErrorData>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcErrorData {
    /// Stable `ERR_*` string.
    pub code: ErrorCode,
}

impl RpcError {
    pub fn protocol(code: i64, message: impl Into<String>) -> Self {
        // Protocol errors also carry an ERR_* code so clients have one field to check.
        RpcError {
            code,
            message: message.into(),
            data: Some(RpcErrorData {
                code: ErrorCode::InvalidInput,
            }),
        }
    }
}

impl From<ApiError> for RpcError {
    fn from(e: ApiError) -> Self {
        RpcError {
            code: APPLICATION_ERROR,
            message: e.message,
            data: Some(RpcErrorData { code: e.code }),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub jsonrpc: String,
    pub id: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    pub fn ok(id: Value, result: Value) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }
    pub fn err(id: Value, error: RpcError) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

/// A server-to-client notification (`transfer.progress`, `transfer.completed`, …).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub jsonrpc: String,
    pub method: String,
    pub params: Value,
}

impl Notification {
    pub fn new(method: &str, params: Value) -> Self {
        Notification {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
        }
    }
}
