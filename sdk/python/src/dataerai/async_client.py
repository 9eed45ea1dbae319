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

Arguments are checked, and results parsed, by the same code as the threaded client
(:mod:`dataerai._params`, :mod:`dataerai._transfers`), so both behave the same.
``on_progress`` callbacks run in the event loop: they must return quickly.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import os
import time
from pathlib import Path
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Union,
)

from . import _params, _progress
from ._connection import error_from_rpc
from ._daemon import SpawnedDaemon, default_socket_path, find_binary
from ._params import PathLike
from ._progress import ProgressBars, bars_for
from ._transfers import (
    ProgressCallback,
    TransferWatch,
    batch_entry_error,
    connection_lost,
    outcome,
    timeout_message,
)
from .errors import (
    ERR_INTERNAL,
    ERR_INVALID_INPUT,
    DaemonError,
    DaemonTimeoutError,
    DaemonUnavailableError,
    error_for_code,
)
from .models import (
    AssetMetadata,
    AuthStatus,
    ContentVersion,
    DownloadResult,
    ProgressEvent,
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

_MAX_INCOMING_LINE = 256 * 1024 * 1024
_CONNECT_TIMEOUT_S = 5.0
_SHUTDOWN_TIMEOUT_S = 5.0
_FINISHED_MEMORY = 1024

ResultHook = Callable[[Dict[str, Any]], None]
NotificationHandler = Callable[["AsyncRpcConnection", str, Dict[str, Any]], None]
DisconnectHandler = Callable[["AsyncRpcConnection", BaseException], None]


class AsyncRpcConnection:
    """A JSON-RPC connection to the daemon's socket on asyncio streams (one reader task)."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_notification: Optional[NotificationHandler],
        on_disconnect: Optional[DisconnectHandler],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._reader = reader
        self._writer = writer
        self._on_notification = on_notification
        self._on_disconnect = on_disconnect
        self._ids = itertools.count(1)
        self._pending: Dict[int, "asyncio.Future[Any]"] = {}
        self._hooks: Dict[int, ResultHook] = {}
        self._send_lock = asyncio.Lock()
        self._closed_error: Optional[BaseException] = None
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

    @property
    def is_open(self) -> bool:
        return self._closed_error is None

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
        if self._closed_error is not None:
            raise ConnectionError(f"not connected to the dataerai daemon: {self._closed_error}")
        request_id = next(self._ids)
        message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            line = json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise error_for_code(ERR_INVALID_INPUT, f"parameters of {method} are not JSON: {exc}") from None
        future: "asyncio.Future[Any]" = self.loop.create_future()
        self._pending[request_id] = future
        if on_result is not None:
            self._hooks[request_id] = on_result
        try:
            async with self._send_lock:
                self._writer.write(line.encode("utf-8"))
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
        if self._on_disconnect is not None:
            try:
                self._on_disconnect(self, reason)
            except Exception:  # noqa: BLE001 - a handler bug must not break shutdown
                logger.exception("dataerai: disconnect handler failed")

    async def _read_loop(self) -> None:
        reason: BaseException = ConnectionError("the dataerai daemon closed the connection")
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                if line.strip():
                    self._handle_line(line)
        except (asyncio.LimitOverrunError, ValueError):
            reason = ConnectionError("the dataerai daemon sent an oversized line")
        except OSError as exc:
            reason = ConnectionError(f"lost connection to the dataerai daemon: {exc}")
        except asyncio.CancelledError:
            reason = ConnectionError("the client closed the connection")
        except Exception as exc:  # noqa: BLE001 - never die silently with callers waiting
            logger.exception("dataerai: reader task failed")
            reason = ConnectionError(f"dataerai client reader failed: {exc}")
        self._shutdown(reason)

    def _handle_line(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            logger.warning("dataerai: ignoring a line from the daemon that is not JSON: %.200r", line)
            return
        if not isinstance(message, dict):
            return
        if message.get("id") is not None and "method" not in message:
            self._handle_response(message)
        elif "method" in message and self._on_notification is not None:
            params = message.get("params")
            try:
                self._on_notification(
                    self, str(message["method"]), params if isinstance(params, dict) else {}
                )
            except Exception:  # noqa: BLE001
                logger.exception("dataerai: notification handler failed")

    def _handle_response(self, message: Dict[str, Any]) -> None:
        request_id = message["id"]
        if not isinstance(request_id, int):
            return
        future = self._pending.pop(request_id, None)
        hook = self._hooks.pop(request_id, None)
        if future is None or future.done():
            return  # its caller timed out or was cancelled
        if message.get("error") is not None:
            future.set_exception(error_from_rpc(message["error"]))
            return
        result = message.get("result")
        result = result if result is not None else {}
        if hook is not None and isinstance(result, dict):
            try:
                hook(result)
            except Exception as exc:  # noqa: BLE001
                logger.exception("dataerai: result hook failed")
                future.set_exception(
                    DaemonError(ERR_INTERNAL, f"could not handle the daemon's answer: {exc}")
                )
                return
        future.set_result(result)


class AsyncDataeraiClient:
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
        self.socket_path: Path = (
            Path(os.fspath(socket_path)).expanduser() if socket_path is not None else default_socket_path()
        )
        self.binary_path: Optional[str] = os.fspath(binary_path) if binary_path is not None else None
        self.auto_start = auto_start
        self.start_timeout_s = start_timeout_s
        self.request_timeout_s = request_timeout_s
        self._conn: Optional[AsyncRpcConnection] = None
        self._daemon: Optional[SpawnedDaemon] = None
        self._closed = False
        self._connect_lock: Optional[asyncio.Lock] = None
        self._lock_loop: Optional[asyncio.AbstractEventLoop] = None
        self._watches: Dict[str, List[TransferWatch]] = {}
        self._finished: "collections.OrderedDict[str, tuple[str, Dict[str, Any]]]" = collections.OrderedDict()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AsyncDataeraiClient:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"AsyncDataeraiClient(socket_path={str(self.socket_path)!r}, {state})"

    @property
    def connected(self) -> bool:
        """Whether the client currently holds an open connection to the daemon."""
        conn = self._conn
        return conn is not None and conn.is_open

    @property
    def started_daemon(self) -> bool:
        """Whether this client started the daemon it talks to (and will stop it on close)."""
        return self._daemon is not None

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
                    raise DaemonUnavailableError(
                        f"no dataerai daemon answers on {self.socket_path} and auto_start is off; "
                        f"start one with `dataerai daemon --socket {self.socket_path}`"
                    )
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
            self._fail_watches(ConnectionError("the client was closed"))
            if daemon is not None:
                await _stop_daemon(daemon, 10.0 if asked_to_stop else 0.5)

    # ------------------------------------------------------------------ daemon methods

    async def ping(self) -> Dict[str, Any]:
        """Check the daemon answers; returns ``{"version", "pid", "socket_path"}``."""
        return dict(await self._call("daemon.ping"))

    async def auth_status(self) -> AuthStatus:
        """Who the daemon is signed in as (:meth:`DataeraiClient.auth_status`)."""
        return AuthStatus.from_json(await self._call("auth.status"))

    async def create_project(self, name: str, *, description: str = "") -> Project:
        """Create a project (:meth:`DataeraiClient.create_project`)."""
        params = {"name": _params.require_str(name, "name"), "description": description}
        return Project.from_json(await self._call("project.create", params))

    async def list_project_members(self, project_id: str) -> List[ProjectMember]:
        """Every member of a project with their role."""
        return [member async for member in self.iter_project_members(project_id)]

    async def iter_project_members(self, project_id: str) -> AsyncIterator[ProjectMember]:
        """Members of a project, fetched page by page as you iterate (``async for``)."""
        params = {"project_id": _params.require_str(project_id, "project_id")}
        async for item in self._pages("project.list_members", params):
            yield ProjectMember.from_json(item)

    async def add_project_member(self, project_id: str, email: str, role: str) -> ProjectMember:
        """Add a user (by email) to a project, or change a member's role."""
        params = {
            "project_id": _params.require_str(project_id, "project_id"),
            "email": _params.require_str(email, "email"),
            "role": _params.require_str(role, "role"),
        }
        return ProjectMember.from_json(await self._call("project.add_member", params))

    async def remove_project_member(self, project_id: str, email: str) -> None:
        """Remove a user from a project (the last owner cannot be removed)."""
        params = {
            "project_id": _params.require_str(project_id, "project_id"),
            "email": _params.require_str(email, "email"),
        }
        await self._call("project.remove_member", params)

    async def list_projects(
        self, *, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> List[Project]:
        """Projects you belong to (one page)."""
        page = await self._call("project.list", _params.page(limit, offset))
        return [Project.from_json(item) for item in page.get("items", [])]

    async def iter_projects(self) -> AsyncIterator[Project]:
        """Every project you belong to, fetched page by page as you iterate (``async for``)."""
        async for item in self._pages("project.list", {}):
            yield Project.from_json(item)

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
        params = _params.list_assets(owner_type, owner_id, collection_id, limit, offset)
        page = await self._call("asset.list", params)
        return [AssetMetadata.from_json(item) for item in page.get("items", [])]

    async def iter_assets(
        self,
        *,
        owner_type: Optional[str] = None,
        owner_id: Optional[str] = None,
        collection_id: Optional[str] = None,
    ) -> AsyncIterator[AssetMetadata]:
        """Every asset of an owner or collection, fetched page by page (``async for``)."""
        params = _params.list_assets(owner_type, owner_id, collection_id, None, None)
        async for item in self._pages("asset.list", params):
            yield AssetMetadata.from_json(item)

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
        params = {"asset_id": _params.require_str(asset_id, "asset_id")}
        return AssetMetadata.from_json(await self._call("asset.get_metadata", params))

    async def set_metadata(self, asset_id: str, **fields: Any) -> AssetMetadata:
        """Change some of ``title``, ``description``, ``alias``, ``tags``, ``metadata``."""
        params = _params.set_metadata(asset_id, fields)
        return AssetMetadata.from_json(await self._call("asset.set_metadata", params))

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
        return Relationship.from_json(await self._call("relationship.create", params))

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
        params = {"asset_id": _params.require_str(asset_id, "asset_id"), **_params.page(limit, offset)}
        page = await self._call("asset.list_versions", params)
        return [ContentVersion.from_json(item) for item in page.get("items", [])]

    async def iter_versions(self, asset_id: str) -> AsyncIterator[ContentVersion]:
        """Every complete content version of an asset, newest first (``async for``)."""
        params = {"asset_id": _params.require_str(asset_id, "asset_id")}
        async for item in self._pages("asset.list_versions", params):
            yield ContentVersion.from_json(item)

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
        batch = _params.upload_batch(items, concurrency)
        chunk_size_mb = _params.chunk_size(chunk_size_mb)
        transfer_timeout_s = _params.timeout(transfer_timeout_s, "transfer_timeout_s")
        bars = bars_for(progress, on_progress)
        if not batch:
            return []
        deadline = None if transfer_timeout_s is None else time.monotonic() + transfer_timeout_s
        results: List[UploadManyResult] = []
        try:
            for offset in range(0, len(batch), _params.MAX_BATCH_ITEMS):
                part = batch[offset : offset + _params.MAX_BATCH_ITEMS]
                results.extend(
                    await self._upload_batch(
                        part, offset, concurrency, chunk_size_mb, bars or on_progress, bars, deadline
                    )
                )
        finally:
            if bars is not None:
                bars.close()
        return results

    async def list_transfers(self) -> List[Transfer]:
        """Transfers the daemon knows (this run's and its journal's)."""
        page = await self._call("transfer.list")
        return [Transfer.from_json(item) for item in page.get("items", [])]

    async def get_transfer(self, transfer_id: str) -> Transfer:
        """A transfer's current state."""
        params = _params.transfer(transfer_id)
        return Transfer.from_json(await self._call("transfer.get", params))

    async def cancel_transfer(self, transfer_id: str) -> Transfer:
        """Cancel a queued, running, retrying or paused transfer."""
        params = _params.transfer(transfer_id)
        return Transfer.from_json(await self._call("transfer.cancel", params))

    async def pause_transfer(self, transfer_id: str) -> Transfer:
        """Pause a transfer (chunks in flight finish, no new ones start)."""
        params = _params.transfer(transfer_id)
        return Transfer.from_json(await self._call("transfer.pause", params))

    async def resume_transfer(self, transfer_id: str) -> Transfer:
        """Continue a paused transfer, or a resumable failed one."""
        params = _params.transfer(transfer_id)
        transfer = Transfer.from_json(await self._call("transfer.resume", params))
        self._finished.pop(transfer_id, None)  # a remembered failure is stale now
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
            watch.start.update(
                kind=transfer.kind,
                asset_id=transfer.asset_id,
                bytes_total=transfer.bytes_total,
                chunk_count=transfer.chunk_count,
            )
            if transfer.finished:
                watch.finish_from_snapshot(transfer)
            result = await self._await_watch(watch, timeout_s)
        finally:
            self._remove_watch(watch)
        if transfer.kind == "download":
            return DownloadResult.from_json(result)
        return UploadResult.from_json(result)

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
        if self._closed:
            raise DaemonUnavailableError("the client is closed; call connect() to reconnect")
        await self.connect()
        assert self._conn is not None
        return self._conn

    async def _call(self, method: str, params: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Any:
        conn = await self._connection()
        result = await conn.call(
            method, params if params is not None else {}, timeout_s=self.request_timeout_s, **kwargs
        )
        if not isinstance(result, dict):
            raise DaemonError(ERR_INTERNAL, f"unexpected answer to {method}: {result!r}")
        return result

    async def _pages(self, method: str, params: Dict[str, Any]) -> AsyncIterator[Any]:
        offset: Optional[int] = 0
        while offset is not None:
            answer = await self._call(method, {**params, "limit": _params.PAGE_SIZE, "offset": offset})
            items, offset = _params.page_items(answer, offset)
            for item in items:
                yield item

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

    def _reap_dead_daemon(self) -> None:
        if self._daemon is not None and self._daemon.exited_early() is not None:
            self._daemon.stop(timeout_s=1.0)  # already exited: returns at once
            self._daemon = None

    async def _run_transfer(
        self,
        method: str,
        params: Dict[str, Any],
        on_progress: Optional[ProgressCallback],
        transfer_timeout_s: Optional[float],
        progress: bool,
    ) -> Dict[str, Any]:
        transfer_timeout_s = _params.timeout(transfer_timeout_s, "transfer_timeout_s")
        bars = bars_for(progress, on_progress)
        info: Dict[str, Any] = {}
        if bars is not None:
            info = await self._progress_info(method, params)
        watches: List[TransferWatch] = []

        def register(start: Dict[str, Any]) -> None:
            # Runs in the reader task before any notification about this transfer is read.
            if bars is not None:
                bars.expect(str(start["transfer_id"]), _progress.started(info, start))
            watches.append(self._watch_new_transfer(dict(start), bars or on_progress))

        try:
            await self._call(method, params, on_result=register)
            watch = watches[0]
            try:
                return await self._await_watch(watch, transfer_timeout_s)
            finally:
                self._remove_watch(watch)
        finally:
            if bars is not None:
                bars.close()

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

    async def _upload_batch(
        self,
        items: List[Dict[str, Any]],
        offset: int,
        concurrency: int,
        chunk_size_mb: Optional[int],
        on_progress: Optional[ProgressCallback],
        bars: Optional[ProgressBars],
        deadline: Optional[float],
    ) -> List[UploadManyResult]:
        watches: Dict[int, TransferWatch] = {}
        entries: Dict[int, Dict[str, Any]] = {}
        infos = [_progress.upload_info(item) for item in items] if bars is not None else []

        def register(answer: Dict[str, Any]) -> None:
            for entry in answer.get("items") or []:
                if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
                    continue
                entries[entry["index"]] = entry
                if entry.get("transfer_id"):
                    start = {
                        "transfer_id": entry["transfer_id"],
                        "kind": "upload",
                        "asset_id": entry.get("asset_id"),
                    }
                    if bars is not None and 0 <= entry["index"] < len(infos):
                        bars.expect(str(entry["transfer_id"]), infos[entry["index"]])
                    watches[entry["index"]] = self._watch_new_transfer(start, on_progress)

        params = _params.drop_none(
            {"items": items, "concurrency": concurrency, "chunk_size_mb": chunk_size_mb}
        )
        try:
            await self._call("asset.upload_many", params, on_result=register)
            results: List[UploadManyResult] = []
            for index, item in enumerate(items):
                local_path = Path(item["local_path"]) if isinstance(item.get("local_path"), str) else None
                result: Optional[UploadResult] = None
                error: Optional[DaemonError] = None
                watch = watches.get(index)
                if watch is None:
                    error = batch_entry_error(entries.get(index))
                else:
                    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                    try:
                        result = UploadResult.from_json(await self._await_watch(watch, remaining))
                    except DaemonError as exc:
                        error = exc
                results.append(UploadManyResult(offset + index, local_path, result, error))
            return results
        finally:
            for watch in watches.values():
                self._remove_watch(watch)

    def _watch_new_transfer(
        self, start: Dict[str, Any], on_progress: Optional[ProgressCallback]
    ) -> TransferWatch:
        watch = TransferWatch(start, on_progress, asyncio.Event())
        self._add_watch(watch)
        finished = self._finished.get(watch.transfer_id)
        if finished is not None:
            watch.finish(*finished)
        return watch

    def _add_watch(self, watch: TransferWatch) -> None:
        self._watches.setdefault(watch.transfer_id, []).append(watch)

    def _remove_watch(self, watch: TransferWatch) -> None:
        watches = self._watches.get(watch.transfer_id)
        if watches is not None and watch in watches:
            watches.remove(watch)
            if not watches:
                del self._watches[watch.transfer_id]

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
        transfer_id = params.get("transfer_id")
        if not isinstance(transfer_id, str):
            return
        if method == "transfer.progress":
            watches = list(self._watches.get(transfer_id, ()))
            if watches:
                event = ProgressEvent.from_json(params)
                for watch in watches:
                    watch.progress(event)
        elif method in ("transfer.completed", "transfer.failed"):
            self._finished[transfer_id] = (method, params)
            while len(self._finished) > _FINISHED_MEMORY:
                self._finished.popitem(last=False)
            for watch in list(self._watches.get(transfer_id, ())):
                watch.finish(method, params)
        elif method == "transfer.retrying":
            error = params.get("error") or {}
            logger.info(
                "dataerai: transfer %s retrying (attempt %s) in %ss after %s: %s",
                transfer_id,
                params.get("attempt"),
                params.get("delay_s"),
                error.get("code"),
                error.get("message"),
            )

    def _on_disconnect(self, conn: AsyncRpcConnection, reason: BaseException) -> None:
        if conn is self._conn:
            self._fail_watches(reason)

    def _fail_watches(self, reason: BaseException) -> None:
        for group in list(self._watches.values()):
            for watch in group:
                if not watch.done.is_set():
                    watch.connection_error = connection_lost(watch.transfer_id, reason)
                    watch.done.set()


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
