"""The processes a soak run kills and restarts: `dataerai-server`, the `dataerai` daemon and,
on PostgreSQL + S3, the database (through `scripts/test-backends.sh restart-pg`).

`Cluster` keeps each process's command line so a restart is the same process again: the server
on the same fixed loopback port and storage, the daemon on the same socket, config and journal.
Logs are appended across restarts (`server.log`, `daemon.log` in the run's directory).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "sdk" / "python" / "src"))


from common import BACKENDS_SCRIPT, cli_login, proc_status_kib, start_durable_backends
from dataerai import DaemonError, DataeraiClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill9(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL a started process (no chance to clean up) and reap it."""
    assert process is not None
    process.send_signal(signal.SIGKILL)
    process.wait()


def rss_kib(pid: int | None) -> int | None:
    """Resident set size of a live process (from /proc), or None."""
    return proc_status_kib(pid, "VmRSS")


class ScaleoutBackends:
    """A throwaway PostgreSQL cluster and s3s-fs (`scripts/test-backends.sh`), with one database
    and bucket prefix for this run."""

    def __init__(self, state: Path) -> None:
        self.state = state
        # Durable: the soak crash-stops the database, and a crash that dropped transactions
        # it had already acknowledged would be our test setup losing data, not Dataerai.
        self.env = start_durable_backends(state)
        run_id = "soak" + uuid.uuid4().hex[:10]
        self.db_url = f"{self.env['DATAERAI_TEST_PG_URL']}/t_{run_id}"
        self.server_args = shlex.split(
            self.env["DATAERAI_TEST_SERVER_ARGS"].replace("{id}", run_id)
        )
        self.aws_env = {k: v for k, v in self.env.items() if k.startswith("AWS_")}
        ports = dict(
            line.split("=", 1)
            for line in (state / "ports").read_text().splitlines()
            if "=" in line
        )
        self.psql = str(Path(ports["PG_BIN"].strip('"')) / "psql")

    def restart_pg(self) -> None:
        """Stop PostgreSQL the hard way (`pg_ctl -m immediate`: no checkpoint, like a crash),
        stay down a few seconds, start it again on the same port and data."""
        subprocess.run(
            [str(BACKENDS_SCRIPT), "restart-pg", str(self.state)],
            check=True,
            capture_output=True,
        )

    def query(self, sql: str) -> list[list[str]]:
        out = subprocess.run(
            [self.psql, "-At", "-F", "\t", "-d", self.db_url, "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [line.split("\t") for line in out.splitlines() if line]

    def stop(self) -> None:
        subprocess.run(
            [str(BACKENDS_SCRIPT), "stop", str(self.state)],
            check=False,
            capture_output=True,
        )


class Cluster:
    """Server + daemon (+ scale-out backends) of one soak run, all under `work`."""

    def __init__(
        self, bin_dir: Path, work: Path, scaleout: ScaleoutBackends | None
    ) -> None:
        self.bin_dir = bin_dir
        self.work = work
        self.scaleout = scaleout
        self.data = work / "server-data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: subprocess.Popen[bytes] | None = None
        self.daemon: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.socket_path = work / "run" / "daemon.sock"
        for d in ("config", "state", "run"):
            (work / d).mkdir(mode=0o700, exist_ok=True)
        self.user_env = {
            **os.environ,
            "DATAERAI_CONFIG_DIR": str(work / "config"),
            "DATAERAI_STATE_DIR": str(work / "state"),
        }
        self.server_env = {
            **os.environ,
            **(scaleout.aws_env if scaleout else {}),
            "RUST_LOG": os.environ.get("SOAK_SERVER_LOG", "warn"),
        }

    # ------------------------------------------------------------------ server

    def storage_args(self) -> list[str]:
        return [
            "--data-dir",
            str(self.data),
            *(self.scaleout.server_args if self.scaleout else []),
        ]

    def _spawn(
        self,
        what: str,
        args: list[str],
        env: dict[str, str],
        answers: Callable[[], bool],
        timeout_s: float,
    ) -> subprocess.Popen[bytes]:
        """Start `args` (logging to `<what>.log`) and return it once `answers()` is true."""
        log = open(self.work / f"{what}.log", "ab")  # noqa: SIM115 (lives with the process)
        process = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{Path(args[0]).name} exited at start: see {self.work / what}.log"
                )
            if answers():
                return process
            time.sleep(0.05)
        raise RuntimeError(f"the {what} did not answer within {timeout_s} s")

    def start_server(self, timeout_s: float = 60) -> None:
        """Start the server and return once it accepts connections on its port."""

        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False

        self.server = self._spawn(
            "server",
            [
                str(self.bin_dir / "dataerai-server"),
                "serve",
                "--listen",
                f"127.0.0.1:{self.port}",
                *self.storage_args(),
            ],
            self.server_env,
            listening,
            timeout_s,
        )

    def kill_server(self) -> None:
        kill9(self.server)

    def admin(self, *args: str) -> str:
        return subprocess.run(
            [
                str(self.bin_dir / "dataerai-server"),
                "admin",
                *args,
                *self.storage_args(),
            ],
            check=True,
            capture_output=True,
            text=True,
            env=self.server_env,
        ).stdout.strip()

    def sign_in(self, email: str) -> None:
        """A user with a read+write token, saved where the daemon reads its credentials."""
        self.admin("create-user", "--email", email)
        token = self.admin("create-token", "--email", email, "--scope", "read,write")
        self.token = token
        cli_login(self.bin_dir, self.url, token, self.user_env)

    def delete_asset(self, asset_id: str) -> None:
        """`DELETE /api/v1/assets/{id}` (the SDK has no delete): frees the asset's bytes."""
        req = urllib.request.Request(
            f"{self.url}/api/v1/assets/{asset_id}",
            method="DELETE",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=30) as answer:
            answer.read()

    # ------------------------------------------------------------------ daemon

    def start_daemon(self, timeout_s: float = 60) -> None:
        """Start the daemon and return once it answers on its socket."""

        def pings() -> bool:
            try:
                with self.client(request_timeout_s=5) as c:
                    c.ping()
                return True
            except (DaemonError, ConnectionError, OSError):
                return False

        self.daemon = self._spawn(
            "daemon",
            [
                str(self.bin_dir / "dataerai"),
                "daemon",
                "--socket",
                str(self.socket_path),
            ],
            self.user_env,
            pings,
            timeout_s,
        )

    def kill_daemon(self) -> None:
        kill9(self.daemon)

    def client(self, request_timeout_s: float = 60) -> DataeraiClient:
        """A client of the daemon that never starts one itself: the harness owns the daemon."""
        return DataeraiClient(
            socket_path=str(self.socket_path),
            auto_start=False,
            request_timeout_s=request_timeout_s,
        )

    # ------------------------------------------------------------------ observation

    def pids(self) -> tuple[int | None, int | None]:
        def live(p: subprocess.Popen[bytes] | None) -> int | None:
            return p.pid if p is not None and p.poll() is None else None

        return live(self.server), live(self.daemon)

    def query(self, sql: str) -> list[list[Any]]:
        """Run a read-only query on the server's metadata store (SQLite file or PostgreSQL)."""
        if self.scaleout is not None:
            return self.scaleout.query(sql)
        db = sqlite3.connect(
            f"file:{self.data / 'dataerai.db'}?mode=ro", uri=True, timeout=30
        )
        try:
            return [list(r) for r in db.execute(sql).fetchall()]
        finally:
            db.close()

    def stop(self) -> None:
        for p in (self.daemon, self.server):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def log_lines(self, name: str, pattern: str) -> list[str]:
        """Lines of `server.log` / `daemon.log` matching a regular expression."""
        path = self.work / name
        if not path.exists():
            return []
        rx = re.compile(pattern)
        with open(path, errors="replace") as f:
            return [line.rstrip("\n") for line in f if rx.search(line)]
