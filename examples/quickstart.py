#!/usr/bin/env python3
"""Dataerai SDK quick start: sign-in check, project, upload, download, metadata, provenance.

Run it against a signed-in daemon setup (examples/README.md): ``python examples/quickstart.py``.
"""

from __future__ import annotations

import filecmp
import os
import sys
import tempfile
import time
from pathlib import Path

try:
    from dataerai import DaemonError, DataeraiClient, ProgressEvent
except ImportError:  # running from a checkout without `pip install -e sdk/python`
    sys.path.insert(
        0, str(Path(__file__).resolve().parents[1] / "sdk" / "python" / "src")
    )
    from dataerai import DaemonError, DataeraiClient, ProgressEvent

SAMPLE_BYTES = (
    5 * 1024 * 1024 + 4321
)  # a few MiB, deliberately not a whole number of chunks


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def show_progress(event: ProgressEvent) -> None:
    # Called on the SDK's background thread after every chunk.
    print(
        f"   {event.kind or 'transfer'} {event.file_name}: {event.percent:5.1f}% "
        f"({event.bytes_done}/{event.bytes_total} bytes, {event.rate_mbps:.1f} MB/s)",
        flush=True,
    )


def main() -> int:
    binary = os.environ.get("DATAERAI_BINARY") or None
    with (
        DataeraiClient(binary_path=binary) as client,
        tempfile.TemporaryDirectory() as tmp_name,
    ):
        tmp = Path(tmp_name)

        step("1. Who am I?")
        status = client.auth_status()
        expiry = status.expires_at.isoformat() if status.expires_at else "never"
        print(
            f"   signed in to {status.server} as {status.user_email} (user {status.user_id}, "
            f"token expires {expiry})"
        )

        step("2. Create a project")
        project = client.create_project(
            f"quickstart-{time.strftime('%Y%m%d-%H%M%S')}",
            description="Dataerai SDK quick start",
        )
        print(
            f"   project {project.name} ({project.project_id}), quota {project.quota_bytes} bytes"
        )

        step("3. Upload a sample file")
        sample = tmp / "sample-scan.bin"
        sample.write_bytes(os.urandom(SAMPLE_BYTES))
        raw = client.upload(
            sample,
            title="Sample scan",
            owner_type="project",
            owner_id=project.project_id,
            description="Random bytes standing in for detector frames",
            tags=["quickstart", "raw"],
            metadata={"instrument": "demo-detector", "exposure_ms": 12.5},
            chunk_size_mb=1,
            on_progress=show_progress,
        )
        print(
            f"   uploaded asset {raw.asset_id}: {raw.total_bytes} bytes in {raw.chunk_count} chunks, "
            f"{raw.checksum}"
        )

        step("4. Download it back and verify")
        downloaded = client.download(
            raw.asset_id, tmp / "download", on_progress=show_progress
        )
        local = downloaded.files[0]
        if not filecmp.cmp(local.local_path, sample, shallow=False):
            print(
                "   ERROR: downloaded bytes differ from the original", file=sys.stderr
            )
            return 1
        print(
            f"   {local.local_path} ({local.size} bytes) matches the original byte for byte"
        )

        step("5. Read and update metadata")
        meta = client.get_metadata(raw.asset_id)
        print(f"   title={meta.title!r} tags={meta.tags} metadata={meta.metadata}")
        meta = client.set_metadata(
            raw.asset_id,
            title="Sample scan (checked)",
            tags=[*meta.tags, "verified"],
            metadata={"verified_by": status.user_email},
            record_type="raw_data",
        )
        print(f"   now title={meta.title!r} tags={meta.tags} metadata={meta.metadata}")

        step("6. Upload a derived result and record its provenance")
        derived_path = tmp / "sample-histogram.csv"
        data = sample.read_bytes()
        counts = [0] * 16
        for byte in data[: 1 << 20]:
            counts[byte >> 4] += 1
        derived_path.write_text(
            "bin,count\n" + "".join(f"{i},{c}\n" for i, c in enumerate(counts))
        )
        derived = client.upload(
            derived_path,
            title="Histogram of the sample scan",
            owner_type="project",
            owner_id=project.project_id,
            tags=["quickstart", "derived"],
        )
        print(f"   uploaded asset {derived.asset_id} ({derived.total_bytes} bytes)")
        rel = client.create_relationship(
            derived.asset_id,
            raw.asset_id,
            relationship_type="derived_from",
            analysis_mode="non_destructive",
            qualifier_note="16-bin byte histogram of the first MiB",
        )
        print(
            f"   {rel.from_asset_id} --{rel.type}--> {rel.to_asset_id} "
            f"({rel.related_asset.get('title')!r}, mode {rel.analysis_mode})"
        )

        step("7. Find it again by search")
        found = client.search(f"project:{project.project_id} type:raw_data verified")
        print(f"   {found.total} match: {[a.title for a in found.items]}")
        if [a.asset_id for a in found.items] != [raw.asset_id]:
            print("   ERROR: the search did not find exactly the scan", file=sys.stderr)
            return 1

    print("\nQuick start finished successfully.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DaemonError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except ConnectionError as err:
        print(f"error: cannot reach the dataerai daemon: {err}", file=sys.stderr)
        sys.exit(1)
