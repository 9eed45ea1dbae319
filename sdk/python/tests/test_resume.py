"""Crash and fault survival seen from the SDK: a daemon killed with SIGKILL mid-upload is
replaced by a new one (auto-started by a new client) that resumes the transfer from its journal;
a server answering 503 makes the daemon retry while the SDK keeps waiting and reporting progress.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import List

import pytest
from conftest import (
    CLI_BIN,
    DaemonProcess,
    Server,
    abandoned_upload,
    file_digest,
    pid_alive,
    short_tmpdir,
    start_server,
    stop_process,
    write_random,
    write_sparse,
)

from dataerai import DataeraiClient, ProgressEvent, Project, UploadResult

MIB = 1 << 20


def test_upload_resumes_after_daemon_kill(
    session_env: None, server: Server, project: Project, test_state_dir: Path
):
    size = 512 * MIB + 777
    work = short_tmpdir("kill-")
    src = write_sparse(work / "resume-me.bin", size)
    sock = work / "run" / "k.sock"

    received_before = server.metric("dataerai_upload_bytes_total")
    first = DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30).connect()
    old_pid = first.ping()["pid"]
    assert first.started_daemon
    tid = None
    try:
        tid = abandoned_upload(first, project, src, "resume after kill").transfer_id
        # Kill once a good part (but not all) has been sent.
        deadline = time.monotonic() + 300
        transfer = first.get_transfer(tid)
        while transfer.bytes_done < size // 8 and time.monotonic() < deadline:
            assert not transfer.finished, transfer
            time.sleep(0.02)
            transfer = first.get_transfer(tid)
        os.kill(old_pid, signal.SIGKILL)
        assert transfer.state in ("running", "retrying"), transfer
        assert transfer.bytes_done < size, "the upload finished before the kill; make it bigger"
    finally:
        first.close()  # reaps the killed daemon
    assert not pid_alive(old_pid)
    assert (test_state_dir / "journal.db").exists(), "the journal lives under DATAERAI_STATE_DIR"

    second = DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30).connect()
    try:
        assert second.started_daemon and second.ping()["pid"] != old_pid
        seen = second.get_transfer(tid)  # the new daemon knows the transfer from its journal
        assert seen.transfer_id == tid and seen.kind == "upload" and seen.bytes_total == size
        events: List[ProgressEvent] = []
        result = second.wait_transfer(tid, timeout_s=900, on_progress=events.append)
        assert isinstance(result, UploadResult)
        assert result.transfer_id == tid and result.total_bytes == size
        assert result.asset_id == seen.asset_id
        # Only the missing chunks moved after the restart: at most the few chunks that were in
        # flight at the kill crossed the network twice (starting over would add >= size / 8).
        # (A chunk stored while its PUT was cut off by the kill may be missing from the count.)
        received = server.metric("dataerai_upload_bytes_total") - received_before
        assert size - 8 * MIB <= received <= size + 16 * MIB, received
        assert events and events[-1].bytes_done == size
        final = second.get_transfer(tid)
        assert final.state == "completed"

        dest = work / "restored"
        down = second.download(result.asset_id, dest, transfer_timeout_s=900)
        assert down.content_id == result.content_id
        assert file_digest(down.files[0].local_path) == file_digest(src)
    finally:
        second.close()


@pytest.fixture
def faulty_server(monkeypatch: pytest.MonkeyPatch):
    """A server of its own that answers the 2nd chunk PUT with 503 + `Retry-After: 1` (the
    test-only fault switch, compiled into `make test` builds)."""
    base = short_tmpdir("fault-")
    monkeypatch.setenv("DATAERAI_FAULTS", "unavailable_chunk=2")
    srv = start_server(base / "server")
    monkeypatch.delenv("DATAERAI_FAULTS")
    yield srv, base
    stop_process(srv.proc)


def test_progress_continues_while_the_daemon_retries(faulty_server: tuple, caplog: pytest.LogCaptureFixture):
    caplog.set_level("INFO", logger="dataerai")
    srv, base = faulty_server
    assert isinstance(srv, Server)
    user = srv.new_user(base, "retry")
    daemon = DaemonProcess(user.config_dir, base / "r.sock")
    try:
        with daemon.client() as c:
            src = write_random(base / "retried.bin", 6 * MIB + 3)
            events: List[ProgressEvent] = []
            started = time.monotonic()
            up = c.upload(
                src,
                title="retried",
                owner_type="user",
                owner_id=c.auth_status().user_id,
                chunk_size_mb=1,
                on_progress=events.append,
                transfer_timeout_s=300,
            )
            assert time.monotonic() - started >= 1.0, "Retry-After: 1 was not honoured"
            assert f"transfer {up.transfer_id} retrying" in caplog.text, "no transfer.retrying seen"
            assert up.total_bytes == 6 * MIB + 3
            done = [e.bytes_done for e in events]
            assert done == sorted(done) and done[-1] == up.total_bytes and len(done) >= 7
            transfer = c.get_transfer(up.transfer_id)
            assert transfer.state == "completed" and transfer.error is None
            down = c.download(up.asset_id, base / "retried-out")
            assert file_digest(down.files[0].local_path) == file_digest(src)
    finally:
        daemon.stop()
