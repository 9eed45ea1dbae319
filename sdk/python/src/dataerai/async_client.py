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
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Mapping, Optional, TypeVar, Union

from . import _core, _params, _progress
from ._connection import (
    RpcEndpoint,
    encode_request,
    handle_line,
    read_failure,
    report_disconnect,
    response_outcome,
)
from ._daemon import SpawnedDaemon, find_binary
from ._params import PathLike
from ._transfers import ProgressCallback, TransferWatch, outcome, timeout_message
from .errors import DaemonError, DaemonTimeoutError
from .models import (
    AssetMetadata,
    AuthStatus,
    ContentVersion,
    DownloadResult,
    Project,
    ProjectMember,
    Relationship,
    Transfer,
    UploadItem,
    UploadManyResult,
    UploadResult,
)

__all__ = ["AsyncDataeraiClient"]

logger = logging.getLogger("dataerai")

T = TypeVar("T")

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

    def __init__(
        self,
        *,
        socket_path: Optional[PathLike] = None,
        binary_path: Optional[PathLike] = None,
        auto_start: bool = True,
        start_timeout_s: float = 10.0,
        request_timeout_s: Optional[float] = 30.0,
    ) -> None:
        super().__init__(socket_path, binary_path, auto_start, start_timeout_s, request_timeout_s)
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
        """Disconnect; stop the daemon only if this client started it. Idempotent."""
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
                    await conn.call("daemon.shutdown", {}, timeout_s=_SHUTDOWN_TIMEOUT_S)
                    asked_to_stop = True
                except (DaemonError, ConnectionError) as exc:
                    logger.debug("dataerai: daemon.shutdown failed: %s", exc)
            if conn is not None:
                await conn.close()
            self._book.fail_all(ConnectionError("the client was closed"))
            if daemon is not None:
                await _stop_daemon(daemon, 10.0 if asked_to_stop else 0.5)

    # ------------------------------------------------------------------ daemon methods

    async def ping(self) -> Dict[str, Any]:
        """Check the daemon answers; returns ``{"version", "pid", "socket_path"}``."""
        return await self._request(_core.ping())

    async def auth_status(self) -> AuthStatus:
        """Who the daemon is signed in as (:meth:`DataeraiClient.auth_status`)."""
        return await self._request(_core.auth_status())

    async def create_project(self, name: str, *, description: str = "") -> Project:
        """Create a project (:meth:`DataeraiClient.create_project`)."""
        return await self._request(_core.create_project(name, description))

    async def list_project_members(self, project_id: str) -> List[ProjectMember]:
        """Every member of a project with their role."""
        return [member async for member in self.iter_project_members(project_id)]

    async def iter_project_members(self, project_id: str) -> AsyncIterator[ProjectMember]:
        """Members of a project, fetched page by page as you iterate (``async for``)."""
        async for member in self._pages(_core.project_members(project_id)):
            yield member

    async def add_project_member(self, project_id: str, email: str, role: str) -> ProjectMember:
        """Add a user (by email) to a project, or change a member's role."""
        return await self._request(_core.add_project_member(project_id, email, role))

    async def remove_project_member(self, project_id: str, email: str) -> None:
        """Remove a user from a project (the last owner cannot be removed)."""
        await self._request(_core.remove_project_member(project_id, email))

    async def list_projects(
        self, *, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> List[Project]:
        """Projects you belong to (one page)."""
        return await self._request(_core.list_projects(limit, offset))

    async def iter_projects(self) -> AsyncIterator[Project]:
        """Every project you belong to, fetched page by page as you iterate (``async for``)."""
        async for project in self._pages(_core.projects()):
            yield project

    async def list_assets(
        self,
        *,
        owner_type: Optional[str] = None,
        owner_id: Optional[str] = None,
        collection_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[AssetMetadata]:
        """Assets of an owner (default: yours) or of a collection (one page)."""
        return await self._request(_core.list_assets(owner_type, owner_id, collection_id, limit, offset))

    async def iter_assets(
        self,
        *,
        owner_type: Optional[str] = None,
        owner_id: Optional[str] = None,
        collection_id: Optional[str] = None,
    ) -> AsyncIterator[AssetMetadata]:
        """Every asset of an owner or collection, fetched page by page (``async for``)."""
        async for asset in self._pages(_core.assets(owner_type, owner_id, collection_id)):
            yield asset

    async def upload(
        self,
        local_path: PathLike,
        *,
        title: str,
        owner_type: str,
        owner_id: str,
        description: Optional[str] = None,
        alias: Optional[str] = None,
        tags: Optional[Iterable[str]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        collection_id: Optional[str] = None,
        chunk_size_mb: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        transfer_timeout_s: Optional[float] = 3600,
        progress: bool = False,
    ) -> UploadResult:
        """Upload a file or directory as a new asset (:meth:`DataeraiClient.upload`)."""
        params = _params.upload(
            local_path,
            title=title,
            owner_type=owner_type,
            owner_id=owner_id,
            description=description,
            alias=alias,
            tags=tags,
            metadata=metadata,
            collection_id=collection_id,
            chunk_size_mb=chunk_size_mb,
        )
        result = await self._run_transfer("asset.upload", params, on_progress, transfer_timeout_s, progress)
        return UploadResult.from_json(result)

    async def download(
        self,
        asset_id: str,
        dest_dir: PathLike,
        *,
        content_id: Optional[str] = None,
        chunk_size_mb: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        transfer_timeout_s: Optional[float] = 3600,
        progress: bool = False,
    ) -> DownloadResult:
        """Download an asset's latest (or a given) version (:meth:`DataeraiClient.download`)."""
        params = _params.download(asset_id, dest_dir, content_id, chunk_size_mb)
        result = await self._run_transfer("asset.download", params, on_progress, transfer_timeout_s, progress)
        return DownloadResult.from_json(result)

    async def get_metadata(self, asset_id: str) -> AssetMetadata:
        """An asset's metadata."""
        return await self._request(_core.get_metadata(asset_id))

    async def set_metadata(self, asset_id: str, **fields: Any) -> AssetMetadata:
        """Change some of ``title``, ``description``, ``alias``, ``tags``, ``metadata``."""
        return await self._request(_core.set_metadata(asset_id, fields))

    async def create_relationship(
        self,
        from_asset_id: str,
        to_asset_id: str,
        rel_type: Optional[str] = None,
        *,
        relationship_type: Optional[str] = None,
        analysis_mode: Optional[str] = None,
        qualifier_note: Optional[str] = None,
        qualifier_time: Any = None,
        qualifiers: Optional[Mapping[str, Any]] = None,
    ) -> Relationship:
        """Record that ``from_asset_id`` depends on ``to_asset_id``
        (:meth:`DataeraiClient.create_relationship`)."""
        params = _params.relationship(
            from_asset_id,
            to_asset_id,
            rel_type,
            relationship_type,
            analysis_mode,
            qualifier_note,
            qualifier_time,
            qualifiers,
        )
        return await self._request(_core.create_relationship(params))

    async def upload_version(
        self,
        asset_id: str,
        local_path: PathLike,
        *,
        chunk_size_mb: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        transfer_timeout_s: Optional[float] = 3600,
        progress: bool = False,
    ) -> UploadResult:
        """Upload a new content version of an existing asset."""
        params = _params.upload_version(asset_id, local_path, chunk_size_mb)
        result = await self._run_transfer("asset.upload", params, on_progress, transfer_timeout_s, progress)
        return UploadResult.from_json(result)

    async def list_versions(
        self, asset_id: str, *, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> List[ContentVersion]:
        """An asset's complete content versions, newest first (one page)."""
        return await self._request(_core.list_versions(asset_id, limit, offset))

    async def iter_versions(self, asset_id: str) -> AsyncIterator[ContentVersion]:
        """Every complete content version of an asset, newest first (``async for``)."""
        async for version in self._pages(_core.versions(asset_id)):
            yield version

    async def upload_many(
        self,
        items: Iterable[Union[UploadItem, Mapping[str, Any]]],
        *,
        concurrency: int = 8,
        chunk_size_mb: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        transfer_timeout_s: Optional[float] = 3600,
        progress: bool = False,
    ) -> List[UploadManyResult]:
        """Upload many files as many assets, ``concurrency`` at a time
        (:meth:`DataeraiClient.upload_many`)."""
        plan = _core.upload_many_plan(
            items, concurrency, chunk_size_mb, on_progress, transfer_timeout_s, progress
        )
        if not plan.items:
            return []
        results: List[UploadManyResult] = []
        try:
            for batch in plan.batches(concurrency, self._watch_new_transfer):
                results.extend(await self._upload_batch(batch))
        finally:
            plan.close()
        return results

    async def list_transfers(self) -> List[Transfer]:
        """Transfers the daemon knows (this run's and its journal's)."""
        return await self._request(_core.list_transfers())

    async def get_transfer(self, transfer_id: str) -> Transfer:
        """A transfer's current state."""
        return await self._request(_core.transfer("get", transfer_id))

    async def cancel_transfer(self, transfer_id: str) -> Transfer:
        """Cancel a queued, running, retrying or paused transfer."""
        return await self._request(_core.transfer("cancel", transfer_id))

    async def pause_transfer(self, transfer_id: str) -> Transfer:
        """Pause a transfer (chunks in flight finish, no new ones start)."""
        return await self._request(_core.transfer("pause", transfer_id))

    async def resume_transfer(self, transfer_id: str) -> Transfer:
        """Continue a paused transfer, or a resumable failed one."""
        transfer = await self._request(_core.transfer("resume", transfer_id))
        self._book.forget_finished(transfer_id)
        return transfer

    async def wait_transfer(
        self,
        transfer_id: str,
        timeout_s: Optional[float] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> Union[UploadResult, DownloadResult]:
        """Wait until a transfer (started by any client) finishes; return its result
        (:meth:`DataeraiClient.wait_transfer`)."""
        _params.require_str(transfer_id, "transfer_id")
        timeout_s = _params.timeout(timeout_s, "timeout_s")
        watch = TransferWatch({"transfer_id": transfer_id}, on_progress, asyncio.Event())
        self._add_watch(watch)
        try:
            transfer = await self.get_transfer(transfer_id)
            _core.adopt_snapshot(watch, transfer)
            if transfer.finished:
                watch.finish_from_snapshot(transfer)
            result = await self._await_watch(watch, timeout_s)
        finally:
            self._remove_watch(watch)
        return _core.transfer_result(transfer.kind, result)

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

    async def _request(self, request: _core.Request[T]) -> T:
        return request.parse(await self._call(request.method, request.params))

    async def _pages(self, request: _core.Request[T]) -> AsyncIterator[T]:
        offset: Optional[int] = 0
        while offset is not None:
            answer = await self._call(request.method, _params.next_page(request.params, offset))
            items, offset = _params.page_items(answer, offset)
            for item in items:
                yield request.parse(item)

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

    async def _run_transfer(
        self,
        method: str,
        params: Dict[str, Any],
        on_progress: Optional[ProgressCallback],
        transfer_timeout_s: Optional[float],
        progress: bool,
    ) -> Dict[str, Any]:
        started = _core.StartedTransfer(self._watch_new_transfer, on_progress, progress, transfer_timeout_s)
        try:
            if started.bars is not None:
                started.info = await self._progress_info(method, params)
            # started.register runs in the reader task, before any notification about it is read.
            await self._call(method, params, on_result=started.register)
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
            for watch in batch.watches.values():
                self._remove_watch(watch)

    def _watch_new_transfer(
        self, start: Dict[str, Any], on_progress: Optional[ProgressCallback]
    ) -> TransferWatch:
        watch = TransferWatch(start, on_progress, asyncio.Event())
        self._add_watch(watch)
        return watch

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
