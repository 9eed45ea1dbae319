"""What the bench scripts share: starting `scripts/test-backends.sh` and reading its exports,
signing the `dataerai` CLI in with a token (where the daemon then reads its credentials), and
reading a process's memory and CPU time from /proc."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

BACKENDS_SCRIPT = (
    Path(__file__).resolve().parent.parent / "scripts" / "test-backends.sh"
)


def start_durable_backends(state: Path) -> dict[str, str]:
    """Start PostgreSQL and s3s-fs under `state` (`scripts/test-backends.sh start`); returns the
    variables it exports. DURABLE=1: PostgreSQL keeps fsync and synchronous commits on, so a
    database crash-stopped by a run never drops a transaction it had acknowledged."""
    started = subprocess.run(
        [str(BACKENDS_SCRIPT), "start", str(state)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DURABLE": "1"},
    )
    return parse_env(started.stdout)


def proc_status_kib(pid: int | None, field: str) -> int | None:
    """A memory line of a live process's /proc status (`VmRSS`, `VmHWM`) in KiB, or None."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds a live process has used so far, all its threads, user plus system (utime +
    stime of /proc/<pid>/stat), or None. The kernel counts in clock ticks (10 ms at the usual
    100 Hz), so a difference is exact to about two ticks."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    # Fields 14 (utime) and 15 (stime) of proc(5), counted from the state (field 3) here.
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def parse_env(text: str) -> dict[str, str]:
    """`export NAME=value` lines (shell-quoted), as `scripts/test-backends.sh` prints them."""
    env = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            env[name] = " ".join(shlex.split(value))
    return env


def cli_login(
    bin_dir: Path, url: str, token: str, env: dict[str, str] | None = None
) -> None:
    """`dataerai auth login --server URL --token-stdin` (config dir from `env` or ours)."""
    subprocess.run(
        [str(bin_dir / "dataerai"), "auth", "login", "--server", url, "--token-stdin"],
        input=token + "\n",
        text=True,
        check=True,
        capture_output=True,
        env=env,
    )
