"""The one place that speaks the daemon's socket protocol (``docs/ipc.md``).

:class:`RpcConnection` owns a Unix stream socket and a reader thread. Requests are written as
one compact JSON-RPC 2.0 object per line; the reader thread parses every incoming line and

* routes a response to the caller waiting on its ``id`` (several threads may wait at once),
* hands a notification to ``on_notification`` (which must return quickly: it runs on the
  reader thread, so the client queues user callbacks onto a separate dispatcher thread).

When the socket closes under us every waiting caller gets the built-in :class:`ConnectionError`.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import threading
from typing import Any, Callable, Dict, Optional, Tuple

from .errors import ERR_INTERNAL, ERR_INVALID_INPUT, DaemonError, DaemonTimeoutError, error_for_code

logger = logging.getLogger("dataerai")

# Handlers get the connection itself, so a client can ignore connections it no longer uses.
NotificationHandler = Callable[["RpcConnection", str, Dict[str, Any]], None]
ResultHook = Callable[[Dict[str, Any]], None]
DisconnectHandler = Callable[["RpcConnection", BaseException], None]

# Responses (asset lists, …) can be large; this only guards against a runaway peer.
_MAX_INCOMING_LINE = 256 * 1024 * 1024
_RECV_SIZE = 64 * 1024


class _PendingCall:
    __slots__ = ("event", "result", "error", "on_result")

    def __init__(self, on_result: Optional[ResultHook]) -> None:
        self.event = threading.Event()
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.on_result = on_result


def error_from_rpc(error: Any) -> DaemonError:
    """Turn a JSON-RPC ``error`` member into the :class:`DaemonError` (subclass) of its
    ``ERR_*`` code."""
    if not isinstance(error, dict):
        return DaemonError(ERR_INTERNAL, f"malformed error from daemon: {error!r}")
    data = error.get("data")
    code = data.get("code") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:
        # Protocol errors without data are still input problems from the client's view.
        code = ERR_INVALID_INPUT if error.get("code") in (-32700, -32600, -32601, -32602) else ERR_INTERNAL
    return error_for_code(code, str(error.get("message") or "daemon error"))


def encode_request(request_id: int, method: str, params: Optional[Dict[str, Any]]) -> bytes:
    """One request as the line to send (``ERR_INVALID_INPUT`` for parameters that are not JSON)."""
    message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    try:
        line = json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise error_for_code(ERR_INVALID_INPUT, f"parameters of {method} are not JSON: {exc}") from None
    return line.encode("utf-8")


def handle_line(
    conn: Any,
    line: bytes,
    on_response: Callable[[Dict[str, Any]], None],
    on_notification: Optional[Callable[[Any, str, Dict[str, Any]], None]],
) -> None:
    """Parse one line from the daemon and hand it to ``on_response`` (a message with an ``id``)
    or ``on_notification`` (``conn``, its method and params); log and skip anything else."""
    try:
        message = json.loads(line)
    except ValueError:
        logger.warning("dataerai: ignoring a line from the daemon that is not JSON: %.200r", line)
        return
    if not isinstance(message, dict):
        logger.warning("dataerai: ignoring a non-object message from the daemon")
        return
    if message.get("id") is not None and "method" not in message:
        on_response(message)
    elif "method" in message:
        params = message.get("params")
        if on_notification is not None:
            try:
                on_notification(conn, str(message["method"]), params if isinstance(params, dict) else {})
            except Exception:  # noqa: BLE001
                logger.exception("dataerai: notification handler failed")
    else:
        logger.warning("dataerai: ignoring an unexpected message from the daemon: %.200r", line)


def read_failure(exc: Exception, reader: str) -> ConnectionError:
    """Why a connection's reader stopped on ``exc`` (anything but an ``OSError`` is logged)."""
    if isinstance(exc, OSError):
        return ConnectionError(f"lost connection to the dataerai daemon: {exc}")
    logger.exception("dataerai: %s failed", reader)
    return ConnectionError(f"dataerai client reader failed: {exc}")


def response_outcome(
    message: Dict[str, Any], on_result: Optional[ResultHook]
) -> Tuple[Any, Optional[DaemonError]]:
    """A response's result and error (one of them is set); runs ``on_result`` on a result."""
    if message.get("error") is not None:
        return None, error_from_rpc(message["error"])
    result = message.get("result")
    result = result if result is not None else {}
    if on_result is not None and isinstance(result, dict):
        try:
            on_result(result)
        except Exception as exc:  # noqa: BLE001
            logger.exception("dataerai: result hook failed")
            return result, DaemonError(ERR_INTERNAL, f"could not handle the daemon's answer: {exc}")
    return result, None


def report_disconnect(
    handler: Optional[Callable[[Any, BaseException], None]], conn: Any, reason: BaseException
) -> None:
    """Tell a connection's ``on_disconnect`` handler; a handler bug must not break shutdown."""
    if handler is not None:
        try:
            handler(conn, reason)
        except Exception:  # noqa: BLE001
            logger.exception("dataerai: disconnect handler failed")


class RpcEndpoint:
    """What both connections (reader thread or asyncio task) keep: handlers, ids, open state."""

    def __init__(
        self,
        on_notification: Optional[Callable[[Any, str, Dict[str, Any]], None]],
        on_disconnect: Optional[Callable[[Any, BaseException], None]],
    ) -> None:
        self._on_notification = on_notification
        self._on_disconnect = on_disconnect
        self._ids = itertools.count(1)
        self._closed_error: Optional[BaseException] = None

    @property
    def is_open(self) -> bool:
        return self._closed_error is None

    def _check_open(self) -> None:
        if self._closed_error is not None:
            raise ConnectionError(f"not connected to the dataerai daemon: {self._closed_error}")


class RpcConnection(RpcEndpoint):
    """A JSON-RPC connection to the daemon's Unix socket.

    Thread-safe: :meth:`call` may be used from any number of threads at once.
    """

    def __init__(
        self,
        socket_path: str,
        *,
        on_notification: Optional[NotificationHandler] = None,
        on_disconnect: Optional[DisconnectHandler] = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(on_notification, on_disconnect)
        self.socket_path = socket_path
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: Dict[int, _PendingCall] = {}

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout_s)
            sock.connect(socket_path)
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._reader = threading.Thread(
            target=self._read_loop, name=f"dataerai-reader[{socket_path}]", daemon=True
        )
        self._reader.start()

    # ------------------------------------------------------------------ public

    def call(
        self,
        method: str,
        params: Optional[Dict[str, Any]] = None,
        *,
        timeout_s: Optional[float] = None,
        on_result: Optional[ResultHook] = None,
    ) -> Any:
        """Send a request and wait for its result.

        ``on_result`` runs on the reader thread as soon as a successful response arrives and
        before any later line is read; the daemon writes a transfer's start response before any
        notification about it, so a hook registered here cannot miss those notifications.

        Raises:
            DaemonError: the daemon answered with an error.
            DaemonTimeoutError: no answer within ``timeout_s``.
            ConnectionError: the connection is (or becomes) closed.
        """
        pending = _PendingCall(on_result)
        with self._lock:
            self._check_open()
            request_id = next(self._ids)
            self._pending[request_id] = pending
        try:
            line = encode_request(request_id, method, params)
        except DaemonError:
            self._forget(request_id)
            raise
        try:
            with self._send_lock:
                self._sock.sendall(line)
        except OSError as exc:
            self._forget(request_id)
            self._shutdown(ConnectionError(f"lost connection to the dataerai daemon: {exc}"))
            raise ConnectionError(f"lost connection to the dataerai daemon: {exc}") from exc

        if not pending.event.wait(timeout_s):
            self._forget(request_id)
            raise DaemonTimeoutError(f"the daemon did not answer {method} within {timeout_s:g} s")
        if pending.error is not None:
            raise pending.error
        return pending.result

    def close(self) -> None:
        """Close the socket and join the reader thread. Idempotent."""
        self._shutdown(ConnectionError("the client closed the connection"))
        if self._reader is not threading.current_thread():
            self._reader.join(timeout=5.0)

    # ------------------------------------------------------------------ internals

    def _forget(self, request_id: int) -> None:
        with self._lock:
            self._pending.pop(request_id, None)

    def _shutdown(self, reason: BaseException) -> None:
        with self._lock:
            if self._closed_error is not None:
                return
            self._closed_error = reason
            pending = list(self._pending.values())
            self._pending.clear()
        try:
            # shutdown() wakes the reader thread blocked in recv(); close() alone would not.
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for call in pending:
            call.error = ConnectionError(str(reason))
            call.event.set()
        report_disconnect(self._on_disconnect, self, reason)

    def _read_loop(self) -> None:
        buffer = bytearray()
        reason: BaseException = ConnectionError("the dataerai daemon closed the connection")
        try:
            while True:
                chunk = self._sock.recv(_RECV_SIZE)
                if not chunk:
                    break
                buffer += chunk
                start = 0
                while True:
                    end = buffer.find(b"\n", start)
                    if end < 0:
                        break
                    line = bytes(buffer[start:end])
                    start = end + 1
                    if line.strip():
                        handle_line(self, line, self._handle_response, self._on_notification)
                del buffer[:start]
                if len(buffer) > _MAX_INCOMING_LINE:
                    reason = ConnectionError("the dataerai daemon sent an oversized line")
                    break
        except Exception as exc:  # noqa: BLE001 - never die silently with callers waiting
            reason = read_failure(exc, "reader thread")
        self._shutdown(reason)

    def _handle_response(self, message: Dict[str, Any]) -> None:
        with self._lock:
            call = self._pending.pop(message["id"], None) if isinstance(message["id"], int) else None
        if call is None:
            # A response to a request whose caller already timed out.
            return
        call.result, call.error = response_outcome(message, call.on_result)
        call.event.set()
