"""Following one transfer through the daemon's notifications — shared by both clients.

A :class:`TransferWatch` receives a transfer's ``transfer.progress`` events and its final
``transfer.completed``/``transfer.failed`` notification (or a ``transfer.get`` snapshot), in
order; :func:`outcome` turns the finished watch into the result dict or raises its error. The
threaded client signals completion with a :class:`threading.Event`, the asyncio client with an
:class:`asyncio.Event`: the watch only needs ``set()`` and ``is_set()``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Mapping, Optional, Protocol

from .errors import ERR_CANCELLED, ERR_INTERNAL, DaemonError, error_for_code
from .models import ErrorInfo, ProgressEvent, Transfer

logger = logging.getLogger("dataerai")

ProgressCallback = Callable[[ProgressEvent], Any]


class DoneFlag(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...


class TransferWatch:
    """Follows one transfer: its progress callback and its final notification."""

    def __init__(
        self, start: Dict[str, Any], on_progress: Optional[ProgressCallback], done: DoneFlag
    ) -> None:
        self.transfer_id = str(start["transfer_id"])
        self.start = start
        self.on_progress = on_progress
        self.done = done
        self.final: Optional[Dict[str, Any]] = None  # params of transfer.completed / .failed
        self.failed = False
        self.connection_error: Optional[ConnectionError] = None
        self.last_event: Optional[ProgressEvent] = None

    # The methods below run in notification order (the threaded client's dispatcher thread, or
    # the asyncio client's event loop).

    def progress(self, event: ProgressEvent) -> None:
        if self.done.is_set():
            return
        # Keep the documented promise that bytes_done never goes backwards, even if a retried
        # or resumed transfer reports an older figure.
        if self.last_event is not None and event.bytes_done < self.last_event.bytes_done:
            return
        self.last_event = event
        self._deliver(event)

    def retrying(self, params: Mapping[str, Any]) -> None:
        """A ``transfer.retrying`` notification: tell the callback (and bars) the daemon waits."""
        if self.done.is_set():
            return
        last = self.last_event
        self._deliver(
            ProgressEvent(
                transfer_id=self.transfer_id,
                bytes_done=last.bytes_done if last else 0,
                bytes_total=last.bytes_total if last else int(self.start.get("bytes_total") or 0),
                chunk_index=last.chunk_index if last else 0,
                chunk_count=last.chunk_count if last else int(self.start.get("chunk_count") or 0),
                rate_bps=last.rate_bps if last else 0.0,
                file_index=last.file_index if last else 0,
                file_name=last.file_name if last else "",
                kind=str(params.get("kind") or self.start.get("kind") or ""),
                state="retrying",
                retry_attempt=int(params.get("attempt") or 0),
                retry_delay_s=float(params.get("delay_s") or 0.0),
                error=ErrorInfo.from_json(params.get("error")),
            )
        )

    def finish_from_snapshot(self, transfer: Transfer) -> None:
        """Finish from a ``transfer.get`` answer (the final notification may be long gone)."""
        params: Dict[str, Any] = {"transfer_id": transfer.transfer_id, "kind": transfer.kind}
        if transfer.state == "completed":
            params["result"] = transfer.result or {}
            self.finish("transfer.completed", params)
        else:
            error = transfer.raw.get("error") or {
                "code": ERR_CANCELLED if transfer.state == "cancelled" else ERR_INTERNAL,
                "message": f"transfer {transfer.transfer_id} is {transfer.state}",
            }
            params["error"] = error
            self.finish("transfer.failed", params)

    def finish(self, method: str, params: Dict[str, Any]) -> None:
        if self.done.is_set():
            return
        self.failed = method != "transfer.completed"
        if not self.failed:
            self._deliver_final_progress(params.get("result") or {})
        self.final = params
        self.done.set()

    def _deliver_final_progress(self, result: Mapping[str, Any]) -> None:
        # Guarantee callers a last event at 100 % (a 0-byte file may produce no progress at all).
        total = int(result.get("total_bytes", self.start.get("bytes_total", 0)) or 0)
        last = self.last_event
        if self.on_progress is None or (last is not None and last.bytes_done >= total):
            return
        self._deliver(
            ProgressEvent(
                transfer_id=self.transfer_id,
                bytes_done=total,
                bytes_total=total,
                chunk_index=max(0, last.chunk_index if last else 0),
                chunk_count=int(self.start.get("chunk_count", 0) or 0),
                rate_bps=last.rate_bps if last else 0.0,
                file_index=last.file_index if last else 0,
                file_name=last.file_name if last else "",
                kind=str(self.start.get("kind") or ""),
            )
        )

    def _deliver(self, event: ProgressEvent) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(event)
        except Exception:  # noqa: BLE001 - a user callback must never kill the client
            logger.exception("dataerai: on_progress callback raised (transfer %s)", self.transfer_id)


def outcome(watch: TransferWatch) -> Dict[str, Any]:
    """The result of a finished watch, or raise its error (the subclass for its code)."""
    if watch.connection_error is not None:
        raise watch.connection_error
    final = watch.final or {}
    if watch.failed:
        error = final.get("error") or {}
        raise error_for_code(
            str(error.get("code") or ERR_INTERNAL),
            str(error.get("message") or f"transfer {watch.transfer_id} failed"),
        )
    start = watch.start
    result = dict(final.get("result") or {})
    result.setdefault("transfer_id", watch.transfer_id)
    result.setdefault("asset_id", start.get("asset_id"))
    result.setdefault("total_bytes", start.get("bytes_total", 0))
    result.setdefault("chunk_count", start.get("chunk_count", 0))
    return result


def timeout_message(transfer_id: str, timeout_s: Optional[float]) -> str:
    return (
        f"transfer {transfer_id} did not finish within {timeout_s or 0:g} s; it continues "
        "in the daemon (wait_transfer() to wait again, cancel_transfer() to stop it)"
    )


def batch_entry_error(entry: Optional[Mapping[str, Any]]) -> DaemonError:
    """The error of an ``asset.upload_many`` item the daemon did not start."""
    info = (entry or {}).get("error") or {}
    return error_for_code(
        str(info.get("code") or ERR_INTERNAL),
        str(info.get("message") or "the daemon did not start this item"),
    )


def connection_lost(transfer_id: str, reason: BaseException) -> ConnectionError:
    return ConnectionError(
        f"lost connection to the dataerai daemon while waiting for transfer {transfer_id}: {reason}"
    )
