"""Scale-out backends for `bench/run.py --scaleout`: PostgreSQL + an S3 server.

`backends(work)` starts a throwaway PostgreSQL cluster and an `s3s-fs` server
with `scripts/test-backends.sh` (durable: PostgreSQL keeps fsync on), points
the AWS_* variables of this process (inherited by the servers it starts) at
them, and yields the extra `serve`/`admin` arguments. Everything is stopped
and the variables restored on exit.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from common import BACKENDS_SCRIPT, start_durable_backends


def backend_pids(work: Path) -> dict[str, int]:
    """The processes of the backends `backends(work)` started: PostgreSQL's postmaster (whose
    children are the backends and writers) and s3s-fs."""
    state = work / "backends"
    ports = dict(
        line.split("=", 1)
        for line in (state / "ports").read_text().splitlines()
        if "=" in line
    )
    pg_dir = Path(ports["PG_DIR"].strip("'"))
    postmaster = int((pg_dir / "data" / "postmaster.pid").read_text().split()[0])
    return {"postgres": postmaster, "s3s-fs": int(ports["S3_PID"])}


@contextlib.contextmanager
def backends(work: Path) -> Iterator[list[str]]:
    state = work / "backends"
    env = start_durable_backends(state)
    saved = {k: os.environ.get(k) for k in env}
    try:
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        run_id = uuid.uuid4().hex[:12]
        args = shlex.split(
            env["DATAERAI_TEST_SERVER_ARGS"].replace("{id}", f"bench{run_id}")
        )
        yield args
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        subprocess.run([str(BACKENDS_SCRIPT), "stop", str(state)], check=False)
