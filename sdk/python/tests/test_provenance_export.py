"""Provenance export through SDK → daemon → server, read back by independent implementations:
the PROV-JSON file by the ``prov`` package (the derivations and agents it names), the RO-Crate
folder by ``rocrate`` (ro-crate-py) and ``rocrate-validator`` (required level of RO-Crate 1.1),
its data files byte-identical to what was uploaded and as big as the metadata says."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any, Dict

import prov.model
import pytest
from conftest import upload_to_project, write_random

from dataerai import (
    AsyncDataeraiClient,
    DataeraiClient,
    InvalidInputError,
    LocalFileExistsError,
    ProvenanceExport,
    RoCrateExport,
)


@pytest.fixture(scope="module")
def lineage(client: DataeraiClient, base_dir: Path) -> Dict[str, Any]:
    """A fresh project with raw → fit → figure (each derived from the one before) and the
    uploaded files by asset id."""
    project = client.create_project(f"provenance {uuid.uuid4().hex[:8]}")
    files: Dict[str, Path] = {}
    ids: Dict[str, str] = {}
    for i, (name, record_type, filename) in enumerate(
        [("raw", "raw_data", "scan.tif"), ("fit", "analysis", "fit.csv"), ("figure", "figure", "plot.png")]
    ):
        folder = base_dir / f"provexport-{name}"
        folder.mkdir(exist_ok=True)
        path = write_random(folder / filename, 3000 + 100 * i)
        up = upload_to_project(
            client,
            project,
            path,
            f"provenance {name}",
            record_type=record_type,
            tags=["provexport"],
            metadata={"step": i, "sample": {"name": "SrRuO3"}},
        )
        ids[name] = up.asset_id
        files[up.asset_id] = path
    client.create_relationship(
        ids["fit"],
        ids["raw"],
        relationship_type="derived_from",
        analysis_mode="non_destructive",
        qualifier_note="peak fit",
        qualifier_time="2026-12-06T10:00:00Z",
    )
    client.create_relationship(ids["figure"], ids["fit"], relationship_type="analysis_of")
    return {"project": project, "ids": ids, "files": files}


def test_prov_json_names_every_derivation_for_the_prov_package(
    client: DataeraiClient, lineage: Dict[str, Any], tmp_path: Path
) -> None:
    ids = lineage["ids"]
    out = tmp_path / "figure.prov.json"
    result = client.export_provenance(ids["figure"], out)
    assert isinstance(result, ProvenanceExport)
    assert result.path == out and result.entity_count == 3 and result.derivation_count == 2

    document = prov.model.ProvDocument.deserialize(str(out), format="json")
    derivations = {
        (
            next(iter(r.get_attribute("prov:generatedEntity"))).localpart,
            next(iter(r.get_attribute("prov:usedEntity"))).localpart,
        )
        for r in document.get_records(prov.model.ProvDerivation)
    }
    assert derivations == {(ids["fit"], ids["raw"]), (ids["figure"], ids["fit"])}
    raw = next(e for e in document.get_records(prov.model.ProvEntity) if e.identifier.localpart == ids["raw"])
    assert set(raw.get_attribute("prov:label")) == {"provenance raw"}
    agents = list(document.get_records(prov.model.ProvAgent))
    assert len(agents) == 1  # one uploader, shown by email to themself
    assert "@" in str(next(iter(agents[0].get_attribute("prov:label"))))

    text = json.loads(out.read_text())
    fit_from_raw = next(
        d for d in text["wasDerivedFrom"].values() if d["prov:usedEntity"] == f"dataerai:{ids['raw']}"
    )
    assert fit_from_raw["dataerai_term:relationshipType"] == "derived_from"
    assert fit_from_raw["dataerai_term:analysisMode"] == "non_destructive"
    assert fit_from_raw["dataerai_term:qualifierNote"] == "peak fit"

    up_only = client.export_provenance(ids["fit"], tmp_path / "up.json", direction="up", depth=1)
    assert up_only.entity_count == 2 and up_only.derivation_count == 1

    with pytest.raises(InvalidInputError, match="prov-json"):
        client.export_provenance(ids["figure"], tmp_path / "x.provn", format="prov-n")
    with pytest.raises(InvalidInputError):
        client.export_provenance(ids["figure"], tmp_path / "y.json", direction="sideways")


def test_ro_crate_of_a_collection_loads_validates_and_holds_the_uploaded_bytes(
    client: DataeraiClient, lineage: Dict[str, Any], tmp_path: Path
) -> None:
    from rocrate.rocrate import ROCrate

    project = lineage["project"]
    dest = tmp_path / "crate"
    crate = client.export_ro_crate(dest, collection_id=project.root_collection_id)
    assert isinstance(crate, RoCrateExport)
    assert crate.asset_count == 3 and crate.file_count == 3 and len(crate.downloads) == 3
    assert crate.metadata_path == dest / "ro-crate-metadata.json"

    loaded = ROCrate(dest)
    files = [e for e in loaded.get_entities() if "File" in e.type]
    assert len(files) == 3
    by_asset: Dict[str, Any] = {}
    for dataset in loaded.get_entities():
        if dataset.type == "Dataset" and dataset.get("identifier") in lineage["files"]:
            by_asset[dataset["identifier"]] = dataset
    assert set(by_asset) == set(lineage["files"])
    for asset_id, original in lineage["files"].items():
        (part,) = by_asset[asset_id]["hasPart"]
        local = dest / part.id
        assert local.read_bytes() == original.read_bytes()
        assert int(part["contentSize"]) == original.stat().st_size
    fit = by_asset[lineage["ids"]["fit"]]
    based_on = fit["isBasedOn"]
    based_on = based_on if isinstance(based_on, list) else [based_on]
    assert [b.id for b in based_on] == [by_asset[lineage["ids"]["raw"]].id]
    assert by_asset[lineage["ids"]["raw"]]["additionalType"] == "raw_data"

    validated = _validate(dest)
    assert validated is None or not validated.has_issues(), [
        (i.check.identifier, i.message) for i in validated.get_issues()
    ]

    # Again into the same folder: the same export, refreshed (identical files are kept).
    again = client.export_ro_crate(dest, collection_id=project.root_collection_id)
    assert all(f.skipped for d in again.downloads for f in d.files)
    # Anything else in a non-empty folder is refused, and nothing is written.
    with pytest.raises(LocalFileExistsError):
        client.export_ro_crate(dest, query="tag:provexport")
    with pytest.raises(InvalidInputError):
        client.export_ro_crate(tmp_path / "neither")
    with pytest.raises(InvalidInputError):
        client.export_ro_crate(tmp_path / "both", collection_id="c", query="q")


def _validate(dest: Path) -> Any:
    """rocrate-validator at the REQUIRED level of RO-Crate 1.1 (None when it cannot run here)."""
    try:
        from rocrate_validator import models, services
    except ImportError:  # pragma: no cover - declared in the dev extra
        return None
    # Offline, with a cache of its own: the tests have no network. The two checks that download
    # the published @context (https://w3id.org/ro/crate/1.1/context) to see that it resolves are
    # skipped; every other REQUIRED check of the profile runs.
    settings = services.ValidationSettings(
        rocrate_uri=str(dest),
        profile_identifier="ro-crate-1.1",
        requirement_severity=models.Severity.REQUIRED,
        offline=True,
        cache_path=dest.parent / "validator-cache",
        skip_checks=["ro-crate-1.1_3.1", "ro-crate-1.1_3.2"],
    )
    return services.validate(settings)


def test_metadata_only_crate_of_a_search_names_files_by_url(
    client: DataeraiClient, lineage: Dict[str, Any], tmp_path: Path
) -> None:
    dest = tmp_path / "search-crate"
    project = lineage["project"]
    crate = client.export_ro_crate(
        dest, query=f"project:{project.project_id} type:raw_data", include_data=False
    )
    assert crate.asset_count == 1 and crate.downloads == []
    doc = json.loads(crate.metadata_path.read_text())
    files = [e for e in doc["@graph"] if e["@type"] == "File"]
    assert len(files) == 1 and files[0]["@id"].startswith("http")
    assert not any(p.is_file() for p in dest.rglob("*") if p.name != "ro-crate-metadata.json")


def test_async_client_exports_provenance(
    client: DataeraiClient, lineage: Dict[str, Any], tmp_path: Path
) -> None:
    async def run() -> ProvenanceExport:
        async with AsyncDataeraiClient(socket_path=client.socket_path) as aclient:
            return await aclient.export_provenance(lineage["ids"]["fit"], tmp_path / "fit.json")

    result = asyncio.run(run())
    assert result.entity_count == 3 and (tmp_path / "fit.json").is_file()
