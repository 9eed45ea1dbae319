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
- peak RSS (VmHWM) of the daemon and the server across the run, and of a daemon of its own over
  one 4 GiB upload and download in 64 MiB chunks (`--rss-gib`);
- the software path: 1 GiB up and down with the server's data, the source and the destination on
  tmpfs, throughput and CPU seconds per GiB of the daemon and the server (from /proc), beside
  rclone on the same path; then the same on the disk (`--software-path-places`), for the
  download / upload ratio on one disk, each transfer there starting with the page cache
  dropped; each target of the path with its verdict.

Writes `bench-results/results.json` and `bench-results/results.md`. Configurations (`--configs`,
default `embedded,software-path`): `embedded` (SQLite + local directory on the disk),
`software-path` (tmpfs), `scaleout` (PostgreSQL + S3, also added by `--scaleout`; needs the
scale-out backends, see `bench/scaleout.py`). `--configs software-path --rss-gib 0` is the quick
CPU check (`make bench-software-path`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
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
from common import cli_login, proc_cpu_seconds, proc_status_kib
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


def disk_bytes(path: Path) -> tuple[int, int] | None:
    """Bytes read from and written to the block device holding `path` so far (from
    /proc/diskstats), or None where `path` is on no block device (tmpfs)."""
    dev = os.stat(path).st_dev
    try:
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        if (int(f[0]), int(f[1])) == (os.major(dev), os.minor(dev)):
            return int(f[5]) * 512, int(f[9]) * 512
    return None


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


@dataclass
class PeerRound:
    """One rclone round: seconds up and down, and CPU seconds (client + server) of each."""

    up_s: float
    down_s: float
    up_cpu_s: float
    down_cpu_s: float


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

    def round(self, src: Path, cold: bool = True) -> PeerRound:
        """Upload `src` and download it again (each followed by `sync`); `cold` drops the page
        cache before each (meaningless on tmpfs, whose pages are the files)."""
        common = ["--config", "/dev/null", "--transfers", "4", "-q"]
        # A fresh directory per round: rclone serve caches listings, and a copy that
        # believes the file is there already skips it.
        self.rounds += 1
        target = f"{self.remote}r{self.rounds}"
        dest = self.work / "rclone-down"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        if cold:
            drop_caches()
        up_cpu = self.cpu_seconds()
        up = timed_sync([self.rclone, "copy", str(src), target, *common])
        up_cpu = self.cpu_seconds() - up_cpu
        if cold:
            drop_caches()
        down_cpu = self.cpu_seconds()
        down = timed_sync(
            [self.rclone, "copy", f"{target}/{src.name}", str(dest), *common]
        )
        down_cpu = self.cpu_seconds() - down_cpu
        shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(self.root / f"r{self.rounds}", ignore_errors=True)
        return PeerRound(up, down, up_cpu, down_cpu)

    def cpu_seconds(self) -> float:
        """CPU seconds of the webdav server plus every child waited for so far (the `rclone
        copy` clients, and `sync`, which costs next to nothing)."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (
            (proc_cpu_seconds(self.srv.pid) or 0.0)
            + children.ru_utime
            + children.ru_stime
        )

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


def project_upload(project_id: str, title: str) -> dict[str, Any]:
    """The options of a benchmark upload: a new asset ``title`` of the project, with a
    timeout long enough for the largest file on a slow disk."""
    return {
        "title": title,
        "owner_type": "project",
        "owner_id": project_id,
        "transfer_timeout_s": 7200,
    }


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
                pr = rclone.round(path)
                peer["upload_s"].append(pr.up_s)
                peer["download_s"].append(pr.down_s)
            # A project of its own per round: the same bytes under another owner are
            # never deduplicated, so every round really moves them.
            project = c.create_project(f"bench {label} round {i}")
            drop_caches()
            t0 = time.perf_counter()
            up = c.upload(
                str(path), **project_upload(project.project_id, f"bench {label}")
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


def load_average() -> float:
    """The 1-minute load average: how busy the machine was around a measurement (other work
    slows throughput down; CPU seconds per GiB stay meaningful)."""
    return os.getloadavg()[0]


def cpu_per_gib(cpu_s: float, size: int) -> float:
    return cpu_s / (size / GiB)


def transfer_costs(
    env: Env, size: int, transfer: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[dict[str, float], Any]:
    """Run one transfer (`transfer(*args, **kwargs)`, an SDK call that blocks until it is
    done, then `sync`); answer its wall time and the CPU seconds per GiB the daemon and the
    server spent on it, and what the call returned."""
    daemon, server = env.daemon_pid(), env.server.pid  # type: ignore[union-attr]
    before = (proc_cpu_seconds(daemon) or 0.0, proc_cpu_seconds(server) or 0.0)
    t0 = time.perf_counter()
    result = transfer(*args, **kwargs)
    subprocess.run(["sync"], check=True)
    seconds = time.perf_counter() - t0
    after = (proc_cpu_seconds(daemon) or 0.0, proc_cpu_seconds(server) or 0.0)
    d, s = (
        cpu_per_gib(after[0] - before[0], size),
        cpu_per_gib(after[1] - before[1], size),
    )
    costs = {
        "seconds": seconds,
        "mbps": mbps(size, seconds),
        "daemon_cpu_s_per_gib": d,
        "server_cpu_s_per_gib": s,
        "cpu_s_per_gib": d + s,
        "load_1m": load_average(),
    }
    return costs, result


def disk_transfer_costs(
    env: Env,
    where: Path,
    cold: bool,
    size: int,
    transfer: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> tuple[dict[str, float], Any]:
    """`transfer_costs`, after dropping the page cache if `cold`, with the MiB the disk
    holding `where` read and wrote meanwhile (none on tmpfs)."""
    if cold:
        drop_caches()
    before = disk_bytes(where)
    costs, result = transfer_costs(env, size, transfer, *args, **kwargs)
    after = disk_bytes(where)
    if before is not None and after is not None:
        costs["disk_read_mib"] = (after[0] - before[0]) / MiB
        costs["disk_written_mib"] = (after[1] - before[1]) / MiB
    return costs, result


def summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    """Medians of a list of per-round figures, with the rounds themselves."""
    keys = samples[0].keys() if samples else []
    return {
        **{k: statistics.median(x[k] for x in samples) for k in keys},
        "load_1m_max": max((x["load_1m"] for x in samples), default=0.0),
        "rounds": samples,
    }


def bench_software_path(
    bin_dir: Path,
    places: list[tuple[str, Path]],
    size: int,
    rounds: int,
    results: dict[str, Any],
) -> None:
    """The software path: the server's data directory, the file uploaded and the download's
    destination all on tmpfs, so no disk limits anything and what is left is the cost of our
    code (and of the kernel work it asks for). Per round: rclone up and down through its webdav
    server, then Dataerai up and down through SDK -> daemon -> server; wall time, and CPU
    seconds per GiB of the daemon and the server apart (utime + stime from /proc).

    `places` names the directories measured in turn, each with a server, a daemon and an
    rclone peer of its own: ("tmpfs", ...) first, then usually ("disk", ...) — the same
    transfers with everything on the disk, for the download / upload ratio on one disk in
    the same run. Results go to results["software_path"][place]."""
    results["software_path"] = {}
    for place, base in places:
        results["software_path"][place] = software_path_on(
            bin_dir, place, base, size, rounds
        )


def software_path_on(
    bin_dir: Path, place: str, base: Path, size: int, rounds: int
) -> dict[str, Any]:
    """`bench_software_path` in one directory `base` (on tmpfs or on the disk)."""
    tmp = base / f"dataerai-bench-sp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = Env(bin_dir, tmp)
    rclone: RclonePeer | None = None
    try:
        label = f"{size // GiB}GiB" if size >= GiB else f"{size // MiB}MiB"
        log(f"software path ({place}): writing {label} of random data to {tmp}")
        payload = tmp / f"payload-{label}.bin"
        make_random_file(payload, size)
        rclone = RclonePeer(tmp)
        env.start(f"software-path-{place}")
        c = env.client
        assert c is not None
        dl = tmp / "dl"
        # On the disk every transfer starts with the page cache dropped, as `cp`+`sync`
        # does: the upload then reads its source from the disk as the download reads the
        # chunks. (With the source still cached from writing it, the upload only wrote to
        # the disk while the download read and wrote: docs/performance.md.)
        cold = place == "disk"
        ups, downs, peer_up, peer_down = [], [], [], []
        for i in range(rounds):
            pr = rclone.round(payload, cold=cold)
            load = load_average()
            for samples, s, cpu in (
                (peer_up, pr.up_s, pr.up_cpu_s),
                (peer_down, pr.down_s, pr.down_cpu_s),
            ):
                samples.append(
                    {
                        "seconds": s,
                        "mbps": mbps(size, s),
                        "cpu_s_per_gib": cpu_per_gib(cpu, size),
                        "load_1m": load,
                    }
                )
            project = c.create_project(f"bench software path round {i}")
            up, uploaded = disk_transfer_costs(
                env,
                tmp,
                cold,
                size,
                c.upload,
                str(payload),
                **project_upload(project.project_id, f"bench software path {label}"),
            )
            assert uploaded.bytes_sent == size, "a benchmark upload was deduplicated"
            shutil.rmtree(dl, ignore_errors=True)
            down, downloaded = disk_transfer_costs(
                env,
                tmp,
                cold,
                size,
                c.download,
                uploaded.asset_id,
                str(dl),
                transfer_timeout_s=7200,
            )
            assert downloaded.files[0].size == size
            shutil.rmtree(dl, ignore_errors=True)
            ups.append(up)
            downs.append(down)
            log(
                f"software path ({place}) round {i}: rclone up {peer_up[-1]['mbps']:.0f} MB/s "
                f"{peer_up[-1]['cpu_s_per_gib']:.2f} CPU-s/GiB, down {peer_down[-1]['mbps']:.0f} "
                f"MB/s {peer_down[-1]['cpu_s_per_gib']:.2f}; Dataerai up {up['mbps']:.0f} MB/s "
                f"{up['daemon_cpu_s_per_gib']:.2f}+{up['server_cpu_s_per_gib']:.2f} CPU-s/GiB, "
                f"down {down['mbps']:.0f} MB/s {down['daemon_cpu_s_per_gib']:.2f}+"
                f"{down['server_cpu_s_per_gib']:.2f} CPU-s/GiB (daemon+server); load {load:.1f}"
            )
        return {
            "bytes": size,
            "dir": str(base),
            "upload": summary(ups),
            "download": summary(downs),
            "rclone": {"upload": summary(peer_up), "download": summary(peer_down)},
        }
    finally:
        env.stop()
        if rclone is not None:
            rclone.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# The bound on the daemon's peak RSS for one big transfer (docs/performance.md).
RSS_LIMIT_MIB = 128


def bench_peak_rss(
    bin_dir: Path, work: Path, size: int, results: dict[str, Any]
) -> None:
    """The daemon's peak RSS (VmHWM) over one upload and one download of `size` bytes in 64 MiB
    chunks, in a daemon started for them alone (so the figure is theirs), on the disk of
    `work` (tmpfs would hold the file three times in memory)."""
    label = f"{size // GiB}GiB"
    payload = work / f"payload-{label}.bin"
    if not payload.exists():
        log(f"peak RSS: writing {label} of random data")
        make_random_file(payload, size)
    env = Env(bin_dir, work)
    try:
        env.start("peak-rss")
        c = env.client
        assert c is not None
        project = c.create_project(f"bench peak RSS {label}")
        up = c.upload(
            str(payload),
            chunk_size_mb=64,
            **project_upload(project.project_id, f"bench peak RSS {label}"),
        )
        assert up.bytes_sent == size, "the peak RSS upload was deduplicated"
        dl = work / "dl-peak-rss"
        res = c.download(up.asset_id, str(dl), transfer_timeout_s=7200)
        assert res.files[0].size == size
        shutil.rmtree(dl, ignore_errors=True)
        peak = vm_hwm_kib(env.daemon_pid())
        results["peak_rss"] = {
            "bytes": size,
            "chunk_mib": 64,
            "daemon_peak_kib": peak,
            "server_peak_kib": vm_hwm_kib(env.server.pid),  # type: ignore[union-attr]
            "limit_mib": RSS_LIMIT_MIB,
            "within_limit": peak < RSS_LIMIT_MIB * 1024,
        }
        log(f"peak RSS over {label} up and down: daemon {peak / 1024:.0f} MiB")
    finally:
        env.stop()
        shutil.rmtree(work / "data-peak-rss", ignore_errors=True)


def table_head(cells: str) -> list[str]:
    """A Markdown table's header row (``cells`` separated by ``|``) and the separator under it."""
    return [f"| {cells} |", "|" + "---|" * (cells.count("|") + 1)]


def table_row(*cells: str) -> str:
    return "| " + " | ".join(cells) + " |"


def disk_tables(results: dict[str, Any]) -> list[str]:
    """The disk configurations: throughput beside cp+sync and rclone, small files, latency, RSS."""
    base = results["baselines"]
    lines = [
        (
            "Files on the same disk as the server's data directory; throughput is the median "
            f"of {results.get('rounds', 1)} rounds."
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
    return lines


# The software path's targets (docs/performance.md): on tmpfs and on the disk.
TARGET_TMPFS_DOWNLOAD_MBPS = 1500
TARGET_CPU_S_PER_GIB = 1.2
TARGET_DISK_DOWN_UP = 0.9


def software_path_table(sp: dict[str, Any]) -> list[str]:
    """The software path: throughput and CPU seconds per GiB, Dataerai beside rclone, on
    tmpfs and on the disk, and each target with its verdict."""
    first = next(iter(sp.values()))
    size = first["bytes"]
    label = f"{size // GiB} GiB" if size >= GiB else f"{size // MiB} MiB"
    dirs = ", ".join(f"{place} `{r['dir']}`" for place, r in sp.items())
    lines = [
        (
            f"Software path ({label}; the server's data, the source and the destination in one "
            f"directory: {dirs}): medians of {len(first['upload']['rounds'])} rounds; CPU "
            "seconds per GiB from /proc (utime + stime); rclone's CPU is its client plus its "
            "webdav server. The load average (1 min) says how busy the machine was: "
            "throughput suffers from other work, CPU seconds less (contention inflates them "
            "too)."
        ),
        "",
        *table_head(
            "place | path | direction | MB/s | vs rclone | daemon CPU-s/GiB | server CPU-s/GiB "
            "| total CPU-s/GiB | load (max)"
        ),
    ]
    for place, r in sp.items():
        rc = r["rclone"]
        for direction in ("upload", "download"):
            p = rc[direction]
            lines.append(
                table_row(
                    place,
                    "rclone webdav (peer)",
                    direction,
                    f"{p['mbps']:.0f}",
                    "1.00",
                    "",
                    "",
                    f"{p['cpu_s_per_gib']:.2f}",
                    f"{p['load_1m']:.1f} ({p['load_1m_max']:.1f})",
                )
            )
        for direction in ("upload", "download"):
            d = r[direction]
            lines.append(
                table_row(
                    place,
                    "Dataerai (SDK → daemon → server)",
                    direction,
                    f"{d['mbps']:.0f}",
                    f"{d['mbps'] / rc[direction]['mbps']:.2f}",
                    f"{d['daemon_cpu_s_per_gib']:.2f}",
                    f"{d['server_cpu_s_per_gib']:.2f}",
                    f"{d['cpu_s_per_gib']:.2f}",
                    f"{d['load_1m']:.1f} ({d['load_1m_max']:.1f})",
                )
            )
    lines += [
        "",
        "Targets (a busy machine misses the throughput ones; rerun on a quiet one):",
        "",
    ]
    lines += software_path_targets(sp)
    lines.append("")
    return lines


def software_path_targets(sp: dict[str, Any]) -> list[str]:
    """One line per target of the software path, with the figure and whether it is met."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = []
    for place, r in sp.items():
        up, down, rc = r["upload"], r["download"], r["rclone"]
        ratio = down["mbps"] / rc["download"]["mbps"]
        lines.append(
            f"- {place}: download {down['mbps']:.0f} MB/s ≥ rclone's "
            f"{rc['download']['mbps']:.0f} ({ratio:.2f}×): {verdict(ratio >= 1.0)}"
        )
        down_up = down["mbps"] / up["mbps"]
        if place == "disk":
            lines.append(
                f"- disk: download / upload {down_up:.2f} ≥ {TARGET_DISK_DOWN_UP}: "
                f"{verdict(down_up >= TARGET_DISK_DOWN_UP)}" + disk_traffic(up, down)
            )
        else:
            lines.append(f"- {place}: download / upload {down_up:.2f}")
        if place == "tmpfs":
            lines.append(
                f"- tmpfs: download {down['mbps']:.0f} MB/s ≥ {TARGET_TMPFS_DOWNLOAD_MBPS}: "
                f"{verdict(down['mbps'] >= TARGET_TMPFS_DOWNLOAD_MBPS)}"
            )
            for direction, d in (("upload", up), ("download", down)):
                lines.append(
                    f"- tmpfs: {direction} {d['cpu_s_per_gib']:.2f} CPU-s/GiB (daemon + "
                    f"server) ≤ {TARGET_CPU_S_PER_GIB}: "
                    f"{verdict(d['cpu_s_per_gib'] <= TARGET_CPU_S_PER_GIB)}"
                )
    return lines


def disk_traffic(up: dict[str, Any], down: dict[str, Any]) -> str:
    """What the disk read and wrote during each direction, page cache dropped first."""
    if "disk_read_mib" not in up or "disk_read_mib" not in down:
        return ""
    return (
        f" (page cache dropped before each transfer; the disk read / wrote "
        f"{up['disk_read_mib']:.0f} / {up['disk_written_mib']:.0f} MiB for the upload, "
        f"{down['disk_read_mib']:.0f} / {down['disk_written_mib']:.0f} MiB for the download)"
    )


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        (
            f"Run {results['started_at']} on {m['cpus']} CPUs, {m['mem_gib']:.0f} GiB RAM, "
            f"{m['kernel']}."
        ),
        "",
    ]
    if results["configs"]:
        lines += disk_tables(results)
        lines.append("")
    if "software_path" in results:
        lines += software_path_table(results["software_path"])
    if "peak_rss" in results:
        p = results["peak_rss"]
        verdict = "within" if p["within_limit"] else "OVER"
        lines += [
            (
                f"Daemon peak RSS over one {p['bytes'] // GiB} GiB upload and download in "
                f"{p['chunk_mib']} MiB chunks (a daemon of its own): "
                f"{p['daemon_peak_kib'] / 1024:.0f} MiB ({verdict} the {p['limit_mib']} MiB "
                f"bound); server {p['server_peak_kib'] / 1024:.0f} MiB."
            ),
            "",
        ]
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
        "--configs",
        default="embedded,software-path",
        help=(
            "comma-separated configurations to measure: embedded (SQLite + local directory on "
            "the disk), software-path (tmpfs, CPU seconds per GiB beside rclone), scaleout "
            "(PostgreSQL + S3); e.g. --configs software-path for a quick CPU check"
        ),
    )
    ap.add_argument(
        "--scaleout",
        action="store_true",
        help="also measure PostgreSQL + S3 (needs bench/scaleout.py backends)",
    )
    ap.add_argument(
        "--tmpfs",
        default="/dev/shm",
        help="a tmpfs directory for the software-path configuration",
    )
    ap.add_argument(
        "--software-path-places",
        default="tmpfs,disk",
        help=(
            "where the software path is measured: tmpfs (--tmpfs), disk (--work, for the "
            "download / upload ratio on the disk), or both (default)"
        ),
    )
    ap.add_argument(
        "--software-path-mib",
        type=int,
        default=1024,
        help="size of the software-path file in MiB",
    )
    ap.add_argument(
        "--rss-gib",
        type=int,
        default=4,
        help="size of the peak-RSS transfer (64 MiB chunks, own daemon; 0: skip)",
    )
    args = ap.parse_args()
    configs = {c.strip() for c in args.configs.split(",") if c.strip()}
    if args.scaleout:
        configs.add("scaleout")
    unknown = configs - {"embedded", "software-path", "scaleout"}
    if unknown:
        ap.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
    bad_places = {
        p.strip() for p in args.software_path_places.split(",") if p.strip()
    } - {"tmpfs", "disk"}
    if bad_places:
        ap.error(f"unknown software-path place(s): {', '.join(sorted(bad_places))}")

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
    bin_dir = Path(args.bin_dir)
    try:
        if "software-path" in configs:
            where = {"tmpfs": Path(args.tmpfs), "disk": work}
            places = [
                p.strip() for p in args.software_path_places.split(",") if p.strip()
            ]
            bench_software_path(
                bin_dir,
                [(p, where[p]) for p in places],
                args.software_path_mib * MiB,
                args.rounds,
                results,
            )
        files: dict[int, Path] = {}
        if configs & {"embedded", "scaleout"}:
            for g in [int(x) for x in args.sizes_gib.split(",") if x]:
                p = work / f"payload-{g}GiB.bin"
                log(f"writing {g} GiB of random data")
                make_random_file(p, g * GiB)
                files[g * GiB] = p
            results["baselines"]["blake3_mbps"] = blake3_speed(
                max(files.items())[1], bin_dir
            )
            log(f"blake3: {results['baselines']['blake3_mbps']:.0f} MB/s")
        if "embedded" in configs:
            env = Env(bin_dir, work)
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
        if "scaleout" in configs:
            sys.path.insert(0, str(REPO / "bench"))
            import scaleout  # type: ignore

            with scaleout.backends(work) as server_args:
                env = Env(bin_dir, work, server_args=server_args)
                try:
                    bench_config(
                        "scaleout", env, files, args.small_files, args.rounds, results
                    )
                finally:
                    env.stop()
        if args.rss_gib > 0:
            bench_peak_rss(bin_dir, work, args.rss_gib * GiB, results)
    finally:
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        if results["configs"] or "software_path" in results:
            (out / "results.md").write_text(markdown(results))
        shutil.rmtree(work, ignore_errors=True)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
