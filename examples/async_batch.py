#!/usr/bin/env python3
"""Dataerai SDK from asyncio: many uploads at once over one connection, typed errors, paging.

The same code runs in a Jupyter cell (top-level ``await``, drop ``asyncio.run``). Run it like
the other examples (examples/README.md): ``python examples/async_batch.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

try:
    from dataerai import AsyncDataeraiClient, NotFoundError, RelationshipExistsError
except ImportError:  # running from a checkout without `pip install -e sdk/python`
    sys.path.insert(
        0, str(Path(__file__).resolve().parents[1] / "sdk" / "python" / "src")
    )
    from dataerai import AsyncDataeraiClient, NotFoundError, RelationshipExistsError


async def main() -> int:
    binary = os.environ.get("DATAERAI_BINARY") or None
    async with AsyncDataeraiClient(binary_path=binary) as client:
        me = await client.auth_status()
        print(f"signed in as {me.user_email}")
        project = await client.create_project(f"async-{time.strftime('%Y%m%d-%H%M%S')}")

        with tempfile.TemporaryDirectory() as tmp_name:
            paths = []
            for i in range(5):
                path = Path(tmp_name) / f"spectrum_{i}.csv"
                path.write_text(
                    "".join(f"{n},{(n * i) % 97}\n" for n in range(1000))
                    + str(uuid.uuid4())
                )
                paths.append(path)
            # Five uploads in flight at once, all over the client's one socket connection.
            uploads = await asyncio.gather(
                *(
                    client.upload(
                        p,
                        title=p.stem,
                        owner_type="project",
                        owner_id=project.project_id,
                    )
                    for p in paths
                )
            )
        print(f"uploaded {len(uploads)} files concurrently")

        summary = await client.upload(
            Path(__file__),
            title="analysis script",
            owner_type="project",
            owner_id=project.project_id,
        )
        for up in uploads:
            await client.create_relationship(
                summary.asset_id, up.asset_id, relationship_type="analysis_of"
            )
        try:
            await client.create_relationship(
                summary.asset_id, uploads[0].asset_id, relationship_type="analysis_of"
            )
        except RelationshipExistsError as err:
            print(f"second identical relationship refused: {err.code}")

        try:
            await client.get_metadata(str(uuid.uuid4()))
        except NotFoundError as err:
            print(f"unknown asset: {err.code}")

        titles = [
            a.title
            async for a in client.iter_assets(
                owner_type="project", owner_id=project.project_id
            )
        ]
        print(f"project holds {len(titles)} assets: {', '.join(sorted(titles))}")
    print("Async tour finished successfully.")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
