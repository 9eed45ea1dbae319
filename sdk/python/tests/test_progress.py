"""progress=True: tqdm.auto bars, one per file, captured from a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest
from conftest import write_random

from dataerai import DataeraiClient, Project

MIB = 1 << 20

SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from dataerai import DataeraiClient

    base, project_id = Path(sys.argv[1]), sys.argv[2]
    seen = []
    with DataeraiClient() as client:
        up = client.upload(base / "big.bin", title="big", owner_type="project", owner_id=project_id,
                           chunk_size_mb=1, progress=True, on_progress=seen.append)
        folder = client.upload(base / "tree", title="tree", owner_type="project",
                               owner_id=project_id, progress=True)
        many = client.upload_many(
            [{"local_path": base / name, "title": name, "owner_type": "project", "owner_id": project_id}
             for name in ("one.bin", "two.bin")],
            progress=True,
        )
        client.download(up.asset_id, base / "restored", chunk_size_mb=1, progress=True)
        client.download(folder.asset_id, base / "restored-tree", progress=True)
    print(f"ON_PROGRESS_EVENTS={len(seen)} LAST={seen[-1].bytes_done}/{seen[-1].bytes_total}")
    print("ITEMS_OK=" + str(all(item.ok for item in many)))
    """
)


def run_in_pty(args: list, env: dict, timeout_s: float = 180) -> str:
    """Run ``args`` with stdout and stderr on a pseudo-terminal; return everything it wrote."""
    master, slave = pty.openpty()
    # A fresh pty is 0×0; give it the size of an ordinary terminal window.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(
                    "the progress script hung:\n" + b"".join(chunks).decode(errors="replace")
                )
    finally:
        os.close(master)
        proc.wait(timeout=30)
    out = b"".join(chunks).decode("utf-8", errors="replace")
    assert proc.returncode == 0, out
    return out


def test_progress_bars_in_a_terminal(client: DataeraiClient, project: Project, base_dir: Path):
    pytest.importorskip("tqdm")
    base = base_dir / "progress"
    (base / "tree" / "sub").mkdir(parents=True)
    write_random(base / "big.bin", 3 * MIB + 77)
    write_random(base / "tree" / "alpha.dat", 1000)
    write_random(base / "tree" / "sub" / "beta.dat", 2000)
    write_random(base / "one.bin", 300)
    write_random(base / "two.bin", 400)
    script = base / "progress_script.py"
    script.write_text(SCRIPT)
    env = dict(
        os.environ,
        DATAERAI_SOCKET=str(client.socket_path),
        COLUMNS="120",
        TERM="xterm",
        PYTHONIOENCODING="utf-8",
    )
    out = run_in_pty([sys.executable, str(script), str(base), project.project_id], env)

    # One bar per file, each finished, with sizes and a rate.
    for name in (
        "↑ big.bin",
        "↑ alpha.dat",
        "↑ sub/beta.dat",
        "↑ one.bin",
        "↑ two.bin",
        "↓ big.bin",
        "↓ alpha.dat",
        "↓ sub/beta.dat",
    ):
        final = [line for line in re.split(r"[\r\n]", out) if name in line and "100%" in line]
        assert final, f"no finished bar for {name!r} in:\n{out}"
    big = [line for line in re.split(r"[\r\n]", out) if "↑ big.bin" in line and "100%" in line][-1]
    assert "3.00M/3.00M" in big, big
    assert re.search(r"\d(\.\d+)?[kMG]?B/s", out), out
    # tqdm's ETA field ("<mm:ss") is shown while a bar with a known total runs.
    assert re.search(r"<\d\d:\d\d", out), out
    # on_progress keeps working alongside the bars.
    events = re.search(r"ON_PROGRESS_EVENTS=(\d+) LAST=(\d+)/(\d+)", out)
    assert events and int(events.group(1)) >= 3 and events.group(2) == events.group(3) == str(3 * MIB + 77)
    assert "ITEMS_OK=True" in out


def test_progress_without_tqdm_says_which_extra_to_install(
    client: DataeraiClient, project: Project, base_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    path = write_random(base_dir / "no-tqdm.bin", 100)
    before = len(client.list_transfers())
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import tqdm.auto now fails
    for call in (
        lambda: client.upload(
            path, title="x", owner_type="project", owner_id=project.project_id, progress=True
        ),
        lambda: client.download("any", base_dir / "no-tqdm", progress=True),
        lambda: client.upload_many(
            [{"local_path": path, "title": "x", "owner_type": "project", "owner_id": project.project_id}],
            progress=True,
        ),
    ):
        with pytest.raises(ImportError, match=r"dataerai-sdk\[notebook\]"):
            call()
    assert len(client.list_transfers()) == before  # nothing was started
