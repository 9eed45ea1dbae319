"""Finding, probing and starting the local ``dataerai`` daemon.

The default socket path follows ``docs/ipc.md`` (the daemon uses the same rules), and an
auto-started daemon runs in its own session with its output in ``dataerai-daemon.log`` next to
the socket, so it neither writes to the user's terminal nor dies with the user's Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

from .errors import DaemonTimeoutError, DaemonUnavailableError

SOCKET_NAME = "dataerai-transfer.sock"
LOG_NAME = "dataerai-daemon.log"
BINARY_NAME = "dataerai"
# Names the `dataerai` binary when no binary_path is given (as the examples and `make demo` do).
BINARY_ENV = "DATAERAI_BINARY"

ProbeFn = Callable[[], bool]


def default_socket_path() -> Path:
    """The socket the daemon listens on by default.

    ``$DATAERAI_SOCKET``, else ``$XDG_RUNTIME_DIR/dataerai-transfer.sock``, else
    ``/run/user/<uid>/dataerai-transfer.sock`` when that directory exists, else
    ``~/.local/state/dataerai/run/dataerai-transfer.sock`` (a private directory, never a
    world-writable one such as ``/tmp``).
    """
    env = os.environ.get("DATAERAI_SOCKET")
    if env:
        return Path(env).expanduser()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / SOCKET_NAME
    run_user = Path(f"/run/user/{os.getuid()}")
    if run_user.is_dir():
        return run_user / SOCKET_NAME
    return Path.home() / ".local" / "state" / "dataerai" / "run" / SOCKET_NAME


def installed_binary_dirs() -> List[Path]:
    """Where ``pip install dataerai-sdk`` may have put the bundled ``dataerai`` binary.

    In order: the scripts directory of this interpreter's environment (a venv's ``bin/``, or the
    prefix's for a system-wide install), the user scheme's (``pip install --user``:
    ``~/.local/bin``), and ``bin/`` beside the package (``pip install --target DIR``). A Jupyter
    kernel started by full interpreter path often has none of these on ``PATH``, which is why
    they are searched explicitly.
    """
    dirs = [Path(sysconfig.get_path("scripts"))]
    if sys.version_info >= (3, 10):
        user_scheme = sysconfig.get_preferred_scheme("user")
    elif sys.platform == "darwin" and getattr(sys, "_framework", None):
        user_scheme = "osx_framework_user"
    else:
        user_scheme = "posix_user"
    dirs.append(Path(sysconfig.get_path("scripts", scheme=user_scheme)))
    dirs.append(Path(__file__).resolve().parent.parent / "bin")
    unique: List[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binary(binary_path: Optional[str]) -> str:
    """Resolve the ``dataerai`` executable or raise a :class:`DaemonUnavailableError` saying how.

    Search order: ``binary_path``; ``$DATAERAI_BINARY``; the binary installed with this package
    (:func:`installed_binary_dirs`); ``PATH``. An explicit ``binary_path`` or
    ``$DATAERAI_BINARY`` that is not executable is an error, not a reason to look elsewhere.
    """
    for given, source in ((binary_path, "binary_path"), (os.environ.get(BINARY_ENV), f"${BINARY_ENV}")):
        if given:
            path = Path(given).expanduser()
            if not _executable(path):
                raise DaemonUnavailableError(
                    f"{source} {str(path)!r} is not an executable file; "
                    "pass the path of the `dataerai` binary"
                )
            return str(path)
    searched = installed_binary_dirs()
    for directory in searched:
        candidate = directory / BINARY_NAME
        if _executable(candidate):
            return str(candidate)
    found = shutil.which(BINARY_NAME)
    if found is None:
        raise DaemonUnavailableError(
            "the `dataerai` binary was not found (looked in "
            + ", ".join(str(d) for d in searched)
            + " and on PATH) and no daemon answers on the socket; reinstall dataerai-sdk "
            "(its wheel ships the binary), add `dataerai` to PATH, set $DATAERAI_BINARY, or pass "
            "binary_path=… to DataeraiClient"
        )
    return found


def socket_answers(path: Path, timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections on the Unix socket ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _log_tail(log_path: Path, max_bytes: int = 4000) -> str:
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - max_bytes))
            return log.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


class SpawnedDaemon:
    """A daemon process started by this SDK; :meth:`stop` reaps it (no zombies)."""

    def __init__(self, binary: str, socket_path: Path) -> None:
        socket_dir = socket_path.parent
        # The daemon insists on a private directory; creating it 0700 here also protects the log.
        socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log_path = socket_dir / LOG_NAME
        self.socket_path = socket_path
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            log.write(f"--- dataerai-sdk starting {binary} daemon --socket {socket_path}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [binary, "daemon", "--socket", str(socket_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )

    def wait_until_ready(self, timeout_s: float, probe: ProbeFn) -> None:
        """Wait until ``probe()`` succeeds; raise with the log's tail if the daemon dies first."""
        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while True:
            if socket_answers(self.socket_path, timeout_s=0.5) and probe():
                return
            code = self.process.poll()
            if code is not None:
                raise self.exited_error(code)
            if time.monotonic() >= deadline:
                self.stop(timeout_s=2.0)
                raise self.start_timeout_error(timeout_s)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)

    def exited_error(self, code: int) -> DaemonUnavailableError:
        return DaemonUnavailableError(
            f"the dataerai daemon exited with code {code} before answering on "
            f"{self.socket_path}; last lines of {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def start_timeout_error(self, timeout_s: float) -> DaemonTimeoutError:
        return DaemonTimeoutError(
            f"the dataerai daemon did not answer on {self.socket_path} within "
            f"{timeout_s:g} s (start_timeout_s); last lines of {self.log_path}:\n"
            f"{_log_tail(self.log_path)}"
        )

    def exited_early(self) -> Optional[int]:
        return self.process.poll()

    def leave_running(self) -> None:
        """Let the daemon run on after this client is gone (it declined ``daemon.shutdown``
        because transfers are running): a background thread reaps it whenever it exits, so
        no zombie is left while this process lives. The next client reuses it."""
        threading.Thread(target=self.process.wait, name="dataerai-daemon-reaper", daemon=True).start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Wait for the process to exit, escalating to SIGTERM then SIGKILL."""
        proc = self.process
        try:
            proc.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            pass
        proc.terminate()
        try:
            proc.wait(timeout=5.0)
            return
        except subprocess.TimeoutExpired:
            pass
        proc.kill()
        proc.wait()
