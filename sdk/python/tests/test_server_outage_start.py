"""A transfer started while the server is down waits and retries (announcing
``transfer.retrying``) instead of failing at once, and completes when the server is back."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator, List, Tuple

import pytest
from conftest import CLI_BIN, Server, file_digest, short_tmpdir, start_server, stop_process, write_random

from dataerai import DataeraiClient, ProgressEvent

MIB = 1024 * 1024


@contextlib.contextmanager
def client_of_a_server_that_goes_away(
    base_dir: Path, monkeypatch: pytest.MonkeyPatch, label: str
) -> Iterator[Tuple[DataeraiClient, str, Callable[[], None]]]:
    """A fresh server with a signed-in user, and a client of a daemon talking to it: yields the
    client, the user's id and ``take_down``, which stops the server at once and starts it again
    4 s later on the same address and data. Every server started is stopped at the end."""
    data_dir = short_tmpdir(f"{label}-") / "server"
    server = start_server(data_dir)
    user = server.new_user(base_dir, f"{label}-{uuid.uuid4().hex[:6]}")
    listen = server.url.removeprefix("http://")
    monkeypatch.setenv("DATAERAI_CONFIG_DIR", str(user.config_dir))
    sock = short_tmpdir(f"{label}-run-") / "run" / "d.sock"
    restarted: List[Server] = []

    def take_down() -> None:
        stop_process(server.proc)

        def come_back() -> None:
            time.sleep(4)
            restarted.append(start_server(data_dir, listen=listen))

        threading.Thread(target=come_back, daemon=True).start()

    try:
        with DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30) as c:
            yield c, c.auth_status().user_id, take_down
    finally:
        for srv in restarted:
            stop_process(srv.proc)
        stop_process(server.proc)


def test_upload_started_while_the_server_is_down_completes_when_it_returns(
    base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    src = write_random(tmp_path / "frames.raw", 3 * MIB)
    events: List[ProgressEvent] = []
    with client_of_a_server_that_goes_away(base_dir, monkeypatch, "outage") as (c, owner_id, take_down):
        take_down()
        started = time.monotonic()
        result = c.upload(
            src,
            title="during an outage",
            owner_type="user",
            owner_id=owner_id,
            chunk_size_mb=1,
            on_progress=events.append,
            transfer_timeout_s=120,
        )
        assert time.monotonic() - started >= 3, "it waited for the server"
        # Meanwhile the daemon kept answering other requests.
        assert c.ping()["pid"]
        retrying = [e for e in events if e.state == "retrying"]
        assert retrying, "no retrying event reached on_progress"
        assert retrying[0].error is not None and retrying[0].error.code == "ERR_SERVER_UNREACHABLE"
        assert events[-1].state == "running" and events[-1].bytes_done == 3 * MIB
        assert result.total_bytes == 3 * MIB
        # Nothing lost: the bytes come back identical.
        back = c.download(result.asset_id, tmp_path / "back")
        assert file_digest(Path(back.files[0].local_path)) == file_digest(src)


def test_upload_many_started_while_the_server_is_down_completes_when_it_returns(
    base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    sources = [write_random(tmp_path / f"shot{i}.raw", 64 * 1024 + i) for i in range(6)]
    with client_of_a_server_that_goes_away(base_dir, monkeypatch, "outage-many") as (c, owner_id, take_down):
        take_down()
        results = c.upload_many(
            [
                {"local_path": src, "title": src.name, "owner_type": "user", "owner_id": owner_id}
                for src in sources
            ],
            concurrency=2,
            transfer_timeout_s=120,
        )
        # Every item waited for the server instead of failing at once.
        assert [r.error for r in results] == [None] * len(sources)
        for src, r in zip(sources, results):
            assert r.result is not None
            back = c.download(r.result.asset_id, tmp_path / "back" / src.stem)
            assert file_digest(Path(back.files[0].local_path)) == file_digest(src)
