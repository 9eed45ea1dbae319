"""Daemon auto-start, reuse, shutdown and loss, with the real `dataerai` binary."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import List

import pytest
from conftest import (
    CLI_BIN,
    DaemonProcess,
    User,
    live_threads,
    pid_alive,
    short_tmpdir,
    upload_to_project,
    write_random,
)

from dataerai import DaemonUnavailableError, DataeraiClient, ProgressEvent

MIB = 1 << 20


def test_auto_start_reuse_and_close(session_env: None, user_a: User):
    threads_before = live_threads()
    sock_dir = short_tmpdir("auto-") / "run"  # does not exist yet: the SDK creates it 0700
    sock = sock_dir / "auto.sock"

    first = DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30)
    first.connect()
    assert first.started_daemon
    assert (sock_dir.stat().st_mode & 0o777) == 0o700
    pid = first.ping()["pid"]
    assert pid_alive(pid)
    assert (sock_dir / "dataerai-daemon.log").exists()
    assert first.auth_status().user_email == user_a.email

    # A second client finds the running daemon and does not start another one.
    second = DataeraiClient(socket_path=sock, binary_path=CLI_BIN)
    with second:
        assert not second.started_daemon
        assert second.ping()["pid"] == pid
    second.close()  # idempotent
    assert pid_alive(pid), "closing a client that did not start the daemon must not stop it"
    assert first.ping()["pid"] == pid

    first.close()
    first.close()
    assert not pid_alive(pid), "the daemon this client started must be stopped (and reaped)"
    assert not sock.exists()
    assert live_threads() == threads_before, "close() left threads behind"
    with pytest.raises(DaemonUnavailableError):
        first.ping()  # closed clients do not silently reconnect


def test_reuse_does_not_stop_external_daemon(user_a: User):
    sock_dir = short_tmpdir("ext-")
    daemon = DaemonProcess(user_a.config_dir, sock_dir / "ext.sock")
    try:
        threads_before = live_threads()
        with DataeraiClient(socket_path=daemon.sock, binary_path=CLI_BIN) as c:
            assert not c.started_daemon
            assert c.ping()["pid"] == daemon.proc.pid
        assert daemon.proc.poll() is None
        assert live_threads() == threads_before
    finally:
        daemon.stop()


def test_no_daemon_and_no_auto_start(base_dir: Path):
    sock = short_tmpdir("none-") / "none.sock"
    c = DataeraiClient(socket_path=sock, auto_start=False)
    with pytest.raises(ConnectionError) as err:
        c.connect()
    assert isinstance(err.value, DaemonUnavailableError) and err.value.code == "ERR_DAEMON_UNAVAILABLE"
    assert "auto_start" in str(err.value)
    c.close()


def test_missing_binary_is_a_clear_error():
    sock = short_tmpdir("nobin-") / "x.sock"
    c = DataeraiClient(socket_path=sock, binary_path="/nonexistent/dataerai")
    with pytest.raises(DaemonUnavailableError) as err:
        c.connect()
    assert "/nonexistent/dataerai" in str(err.value)


def test_daemon_that_fails_to_start_reports_its_log(session_env: None):
    # The real daemon refuses a socket path longer than the kernel allows, and exits.
    sock = short_tmpdir("long-") / ("x" * 120 + ".sock")
    c = DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30)
    with pytest.raises(DaemonUnavailableError) as err:
        c.connect()
    message = str(err.value)
    assert "exited with code" in message and "dataerai-daemon.log" in message
    assert "cannot listen" in message, "the daemon's own explanation must be included"
    assert not c.started_daemon and not c.connected


def test_daemon_killed_raises_connection_error(session_env: None, base_dir: Path):
    sock = short_tmpdir("kill-") / "k.sock"
    c = DataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30)
    c.connect()
    pid = c.ping()["pid"]
    project = c.create_project("doomed")
    src = write_random(base_dir / "doomed.bin", 48 * MIB)
    killed = threading.Event()
    events: List[ProgressEvent] = []

    def on_progress(ev: ProgressEvent) -> None:
        events.append(ev)
        if not killed.is_set():
            killed.set()
            os.kill(pid, signal.SIGKILL)

    with pytest.raises(ConnectionError):
        upload_to_project(
            c, project, src, "doomed", chunk_size_mb=1, on_progress=on_progress, transfer_timeout_s=120
        )
    assert killed.is_set()
    assert not c.connected
    # The next call reconnects by starting a fresh daemon (auto_start) and works again.
    fresh = c.ping()["pid"]
    assert fresh != pid
    assert project.project_id in {p.project_id for p in c.list_projects(limit=1000)}
    c.close()
    assert not pid_alive(pid)
    # The fresh daemon resumed the journaled upload, so it may decline to stop; end it here.
    if pid_alive(fresh):
        os.kill(fresh, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while pid_alive(fresh) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not pid_alive(fresh)
