"""Directories as one asset, names that would escape, and upload_many, through the real daemon."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import Server, file_digest, upload_to_project, write_random

from dataerai import (
    DaemonError,
    DataeraiClient,
    DownloadResult,
    ProgressEvent,
    Project,
    UploadItem,
    UploadManyResult,
    UploadResult,
)

MIB = 1 << 20


def project_asset_ids(client: DataeraiClient, project: Project) -> set:
    return {
        a.asset_id for a in client.list_assets(owner_type="project", owner_id=project.project_id, limit=1000)
    }


def test_directory_round_trip(client: DataeraiClient, project: Project, base_dir: Path):
    top = base_dir / "run-042"
    (top / "raw" / "deeper").mkdir(parents=True)
    (top / "notes").mkdir()
    write_random(top / "summary.txt", 1000)
    (top / "raw" / "empty.bin").write_bytes(b"")
    write_random(top / "raw" / "frames.bin", 3 * MIB + 17)  # several 1 MiB chunks
    write_random(top / "raw" / "deeper" / "c.dat", 4096)
    write_random(top / "notes" / "log.txt", 10)
    # A symlink that stays inside the tree is followed (stored as a regular file).
    os.symlink(os.path.join("raw", "deeper", "c.dat"), top / "alias.dat")
    expected = {
        "alias.dat": top / "raw" / "deeper" / "c.dat",
        "notes/log.txt": top / "notes" / "log.txt",
        "raw/deeper/c.dat": top / "raw" / "deeper" / "c.dat",
        "raw/empty.bin": top / "raw" / "empty.bin",
        "raw/frames.bin": top / "raw" / "frames.bin",
        "summary.txt": top / "summary.txt",
    }
    total = sum(p.stat().st_size for p in expected.values())

    events: List[ProgressEvent] = []
    up = upload_to_project(client, project, top, "run 42", chunk_size_mb=1, on_progress=events.append)
    assert isinstance(up, UploadResult)
    assert up.file_count == len(expected) == len(up.files)
    assert [f.name for f in up.files] == sorted(expected), "files are named by sorted relative path"
    assert {f.name: f.size for f in up.files} == {n: p.stat().st_size for n, p in expected.items()}
    assert up.total_bytes == total
    assert all(f.checksum and f.checksum.startswith("blake3:") for f in up.files)
    assert events and events[-1].bytes_done == total
    assert {e.file_name for e in events} <= set(expected)

    versions = client.list_versions(up.asset_id)
    assert [f.name for f in versions[0].files] == sorted(expected)

    dest = base_dir / "run-042-restored"
    down = client.download(up.asset_id, dest, chunk_size_mb=1)
    assert isinstance(down, DownloadResult)
    assert down.file_count == len(expected) and down.total_bytes == total
    assert sorted(f.filename for f in down.files) == sorted(expected)
    for f in down.files:
        assert f.local_path == dest / f.filename
        assert f.size == expected[f.filename].stat().st_size
        assert file_digest(f.local_path) == file_digest(expected[f.filename]), f.filename
    assert (dest / "raw" / "empty.bin").read_bytes() == b""
    assert not (dest / "alias.dat").is_symlink()
    on_disk = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert on_disk == sorted(expected), "nothing but the tree (no partial files) under dest"


def test_escaping_and_empty_directories_are_refused(client: DataeraiClient, project: Project, base_dir: Path):
    secret = write_random(base_dir / "outside-secret.txt", 100)
    top = base_dir / "escaping"
    top.mkdir()
    write_random(top / "ok.txt", 100)
    os.symlink(os.path.join("..", secret.name), top / "sneaky.txt")
    before = project_asset_ids(client, project)
    with pytest.raises(DaemonError) as err:
        client.upload(top, title="escape", owner_type="project", owner_id=project.project_id)
    assert err.value.code == "ERR_INVALID_INPUT"
    assert "sneaky" in err.value.message

    absolute = base_dir / "escaping-abs"
    absolute.mkdir()
    write_random(absolute / "ok.txt", 100)
    os.symlink(secret, absolute / "abs-link.txt")
    with pytest.raises(DaemonError) as err:
        client.upload(absolute, title="escape", owner_type="project", owner_id=project.project_id)
    assert err.value.code == "ERR_INVALID_INPUT"

    empty = base_dir / "empty-dir"
    empty.mkdir()
    with pytest.raises(DaemonError) as err:
        client.upload(empty, title="empty", owner_type="project", owner_id=project.project_id)
    assert err.value.code == "ERR_INVALID_INPUT"
    assert project_asset_ids(client, project) == before, "a refused upload must not create an asset"


def test_upload_many_with_a_missing_file(client: DataeraiClient, project: Project, base_dir: Path):
    folder = base_dir / "many"
    folder.mkdir()
    items: List[Any] = []
    sources: Dict[int, Path] = {}
    missing_index = 17
    for i in range(50):
        path = folder / f"frame-{i:03d}.bin"
        if i != missing_index:
            write_random(path, 1000 + 37 * i)
            sources[i] = path
        fields = dict(
            local_path=path,
            title=f"frame {i}",
            owner_type="project",
            owner_id=project.project_id,
            tags=["many"],
            metadata={"frame": i},
        )
        # Dicts and UploadItem objects mix freely.
        items.append(UploadItem(**fields) if i % 2 else fields)

    events: List[ProgressEvent] = []
    results = client.upload_many(items, concurrency=8, on_progress=events.append)

    assert len(results) == 50
    assert all(isinstance(r, UploadManyResult) for r in results)
    assert [r.index for r in results] == list(range(50))
    assert [r.local_path for r in results] == [folder / f"frame-{i:03d}.bin" for i in range(50)]
    bad = results[missing_index]
    assert not bad.ok and bad.result is None and bad.error is not None
    assert bad.error.code == "ERR_INVALID_INPUT"
    good = [r for r in results if r.index != missing_index]
    assert all(r.ok and r.error is None and r.result is not None for r in good), [
        (r.index, r.error) for r in good if not r.ok
    ]
    assert len({r.result.asset_id for r in good if r.result}) == 49, "one asset per item"
    for r in good:
        assert r.result is not None and r.result.total_bytes == sources[r.index].stat().st_size
    assert {e.transfer_id for e in events} <= {r.result.transfer_id for r in good if r.result}

    # Spot-check metadata and content of a few items.
    for r in (good[0], good[-1], results[33]):
        assert r.result is not None
        meta = client.get_metadata(r.result.asset_id)
        assert meta.title == f"frame {r.index}" and meta.metadata == {"frame": r.index}
        down = client.download(r.result.asset_id, base_dir / f"many-out-{r.index}")
        assert file_digest(down.files[0].local_path) == file_digest(sources[r.index])


def test_upload_many_sends_small_files_in_batches(
    client: DataeraiClient, server: Server, project: Project, base_dir: Path
):
    """Small items open their sessions in one request and send their bytes in shared ones."""
    folder = base_dir / "batched"
    folder.mkdir()
    paths = [write_random(folder / f"s-{i:02d}.bin", 100 + i) for i in range(40)]
    # A bigger item (several chunks of 1 MiB) goes the usual way, in the same call.
    big = write_random(folder / "big.bin", 3 * (1 << 20) + 5)
    names = [
        "dataerai_upload_session_batches_total",
        "dataerai_upload_session_batch_items_total",
        "dataerai_upload_finish_batches_total",
        "dataerai_upload_finish_batch_items_total",
        "dataerai_upload_chunks_total",
    ]
    before = {n: server.metric(n) for n in names}
    items = [
        dict(local_path=p, title=p.name, owner_type="project", owner_id=project.project_id)
        for p in [*paths, big]
    ]
    results = client.upload_many(items, concurrency=8, chunk_size_mb=1)
    assert all(r.ok for r in results), [(r.index, r.error) for r in results if not r.ok]
    delta = {n: server.metric(n) - before[n] for n in names}
    # The 40 small files: one request opened their sessions, fewer requests than files
    # carried their bytes, and no chunk PUT was needed for them.
    assert delta["dataerai_upload_session_batches_total"] == 1, delta
    assert delta["dataerai_upload_session_batch_items_total"] == 40, delta
    assert delta["dataerai_upload_finish_batch_items_total"] == 40, delta
    assert 1 <= delta["dataerai_upload_finish_batches_total"] < 40, delta
    assert delta["dataerai_upload_chunks_total"] == 40 + 4, delta
    for r, p in zip(results, [*paths, big]):
        assert r.result is not None
        assert r.result.total_bytes == r.result.bytes_sent == p.stat().st_size
        assert (r.result.checksum or "").startswith("blake3:")
    assert len({r.result.checksum for r in results if r.result}) == len(results)
    # The bytes come back intact.
    out = base_dir / "batched-back"
    for r, p in zip(results[:3], paths[:3]):
        assert r.result is not None
        got = client.download(r.result.asset_id, out / p.stem)
        assert (out / p.stem / p.name).read_bytes() == p.read_bytes(), got
