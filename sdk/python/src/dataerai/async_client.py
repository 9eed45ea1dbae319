"""The :class:`AsyncDataeraiClient`: the SDK's methods as coroutines, for asyncio code and notebooks.

It speaks the same protocol as :class:`~dataerai.DataeraiClient` (``docs/ipc.md``) over **one**
Unix-socket connection opened with asyncio streams: a single reader task routes each response
to the awaiting coroutine by request id and follows transfers through their ``transfer.*``
notifications. No thread is started per call (nor at all, apart from what asyncio itself
does), so it works inside an already running event loop such as Jupyter's::

    from dataerai import AsyncDataeraiClient

    async with AsyncDataeraiClient() as client:
        up = await client.upload("scan.h5", title="Scan", owner_type="user",
                                 owner_id=(await client.auth_status()).user_id, progress=True)
        results = await asyncio.gather(*(client.get_metadata(a) for a in ids))

Arguments are checked, requests built, results parsed and transfers followed by the same code
as the threaded client (:mod:`dataerai._core`, :mod:`dataerai._params`,
:mod:`dataerai._transfers`, the line handling of :mod:`dataerai._connection`), so both behave
the same; this module only does the asyncio I/O around it.
``on_progress`` callbacks run in the event loop: they must return quickly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import (
    TYPE_CHECKING,
    Any,
    AsyncIterator,
    Callable,
    Coroutine,
    Dict,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from . import _collections, _core, _methods, _params, _progress
from ._connection import (
    RpcEndpoint,
    encode_request,
    handle_line,
    read_failure,
    report_disconnect,
    response_outcome,
)
from ._daemon import SpawnedDaemon, find_binary
from ._transfers import TransferWatch, outcome, timeout_message
from .errors import DaemonError, DaemonTimeoutError
from .models import (
    ContentVersion,
    UploadManyResult,
)

__all__ = ["AsyncDataeraiClient"]

logger = logging.getLogger("dataerai")

T = TypeVar("T")
if TYPE_CHECKING:
    from typing import Concatenate, ParamSpec

    P = ParamSpec("P")

_MAX_INCOMING_LINE = 256 * 1024 * 1024
_CONNECT_TIMEOUT_S = 5.0
_SHUTDOWN_TIMEOUT_S = 5.0

ResultHook = Callable[[Dict[str, Any]], None]
NotificationHandler = Callable[["AsyncRpcConnection", str, Dict[str, Any]], None]
DisconnectHandler = Callable[["AsyncRpcConnection", BaseException], None]


class AsyncRpcConnection(RpcEndpoint):
    """A JSON-RPC connection to the daemon's socket on asyncio streams (one reader task)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_notification: Optional[NotificationHandler],
        on_disconnect: Optional[DisconnectHandler],
    ) -> None:
        super().__init__(on_notification, on_disconnect)
        self.loop = asyncio.get_running_loop()
        self._reader = reader
        self._writer = writer
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._hooks: Dict[int, ResultHook] = {}
        self._send_lock = asyncio.Lock()
        self._task = self.loop.create_task(self._read_loop())

    @classmethod
    async def open(
        cls,
        socket_path: str,
        *,
        on_notification: Optional[NotificationHandler] = None,
        on_disconnect: Optional[DisconnectHandler] = None,
    ) -> AsyncRpcConnection:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(socket_path, limit=_MAX_INCOMING_LINE), _CONNECT_TIMEOUT_S
        )
        return cls(reader, writer, on_notification, on_disconnect)

    async def call(
        self,
        method: str,
        params: Optional[Dict[str, Any]] = None,
        *,
        timeout_s: Optional[float] = None,
        on_result: Optional[ResultHook] = None,
    ) -> Any:
        """Send a request and await its result (``on_result`` runs before any later line is
        read, as in the threaded client)."""
        self._check_open()
        request_id = next(self._ids)
        line = encode_request(request_id, method, params)
        future: "asyncio.Future[Any]" = self.loop.create_future()
        self._pending[request_id] = future
        if on_result is not None:
            self._hooks[request_id] = on_result
        try:
            async with self._send_lock:
                self._writer.write(line)
                await self._writer.drain()
        except OSError as exc:
            self._forget(request_id)
            self._shutdown(ConnectionError(f"lost connection to the dataerai daemon: {exc}"))
            raise ConnectionError(f"lost connection to the dataerai daemon: {exc}") from exc
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except asyncio.TimeoutError:
            raise DaemonTimeoutError(
                f"the daemon did not answer {method} within {timeout_s or 0:g} s"
            ) from None
        finally:
            self._forget(request_id)

    async def close(self) -> None:
        """Close the connection and end the reader task. Idempotent."""
        self._shutdown(ConnectionError("the client closed the connection"))
        if self._task is not asyncio.current_task():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 5.0)
        except (OSError, asyncio.TimeoutError):
            pass

    def abort(self) -> None:
        """Drop the connection without awaiting anything (its event loop may be gone)."""
        self._closed_error = self._closed_error or ConnectionError("connection abandoned")
        try:
            self._writer.transport.abort()
        except RuntimeError:
            pass

    def _forget(self, request_id: int) -> None:
        self._pending.pop(request_id, None)
        self._hooks.pop(request_id, None)

    def _shutdown(self, reason: BaseException) -> None:
        if self._closed_error is not None:
            return
        self._closed_error = reason
        pending = list(self._pending.values())
        self._pending.clear()
        self._hooks.clear()
        self._writer.close()
        for future in pending:
            if not future.done():
                future.set_exception(ConnectionError(str(reason)))
        report_disconnect(self._on_disconnect, self, reason)

    async def _read_loop(self) -> None:
        reason: BaseException = ConnectionError("the dataerai daemon closed the connection")
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                if line.strip():
                    handle_line(self, line, self._handle_response, self._on_notification)
        except (asyncio.LimitOverrunError, ValueError):
            reason = ConnectionError("the dataerai daemon sent an oversized line")
        except asyncio.CancelledError:
            reason = ConnectionError("the client closed the connection")
        except Exception as exc:  # noqa: BLE001 - never die silently with callers waiting
            reason = read_failure(exc, "reader task")
        self._shutdown(reason)

    def _handle_response(self, message: Dict[str, Any]) -> None:
        request_id = message["id"]
        if not isinstance(request_id, int):
            return
        future = self._pending.pop(request_id, None)
        hook = self._hooks.pop(request_id, None)
        if future is None or future.done():
            return  # its caller timed out or was cancelled
        result, error = response_outcome(message, hook)
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


# Appended to the methods' docstrings, whose examples show the threaded client.
_AWAITED = """
    In :class:`~dataerai.AsyncDataeraiClient` this is a coroutine: ``await`` it (``on_progress``
    runs in the event loop there).
"""
_ASYNC_FOR = """
    In :class:`~dataerai.AsyncDataeraiClient` iterate with ``async for``.
"""


def _awaitable(
    spec: Callable[P, _core.Call[T]],
) -> Callable[Concatenate[AsyncDataeraiClient, P], Coroutine[Any, Any, T]]:
    """The :class:`AsyncDataeraiClient` coroutine method that carries out ``spec``."""

    async def method(self: AsyncDataeraiClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._perform(spec(*args, **kwargs))

    return _methods.client_method(
        method, spec, owner="AsyncDataeraiClient", pages_as="AsyncIterator", note=_AWAITED
    )


def _async_paging(
    spec: Callable[P, _core.Pages[T]],
) -> Callable[Concatenate[AsyncDataeraiClient, P], AsyncIterator[T]]:
    """The :class:`AsyncDataeraiClient` method that iterates (``async for``) over a paged list."""

    async def method(self: AsyncDataeraiClient, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        async for item in self._pages(spec(*args, **kwargs)):
            yield item

    return _methods.client_method(
        method, spec, owner="AsyncDataeraiClient", pages_as="AsyncIterator", note=_ASYNC_FOR
    )


class AsyncDataeraiClient(_core.ClientCore[AsyncRpcConnection]):
    """Client for the local Dataerai transfer daemon whose methods are coroutines.

    The same methods, arguments, results and errors as :class:`~dataerai.DataeraiClient`,
    awaited; use ``async with`` (or ``await client.connect()`` … ``await client.close()``)::

        async with AsyncDataeraiClient() as client:
            me = await client.auth_status()
            async for asset in client.iter_assets():
                print(asset.title)

    Many coroutines may use one client at once (``asyncio.gather``): their requests share its
    single connection. The client belongs to the event loop it connected in; used from another
    loop (a second ``asyncio.run``), it reconnects there.

    Args: as for :class:`~dataerai.DataeraiClient`.
    """

    _done_flag = asyncio.Event

    def _init_io(self) -> None:
        self._connect_lock: Optional[asyncio.Lock] = None
        self._lock_loop: Optional[asyncio.AbstractEventLoop] = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AsyncDataeraiClient:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def connect(self) -> AsyncDataeraiClient:
        """Connect (starting a daemon if needed and allowed); harmless when already connected.

        Raises:
            DaemonUnavailableError: nothing answers and auto-start is off, the binary is
                missing, or the started daemon exited.
            DaemonTimeoutError: a started daemon did not answer within ``start_timeout_s``.
        """
        async with self._lock():
            self._closed = False
            conn = self._conn
            if conn is not None and conn.loop is not asyncio.get_running_loop():
                conn.abort()
                self._conn = conn = None
            if conn is not None and conn.is_open:
                return self
            self._reap_dead_daemon()
            conn = await self._try_connect()
            if conn is None:
                if not self.auto_start:
                    raise self._no_daemon_error()
                conn = await self._start_daemon()
            self._conn = conn
            return self

    async def close(self) -> None:
        """Disconnect; stop the daemon only if this client started it (it declines while
        transfers run, and then stays up for the next client). Idempotent."""
        async with self._lock():
            self._closed = True
            conn, self._conn = self._conn, None
            daemon, self._daemon = self._daemon, None
            asked_to_stop = False
            if conn is not None and conn.loop is not asyncio.get_running_loop():
                conn.abort()
                conn = None
            if conn is not None and daemon is not None and conn.is_open:
                try:
                    reply = await conn.call("daemon.shutdown", {}, timeout_s=_SHUTDOWN_TIMEOUT_S)
                    asked_to_stop = True
                    daemon = _core.daemon_left_to_stop(daemon, reply)
                except (DaemonError, ConnectionError) as exc:
                    logger.debug("dataerai: daemon.shutdown failed: %s", exc)
            if conn is not None:
                await conn.close()
            self._book.fail_all(ConnectionError("the client was closed"))
            if daemon is not None:
                await _stop_daemon(daemon, 10.0 if asked_to_stop else 0.5)

    # ------------------------------------------------------------------ daemon methods
    # Signatures, docstrings and argument checks: dataerai._methods (one copy for both clients).

    ping = _awaitable(_methods.ping)
    auth_status = _awaitable(_methods.auth_status)
    create_project = _awaitable(_methods.create_project)
    list_project_members = _awaitable(_methods.list_project_members)
    iter_project_members = _async_paging(_methods.iter_project_members)
    add_project_member = _awaitable(_methods.add_project_member)
    remove_project_member = _awaitable(_methods.remove_project_member)
    list_projects = _awaitable(_methods.list_projects)
    iter_projects = _async_paging(_methods.iter_projects)
    list_assets = _awaitable(_methods.list_assets)
    iter_assets = _async_paging(_methods.iter_assets)
    search = _awaitable(_methods.search)
    delete_asset = _awaitable(_methods.delete_asset)
    delete_version = _awaitable(_methods.delete_version)
    iter_search = _async_paging(_methods.iter_search)
    upload = _awaitable(_methods.upload)
    download = _awaitable(_methods.download)
    get_metadata = _awaitable(_methods.get_metadata)
    set_metadata = _awaitable(_methods.set_metadata)
    set_record_type = _awaitable(_methods.set_record_type)
    find_assets = _awaitable(_methods.find_assets)
    create_relationship = _awaitable(_methods.create_relationship)
    list_relationships = _awaitable(_methods.list_relationships)
    lineage = _awaitable(_methods.lineage)
    export_provenance = _awaitable(_methods.export_provenance)
    export_ro_crate = _awaitable(_methods.export_ro_crate)
    upload_version = _awaitable(_methods.upload_version)
    list_versions = _awaitable(_methods.list_versions)
    iter_versions = _async_paging(_methods.iter_versions)
    upload_many = _awaitable(_methods.upload_many)
    list_transfers = _awaitable(_methods.list_transfers)
    get_transfer = _awaitable(_methods.get_transfer)
    cancel_transfer = _awaitable(_methods.cancel_transfer)
    pause_transfer = _awaitable(_methods.pause_transfer)
    resume_transfer = _awaitable(_methods.resume_transfer)
    wait_transfer = _awaitable(_methods.wait_transfer)
    # The collection tree.
    create_collection = _awaitable(_methods.create_collection)
    list_collections = _awaitable(_methods.list_collections)
    iter_collections = _async_paging(_methods.iter_collections)
    rename_collection = _awaitable(_methods.rename_collection)
    move_collection = _awaitable(_methods.move_collection)
    delete_collection = _awaitable(_methods.delete_collection)
    ensure_collection_path = _awaitable(_methods.ensure_collection_path)
    move_asset = _awaitable(_methods.move_asset)
    download_collection = _awaitable(_methods.download_collection)

    # ------------------------------------------------------------------ internals

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._connect_lock is None or self._lock_loop is not loop:
            self._connect_lock, self._lock_loop = asyncio.Lock(), loop
        return self._connect_lock

    async def _connection(self) -> AsyncRpcConnection:
        conn = self._conn
        if conn is not None and conn.is_open and conn.loop is asyncio.get_running_loop():
            return conn
        self._check_not_closed()
        await self.connect()
        assert self._conn is not None
        return self._conn

    async def _call(self, method: str, params: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Any:
        conn = await self._connection()
        result = await conn.call(
            method, params if params is not None else {}, timeout_s=self.request_timeout_s, **kwargs
        )
        return _core.checked_answer(method, result)

    async def _perform(self, call: _core.Call[T]) -> T:
        """Carry out what a public method asked for (:mod:`dataerai._methods`); its result."""
        return call.finish(await self._carry_out(call))

    async def _carry_out(self, call: _core.Call[Any]) -> Any:
        """The I/O ``call``'s kind needs; what it produced, for ``call.finish``."""
        if isinstance(call, _core.Request):
            answer = await self._call(call.method, call.params)
            if call.resumes is not None:
                self._book.forget_finished(call.resumes)
            return answer
        if isinstance(call, _core.AllPages):
            return [item async for item in self._pages(call.pages)]
        if isinstance(call, _core.TransferRequest):
            return await self._run_transfer(call)
        if isinstance(call, _core.UploadManyPlan):
            return await self._upload_many(call)
        if isinstance(call, _core.WaitRequest):
            return await self._wait(call)
        if isinstance(call, _collections.CollectionDownload):
            return await self._download_collection(call)
        if isinstance(call, _core.CrateExportRequest):
            return await self._export_crate(call)
        raise TypeError(f"not a daemon call: {call!r}")

    async def _download_collection(self, call: _collections.CollectionDownload) -> Any:
        """The plan, then each asset's download in turn; a failed one is kept, not raised."""
        plan = await self._call(call.method, call.plan_params)
        outcomes: List[Any] = []
        for item, download in call.downloads(plan):
            if download is None:
                outcomes.append((item, None))
                continue
            try:
                outcomes.append((item, await self._run_transfer(download)))
            except DaemonError as exc:
                outcomes.append((item, exc))
        return plan, outcomes

    async def _pages(self, pages: _core.Pages[T]) -> AsyncIterator[T]:
        position: Optional[Union[int, str]] = _params.first_page(pages.by_cursor)
        while position is not None:
            answer = await self._call(
                pages.method, _params.next_page(pages.params, position, pages.by_cursor)
            )
            items, position = _params.page_items(answer, position, pages.by_cursor)
            for item in items:
                yield pages.parse_item(item)

    async def _try_connect(self) -> Optional[AsyncRpcConnection]:
        try:
            conn = await AsyncRpcConnection.open(
                str(self.socket_path),
                on_notification=self._on_notification,
                on_disconnect=self._on_disconnect,
            )
        except (OSError, asyncio.TimeoutError):
            return None
        try:
            await conn.call("daemon.ping", {}, timeout_s=max(self.start_timeout_s, 1.0))
        except ConnectionError:
            await conn.close()
            return None
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _start_daemon(self) -> AsyncRpcConnection:
        binary = find_binary(self.binary_path)
        daemon = SpawnedDaemon(binary, self.socket_path)
        deadline = time.monotonic() + self.start_timeout_s
        delay = 0.02
        while True:
            conn = await self._probe()
            if conn is not None:
                self._daemon = daemon
                return conn
            code = daemon.exited_early()
            if code is not None:
                # Another client may have won a start race (the loser exits with code 2).
                conn = await self._probe()
                if conn is not None:
                    return conn
                raise daemon.exited_error(code)
            if time.monotonic() >= deadline:
                await _stop_daemon(daemon, 2.0)
                raise daemon.start_timeout_error(self.start_timeout_s)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    async def _probe(self) -> Optional[AsyncRpcConnection]:
        try:
            return await self._try_connect()
        except DaemonError:
            return None

    async def _run_transfer(self, call: _core.TransferRequest[Any]) -> Dict[str, Any]:
        started = _core.StartedTransfer(
            self._watch_new_transfer, call.on_progress, call.progress, call.transfer_timeout_s
        )
        try:
            if started.bars is not None:
                started.info = await self._progress_info(call.method, call.params)
            # started.register runs in the reader task, before any notification about it is read.
            await self._call(call.method, call.params, on_result=started.register)
            watch = started.watch
            assert watch is not None
            try:
                return await self._await_watch(watch, started.timeout_s)
            finally:
                self._remove_watch(watch)
        finally:
            started.close()

    async def _progress_info(self, method: str, params: Mapping[str, Any]) -> Dict[str, Any]:
        if method != "asset.download":
            return _progress.upload_info(params)
        version: Optional[ContentVersion] = None
        try:
            async for candidate in self.iter_versions(str(params["asset_id"])):
                if _progress.wanted_version(candidate, params):
                    version = candidate
                    break
        except DaemonError:
            pass  # the download itself reports what is wrong
        return _progress.download_info(params, version)

    async def _upload_many(self, plan: _core.UploadManyPlan) -> List[UploadManyResult]:
        if not plan.items:
            return []
        results: List[UploadManyResult] = []
        try:
            for batch in plan.batches(self._watch_new_transfer):
                results.extend(await self._upload_batch(batch))
        finally:
            plan.close()
        return results

    async def _upload_batch(self, batch: _core.UploadBatch) -> List[UploadManyResult]:
        try:
            # batch.register runs in the reader task, before any notification about these is read.
            await self._call("asset.upload_many", batch.params, on_result=batch.register)
            for index, watch in batch.started():
                try:
                    batch.settle(index, await self._await_watch(watch, batch.plan.remaining()))
                except DaemonError as exc:  # includes DaemonTimeoutError: reported per item
                    batch.settle(index, error=exc)
            return batch.results()
        finally:
            batch.unwatch(self._remove_watch)

    async def _export_crate(
        self, call: _core.CrateExportRequest[Any]
    ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        downloads = _core.CrateDownloads(call, self._watch_new_transfer)
        try:
            # downloads.register runs in the reader task, before any notification about them.
            answer = await self._call(call.method, call.params, on_result=downloads.register)
            results = [await self._await_watch(w, downloads.remaining()) for w in downloads.watches]
            return answer, results
        finally:
            for watch in downloads.watches:
                self._remove_watch(watch)

    async def _wait(self, call: _core.WaitRequest) -> Tuple[str, Dict[str, Any]]:
        """Follow a transfer any client started to its end: its kind and result."""
        watch = self._watch_new_transfer({"transfer_id": call.transfer_id}, call.on_progress)
        try:
            transfer = await self.get_transfer(call.transfer_id)
            _core.adopt_snapshot(watch, transfer)
            if transfer.finished:
                watch.finish_from_snapshot(transfer)
            return transfer.kind, await self._await_watch(watch, call.timeout_s)
        finally:
            self._remove_watch(watch)

    def _add_watch(self, watch: TransferWatch) -> None:
        for task in self._book.add(watch):
            task()

    def _remove_watch(self, watch: TransferWatch) -> None:
        self._book.remove(watch)

    async def _await_watch(self, watch: TransferWatch, timeout_s: Optional[float]) -> Dict[str, Any]:
        done = watch.done
        assert isinstance(done, asyncio.Event)
        try:
            await asyncio.wait_for(done.wait(), timeout_s)
        except asyncio.TimeoutError:
            raise DaemonTimeoutError(
                timeout_message(watch.transfer_id, timeout_s), transfer_id=watch.transfer_id
            ) from None
        return outcome(watch)

    def _on_notification(self, conn: AsyncRpcConnection, method: str, params: Dict[str, Any]) -> None:
        if conn is not self._conn:
            return
        for task in self._book.notification(method, params):
            task()

    def _on_disconnect(self, conn: AsyncRpcConnection, reason: BaseException) -> None:
        if conn is self._conn:
            self._book.fail_all(reason)


async def _stop_daemon(daemon: SpawnedDaemon, timeout_s: float) -> None:
    """Wait for a daemon we started to exit, escalating to SIGTERM then SIGKILL, without
    blocking the event loop."""
    proc = daemon.process
    for signal_it, wait_s in ((None, timeout_s), (proc.terminate, 5.0), (proc.kill, None)):
        if signal_it is not None:
            signal_it()
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while proc.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        if proc.poll() is not None:
            return
