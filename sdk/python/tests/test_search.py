"""Search through SDK → daemon → server: record types at upload and by set_metadata, typed
metadata predicates, facets, cursor pages and iter_search, permission filtering and errors."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from conftest import write_random

from dataerai import DataeraiClient, InvalidInputError, NotFoundError, Project, SearchResult


def test_search_finds_uploads_by_words_type_tags_and_metadata(
    client: DataeraiClient, bob_client: DataeraiClient, project: Project, base_dir: Path
):
    tag = f"run{uuid.uuid4().hex[:12]}"  # this test's assets only
    ids = []
    for i, (title, record_type) in enumerate(
        [("Bright field scan", "raw_data"), ("Dark field scan", "raw_data"), ("Field fit", "analysis")]
    ):
        path = write_random(base_dir / f"search-{i}.bin", 1000 + i)
        up = client.upload(
            path,
            title=title,
            owner_type="project",
            owner_id=project.project_id,
            tags=[tag],
            metadata={"voltage_kv": 100 * (i + 1), "sample": {"name": "SrRuO3" if i == 0 else "Si"}},
            record_type=record_type,
        )
        ids.append(up.asset_id)
    assert client.get_metadata(ids[0]).record_type == "raw_data"

    page = client.search(f"tag:{tag} type:raw_data", sort="title")
    assert isinstance(page, SearchResult)
    assert [a.title for a in page.items] == ["Bright field scan", "Dark field scan"]
    assert page.total == 2 and page.next_cursor is None
    assert page.facets["tags"] == {tag: 2} and page.facets["record_types"] == {"raw_data": 2}

    assert [a.asset_id for a in client.search(f'tag:{tag} md.sample.name="SrRuO3"').items] == [ids[0]]
    assert {a.asset_id for a in client.search(f"tag:{tag} md.voltage_kv>=200").items} == set(ids[1:])
    assert [a.asset_id for a in client.search(f'tag:{tag} "bright field"').items] == [ids[0]]

    client.set_metadata(ids[2], record_type="figure")
    assert [a.asset_id for a in client.search(f"tag:{tag} type:figure").items] == [ids[2]]

    # Pages by cursor, and every match through iter_search.
    first = client.search(f"tag:{tag}", limit=2, sort="title")
    assert len(first.items) == 2 and first.total == 3 and first.next_cursor
    rest = client.search(f"tag:{tag}", limit=2, sort="title", cursor=first.next_cursor)
    titles = [a.title for a in first.items + rest.items]
    assert titles == ["Bright field scan", "Dark field scan", "Field fit"]
    assert [a.asset_id for a in client.iter_search(f"tag:{tag}", sort="-title")] == [ids[2], ids[1], ids[0]]

    # Bob is no member: nothing of the project shows up for him.
    assert bob_client.search(f"tag:{tag}").total == 0


def test_a_malformed_query_names_the_position(client: DataeraiClient):
    with pytest.raises(InvalidInputError, match="position 7"):
        client.search("field (tag:x")
    with pytest.raises(InvalidInputError, match="not a search field"):
        client.search("colour:red")


def test_deleted_assets_are_gone_from_search_and_get(client: DataeraiClient, me, base_dir: Path):
    tag = f"del{uuid.uuid4().hex[:12]}"
    up = client.upload(
        write_random(base_dir / "to-delete.bin", 321),
        title="Doomed",
        owner_type="user",
        owner_id=me.user_id,
        tags=[tag],
    )
    assert client.search(f"tag:{tag}").total == 1
    assert client.delete_asset(up.asset_id) is None
    assert client.search(f"tag:{tag}").total == 0
    with pytest.raises(NotFoundError):
        client.get_metadata(up.asset_id)
    with pytest.raises(NotFoundError):
        client.delete_asset(up.asset_id)


def test_a_capped_total_is_marked_as_a_lower_bound():
    """Past the server's count cap the total is a lower bound; older answers omit the flag."""
    capped = SearchResult.from_json(
        {"items": [], "total": 10000, "total_is_lower_bound": True, "next_cursor": "o50"}
    )
    assert (capped.total, capped.total_is_lower_bound) == (10000, True)
    exact = SearchResult.from_json({"items": [], "total": 3})
    assert (exact.total, exact.total_is_lower_bound, exact.next_cursor) == (3, False, None)
