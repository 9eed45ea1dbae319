"""Downloads never silently replace a user's file: same bytes are skipped, different ones are
refused with LocalFileExistsError (also a built-in FileExistsError) unless overwrite=True."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import upload_to_project, write_random

from dataerai import DataeraiClient, InvalidInputError, LocalFileExistsError, Project


def test_same_bytes_skipped_different_refused_unless_overwrite(
    client: DataeraiClient, project: Project, base_dir: Path
) -> None:
    src = write_random(base_dir / "clobber-src.bin", 200_000)
    up = upload_to_project(client, project, src, "never clobbered")
    dest = base_dir / "clobber-dest"
    first = client.download(up.asset_id, dest)
    assert [f.skipped for f in first.files] == [False]
    again = client.download(up.asset_id, dest)
    assert [f.skipped for f in again.files] == [True]

    target = dest / "clobber-src.bin"
    target.write_bytes(b"edited by hand")
    with pytest.raises(LocalFileExistsError) as refused:
        client.download(up.asset_id, dest)
    assert refused.value.code == "ERR_FILE_EXISTS"
    assert isinstance(refused.value, FileExistsError)
    assert "clobber-src.bin" in refused.value.message
    assert target.read_bytes() == b"edited by hand"
    assert sorted(p.name for p in dest.iterdir()) == ["clobber-src.bin"]

    replaced = client.download(up.asset_id, dest, overwrite=True)
    assert [f.skipped for f in replaced.files] == [False]
    assert target.read_bytes() == src.read_bytes()


def test_flags_are_checked_before_any_request(client: DataeraiClient, base_dir: Path) -> None:
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        client.download("any", base_dir, overwrite="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="allow_hidden"):
        client.download("any", base_dir, allow_hidden=1)  # type: ignore[arg-type]
