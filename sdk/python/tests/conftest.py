"""Fixtures that run the REAL Dataerai processes: a ``dataerai-server`` on a temporary data
directory and ``dataerai`` daemons on temporary sockets, signed in as real users.

Binaries come from ``$DATAERAI_BIN_DIR`` (default ``<repo>/target/debug``); build them first
with ``cargo build -p dataerai-server -p dataerai``.

Every daemon keeps its transfer journal under ``$DATAERAI_STATE_DIR``: the fixtures point it at
temporary directories (one per test, one per test-started daemon), so the tests never touch the
user's home and two live daemons never share a journal (each would resume the other's work).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from dataerai import DaemonTimeoutError, DataeraiClient, Project, Transfer

REPO = Path(__file__).resolve().parents[3]
BIN_DIR = Path(os.environ.get("DATAERAI_BIN_DIR", REPO / "target" / "debug"))
SERVER_BIN = BIN_DIR / "dataerai-server"
CLI_BIN = BIN_DIR / "dataerai"


def _require_binaries() -> None:
    missing = [str(p) for p in (SERVER_BIN, CLI_BIN) if not os.access(p, os.X_OK)]
    if missing:
        pytest.exit(
            f"missing binaries {missing}: run `cargo build -p dataerai-server -p dataerai` "
            "or set DATAERAI_BIN_DIR",
            returncode=2,
        )


_TMP_DIRS: List[Path] = []


def short_tmpdir(prefix: str) -> Path:
    """A private (0700) directory with a short path: Unix socket paths are limited to ~107 bytes.

    Removed at the end of the test session.
    """
    path = Path(tempfile.mkdtemp(prefix=f"dtr-sdk-{prefix}", dir="/tmp"))
    _TMP_DIRS.append(path)
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("DATAERAI_KEEP_TMP"):
        # For debugging: keep server data, daemon logs and journals.
        print(f"\nkept test directories: {[str(p) for p in _TMP_DIRS[:3]]} …")
        return
    for path in _TMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


def wait_for_socket(path: Path, proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode} before listening on {path}")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            return
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    raise RuntimeError(f"daemon did not listen on {path} within {timeout_s} s")


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Server:
    url: str
    data_dir: Path
    proc: subprocess.Popen

    def metric(self, name: str) -> int:
        """An unlabelled counter of this server process (GET /metrics)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        match = re.search(rf"^{name} (\d+)", text, re.M)
        assert match, text
        return int(match.group(1))

    def admin(self, *args: str) -> str:
        """Run `dataerai-server admin …` against this server's data dir; returns stdout."""
        out = subprocess.run(
            [str(SERVER_BIN), "admin", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(f"admin {args} failed ({out.returncode}): {out.stderr}")
        return out.stdout.strip()

    def new_user(self, base: Path, label: str, scope: str = "read,write") -> User:
        """Create a user and a token, and sign a fresh config dir in with the real CLI."""
        email = f"{label}-{uuid.uuid4().hex[:8]}@example.org"
        self.admin("create-user", "--email", email)
        token = self.admin("create-token", "--email", email, "--scope", scope).splitlines()[-1].strip()
        config_dir = base / f"config-{label}"
        config_dir.mkdir(mode=0o700)
        login(config_dir, self.url, token)
        return User(email=email, token=token, config_dir=config_dir)


def start_server(data_dir: Path, listen: str = "127.0.0.1:0") -> Server:
    """A server on ``data_dir``; ``listen`` picks the address (default: any free port)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    out_path = data_dir.parent / f"{data_dir.name}-stdout.log"
    err_path = data_dir.parent / f"{data_dir.name}-stderr.log"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [str(SERVER_BIN), "serve", "--data-dir", str(data_dir), "--listen", listen],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", out_path.read_text())
        if match:
            return Server(url=match.group(1), data_dir=data_dir, proc=proc)
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {err_path.read_text()[-2000:]}")
        time.sleep(0.05)
    stop_process(proc)
    raise RuntimeError("server did not print its address within 60 s")


@dataclass
class User:
    email: str
    token: str
    config_dir: Path


def login(config_dir: Path, url: str, token: str) -> None:
    env = dict(os.environ, DATAERAI_CONFIG_DIR=str(config_dir))
    out = subprocess.run(
        [str(CLI_BIN), "auth", "login", "--server", url, "--token-stdin"],
        input=token + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"dataerai auth login failed: {out.stderr}")


class DaemonProcess:
    """A daemon started by the tests themselves (with its own config dir and journal)."""

    def __init__(self, config_dir: Path, sock: Path, state_dir: Path | None = None) -> None:
        self.sock = sock
        self.state_dir = state_dir if state_dir is not None else sock.parent / "state"
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        env = dict(os.environ, DATAERAI_CONFIG_DIR=str(config_dir), DATAERAI_STATE_DIR=str(self.state_dir))
        self.log = open(sock.parent / "daemon-test.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(CLI_BIN), "daemon", "--socket", str(sock)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for_socket(sock, self.proc)

    def client(self, **kw) -> DataeraiClient:
        return DataeraiClient(socket_path=self.sock, auto_start=False, **kw).connect()

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


@pytest.fixture(scope="session", autouse=True)
def session_state_dir() -> Iterator[Path]:
    """The journal directory of daemons started by session fixtures (the SDK's auto-start
    passes the environment on)."""
    path = short_tmpdir("state-")
    old = os.environ.get("DATAERAI_STATE_DIR")
    os.environ["DATAERAI_STATE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DATAERAI_STATE_DIR", None)
    else:
        os.environ["DATAERAI_STATE_DIR"] = old


@pytest.fixture(autouse=True)
def test_state_dir(session_state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh journal directory for daemons auto-started inside one test."""
    path = short_tmpdir("st-")
    monkeypatch.setenv("DATAERAI_STATE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def base_dir() -> Iterator[Path]:
    _require_binaries()
    yield short_tmpdir("session-")


@pytest.fixture(scope="session")
def server(base_dir: Path) -> Iterator[Server]:
    srv = start_server(base_dir / "server")
    yield srv
    stop_process(srv.proc)


@pytest.fixture(scope="session")
def user_a(server: Server, base_dir: Path) -> User:
    return server.new_user(base_dir, "alice")


@pytest.fixture(scope="session")
def user_b(server: Server, base_dir: Path) -> User:
    return server.new_user(base_dir, "bob")


@pytest.fixture(scope="session")
def session_env(user_a: User) -> Iterator[None]:
    # Daemons auto-started by the SDK inherit the environment: point them at Alice's config.
    old = os.environ.get("DATAERAI_CONFIG_DIR")
    os.environ["DATAERAI_CONFIG_DIR"] = str(user_a.config_dir)
    yield
    if old is None:
        os.environ.pop("DATAERAI_CONFIG_DIR", None)
    else:
        os.environ["DATAERAI_CONFIG_DIR"] = old


@pytest.fixture(scope="session")
def client(session_env: None, base_dir: Path) -> Iterator[DataeraiClient]:
    """Alice's client; it auto-starts (and at the end stops) its own daemon."""
    sock_dir = base_dir / "run-a"
    sock_dir.mkdir(mode=0o700)
    c = DataeraiClient(socket_path=sock_dir / "a.sock", binary_path=CLI_BIN, start_timeout_s=30)
    c.connect()
    yield c
    c.close()


@pytest.fixture(scope="session")
def bob_client(user_b: User, base_dir: Path) -> Iterator[DataeraiClient]:
    """Bob's client, on a daemon the tests start with Bob's config dir."""
    sock_dir = base_dir / "run-b"
    sock_dir.mkdir(mode=0o700)
    daemon = DaemonProcess(user_b.config_dir, sock_dir / "b.sock")
    c = daemon.client()
    yield c
    c.close()
    daemon.stop()


@pytest.fixture(scope="session")
def me(client: DataeraiClient):
    return client.auth_status()


@pytest.fixture(scope="session")
def project(client: DataeraiClient):
    return client.create_project(f"sdk-tests-{uuid.uuid4().hex[:6]}", description="SDK test project")


def upload_to_project(client: Any, project: Project, path: Path, title: str, **options: Any) -> Any:
    """``client.upload`` of ``path`` into ``project``, the upload most tests make; ``options`` are
    the other keyword arguments. With an ``AsyncDataeraiClient``, await what it returns."""
    return client.upload(path, title=title, owner_type="project", owner_id=project.project_id, **options)


def abandoned_upload(
    client: DataeraiClient, project: Project, path: Path, title: str, timeout_s: float = 0
) -> DaemonTimeoutError:
    """Upload ``path`` into ``project`` (1 MiB chunks) but stop waiting after ``timeout_s``: the
    :class:`DaemonTimeoutError` that says so. The transfer goes on in the daemon."""
    with pytest.raises(DaemonTimeoutError) as err:
        upload_to_project(client, project, path, title, chunk_size_mb=1, transfer_timeout_s=timeout_s)
    assert err.value.transfer_id, "a timed-out transfer names itself"
    return err.value


def wait_state(client: DataeraiClient, transfer_id: str, states: set, timeout_s: float = 60) -> Transfer:
    """Poll a transfer until its state is one of ``states``; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    transfer = client.get_transfer(transfer_id)
    while transfer.state not in states and time.monotonic() < deadline:
        time.sleep(0.05)
        transfer = client.get_transfer(transfer_id)
    assert transfer.state in states, transfer
    return transfer


def write_random(path: Path, size: int) -> Path:
    """A file of `size` pseudo-random bytes (so a chunk mix-up cannot go unnoticed)."""
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        remaining = size
        i = 0
        while remaining > 0:
            n = min(remaining, len(block))
            # Vary each MiB so identical chunks cannot be confused with each other.
            f.write(i.to_bytes(8, "little") + block[8:n] if n > 8 else block[:n])
            remaining -= n
            i += 1
    return path


def write_sparse(path: Path, size: int) -> Path:
    """A sparse file of `size` bytes with unique bytes at both ends (so no upload of it can be
    deduplicated against another test's file)."""
    marker = uuid.uuid4().bytes
    with open(path, "wb") as f:
        f.write(b"head" + marker)
        f.truncate(size)
        f.seek(size - len(marker))
        f.write(marker)
    return path


def file_digest(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    return h.hexdigest()


def live_threads() -> List[str]:
    import threading

    return sorted(t.name for t in threading.enumerate())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists"; check its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
