"""Call forms existing code uses: the DataEraiClient spelling, connect() first, keyword
construction, a bare DataeraiClient(); and the iterators that page for you."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CLI_BIN, upload_to_project, write_random

import dataerai
from dataerai import DataEraiClient, DataeraiClient, Project, _params


def test_capital_e_spelling_is_the_same_class():
    assert DataEraiClient is DataeraiClient
    assert "DataEraiClient" in dataerai.__all__


def test_connect_before_use_and_again_is_harmless(client: DataeraiClient):
    c = DataEraiClient(binary_path=CLI_BIN, socket_path=client.socket_path)
    assert c.connect() is c
    conn = c._conn
    assert c.connect() is c and c._conn is conn  # no second connection
    assert c.auth_status().user_email
    c.close()
    assert not c.started_daemon  # the daemon was already running: left alone
    assert client.ping()


def test_bare_constructor_uses_the_default_socket(client: DataeraiClient, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATAERAI_SOCKET", str(client.socket_path))
    with DataeraiClient() as c:
        assert c.socket_path == client.socket_path
        assert c.ping()["version"]


def test_iterators_page_through_every_item(
    client: DataeraiClient, project: Project, base_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    for i in range(5):
        path = write_random(base_dir / f"iter-{i}.bin", 50 + i)
        client.upload(path, title=f"iter {i}", owner_type="project", owner_id=project.project_id)
    one_page = client.list_assets(owner_type="project", owner_id=project.project_id, limit=1000)
    calls = []
    real_call = client._call

    def counting(method, params=None, **kw):
        calls.append((method, dict(params or {})))
        return real_call(method, params, **kw)

    monkeypatch.setattr(_params, "PAGE_SIZE", 2)
    monkeypatch.setattr(client, "_call", counting)
    paged = list(client.iter_assets(owner_type="project", owner_id=project.project_id))
    assert [a.asset_id for a in paged] == [a.asset_id for a in one_page]
    assert len(calls) >= 3 and all(p["limit"] == 2 for _, p in calls)
    assert [p["offset"] for _, p in calls][:3] == [0, 2, 4]

    assert {p.project_id for p in client.iter_projects()} >= {project.project_id}
    members = list(client.iter_project_members(project.project_id))
    assert [m.email for m in members] == [m.email for m in client.list_project_members(project.project_id)]
    up = upload_to_project(client, project, write_random(base_dir / "iter-v.bin", 10), "v")
    for _ in range(2):
        client.upload_version(up.asset_id, write_random(base_dir / "iter-v.bin", 10))
    assert len(list(client.iter_versions(up.asset_id))) == 3
