"""The quick start example runs end to end against the real daemon and server."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import CLI_BIN, REPO

from dataerai import DataeraiClient


def test_quickstart_example_runs(client: DataeraiClient):
    env = dict(os.environ, DATAERAI_SOCKET=str(client.socket_path), DATAERAI_BINARY=str(CLI_BIN))
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "matches the original byte for byte" in out.stdout
    assert "--derived_from-->" in out.stdout
    assert "100.0%" in out.stdout
    assert "Quick start finished successfully." in out.stdout
