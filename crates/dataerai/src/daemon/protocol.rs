//! The socket's wire format: reading size-capped lines and classifying them as
//! JSON-RPC requests, notifications or protocol errors. This is the one place
//! that knows how bytes on the socket become requests.

use dataerai_proto::ipc::{RpcError, INVALID_REQUEST, PARSE_ERROR};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Result of reading one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line (without the newline) is in the caller's buffer.
    Complete,
    /// The line exceeded the cap; it has been read and thrown away.
    TooLong,
    /// The peer closed the connection.
    Eof,
}

/// Read one `\n`-terminated line into `buf` (cleared first), never holding more
/// than `max` bytes: a longer line is consumed and discarded so the connection
/// can carry on with the next one.
pub async fn read_line_capped<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut discarding = false;
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            // EOF: a last line without a newline still counts.
            return Ok(match (discarding, buf.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::Eof,
                (false, false) => Line::Complete,
            });
        }
        let (take, found) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if !discarding {
            if buf.len() + take > max {
                discarding = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..take]);
            }
        }
        r.consume(if found { take + 1 } else { take });
        if found {
            return Ok(if discarding {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

/// What a line turned out to be.
#[derive(Debug)]
pub enum Incoming {
    /// A request to answer.
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    /// A notification or blank line: nothing to answer.
    Ignore,
    /// Not valid JSON-RPC: answer with this error (and this id, or null).
    Invalid { id: Value, error: RpcError },
}

/// Deepest nesting of arrays/objects a request may have. No method needs more
/// than a few levels; the cap keeps recursive parsing and dropping cheap.
pub const MAX_DEPTH: usize = 64;

/// Nesting depth of the JSON text `line` (brackets inside strings ignored),
/// stopping as soon as it exceeds `limit`.
fn depth_exceeds(line: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in line {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Classify one line. Never panics, whatever the bytes.
pub fn parse_line(line: &[u8]) -> Incoming {
    if line.iter().all(|b| b.is_ascii_whitespace()) {
        return Incoming::Ignore;
    }
    if let Err(e) = std::str::from_utf8(line) {
        return Incoming::Invalid {
            id: Value::Null,
            error: RpcError::protocol(
                PARSE_ERROR,
                format!(
                    "parse error: the line is not valid UTF-8 (byte {})",
                    e.valid_up_to()
                ),
            ),
        };
    }
    if depth_exceeds(line, MAX_DEPTH) {
        return Incoming::Invalid {
            id: Value::Null,
            error: RpcError::protocol(
                INVALID_REQUEST,
                format!("invalid request: JSON nested deeper than {MAX_DEPTH} levels"),
            ),
        };
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Incoming::Invalid {
                id: Value::Null,
                error: RpcError::protocol(PARSE_ERROR, format!("parse error: {e}")),
            }
        }
    };
    let Value::Object(mut obj) = value else {
        return invalid(Value::Null, "request must be a JSON object");
    };
    let id = obj.remove("id");
    if let Some(id) = &id {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return invalid(Value::Null, "id must be a string, a number or null");
        }
    }
    let reply_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(reply_id, "jsonrpc must be \"2.0\"");
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return invalid(reply_id, "method must be a string");
    };
    let Some(id) = id else {
        // A JSON-RPC notification: the client does not want an answer.
        return Incoming::Ignore;
    };
    let params = obj.remove("params").unwrap_or(Value::Null);
    Incoming::Request { id, method, params }
}

fn invalid(id: Value, msg: &str) -> Incoming {
    Incoming::Invalid {
        id,
        error: RpcError::protocol(INVALID_REQUEST, format!("invalid request: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn lines_are_capped_and_connection_survives() {
        let mut data = Vec::new();
        data.extend_from_slice(b"short\n");
        data.extend_from_slice(&[b'x'; 100]);
        data.extend_from_slice(b"\nok\nlast");
        // Tiny internal buffer so lines span several fill_buf calls.
        let mut r = BufReader::with_capacity(7, data.as_slice());
        let mut buf = Vec::new();
        // What each read answers, and the line it leaves in `buf` when complete.
        let expected: [(Line, &[u8]); 5] = [
            (Line::Complete, b"short"),
            (Line::TooLong, b""),
            (Line::Complete, b"ok"),
            (Line::Complete, b"last"),
            (Line::Eof, b""),
        ];
        for (i, (line, text)) in expected.into_iter().enumerate() {
            let got = read_line_capped(&mut r, &mut buf, 10).await.unwrap();
            assert_eq!(got, line, "read {i}");
            if line == Line::Complete {
                assert_eq!(buf, text, "read {i}");
            }
        }
    }

    #[tokio::test]
    async fn line_of_exactly_max_is_accepted() {
        let data = b"0123456789\n".to_vec();
        let mut r = BufReader::with_capacity(4, data.as_slice());
        let mut buf = Vec::new();
        assert_eq!(
            read_line_capped(&mut r, &mut buf, 10).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf.len(), 10);
    }

    fn error_code(i: Incoming) -> (Value, i64) {
        match i {
            Incoming::Invalid { id, error } => (id, error.code),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn parsing_classifies_lines() {
        assert_eq!(error_code(parse_line(b"{nope")), (Value::Null, PARSE_ERROR));
        assert_eq!(
            error_code(parse_line(b"[1,2]")),
            (Value::Null, INVALID_REQUEST)
        );
        assert_eq!(
            error_code(parse_line(br#"{"jsonrpc":"1.0","id":3,"method":"x"}"#)),
            (Value::from(3), INVALID_REQUEST)
        );
        assert_eq!(
            error_code(parse_line(br#"{"jsonrpc":"2.0","id":"a","method":5}"#)),
            (Value::from("a"), INVALID_REQUEST)
        );
        assert!(matches!(parse_line(b"  "), Incoming::Ignore));
        assert!(matches!(
            parse_line(br#"{"jsonrpc":"2.0","method":"daemon.ping"}"#),
            Incoming::Ignore
        ));
        match parse_line(br#"{"jsonrpc":"2.0","id":1,"method":"daemon.ping","params":{"a":1}}"#) {
            Incoming::Request { id, method, params } => {
                assert_eq!(id, Value::from(1));
                assert_eq!(method, "daemon.ping");
                assert_eq!(params["a"], 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_utf8_and_deep_nesting_are_refused_cleanly() {
        assert_eq!(
            error_code(parse_line(
                b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}"
            )),
            (Value::Null, PARSE_ERROR)
        );
        let deep = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{{\"a\":{}{}}}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let (_, code) = error_code(parse_line(deep.as_bytes()));
        assert_eq!(code, INVALID_REQUEST);
        // Brackets inside strings do not count; moderate nesting is fine.
        let ok = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{{\"s\":\"{}\",\"a\":{}{}}}}}",
            "[{".repeat(500),
            "[".repeat(20),
            "]".repeat(20)
        );
        assert!(matches!(
            parse_line(ok.as_bytes()),
            Incoming::Request { .. }
        ));
        assert!(depth_exceeds(b"[[[", 2));
        assert!(!depth_exceeds(br#"["\"[[[["]"#, 2));
    }

    /// Serialise what the daemon would answer for `line`, as the connection does.
    fn answer(line: &[u8]) -> Option<Value> {
        match parse_line(line) {
            Incoming::Ignore => None,
            Incoming::Invalid { id, error } => {
                Some(serde_json::to_value(dataerai_proto::ipc::Response::err(id, error)).unwrap())
            }
            Incoming::Request { id, .. } => {
                assert!(id.is_string() || id.is_number() || id.is_null());
                None
            }
        }
    }

    fn check_error_answer(v: &Value) {
        assert_eq!(v["jsonrpc"], "2.0");
        assert!(v["error"]["code"].as_i64().unwrap() < 0);
        assert!(v["error"]["message"].is_string());
        assert_eq!(v["error"]["data"]["code"], "ERR_INVALID_INPUT");
        // The line the daemon writes is one line.
        assert!(!v.to_string().contains('\n'));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Some(v) = answer(&bytes) {
                check_error_answer(&v);
            }
        }

        #[test]
        fn json_like_lines_never_panic(
            s in r#"[\{\}\[\]":,0-9a-z\\ .\-]{0,200}"#,
            prefix in proptest::sample::select(vec![
                "", "{\"jsonrpc\":\"2.0\",", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"daemon.ping\",\"params\":",
            ]),
        ) {
            let line = format!("{prefix}{s}");
            if let Some(v) = answer(line.as_bytes()) {
                check_error_answer(&v);
            }
        }

        #[test]
        fn capped_reader_never_returns_more_than_max(
            data in proptest::collection::vec(proptest::sample::select(vec![b'a', b'\n', b'{', 0xff]), 0..2000),
            cap in 1usize..64,
            buf_cap in 1usize..32,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut r = BufReader::with_capacity(buf_cap, data.as_slice());
                let mut buf = Vec::new();
                let mut lines = 0;
                loop {
                    match read_line_capped(&mut r, &mut buf, cap).await.unwrap() {
                        Line::Eof => break,
                        Line::Complete => {
                            assert!(buf.len() <= cap);
                            assert!(!buf.contains(&b'\n'));
                            let _ = answer(&buf);
                        }
                        Line::TooLong => {}
                    }
                    lines += 1;
                    assert!(lines <= data.len() + 1);
                }
            });
        }
    }
}
