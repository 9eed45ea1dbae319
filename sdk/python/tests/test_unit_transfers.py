"""Unit tests of the client-side transfer logic (wait_transfer, upload_many) against a scripted
peer: orderings the real daemon produces only by chance (a final notification racing the
``transfer.get`` answer, a stale progress figure after a retry, several waiters on one id).
The same features are tested end to end against the real binaries in ``test_control.py``.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest
from test_unit_protocol import make

from dataerai import (
    DaemonError,
    DaemonTimeoutError,
    DownloadResult,
    ProgressEvent,
    Transfer,
    UploadItem,
    UploadResult,
)


@pytest.fixture
def sock_dir():
    with tempfile.TemporaryDirectory(prefix="dtr-unit-") as d:
        yield Path(d)


def note(method: str, **params: Any) -> Dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": params}


def progress(tid: str, done: int, total: int = 30) -> Dict[str, Any]:
    return note(
        "transfer.progress",
        transfer_id=tid,
        kind="upload",
        bytes_done=done,
        bytes_total=total,
        rate_bps=1.0,
        chunk_index=0,
        chunk_count=3,
        file_index=0,
        file_name="f",
    )


def transfer_json(tid: str, state: str, kind: str = "upload", **extra: Any) -> Dict[str, Any]:
    data = {
        "transfer_id": tid,
        "kind": kind,
        "state": state,
        "asset_id": "a",
        "content_id": None,
        "local_path": "/x",
        "bytes_done": 0,
        "bytes_total": 30,
        "chunk_count": 3,
        "file_count": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:01.5Z",
        "attempt": 0,
        "last_error": None,
        "result": None,
        "error": None,
    }
    data.update(extra)
    return data


UPLOAD_RESULT = {
    "asset_id": "a",
    "content_id": "c",
    "transfer_id": "t",
    "total_bytes": 30,
    "chunk_count": 3,
    "file_count": 1,
    "bytes_sent": 0,
    "files": [{"name": "f", "size": 30, "checksum": "blake3:00", "deduplicated": True}],
}


def test_transfer_model_fields_and_compat():
    t = Transfer.from_json(
        transfer_json(
            "t",
            "retrying",
            bytes_done=15,
            attempt=2,
            last_error={"code": "ERR_SERVER_UNREACHABLE", "message": "down"},
        )
    )
    assert t.percent == 50.0 and not t.finished and t.attempt == 2
    assert t.last_error is not None and t.last_error.code == "ERR_SERVER_UNREACHABLE"
    assert t.updated_at is not None and t.updated_at.microsecond == 500000
    assert t["state"] == "retrying"  # SDK 0.1 code indexed the dict
    empty = Transfer.from_json(transfer_json("e", "completed", bytes_total=0))
    assert empty.percent == 100.0 and empty.finished
    up = UploadResult.from_json(UPLOAD_RESULT)
    assert up.deduplicated and up.bytes_sent == 0 and up.file_count == 1
    assert not UploadResult.from_json({**UPLOAD_RESULT, "files": []}).deduplicated


def test_wait_for_finished_transfers_answers_from_the_journal(sock_dir):
    states = {
        "up": transfer_json("up", "completed", result=UPLOAD_RESULT),
        "down": transfer_json(
            "down",
            "completed",
            kind="download",
            result={
                "asset_id": "a",
                "content_id": "c",
                "total_bytes": 3,
                "files": [{"local_path": "/d/sub/x", "size": 3, "filename": "sub/x"}],
            },
        ),
        "gone": transfer_json("gone", "cancelled", error={"code": "ERR_CANCELLED", "message": "by bob"}),
        "bare": transfer_json("bare", "cancelled"),
    }

    def get(peer, conn, req):
        tid = req["params"]["transfer_id"]
        if tid in states:
            peer.reply(conn, req, states[tid])
        else:
            peer.send(
                conn,
                {
                    "jsonrpc": "2.0",
                    "id": req["id"],
                    "error": {
                        "code": -32000,
                        "message": "no such transfer",
                        "data": {"code": "ERR_NOT_FOUND"},
                    },
                },
            )

    peer, client = make(sock_dir, {"transfer.get": get})
    with client:
        up = client.wait_transfer("up", timeout_s=5)
        assert isinstance(up, UploadResult) and up.content_id == "c" and up.deduplicated
        down = client.wait_transfer("down", timeout_s=5)
        assert isinstance(down, DownloadResult) and down.transfer_id == "down"
        assert down.files[0].filename == "sub/x" and down.file_count == 1
        for tid in ("gone", "bare"):
            with pytest.raises(DaemonError) as err:
                client.wait_transfer(tid, timeout_s=5)
            assert err.value.code == "ERR_CANCELLED"
        with pytest.raises(DaemonError) as err:
            client.wait_transfer("nope", timeout_s=5)
        assert err.value.code == "ERR_NOT_FOUND"
        assert client._book.watches == {}, "finished waits must not leave watches behind"
    peer.close()


def test_two_waiters_follow_a_retrying_transfer(sock_dir):
    gets = threading.Semaphore(0)

    def get(peer, conn, req):
        peer.reply(conn, req, transfer_json("t", "running", bytes_done=10))
        gets.release()

    peer, client = make(sock_dir, {"transfer.get": get})
    seen: Dict[str, List[ProgressEvent]] = {"a": [], "b": []}
    results: Dict[str, Any] = {}

    def waiter(name: str) -> None:
        results[name] = client.wait_transfer("t", timeout_s=10, on_progress=seen[name].append)

    with client:
        threads = [threading.Thread(target=waiter, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        assert gets.acquire(timeout=5) and gets.acquire(timeout=5)
        conn = peer.conns[-1]  # the first one was the liveness probe
        peer.send(conn, progress("t", 20))
        peer.send(
            conn,
            note(
                "transfer.retrying",
                transfer_id="t",
                kind="upload",
                attempt=1,
                delay_s=0.1,
                error={"code": "ERR_SERVER_UNREACHABLE", "message": "connection refused"},
            ),
        )
        peer.send(conn, note("transfer.state", transfer_id="t", kind="upload", state="retrying", attempt=1))
        peer.send(conn, progress("t", 10))  # a stale figure after the retry: not delivered
        peer.send(conn, progress("t", 30))
        peer.send(conn, note("transfer.completed", transfer_id="t", kind="upload", result=UPLOAD_RESULT))
        for t in threads:
            t.join(10)
    peer.close()
    for name in ("a", "b"):
        assert isinstance(results[name], UploadResult) and results[name].content_id == "c"
        # The retry reaches on_progress too, as a "retrying" event repeating the last figure.
        assert [(e.bytes_done, e.state) for e in seen[name]] == [
            (20, "running"),
            (20, "retrying"),
            (30, "running"),
        ]
        retry = seen[name][1]
        assert retry.retry_attempt == 1 and retry.error is not None
        assert retry.error.code == "ERR_SERVER_UNREACHABLE"


def test_wait_timeout_names_the_transfer(sock_dir):
    def get(peer, conn, req):
        peer.reply(conn, req, transfer_json("slow", "paused"))

    peer, client = make(sock_dir, {"transfer.get": get})
    with client:
        start = time.monotonic()
        with pytest.raises(DaemonTimeoutError) as err:
            client.wait_transfer("slow", timeout_s=0.2)
        assert 0.2 <= time.monotonic() - start < 3
        assert err.value.transfer_id == "slow" and "wait_transfer" in str(err.value)
    peer.close()


def test_upload_many_reports_every_item_in_input_order(sock_dir, tmp_path):
    received: Dict[str, Any] = {}

    def upload_many(peer, conn, req):
        received.update(req["params"])
        items = [
            {"index": 0, "transfer_id": "t0", "asset_id": "a0", "error": None},
            {
                "index": 1,
                "transfer_id": None,
                "asset_id": None,
                "error": {"code": "ERR_INVALID_INPUT", "message": "no such file"},
            },
            {"index": 2, "transfer_id": "t2", "asset_id": "a2", "error": None},
            {"index": 3, "transfer_id": "t3", "asset_id": "a3", "error": None},
        ]
        peer.reply(conn, req, {"batch_id": "b", "items": items})
        # Out of order, and item 3 never finishes (it is still queued when the wait ends).
        peer.send(
            conn,
            note(
                "transfer.failed",
                transfer_id="t2",
                kind="upload",
                error={"code": "ERR_PERMISSION_DENIED", "message": "viewer"},
            ),
        )
        peer.send(
            conn,
            note(
                "transfer.completed",
                transfer_id="t0",
                kind="upload",
                result={**UPLOAD_RESULT, "asset_id": "a0"},
            ),
        )

    peer, client = make(sock_dir, {"asset.upload_many": upload_many})
    items: List[Any] = [
        {"local_path": "rel.bin", "title": "zero", "owner_type": "user", "owner_id": "u", "tags": ("x",)},
        UploadItem(local_path=tmp_path / "missing", title="one", owner_type="user", owner_id="u"),
        {"local_path": "/abs/two", "title": "two", "owner_type": "user", "owner_id": "u", "alias": None},
        {"local_path": "/abs/three", "title": "three", "owner_type": "user", "owner_id": "u"},
    ]
    with client:
        out = client.upload_many(items, concurrency=3, transfer_timeout_s=0.5)
        assert [r.index for r in out] == [0, 1, 2, 3]
        assert out[0].ok and out[0].result is not None and out[0].result.asset_id == "a0"
        assert out[1].error is not None and out[1].error.code == "ERR_INVALID_INPUT"
        assert out[1].local_path == tmp_path / "missing"
        assert out[2].error is not None and out[2].error.code == "ERR_PERMISSION_DENIED"
        assert isinstance(out[3].error, DaemonTimeoutError) and out[3].error.transfer_id == "t3"
        sent = received["items"]
        assert received["concurrency"] == 3 and "chunk_size_mb" not in received
        assert sent[0]["local_path"] == str(Path("rel.bin").resolve()) and sent[0]["tags"] == ["x"]
        assert "alias" not in sent[2]

        assert client.upload_many([]) == []
        for bad in ([42], [{"local_path": "/x", "titel": "typo"}]):
            with pytest.raises(DaemonError) as err:
                client.upload_many(bad)
            assert err.value.code == "ERR_INVALID_INPUT"
        assert client._book.watches == {}
    peer.close()


def test_upload_finished_in_the_reply_needs_no_notification(sock_dir, tmp_path):
    """A lone small file is done when the daemon answers: the reply's result is the call's
    result, with no ``transfer.completed`` awaited; with a callback the notification still
    brings the final progress event."""
    src = tmp_path / "small.bin"
    src.write_bytes(b"x" * 30)
    announce: List[bool] = []

    def upload(peer, conn, req):
        start = {
            "transfer_id": "t",
            "kind": "upload",
            "asset_id": "a",
            "content_id": "c",
            "bytes_total": 30,
            "chunk_count": 1,
            "file_count": 1,
            "state": "completed",
            "result": {**UPLOAD_RESULT, "chunk_count": 1},
        }
        peer.reply(conn, req, start)
        if announce:
            params = {"transfer_id": "t", "kind": "upload", "result": start["result"]}
            peer.send(conn, note("transfer.completed", **params))

    peer, client = make(sock_dir, {"asset.upload": upload})
    with client:
        # Without a notification the old way of waiting would time out.
        result = client.upload(src, title="s", owner_type="user", owner_id="u", transfer_timeout_s=5)
        assert isinstance(result, UploadResult)
        assert (result.transfer_id, result.content_id, result.chunk_count) == ("t", "c", 1)
        announce.append(True)
        events: List[ProgressEvent] = []
        with_callback = client.upload(
            src, title="s", owner_type="user", owner_id="u", on_progress=events.append, transfer_timeout_s=5
        )
        assert with_callback.content_id == "c"
        assert [e.bytes_done for e in events] == [30]
        assert client._book.watches == {}
    peer.close()
