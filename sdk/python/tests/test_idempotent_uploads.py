"""Ctrl-C and re-run safety: a client that started the daemon does not stop it while transfers
run, and a re-run with the same ``idempotency_key`` follows the first transfer instead of
creating a second asset and sending every byte again."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import CLI_BIN, Server, pid_alive, short_tmpdir, write_random

from dataerai import DataeraiClient, InvalidInputError

MIB = 1024 * 1024


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_ctrl_c_then_rerun_with_the_same_key_uploads_once(
    session_env: None, server: Server, me, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A slow daemon, so the upload is surely under way when "Ctrl-C" comes.
    monkeypatch.setenv("DATAERAI_FAULTS", "chunk_delay_ms=150")
    sock = short_tmpdir("idem-") / "run" / "d.sock"
    size = 12 * MIB
    src = write_random(tmp_path / "run42.bin", size)
    key = f"run-42-{uuid.uuid4().hex}"
    title = f"idempotent-{uuid.uuid4().hex[:8]}"
    sent_before = server.metric("dataerai_upload_bytes_total")
    interrupted = threading.Event()

    def ctrl_c(event) -> None:
        # Like a user's Ctrl-C: KeyboardInterrupt in the main thread, inside the with block.
        if event.bytes_done > 0 and not interrupted.is_set():
            interrupted.set()
            os.kill(os.getpid(), signal.SIGINT)

    def upload(c: DataeraiClient, **kw):
        return c.upload(
            src,
            title=title,
            owner_type="user",
            owner_id=me.user_id,
            chunk_size_mb=1,
            idempotency_key=key,
            **kw,
        )

    pid = 0
    try:
        with pytest.raises(KeyboardInterrupt):
            with DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30) as c:
                assert c.started_daemon
                pid = c.ping()["pid"]
                upload(c, on_progress=ctrl_c)
        assert interrupted.is_set()
        # The daemon declined to stop: its upload is still running.
        assert pid_alive(pid), "the client's exit stopped a daemon with a transfer running"

        # The re-run: same script, same key.
        monkeypatch.delenv("DATAERAI_FAULTS")
        with DataeraiClient(socket_path=sock, binary_path=CLI_BIN) as again:
            assert not again.started_daemon, "the running daemon is reused"
            assert again.ping()["pid"] == pid
            result = upload(again)
            assert result.total_bytes == size
            mine = [a for a in again.iter_assets(owner_type="user", owner_id=me.user_id) if a.title == title]
            assert [a.asset_id for a in mine] == [result.asset_id], "exactly one asset"
            # Once more after completion: the same result, nothing new.
            third = upload(again)
            assert (third.asset_id, third.content_id, third.transfer_id) == (
                result.asset_id,
                result.content_id,
                result.transfer_id,
            )
            # The key names an upload: a download with it is refused.
            with pytest.raises(InvalidInputError):
                again.download(result.asset_id, tmp_path / "dl", idempotency_key=key)
        assert server.metric("dataerai_upload_bytes_total") - sent_before == size, "bytes sent once"
    finally:
        if pid:
            _stop(pid)


def test_shutdown_of_an_idle_daemon_still_stops_it(session_env: None):
    sock = short_tmpdir("idem-idle-") / "run" / "d.sock"
    with DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30) as c:
        pid = c.ping()["pid"]
    assert not pid_alive(pid)
    assert not sock.exists()
