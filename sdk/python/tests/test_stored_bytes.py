"""Where the server keeps what the SDK uploads, and what happens when stored bytes go bad.

The suite runs twice in ``make test``: on the embedded stores (SQLite + a blob directory in the
server's data dir) and in ``make test-scaleout`` on PostgreSQL + S3 (``DATAERAI_DATABASE_URL``,
``DATAERAI_BLOB_STORE`` and the s3s-fs root ``DATAERAI_TEST_S3_ROOT``, whose objects are plain
files). These tests look at the stored objects themselves, so they prove which backend is used.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path
from typing import List

import pytest
from conftest import Server, write_random

from dataerai import DaemonError, DataeraiClient

MIB = 1 << 20


def blob_root(server: Server) -> Path:
    """The directory holding the server's chunk objects (``content/<content_id>/…`` below it)."""
    store = os.environ.get("DATAERAI_BLOB_STORE")
    if not store:
        return server.data_dir / "blobs"
    assert store.startswith("s3://"), store
    root = os.environ.get("DATAERAI_TEST_S3_ROOT")
    assert root, "DATAERAI_BLOB_STORE is set without DATAERAI_TEST_S3_ROOT (scripts/test-backends.sh)"
    # s3s-fs keeps bucket/key as directory/file below its root.
    return Path(root) / store[len("s3://") :].strip("/")


def stored_chunks(server: Server, content_id: str) -> List[Path]:
    content = blob_root(server) / "content" / content_id
    return sorted(p for p in content.rglob("*") if p.is_file())


def test_download_of_a_corrupted_stored_file_fails_and_leaves_nothing(
    client: DataeraiClient, server: Server, base_dir: Path
):
    me = client.auth_status()
    src = write_random(base_dir / "to-corrupt.bin", 3 * MIB + 11)
    up = client.upload(src, title="to corrupt", owner_type="user", owner_id=me.user_id, chunk_size_mb=1)
    chunks = stored_chunks(server, up.content_id)
    assert chunks, f"no chunk of {up.content_id} under {blob_root(server)}"
    victim = max(chunks, key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0xFF
    victim.chmod(0o600)
    victim.write_bytes(bytes(data))

    dest = base_dir / "corrupt-out"
    with pytest.raises(DaemonError) as err:
        client.download(up.asset_id, dest, chunk_size_mb=1)
    assert err.value.code == "ERR_INTEGRITY", err.value
    # Neither the file under its final name nor a partial one is left behind.
    left = list(dest.rglob("*")) if dest.exists() else []
    assert left == [], left


def psql() -> str:
    found = shutil.which("psql") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1:]), None)
    assert found, "psql not found (scripts/test-backends.sh installs Debian's postgresql)"
    return found


def test_scaleout_server_keeps_rows_in_postgresql_and_bytes_in_s3(
    client: DataeraiClient, server: Server, base_dir: Path
):
    database_url = os.environ.get("DATAERAI_DATABASE_URL")
    if not database_url or not os.environ.get("DATAERAI_BLOB_STORE"):
        if os.environ.get("DATAERAI_REQUIRE_SCALEOUT"):
            pytest.fail(
                "DATAERAI_REQUIRE_SCALEOUT is set but DATAERAI_DATABASE_URL/DATAERAI_BLOB_STORE are not"
            )
        pytest.skip("needs PostgreSQL + S3: run by make test-scaleout")
    me = client.auth_status()
    src = write_random(base_dir / "where-is-it.bin", 2 * MIB + 5)
    up = client.upload(src, title="where is it", owner_type="user", owner_id=me.user_id, chunk_size_mb=1)

    # The content version is a row in PostgreSQL …
    out = subprocess.run(
        [
            psql(),
            database_url,
            "-tAc",
            f"SELECT status, total_bytes FROM contents WHERE id = '{up.content_id}'",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"complete|{src.stat().st_size}", out.stdout
    # … its bytes are objects in the bucket (3 chunks of at most 1 MiB) …
    chunks = stored_chunks(server, up.content_id)
    assert len(chunks) == 3, chunks
    assert sum(p.stat().st_size for p in chunks) == src.stat().st_size
    # … and the embedded stores are not used at all.
    assert not (server.data_dir / "dataerai.db").exists()
    assert not (server.data_dir / "blobs" / "content" / up.content_id).exists()
