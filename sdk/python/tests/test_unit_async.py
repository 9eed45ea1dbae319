"""Unit tests of the asyncio client's socket layer against the scripted peer of
test_unit_protocol: out-of-order answers, a notification racing the start response, time-outs,
a vanishing peer."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import List

import pytest
from test_unit_protocol import FakePeer

from dataerai import AsyncDataeraiClient, DaemonTimeoutError, NotFoundError, ProgressEvent


@pytest.fixture
def sock_dir():
    with tempfile.TemporaryDirectory(prefix="dtr-unit-") as d:
        yield Path(d)


def test_async_out_of_order_answers_errors_and_timeouts(sock_dir: Path):
    def echo(peer, conn, req):
        time.sleep(req["params"]["delay"])
        peer.reply(conn, req, {"n": req["params"]["n"]})

    def fail(peer, conn, req):
        peer.send(conn, "not json")
        error = {"code": -32000, "message": "gone", "data": {"code": "ERR_NOT_FOUND"}}
        peer.send(conn, {"jsonrpc": "2.0", "id": req["id"], "error": error})

    def never(peer, conn, req):
        pass

    peer = FakePeer(sock_dir / "d.sock", {"echo": echo, "fail": fail, "never": never})

    async def main() -> None:
        async with AsyncDataeraiClient(
            socket_path=sock_dir / "d.sock", auto_start=False, request_timeout_s=0.5
        ) as ac:
            # Later requests answer first: routing must use the id, not the order.
            answers = await asyncio.gather(
                *(ac._call("echo", {"n": n, "delay": 0.3 - n * 0.03}) for n in range(8))
            )
            assert [a["n"] for a in answers] == list(range(8))
            with pytest.raises(NotFoundError):
                await ac._call("fail")
            with pytest.raises(DaemonTimeoutError):
                await ac._call("never")
            assert (await ac.ping())["version"] == "test"  # still usable
            peer.drop_clients()
            with pytest.raises(ConnectionError):
                await ac._call("never")

    asyncio.run(main())
    peer.close()


def test_async_transfer_notification_racing_the_start_answer(sock_dir: Path, tmp_path: Path):
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 10)

    def upload(peer, conn, req):
        tid = "t-1"
        # The start answer and the notifications back to back, as the daemon may write them.
        peer.reply(conn, req, {"transfer_id": tid, "kind": "upload", "asset_id": "a-1", "bytes_total": 10})
        peer.send(
            conn,
            {
                "jsonrpc": "2.0",
                "method": "transfer.progress",
                "params": {"transfer_id": tid, "bytes_done": 5, "bytes_total": 10},
            },
        )
        peer.send(
            conn,
            {
                "jsonrpc": "2.0",
                "method": "transfer.completed",
                "params": {
                    "transfer_id": tid,
                    "kind": "upload",
                    "result": {"asset_id": "a-1", "content_id": "c-1", "total_bytes": 10},
                },
            },
        )

    peer = FakePeer(sock_dir / "d.sock", {"asset.upload": upload})

    async def main() -> None:
        events: List[ProgressEvent] = []
        async with AsyncDataeraiClient(socket_path=sock_dir / "d.sock", auto_start=False) as ac:
            up = await ac.upload(src, title="t", owner_type="user", owner_id="u", on_progress=events.append)
        assert up.asset_id == "a-1" and up.content_id == "c-1" and up.transfer_id == "t-1"
        assert [e.bytes_done for e in events] == [5, 10]

    asyncio.run(main())
    peer.close()
