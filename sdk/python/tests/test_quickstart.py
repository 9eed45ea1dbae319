"""The examples run end to end against the real daemon and server."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import CLI_BIN, REPO

from dataerai import DataeraiClient


def run_example(client: DataeraiClient, name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATAERAI_SOCKET=str(client.socket_path), DATAERAI_BINARY=str(CLI_BIN))
    try:
        out = subprocess.run(
            [sys.executable, str(REPO / "examples" / name)],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{name} hung; output so far:\n{e.stdout}\n{e.stderr}") from None
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_quickstart_example_runs(client: DataeraiClient):
    out = run_example(client, "quickstart.py")
    assert "matches the original byte for byte" in out.stdout
    assert "--derived_from-->" in out.stdout
    assert "100.0%" in out.stdout
    assert "Quick start finished successfully." in out.stdout


def test_folders_and_control_example_runs(client: DataeraiClient):
    out = run_example(client, "folders_and_control.py")
    assert "19/20 uploaded" in out.stdout
    assert "deduplicated=True, bytes sent=0" in out.stdout
    assert "done: content" in out.stdout
    assert "Tour finished successfully." in out.stdout


def test_async_example_runs(client: DataeraiClient):
    out = run_example(client, "async_batch.py")
    assert "uploaded 5 files concurrently" in out.stdout
    assert "second identical relationship refused: ERR_RELATIONSHIP_EXISTS" in out.stdout
    assert "unknown asset: ERR_NOT_FOUND" in out.stdout
    assert "project holds 6 assets" in out.stdout
    assert "Async tour finished successfully." in out.stdout
