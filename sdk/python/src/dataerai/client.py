"""The :class:`DataeraiClient`: a typed, thread-safe client for the local transfer daemon.

How it works, in one paragraph: the client keeps **one** Unix-socket connection to the daemon
(``docs/ipc.md``), with a reader thread that routes responses to the calling thread by request
id and a dispatcher thread that runs ``on_progress`` callbacks, so a slow or failing callback
never stalls the socket. Uploads and downloads are started with one request (the daemon answers
at once with a ``transfer_id``) and then followed through ``transfer.*`` notifications until
the transfer completes or fails. The daemon broadcasts those notifications to every client, and
its journal outlives it, so any client — even one connected to a daemon restarted after a
crash — can follow (:meth:`DataeraiClient.wait_transfer`) or control a transfer by its id.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from datetime import datetime
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, TypeVar, Union

from . import _core, _params, _progress
from ._connection import RpcConnection
from ._daemon import SpawnedDaemon, find_binary, socket_answers
from ._params import METADATA_FIELDS, UPLOAD_ITEM_FIELDS, PathLike
from ._transfers import ProgressCallback, TransferWatch, outcome, timeout_message
from .errors import DaemonError, DaemonTimeoutError, DaemonUnavailableError
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

__all__ = ["METADATA_FIELDS", "UPLOAD_ITEM_FIELDS", "DataEraiClient", "DataeraiClient", "ProgressCallback"]

logger = logging.getLogger("dataerai")

T = TypeVar("T")

_SHUTDOWN_TIMEOUT_S = 5.0


class DataeraiClient(_core.ClientCore[RpcConnection]):
    """Client for the local Dataerai transfer daemon.

    Use it as a context manager, or call :meth:`connect` and :meth:`close` yourself::

        from dataerai import DataeraiClient

        with DataeraiClient() as client:
            me = client.auth_status()
            project = client.create_project("Beamline 7 run 42")
            up = client.upload(
                "scan.h5", title="Scan 42", owner_type="project", owner_id=project.project_id,
                on_progress=lambda p: print(f"{p.percent:5.1f}%  {p.rate_mbps:.0f} MB/s"),
            )
            client.download(up.asset_id, "restored/")

    Args:
        socket_path: The daemon's socket. Default: ``$DATAERAI_SOCKET``, else
            ``$XDG_RUNTIME_DIR/dataerai-transfer.sock``, else
            ``/run/user/<uid>/dataerai-transfer.sock``, else
            ``~/.local/state/dataerai/run/dataerai-transfer.sock``.
        binary_path: The ``dataerai`` executable used to start a daemon; default: ``PATH``.
        auto_start: Start ``dataerai daemon`` when nothing answers on the socket. A daemon this
            client started is shut down by :meth:`close`; one that was already running is left
            alone.
        start_timeout_s: How long to wait for a started daemon to answer.
        request_timeout_s: Limit for each request (``None``: no limit). Transfers are limited
            separately by the ``transfer_timeout_s`` argument of :meth:`upload`/:meth:`download`.

    Thread safety: one client may be shared by many threads; requests are multiplexed over its
    single connection. Methods connect lazily, so :meth:`connect` is optional; after the daemon
    went away the next call reconnects (starting a daemon again if ``auto_start``). After
    :meth:`close`, calls raise :class:`~dataerai.DaemonUnavailableError` until
    :meth:`connect` is called again.
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

        self._lock = threading.RLock()  # guards connect/close, _conn, _daemon and _closed
        self._dispatch_queue: "queue.Queue[Optional[Callable[[], None]]]" = queue.Queue()
        self._dispatcher: Optional[threading.Thread] = None
        self._watch_lock = threading.Lock()  # guards _book

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> DataeraiClient:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def connect(self) -> DataeraiClient:
        """Connect to the daemon, starting one first if needed and allowed.

        Returns the client itself, so ``client = DataeraiClient().connect()`` works.

        Raises:
            DaemonUnavailableError: nothing answers and auto-start is off, the binary is
                missing, or the started daemon exited (the message has its log's last lines).
            DaemonTimeoutError: a started daemon did not answer within ``start_timeout_s``.
        """
        with self._lock:
            self._closed = False
            if self.connected:
                return self
            self._reap_dead_daemon()
            conn = self._try_connect()
            if conn is None:
                if not self.auto_start:
                    raise self._no_daemon_error()
                conn = self._start_daemon()
            self._conn = conn
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=self._dispatch_loop, name="dataerai-callbacks", daemon=True
                )
                self._dispatcher.start()
            return self

    def close(self) -> None:
        """Disconnect; stop the daemon only if this client started it. Idempotent.

        Stops the client's threads and closes its socket. Transfers keep running inside the
        daemon unless the daemon itself is stopped (i.e. this client started it).
        """
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            daemon, self._daemon = self._daemon, None
            asked_to_stop = False
            if conn is not None and daemon is not None and conn.is_open:
                try:
                    conn.call("daemon.shutdown", {}, timeout_s=_SHUTDOWN_TIMEOUT_S)
                    asked_to_stop = True
                except (DaemonError, ConnectionError) as exc:
                    logger.debug("dataerai: daemon.shutdown failed: %s", exc)
            if conn is not None:
                conn.close()
                self._fail_watches(ConnectionError("the client was closed"))
            if daemon is not None:
                # A daemon that accepted daemon.shutdown gets time to finish cleanly; one we
                # could not ask (connection lost) goes straight to SIGTERM.
                daemon.stop(timeout_s=10.0 if asked_to_stop else 0.5)
            dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            self._dispatch_queue.put(None)
            if dispatcher is not threading.current_thread():
                dispatcher.join(timeout=10.0)

    # ------------------------------------------------------------------ daemon methods

    def ping(self) -> Dict[str, Any]:
        """Check the daemon answers; returns ``{"version", "pid", "socket_path"}``."""
        return self._request(_core.ping())

    def auth_status(self) -> AuthStatus:
        """Who the daemon is signed in as.

        Example::

            status = client.auth_status()
            print(status.user_email, status.expires_at)

        Raises:
            DaemonError: ``ERR_AUTH_REQUIRED`` when not signed in (run ``dataerai auth login``).
        """
        return self._request(_core.auth_status())

    def create_project(self, name: str, *, description: str = "") -> Project:
        """Create a project (with its root collection, your owner membership and a quota).

        Needs a token with the ``write`` scope.

        Example::

            project = client.create_project("Tomography 2026", description="Beamtime 7")
            print(project.project_id, project.quota_bytes)
        """
        return self._request(_core.create_project(name, description))

    def list_project_members(self, project_id: str) -> List[ProjectMember]:
        """Members of a project with their roles (any member may list them).

        Example::

            for m in client.list_project_members(project.project_id):
                print(m.email, m.role)
        """
        return list(self.iter_project_members(project_id))

    def iter_project_members(self, project_id: str) -> Iterator[ProjectMember]:
        """Members of a project, fetched page by page as you iterate."""
        yield from self._pages(_core.project_members(project_id))

    def add_project_member(self, project_id: str, email: str, role: str) -> ProjectMember:
        """Add a user (by email) to a project, or change an existing member's role.

        ``role`` is ``owner``, ``admin``, ``member`` (read and write) or ``viewer`` (read only).
        Needs the ``owner`` or ``admin`` role; only owners grant or take away ``owner``.

        Example::

            client.add_project_member(project.project_id, "grace@lab.example", "viewer")
        """
        return self._request(_core.add_project_member(project_id, email, role))

    def remove_project_member(self, project_id: str, email: str) -> None:
        """Remove a user from a project (the last owner cannot be removed)."""
        self._request(_core.remove_project_member(project_id, email))

    def list_projects(self, *, limit: Optional[int] = None, offset: Optional[int] = None) -> List[Project]:
        """Projects you belong to (one page: ``limit`` defaults to the server's, 100)."""
        return self._request(_core.list_projects(limit, offset))

    def iter_projects(self) -> Iterator[Project]:
        """Every project you belong to, fetched page by page as you iterate.

        Example::

            for project in client.iter_projects():
                print(project.name, project.used_bytes)
        """
        yield from self._pages(_core.projects())

    def list_assets(
        self,
        *,
        owner_type: Optional[str] = None,
        owner_id: Optional[str] = None,
        collection_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> List[AssetMetadata]:
        """Assets of an owner (default: your personal assets) or of a collection (one page)."""
        return self._request(_core.list_assets(owner_type, owner_id, collection_id, limit, offset))

    def iter_assets(
        self,
        *,
        owner_type: Optional[str] = None,
        owner_id: Optional[str] = None,
        collection_id: Optional[str] = None,
    ) -> Iterator[AssetMetadata]:
        """Every asset of an owner (default: your personal assets) or of a collection, fetched
        page by page as you iterate (the filters of :meth:`list_assets`).

        Example::

            for asset in client.iter_assets(owner_type="project", owner_id=project.project_id):
                print(asset.title, asset.total_bytes)
        """
        yield from self._pages(_core.assets(owner_type, owner_id, collection_id))

    def upload(
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
        """Upload a file or a directory as a new asset and block until the server verified it.

        The daemon does the work (parallel chunks, BLAKE3 checks, retries with backoff while
        the server is unreachable, resume after a crash); this call follows it. A file the
        server already holds for the same owner (same size and BLAKE3) is not sent again
        (``result.deduplicated``, ``result.bytes_sent == 0``).

        Args:
            local_path: The file or directory to upload (relative paths are resolved here, not
                in the daemon). A directory becomes **one** asset holding every regular file
                below it, named by its ``/``-separated relative path (``result.files``). A
                symlink pointing out of the directory, or an empty directory, is refused with
                ``ERR_INVALID_INPUT`` before anything is sent.
            title: Asset title (required, non-empty).
            owner_type: ``"user"`` for a personal asset or ``"project"``.
            owner_id: Your user id (``auth_status().user_id``) or a project id.
            description, alias, tags, metadata: Descriptive metadata; ``metadata`` is a dict.
            collection_id: Collection of a project-owned asset (default: the project's root).
            chunk_size_mb: Chunk size in MiB, a power of two from 1 to 512 (default 64).
            on_progress: Called with a :class:`~dataerai.ProgressEvent` after each chunk, on a
                background thread; the last call has ``bytes_done == bytes_total``. Exceptions
                it raises are logged and ignored.
            transfer_timeout_s: How long to wait for completion (``None``: forever). On expiry
                :class:`~dataerai.DaemonTimeoutError` is raised **but the transfer continues in
                the daemon**; the error's ``transfer_id`` identifies it (follow it again with
                :meth:`wait_transfer`, stop it with :meth:`cancel_transfer`). We chose not to
                cancel so that a long upload is never thrown away because a script's patience
                ran out.
            progress: Show a ``tqdm.auto`` progress bar per file (a widget in Jupyter, text in
                a terminal) with rate and ETA; ``on_progress`` is still called. Needs tqdm
                (``pip install 'dataerai-sdk[notebook]'``), else :class:`ImportError`.

        Example::

            result = client.upload("spectrum.csv", title="Raman spectrum", owner_type="user",
                                   owner_id=client.auth_status().user_id,
                                   metadata={"laser_nm": 532})
            print(result.asset_id, result.total_bytes)

            run = client.upload("run_042/", title="Run 42", owner_type="project",
                                owner_id=project.project_id)
            print(run.file_count, [f.name for f in run.files])   # "raw/frame_001.tif", …

        Raises:
            DaemonError: e.g. ``ERR_INVALID_INPUT`` (missing file, bad owner type, metadata not
                a dict, …), ``ERR_PERMISSION_DENIED``, ``ERR_QUOTA_EXCEEDED``,
                ``ERR_AUTH_REQUIRED``, ``ERR_SERVER_UNREACHABLE``.
            DaemonTimeoutError: not finished within ``transfer_timeout_s``.
            ConnectionError: the daemon went away.
        """
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
        result = self._run_transfer("asset.upload", params, on_progress, transfer_timeout_s, progress)
        return UploadResult.from_json(result)

    def download(
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
        """Download an asset's latest (or a given) content version into ``dest_dir``.

        Blocks until every file is written and verified. Files appear under their final name
        only once their BLAKE3 checksum matches; ``dest_dir`` is created if missing. A
        multi-file version (a directory upload) is restored as the same tree below
        ``dest_dir``; each :class:`~dataerai.DownloadedFile` has its relative ``filename``.
        ``content_id`` selects an older version (see :meth:`list_versions`).
        ``on_progress``, ``transfer_timeout_s`` and ``progress`` behave as in :meth:`upload`.

        Example::

            result = client.download(asset_id, "data/")
            for f in result.files:
                print(f.filename, f.local_path, f.size, f.checksum)

        Raises:
            DaemonError: ``ERR_NOT_FOUND``, ``ERR_PERMISSION_DENIED``, ``ERR_INTEGRITY`` (the
                bytes did not match their checksum; nothing is left under the final name),
                ``ERR_NO_SPACE`` (resumable with :meth:`resume_transfer` once space is freed),
                ``ERR_INVALID_INPUT`` (a stored name would escape ``dest_dir``).
        """
        params = _params.download(asset_id, dest_dir, content_id, chunk_size_mb)
        result = self._run_transfer("asset.download", params, on_progress, transfer_timeout_s, progress)
        return DownloadResult.from_json(result)

    def get_metadata(self, asset_id: str) -> AssetMetadata:
        """An asset's metadata (title, tags, metadata dict, owner, latest content, …)."""
        return self._request(_core.get_metadata(asset_id))

    def set_metadata(self, asset_id: str, **fields: Any) -> AssetMetadata:
        """Change some of ``title``, ``description``, ``alias``, ``tags``, ``metadata``.

        ``metadata`` is merged key by key into the stored dict (a ``None`` value deletes a
        key); ``tags`` replaces the list. Returns the updated metadata.

        Example::

            client.set_metadata(asset_id, tags=["raw", "tomo"], metadata={"energy_keV": 25})

        Raises:
            DaemonError: ``ERR_INVALID_INPUT`` for an unknown field name (checked here).
        """
        return self._request(_core.set_metadata(asset_id, fields))

    def create_relationship(
        self,
        from_asset_id: str,
        to_asset_id: str,
        rel_type: Optional[str] = None,
        *,
        relationship_type: Optional[str] = None,
        analysis_mode: Optional[str] = None,
        qualifier_note: Optional[str] = None,
        qualifier_time: Optional[Union[datetime, str]] = None,
        qualifiers: Optional[Mapping[str, Any]] = None,
    ) -> Relationship:
        """Record that ``from_asset_id`` depends on ``to_asset_id`` (provenance).

        Give the type either positionally (``rel_type``) or as ``relationship_type=`` — exactly
        one of them. Needs write access to the source asset and read access to the target.

        Args:
            rel_type / relationship_type: e.g. ``"derived_from"``, ``"analysis_of"`` (≤255 chars).
            analysis_mode: One of ``non_destructive, altering, destructive, in_situ, ex_situ,
                invasive, non_invasive``.
            qualifier_note: Free text, stored as ``qualifiers["note"]``.
            qualifier_time: A ``datetime`` (naive means local time) or ISO-8601 string, stored
                as ``qualifiers["time"]``.
            qualifiers: Any JSON object.

        Example::

            rel = client.create_relationship(fit.asset_id, raw.asset_id,
                                             relationship_type="derived_from",
                                             analysis_mode="non_destructive")
            print(rel.related_asset["title"])

        Raises:
            DaemonError: ``ERR_RELATIONSHIP_EXISTS`` for a duplicate edge,
                ``ERR_PERMISSION_DENIED``, ``ERR_NOT_FOUND``, ``ERR_INVALID_INPUT``.
        """
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
        return self._request(_core.create_relationship(params))

    def upload_version(
        self,
        asset_id: str,
        local_path: PathLike,
        *,
        chunk_size_mb: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        transfer_timeout_s: Optional[float] = 3600,
        progress: bool = False,
    ) -> UploadResult:
        """Upload a file or directory as a **new content version** of an existing asset.

        The asset keeps its id, metadata and relationships; downloads without ``content_id``
        get the new version once it is verified, older ones stay reachable by ``content_id``.
        Needs write access to the asset. Change metadata with :meth:`set_metadata`.
        ``on_progress``, ``transfer_timeout_s`` and ``progress`` behave as in :meth:`upload`.

        Example::

            v2 = client.upload_version(asset_id, "scan_0042_recalibrated.h5")
            versions = client.list_versions(asset_id)        # newest first
            client.download(asset_id, "old/", content_id=versions[-1].content_id)

        Raises:
            DaemonError: ``ERR_NOT_FOUND``, ``ERR_PERMISSION_DENIED``, ``ERR_QUOTA_EXCEEDED``,
                ``ERR_INVALID_INPUT``, …
        """
        params = _params.upload_version(asset_id, local_path, chunk_size_mb)
        result = self._run_transfer("asset.upload", params, on_progress, transfer_timeout_s, progress)
        return UploadResult.from_json(result)

    def list_versions(
        self, asset_id: str, *, limit: Optional[int] = None, offset: Optional[int] = None
    ) -> List[ContentVersion]:
        """An asset's complete content versions, newest first (one page).

        Example::

            for v in client.list_versions(asset_id):
                print(v.content_id, v.total_bytes, v.completed_at, [f.name for f in v.files])
        """
        return self._request(_core.list_versions(asset_id, limit, offset))

    def iter_versions(self, asset_id: str) -> Iterator[ContentVersion]:
        """Every complete content version of an asset, newest first, fetched page by page."""
        yield from self._pages(_core.versions(asset_id))

    def upload_many(
        self,
        items: Iterable[Union[UploadItem, Mapping[str, Any]]],
        *,
        concurrency: int = 8,
        chunk_size_mb: Optional[int] = None,
        on_progress: Optional[ProgressCallback] = None,
        transfer_timeout_s: Optional[float] = 3600,
        progress: bool = False,
    ) -> List[UploadManyResult]:
        """Upload many files (or directories) as many assets, ``concurrency`` at a time.

        One request hands the whole batch to the daemon, which runs at most ``concurrency``
        uploads at once (1–64) — much faster than calling :meth:`upload` in a loop for small
        files. A failing item (missing file, no permission, …) does not stop the others: every
        item gets an :class:`~dataerai.UploadManyResult` in input order with either ``result``
        or ``error``.

        Args:
            items: :class:`~dataerai.UploadItem` objects or dicts with the keyword arguments
                of :meth:`upload`: ``local_path``, ``title``, ``owner_type``, ``owner_id`` and
                optionally ``description``, ``alias``, ``tags``, ``metadata``,
                ``collection_id`` (or ``asset_id`` instead of title/owner for a new version).
            on_progress: Receives the progress of every item (tell them apart by
                ``event.transfer_id``).
            transfer_timeout_s: Limit for the **whole** batch (``None``: forever). Items still
                running then get a :class:`~dataerai.DaemonTimeoutError` as their ``error``;
                their transfers continue in the daemon (``error.transfer_id``).
            progress: One ``tqdm.auto`` bar per item, as in :meth:`upload`.

        Example::

            items = [{"local_path": p, "title": p.name, "owner_type": "project",
                      "owner_id": project.project_id} for p in Path("frames").glob("*.tif")]
            for item in client.upload_many(items, concurrency=16):
                if item.error:
                    print(item.local_path, item.error.code, item.error.message)

        Raises:
            DaemonError: ``ERR_INVALID_INPUT`` when an item is not a dict/``UploadItem`` or has
                an unknown key (nothing is started then).
            ConnectionError: the daemon went away.
        """
        plan = _core.upload_many_plan(
            items, concurrency, chunk_size_mb, on_progress, transfer_timeout_s, progress
        )
        if not plan.items:
            return []
        results: List[UploadManyResult] = []
        try:
            for batch in plan.batches(concurrency, self._watch_new_transfer):
                results.extend(self._upload_batch(batch))
        finally:
            plan.close()
        return results

    def list_transfers(self) -> List[Transfer]:
        """Transfers the daemon knows: this run's and those in its journal from earlier runs.

        Example::

            for t in client.list_transfers():
                print(t.transfer_id, t.kind, t.state, f"{t.percent:.0f}%")
        """
        return self._request(_core.list_transfers())

    def get_transfer(self, transfer_id: str) -> Transfer:
        """A transfer's current state (``state``, ``bytes_done``, ``attempt``, ``error``, …).

        Raises:
            DaemonError: ``ERR_NOT_FOUND`` for an unknown id.
        """
        return self._request(_core.transfer("get", transfer_id))

    def cancel_transfer(self, transfer_id: str) -> Transfer:
        """Cancel a queued, running, retrying or paused transfer.

        Returns the transfer as the daemon saw it when it took the request (a running one turns
        ``cancelled`` a moment later). Nothing partial is published; waiters get
        ``DaemonError`` with ``ERR_CANCELLED``. Any client of the daemon may cancel any of its
        transfers; cancelling a finished transfer changes nothing.
        """
        return self._request(_core.transfer("cancel", transfer_id))

    def pause_transfer(self, transfer_id: str) -> Transfer:
        """Pause a transfer: chunks in flight finish, no new ones start (state ``paused``).

        Returns the transfer as the daemon saw it when it took the request: its state may still
        read ``running`` until the chunks in flight have finished, then turns ``paused`` (see
        :meth:`get_transfer`). A paused transfer stays paused across daemon restarts until
        :meth:`resume_transfer`. Waiters keep waiting.

        Raises:
            DaemonError: ``ERR_INVALID_INPUT`` for a finished transfer, ``ERR_NOT_FOUND``.
        """
        return self._request(_core.transfer("pause", transfer_id))

    def resume_transfer(self, transfer_id: str) -> Transfer:
        """Continue a paused transfer, or a failed one whose error was ``ERR_NO_SPACE``,
        ``ERR_SERVER_UNREACHABLE`` or ``ERR_INTEGRITY``, from where it stopped.

        Example::

            try:
                client.download(asset_id, "/scratch/data")
            except DaemonError as err:
                if err.code != "ERR_NO_SPACE":
                    raise
                ...  # free some space
                t = client.list_transfers()[-1]
                client.resume_transfer(t.transfer_id)
                client.wait_transfer(t.transfer_id)
        """
        transfer = self._request(_core.transfer("resume", transfer_id))
        with self._watch_lock:
            self._book.forget_finished(transfer_id)
        return transfer

    def wait_transfer(
        self,
        transfer_id: str,
        timeout_s: Optional[float] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> Union[UploadResult, DownloadResult]:
        """Block until a transfer — started by any client, or resumed by a restarted daemon —
        finishes, and return its result.

        Waits through ``retrying`` and ``paused`` states. Several clients (or threads) may wait
        for the same transfer at once.

        Args:
            transfer_id: e.g. ``err.transfer_id`` of a :class:`~dataerai.DaemonTimeoutError`.
            timeout_s: How long to wait (``None``: forever). On expiry
                :class:`~dataerai.DaemonTimeoutError` is raised and the transfer continues.
            on_progress: As in :meth:`upload`, from now on.

        Returns:
            :class:`~dataerai.UploadResult` for an upload, :class:`~dataerai.DownloadResult`
            for a download.

        Example::

            try:
                up = client.upload(path, title="big", owner_type="user", owner_id=uid,
                                   transfer_timeout_s=60)
            except DaemonTimeoutError as err:
                up = client.wait_transfer(err.transfer_id)   # or client.cancel_transfer(…)

        Raises:
            DaemonError: the transfer failed (its ``ERR_*`` code) or was cancelled
                (``ERR_CANCELLED``); ``ERR_NOT_FOUND`` for an unknown id.
            DaemonTimeoutError: not finished within ``timeout_s``.
            ConnectionError: the daemon went away.
        """
        _params.require_str(transfer_id, "transfer_id")
        timeout_s = _params.timeout(timeout_s, "timeout_s")
        watch = TransferWatch({"transfer_id": transfer_id}, on_progress, threading.Event())
        # Register before asking for the state: a final notification sent in between is then
        # seen by the watch, and one sent before is reflected in the answer.
        self._add_watch(watch)
        try:
            transfer = self.get_transfer(transfer_id)
            _core.adopt_snapshot(watch, transfer)
            if transfer.finished:
                # Through the dispatcher, so progress already queued is delivered first.
                self._dispatch(functools.partial(watch.finish_from_snapshot, transfer))
            result = self._await_watch(watch, timeout_s)
        finally:
            self._remove_watch(watch)
        return _core.transfer_result(transfer.kind, result)

    # ------------------------------------------------------------------ internals

    def _connection(self) -> RpcConnection:
        conn = self._conn
        if conn is not None and conn.is_open:
            return conn
        with self._lock:
            self._check_not_closed()
            self.connect()
            assert self._conn is not None
            return self._conn

    def _call(self, method: str, params: Optional[Dict[str, Any]] = None, **kwargs: Any) -> Any:
        result = self._connection().call(
            method, params if params is not None else {}, timeout_s=self.request_timeout_s, **kwargs
        )
        return _core.checked_answer(method, result)

    def _request(self, request: _core.Request[T]) -> T:
        return request.parse(self._call(request.method, request.params))

    def _pages(self, request: _core.Request[T]) -> Iterator[T]:
        """Every item of a paged list method (``docs/ipc.md``: ``limit``/``offset``/``total``)."""
        offset: Optional[int] = 0
        while offset is not None:
            answer = self._call(request.method, _params.next_page(request.params, offset))
            items, offset = _params.page_items(answer, offset)
            yield from map(request.parse, items)

    def _try_connect(self) -> Optional[RpcConnection]:
        """Connect to a daemon already listening on the socket, or return ``None``."""
        if not socket_answers(self.socket_path):
            return None
        try:
            conn = RpcConnection(
                str(self.socket_path),
                on_notification=self._on_notification,
                on_disconnect=self._on_disconnect,
            )
        except OSError:
            return None
        try:
            conn.call("daemon.ping", {}, timeout_s=max(self.start_timeout_s, 1.0))
        except ConnectionError:
            # A daemon that is just dying (e.g. killed) can still accept, then reset.
            conn.close()
            return None
        except BaseException:
            conn.close()
            raise
        return conn

    def _start_daemon(self) -> RpcConnection:
        binary = find_binary(self.binary_path)
        daemon = SpawnedDaemon(binary, self.socket_path)
        connection: List[RpcConnection] = []

        def probe() -> bool:
            try:
                conn = self._try_connect()
            except (OSError, DaemonError):
                return False
            if conn is not None:
                connection.append(conn)
            return conn is not None

        try:
            daemon.wait_until_ready(self.start_timeout_s, probe)
        except DaemonUnavailableError:
            # Another client may have won a start race (the loser exits with code 2).
            if daemon.exited_early() is not None and probe():
                return connection[0]
            raise
        self._daemon = daemon
        return connection[0]

    def _run_transfer(
        self,
        method: str,
        params: Dict[str, Any],
        on_progress: Optional[ProgressCallback],
        transfer_timeout_s: Optional[float],
        progress: bool = False,
    ) -> Dict[str, Any]:
        started = _core.StartedTransfer(self._watch_new_transfer, on_progress, progress, transfer_timeout_s)
        try:
            if started.bars is not None:
                started.info = self._progress_info(method, params)
            # started.register runs on the reader thread, before any notification about it is read.
            self._call(method, params, on_result=started.register)
            watch = started.watch
            assert watch is not None
            try:
                return self._await_watch(watch, started.timeout_s)
            finally:
                self._remove_watch(watch)
        finally:
            started.close()

    def _progress_info(self, method: str, params: Mapping[str, Any]) -> Dict[str, Any]:
        if method != "asset.download":
            return _progress.upload_info(params)
        version: Optional[ContentVersion] = None
        try:
            version = _core.download_version(self.iter_versions(str(params["asset_id"])), params)
        except DaemonError:
            pass  # the download itself reports what is wrong
        return _progress.download_info(params, version)

    def _upload_batch(self, batch: _core.UploadBatch) -> List[UploadManyResult]:
        try:
            # batch.register runs on the reader thread, before any notification about these is read.
            self._call("asset.upload_many", batch.params, on_result=batch.register)
            for index, watch in batch.started():
                try:
                    batch.settle(index, self._await_watch(watch, batch.plan.remaining()))
                except DaemonError as exc:  # includes DaemonTimeoutError: reported per item
                    batch.settle(index, error=exc)
            return batch.results()
        finally:
            for watch in batch.watches.values():
                self._remove_watch(watch)

    def _watch_new_transfer(
        self, start: Dict[str, Any], on_progress: Optional[ProgressCallback]
    ) -> TransferWatch:
        """Follow a transfer this client just started (called on the reader thread)."""
        watch = TransferWatch(start, on_progress, threading.Event())
        self._add_watch(watch)
        return watch

    def _add_watch(self, watch: TransferWatch) -> None:
        with self._watch_lock:
            tasks = self._book.add(watch)
        for task in tasks:
            self._dispatch(task)

    def _remove_watch(self, watch: TransferWatch) -> None:
        with self._watch_lock:
            self._book.remove(watch)

    def _await_watch(self, watch: TransferWatch, timeout_s: Optional[float]) -> Dict[str, Any]:
        """Wait for a watched transfer's end; return its result or raise its error."""
        done = watch.done
        assert isinstance(done, threading.Event)
        if not done.wait(timeout_s):
            raise DaemonTimeoutError(
                timeout_message(watch.transfer_id, timeout_s), transfer_id=watch.transfer_id
            )
        return outcome(watch)

    def _dispatch(self, task: Callable[[], None]) -> None:
        self._dispatch_queue.put(task)

    def _dispatch_loop(self) -> None:
        while True:
            task = self._dispatch_queue.get()
            if task is None:
                return
            try:
                task()
            except Exception:  # noqa: BLE001 - keep dispatching whatever happens
                logger.exception("dataerai: callback dispatch failed")

    def _on_notification(self, conn: RpcConnection, method: str, params: Dict[str, Any]) -> None:
        # Runs on the reader thread: only bookkeeping here, user code goes to the dispatcher.
        if conn is not self._conn:
            return  # a probe connection, or one being replaced: its events are not ours
        with self._watch_lock:
            tasks = self._book.notification(method, params)
        for task in tasks:
            self._dispatch(task)

    def _on_disconnect(self, conn: RpcConnection, reason: BaseException) -> None:
        if conn is not self._conn:
            return  # a probe connection closing says nothing about our transfers
        self._fail_watches(reason)

    def _fail_watches(self, reason: BaseException) -> None:
        with self._watch_lock:
            self._book.fail_all(reason)


#: The same class under the spelling some existing code uses (``from dataerai import DataEraiClient``).
DataEraiClient = DataeraiClient
