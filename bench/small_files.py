#!/usr/bin/env python3
"""Small files: 64 KiB files through SDK -> daemon -> server, in files per second.

- `upload()` in a loop (one call at a time: the per-call path SDK <-> daemon <-> server);
- `upload_many()` of the whole set (concurrency 16: the batched path).

`measure()` is what `bench/run.py` calls for each configuration. Run on its own it starts its
own server and daemon and measures only this (quicker to profile, and to compare before/after
in the same conditions):

    .venv/bin/python bench/small_files.py --bin-dir target/release [--scaleout] [--rounds 3]

The machine is shared: every figure comes with the 1-minute load average read just before and
just after it was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FILE_SIZE = 64 * 1024


def load_average() -> float:
    return os.getloadavg()[0]


def fresh_files(folder: Path, count: int) -> list[Path]:
    """`count` files of random bytes (new bytes every call: dedup must not flatter a figure)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = folder / f"f{i:05d}.bin"
        p.write_bytes(os.urandom(FILE_SIZE))
        paths.append(p)
    return paths


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a live process and its descendants have used, those that
    exited and were waited for included (0 when unknown): PostgreSQL's work is done by the
    postmaster's children."""
    if pid is None:
        return time.process_time()
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            # After the command name (which may hold spaces): field 3 of stat(5) on.
            stats[int(entry.name)] = text.rsplit(")", 1)[1].split()
    children: dict[int, list[int]] = {}
    for p, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(p)  # ppid: field 4
    ticks, todo = 0, [pid] if pid in stats else []
    while todo:
        p = todo.pop()
        # utime, stime, cutime, cstime: fields 14-17 (cutime/cstime: children waited for).
        ticks += sum(int(f) for f in stats[p][11:15])
        todo.extend(children.get(p, []))
    return ticks / os.sysconf("SC_CLK_TCK")


def _timed(fn: Any, pids: dict[str, int | None]) -> dict[str, Any]:
    """Seconds, load average before and after, and CPU seconds per process of `fn()`
    (`pids`: name -> pid; `None` is this Python process, the SDK)."""
    before = load_average()
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    return {"seconds": seconds, "load": [before, load_average()], "cpu_s": cpu}


def _record(out: dict[str, Any], name: str, files: int, t: dict[str, Any]) -> None:
    out[f"{name}_files"] = files
    out[f"{name}_files_per_s"] = files / t["seconds"]
    out[f"{name}_load"] = t["load"]
    # CPU milliseconds per file and process: what a busy machine does not distort.
    out[f"{name}_cpu_ms_per_file"] = {
        k: 1000 * v / files for k, v in t["cpu_s"].items()
    }


def measure(
    client: Any,
    owner: tuple[str, str],
    folder: Path,
    count: int,
    loop_count: int,
    pids: dict[str, int | None] | None = None,
) -> dict[str, Any]:
    """Files/s of `upload()` in a loop over `loop_count` files and of one `upload_many()` of
    `count` files, each with the load average around it and the CPU time per file of the
    processes in `pids` (name -> pid, `None` for this process)."""
    pids = pids if pids is not None else {"sdk": None}
    out: dict[str, Any] = {"file_bytes": FILE_SIZE}
    paths = fresh_files(folder, loop_count)

    def loop() -> None:
        for p in paths:
            client.upload(str(p), title=p.name, owner_type=owner[0], owner_id=owner[1])

    _record(out, "upload_loop", loop_count, _timed(loop, pids))

    paths = fresh_files(folder, count)
    items = [
        {
            "local_path": str(p),
            "title": p.name,
            "owner_type": owner[0],
            "owner_id": owner[1],
        }
        for p in paths
    ]
    results: list[Any] = []
    t = _timed(lambda: results.extend(client.upload_many(items, concurrency=16)), pids)
    failed = [r for r in results if getattr(r, "error", None) is not None]
    if failed:
        raise RuntimeError(
            f"upload_many: {len(failed)} failures, first: {failed[0].error}"
        )
    _record(out, "upload_many", count, t)
    shutil.rmtree(folder, ignore_errors=True)
    return out


def cell(figures: dict[str, Any], name: str) -> str:
    """A table cell: files/s and the load average while it was measured."""
    rate = figures.get(f"{name}_files_per_s", 0)
    load = figures.get(f"{name}_load") or [0, 0]
    return f"{rate:.0f} (load {max(load):.1f})"


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run  # the server/daemon harness of `make bench`

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", default=str(run.REPO / "target" / "release"))
    ap.add_argument("--work", default=str(run.REPO / "target" / "bench-small-files"))
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--loop-files", type=int, default=500)
    ap.add_argument(
        "--rounds", type=int, default=3, help="rounds; each figure's median is shown"
    )
    ap.add_argument(
        "--scaleout", action="store_true", help="PostgreSQL + S3 instead of embedded"
    )
    ap.add_argument(
        "--sources",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the files to upload are written (default /dev/shm, else --work): "
        "off the server's disk, whose every new file would otherwise pay for the "
        "deletion of the last round's sources (ext4 without a journal skips over "
        "recently deleted inodes)",
    )
    ap.add_argument(
        "--keep-work",
        action="store_true",
        help="leave the server's data in --work (delete it later, not right before "
        "the next run's measurement, for the same reason)",
    )
    ap.add_argument("--json", help="also write the rounds to this file")
    args = ap.parse_args()

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sources = (
        Path(tempfile.mkdtemp(prefix="dataerai-small-files-", dir=args.sources))
        if args.sources
        else work
    )
    rounds: list[dict[str, Any]] = []

    def bench(server_args: list[str]) -> None:
        env = run.Env(Path(args.bin_dir), work, server_args=server_args)
        try:
            env.start("scaleout" if args.scaleout else "embedded")
            c = env.client
            assert c is not None
            owner = ("user", c.auth_status().user_id)
            pids = {"sdk": None, "daemon": env.daemon_pid(), "server": env.server.pid}
            if args.scaleout:
                import scaleout

                pids.update(scaleout.backend_pids(work))
            # Warm up (daemon started, connections open) before the clock runs.
            measure(c, owner, sources / "warm", 20, 5, pids)
            for i in range(args.rounds):
                r = measure(
                    c, owner, sources / f"round{i}", args.files, args.loop_files, pids
                )
                for name, what in (
                    ("upload_loop", "upload() loop"),
                    ("upload_many", "upload_many"),
                ):
                    load = r[f"{name}_load"]
                    cpu = ", ".join(
                        f"{k} {v:.2f}" for k, v in r[f"{name}_cpu_ms_per_file"].items()
                    )
                    run.log(
                        f"round {i}: {what} {r[f'{name}_files_per_s']:.0f} files/s "
                        f"(load {load[0]:.2f}-{load[1]:.2f}; CPU ms/file: {cpu})"
                    )
                rounds.append(r)
        finally:
            env.stop()

    try:
        if args.scaleout:
            import scaleout

            with scaleout.backends(work) as server_args:
                bench(server_args)
        else:
            bench([])
    finally:
        if sources != work:
            shutil.rmtree(sources, ignore_errors=True)
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    for key in ("upload_loop_files_per_s", "upload_many_files_per_s"):
        values = [r[key] for r in rounds]
        if values:
            run.log(f"{key}: median {statistics.median(values):.0f} (rounds {values})")
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
