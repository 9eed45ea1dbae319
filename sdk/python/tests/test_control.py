"""Transfer control through the real daemon: list/get/pause/resume/cancel/wait, from two clients
on one daemon, and waiting again after a transfer timeout."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, List

import pytest
from conftest import abandoned_upload, file_digest, wait_state, write_sparse

from dataerai import (
    DaemonError,
    DaemonTimeoutError,
    DataeraiClient,
    DownloadResult,
    ProgressEvent,
    Project,
    Transfer,
    UploadResult,
)

MIB = 1 << 20
# Big enough, with 1 MiB chunks, that a pause sent right after the start lands mid-transfer.
SLOW_SIZE = 256 * MIB + 4321


@pytest.fixture
def other(client: DataeraiClient) -> Iterator[DataeraiClient]:
    """A second client on the same daemon (e.g. another notebook of the same user)."""
    c = DataeraiClient(socket_path=client.socket_path, auto_start=False).connect()
    yield c
    c.close()


def test_pause_and_resume_from_another_client(
    client: DataeraiClient, other: DataeraiClient, project: Project, base_dir: Path
):
    src = write_sparse(base_dir / "pause-me.bin", SLOW_SIZE)
    tid = abandoned_upload(client, project, src, "pause me").transfer_id

    answer = other.pause_transfer(tid)
    assert isinstance(answer, Transfer)
    assert answer.transfer_id == tid and answer.kind == "upload"
    assert answer.bytes_total == SLOW_SIZE and answer.local_path == str(src)
    # The state turns `paused` once the chunks that were in flight have finished.
    assert answer.state in ("queued", "running", "paused"), answer
    paused = wait_state(client, tid, {"paused"}, timeout_s=30)
    assert paused.bytes_done < SLOW_SIZE

    before = client.get_transfer(tid)
    time.sleep(1.0)
    after = client.get_transfer(tid)
    assert before.state == after.state == "paused"
    assert before.bytes_done == after.bytes_done < SLOW_SIZE, "a paused transfer must not move"
    assert 0.0 <= after.percent < 100.0
    assert tid in {t.transfer_id for t in other.list_transfers()}
    assert tid in {t.transfer_id for t in client.list_transfers()}

    events_a: List[ProgressEvent] = []
    events_b: List[ProgressEvent] = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Both clients wait for the same transfer; neither started waiting before the pause.
        fut_a = pool.submit(client.wait_transfer, tid, 600, events_a.append)
        fut_b = pool.submit(other.wait_transfer, tid, 600, events_b.append)
        time.sleep(0.5)
        assert not fut_a.done() and not fut_b.done(), "waiters must keep waiting while paused"
        resumed = other.resume_transfer(tid)
        assert resumed.transfer_id == tid and not (resumed.finished and resumed.state != "completed")
        result_a, result_b = fut_a.result(), fut_b.result()

    for result in (result_a, result_b):
        assert isinstance(result, UploadResult)
        assert result.transfer_id == tid and result.total_bytes == SLOW_SIZE
    assert result_a.content_id == result_b.content_id and result_a.asset_id == result_b.asset_id
    for events in (events_a, events_b):
        done = [e.bytes_done for e in events]
        assert done == sorted(done) and done[-1] == SLOW_SIZE
        assert {e.transfer_id for e in events} == {tid}

    final = other.get_transfer(tid)
    assert final.state == "completed" and final.finished and final.percent == 100.0
    assert final.error is None and final.result is not None
    assert final.result["content_id"] == result_a.content_id
    assert client.get_metadata(result_a.asset_id).content_id == result_a.content_id
    # The SDK 0.1 style still works on the richer object.
    assert final["state"] == "completed"

    # A finished transfer cannot be paused; an unknown one is not found.
    with pytest.raises(DaemonError) as err:
        client.pause_transfer(tid)
    assert err.value.code == "ERR_INVALID_INPUT"
    for call in (client.get_transfer, client.pause_transfer, client.resume_transfer, client.wait_transfer):
        with pytest.raises(DaemonError) as err:
            call("00000000-0000-0000-0000-000000000000")
        assert err.value.code == "ERR_NOT_FOUND", call

    # Waiting for a finished transfer answers at once from the daemon's journal.
    again = other.wait_transfer(tid, timeout_s=10)
    assert isinstance(again, UploadResult) and again.content_id == result_a.content_id
    src.unlink()


def test_wait_timeout_then_cancel_from_another_client(
    client: DataeraiClient, other: DataeraiClient, project: Project, base_dir: Path
):
    src = write_sparse(base_dir / "cancel-other.bin", SLOW_SIZE)
    tid = abandoned_upload(client, project, src, "cancelled by the other client").transfer_id
    client.pause_transfer(tid)  # keeps it unfinished for as long as the test needs
    wait_state(client, tid, {"paused"}, timeout_s=30)

    start = time.monotonic()
    with pytest.raises(DaemonTimeoutError) as err:
        other.wait_transfer(tid, timeout_s=0.5)
    assert 0.5 <= time.monotonic() - start < 5
    assert err.value.transfer_id == tid and err.value.code == "ERR_TIMEOUT"
    # The documented choice: a timed-out wait leaves the transfer alone.
    assert client.get_transfer(tid).state == "paused"

    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(client.wait_transfer, tid, 120)
        time.sleep(0.3)
        cancelled = other.cancel_transfer(tid)
        assert cancelled.transfer_id == tid
        with pytest.raises(DaemonError) as err:
            waiting.result()
    assert err.value.code == "ERR_CANCELLED"

    final = wait_state(client, tid, {"cancelled"})
    assert final.finished and final.error is not None and final.error.code == "ERR_CANCELLED"
    with pytest.raises(DaemonError) as err:
        other.wait_transfer(tid, timeout_s=10)
    assert err.value.code == "ERR_CANCELLED"
    # Nothing partial was published.
    try:
        assert client.get_metadata(final.asset_id or "").content_id is None
    except DaemonError as e:
        assert e.code == "ERR_NOT_FOUND"
    src.unlink()


def test_wait_again_after_upload_timeout(client: DataeraiClient, project: Project, base_dir: Path):
    src = write_sparse(base_dir / "wait-again.bin", 16 * MIB + 1)
    transfer_id = abandoned_upload(client, project, src, "wait again").transfer_id
    events: List[ProgressEvent] = []
    result = client.wait_transfer(transfer_id, timeout_s=300, on_progress=events.append)
    assert isinstance(result, UploadResult) and result.total_bytes == 16 * MIB + 1
    assert events and events[-1].bytes_done == 16 * MIB + 1
    # Same for a download: wait_transfer gives a DownloadResult.
    with pytest.raises(DaemonTimeoutError) as err:
        client.download(result.asset_id, base_dir / "wait-again-out", chunk_size_mb=1, transfer_timeout_s=0)
    down = client.wait_transfer(err.value.transfer_id, timeout_s=300)
    assert isinstance(down, DownloadResult) and down.content_id == result.content_id
    assert down.files[0].local_path == base_dir / "wait-again-out" / "wait-again.bin"
    assert file_digest(down.files[0].local_path) == file_digest(src)
