#!/usr/bin/env python3
"""Dataerai SDK tour: a folder as one asset, many small files at once, content versions and
dedup, and controlling a running transfer (pause, resume, wait).

Run it like the other examples (examples/README.md): ``python examples/folders_and_control.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

try:
    from dataerai import DaemonError, DaemonTimeoutError, DataeraiClient, ProgressEvent
except ImportError:  # running from a checkout without `pip install -e sdk/python`
    sys.path.insert(
        0, str(Path(__file__).resolve().parents[1] / "sdk" / "python" / "src")
    )
    from dataerai import DaemonError, DaemonTimeoutError, DataeraiClient, ProgressEvent


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def main() -> None:
    # No `with` block this time: connect() here, close() in `finally` (which also stops a
    # daemon this client started).
    client = DataeraiClient(
        binary_path=os.environ.get("DATAERAI_BINARY") or None
    ).connect()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            project = client.create_project(f"tour-{time.strftime('%Y%m%d-%H%M%S')}")
            owner = {"owner_type": "project", "owner_id": project.project_id}

            step("1. A folder becomes one asset")
            run = tmp / "run_042"
            (run / "raw").mkdir(parents=True)
            for i in range(3):
                (run / "raw" / f"frame_{i:03d}.bin").write_bytes(os.urandom(200_000))
            (run / "summary.json").write_text('{"frames": 3}\n')
            up = client.upload(run, title="Run 42", **owner)
            print(
                f"   asset {up.asset_id}: {up.file_count} files, {up.total_bytes} bytes"
            )
            for f in up.files:
                print(f"     {f.name} ({f.size} bytes)")
            tree = client.download(up.asset_id, tmp / "restored")
            print(
                f"   restored {[f.filename for f in tree.files]} under {tmp / 'restored'}"
            )

            step("2. Many small files at once (one missing on purpose)")
            frames = tmp / "frames"
            frames.mkdir()
            items = []
            for i in range(20):
                path = frames / f"shot_{i:02d}.bin"
                if i != 7:
                    path.write_bytes(os.urandom(4096))
                items.append({"local_path": path, "title": path.name, **owner})
            started = time.monotonic()
            results = client.upload_many(items, concurrency=8)
            elapsed = time.monotonic() - started
            ok = [r for r in results if r.ok]
            print(f"   {len(ok)}/{len(results)} uploaded in {elapsed:.2f} s")
            for r in results:
                if r.error is not None:
                    print(
                        f"   item {r.index} ({r.local_path.name if r.local_path else '?'}): {r.error}"
                    )

            step("3. A new version, and dedup of identical bytes")
            sample = tmp / "calibration.dat"
            sample.write_bytes(os.urandom(1_000_000))
            v1 = client.upload(sample, title="Calibration", **owner)
            sample.write_bytes(os.urandom(900_000))
            v2 = client.upload_version(v1.asset_id, sample)
            for v in client.list_versions(v1.asset_id):
                print(
                    f"   version {v.content_id}: {v.total_bytes} bytes, {v.completed_at}"
                )
            copy = client.upload(sample, title="Calibration (copy)", **owner)
            print(
                f"   same bytes again: deduplicated={copy.deduplicated}, "
                f"bytes sent={copy.bytes_sent} (v2 sent {v2.bytes_sent})"
            )

            step("4. Control a running transfer")
            big = tmp / "big.bin"
            with open(
                big, "wb"
            ) as f:  # sparse: cheap to create, real bytes on the wire
                f.write(os.urandom(64))
                f.truncate(256 * 1024 * 1024)
            try:
                tid = client.upload(
                    big, title="Big", chunk_size_mb=1, transfer_timeout_s=0, **owner
                ).transfer_id  # only on a very fast machine
            except DaemonTimeoutError as err:
                tid = (
                    err.transfer_id
                )  # the usual case: the upload goes on in the daemon
            if not client.get_transfer(tid).finished:
                paused = client.pause_transfer(tid)
                print(f"   paused at {paused.percent:.0f}% (state {paused.state})")
                resumed = client.resume_transfer(tid)
                print(f"   resumed (state {resumed.state}); waiting …")
            shown = set()

            def every_tenth(event: ProgressEvent) -> None:
                tenth = int(event.percent // 10)
                if tenth not in shown:
                    shown.add(tenth)
                    print(
                        f"   {event.percent:5.1f}%  {event.rate_mbps:.0f} MB/s",
                        flush=True,
                    )

            result = client.wait_transfer(tid, on_progress=every_tenth)
            print(f"   done: content {result.content_id}")
            print(
                f"   {client.get_transfer(tid).state}; {len(client.list_transfers())} transfers in the journal"
            )
    finally:
        client.close()

    print("\nTour finished successfully.")


# What to do next about errors a script like this one can meet, by their machine-readable code.
NEXT_STEP = {
    "ERR_DAEMON_UNAVAILABLE": "start the daemon (dataerai daemon) or set DATAERAI_SOCKET",
    "ERR_AUTH_REQUIRED": "sign in first: dataerai auth login --server URL",
    "ERR_QUOTA_EXCEEDED": "the project's quota is full: ask one of its owners for more",
}

if __name__ == "__main__":
    try:
        main()
    except DaemonError as err:
        # Branch on the error's code, never on its message.
        sys.exit(
            f"error {err.code}: {err.message}\n{NEXT_STEP.get(err.code, '')}".rstrip()
        )
