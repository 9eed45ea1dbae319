"""Where the SDK looks for the ``dataerai`` binary when it has to start a daemon.

Order: ``binary_path``, ``$DATAERAI_BINARY``, the binary a wheel installed with the package (the
environment's scripts directory, the user scheme's, ``bin/`` beside the package), ``PATH``. The
wheel installed into a clean venv is checked end to end by ``scripts/wheel.sh quickstart``.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path
from typing import List

import pytest

import dataerai
from dataerai import DaemonUnavailableError, _daemon
from dataerai._daemon import find_binary, installed_binary_dirs


def stand_in(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dataerai"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> List[Path]:
    """Install dirs and PATH pointed at empty temporary directories; returns [installed, on_path]."""
    installed, on_path = tmp_path / "venv-bin", tmp_path / "path-bin"
    installed.mkdir()
    on_path.mkdir()
    monkeypatch.setattr(_daemon, "installed_binary_dirs", lambda: [installed])
    monkeypatch.setenv("PATH", str(on_path))
    monkeypatch.delenv("DATAERAI_BINARY", raising=False)
    return [installed, on_path]


def test_search_order(tmp_path: Path, places: List[Path], monkeypatch: pytest.MonkeyPatch):
    installed, on_path = places
    with pytest.raises(DaemonUnavailableError, match="not found") as err:
        find_binary(None)
    assert str(installed) in str(err.value) and "PATH" in str(err.value)

    path_bin = stand_in(on_path)
    assert find_binary(None) == str(path_bin)
    bundled = stand_in(installed)
    assert find_binary(None) == str(bundled)  # the package's own binary beats PATH
    env_bin = stand_in(tmp_path / "env")
    monkeypatch.setenv("DATAERAI_BINARY", str(env_bin))
    assert find_binary(None) == str(env_bin)
    given = stand_in(tmp_path / "given")
    assert find_binary(str(given)) == str(given)


def test_an_explicit_binary_that_is_not_executable_is_an_error(
    tmp_path: Path, places: List[Path], monkeypatch: pytest.MonkeyPatch
):
    stand_in(places[0])  # a usable binary elsewhere does not hide the mistake
    with pytest.raises(DaemonUnavailableError, match="binary_path"):
        find_binary(str(tmp_path / "missing"))
    monkeypatch.setenv("DATAERAI_BINARY", str(tmp_path / "missing"))
    with pytest.raises(DaemonUnavailableError, match=r"\$DATAERAI_BINARY"):
        find_binary(None)


@pytest.mark.skipif(sys.version_info < (3, 10), reason="sysconfig.get_preferred_scheme is 3.10+")
def test_installed_binary_dirs_follow_the_install_schemes():
    dirs = installed_binary_dirs()
    # This interpreter's environment first (a venv's bin/), then `pip install --user`'s, then
    # `pip install --target DIR`'s DIR/bin beside the package.
    assert dirs[0] == Path(sysconfig.get_path("scripts"))
    user_scheme = sysconfig.get_preferred_scheme("user")
    assert Path(sysconfig.get_path("scripts", scheme=user_scheme)) in dirs
    assert dirs[-1] == Path(dataerai.__file__).resolve().parent.parent / "bin"
