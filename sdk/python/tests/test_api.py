"""Every SDK method and its error cases, against the real server and daemon."""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import List

import pytest
from conftest import REPO, DaemonProcess, Server, User, short_tmpdir, upload_to_project, write_random

from dataerai import (
    AssetMetadata,
    AuthStatus,
    DaemonError,
    DataeraiClient,
    Project,
    Relationship,
)


def read_analysis_modes() -> List[str]:
    """The relationship analysis modes, read from their one definition (``ANALYSIS_MODES`` in
    the proto crate, which the server and the daemon check against), so these tests follow it."""
    source = (REPO / "crates" / "dataerai-proto" / "src" / "api.rs").read_text()
    found = re.search(r"pub const ANALYSIS_MODES: &\[&str\] = &\[(.*?)\];", source, re.S)
    assert found, "ANALYSIS_MODES is no longer a string list in crates/dataerai-proto/src/api.rs"
    modes = re.findall(r'"(\w+)"', found.group(1))
    assert "non_destructive" in modes, modes
    return modes


ANALYSIS_MODES = read_analysis_modes()


@pytest.fixture(scope="module")
def raw_asset(client: DataeraiClient, project: Project, base_dir: Path):
    path = write_random(base_dir / "raw.bin", 4096)
    return upload_to_project(
        client,
        project,
        path,
        "Raw scan",
        description="raw detector frames",
        tags=["raw", "scan"],
        metadata={"beam_energy_keV": 25, "detector": {"name": "eiger", "pixels": [1024, 1024]}},
    )


@pytest.fixture(scope="module")
def derived_asset(client: DataeraiClient, project: Project, base_dir: Path):
    path = write_random(base_dir / "derived.bin", 1000)
    return client.upload(path, title="Reconstruction", owner_type="project", owner_id=project.project_id)


def expect_code(code: str, fn, *args, **kwargs) -> DaemonError:
    with pytest.raises(DaemonError) as err:
        fn(*args, **kwargs)
    assert err.value.code == code, f"expected {code}, got {err.value!r}"
    assert err.value.message
    return err.value


# ---------------------------------------------------------------- auth & projects


def test_auth_status_reports_the_signed_in_user(client: DataeraiClient, user_a: User, server: Server):
    status = client.auth_status()
    assert isinstance(status, AuthStatus)
    assert status.user_email == user_a.email
    assert status.user_id
    assert status.expires_at is None or (
        isinstance(status.expires_at, datetime) and status.expires_at.tzinfo is not None
    )
    assert status.server.rstrip("/") == server.url
    assert "write" in status.scopes


def test_not_signed_in_gives_auth_required(base_dir: Path):
    config = base_dir / "config-nobody"
    config.mkdir(mode=0o700)
    sock_dir = short_tmpdir("nobody-")
    daemon = DaemonProcess(config, sock_dir / "n.sock")
    try:
        with daemon.client() as anon:
            err = expect_code("ERR_AUTH_REQUIRED", anon.auth_status)
            assert "login" in err.message
            expect_code("ERR_AUTH_REQUIRED", anon.create_project, "nope")
    finally:
        daemon.stop()


def test_server_unreachable(base_dir: Path):
    # Sign in against a server that then goes away: the credentials are valid, the host is not.
    from conftest import start_server, stop_process

    gone = start_server(base_dir / "server-gone")
    user = gone.new_user(base_dir, "ghost")
    stop_process(gone.proc)
    sock_dir = short_tmpdir("gone-")
    daemon = DaemonProcess(user.config_dir, sock_dir / "g.sock")
    try:
        with daemon.client(request_timeout_s=120) as c:
            expect_code("ERR_SERVER_UNREACHABLE", c.create_project, "unreachable")
            expect_code("ERR_SERVER_UNREACHABLE", c.get_metadata, str(uuid.uuid4()))
    finally:
        daemon.stop()


def test_create_and_list_projects(client: DataeraiClient, me: AuthStatus):
    name = f"proj-{uuid.uuid4().hex[:6]}"
    project = client.create_project(name, description="a description")
    assert isinstance(project, Project)
    assert project.name == name and project.description == "a description"
    assert project.project_id and project.root_collection_id
    assert project.role == "owner"
    assert project.quota_bytes is not None and project.quota_bytes > 0
    assert project.used_bytes == 0
    assert isinstance(project.created_at, datetime)
    listed = {p.project_id: p for p in client.list_projects(limit=1000)}
    assert project.project_id in listed and listed[project.project_id].name == name


def test_create_project_rejects_empty_name(client: DataeraiClient):
    expect_code("ERR_INVALID_INPUT", client.create_project, "")


# ---------------------------------------------------------------- metadata


def test_get_metadata_after_upload(client: DataeraiClient, project: Project, raw_asset):
    meta = client.get_metadata(raw_asset.asset_id)
    assert isinstance(meta, AssetMetadata)
    assert meta.asset_id == raw_asset.asset_id
    assert meta.title == "Raw scan" and meta.description == "raw detector frames"
    assert meta.tags == ["raw", "scan"]
    assert meta.metadata == {"beam_energy_keV": 25, "detector": {"name": "eiger", "pixels": [1024, 1024]}}
    assert meta.owner_type == "project" and meta.owner_id == project.project_id
    assert project.root_collection_id in meta.collection_ids
    assert meta.content_id == raw_asset.content_id
    assert meta.total_bytes == 4096
    assert isinstance(meta.created_at, datetime) and isinstance(meta.updated_at, datetime)


def test_set_metadata_changes_and_merges(client: DataeraiClient, project: Project, base_dir: Path):
    path = write_random(base_dir / "meta.bin", 10)
    up = upload_to_project(client, project, path, "before", metadata={"keep": 1, "drop": 2})
    alias = f"alias-{uuid.uuid4().hex[:8]}"
    meta = client.set_metadata(
        up.asset_id,
        title="after",
        description="desc",
        alias=alias,
        tags=("a", "b"),
        metadata={"drop": None, "new": {"x": [1, 2]}},
    )
    assert meta.title == "after" and meta.description == "desc" and meta.alias == alias
    assert meta.tags == ["a", "b"]
    assert meta.metadata == {"keep": 1, "new": {"x": [1, 2]}}
    again = client.get_metadata(up.asset_id)
    assert again.title == "after" and again.metadata == meta.metadata
    assert again.updated_at >= again.created_at


def test_set_metadata_unknown_field(client: DataeraiClient, raw_asset):
    err = expect_code("ERR_INVALID_INPUT", client.set_metadata, raw_asset.asset_id, colour="red")
    assert "colour" in err.message
    assert client.get_metadata(raw_asset.asset_id).title == "Raw scan"


def test_set_metadata_metadata_not_a_dict(client: DataeraiClient, raw_asset):
    expect_code("ERR_INVALID_INPUT", client.set_metadata, raw_asset.asset_id, metadata=[1, 2])


def test_unknown_asset_is_not_found(client: DataeraiClient, base_dir: Path):
    missing = str(uuid.uuid4())
    expect_code("ERR_NOT_FOUND", client.get_metadata, missing)
    expect_code("ERR_NOT_FOUND", client.set_metadata, missing, title="x")
    expect_code("ERR_NOT_FOUND", client.download, missing, base_dir / "nowhere")


def test_list_assets(client: DataeraiClient, project: Project, raw_asset, me: AuthStatus):
    assets = client.list_assets(owner_type="project", owner_id=project.project_id, limit=1000)
    assert raw_asset.asset_id in {a.asset_id for a in assets}
    by_collection = client.list_assets(collection_id=project.root_collection_id, limit=1000)
    assert raw_asset.asset_id in {a.asset_id for a in by_collection}


# ---------------------------------------------------------------- upload validation


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"title": ""}, id="missing-title"),
        pytest.param({"owner_type": "team"}, id="bad-owner-type"),
        pytest.param({"metadata": [1, 2, 3]}, id="metadata-not-a-dict"),
        pytest.param({"chunk_size_mb": 0}, id="zero-chunk-size"),
        pytest.param({"chunk_size_mb": 100000}, id="huge-chunk-size"),
        pytest.param({"chunk_size_mb": 100}, id="chunk-size-not-a-power-of-two"),
    ],
)
def test_upload_rejects_bad_input(client: DataeraiClient, project: Project, base_dir: Path, kwargs):
    path = write_random(base_dir / "bad-input.bin", 100)
    args = {"title": "ok", "owner_type": "project", "owner_id": project.project_id, **kwargs}
    before = len(client.list_assets(owner_type="project", owner_id=project.project_id, limit=1000))
    expect_code("ERR_INVALID_INPUT", client.upload, path, **args)
    after = len(client.list_assets(owner_type="project", owner_id=project.project_id, limit=1000))
    assert after == before, "a refused upload must not leave an asset behind"


def test_upload_missing_file(client: DataeraiClient, project: Project, base_dir: Path):
    err = expect_code(
        "ERR_INVALID_INPUT",
        client.upload,
        base_dir / "does-not-exist.bin",
        title="x",
        owner_type="project",
        owner_id=project.project_id,
    )
    assert "does-not-exist.bin" in err.message


def test_upload_of_a_fifo_is_refused(client: DataeraiClient, project: Project, base_dir: Path):
    # Directories are uploads of their own (test_folders.py); anything neither a regular file
    # nor a directory is refused before anything moves.
    fifo = base_dir / "a-fifo"
    os.mkfifo(fifo)
    expect_code(
        "ERR_INVALID_INPUT",
        client.upload,
        fifo,
        title="x",
        owner_type="project",
        owner_id=project.project_id,
    )


def test_download_destination_not_writable(client: DataeraiClient, raw_asset, base_dir: Path):
    # Tests may run as root, for whom permission bits do not apply: a regular file as a parent
    # directory blocks creation for everyone.
    blocker = base_dir / "blocker.txt"
    blocker.write_text("not a directory")
    with pytest.raises(DaemonError) as err:
        client.download(raw_asset.asset_id, blocker / "sub")
    assert err.value.code in ("ERR_INVALID_INPUT", "ERR_PERMISSION_DENIED"), err.value
    assert blocker.read_text() == "not a directory"


# ---------------------------------------------------------------- relationships


def test_create_relationship_and_duplicates(client: DataeraiClient, raw_asset, derived_asset):
    when = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
    rel = client.create_relationship(
        derived_asset.asset_id,
        raw_asset.asset_id,
        "derived_from",
        analysis_mode="non_destructive",
        qualifier_note="filtered back-projection",
        qualifier_time=when,
        qualifiers={"software": "tomopy", "version": "1.15"},
    )
    assert isinstance(rel, Relationship)
    assert rel.id and rel.type == "derived_from"
    assert rel.from_asset_id == derived_asset.asset_id and rel.to_asset_id == raw_asset.asset_id
    assert rel.analysis_mode == "non_destructive"
    assert rel.qualifiers["software"] == "tomopy" and rel.qualifiers["note"] == "filtered back-projection"
    assert datetime.fromisoformat(rel.qualifiers["time"].replace("Z", "+00:00")) == when
    assert rel.related_asset["id"] == raw_asset.asset_id and rel.related_asset["title"] == "Raw scan"
    assert isinstance(rel.created_at, datetime)

    # The same edge again, spelled the way the public integrations spell it.
    try:
        client.create_relationship(
            derived_asset.asset_id, raw_asset.asset_id, relationship_type="derived_from"
        )
    except DaemonError as err:
        assert err.code == "ERR_RELATIONSHIP_EXISTS"
    else:
        pytest.fail("duplicate relationship was accepted")

    # A different type between the same assets is a different edge; a string time works too.
    other = client.create_relationship(
        derived_asset.asset_id,
        raw_asset.asset_id,
        relationship_type="analysis_of",
        qualifier_time="2026-03-01T12:30:00+02:00",
    )
    assert other.type == "analysis_of" and other.analysis_mode is None


def test_relationship_type_given_twice_or_not_at_all(client: DataeraiClient, raw_asset, derived_asset):
    expect_code(
        "ERR_INVALID_INPUT",
        client.create_relationship,
        derived_asset.asset_id,
        raw_asset.asset_id,
        "derived_from",
        relationship_type="derived_from",
    )
    expect_code("ERR_INVALID_INPUT", client.create_relationship, derived_asset.asset_id, raw_asset.asset_id)


@pytest.mark.parametrize("mode", ["sideways", "NON_DESTRUCTIVE", ""])
def test_relationship_bad_analysis_mode(client: DataeraiClient, raw_asset, derived_asset, mode):
    expect_code(
        "ERR_INVALID_INPUT",
        client.create_relationship,
        derived_asset.asset_id,
        raw_asset.asset_id,
        relationship_type=f"mode-test-{mode}",
        analysis_mode=mode,
    )


def test_relationship_every_analysis_mode(client: DataeraiClient, raw_asset, derived_asset):
    for mode in ANALYSIS_MODES:
        rel = client.create_relationship(
            derived_asset.asset_id, raw_asset.asset_id, f"step_{mode}", analysis_mode=mode
        )
        assert rel.analysis_mode == mode


def test_relationship_bad_inputs(client: DataeraiClient, raw_asset, derived_asset):
    expect_code(
        "ERR_INVALID_INPUT", client.create_relationship, derived_asset.asset_id, raw_asset.asset_id, "x" * 256
    )
    expect_code(
        "ERR_INVALID_INPUT",
        client.create_relationship,
        derived_asset.asset_id,
        raw_asset.asset_id,
        "timed",
        qualifier_time="not a time",
    )
    expect_code(
        "ERR_NOT_FOUND", client.create_relationship, derived_asset.asset_id, str(uuid.uuid4()), "derived_from"
    )


# ---------------------------------------------------------------- permissions & quota


def test_another_users_asset_is_as_unknown_as_a_missing_one(
    client: DataeraiClient, bob_client: DataeraiClient, raw_asset, base_dir: Path
):
    bob = bob_client.auth_status()
    path = write_random(base_dir / "bob.bin", 2048)
    private = bob_client.upload(path, title="Bob's notes", owner_type="user", owner_id=bob.user_id)

    # What a caller may not read answers like an unknown id: nothing tells
    # them it exists.
    err = expect_code("ERR_NOT_FOUND", client.get_metadata, private.asset_id)
    assert err.message == f"asset {private.asset_id} not found"
    expect_code("ERR_NOT_FOUND", client.set_metadata, private.asset_id, title="mine now")
    expect_code("ERR_NOT_FOUND", client.download, private.asset_id, base_dir / "stolen")
    assert not (base_dir / "stolen" / "bob.bin").exists()
    # Read access to the target is required...
    try:
        client.create_relationship(raw_asset.asset_id, private.asset_id, relationship_type="derived_from")
    except DaemonError as e:
        assert e.code == "ERR_NOT_FOUND"
    else:
        pytest.fail("relationship to an unreadable asset was accepted")
    # ...and write access to the source.
    expect_code(
        "ERR_NOT_FOUND",
        bob_client.create_relationship,
        raw_asset.asset_id,
        private.asset_id,
        "derived_from",
    )
    # Uploading into somebody else's personal space is refused too.
    me = client.auth_status()
    expect_code(
        "ERR_PERMISSION_DENIED", bob_client.upload, path, title="gift", owner_type="user", owner_id=me.user_id
    )
    assert bob_client.get_metadata(private.asset_id).title == "Bob's notes"


def test_quota_exceeded(client: DataeraiClient, server: Server, base_dir: Path):
    project = client.create_project(f"tiny-{uuid.uuid4().hex[:6]}")
    server.admin("set-quota", "--project", project.project_id, "--bytes", "10000")
    small = write_random(base_dir / "fits.bin", 4000)
    client.upload(small, title="fits", owner_type="project", owner_id=project.project_id)
    big = write_random(base_dir / "too-big.bin", 8000)
    err = expect_code(
        "ERR_QUOTA_EXCEEDED",
        client.upload,
        big,
        title="too big",
        owner_type="project",
        owner_id=project.project_id,
    )
    assert err.message
    listed = client.list_projects(limit=1000)
    used = next(p for p in listed if p.project_id == project.project_id).used_bytes
    assert used == 4000
