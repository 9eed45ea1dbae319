"""The clients' sans-IO core: what both clients decide, with no socket, thread or event loop.

:class:`~dataerai.DataeraiClient` and :class:`~dataerai.AsyncDataeraiClient` differ only in how
they wait (threads or coroutines). Everything else — their settings and state
(:class:`ClientCore`), the kinds of work a public method (:mod:`dataerai._methods`) asks for
(:class:`Call`: :class:`Request`, :class:`TransferRequest`, :class:`UploadManyPlan`,
:class:`WaitRequest`, :class:`AllPages`; and :class:`Pages`), which transfers are being
followed and what a notification means for them (:class:`WatchBook`), the bookkeeping of one
``asset.upload_many`` batch (:class:`UploadBatch`) — lives here once, and each client does
only the I/O around it.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Generic, Iterator, List, Mapping, Optional, Tuple, TypeVar, Union

from . import _params, _progress
from ._connection import RpcEndpoint
from ._daemon import SpawnedDaemon, default_socket_path
from ._params import PathLike
from ._progress import ProgressBars
from ._transfers import DoneFlag, ProgressCallback, TransferWatch, batch_entry_error, connection_lost
from .errors import ERR_INTERNAL, DaemonError, DaemonUnavailableError
from .models import (
    ContentVersion,
    DownloadResult,
    ListPage,
    ProgressEvent,
    Transfer,
    UploadManyResult,
    UploadResult,
)

logger = logging.getLogger("dataerai")

T = TypeVar("T")
JsonObject = Dict[str, Any]
Task = Callable[[], None]
# A client's way to make a watch for a transfer it just started and to register it.
Follow = Callable[[JsonObject, Optional[ProgressCallback]], TransferWatch]

# How many finished transfers to remember for waiters that register late.
FINISHED_MEMORY = 1024


# ---------------------------------------------------------------------- client state

Conn = TypeVar("Conn", bound=RpcEndpoint)


class ClientCore(Generic[Conn]):
    """The settings and state both clients keep, and the answers they give without I/O.

    ``Conn`` is the connection class: :class:`~dataerai._connection.RpcConnection` or
    ``AsyncRpcConnection``.
    """

    def __init__(
        self,
        *,
        socket_path: Optional[PathLike] = None,
        binary_path: Optional[PathLike] = None,
        auto_start: bool = True,
        start_timeout_s: float = 10.0,
        request_timeout_s: Optional[float] = 30.0,
    ) -> None:
        # Documented (Args) on DataeraiClient; both clients take exactly these.
        self.socket_path: Path = (
            Path(os.fspath(socket_path)).expanduser() if socket_path is not None else default_socket_path()
        )
        self.binary_path: Optional[str] = os.fspath(binary_path) if binary_path is not None else None
        self.auto_start = auto_start
        self.start_timeout_s = start_timeout_s
        self.request_timeout_s = request_timeout_s
        self._conn: Optional[Conn] = None
        self._daemon: Optional[SpawnedDaemon] = None
        self._closed = False
        self._book = WatchBook()
        self._init_io()

    def _init_io(self) -> None:
        """Set up what this kind of client needs for its I/O (locks, queues), at construction."""

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"{type(self).__name__}(socket_path={str(self.socket_path)!r}, {state})"

    @property
    def connected(self) -> bool:
        """Whether the client currently holds an open connection to the daemon."""
        conn = self._conn
        return conn is not None and conn.is_open

    @property
    def started_daemon(self) -> bool:
        """Whether this client started the daemon it talks to (and will stop it on close)."""
        return self._daemon is not None

    def _reap_dead_daemon(self) -> None:
        # A daemon we started that died (killed, crashed) must still be waited for: no zombies.
        if self._daemon is not None and self._daemon.exited_early() is not None:
            self._daemon.stop(timeout_s=1.0)  # already exited: returns at once
            self._daemon = None

    def _no_daemon_error(self) -> DaemonUnavailableError:
        """Nothing answers on the socket and ``auto_start`` is off."""
        return DaemonUnavailableError(
            f"no dataerai daemon answers on {self.socket_path} and auto_start is off; "
            f"start one with `dataerai daemon --socket {self.socket_path}`"
        )

    def _check_not_closed(self) -> None:
        if self._closed:
            raise DaemonUnavailableError("the client is closed; call connect() to reconnect")

    #: What a watch's waiter blocks on: ``threading.Event`` or ``asyncio.Event``.
    _done_flag: Callable[[], DoneFlag]

    def _watch_new_transfer(
        self, start: JsonObject, on_progress: Optional[ProgressCallback]
    ) -> TransferWatch:
        """Follow a transfer: a new watch, registered by :meth:`_add_watch` (for one this client
        just started, called before any notification about it is read)."""
        watch = TransferWatch(start, on_progress, self._done_flag())
        self._add_watch(watch)
        return watch

    def _add_watch(self, watch: TransferWatch) -> None:
        raise NotImplementedError


def daemon_stops(reply: Any) -> bool:
    """Whether a ``daemon.shutdown`` reply says the daemon is stopping (``stopping: false``:
    it declined because transfers are running; a daemon older than that answers ``{}``)."""
    return not (isinstance(reply, dict) and reply.get("stopping") is False)


def daemon_left_to_stop(daemon: SpawnedDaemon, reply: Any) -> Optional[SpawnedDaemon]:
    """The daemon a closing client still stops after its ``daemon.shutdown`` answered ``reply``:
    ``None`` when it declined because transfers are running — it then stays up, finishes them,
    and the next client uses it."""
    if daemon_stops(reply):
        return daemon
    daemon.leave_running()
    return None


def checked_answer(method: str, result: Any) -> JsonObject:
    """A request's result, which must be a JSON object."""
    if not isinstance(result, dict):
        raise DaemonError(ERR_INTERNAL, f"unexpected answer to {method}: {result!r}")
    return result


# ---------------------------------------------------------------------- requests


class Call(Generic[T]):
    """What one public method (:mod:`dataerai._methods`) asks its client to do, without I/O.

    The client does the I/O its kind calls for (one request, a transfer, a batch, a wait…) and
    hands what that produced to :meth:`finish`, which makes the method's result ``T``.
    """

    def finish(self, raw: Any) -> T:
        raise NotImplementedError


@dataclass(frozen=True)
class Request(Call[T]):
    """One daemon request: its method, its checked parameters and how to read its answer."""

    method: str
    params: JsonObject
    parse: Callable[[JsonObject], T]
    resumes: Optional[str] = None
    """``transfer.resume``: the transfer whose remembered end is stale once this succeeds."""

    def finish(self, raw: Any) -> T:
        return self.parse(raw)


@dataclass(frozen=True)
class Pages(Generic[T]):
    """A paged list method (``docs/ipc.md``: ``limit``/``offset``/``total``, or with
    ``by_cursor`` ``limit``/``cursor``/``next_cursor``), read item by item."""

    method: str
    params: JsonObject
    parse_item: Callable[[JsonObject], T]
    by_cursor: bool = False


@dataclass(frozen=True)
class AllPages(Call[List[T]]):
    """Every item of a paged list method, as one list."""

    pages: Pages[T]

    def finish(self, raw: Any) -> List[T]:
        return ListPage(raw)


@dataclass(frozen=True)
class TransferRequest(Call[T]):
    """A request that starts a transfer (``asset.upload``/``asset.download``), then followed to
    its end: the client hands the transfer's result dict to :meth:`finish`."""

    method: str
    params: JsonObject
    parse: Callable[[JsonObject], T]
    on_progress: Optional[ProgressCallback]
    transfer_timeout_s: Optional[float]
    progress: bool

    def finish(self, raw: Any) -> T:
        return self.parse(raw)


@dataclass(frozen=True)
class WaitRequest(Call[Union[UploadResult, DownloadResult]]):
    """Follow a transfer some client started; the client hands ``(kind, result dict)`` to
    :meth:`finish`."""

    transfer_id: str
    timeout_s: Optional[float]
    on_progress: Optional[ProgressCallback]

    def finish(self, raw: Any) -> Union[UploadResult, DownloadResult]:
        kind, result = raw
        return transfer_result(kind, result)


def items_of(parse_item: Callable[[JsonObject], T]) -> Callable[[JsonObject], ListPage[T]]:
    """Read a one-page list answer (``{"items": [...], "total", "offset"}``) item by item, with
    its total and the cursor of the next page."""

    def read(page: JsonObject) -> ListPage[T]:
        items = [parse_item(item) for item in page.get("items") or []]
        total = page.get("total")
        if total is None:
            return ListPage(items)
        following = int(page.get("offset") or 0) + len(items)
        more = bool(items) and following < int(total)
        return ListPage(items, total=int(total), next_cursor=_params.cursor_at(following) if more else None)

    return read


# ---------------------------------------------------------------------- following transfers


class WatchBook:
    """The transfers a client follows, and the last finished ones (for late waiters).

    Not thread-safe by itself: the threaded client holds its lock around each call. Methods
    that must reach user code return it as tasks for the client to run (at once, or through
    its dispatcher thread), in notification order.
    """

    def __init__(self) -> None:
        # Several waiters may follow one transfer (e.g. upload() and wait_transfer()).
        self.watches: Dict[str, List[TransferWatch]] = {}
        self.finished: "collections.OrderedDict[str, Tuple[str, JsonObject]]" = collections.OrderedDict()

    def add(self, watch: TransferWatch) -> List[Task]:
        """Follow ``watch``; a task finishes it at once if its transfer already ended."""
        self.watches.setdefault(watch.transfer_id, []).append(watch)
        finished = self.finished.get(watch.transfer_id)
        return [] if finished is None else [functools.partial(watch.finish, *finished)]

    def remove(self, watch: TransferWatch) -> None:
        watches = self.watches.get(watch.transfer_id)
        if watches is not None and watch in watches:
            watches.remove(watch)
            if not watches:
                del self.watches[watch.transfer_id]

    def forget_finished(self, transfer_id: str) -> None:
        """A resumed transfer's remembered failure is stale: waiters must follow the new run."""
        self.finished.pop(transfer_id, None)

    def notification(self, method: str, params: JsonObject) -> List[Task]:
        """Note a ``transfer.*`` notification; return what its watches must be told."""
        transfer_id = params.get("transfer_id")
        if not isinstance(transfer_id, str):
            return []
        watches = list(self.watches.get(transfer_id, ()))
        if method == "transfer.progress":
            if not watches:
                return []
            event = ProgressEvent.from_json(params)
            return [functools.partial(watch.progress, event) for watch in watches]
        if method in ("transfer.completed", "transfer.failed"):
            self.finished[transfer_id] = (method, params)
            while len(self.finished) > FINISHED_MEMORY:
                self.finished.popitem(last=False)
            return [functools.partial(watch.finish, method, params) for watch in watches]
        if method == "transfer.retrying":
            # Non-fatal: the daemon waits and tries again; waiters simply keep waiting.
            error = params.get("error") or {}
            logger.info(
                "dataerai: transfer %s retrying (attempt %s) in %ss after %s: %s",
                transfer_id,
                params.get("attempt"),
                params.get("delay_s"),
                error.get("code"),
                error.get("message"),
            )
            return [functools.partial(watch.retrying, params) for watch in watches]
        return []

    def fail_all(self, reason: BaseException) -> None:
        """End every unfinished watch with a :class:`ConnectionError` (the daemon went away)."""
        for watch in [watch for group in self.watches.values() for watch in group]:
            if not watch.done.is_set():
                watch.connection_error = connection_lost(watch.transfer_id, reason)
                watch.done.set()


def adopt_snapshot(watch: TransferWatch, transfer: Transfer) -> None:
    """Complete a ``wait_transfer`` watch's start from the transfer's ``transfer.get`` state."""
    watch.start.update(
        kind=transfer.kind,
        asset_id=transfer.asset_id,
        bytes_total=transfer.bytes_total,
        chunk_count=transfer.chunk_count,
    )


def transfer_result(kind: str, result: JsonObject) -> Union[UploadResult, DownloadResult]:
    """A finished transfer's result as the class of its kind."""
    if kind == "download":
        return DownloadResult.from_json(result)
    return UploadResult.from_json(result)


class StartedTransfer:
    """One ``asset.upload``/``asset.download`` call: its checked timeout, its progress bars, and
    the ``on_result`` hook (:meth:`register`) that starts following the transfer.

    The hook runs before any notification about the transfer is read, so the watch it makes
    misses none of them; ``follow`` is the client's way to make and register that watch. Set
    :attr:`info` (the bars' file names and sizes) before the request when :attr:`bars` is set.
    """

    def __init__(
        self,
        follow: Follow,
        on_progress: Optional[ProgressCallback],
        progress: bool,
        transfer_timeout_s: Optional[float],
    ) -> None:
        self.timeout_s = _params.timeout(transfer_timeout_s, "transfer_timeout_s")
        self.bars = _progress.bars_for(progress, on_progress)
        self.info: Mapping[str, Any] = {}
        self.watch: Optional[TransferWatch] = None
        self._follow = follow
        self._on_progress = on_progress

    def register(self, start: JsonObject) -> None:
        if self.bars is not None:
            self.bars.expect(str(start["transfer_id"]), _progress.started(self.info, start))
        self.watch = self._follow(dict(start), self.bars or self._on_progress)
        if finished_in_reply(start) and self.bars is None and self._on_progress is None:
            # A lone small upload ends before the reply: its result is in it, so the call
            # returns without waiting for ``transfer.completed`` (with a callback, that
            # notification still delivers the final progress event on the callback thread).
            params = {"transfer_id": self.watch.transfer_id, "kind": start.get("kind")}
            self.watch.finish("transfer.completed", {**params, "result": start["result"]})

    def close(self) -> None:
        if self.bars is not None:
            self.bars.close()


def finished_in_reply(start: JsonObject) -> bool:
    """Whether a transfer's start reply says it completed already and carries its result."""
    return start.get("state") == "completed" and isinstance(start.get("result"), dict)


def download_version(
    versions: Iterator[ContentVersion], params: Mapping[str, Any]
) -> Optional[ContentVersion]:
    """The content version a download will fetch, from the asset's versions (newest first)."""
    for candidate in versions:
        if _progress.wanted_version(candidate, params):
            return candidate
    return None


# ---------------------------------------------------------------------- upload_many


@dataclass(frozen=True)
class UploadManyPlan(Call[List[UploadManyResult]]):
    """A checked ``upload_many`` call: its items, in batches the daemon accepts. The client sends
    each of :meth:`batches` and hands the items' results, in input order, to :meth:`finish`."""

    items: List[JsonObject]
    concurrency: int
    chunk_size_mb: Optional[int]
    deadline: Optional[float]
    bars: Optional[ProgressBars]
    on_progress: Optional[ProgressCallback]
    """What every item's progress goes to: the bars (which call the user's callback too), or
    the user's callback."""

    def batches(self, follow: Follow) -> Iterator[UploadBatch]:
        """The requests to send one after the other; ``follow`` makes and registers a watch."""
        # The daemon takes at most 10,000 items per request; bigger inputs go batch after batch.
        for offset in range(0, len(self.items), _params.MAX_BATCH_ITEMS):
            part = self.items[offset : offset + _params.MAX_BATCH_ITEMS]
            yield UploadBatch(part, offset, self.concurrency, self, follow)

    def remaining(self) -> Optional[float]:
        """What is left of the whole call's ``transfer_timeout_s``."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def close(self) -> None:
        if self.bars is not None:
            self.bars.close()

    def finish(self, raw: Any) -> List[UploadManyResult]:
        return list(raw)


def upload_many_plan(
    items: Any,
    concurrency: int,
    chunk_size_mb: Optional[int],
    on_progress: Optional[ProgressCallback],
    transfer_timeout_s: Optional[float],
    progress: bool,
) -> UploadManyPlan:
    batch = _params.upload_batch(items, concurrency)
    chunk_size_mb = _params.chunk_size(chunk_size_mb)
    transfer_timeout_s = _params.timeout(transfer_timeout_s, "transfer_timeout_s")
    bars = _progress.bars_for(progress, on_progress)
    deadline = None if transfer_timeout_s is None else time.monotonic() + transfer_timeout_s
    return UploadManyPlan(batch, concurrency, chunk_size_mb, deadline, bars, bars or on_progress)


class UploadBatch:
    """One ``asset.upload_many`` request: its parameters, its answer, its items' results.

    The client sends :attr:`params` with :meth:`register` as its ``on_result`` hook, then
    waits for each of :meth:`started` and hands what it got to :meth:`settle`.
    """

    def __init__(
        self, items: List[JsonObject], offset: int, concurrency: int, plan: UploadManyPlan, follow: Follow
    ) -> None:
        self.items = items
        self.offset = offset
        self.plan = plan
        self._follow = follow
        self.params = _params.drop_none(
            {"items": items, "concurrency": concurrency, "chunk_size_mb": plan.chunk_size_mb}
        )
        self._infos = [_progress.upload_info(item) for item in items] if plan.bars is not None else []
        self._entries: Dict[int, JsonObject] = {}
        self.watches: Dict[int, TransferWatch] = {}
        self._results: Dict[int, Optional[UploadResult]] = {}
        self._errors: Dict[int, DaemonError] = {}

    def register(self, answer: JsonObject) -> None:
        bars = self.plan.bars
        for entry in answer.get("items") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
                continue
            index = entry["index"]
            self._entries[index] = entry
            if entry.get("transfer_id"):
                start = {
                    "transfer_id": entry["transfer_id"],
                    "kind": "upload",
                    "asset_id": entry.get("asset_id"),
                }
                if bars is not None and 0 <= index < len(self._infos):
                    bars.expect(str(entry["transfer_id"]), self._infos[index])
                self.watches[index] = self._follow(start, self.plan.on_progress)

    def started(self) -> Iterator[Tuple[int, TransferWatch]]:
        """The items' watches, in input order (items the daemon did not start have none)."""
        return ((index, self.watches[index]) for index in range(len(self.items)) if index in self.watches)

    def settle(
        self, index: int, result: Optional[JsonObject] = None, error: Optional[DaemonError] = None
    ) -> None:
        """Record how a started item ended: its result dict or its error."""
        if error is not None:
            self._errors[index] = error
        else:
            self._results[index] = UploadResult.from_json(result or {})

    def unwatch(self, remove: Callable[[TransferWatch], None]) -> None:
        """Stop following the batch's transfers with the client's ``remove`` (once settled)."""
        for watch in self.watches.values():
            remove(watch)

    def results(self) -> List[UploadManyResult]:
        results: List[UploadManyResult] = []
        for index, item in enumerate(self.items):
            local_path = Path(item["local_path"]) if isinstance(item.get("local_path"), str) else None
            error = self._errors.get(index)
            if index not in self.watches:
                error = batch_entry_error(self._entries.get(index))
            results.append(UploadManyResult(self.offset + index, local_path, self._results.get(index), error))
        return results


# ---------------------------------------------------------------------- provenance export


@dataclass(frozen=True)
class CrateExportRequest(Call[T]):
    """``export.ro_crate``: one request that writes the crate's metadata and starts one download
    per asset, then every download followed to its end. The client sends :attr:`params` with a
    :class:`CrateDownloads`' ``register`` as the ``on_result`` hook, waits for each of its
    watches and hands ``(answer, [download result dicts])`` to :meth:`finish`."""

    method: str
    params: JsonObject
    parse: Callable[[JsonObject, List[JsonObject]], T]
    on_progress: Optional[ProgressCallback]
    transfer_timeout_s: Optional[float]

    def finish(self, raw: Any) -> T:
        answer, results = raw
        return self.parse(answer, results)


class CrateDownloads:
    """The downloads of one ``export.ro_crate`` answer: a watch per transfer, made by
    :meth:`register` before any notification about them is read."""

    def __init__(self, call: CrateExportRequest[Any], follow: Follow) -> None:
        self.timeout_s = _params.timeout(call.transfer_timeout_s, "transfer_timeout_s")
        self.deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        self.watches: List[TransferWatch] = []
        self._follow = follow
        self._on_progress = call.on_progress

    def register(self, answer: JsonObject) -> None:
        for entry in answer.get("transfers") or []:
            if isinstance(entry, dict) and entry.get("transfer_id"):
                start = dict(entry, kind="download")
                self.watches.append(self._follow(start, self._on_progress))

    def remaining(self) -> Optional[float]:
        """What is left of the whole export's ``transfer_timeout_s``."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
