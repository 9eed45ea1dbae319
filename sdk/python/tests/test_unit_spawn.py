"""Unit tests of daemon spawning with stand-in executables.

The real daemon cannot be made to hang at start-up on demand, so these use tiny shell scripts in
its place to pin down what the SDK does with a daemon that never answers or dies at once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import short_tmpdir

from dataerai import DaemonTimeoutError, DaemonUnavailableError, DataeraiClient


def stand_in_client(tmp_path: Path, name: str, script: str, start_timeout_s: float) -> DataeraiClient:
    """A client whose ``dataerai`` executable is the shell ``script`` (and whose socket nobody
    listens on), so connecting starts that script as the daemon."""
    fake = tmp_path / name
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(0o755)
    sock = short_tmpdir(f"{name}-") / "d.sock"
    return DataeraiClient(socket_path=sock, binary_path=fake, start_timeout_s=start_timeout_s)


def test_daemon_that_exits_at_once_reports_its_log(tmp_path: Path):
    # A "daemon" that fails immediately: the error must carry its output.
    c = stand_in_client(tmp_path, "broken-dataerai", "echo 'cannot open credentials: boom' >&2\nexit 3\n", 10)
    with pytest.raises(DaemonUnavailableError) as err:
        c.connect()
    assert "code 3" in str(err.value) and "cannot open credentials: boom" in str(err.value)


def test_start_timeout(tmp_path: Path):
    # A "daemon" that never listens: connect() gives up after start_timeout_s and kills it.
    c = stand_in_client(tmp_path, "sleepy-dataerai", "exec sleep 60\n", 0.5)
    start = time.monotonic()
    with pytest.raises(DaemonTimeoutError):
        c.connect()
    assert time.monotonic() - start < 10
    assert not c.started_daemon
