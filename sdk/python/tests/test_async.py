"""AsyncDataeraiClient under asyncio against the real daemon and server."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import List

import pytest
from conftest import CLI_BIN, file_digest, pid_alive, short_tmpdir, upload_to_project, write_random

from dataerai import (
    AsyncDataeraiClient,
    DaemonError,
    DaemonUnavailableError,
    DataeraiClient,
    DownloadResult,
    InvalidInputError,
    NotFoundError,
    ProgressEvent,
    Project,
    RelationshipExistsError,
    UploadResult,
)

MIB = 1 << 20


def test_async_round_trip_and_concurrent_calls(client: DataeraiClient, project: Project, base_dir: Path):
    src = write_random(base_dir / "async.bin", 2 * MIB + 5)

    async def main() -> None:
        threads_before = threading.active_count()
        async with AsyncDataeraiClient(socket_path=client.socket_path, auto_start=False) as ac:
            assert ac.connected and not ac.started_daemon
            assert await ac.connect() is ac  # harmless when connected
            me = await ac.auth_status()
            assert me.user_email == client.auth_status().user_email

            events: List[ProgressEvent] = []
            up = await upload_to_project(
                ac, project, src, "async", chunk_size_mb=1, on_progress=events.append, tags=["async"]
            )
            assert isinstance(up, UploadResult) and up.total_bytes == src.stat().st_size
            assert events and events[-1].bytes_done == events[-1].bytes_total == up.total_bytes

            # Many requests at once over the one connection, and no thread per call.
            metas = await asyncio.gather(*(ac.get_metadata(up.asset_id) for _ in range(20)))
            assert {m.title for m in metas} == {"async"}
            assert threading.active_count() == threads_before

            down = await ac.download(up.asset_id, base_dir / "async-restored")
            assert isinstance(down, DownloadResult)
            assert file_digest(down.files[0].local_path) == file_digest(src)

            other = await upload_to_project(
                ac, project, write_random(base_dir / "async-2.bin", 10), "async 2"
            )
            rel = await ac.create_relationship(other.asset_id, up.asset_id, relationship_type="derived_from")
            assert rel.to_asset_id == up.asset_id
            with pytest.raises(RelationshipExistsError):
                await ac.create_relationship(other.asset_id, up.asset_id, relationship_type="derived_from")
            with pytest.raises(NotFoundError):
                await ac.get_metadata(str(uuid.uuid4()))
            with pytest.raises(ValueError):
                await ac.set_metadata(up.asset_id, colour="red")
            updated = await ac.set_metadata(up.asset_id, metadata={"k": 1})
            assert updated.metadata["k"] == 1

            ids = [
                a.asset_id async for a in ac.iter_assets(owner_type="project", owner_id=project.project_id)
            ]
            assert up.asset_id in ids and other.asset_id in ids
            assert [p async for p in ac.iter_projects()]
            assert await ac.list_project_members(project.project_id)

            v2 = await ac.upload_version(up.asset_id, write_random(base_dir / "async-v2.bin", 100))
            versions = [v async for v in ac.iter_versions(up.asset_id)]
            assert versions[0].content_id == v2.content_id and len(versions) == 2

            many = await ac.upload_many(
                [
                    {
                        "local_path": write_random(base_dir / f"async-m{i}.bin", 100 + i),
                        "title": f"m{i}",
                        "owner_type": "project",
                        "owner_id": project.project_id,
                    }
                    for i in range(3)
                ]
                + [
                    {
                        "local_path": base_dir / "missing.bin",
                        "title": "x",
                        "owner_type": "project",
                        "owner_id": project.project_id,
                    }
                ],
                concurrency=2,
            )
            assert [item.ok for item in many] == [True, True, True, False]
            assert isinstance(many[3].error, InvalidInputError)

            transfer = await ac.get_transfer(up.transfer_id)
            assert transfer.state == "completed"
            again = await ac.wait_transfer(up.transfer_id, timeout_s=30)
            assert again.asset_id == up.asset_id
            assert any(t.transfer_id == up.transfer_id for t in await ac.list_transfers())
        assert not ac.connected
        with pytest.raises(DaemonUnavailableError):
            await ac.ping()

    asyncio.run(main())


def test_async_client_starts_and_stops_its_own_daemon(session_env: None):
    sock = short_tmpdir("async-") / "d.sock"

    async def main() -> int:
        async with AsyncDataeraiClient(socket_path=sock, binary_path=CLI_BIN, start_timeout_s=30) as ac:
            assert ac.started_daemon
            pid = int((await ac.ping())["pid"])
            assert pid_alive(pid)
        return pid

    pid = asyncio.run(main())
    assert not pid_alive(pid)


def test_async_client_is_usable_across_event_loops(client: DataeraiClient):
    ac = AsyncDataeraiClient(socket_path=client.socket_path, auto_start=False)
    assert asyncio.run(ac.ping())["version"]
    # A second asyncio.run is a new loop (a notebook restarting its loop): the client reconnects.
    assert asyncio.run(ac.ping())["version"]
    asyncio.run(ac.close())


def test_async_errors_before_any_request(tmp_path: Path):
    async def main() -> None:
        ac = AsyncDataeraiClient(socket_path=tmp_path / "nobody.sock", auto_start=False)
        with pytest.raises(TypeError):
            await ac.get_metadata(1)
        with pytest.raises(ValueError):
            await ac.upload("", title="t", owner_type="user", owner_id="u")
        with pytest.raises(DaemonUnavailableError):
            await ac.connect()
        with pytest.raises(DaemonError):
            await ac.ping()

    asyncio.run(main())
