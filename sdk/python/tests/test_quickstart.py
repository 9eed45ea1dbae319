"""The examples run end to end against the real daemon and server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
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


# Each example, and lines its output must contain to show it did what it demonstrates.
EXAMPLES = {
    "quickstart.py": [
        "matches the original byte for byte",
        "--derived_from-->",
        "100.0%",
        "Quick start finished successfully.",
    ],
    "folders_and_control.py": [
        "19/20 uploaded",
        "deduplicated=True, bytes sent=0",
        "done: content",
        "Tour finished successfully.",
    ],
    "async_batch.py": [
        "uploaded 5 files concurrently",
        "second identical relationship refused: ERR_RELATIONSHIP_EXISTS",
        "unknown asset: ERR_NOT_FOUND",
        "project holds 6 assets",
        "Async tour finished successfully.",
    ],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs(client: DataeraiClient, name: str):
    out = run_example(client, name)
    for expected in EXAMPLES[name]:
        assert expected in out.stdout, f"{name} did not print {expected!r}; its output:\n{out.stdout}"
