#!/usr/bin/env python3
"""Install the Python SDK from source into the running interpreter's environment, without
building its wheel.

`make venv` runs this with the developer venv's interpreter. The SDK's real build (maturin)
compiles the `dataerai` binary in release mode and bundles it; the developer venv does not need
that — the tests use the binaries `make build` already compiled (DATAERAI_BIN_DIR) — so instead:

* the requirements of the extras named on the command line (default: `dev`) are read from
  sdk/python/pyproject.toml and installed with pip, and
* any built dataerai-sdk is uninstalled, and a `.pth` file puts sdk/python/src on sys.path, so `import dataerai` runs the checkout's code
  (edits take effect at once, as with an editable install).

Usage: python scripts/install-sdk-source.py [EXTRA ...]
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import sysconfig
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "tomli"], check=True
    )
    import tomli as tomllib

SDK = Path(__file__).resolve().parents[1] / "sdk" / "python"
PTH_NAME = "dataerai-sdk-source.pth"


def main(extras: list[str]) -> None:
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    if requirements:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", *requirements],
            check=True,
        )
    try:
        # A built dataerai-sdk (an earlier editable install or a wheel, maybe with its own
        # bin/dataerai) would shadow the source tree: remove it.
        importlib.metadata.version("dataerai-sdk")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "uninstall",
                "--quiet",
                "--yes",
                "dataerai-sdk",
            ],
            check=True,
        )
    except importlib.metadata.PackageNotFoundError:
        pass
    site_packages = Path(sysconfig.get_path("purelib"))
    (site_packages / PTH_NAME).write_text(f"{SDK / 'src'}\n")
    print(
        f"dataerai-sdk from {SDK / 'src'} (via {site_packages / PTH_NAME}), extras: {', '.join(extras)}"
    )


if __name__ == "__main__":
    main(sys.argv[1:] or ["dev"])
