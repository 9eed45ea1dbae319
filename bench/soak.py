#!/usr/bin/env python3
"""`make soak`: Dataerai under mixed load while its processes are killed, then checked.

For `--duration-s` seconds (`SOAK_S`, default 600) on each backend (`--backend`: `embedded`
= SQLite + local directory, `scaleout` = PostgreSQL + S3, `both` = one after the other):

- `--uploaders` (50) threads each upload one fresh file of random bytes after another
  (0.1-64 MiB, log-uniform sizes, chunk size 64 MiB, 16 MiB or 4 MiB) through
  SDK -> daemon -> server; the total upload rate is capped by `--max-upload-mbps`
  (`SOAK_UPLOAD_MBPS`) so a run fits on the disk;
- metadata threads do `--metadata-rate` (200) get_metadata / set_metadata calls per second;
- at random moments the server and the daemon are each killed with SIGKILL and restarted a few
  seconds later (and on PostgreSQL + S3 the database is crash-stopped and restarted once).

An upload cut off by a daemon kill is followed to its end with `wait_transfer` once the
restarted daemon resumed it. Then the checks: every acknowledged upload downloads with the same
SHA-256 as the bytes written; every acknowledged metadata write is still there; the daemon's
journal holds no unfinished transfer; the server holds no open upload session, no pending
content version and no reserved bytes; neither log has a panic. The report goes to
`docs/reliability.md` (`--report`); the exit status is 1 when a check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools

import soak_report
from dataerai import (
    DaemonError,
    DaemonTimeoutError,
    DaemonUnavailableError,
    DataeraiClient,
)
from soak_cluster import REPO, Cluster, ScaleoutBackends, rss_kib

MiB = 1 << 20
T = TypeVar("T")
# Transfer states after which the daemon does nothing more with a transfer.
FINISHED = {"completed", "failed", "cancelled"}


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, DaemonError):
        return exc.code
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    return type(exc).__name__


# ---------------------------------------------------------------------- what happened, when


@dataclass
class Op:
    t: float  # seconds since the load started, when the call began
    kind: str
    latency_s: float
    code: str | None  # None: success


@dataclass
class Ack:
    """An upload the SDK reported as done: it must come back byte for byte."""

    asset_id: str
    content_id: str
    size: int
    sha256: str
    how: str  # "upload" or "followed" (finished by a restarted daemon)
    checked: str = ""  # "" (not yet), "during" (then deleted) or "end"


@dataclass
class Record:
    t0: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ops: list[Op] = field(default_factory=list)
    # (t, "server" | "daemon" | "database", "kill" | "up")
    events: list[tuple[float, str, str]] = field(default_factory=list)
    # (t, server RSS KiB, daemon RSS KiB, uploads in flight)
    rss: list[tuple[float, int | None, int | None, int]] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    lost_uploads: list[str] = field(default_factory=list)  # cut off, never found again
    # Acknowledged uploads that came back wrong.
    bad: list[str] = field(default_factory=list)
    empty_assets: int = 0  # assets without a complete version at the end
    uploaded_bytes: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def op(self, kind: str, started: float, exc: BaseException | None = None) -> None:
        op = Op(
            started,
            kind,
            self.now() - started,
            None if exc is None else error_code(exc),
        )
        with self.lock:
            self.ops.append(op)

    def event(self, target: str, what: str) -> None:
        with self.lock:
            self.events.append((self.now(), target, what))
        log(f"{target} {what}")

    def timed(self, kind: str, fn: Callable[[], T]) -> T:
        """Run and record one call; exceptions are recorded, then raised again."""
        started = self.now()
        try:
            result = fn()
        except (DaemonError, ConnectionError, OSError) as exc:
            self.op(kind, started, exc)
            raise
        self.op(kind, started)
        return result


# ---------------------------------------------------------------------- load


class UploadBudget:
    """Caps the total upload rate (bytes are taken before a file is written)."""

    def __init__(self, mbps: float) -> None:
        self.rate = mbps * 1e6 if mbps > 0 else math.inf
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def take(self, nbytes: int, stop: threading.Event) -> bool:
        with self.lock:
            start = max(self.next_free, time.monotonic())
            self.next_free = start + nbytes / self.rate
        while not stop.is_set():
            wait = start - time.monotonic()
            if wait <= 0:
                return True
            stop.wait(min(wait, 0.5))
        return False


def write_random_file(path: Path, size: int) -> str:
    """Fresh random bytes (never deduplicated); their SHA-256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MiB))
            h.update(block)
            f.write(block)
            left -= len(block)
    return h.hexdigest()


class Load:
    def __init__(
        self, args: argparse.Namespace, cluster: Cluster, rec: Record, owner: str
    ) -> None:
        self.args = args
        self.cluster = cluster
        self.rec = rec
        self.owner = owner
        self.stop = threading.Event()
        self.budget = UploadBudget(args.max_upload_mbps)
        self.files = cluster.work / "files"
        self.files.mkdir(exist_ok=True)
        # Metadata targets: one asset per metadata thread (its writes are its own, so the
        # last acknowledged value can be checked at the end).
        self.meta_assets: list[str] = []
        self.meta_acked: list[int] = []
        self.meta_tried: list[int] = []
        # upload() calls under way (the follow-up of a cut-off one included)
        self.in_flight = 0
        # One client per kind of work, each shared by its threads (the SDK is thread-safe):
        # every client receives every transfer notification, so 60 clients would cost the
        # harness 60 times the parsing for nothing.
        self.upload_client = cluster.client()
        self.meta_client = cluster.client(request_timeout_s=30)
        self.reaper_client = cluster.client()

    def close(self) -> None:
        for c in (self.upload_client, self.meta_client, self.reaper_client):
            c.close()

    # -- uploads

    def uploader(self, worker: int) -> None:
        rng = random.Random(self.args.seed * 1000 + worker)
        client = self.upload_client
        n = 0
        while not self.stop.is_set():
            # Log-uniform between the bounds: as many 0.1-1 MiB files as 6.4-64 MiB ones.
            size = int(math.exp(rng.uniform(math.log(0.1 * MiB), math.log(64 * MiB))))
            if not self.budget.take(size, self.stop) or not self.room_for(size):
                break
            path = self.files / f"w{worker:02d}-{n:05d}.bin"
            n += 1
            sha = write_random_file(path, size)
            chunk_mb = rng.choice([None, 16, 4])
            seen: dict[str, str] = {}

            def progress(ev: Any, seen: dict[str, str] = seen) -> None:
                seen.setdefault("transfer_id", ev.transfer_id)

            started = self.rec.now()
            with self.rec.lock:
                self.in_flight += 1
            try:
                res = client.upload(
                    str(path),
                    title=path.name,
                    owner_type="project",
                    owner_id=self.owner,
                    metadata={"sha256": sha},
                    chunk_size_mb=chunk_mb,
                    on_progress=progress,
                    transfer_timeout_s=self.args.transfer_timeout_s,
                )
            except DaemonUnavailableError as exc:
                self.rec.op("upload", started, exc)  # no daemon to ask: nothing started
            except (DaemonTimeoutError, ConnectionError) as exc:
                # The transfer may live on in the daemon (resumed after a restart).
                self.rec.op("upload", started, exc)
                self.follow(client, path, size, sha, seen.get("transfer_id"))
            except (DaemonError, OSError) as exc:
                self.rec.op("upload", started, exc)
            else:
                self.rec.op("upload", started)
                self.acked(Ack(res.asset_id, res.content_id, size, sha, "upload"))
            with self.rec.lock:
                self.in_flight -= 1
            path.unlink(missing_ok=True)

    def room_for(self, size: int) -> bool:
        """Back-pressure from the reaper: wait while the acknowledged uploads not yet checked
        and deleted exceed twice `--keep-gb` (False: the load is over)."""
        limit = 2 * self.args.keep_gb * 1e9
        while not self.stop.is_set():
            with self.rec.lock:
                stored = sum(
                    a.size for a in self.rec.acks if a.checked in ("", "claimed")
                )
            if stored + size <= limit:
                return True
            self.stop.wait(0.2)
        return False

    def acked(self, ack: Ack) -> None:
        with self.rec.lock:
            self.rec.acks.append(ack)
            self.rec.uploaded_bytes += ack.size

    def follow(
        self,
        client: DataeraiClient,
        path: Path,
        size: int,
        sha: str,
        transfer_id: str | None,
    ) -> None:
        """Wait for an upload cut off from its caller to finish in the (restarted) daemon."""
        deadline = time.monotonic() + self.args.transfer_timeout_s
        while time.monotonic() < deadline:
            try:
                if transfer_id is None:
                    found = [
                        t for t in client.list_transfers() if t.local_path == str(path)
                    ]
                    if not found:
                        # The daemon never journaled it: nothing to follow.
                        with self.rec.lock:
                            self.rec.lost_uploads.append(path.name)
                        return
                    transfer_id = found[-1].transfer_id
                started = self.rec.now()
                try:
                    res = client.wait_transfer(
                        transfer_id, timeout_s=max(1.0, deadline - time.monotonic())
                    )
                except (DaemonError, ConnectionError) as exc:
                    self.rec.op("upload.follow", started, exc)
                    raise
                self.rec.op("upload.follow", started)
                self.acked(Ack(res.asset_id, res.content_id, size, sha, "followed"))  # type: ignore[union-attr]
                return
            except (ConnectionError, DaemonTimeoutError):
                time.sleep(0.5)  # the daemon is down; try again once it is back
            except DaemonError:
                return  # the transfer failed for good: nothing acknowledged

    # -- metadata

    def metadata_worker(self, worker: int, rate: float) -> None:
        rng = random.Random(self.args.seed * 7919 + worker)
        client = self.meta_client
        asset = self.meta_assets[worker]
        period = 1.0 / rate
        due = time.monotonic()
        while not self.stop.is_set():
            due += period
            pause = due - time.monotonic()
            if pause > 0:
                self.stop.wait(pause)
            elif pause < -1:
                due = time.monotonic()  # fell behind (outage): do not burst to catch up
            try:
                roll = rng.random()
                if roll < 0.5:
                    n = self.meta_tried[worker] + 1
                    self.meta_tried[worker] = n
                    self.rec.timed(
                        "set_metadata",
                        lambda n=n: client.set_metadata(asset, metadata={"soak_n": n}),
                    )
                    self.meta_acked[worker] = n
                elif roll < 0.8 or not self.rec.acks:
                    self.rec.timed("get_metadata", lambda: client.get_metadata(asset))
                else:
                    # A recent upload: the reaper deletes only the oldest ones.
                    other = rng.choice(self.rec.acks[-20:]).asset_id
                    self.rec.timed(
                        "get_metadata", lambda other=other: client.get_metadata(other)
                    )
            except (DaemonError, ConnectionError, OSError):
                pass  # recorded; the schedule paces the next attempt

    # -- keeping the disk bounded

    def reaper(self, worker: int) -> None:
        """Keep at most `--keep-gb` of acknowledged uploads on the server: check the oldest
        (download + SHA-256, as at the end) and delete it (REST `DELETE /assets/{id}`).
        Transient errors (a process is down) are retried; anything else is a failure."""
        keep = self.args.keep_gb * 1e9
        dest = self.cluster.work / f"reaper-{worker}"
        transient = {"ERR_SERVER_UNREACHABLE", "ERR_DAEMON_UNAVAILABLE", "ERR_TIMEOUT"}
        while not self.stop.is_set():
            with self.rec.lock:
                kept = [a for a in self.rec.acks if a.checked in ("", "claimed")]
                ack = None
                if sum(a.size for a in kept) > keep:
                    ack = next((a for a in kept if not a.checked), None)
                if ack is not None:
                    ack.checked = "claimed"
            if ack is None:
                self.stop.wait(0.5)
                continue
            try:
                wrong = check_download(
                    self.reaper_client, self.rec, ack, dest, "download (check)"
                )
                if wrong is None:
                    self.delete(ack.asset_id)
            except (DaemonError, ConnectionError, OSError) as exc:
                code = error_code(exc)
                refused = isinstance(exc, urllib.error.HTTPError) and exc.code < 500
                if not refused and (
                    code in transient or isinstance(exc, (ConnectionError, OSError))
                ):
                    with self.rec.lock:
                        ack.checked = ""  # again once the process is back
                    time.sleep(1)
                    continue
                wrong = f"{ack.asset_id}: {code} {exc}"
            with self.rec.lock:
                ack.checked = "during"
                if wrong:
                    self.rec.bad.append(wrong)

    def delete(self, asset_id: str) -> None:
        """Delete a checked asset, retrying through outages. A retry may find it gone: the
        server can have deleted it before it was killed, without answering."""
        retried = False
        while True:
            try:
                self.rec.timed("delete", lambda: self.cluster.delete_asset(asset_id))
                return
            except urllib.error.HTTPError as exc:
                if exc.code == 404 and retried:
                    return
                if exc.code < 500:
                    raise
            except OSError:
                pass
            retried = True
            time.sleep(1)

    # -- process killer and RSS sampler

    def chaos(self, plan: list[tuple[float, str]]) -> None:
        for at, target in plan:
            if self.stop.wait(max(0.0, at - self.rec.now())):
                return
            rng = random.Random(f"{self.args.seed}-{at}")
            processes = {
                "server": (self.cluster.kill_server, self.cluster.start_server),
                "daemon": (self.cluster.kill_daemon, self.cluster.start_daemon),
            }
            if target in processes:
                kill, start = processes[target]
                self.rec.event(target, "kill")
                kill()
                time.sleep(rng.uniform(1, 5))
                start()
                self.rec.event(target, "up")
            else:
                assert self.cluster.scaleout is not None
                self.rec.event("database", "kill")
                self.cluster.scaleout.restart_pg()
                self.rec.event("database", "up")

    def sampler(self) -> None:
        while not self.stop.wait(1.0):
            server, daemon = self.cluster.pids()
            self.rec.rss.append(
                (self.rec.now(), rss_kib(server), rss_kib(daemon), self.in_flight)
            )


def chaos_plan(
    duration: float, scaleout: bool, rng: random.Random
) -> list[tuple[float, str]]:
    """When to kill what: each process about every 2.5 minutes (at least once), at random
    moments between 10 % and 80 % of the run, at least 20 s apart so every outage's effects can
    be told apart (fewer kills when the run is too short for that)."""
    each = max(1, round(duration / 150))
    targets = ["server"] * each + ["daemon"] * each + (["database"] if scaleout else [])
    lo, hi = 0.1 * duration, 0.8 * duration
    gap = 20.0
    while len(targets) > 1 and (len(targets) - 1) * gap > hi - lo:
        targets.pop(0 if targets.count("server") >= targets.count("daemon") else -1)
    for _ in range(10000):
        times = sorted(rng.uniform(lo, hi) for _ in targets)
        if all(b - a >= gap for a, b in itertools.pairwise(times)):
            break
    else:
        times = [lo + i * gap for i in range(len(targets))]
    rng.shuffle(targets)
    return list(zip(times, targets))


# ---------------------------------------------------------------------- checks after the load


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def settle_transfers(
    cluster: Cluster, timeout_s: float
) -> tuple[dict[str, int], list[str]]:
    """Wait until the daemon has no unfinished transfer; count transfers by state."""
    deadline = time.monotonic() + timeout_s
    with cluster.client() as c:
        while True:
            transfers = c.list_transfers()
            open_ = [t for t in transfers if t.state not in FINISHED]
            if not open_ or time.monotonic() > deadline:
                break
            time.sleep(2)
        states: dict[str, int] = {}
        for t in transfers:
            states[t.state] = states.get(t.state, 0) + 1
        failures = {}
        for t in transfers:
            if t.state == "failed":
                code = t.error.code if t.error is not None else "?"
                failures[code] = failures.get(code, 0) + 1
    return states, [f"{t.transfer_id} {t.state}" for t in open_] + [
        f"failed with {code}: {n}" for code, n in sorted(failures.items())
    ]


def check_download(
    client: DataeraiClient, rec: Record, ack: Ack, dest: Path, kind: str
) -> str | None:
    """Download one acknowledged upload's content version and compare its SHA-256: None when
    identical, else what differs. Errors of the download itself are raised."""
    try:
        res = rec.timed(
            kind,
            lambda: client.download(ack.asset_id, str(dest), content_id=ack.content_id),
        )
        f = res.files[0]
        h = hashlib.sha256()
        with open(f.local_path, "rb") as fh:
            while block := fh.read(4 * MiB):
                h.update(block)
        if f.size != ack.size or h.hexdigest() != ack.sha256:
            return f"{ack.asset_id}: {f.size} B (expected {ack.size}), sha256 {h.hexdigest()[:16]}…"
        return None
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def verify_downloads(cluster: Cluster, rec: Record, threads: int) -> list[str]:
    """Download every acknowledged upload not checked yet; the SHA-256 must match. Returns the
    failures (mismatches and downloads that failed: after the load everything is up)."""
    bad: list[str] = []
    todo = [(i, a) for i, a in enumerate(rec.acks) if not a.checked]
    lock = threading.Lock()
    root = cluster.work / "verify"

    def worker() -> None:
        with cluster.client() as c:
            while True:
                with lock:
                    if not todo:
                        return
                    i, ack = todo.pop()
                try:
                    wrong = check_download(
                        c, rec, ack, root / str(i), "download (final check)"
                    )
                except (DaemonError, ConnectionError, OSError) as exc:
                    wrong = f"{ack.asset_id}: {error_code(exc)} {exc}"
                with lock:
                    ack.checked = "end"
                    if wrong:
                        bad.append(wrong)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return bad


def run_checks(
    cluster: Cluster, rec: Record, load: Load, args: argparse.Namespace
) -> list[Check]:
    checks: list[Check] = []
    log("waiting for the daemon's transfers to finish")
    states, unfinished = settle_transfers(cluster, args.settle_timeout_s)
    still_open = [u for u in unfinished if not u.startswith("failed")]
    checks.append(
        Check(
            "daemon journal: no unfinished transfer",
            not still_open,
            ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
            + ("; " + "; ".join(unfinished[:10]) if unfinished else ""),
        )
    )

    during = sum(1 for a in rec.acks if a.checked == "during")
    log(f"downloading {len(rec.acks) - during} acknowledged uploads")
    bad = rec.bad + verify_downloads(cluster, rec, args.verify_threads)
    checks.append(
        Check(
            "every acknowledged upload downloads byte-identical (SHA-256)",
            not bad and bool(rec.acks),
            f"{len(rec.acks) - len(bad)} of {len(rec.acks)} identical ({during} checked during "
            f"the load, then deleted to free the disk; {len(rec.acks) - during} after it)"
            + ("; " + "; ".join(bad[:10]) if bad else ""),
        )
    )

    with cluster.client() as c:
        stale = []
        for w, asset in enumerate(load.meta_assets):
            n = c.get_metadata(asset).metadata.get("soak_n", 0)
            if not load.meta_acked[w] <= n <= load.meta_tried[w]:
                stale.append(f"{asset}: soak_n={n}, acknowledged {load.meta_acked[w]}")
    checks.append(
        Check(
            "every acknowledged metadata write is kept",
            not stale,
            f"{len(load.meta_assets)} assets, {sum(load.meta_acked)} acknowledged writes"
            + ("; " + "; ".join(stale) if stale else ""),
        )
    )

    open_uploads = cluster.query(
        "SELECT u.id, u.asset_id, u.created_at FROM uploads u WHERE u.status = 'open' ORDER BY u.created_at"
    )
    checks.append(
        Check(
            "server: no open upload session",
            not open_uploads,
            f"{len(open_uploads)} open"
            + (
                "; " + "; ".join(" ".join(map(str, r)) for r in open_uploads[:10])
                if open_uploads
                else ""
            ),
        )
    )
    pending = cluster.query(
        "SELECT count(*), coalesce(sum(total_bytes), 0) FROM contents WHERE status = 'pending'"
    )
    reserved = cluster.query(
        "SELECT owner_type, owner_id, reserved_bytes FROM allocations WHERE reserved_bytes <> 0"
    )
    checks.append(
        Check(
            "server: no pending content version, every allocation's reserved bytes back to 0",
            int(pending[0][0]) == 0 and not reserved,
            f"{pending[0][0]} pending versions ({pending[0][1]} B); "
            + (
                "; ".join(f"{r[0]} {r[1]}: {r[2]} B reserved" for r in reserved)
                if reserved
                else "reserved_bytes = 0 everywhere"
            ),
        )
    )

    # Not a check of its own (it holds no bytes), but a leftover all the same: assets that
    # never got a complete version (created, then the upload never really started).
    empty = cluster.query(
        "SELECT count(*) FROM assets a WHERE NOT EXISTS (SELECT 1 FROM contents c "
        "WHERE c.asset_id = a.id AND c.status = 'complete')"
    )
    rec.empty_assets = int(empty[0][0])
    panics = cluster.log_lines("server.log", r"panicked|PANIC") + cluster.log_lines(
        "daemon.log", r"panicked|PANIC"
    )
    checks.append(
        Check(
            "no panic in the server's or the daemon's log",
            not panics,
            "; ".join(panics[:5]) or "none",
        )
    )
    if rec.lost_uploads:
        log(
            f"uploads cut off by a daemon kill and not in its journal: {rec.lost_uploads}"
        )
    return checks


# ---------------------------------------------------------------------- one run


def soak_backend(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    work = Path(args.work) / backend
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    scaleout = ScaleoutBackends(work / "backends") if backend == "scaleout" else None
    cluster = Cluster(Path(args.bin_dir), work, scaleout)
    load: Load | None = None
    try:
        cluster.start_server()
        cluster.sign_in("soak@example.org")
        cluster.start_daemon()
        rec = Record()
        with cluster.client() as c:
            project = c.create_project(f"soak {backend}").project_id
            load = Load(args, cluster, rec, project)
            # 4 calls/s per thread: the offered rate holds while calls take up to 250 ms
            # on average (a metadata write waits behind the uploads' chunk records).
            meta_threads = max(1, math.ceil(args.metadata_rate / 4))
            for i in range(meta_threads):
                p = load.files / f"meta-{i}.txt"
                p.write_text(f"metadata target {i}\n")
                load.meta_assets.append(
                    c.upload(
                        str(p), title=p.name, owner_type="project", owner_id=project
                    ).asset_id
                )
        load.meta_acked = [0] * meta_threads
        load.meta_tried = [0] * meta_threads
        plan = chaos_plan(
            args.duration_s, scaleout is not None, random.Random(args.seed)
        )
        log(
            f"{backend}: {args.duration_s:.0f} s, {args.uploaders} uploaders, "
            f"{args.metadata_rate}/s metadata on {meta_threads} threads; kills at "
            + ", ".join(f"{t:.0f}s {w}" for t, w in plan)
        )
        rec.t0 = time.monotonic()
        threads = [
            threading.Thread(target=load.uploader, args=(i,), daemon=True)
            for i in range(args.uploaders)
        ]
        threads += [
            threading.Thread(
                target=load.metadata_worker,
                args=(i, args.metadata_rate / meta_threads),
                daemon=True,
            )
            for i in range(meta_threads)
        ]
        chaos = threading.Thread(target=load.chaos, args=(plan,), daemon=True)
        sampler = threading.Thread(target=load.sampler, daemon=True)
        reapers = [
            threading.Thread(target=load.reaper, args=(i,), daemon=True)
            for i in range(args.verify_threads)
        ]
        for t in [*threads, chaos, sampler, *reapers]:
            t.start()
        next_log = 30.0
        while rec.now() < args.duration_s:
            time.sleep(1)
            if rec.now() >= next_log:
                next_log += 30
                log(
                    f"{rec.now():.0f}s: {len(rec.ops)} calls, {len(rec.acks)} uploads acknowledged"
                )
        log("load stops; finishing the uploads in flight")
        load.stop.set()
        chaos.join()
        load_end = rec.now()
        for t in threads:
            t.join()
        sampler.join()
        for t in reapers:
            t.join()
        drained = rec.now()
        checks = run_checks(cluster, rec, load, args)
        load.close()
        backoffs = [
            float(m.group(1))
            for line in cluster.log_lines("daemon.log", r"retrying in")
            if (m := re.search(r"retrying in ([0-9.]+)s", line))
        ]
        server_errors = cluster.log_lines("server.log", r"\bERROR\b")
        return {
            "backoffs": backoffs,
            "server_errors": server_errors,
            "backend": backend,
            "record": rec,
            "checks": checks,
            "plan": plan,
            "load_s": load_end,
            "drain_s": drained - load_end,
            "metadata_threads": meta_threads,
        }
    finally:
        if load is not None:
            load.stop.set()  # a chaos thread must not restart what is stopped here
        cluster.stop()
        # The logs outlive the data: target/soak-logs/<backend>/ (for a failed check's report).
        logs = Path(args.work).parent / "soak-logs" / backend
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        for name in ("server.log", "daemon.log"):
            if (work / name).exists():
                shutil.copy(work / name, logs / name)
        if scaleout is not None:
            scaleout.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def binary_version(bin_dir: Path) -> str:
    try:
        return subprocess.run(
            [str(bin_dir / "dataerai"), "--version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--duration-s", type=float, default=float(os.environ.get("SOAK_S", "600"))
    )
    ap.add_argument(
        "--backend",
        choices=["embedded", "scaleout", "both"],
        default=os.environ.get("SOAK_BACKEND", "both"),
    )
    ap.add_argument(
        "--bin-dir",
        default=os.environ.get("DATAERAI_BIN_DIR", str(REPO / "target" / "release")),
    )
    ap.add_argument("--work", default=str(REPO / "target" / "soak"))
    ap.add_argument("--report", default=str(REPO / "docs" / "reliability.md"))
    ap.add_argument("--uploaders", type=int, default=50)
    ap.add_argument("--metadata-rate", type=float, default=200)
    ap.add_argument(
        "--max-upload-mbps",
        type=float,
        default=float(os.environ.get("SOAK_UPLOAD_MBPS", "0")),
        help="cap on the total upload rate (MB/s; 0: none)",
    )
    ap.add_argument(
        "--keep-gb",
        type=float,
        default=float(os.environ.get("SOAK_KEEP_GB", "4")),
        help="acknowledged uploads kept on the server; older ones are checked and deleted "
        "during the load (bounds the disk used)",
    )
    ap.add_argument("--transfer-timeout-s", type=float, default=600)
    ap.add_argument("--settle-timeout-s", type=float, default=600)
    ap.add_argument("--verify-threads", type=int, default=4)
    ap.add_argument(
        "--seed",
        type=int,
        default=int(os.environ.get("SOAK_SEED", "0")) or int(time.time()),
    )
    ap.add_argument(
        "--keep", action="store_true", help="keep target/soak (data, logs) afterwards"
    )
    args = ap.parse_args()

    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the server, daemon and backends stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backends = ["embedded", "scaleout"] if args.backend == "both" else [args.backend]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = []
    for backend in backends:
        results.append(soak_backend(args, backend))
    machine = {
        "cpus": os.cpu_count(),
        "mem_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30),
        "kernel": platform.release(),
        "version": binary_version(Path(args.bin_dir)),
    }
    text = soak_report.markdown(args, started, machine, results)
    Path(args.report).write_text(text)
    failed = [(r["backend"], c) for r in results for c in r["checks"] if not c.ok]
    for r in results:
        for c in r["checks"]:
            log(f"{r['backend']}: {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
    log(f"report written to {args.report}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
