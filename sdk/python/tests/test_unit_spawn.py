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


def test_daemon_that_exits_at_once_reports_its_log(tmp_path: Path):
    # A "daemon" that fails immediately: the error must carry its output.
    fake = tmp_path / "broken-dataerai"
    fake.write_text("#!/bin/sh\necho 'cannot open credentials: boom' >&2\nexit 3\n")
    fake.chmod(0o755)
    sock = short_tmpdir("broken-") / "b.sock"
    c = DataeraiClient(socket_path=sock, binary_path=fake, start_timeout_s=10)
    with pytest.raises(DaemonUnavailableError) as err:
        c.connect()
    assert "code 3" in str(err.value) and "cannot open credentials: boom" in str(err.value)


def test_start_timeout(tmp_path: Path):
    # A "daemon" that never listens: connect() gives up after start_timeout_s and kills it.
    fake = tmp_path / "sleepy-dataerai"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    sock = short_tmpdir("sleepy-") / "s.sock"
    c = DataeraiClient(socket_path=sock, binary_path=fake, start_timeout_s=0.5)
    start = time.monotonic()
    with pytest.raises(DaemonTimeoutError):
        c.connect()
    assert time.monotonic() - start < 10
    assert not c.started_daemon
