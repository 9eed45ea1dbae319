"""New content versions and content-addressed dedup, through the real daemon and server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import file_digest, write_random

from dataerai import ContentVersion, DaemonError, DataeraiClient, ListPage, Project

MIB = 1 << 20


def test_versions_upload_list_and_download_old(client: DataeraiClient, project: Project, base_dir: Path):
    first = write_random(base_dir / "calib.h5", 2 * MIB + 5)
    v1 = client.upload(first, title="calibration", owner_type="project", owner_id=project.project_id)
    second = write_random(base_dir / "calib-v2.h5", MIB + 99)
    v2 = client.upload_version(v1.asset_id, second, chunk_size_mb=1)

    assert v2.asset_id == v1.asset_id and v2.content_id != v1.content_id
    assert v2.total_bytes == MIB + 99 and v2.chunk_count == 2
    meta = client.get_metadata(v1.asset_id)
    assert meta.content_id == v2.content_id and meta.title == "calibration"

    versions = client.list_versions(v1.asset_id)
    assert all(isinstance(v, ContentVersion) for v in versions)
    assert [v.content_id for v in versions] == [v2.content_id, v1.content_id], "newest first"
    assert [v.total_bytes for v in versions] == [MIB + 99, 2 * MIB + 5]
    assert all(v.asset_id == v1.asset_id and v.status == "complete" for v in versions)
    assert versions[0].files[0].checksum == v2.checksum and versions[1].files[0].checksum == v1.checksum
    assert versions[0].completed_at is not None

    latest = client.download(v1.asset_id, base_dir / "calib-latest")
    assert latest.content_id == v2.content_id
    assert file_digest(latest.files[0].local_path) == file_digest(second)
    old = client.download(v1.asset_id, base_dir / "calib-old", content_id=v1.content_id)
    assert old.content_id == v1.content_id
    assert file_digest(old.files[0].local_path) == file_digest(first)

    with pytest.raises(DaemonError) as err:
        client.upload_version("00000000-0000-0000-0000-000000000000", second)
    assert err.value.code == "ERR_NOT_FOUND"
    with pytest.raises(DaemonError) as err:
        client.upload_version(v1.asset_id, base_dir / "no-such-file")
    assert err.value.code == "ERR_INVALID_INPUT"
    assert [v.content_id for v in client.list_versions(v1.asset_id)] == [v2.content_id, v1.content_id]


def test_a_stranger_cannot_add_a_version(
    client: DataeraiClient, bob_client: DataeraiClient, project: Project, base_dir: Path
):
    src = write_random(base_dir / "alice-only.bin", 1000)
    up = client.upload(src, title="alice only", owner_type="project", owner_id=project.project_id)
    with pytest.raises(DaemonError) as err:
        bob_client.upload_version(up.asset_id, src)
    assert err.value.code in ("ERR_PERMISSION_DENIED", "ERR_NOT_FOUND")
    assert [v.content_id for v in client.list_versions(up.asset_id)] == [up.content_id]


def test_identical_bytes_are_not_sent_twice(
    client: DataeraiClient, bob_client: DataeraiClient, project: Project, base_dir: Path
):
    size = 3 * MIB + 11
    original = write_random(base_dir / "dedup-original.bin", size)
    copy = base_dir / "dedup-copy.bin"
    shutil.copyfile(original, copy)

    first = client.upload(original, title="dedup 1", owner_type="project", owner_id=project.project_id)
    assert first.bytes_sent == size and not first.deduplicated
    second = client.upload(copy, title="dedup 2", owner_type="project", owner_id=project.project_id)
    assert second.bytes_sent == 0, "identical bytes of the same owner must not cross the network"
    assert second.deduplicated and second.files[0].deduplicated
    assert second.asset_id != first.asset_id and second.checksum == first.checksum
    down = client.download(second.asset_id, base_dir / "dedup-out")
    assert file_digest(down.files[0].local_path) == file_digest(original)

    # A new version with the same bytes as an existing one is deduplicated too.
    again = client.upload_version(first.asset_id, copy)
    assert again.bytes_sent == 0 and again.deduplicated

    # A directory with one known and one new file sends only the new one.
    mixed = base_dir / "dedup-mixed"
    mixed.mkdir()
    shutil.copyfile(original, mixed / "known.bin")
    write_random(mixed / "new.bin", 5000)
    partial = client.upload(mixed, title="dedup mixed", owner_type="project", owner_id=project.project_id)
    assert {f.name: f.deduplicated for f in partial.files} == {"known.bin": True, "new.bin": False}
    assert partial.bytes_sent == 5000 and not partial.deduplicated

    # Another owner gets no free ride on content they cannot read: Bob sends every byte.
    bob = bob_client.auth_status()
    theirs = bob_client.upload(copy, title="bob's copy", owner_type="user", owner_id=bob.user_id)
    assert theirs.bytes_sent == size and not theirs.deduplicated


def test_deleting_a_version_keeps_the_others(
    client: DataeraiClient, bob_client: DataeraiClient, project: Project, base_dir: Path
):
    first = write_random(base_dir / "scan-v1.bin", 3000)
    v1 = client.upload(first, title="scan", owner_type="project", owner_id=project.project_id)
    second = write_random(base_dir / "scan-v2.bin", 2000)
    v2 = client.upload_version(v1.asset_id, second)
    third = write_random(base_dir / "scan-v3.bin", 1000)
    v3 = client.upload_version(v1.asset_id, third)

    # An outsider cannot tell the version exists; the asset keeps all three.
    with pytest.raises(DaemonError) as err:
        bob_client.delete_version(v1.asset_id, v2.content_id)
    assert err.value.code == "ERR_NOT_FOUND"

    client.delete_version(v1.asset_id, v2.content_id)
    assert [v.content_id for v in client.list_versions(v1.asset_id)] == [v3.content_id, v1.content_id]
    with pytest.raises(DaemonError) as err:
        client.download(v1.asset_id, base_dir / "gone", content_id=v2.content_id)
    assert err.value.code == "ERR_NOT_FOUND"

    # Deleting the newest makes the previous one the latest.
    client.delete_version(v1.asset_id, v3.content_id)
    assert client.get_metadata(v1.asset_id).content_id == v1.content_id
    got = client.download(v1.asset_id, base_dir / "scan-latest")
    assert file_digest(got.files[0].local_path) == file_digest(first)

    # The only version cannot go: that is deleting the asset.
    with pytest.raises(DaemonError) as err:
        client.delete_version(v1.asset_id, v1.content_id)
    assert err.value.code == "ERR_CONFLICT" and "delete the asset" in err.value.message
    assert [v.content_id for v in client.list_versions(v1.asset_id)] == [v1.content_id]


def test_list_calls_page_with_totals_and_cursors(client: DataeraiClient, project: Project, base_dir: Path):
    src = write_random(base_dir / "paged.bin", 100)
    up = client.upload(src, title="paged", owner_type="project", owner_id=project.project_id)
    for _ in range(4):
        client.upload_version(up.asset_id, src)

    page = client.list_versions(up.asset_id, limit=2)
    assert isinstance(page, ListPage) and len(page) == 2 and page.total == 5
    seen = [v.content_id for v in page]
    while page.next_cursor:
        page = client.list_versions(up.asset_id, limit=2, cursor=page.next_cursor)
        assert page.total == 5
        seen += [v.content_id for v in page]
    assert seen == [v.content_id for v in client.iter_versions(up.asset_id)]
    assert len(seen) == 5 and len(set(seen)) == 5

    assets = client.list_assets(owner_type="project", owner_id=project.project_id, limit=1)
    assert len(assets) == 1 and assets.total >= 1
    assert assets.total == sum(
        1 for _ in client.iter_assets(owner_type="project", owner_id=project.project_id)
    )
    projects = client.list_projects(limit=1)
    assert projects.total == len(list(client.iter_projects()))
    assert projects.next_cursor is None or projects.next_cursor == "o1"

    with pytest.raises(DaemonError) as err:
        client.list_versions(up.asset_id, cursor="page-2")
    assert err.value.code == "ERR_INVALID_INPUT"
    with pytest.raises(DaemonError) as err:
        client.list_versions(up.asset_id, cursor="o2", offset=2)
    assert err.value.code == "ERR_INVALID_INPUT"
