"""A transfer started while the server is down waits and retries (announcing
``transfer.retrying``) instead of failing at once, and completes when the server is back."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import List

import pytest
from conftest import CLI_BIN, file_digest, short_tmpdir, start_server, stop_process, write_random

from dataerai import DataeraiClient, ProgressEvent

MIB = 1024 * 1024


def test_upload_started_while_the_server_is_down_completes_when_it_returns(
    base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    data_dir = short_tmpdir("outage-") / "server"
    server = start_server(data_dir)
    user = server.new_user(base_dir, f"outage-{uuid.uuid4().hex[:6]}")
    listen = server.url.removeprefix("http://")
    monkeypatch.setenv("DATAERAI_CONFIG_DIR", str(user.config_dir))
    sock = short_tmpdir("outage-run-") / "run" / "d.sock"
    src = write_random(tmp_path / "frames.raw", 3 * MIB)
    events: List[ProgressEvent] = []
    restarted: List[object] = []
    try:
        with DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30) as c:
            owner_id = c.auth_status().user_id
            stop_process(server.proc)  # the server goes away

            def come_back() -> None:
                time.sleep(4)
                restarted.append(start_server(data_dir, listen=listen))

            threading.Thread(target=come_back, daemon=True).start()
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
    finally:
        for srv in restarted:
            stop_process(srv.proc)  # type: ignore[attr-defined]
        stop_process(server.proc)


def test_upload_many_started_while_the_server_is_down_completes_when_it_returns(
    base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    data_dir = short_tmpdir("outage-many-") / "server"
    server = start_server(data_dir)
    user = server.new_user(base_dir, f"outage-many-{uuid.uuid4().hex[:6]}")
    listen = server.url.removeprefix("http://")
    monkeypatch.setenv("DATAERAI_CONFIG_DIR", str(user.config_dir))
    sock = short_tmpdir("outage-many-run-") / "run" / "d.sock"
    sources = [write_random(tmp_path / f"shot{i}.raw", 64 * 1024 + i) for i in range(6)]
    restarted: List[object] = []
    try:
        with DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30) as c:
            owner_id = c.auth_status().user_id
            stop_process(server.proc)  # the server goes away

            def come_back() -> None:
                time.sleep(4)
                restarted.append(start_server(data_dir, listen=listen))

            threading.Thread(target=come_back, daemon=True).start()
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
    finally:
        for srv in restarted:
            stop_process(srv.proc)  # type: ignore[attr-defined]
        stop_process(server.proc)
