"""Uploads and downloads through the real daemon: progress, sizes, integrity, timeouts, threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

import pytest
from conftest import abandoned_upload, file_digest, upload_to_project, wait_state, write_random

from dataerai import (
    DaemonError,
    DataeraiClient,
    DownloadResult,
    ProgressEvent,
    Project,
    UploadResult,
)
from dataerai.models import FINAL_STATES

MIB = 1 << 20


def assert_monotonic_progress(events: List[ProgressEvent], total: int, transfer_id: str) -> None:
    assert events, "no progress event at all"
    assert all(e.transfer_id == transfer_id for e in events)
    done = [e.bytes_done for e in events]
    assert done == sorted(done), f"bytes_done went backwards: {done}"
    assert events[-1].bytes_done == total and events[-1].bytes_total == total
    assert events[-1].percent == 100.0
    assert all(0.0 <= e.percent <= 100.0 and e.rate_bps >= 0 for e in events)


def test_multi_chunk_round_trip_with_progress(client: DataeraiClient, project: Project, base_dir: Path):
    size = 2 * MIB + 123_457  # not a multiple of the 1 MiB chunk
    src = write_random(base_dir / "multi.bin", size)
    up_events: List[ProgressEvent] = []
    up_threads = set()

    def on_up(ev: ProgressEvent) -> None:
        up_events.append(ev)
        up_threads.add(threading.current_thread() is threading.main_thread())

    up = upload_to_project(client, project, src, "multi", chunk_size_mb=1, on_progress=on_up)
    assert isinstance(up, UploadResult)
    assert up.total_bytes == size and up.chunk_count == 3
    assert up.asset_id and up.content_id and up.transfer_id
    assert up.checksum and up.checksum.startswith("blake3:")
    assert_monotonic_progress(up_events, size, up.transfer_id)
    assert len(up_events) >= 3, "the daemon reports progress after every chunk"
    assert up_threads == {False}, "callbacks must run on a background thread"
    assert {e.chunk_count for e in up_events} == {3}
    assert up_events[0].file_name == "multi.bin" and up_events[0].kind == "upload"

    dest = base_dir / "multi-out"
    down_events: List[ProgressEvent] = []
    down = client.download(up.asset_id, dest, chunk_size_mb=1, on_progress=down_events.append)
    assert isinstance(down, DownloadResult)
    assert down.asset_id == up.asset_id and down.content_id == up.content_id
    assert down.total_bytes == size and len(down.files) == 1
    f = down.files[0]
    assert f.local_path == dest / "multi.bin" and f.filename == "multi.bin" and f.size == size
    assert f.checksum == up.checksum
    assert file_digest(f.local_path) == file_digest(src)
    assert_monotonic_progress(down_events, size, down.transfer_id)
    assert not list(dest.glob("*.dataerai-partial"))


def test_download_specific_content_version(client: DataeraiClient, project: Project, base_dir: Path):
    first = write_random(base_dir / "v.bin", 5000)
    up = client.upload(first, title="versioned", owner_type="project", owner_id=project.project_id)
    down = client.download(up.asset_id, base_dir / "v-out", content_id=up.content_id)
    assert down.content_id == up.content_id
    assert file_digest(down.files[0].local_path) == file_digest(first)
    # Downloading again replaces the file atomically rather than failing.
    again = client.download(up.asset_id, base_dir / "v-out")
    assert file_digest(again.files[0].local_path) == file_digest(first)


def test_empty_file(client: DataeraiClient, project: Project, base_dir: Path):
    src = base_dir / "empty.dat"
    src.write_bytes(b"")
    events: List[ProgressEvent] = []
    up = client.upload(
        src, title="empty", owner_type="project", owner_id=project.project_id, on_progress=events.append
    )
    assert up.total_bytes == 0
    assert events and events[-1].bytes_done == 0 and events[-1].percent == 100.0
    down = client.download(up.asset_id, base_dir / "empty-out")
    assert down.total_bytes == 0 and down.files[0].size == 0
    assert down.files[0].local_path.read_bytes() == b""


def test_relative_path_and_pathlike(
    client: DataeraiClient, project: Project, base_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    work = base_dir / "cwd"
    work.mkdir()
    write_random(work / "relative.bin", 777)
    monkeypatch.chdir(work)
    up = client.upload("relative.bin", title="relative", owner_type="project", owner_id=project.project_id)
    down = client.download(up.asset_id, "out")  # relative to *our* cwd, not the daemon's
    assert down.files[0].local_path == work / "out" / "relative.bin"
    assert (work / "out" / "relative.bin").read_bytes() == (work / "relative.bin").read_bytes()


def test_personal_asset_round_trip(client: DataeraiClient, base_dir: Path):
    me = client.auth_status()
    src = write_random(base_dir / "mine.txt", 3333)
    up = client.upload(src, title="personal", owner_type="user", owner_id=me.user_id, alias=None)
    meta = client.get_metadata(up.asset_id)
    assert meta.owner_type == "user" and meta.owner_id == me.user_id
    assert up.asset_id in {a.asset_id for a in client.list_assets(limit=1000)}


def test_raising_callback_does_not_break_the_client(
    client: DataeraiClient, project: Project, base_dir: Path, caplog: pytest.LogCaptureFixture
):
    src = write_random(base_dir / "boom.bin", 3 * MIB)
    calls: List[int] = []

    def boom(ev: ProgressEvent) -> None:
        calls.append(ev.bytes_done)
        raise RuntimeError("bug in user callback")

    with caplog.at_level("ERROR", logger="dataerai"):
        up = upload_to_project(client, project, src, "boom", chunk_size_mb=1, on_progress=boom)
    assert up.total_bytes == 3 * MIB
    assert len(calls) >= 1 and calls[-1] == 3 * MIB
    assert "bug in user callback" in caplog.text
    # The client is still fully usable.
    assert client.get_metadata(up.asset_id).title == "boom"
    down = client.download(up.asset_id, base_dir / "boom-out", on_progress=boom)
    assert file_digest(down.files[0].local_path) == file_digest(src)


def test_concurrent_calls_from_many_threads(client: DataeraiClient, project: Project, base_dir: Path):
    def work(i: int):
        src = write_random(base_dir / f"conc-{i}.bin", 100_000 + i * 7919)
        seen: List[ProgressEvent] = []
        up = upload_to_project(client, project, src, f"conc-{i}", on_progress=seen.append, chunk_size_mb=1)
        meta = client.get_metadata(up.asset_id)
        status = client.auth_status()
        down = client.download(up.asset_id, base_dir / f"conc-out-{i}")
        same = file_digest(down.files[0].local_path) == file_digest(src)
        return meta.title, status.user_id, same, {e.transfer_id for e in seen} == {up.transfer_id}

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(6)))
    assert [r[0] for r in results] == [f"conc-{i}" for i in range(6)]
    assert all(r[2] for r in results), "a concurrent round trip corrupted data"
    assert all(r[3] for r in results), "progress of one transfer reached another's callback"
    assert len({r[1] for r in results}) == 1


def test_transfer_timeout_leaves_transfer_running(client: DataeraiClient, project: Project, base_dir: Path):
    src = write_random(base_dir / "slow.bin", 24 * MIB)
    start = time.monotonic()
    err = abandoned_upload(client, project, src, "slow", timeout_s=0.01)
    assert time.monotonic() - start < 5
    assert isinstance(err, TimeoutError) and isinstance(err, DaemonError)
    assert err.code == "ERR_TIMEOUT"
    transfer_id = err.transfer_id
    assert transfer_id and transfer_id in str(err)
    # The documented choice: the transfer goes on in the daemon and completes.
    state = wait_state(client, transfer_id, FINAL_STATES, timeout_s=120)
    assert state["state"] == "completed", state
    meta = client.get_metadata(state["asset_id"])
    assert meta.content_id and meta.total_bytes == 24 * MIB


@pytest.mark.slow
def test_sparse_file_over_one_gib(client: DataeraiClient, project: Project, base_dir: Path):
    size = (1 << 30) + 12345
    src = base_dir / "sparse-big.bin"
    with open(src, "wb") as f:
        f.write(b"head-of-the-file")
        f.truncate(size)
        f.seek(size - 9)
        f.write(b"tail-end!")
    events: List[ProgressEvent] = []
    up = upload_to_project(
        client, project, src, "big sparse", on_progress=events.append, transfer_timeout_s=1800
    )
    assert up.total_bytes == size and up.chunk_count == 17  # 16 full 64 MiB chunks + a tail
    assert_monotonic_progress(events, size, up.transfer_id)
    src_digest = file_digest(src)
    dest = base_dir / "big-out"
    down = client.download(up.asset_id, dest, transfer_timeout_s=1800)
    out = down.files[0].local_path
    assert out.stat().st_size == size
    assert file_digest(out) == src_digest
    src.unlink()
    out.unlink()


def test_cancel_a_transfer_after_giving_up_waiting(client: DataeraiClient, project: Project, base_dir: Path):
    src = write_random(base_dir / "cancel-me.bin", 96 * MIB)
    transfer_id = abandoned_upload(client, project, src, "cancel me").transfer_id
    client.cancel_transfer(transfer_id)
    state = wait_state(client, transfer_id, FINAL_STATES)
    assert state["state"] == "cancelled", state
    assert state["error"]["code"] == "ERR_CANCELLED"
    # Nothing partial was published: the daemon either removed the new asset or left it empty.
    try:
        assert client.get_metadata(state["asset_id"]).content_id is None
    except DaemonError as e:
        assert e.code == "ERR_NOT_FOUND"
