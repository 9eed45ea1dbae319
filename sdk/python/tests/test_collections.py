"""Collections as a tree through SDK → daemon → server: create, list, rename, move, delete,
move assets, resolve a path (with " / " spacing and create_project), and download a two-level
tree into a folder that mirrors it byte for byte (again: nothing fetched twice; a failure names
the asset)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import List

import pytest
from conftest import file_digest, upload_to_project, write_random

from dataerai import (
    AsyncDataeraiClient,
    Collection,
    CollectionDownloadError,
    CollectionDownloadResult,
    CollectionPath,
    DaemonError,
    DataeraiClient,
    InvalidInputError,
    NotFoundError,
    ProgressEvent,
    Project,
)


def test_a_tree_is_built_listed_changed_and_emptied(client: DataeraiClient, project: Project, base_dir: Path):
    raw = client.create_collection(project.project_id, "raw", description="off the microscope")
    assert isinstance(raw, Collection)
    assert raw.parent_id == project.root_collection_id and raw.description == "off the microscope"
    day = client.create_collection(project.project_id, "2026-12-06", parent_id=raw.collection_id)
    done = client.create_collection(project.project_id, "processed")
    with pytest.raises(DaemonError) as taken:
        client.create_collection(project.project_id, "raw")
    assert taken.value.code == "ERR_CONFLICT" and raw.collection_id in taken.value.message

    names = {c.name for c in client.list_collections(project.project_id)}
    assert {project.name, "raw", "2026-12-06", "processed"} <= names
    under_raw = client.list_collections(project.project_id, parent_id=raw.collection_id)
    assert [c.collection_id for c in under_raw] == [day.collection_id]
    assert [c.name for c in client.iter_collections(project.project_id, parent_id=raw.collection_id)] == [
        "2026-12-06"
    ]

    renamed = client.rename_collection(day.collection_id, "day 1")
    assert renamed.name == "day 1"
    moved = client.move_collection(day.collection_id, done.collection_id)
    assert moved.parent_id == done.collection_id
    with pytest.raises(InvalidInputError):
        client.move_collection(done.collection_id, day.collection_id)  # into its own subtree
    with pytest.raises(InvalidInputError):
        client.rename_collection(project.root_collection_id, "nope")

    src = write_random(base_dir / "tree-asset.bin", 1000)
    up = upload_to_project(client, project, src, "tree asset", collection_id=day.collection_id)
    meta = client.move_asset(up.asset_id, raw.collection_id)
    assert meta.raw["collection_ids"] == [raw.collection_id]
    other = client.create_project(f"other-{uuid.uuid4().hex[:6]}")
    with pytest.raises(InvalidInputError):
        client.move_asset(up.asset_id, other.root_collection_id)

    with pytest.raises(DaemonError) as full:
        client.delete_collection(raw.collection_id)
    assert full.value.code == "ERR_CONFLICT" and "1 asset(s)" in full.value.message
    client.delete_collection(day.collection_id)
    with pytest.raises(NotFoundError):
        client.rename_collection(day.collection_id, "gone")


def test_ensure_collection_path_trims_creates_and_agrees(client: DataeraiClient):
    name = f"abTEM-{uuid.uuid4().hex[:6]}"
    with pytest.raises(NotFoundError):
        client.ensure_collection_path(f"{name}/raw")
    where = client.ensure_collection_path(f"{name} / notebook runs / tutorials", create_project=True)
    assert isinstance(where, CollectionPath)
    assert where.path == f"{name}/notebook runs/tutorials"
    assert where.project_name == name
    again = client.ensure_collection_path(f"{name}/notebook runs/tutorials")
    assert (again.project_id, again.collection_id) == (where.project_id, where.collection_id)
    # The project's tree now has the root, "notebook runs" and "tutorials".
    tree = {c.name: c for c in client.list_collections(where.project_id)}
    assert tree["tutorials"].parent_id == tree["notebook runs"].collection_id
    assert tree["notebook runs"].parent_id == tree[name].collection_id and tree[name].is_root
    for bad in ["", f"{name}//x", f"{name}/ /x", "/x"]:
        with pytest.raises(InvalidInputError):
            client.ensure_collection_path(bad)

    async def concurrently() -> List[CollectionPath]:
        async with AsyncDataeraiClient(socket_path=client.socket_path, auto_start=False) as ac:
            calls = [ac.ensure_collection_path(f"{name}/analysis/run 1") for _ in range(6)]
            return list(await asyncio.gather(*calls))

    answers = asyncio.run(concurrently())
    assert len({a.collection_id for a in answers}) == 1


def test_download_collection_mirrors_a_two_level_tree(client: DataeraiClient, base_dir: Path):
    name = f"mirror-{uuid.uuid4().hex[:6]}"
    top = client.ensure_collection_path(f"{name}/scans", create_project=True)
    deeper = client.ensure_collection_path(f"{name}/scans/day 2")
    sources = {
        "top": write_random(base_dir / "mirror-a.bin", 70_000),
        "top-twin": write_random(base_dir / "mirror-b.bin", 1_234),
        "deep": write_random(base_dir / "mirror-c.bin", 300_000),
    }
    ids = {}
    for key, path in sources.items():  # in this order: "top" is filed before its twin
        up = client.upload(
            path,
            title="deep scan" if key == "deep" else "scan/1",
            owner_type="project",
            owner_id=top.project_id,
            collection_id=(deeper if key == "deep" else top).collection_id,
        )
        ids[key] = up.asset_id
    client.create_collection(top.project_id, "empty", parent_id=top.collection_id)

    events: List[ProgressEvent] = []
    dest = base_dir / "mirror-out"
    result = client.download_collection(top.collection_id, dest, on_progress=events.append)
    assert isinstance(result, CollectionDownloadResult)
    assert result.local_path == dest / "scans"
    by_asset = {a.asset_id: a for a in result.assets}
    assert set(by_asset) == set(ids.values())
    # Titles are made safe ("/" → "_"); the second of two equal titles gets its id's start.
    expected = {
        "top": dest / "scans" / "scan_1",
        "top-twin": dest / "scans" / f"scan_1 ({ids['top-twin'][:8]})",
        "deep": dest / "scans" / "day 2" / "deep scan",
    }
    for key, source in sources.items():
        asset = by_asset[ids[key]]
        assert asset.local_path == expected[key]
        (f,) = asset.files
        assert f.local_path == expected[key] / source.name
        assert file_digest(f.local_path) == file_digest(source)
    assert events, "no progress reported"

    # Again: everything is already there, nothing is fetched twice (asyncio client too).
    again = client.download_collection(top.collection_id, dest)
    assert all(f.skipped for f in again.files) and len(again.files) == 3

    async def download_async() -> CollectionDownloadResult:
        async with AsyncDataeraiClient(socket_path=client.socket_path, auto_start=False) as ac:
            return await ac.download_collection(top.collection_id, dest)

    awaited = asyncio.run(download_async())
    assert sorted(a.asset_id for a in awaited.assets) == sorted(ids.values())
    assert all(f.skipped for f in awaited.files)

    # A local file in the way of one asset: that asset fails, is named, the others are done.
    victim = expected["deep"] / sources["deep"].name
    victim.write_bytes(b"not the same bytes")
    with pytest.raises(CollectionDownloadError) as failed:
        client.download_collection(top.collection_id, dest)
    err = failed.value
    assert err.code == "ERR_FILE_EXISTS" and "deep scan" in err.message and ids["deep"] in err.message
    assert [f[0] for f in err.failed] == [ids["deep"]]
    assert len(err.result.assets) == 2
    with pytest.raises(NotFoundError):
        client.download_collection("no-such-collection", dest)
