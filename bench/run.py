#!/usr/bin/env python3
"""`make bench`: measure Dataerai against the machine's own limits and a peer tool.

Every figure comes from one run on one machine. Throughput figures are the median of
`--rounds` rounds (default 3): a shared virtual disk varies by +-20 % from one transfer to the
next, and a single sample of each path cannot tell a real difference from that noise.

- upload / download throughput of 1 GiB and 4 GiB files through SDK -> daemon -> server,
  beside `cp` + `sync` of the same file on the same disk, BLAKE3 hashing speed, and
  `rclone copy` to/from an `rclone serve webdav` on loopback (the peer);
- 1,000 files of 64 KiB with `upload()` in a loop and with `upload_many()` (files/s);
- `get_metadata` round-trip latency through the SDK (p50/p99);
- peak RSS (VmHWM) of the daemon and the server across the run.

Writes `bench-results/results.json` and `bench-results/results.md`. Configurations: `embedded`
(SQLite + local directory) always; `scaleout` (PostgreSQL + S3) when `--scaleout` is given and
the scale-out backends exist (see `bench/scaleout.py`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "sdk" / "python" / "src"))

import small_files
from common import cli_login, proc_status_kib
from dataerai import DataeraiClient

GiB = 1 << 30
MiB = 1 << 20


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else float("inf")


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def drop_caches() -> None:
    """Flush dirty pages and, where allowed, drop the page cache so reads hit the disk."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        pass


def make_random_file(path: Path, size: int) -> None:
    """Incompressible content, written in 16 MiB pieces (BLAKE3-free: a SHA-256 counter stream
    is fast enough and deterministic)."""
    block = os.urandom(16 * MiB)
    with open(path, "wb") as f:
        written = 0
        i = 0
        while written < size:
            n = min(len(block), size - written)
            # Vary every block so no two are identical (dedup must not kick in).
            head = hashlib.sha256(i.to_bytes(8, "little")).digest()
            f.write(head + block[len(head) : n] if n > len(head) else head[:n])
            written += n
            i += 1
        f.flush()
        os.fsync(f.fileno())


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a live process, or 0."""
    return proc_status_kib(pid, "VmHWM") or 0


@dataclass
class Env:
    bin_dir: Path
    work: Path
    server_args: list[str] = field(default_factory=list)
    server: subprocess.Popen | None = None
    url: str = ""
    client: DataeraiClient | None = None

    def start(self, config: str) -> None:
        data = self.work / f"data-{config}"
        data.mkdir(parents=True, exist_ok=True)
        out = open(self.work / f"server-{config}.out", "w+")  # noqa: SIM115 (lives with the server)
        err = open(self.work / f"server-{config}.log", "w")  # noqa: SIM115
        self.server = subprocess.Popen(
            [
                str(self.bin_dir / "dataerai-server"),
                "serve",
                "--data-dir",
                str(data),
                "--listen",
                "127.0.0.1:0",
                *self.server_args,
            ],
            stdout=out,
            stderr=err,
            env={**os.environ, "RUST_LOG": os.environ.get("BENCH_SERVER_LOG", "warn")},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out.seek(0)
            m = re.search(r"listening on (http://\S+)", out.read())
            if m:
                self.url = m.group(1)
                break
            if self.server.poll() is not None:
                raise RuntimeError(f"server exited: see {err.name}")
            time.sleep(0.05)
        else:
            raise RuntimeError("server did not start")
        admin = [str(self.bin_dir / "dataerai-server"), "admin"]
        email = f"bench-{config}@example.org"
        subprocess.run(
            [
                *admin,
                "create-user",
                "--data-dir",
                str(data),
                "--email",
                email,
                *self.server_args_for_admin(),
            ],
            check=True,
            capture_output=True,
        )
        token = subprocess.run(
            [
                *admin,
                "create-token",
                "--data-dir",
                str(data),
                "--email",
                email,
                "--scope",
                "read,write",
                *self.server_args_for_admin(),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        cfg = self.work / f"config-{config}"
        run = self.work / f"run-{config}"
        state = self.work / f"state-{config}"
        for d in (cfg, run, state):
            d.mkdir(mode=0o700, exist_ok=True)
        os.environ["DATAERAI_CONFIG_DIR"] = str(cfg)
        os.environ["DATAERAI_STATE_DIR"] = str(state)
        cli_login(self.bin_dir, self.url, token)
        self.client = DataeraiClient(
            socket_path=str(run / "d.sock"),
            binary_path=str(self.bin_dir / "dataerai"),
            request_timeout_s=120,
        ).connect()

    def server_args_for_admin(self) -> list[str]:
        # Admin commands take the same storage flags as `serve` (minus --listen).
        return [a for a in self.server_args]

    def daemon_pid(self) -> int:
        return int(self.client.ping()["pid"])  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_sync(cmd: list[str]) -> float:
    """Seconds to run `cmd` and then `sync`."""
    return timed(
        lambda: (subprocess.run(cmd, check=True), subprocess.run(["sync"], check=True))
    )


class RclonePeer:
    """`rclone serve webdav` on loopback (same disk) and `rclone copy` to and from it."""

    def __init__(self, work: Path) -> None:
        rclone = shutil.which("rclone")
        if rclone is None:
            raise RuntimeError(
                "rclone is not installed (make bench installs Debian's rclone)"
            )
        self.rclone = rclone
        self.work = work
        self.root = work / "rclone-root"
        self.root.mkdir(exist_ok=True)
        port = free_port()
        self.srv = subprocess.Popen(
            [rclone, "serve", "webdav", str(self.root), "--addr", f"127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        self.remote = f":webdav,url='http://127.0.0.1:{port}':"
        self.rounds = 0

    def round(self, src: Path) -> tuple[float, float]:
        """Seconds to upload `src` and to download it again (each followed by `sync`)."""
        common = ["--config", "/dev/null", "--transfers", "4", "-q"]
        # A fresh directory per round: rclone serve caches listings, and a copy that
        # believes the file is there already skips it.
        self.rounds += 1
        target = f"{self.remote}r{self.rounds}"
        dest = self.work / "rclone-down"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        drop_caches()
        up = timed_sync([self.rclone, "copy", str(src), target, *common])
        drop_caches()
        down = timed_sync(
            [self.rclone, "copy", f"{target}/{src.name}", str(dest), *common]
        )
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(self.root / f"r{self.rounds}", ignore_errors=True)
        return up, down

    def stop(self) -> None:
        self.srv.terminate()
        self.srv.wait()


def blake3_speed(path: Path, bin_dir: Path) -> float:
    """Single-pass BLAKE3 of the file in MB/s, via `dataerai hash` when present, else Python's
    blake3 package."""
    try:
        import blake3  # type: ignore

        def run() -> None:
            h = blake3.blake3(max_threads=blake3.blake3.AUTO)
            h.update_mmap(str(path))
            h.hexdigest()
    except ImportError:  # pragma: no cover - make bench installs it
        raise RuntimeError("pip package blake3 missing (make bench installs it)")
    run()  # warm the cache: we want the hash speed, not the disk's
    return mbps(path.stat().st_size, timed(run))


def cp_sync(src: Path, dst: Path) -> float:
    drop_caches()
    t = timed(lambda: (shutil.copyfile(src, dst), subprocess.run(["sync"], check=True)))
    dst.unlink()
    return t


def median_mbps(size: int, samples: list[float]) -> float:
    return mbps(size, statistics.median(samples))


def bench_config(
    config: str,
    env: Env,
    files: dict[int, Path],
    small_count: int,
    rounds: int,
    results: dict[str, Any],
    with_baselines: bool = False,
) -> None:
    """Measure one configuration. With `with_baselines`, every round also measures
    `cp`+`sync` and the rclone peer right before Dataerai, so that all paths of a round
    see the disk in the same state (its speed drifts over minutes)."""
    env.start(config)
    c = env.client
    assert c is not None
    me = c.auth_status()
    owner = ("user", me.user_id)
    r: dict[str, Any] = {
        "throughput": {},
        "small_files": {},
        "metadata": {},
        "rss_kib": {},
    }
    dl = env.work / f"dl-{config}"
    for size, path in sorted(files.items()):
        label = f"{size // GiB}GiB"
        ups, downs = [], []
        cps: list[float] = []
        peer = {"upload_s": [], "download_s": []}
        rclone = RclonePeer(env.work) if with_baselines else None
        for i in range(rounds):
            if rclone is not None:
                cps.append(cp_sync(path, env.work / "cp-copy.bin"))
                up_s, down_s = rclone.round(path)
                peer["upload_s"].append(up_s)
                peer["download_s"].append(down_s)
            # A project of its own per round: the same bytes under another owner are
            # never deduplicated, so every round really moves them.
            project = c.create_project(f"bench {label} round {i}")
            drop_caches()
            t0 = time.perf_counter()
            up = c.upload(
                str(path),
                title=f"bench {label}",
                owner_type="project",
                owner_id=project.project_id,
                transfer_timeout_s=7200,
            )
            subprocess.run(["sync"], check=True)
            ups.append(time.perf_counter() - t0)
            assert up.bytes_sent == size, "a benchmark upload was deduplicated"
            shutil.rmtree(dl, ignore_errors=True)
            drop_caches()
            t0 = time.perf_counter()
            res = c.download(up.asset_id, str(dl), transfer_timeout_s=7200)
            subprocess.run(["sync"], check=True)
            downs.append(time.perf_counter() - t0)
            assert res.files[0].size == size
            shutil.rmtree(dl, ignore_errors=True)
        if rclone is not None:
            rclone.stop()
            b: dict[str, Any] = {
                "cp_sync_s": cps,
                "cp_sync_mbps": median_mbps(size, cps),
                "rclone": {
                    **peer,
                    "upload_mbps": median_mbps(size, peer["upload_s"]),
                    "download_mbps": median_mbps(size, peer["download_s"]),
                },
            }
            results["baselines"]["per_size"][label] = b
            log(
                f"{label}: cp+sync {b['cp_sync_mbps']:.0f} MB/s, rclone up "
                f"{b['rclone']['upload_mbps']:.0f} / down {b['rclone']['download_mbps']:.0f} MB/s"
            )
        t_up, t_down = statistics.median(ups), statistics.median(downs)
        r["throughput"][label] = {
            "bytes": size,
            "upload_s": ups,
            "download_s": downs,
            "upload_mbps": mbps(size, t_up),
            "download_mbps": mbps(size, t_down),
        }
        log(
            f"{config} {label}: upload {mbps(size, t_up):.0f} MB/s, "
            f"download {mbps(size, t_down):.0f} MB/s"
        )
    r["rss_kib"] = {
        "daemon_peak": vm_hwm_kib(env.daemon_pid()),
        "server_peak": vm_hwm_kib(env.server.pid),
    }  # type: ignore[union-attr]

    # Small files (bench/small_files.py): files/s, load average and CPU ms per file.
    pids = {"sdk": None, "daemon": env.daemon_pid(), "server": env.server.pid}  # type: ignore[union-attr]
    half = small_count // 2 if config != "embedded" else small_count
    r["small_files"] = small_files.measure(
        c, owner, env.work / f"small-{config}", small_count, half, pids
    )
    log(f"{config} small files: {r['small_files']}")

    probe = env.work / "latency-probe.bin"
    probe.write_bytes(os.urandom(64 * 1024))
    asset = c.upload(
        str(probe), title="latency probe", owner_type=owner[0], owner_id=owner[1]
    ).asset_id
    for _ in range(50):
        c.get_metadata(asset)
    lat = []
    for _ in range(2000):
        t0 = time.perf_counter()
        c.get_metadata(asset)
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    r["metadata"] = {
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[int(len(lat) * 0.99) - 1],
        "samples": len(lat),
    }
    log(f"{config} get_metadata: {r['metadata']}")
    env.stop()
    # Every round stored its own copy of each payload: free the disk for the next config.
    shutil.rmtree(env.work / f"data-{config}", ignore_errors=True)
    results["configs"][config] = r


def table_head(cells: str) -> list[str]:
    """A Markdown table's header row (``cells`` separated by ``|``) and the separator under it."""
    return [f"| {cells} |", "|" + "---|" * (cells.count("|") + 1)]


def table_row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    base = results["baselines"]
    lines = [
        (
            f"Run {results['started_at']} on {m['cpus']} CPUs, {m['mem_gib']:.0f} GiB RAM, "
            f"{m['kernel']}; files on the same disk as the server's data directory; "
            f"throughput is the median of {results.get('rounds', 1)} rounds."
        ),
        "",
        *table_head(
            "size | path | upload MB/s | download MB/s | upload vs cp+sync | download vs cp+sync "
            "| upload vs rclone | download vs rclone"
        ),
    ]
    for label, b in base["per_size"].items():
        cp = b["cp_sync_mbps"]
        rc = b.get("rclone")
        lines.append(
            table_row(
                label,
                "`cp`+`sync` (machine limit)",
                f"{cp:.0f}",
                f"{cp:.0f}",
                "1.00",
                "1.00",
                "",
                "",
            )
        )
        # The other paths: throughput, then relative to cp+sync and (when measured) to rclone.
        paths = [("rclone webdav (peer)", rc)] if rc else []
        for config, r in results["configs"].items():
            if r["throughput"].get(label):
                paths.append((f"Dataerai ({config})", r["throughput"][label]))
        for name, t in paths:
            up, down = t["upload_mbps"], t["download_mbps"]
            vs_rclone = (
                [f"{up / rc['upload_mbps']:.2f}", f"{down / rc['download_mbps']:.2f}"]
                if rc
                else ["", ""]
            )
            lines.append(
                table_row(
                    label,
                    name,
                    f"{up:.0f}",
                    f"{down:.0f}",
                    f"{up / cp:.2f}",
                    f"{down / cp:.2f}",
                    *vs_rclone,
                )
            )
    lines += [
        "",
        f"BLAKE3 hashing (all cores, warm cache): {base['blake3_mbps']:.0f} MB/s",
        "",
    ]
    lines += table_head(
        "config | upload() loop files/s | upload_many files/s | get_metadata p50 ms "
        "| p99 ms | daemon peak RSS MiB | server peak RSS MiB"
    )
    for config, r in results["configs"].items():
        s = r["small_files"]
        lines.append(
            table_row(
                config,
                small_files.cell(s, "upload_loop"),
                small_files.cell(s, "upload_many"),
                f"{r['metadata']['p50_ms']:.2f}",
                f"{r['metadata']['p99_ms']:.2f}",
                f"{r['rss_kib']['daemon_peak'] / 1024:.0f}",
                f"{r['rss_kib']['server_peak'] / 1024:.0f}",
            )
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument(
        "--work",
        default=str(REPO / "target" / "bench-work"),
        help="scratch directory; must be on the disk being measured",
    )
    ap.add_argument("--out", default=str(REPO / "bench-results"))
    ap.add_argument("--sizes-gib", default="1,4")
    ap.add_argument("--small-files", type=int, default=1000)
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="throughput samples per path; the median is reported",
    )
    ap.add_argument(
        "--scaleout",
        action="store_true",
        help="also measure PostgreSQL + S3 (needs bench/scaleout.py backends)",
    )
    args = ap.parse_args()

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "kernel": platform.release(),
            "mem_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB,
        },
        "rounds": args.rounds,
        "baselines": {"per_size": {}},
        "configs": {},
    }
    try:
        files: dict[int, Path] = {}
        for g in [int(x) for x in args.sizes_gib.split(",") if x]:
            p = work / f"payload-{g}GiB.bin"
            log(f"writing {g} GiB of random data")
            make_random_file(p, g * GiB)
            files[g * GiB] = p
        results["baselines"]["blake3_mbps"] = blake3_speed(
            max(files.items())[1], Path(args.bin_dir)
        )
        log(f"blake3: {results['baselines']['blake3_mbps']:.0f} MB/s")

        env = Env(Path(args.bin_dir), work)
        try:
            bench_config(
                "embedded",
                env,
                files,
                args.small_files,
                args.rounds,
                results,
                with_baselines=True,
            )
        finally:
            env.stop()
        if args.scaleout:
            sys.path.insert(0, str(REPO / "bench"))
            import scaleout  # type: ignore

            with scaleout.backends(work) as server_args:
                env = Env(Path(args.bin_dir), work, server_args=server_args)
                try:
                    bench_config(
                        "scaleout", env, files, args.small_files, args.rounds, results
                    )
                finally:
                    env.stop()
    finally:
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        if results["configs"]:
            (out / "results.md").write_text(markdown(results))
        shutil.rmtree(work, ignore_errors=True)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
