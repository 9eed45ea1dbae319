"""Unit tests of the SDK's socket layer against a scripted in-process peer.

These pin down client-side behaviour that the real daemon cannot be made to produce on demand
(responses out of order, a notification racing the start response, a peer that never answers,
garbage lines). Everything end to end is tested against the real binaries in the other files.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

from dataerai import DaemonError, DaemonTimeoutError, DataeraiClient, ProgressEvent
from dataerai.models import parse_datetime

Handler = Callable[["FakePeer", socket.socket, Dict[str, Any]], None]


class FakePeer:
    """A Unix-socket JSON-RPC peer whose answer to each method is a Python function."""

    def __init__(self, path: Path, handlers: Dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.conns: List[socket.socket] = []
        self.threads: List[threading.Thread] = []
        self.lock = threading.Lock()
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def send(self, conn: socket.socket, obj: Any) -> None:
        data = (obj if isinstance(obj, str) else json.dumps(obj)) + "\n"
        with self.lock:
            conn.sendall(data.encode())

    def reply(self, conn: socket.socket, req: Dict[str, Any], result: Any) -> None:
        self.send(conn, {"jsonrpc": "2.0", "id": req["id"], "result": result})

    def reply_upload_started(self, conn: socket.socket, req: Dict[str, Any]) -> None:
        """Answer ``asset.upload`` as the daemon does when it starts transfer ``t``."""
        start = {"transfer_id": "t", "kind": "upload", "asset_id": "a", "bytes_total": 1, "chunk_count": 1}
        self.reply(conn, req, start)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        with conn.makefile("rb") as lines:
            for line in lines:
                req = json.loads(line)
                handler = self.handlers.get(req["method"])
                if req["method"] == "daemon.ping" and handler is None:
                    self.reply(conn, req, {"version": "test", "pid": os.getpid()})
                elif handler is None:
                    self.send(
                        conn,
                        {
                            "jsonrpc": "2.0",
                            "id": req["id"],
                            "error": {"code": -32601, "message": "no", "data": {"code": "ERR_INVALID_INPUT"}},
                        },
                    )
                else:
                    threading.Thread(target=handler, args=(self, conn, req), daemon=True).start()

    def drop_clients(self) -> None:
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self.server.close()
        self.drop_clients()


@pytest.fixture
def sock_dir():
    with tempfile.TemporaryDirectory(prefix="dtr-unit-") as d:
        yield Path(d)


def make(sock_dir: Path, handlers: Dict[str, Handler], **kw: Any):
    peer = FakePeer(sock_dir / "d.sock", handlers)
    client = DataeraiClient(socket_path=sock_dir / "d.sock", auto_start=False, **kw)
    return peer, client


def test_out_of_order_responses_reach_the_right_threads(sock_dir):
    def echo(peer, conn, req):
        time.sleep(req["params"]["delay"])
        peer.reply(conn, req, {"n": req["params"]["n"]})

    peer, client = make(sock_dir, {"echo": echo})
    results: Dict[int, int] = {}

    def worker(n: int) -> None:
        # Later requests answer first: routing must use the id, not the order.
        results[n] = client._call("echo", {"n": n, "delay": 0.3 - n * 0.03})["n"]

    with client:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    peer.close()
    assert results == {n: n for n in range(8)}


def test_error_codes_timeouts_and_garbage_lines(sock_dir):
    def fail(peer, conn, req):
        peer.send(conn, "this is not json")
        peer.send(conn, {"jsonrpc": "2.0", "id": 99999, "result": {}})  # nobody waits for it
        peer.send(
            conn,
            {
                "jsonrpc": "2.0",
                "id": req["id"],
                "error": {"code": -32000, "message": "gone", "data": {"code": "ERR_NOT_FOUND"}},
            },
        )

    def never(peer, conn, req):
        pass

    peer, client = make(sock_dir, {"fail": fail, "never": never}, request_timeout_s=0.3)
    with client:
        with pytest.raises(DaemonError) as err:
            client._call("fail")
        assert err.value.code == "ERR_NOT_FOUND" and "gone" in str(err.value)
        start = time.monotonic()
        with pytest.raises(TimeoutError) as terr:
            client._call("never")
        assert isinstance(terr.value, DaemonTimeoutError) and terr.value.code == "ERR_TIMEOUT"
        assert time.monotonic() - start < 2
        assert client.ping()["version"] == "test"  # still usable
    peer.close()


def test_transfer_notifications_and_raising_callback(sock_dir):
    def upload(peer, conn, req):
        tid = "t-1"
        # Response and notifications written back to back, as the daemon may do.
        peer.reply(
            conn,
            req,
            {"transfer_id": tid, "kind": "upload", "asset_id": "a", "bytes_total": 30, "chunk_count": 3},
        )
        for i in range(3):
            peer.send(
                conn,
                {
                    "jsonrpc": "2.0",
                    "method": "transfer.progress",
                    "params": {
                        "transfer_id": tid,
                        "kind": "upload",
                        "bytes_done": 10 * (i + 1),
                        "bytes_total": 30,
                        "rate_bps": 1e6,
                        "chunk_index": i,
                        "chunk_count": 3,
                        "file_index": 0,
                        "file_name": "f",
                    },
                },
            )
        result = {
            "asset_id": "a",
            "content_id": "c",
            "transfer_id": tid,
            "total_bytes": 30,
            "chunk_count": 3,
            "files": [{"name": "f", "size": 30, "checksum": "blake3:00"}],
        }
        peer.send(
            conn,
            {
                "jsonrpc": "2.0",
                "method": "transfer.completed",
                "params": {"transfer_id": tid, "kind": "upload", "result": result},
            },
        )

    events: List[ProgressEvent] = []
    callback_threads = set()

    def on_progress(ev: ProgressEvent) -> None:
        events.append(ev)
        callback_threads.add(threading.current_thread().name)
        raise RuntimeError("callback bug")

    peer, client = make(sock_dir, {"asset.upload": upload})
    with client:
        res = client.upload(__file__, title="t", owner_type="user", owner_id="u", on_progress=on_progress)
        assert res.asset_id == "a" and res.content_id == "c" and res.checksum == "blake3:00"
        assert [e.bytes_done for e in events] == [10, 20, 30]
        assert events[-1].percent == 100.0 and events[0].rate_mbps == 1.0
        assert callback_threads == {"dataerai-callbacks"}
        assert client.ping()
    peer.close()


def test_peer_disappearing_raises_connection_error(sock_dir):
    def upload(peer, conn, req):
        peer.reply_upload_started(conn, req)
        time.sleep(0.2)
        peer.close()

    peer, client = make(sock_dir, {"asset.upload": upload})
    with client:
        with pytest.raises(ConnectionError):
            client.upload(__file__, title="t", owner_type="user", owner_id="u", transfer_timeout_s=10)


def test_client_side_validation(sock_dir):
    peer, client = make(sock_dir, {})
    with client:
        with pytest.raises(DaemonError) as err:
            client.create_relationship("a", "b", "derived_from", relationship_type="derived_from")
        assert err.value.code == "ERR_INVALID_INPUT"
        with pytest.raises(DaemonError) as err:
            client.create_relationship("a", "b")
        assert err.value.code == "ERR_INVALID_INPUT"
        with pytest.raises(DaemonError) as err:
            client.set_metadata("a", colour="red")
        assert err.value.code == "ERR_INVALID_INPUT" and "colour" in err.value.message
        with pytest.raises(DaemonError) as err:
            client.upload(__file__, title="t", owner_type="user", owner_id="u", metadata={"x": object()})
        assert err.value.code == "ERR_INVALID_INPUT"
    peer.close()


def test_parse_datetime_accepts_rfc3339_variants():
    assert parse_datetime(None) is None
    assert parse_datetime("2026-12-01T00:00:00Z").year == 2026
    assert parse_datetime("2026-12-01T00:00:00.123456789Z").microsecond == 123456
    assert parse_datetime("2026-12-01T02:00:00+02:00").hour == 0
    with pytest.raises(ValueError):
        parse_datetime("yesterday")


def test_close_wakes_a_waiting_transfer_and_leaves_no_threads(sock_dir):
    def upload(peer, conn, req):
        # Start a transfer that never finishes.
        peer.reply_upload_started(conn, req)

    before = sorted(t.name for t in threading.enumerate())
    peer, client = make(sock_dir, {"asset.upload": upload})
    client.connect()
    errors: List[BaseException] = []

    def wait() -> None:
        try:
            client.upload(__file__, title="t", owner_type="user", owner_id="u", transfer_timeout_s=30)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    start = time.monotonic()
    client.close()
    waiter.join(5)
    assert not waiter.is_alive() and time.monotonic() - start < 5
    assert len(errors) == 1 and isinstance(errors[0], ConnectionError)
    peer.close()
    assert sorted(t.name for t in threading.enumerate() if not t.name.startswith("Thread-")) == [
        n for n in before if not n.startswith("Thread-")
    ]


def test_pending_call_gets_connection_error_when_peer_vanishes(sock_dir):
    def never(peer, conn, req):
        time.sleep(0.2)
        peer.close()

    peer, client = make(sock_dir, {"never": never}, request_timeout_s=10)
    with client:
        start = time.monotonic()
        with pytest.raises(ConnectionError):
            client._call("never")
        assert time.monotonic() - start < 5
        assert not client.connected
