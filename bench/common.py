"""What the bench scripts share: reading `scripts/test-backends.sh`'s exports and signing the
`dataerai` CLI in with a token (where the daemon then reads its credentials)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path


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
