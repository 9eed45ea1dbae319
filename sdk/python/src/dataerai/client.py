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
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Tuple,
    TypeVar,
    Union,
)

from . import _collections, _core, _methods, _params, _progress
from ._connection import RpcConnection
from ._daemon import SpawnedDaemon, find_binary, socket_answers
from ._params import METADATA_FIELDS, UPLOAD_ITEM_FIELDS
from ._transfers import ProgressCallback, TransferWatch, outcome, timeout_message
from .errors import DaemonError, DaemonTimeoutError, DaemonUnavailableError
from .models import (
    ContentVersion,
    UploadManyResult,
)

__all__ = ["METADATA_FIELDS", "UPLOAD_ITEM_FIELDS", "DataEraiClient", "DataeraiClient", "ProgressCallback"]

logger = logging.getLogger("dataerai")

T = TypeVar("T")
if TYPE_CHECKING:
    from typing import Concatenate, ParamSpec

    P = ParamSpec("P")

_SHUTDOWN_TIMEOUT_S = 5.0


def _blocking(spec: Callable[P, _core.Call[T]]) -> Callable[Concatenate[DataeraiClient, P], T]:
    """The :class:`DataeraiClient` method that carries out ``spec`` and returns its result."""

    def method(self: DataeraiClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._perform(spec(*args, **kwargs))

    return _methods.client_method(method, spec, owner="DataeraiClient", pages_as="Iterator")


def _paging(spec: Callable[P, _core.Pages[T]]) -> Callable[Concatenate[DataeraiClient, P], Iterator[T]]:
    """The :class:`DataeraiClient` method that iterates over the paged list ``spec`` names."""

    def method(self: DataeraiClient, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        yield from self._pages(spec(*args, **kwargs))

    return _methods.client_method(method, spec, owner="DataeraiClient", pages_as="Iterator")


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
        binary_path: The ``dataerai`` executable used to start a daemon. Default:
            ``$DATAERAI_BINARY``, else the binary installed with this package (the scripts
            directory of this interpreter's environment, then the user scheme's, then ``bin/``
            beside the package), else ``PATH``.
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

    _done_flag = threading.Event

    def _init_io(self) -> None:
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
        daemon: a daemon this client started is asked to stop, and declines while transfers are
        queued, running or retrying (e.g. after Ctrl-C during an upload) — it then stays up,
        finishes them, and the next client (a re-run of the script) connects to it.
        """
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
            daemon, self._daemon = self._daemon, None
            asked_to_stop = False
            if conn is not None and daemon is not None and conn.is_open:
                try:
                    reply = conn.call("daemon.shutdown", {}, timeout_s=_SHUTDOWN_TIMEOUT_S)
                    asked_to_stop = True
                    daemon = _core.daemon_left_to_stop(daemon, reply)
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
    # Signatures, docstrings and argument checks: dataerai._methods (one copy for both clients).

    ping = _blocking(_methods.ping)
    auth_status = _blocking(_methods.auth_status)
    create_project = _blocking(_methods.create_project)
    list_project_members = _blocking(_methods.list_project_members)
    iter_project_members = _paging(_methods.iter_project_members)
    add_project_member = _blocking(_methods.add_project_member)
    remove_project_member = _blocking(_methods.remove_project_member)
    list_projects = _blocking(_methods.list_projects)
    iter_projects = _paging(_methods.iter_projects)
    list_assets = _blocking(_methods.list_assets)
    iter_assets = _paging(_methods.iter_assets)
    search = _blocking(_methods.search)
    delete_asset = _blocking(_methods.delete_asset)
    delete_version = _blocking(_methods.delete_version)
    iter_search = _paging(_methods.iter_search)
    upload = _blocking(_methods.upload)
    download = _blocking(_methods.download)
    get_metadata = _blocking(_methods.get_metadata)
    set_metadata = _blocking(_methods.set_metadata)
    set_record_type = _blocking(_methods.set_record_type)
    find_assets = _blocking(_methods.find_assets)
    create_relationship = _blocking(_methods.create_relationship)
    list_relationships = _blocking(_methods.list_relationships)
    lineage = _blocking(_methods.lineage)
    export_provenance = _blocking(_methods.export_provenance)
    export_ro_crate = _blocking(_methods.export_ro_crate)
    upload_version = _blocking(_methods.upload_version)
    list_versions = _blocking(_methods.list_versions)
    iter_versions = _paging(_methods.iter_versions)
    upload_many = _blocking(_methods.upload_many)
    list_transfers = _blocking(_methods.list_transfers)
    get_transfer = _blocking(_methods.get_transfer)
    cancel_transfer = _blocking(_methods.cancel_transfer)
    pause_transfer = _blocking(_methods.pause_transfer)
    resume_transfer = _blocking(_methods.resume_transfer)
    wait_transfer = _blocking(_methods.wait_transfer)
    # The collection tree.
    create_collection = _blocking(_methods.create_collection)
    list_collections = _blocking(_methods.list_collections)
    iter_collections = _paging(_methods.iter_collections)
    rename_collection = _blocking(_methods.rename_collection)
    move_collection = _blocking(_methods.move_collection)
    delete_collection = _blocking(_methods.delete_collection)
    ensure_collection_path = _blocking(_methods.ensure_collection_path)
    move_asset = _blocking(_methods.move_asset)
    download_collection = _blocking(_methods.download_collection)

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

    def _perform(self, call: _core.Call[T]) -> T:
        """Carry out what a public method asked for (:mod:`dataerai._methods`); its result."""
        return call.finish(self._carry_out(call))

    def _carry_out(self, call: _core.Call[Any]) -> Any:
        """The I/O ``call``'s kind needs; what it produced, for ``call.finish``."""
        if isinstance(call, _core.Request):
            answer = self._call(call.method, call.params)
            if call.resumes is not None:
                with self._watch_lock:
                    self._book.forget_finished(call.resumes)
            return answer
        if isinstance(call, _core.AllPages):
            return list(self._pages(call.pages))
        if isinstance(call, _core.TransferRequest):
            return self._run_transfer(call)
        if isinstance(call, _core.UploadManyPlan):
            return self._upload_many(call)
        if isinstance(call, _core.WaitRequest):
            return self._wait(call)
        if isinstance(call, _collections.CollectionDownload):
            return self._download_collection(call)
        if isinstance(call, _core.CrateExportRequest):
            return self._export_crate(call)
        raise TypeError(f"not a daemon call: {call!r}")

    def _download_collection(self, call: _collections.CollectionDownload) -> Any:
        """The plan, then each asset's download in turn; a failed one is kept, not raised."""
        plan = self._call(call.method, call.plan_params)
        outcomes: List[Any] = []
        for item, download in call.downloads(plan):
            if download is None:
                outcomes.append((item, None))
                continue
            try:
                outcomes.append((item, self._run_transfer(download)))
            except DaemonError as exc:
                outcomes.append((item, exc))
        return plan, outcomes

    def _pages(self, pages: _core.Pages[T]) -> Iterator[T]:
        """Every item of a paged list method (``docs/ipc.md``: ``limit``/``offset``/``total``)."""
        position: Optional[Union[int, str]] = _params.first_page(pages.by_cursor)
        while position is not None:
            answer = self._call(pages.method, _params.next_page(pages.params, position, pages.by_cursor))
            items, position = _params.page_items(answer, position, pages.by_cursor)
            yield from map(pages.parse_item, items)

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

    def _run_transfer(self, call: _core.TransferRequest[Any]) -> Dict[str, Any]:
        started = _core.StartedTransfer(
            self._watch_new_transfer, call.on_progress, call.progress, call.transfer_timeout_s
        )
        try:
            if started.bars is not None:
                started.info = self._progress_info(call.method, call.params)
            # started.register runs on the reader thread, before any notification about it is read.
            self._call(call.method, call.params, on_result=started.register)
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

    def _upload_many(self, plan: _core.UploadManyPlan) -> List[UploadManyResult]:
        if not plan.items:
            return []
        results: List[UploadManyResult] = []
        try:
            for batch in plan.batches(self._watch_new_transfer):
                results.extend(self._upload_batch(batch))
        finally:
            plan.close()
        return results

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
            batch.unwatch(self._remove_watch)

    def _export_crate(
        self, call: _core.CrateExportRequest[Any]
    ) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        downloads = _core.CrateDownloads(call, self._watch_new_transfer)
        try:
            # downloads.register runs on the reader thread, before any notification about them.
            answer = self._call(call.method, call.params, on_result=downloads.register)
            results = [self._await_watch(w, downloads.remaining()) for w in downloads.watches]
            return answer, results
        finally:
            for watch in downloads.watches:
                self._remove_watch(watch)

    def _wait(self, call: _core.WaitRequest) -> Tuple[str, Dict[str, Any]]:
        """Follow a transfer any client started to its end: its kind and result."""
        # Register before asking for the state: a final notification sent in between is then
        # seen by the watch, and one sent before is reflected in the answer.
        watch = self._watch_new_transfer({"transfer_id": call.transfer_id}, call.on_progress)
        try:
            transfer = self.get_transfer(call.transfer_id)
            _core.adopt_snapshot(watch, transfer)
            if transfer.finished:
                # Through the dispatcher, so progress already queued is delivered first.
                self._dispatch(functools.partial(watch.finish_from_snapshot, transfer))
            return transfer.kind, self._await_watch(watch, call.timeout_s)
        finally:
            self._remove_watch(watch)

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
