"""Call forms of code already written against the SDK (instrument, microscopy, simulation and
notebook integrations): a personal owner given by email, ``record_type``/``allocation_id`` on
upload, ``set_record_type``, the result fields callers read, ``find_assets``, ``server_url``, and
a daemon that takes its token from ``DATAERAI_TOKEN``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import CLI_BIN, DaemonProcess, Server, User, short_tmpdir, upload_to_project, write_random

from dataerai import (
    AsyncDataeraiClient,
    AuthStatus,
    DaemonError,
    DataEraiClient,
    DataeraiClient,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    Project,
    UploadItem,
)


def test_personal_owner_by_own_email(client: DataeraiClient, me: AuthStatus, base_dir: Path, user_b: User):
    path = write_random(base_dir / "by-email.bin", 300)
    up = client.upload(path, title="by email", owner_type="user", owner_id=me.user_email)
    meta = client.get_metadata(up.asset_id)
    assert (meta.owner_type, meta.owner_id) == ("user", me.user_id)
    mine = client.list_assets(owner_type="user", owner_id=me.user_email, limit=1000)
    assert up.asset_id in {a.asset_id for a in mine}
    # Someone else's email, existing or not: the same refusal.
    for other in (user_b.email, f"nobody-{uuid.uuid4().hex[:6]}@example.org"):
        with pytest.raises(PermissionDeniedError) as err:
            client.upload(path, title="not mine", owner_type="user", owner_id=other)
        assert err.value.code == "ERR_PERMISSION_DENIED"
        with pytest.raises(DaemonError) as err:
            client.list_assets(owner_type="user", owner_id=other)
        assert err.value.code == "ERR_PERMISSION_DENIED"


def test_every_call_that_takes_an_owner_takes_the_callers_email(
    client: DataeraiClient, me: AuthStatus, base_dir: Path, user_b: User
):
    """Not only upload/list_assets: upload_many items (UploadItem or dict), iter_assets and the
    async client resolve your own email (any case) and refuse anyone else's."""
    path = write_random(base_dir / "owner-forms.bin", 120)
    mine, mine_dict, other = client.upload_many(
        [
            UploadItem(path, "many by email", "user", me.user_email),
            {
                "local_path": path,
                "title": "many by email (dict)",
                "owner_type": "user",
                "owner_id": me.user_email.upper(),
            },
            UploadItem(path, "someone else's", "user", user_b.email),
        ]
    )
    for item in (mine, mine_dict):
        assert item.ok, item.error
        assert item.result is not None
        meta = client.get_metadata(item.result.asset_id)
        assert (meta.owner_type, meta.owner_id) == ("user", me.user_id)
    assert other.result is None and other.error is not None
    assert other.error.code == "ERR_PERMISSION_DENIED", other.error

    listed = {a.asset_id for a in client.iter_assets(owner_type="user", owner_id=me.user_email)}
    assert {mine.result.asset_id, mine_dict.result.asset_id} <= listed  # type: ignore[union-attr]
    with pytest.raises(PermissionDeniedError):
        list(client.iter_assets(owner_type="user", owner_id=user_b.email))

    async def run() -> None:
        async with AsyncDataeraiClient(socket_path=client.socket_path, auto_start=False) as c:
            up = await c.upload(path, title="async by email", owner_type="user", owner_id=me.user_email)
            assert (await c.get_metadata(up.asset_id)).owner_id == me.user_id
            page = await c.list_assets(owner_type="user", owner_id=me.user_email, limit=1000)
            assert up.asset_id in {a.asset_id for a in page}
            with pytest.raises(PermissionDeniedError):
                await c.upload(path, title="not mine", owner_type="user", owner_id=user_b.email)
            with pytest.raises(PermissionDeniedError):
                await c.list_assets(owner_type="user", owner_id=user_b.email)

    asyncio.run(run())


def test_auth_status_has_server_url_and_user_id(me: AuthStatus, server: Server):
    assert me.server_url == me.server == server.url
    assert me.raw["server_url"] == server.url
    assert me.user_id and me.user_email


def test_record_type_and_allocation_on_upload(client: DataeraiClient, project: Project, base_dir: Path):
    path = write_random(base_dir / "typed.bin", 500)
    kind = f"dataset{uuid.uuid4().hex[:6]}"
    up = upload_to_project(
        client, project, path, "typed", record_type=kind, allocation_id=project.allocation_id
    )
    assert client.get_metadata(up.asset_id).record_type == kind
    assert [a.asset_id for a in client.search(f"type:{kind}").items] == [up.asset_id]
    assert client.set_record_type(up.asset_id, record_type="measurement").record_type == "measurement"
    assert client.set_metadata(up.asset_id, record_type="analysis").record_type == "analysis"
    upload_to_project(client, project, path, "no allocation named", allocation_id=None)
    [item] = client.upload_many(
        [UploadItem(path, "many", "project", project.project_id, allocation_id=project.allocation_id)]
    )
    assert item.ok, item.error
    [item] = client.upload_many(
        [
            {
                "local_path": path,
                "title": "many",
                "owner_type": "project",
                "owner_id": project.project_id,
                "allocation_id": "no-such-allocation",
            }
        ]
    )
    assert item.error is not None and item.error.code == "ERR_NOT_FOUND"

    with pytest.raises(NotFoundError):
        upload_to_project(client, project, path, "unknown allocation", allocation_id=str(uuid.uuid4()))
    with pytest.raises(InvalidInputError):
        client.set_record_type(up.asset_id, record_type="")


RECORD_TYPES_SEEN_IN_THE_WILD = [
    "dataset",
    "measurement",
    "analysis",
    "figure",
    "log",
    "model",
    "calibration",
    "simulation",
    "software_code",
    "jupyter_notebook",
    "protocol_workflow",
    "sample_specimen",
    "imaging",
    "diffraction_scattering",
]


def test_record_type_is_free_text_of_at_most_64_characters(
    client: DataeraiClient, project: Project, base_dir: Path
):
    path = write_random(base_dir / "kinds.bin", 10)
    up = upload_to_project(client, project, path, "kinds")
    assert client.get_metadata(up.asset_id).record_type is None
    for kind in RECORD_TYPES_SEEN_IN_THE_WILD:
        assert client.set_metadata(up.asset_id, record_type=kind).record_type == kind
        assert client.get_metadata(up.asset_id).record_type == kind
    longest = (uuid.uuid4().hex * 2)[:64]
    typed = upload_to_project(client, project, path, "longest kind", record_type=longest)
    assert client.get_metadata(typed.asset_id).record_type == longest
    assert [a.asset_id for a in client.search(f"type:{longest}").items] == [typed.asset_id]
    too_long = longest + "x"
    with pytest.raises(InvalidInputError) as err:
        upload_to_project(client, project, path, "too long a kind", record_type=too_long)
    assert err.value.code == "ERR_INVALID_INPUT"
    with pytest.raises(InvalidInputError):
        client.set_metadata(up.asset_id, record_type=too_long)
    with pytest.raises(InvalidInputError):
        client.set_record_type(up.asset_id, record_type=too_long)
    assert client.get_metadata(up.asset_id).record_type == RECORD_TYPES_SEEN_IN_THE_WILD[-1]


def test_personal_upload_charged_to_a_project_allocation(
    client: DataeraiClient, bob_client: DataeraiClient, user_b: User, me: AuthStatus, base_dir: Path
):
    project = client.create_project(f"charged-{uuid.uuid4().hex[:6]}")

    def project_used() -> int:
        return next(p for p in client.iter_projects() if p.project_id == project.project_id).used_bytes

    path = write_random(base_dir / "charged.bin", 700)
    up = client.upload(
        path,
        title="personal, project pays",
        owner_type="user",
        owner_id=me.user_id,
        allocation_id=project.allocation_id,
    )
    meta = client.get_metadata(up.asset_id)
    assert (meta.owner_type, meta.owner_id) == ("user", me.user_id)
    assert meta.allocation_id == project.allocation_id
    assert project_used() == 700
    # Later versions keep charging the asset's allocation.
    client.upload_version(up.asset_id, write_random(base_dir / "charged-v2.bin", 300))
    assert project_used() == 1000
    # The owner's default allocation is not shown.
    plain = client.upload(path, title="personal", owner_type="user", owner_id=me.user_id)
    assert client.get_metadata(plain.asset_id).allocation_id is None
    assert project_used() == 1000

    # Someone outside the project cannot see its allocation; a viewer may not charge it.
    bob = bob_client.auth_status()
    bobs = write_random(base_dir / "bobs.bin", 100)
    charge = dict(title="bob's", owner_type="user", owner_id=bob.user_id, allocation_id=project.allocation_id)
    with pytest.raises(NotFoundError):
        bob_client.upload(bobs, **charge)
    client.add_project_member(project.project_id, user_b.email, "viewer")
    with pytest.raises(PermissionDeniedError):
        bob_client.upload(bobs, **charge)
    client.add_project_member(project.project_id, user_b.email, "member")
    bob_client.upload(bobs, **charge)
    assert project_used() == 1100

    # Deleting the asset gives its bytes back to the project.
    client.delete_asset(up.asset_id)
    assert project_used() == 100


def test_results_carry_what_callers_read(client: DataeraiClient, project: Project, base_dir: Path):
    raw_path = write_random(base_dir / "fields-raw.bin", 2000)
    raw = upload_to_project(client, project, raw_path, "raw frames")
    client.set_metadata(raw.asset_id, alias="frames-1")
    fit = upload_to_project(client, project, write_random(base_dir / "fields-fit.bin", 100), "fit")
    for name in ("asset_id", "content_id", "transfer_id", "total_bytes", "chunk_count"):
        assert getattr(raw, name), name
    when = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
    rel = client.create_relationship(
        fit.asset_id,
        raw.asset_id,
        relationship_type="derived_from",
        analysis_mode="non_destructive",
        qualifier_note="least squares",
        qualifier_time=when,
        qualifiers={"model": "lorentzian"},
    )
    assert (rel.id, rel.type, rel.direction) == (rel.id, "derived_from", "out")
    assert (rel.from_asset_id, rel.to_asset_id) == (fit.asset_id, raw.asset_id)
    assert rel.analysis_mode == "non_destructive"
    assert rel.qualifier_note == "least squares"
    assert rel.qualifier_time == when
    assert rel.qualifiers["model"] == "lorentzian"
    assert rel.related_asset["id"] == raw.asset_id
    assert rel.related_asset["title"] == "raw frames"
    assert rel.related_asset["alias"] == "frames-1"

    got = client.download(raw.asset_id, base_dir / "fields-out")
    assert (got.asset_id, got.content_id) == (raw.asset_id, raw.content_id)
    [f] = got.files
    assert (f.filename, f.size) == ("fields-raw.bin", 2000)
    assert f.local_path == base_dir / "fields-out" / "fields-raw.bin"


def test_find_assets_returns_every_exact_title_match(
    client: DataeraiClient, bob_client: DataeraiClient, project: Project, base_dir: Path
):
    title = f"Rabi sweep {uuid.uuid4().hex[:6]}"
    path = write_random(base_dir / "rabi.bin", 64)
    first = upload_to_project(client, project, path, title, record_type="measurement")
    second = upload_to_project(client, project, path, title, record_type="analysis")
    upload_to_project(client, project, path, f"{title} extended")
    me = client.auth_status()
    client.upload(path, title=title.upper(), owner_type="user", owner_id=me.user_id)
    bob = bob_client.auth_status()
    bobs = bob_client.upload(path, title=title, owner_type="user", owner_id=bob.user_id)  # not Alice's to see

    found = client.find_assets(title=title)
    assert sorted(a.asset_id for a in found) == sorted([first.asset_id, second.asset_id])
    assert all(a.title == title and a.has_content for a in found)
    assert [a.asset_id for a in client.find_assets(title=title, record_type="analysis")] == [second.asset_id]
    in_root = client.find_assets(title=title, collection_id=project.root_collection_id)
    assert len(in_root) == 2
    assert client.find_assets(title=f"{title} missing") == []
    assert len(client.find_assets(title=title, exact=False)) == 4
    assert [a.asset_id for a in bob_client.find_assets(title=title)] == [bobs.asset_id]


def test_async_client_has_the_same_forms(client: DataeraiClient, project: Project, base_dir: Path):
    title = f"async form {uuid.uuid4().hex[:6]}"
    up = upload_to_project(client, project, write_random(base_dir / "async-form.bin", 10), title)

    async def run() -> None:
        async with AsyncDataeraiClient(socket_path=client.socket_path, auto_start=False) as c:
            assert [a.asset_id for a in await c.find_assets(title=title)] == [up.asset_id]
            assert (await c.set_record_type(up.asset_id, record_type="figure")).record_type == "figure"

    asyncio.run(run())


def test_daemon_takes_its_token_from_the_environment(
    server: Server, user_a: User, monkeypatch: pytest.MonkeyPatch, base_dir: Path
):
    empty_config = short_tmpdir("noconfig-")
    monkeypatch.setenv("DATAERAI_TOKEN", user_a.token)
    monkeypatch.setenv("DATAERAI_SERVER", server.url)
    sock_dir = short_tmpdir("envdaemon-")
    daemon = DaemonProcess(empty_config, sock_dir / "d.sock")
    try:
        with DataEraiClient(socket_path=sock_dir / "d.sock", binary_path=CLI_BIN, auto_start=False) as c:
            c.connect()  # explicit connect before use is harmless
            status = c.auth_status()
            assert status.user_email == user_a.email
            assert status.token_kind == "env"
            path = write_random(base_dir / "env-token.bin", 100)
            up = c.upload(path, title="env", owner_type="user", owner_id=user_a.email)
            assert c.get_metadata(up.asset_id).owner_id == status.user_id
    finally:
        daemon.stop()
    assert not (empty_config / "credentials").exists()
    # Nowhere on disk: not in the config dir, the daemon's journal or its log.
    token = user_a.token.encode()
    for root in (empty_config, sock_dir):
        for f in root.rglob("*"):
            if f.is_file():
                assert token not in f.read_bytes(), f
