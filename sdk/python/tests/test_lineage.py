"""Lineage through SDK → daemon → server: upload raw → fit → figure, walk up from the figure
to the raw data and down from the raw data to the figure, list relationships from either end,
and redaction of assets the caller may not read."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import upload_to_project, write_random

from dataerai import DataeraiClient, InvalidInputError, Lineage, Project


def test_lineage_walks_up_and_down_and_relationships_list_both_ends(
    client: DataeraiClient, project: Project, base_dir: Path
):
    ids = {}
    for i, (name, record_type) in enumerate([("raw", "raw_data"), ("fit", "analysis"), ("figure", "figure")]):
        path = write_random(base_dir / f"lineage-{name}.bin", 500 + i)
        up = upload_to_project(client, project, path, f"lineage {name}", record_type=record_type)
        ids[name] = up.asset_id
    client.create_relationship(ids["fit"], ids["raw"], relationship_type="derived_from")
    client.create_relationship(ids["figure"], ids["fit"], relationship_type="derived_from")

    up = client.lineage(ids["figure"], direction="up")
    assert isinstance(up, Lineage)
    assert up.root == ids["figure"] and not up.truncated
    raw = up.node(ids["raw"])
    assert raw is not None and raw.depth == 2 and raw.title == "lineage raw" and not raw.redacted
    assert raw.record_type == "raw_data"
    assert {(e.from_asset_id, e.to_asset_id, e.type) for e in up.edges} == {
        (ids["fit"], ids["raw"], "derived_from"),
        (ids["figure"], ids["fit"], "derived_from"),
    }
    down = client.lineage(ids["raw"], direction="down")
    figure = down.node(ids["figure"])
    assert figure is not None and figure.depth == 2
    near = client.lineage(ids["raw"], direction="down", depth=1)
    assert near.node(ids["figure"]) is None
    assert client.lineage(ids["figure"], types=["cites"]).edges == []

    (out,) = client.list_relationships(ids["fit"])
    assert out.direction == "out" and out.to_asset_id == ids["raw"]
    (inc,) = client.list_relationships(ids["fit"], direction="in")
    assert inc.direction == "in" and inc.related_asset["id"] == ids["figure"]
    both = client.list_relationships(ids["fit"], direction="both")
    assert sorted(r.direction for r in both) == ["in", "out"]

    with pytest.raises(InvalidInputError):
        client.lineage(ids["figure"], direction="sideways")
    with pytest.raises(InvalidInputError):
        client.list_relationships(ids["fit"], direction="up")
    with pytest.raises(InvalidInputError):
        client.lineage(ids["figure"], depth=21)
