"""Project members and roles through the SDK, against the real daemon and server.

Alice (``client``) owns a project; Bob (``bob_client``) is added as viewer, then member, then
removed. What each role may do is checked through real calls.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import User, write_random

from dataerai import DaemonError, DataeraiClient, ProjectMember


def codes_of(fn, *args, **kwargs) -> str:
    with pytest.raises(DaemonError) as err:
        fn(*args, **kwargs)
    assert err.value.message
    return err.value.code


def test_members_roles_and_what_they_allow(
    client: DataeraiClient, bob_client: DataeraiClient, user_b: User, base_dir: Path
):
    project = client.create_project("members-test")
    pid = project.project_id
    raw = write_random(base_dir / "members-raw.bin", 200_000)
    asset = client.upload(raw, title="Raw", owner_type="project", owner_id=pid)

    # Outsider: no access at all.
    assert codes_of(bob_client.get_metadata, asset.asset_id) in ("ERR_PERMISSION_DENIED", "ERR_NOT_FOUND")
    assert all(p.project_id != pid for p in bob_client.list_projects())

    # Viewer: reads and downloads, never writes.
    added = client.add_project_member(pid, user_b.email, "viewer")
    assert isinstance(added, ProjectMember) and added.role == "viewer" and added.email == user_b.email
    roles = {m.email: m.role for m in client.list_project_members(pid)}
    assert roles[user_b.email] == "viewer" and roles[client.auth_status().user_email] == "owner"
    assert [p.role for p in bob_client.list_projects() if p.project_id == pid] == ["viewer"]
    assert bob_client.get_metadata(asset.asset_id).title == "Raw"
    got = bob_client.download(asset.asset_id, base_dir / "members-viewer-dl")
    assert got.files[0].local_path.read_bytes() == raw.read_bytes()
    assert codes_of(bob_client.set_metadata, asset.asset_id, title="nope") == "ERR_PERMISSION_DENIED"
    assert (
        codes_of(bob_client.upload, raw, title="x", owner_type="project", owner_id=pid)
        == "ERR_PERMISSION_DENIED"
    )
    assert codes_of(bob_client.add_project_member, pid, user_b.email, "owner") == "ERR_PERMISSION_DENIED"
    assert client.get_metadata(asset.asset_id).title == "Raw"

    # Member: writes too. A relationship needs write on the source and read on the target.
    assert client.add_project_member(pid, user_b.email, "member").role == "member"
    bob_client.set_metadata(asset.asset_id, metadata={"checked_by": "bob"})
    derived = bob_client.upload(raw, title="Derived", owner_type="project", owner_id=pid)
    rel = bob_client.create_relationship(derived.asset_id, asset.asset_id, relationship_type="derived_from")
    assert rel.related_asset["id"] == asset.asset_id
    # Bob's personal asset stays private: Alice can neither read it nor link from her asset to it.
    mine = bob_client.upload(
        raw, title="Bob's notes", owner_type="user", owner_id=bob_client.auth_status().user_id
    )
    assert codes_of(client.get_metadata, mine.asset_id) in ("ERR_PERMISSION_DENIED", "ERR_NOT_FOUND")
    assert codes_of(
        client.create_relationship, asset.asset_id, mine.asset_id, relationship_type="derived_from"
    ) in ("ERR_PERMISSION_DENIED", "ERR_NOT_FOUND")

    # Bad input is refused clearly.
    assert codes_of(client.add_project_member, pid, user_b.email, "superuser") == "ERR_INVALID_INPUT"
    # An email without an account is invited: answered like a known one, so
    # adding members never tells who has an account.
    invited = client.add_project_member(pid, "nobody@example.org", "member")
    assert isinstance(invited, ProjectMember) and invited.email == "nobody@example.org"
    client.remove_project_member(pid, "nobody@example.org")
    owner_email = client.auth_status().user_email
    assert codes_of(client.remove_project_member, pid, owner_email) == "ERR_INVALID_INPUT"

    # Removed: back to outsider.
    client.remove_project_member(pid, user_b.email)
    assert user_b.email not in {m.email for m in client.list_project_members(pid)}
    assert codes_of(bob_client.get_metadata, asset.asset_id) in ("ERR_PERMISSION_DENIED", "ERR_NOT_FOUND")


def test_auth_status_reports_token_kind(client: DataeraiClient):
    status = client.auth_status()
    assert status.token_kind == "pat"
    assert status.refresh_expires_at is None
