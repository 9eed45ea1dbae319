"""Typed errors: a DaemonError subclass per code, and bad arguments refused before any request."""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import pytest
from conftest import DaemonProcess, short_tmpdir, upload_to_project, write_random

import dataerai
from dataerai import (
    AuthRequiredError,
    DaemonError,
    DataeraiClient,
    IntegrityError,
    InvalidArgumentTypeError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    Project,
    QuotaExceededError,
    RelationshipExistsError,
    ServerUnreachableError,
)
from dataerai.errors import error_for_code

SUBCLASSES = {
    "ERR_NOT_FOUND": NotFoundError,
    "ERR_PERMISSION_DENIED": PermissionDeniedError,
    "ERR_AUTH_REQUIRED": AuthRequiredError,
    "ERR_QUOTA_EXCEEDED": QuotaExceededError,
    "ERR_RELATIONSHIP_EXISTS": RelationshipExistsError,
    "ERR_INTEGRITY": IntegrityError,
    "ERR_SERVER_UNREACHABLE": ServerUnreachableError,
    "ERR_INVALID_INPUT": InvalidInputError,
}


def test_each_code_maps_to_its_subclass_and_unknown_codes_stay_plain():
    for code, cls in SUBCLASSES.items():
        err = error_for_code(code, "msg")
        assert type(err) is cls and isinstance(err, DaemonError)
        assert err.code == code and err.message == "msg" and str(err) == f"{code}: msg"
        assert cls.__name__ in dataerai.__all__ and getattr(dataerai, cls.__name__) is cls
        again = pickle.loads(pickle.dumps(err))
        assert type(again) is cls and again.code == code and again.message == "msg"
    for code in ("ERR_CONFLICT", "ERR_CANCELLED", "ERR_NO_SPACE", "ERR_SOMETHING_NEW"):
        err = error_for_code(code, "msg")
        assert type(err) is DaemonError and err.code == code
    assert isinstance(InvalidInputError("x"), ValueError)
    assert isinstance(InvalidArgumentTypeError("x"), TypeError)
    assert isinstance(InvalidArgumentTypeError("x"), InvalidInputError)


def test_daemon_replies_raise_the_subclass(client: DataeraiClient, project: Project, base_dir: Path):
    missing = str(uuid.uuid4())
    with pytest.raises(NotFoundError) as err:
        client.get_metadata(missing)
    assert err.value.code == "ERR_NOT_FOUND"

    a = upload_to_project(client, project, write_random(base_dir / "err-a.bin", 100), "A")
    b = upload_to_project(client, project, write_random(base_dir / "err-b.bin", 100), "B")
    client.create_relationship(a.asset_id, b.asset_id, relationship_type="derived_from")
    try:
        client.create_relationship(a.asset_id, b.asset_id, relationship_type="derived_from")
    except DaemonError as exc:  # the old spelling keeps working
        assert isinstance(exc, RelationshipExistsError) and exc.code == "ERR_RELATIONSHIP_EXISTS"
    else:
        raise AssertionError("a duplicate relationship was accepted")

    # Validation by the daemon (an empty title) is an InvalidInputError too.
    with pytest.raises(InvalidInputError) as bad:
        client.upload(base_dir / "err-a.bin", title="", owner_type="project", owner_id=project.project_id)
    assert bad.value.code == "ERR_INVALID_INPUT"


def test_transfer_failures_raise_the_subclass(client: DataeraiClient, base_dir: Path):
    with pytest.raises(NotFoundError):
        client.download(str(uuid.uuid4()), base_dir / "err-dl")


def test_other_users_asset_is_permission_denied_or_not_found(
    client: DataeraiClient, bob_client: DataeraiClient, project: Project, base_dir: Path
):
    up = upload_to_project(client, project, write_random(base_dir / "err-private.bin", 100), "private")
    with pytest.raises((PermissionDeniedError, NotFoundError)) as err:
        bob_client.set_metadata(up.asset_id, title="mine now")
    assert err.value.code in ("ERR_PERMISSION_DENIED", "ERR_NOT_FOUND")


def test_signed_out_daemon_raises_auth_required():
    base = short_tmpdir("noauth-")
    config = base / "config"
    config.mkdir(mode=0o700)
    daemon = DaemonProcess(config, base / "n.sock")
    try:
        with daemon.client() as c:
            with pytest.raises(AuthRequiredError) as err:
                c.auth_status()
            assert err.value.code == "ERR_AUTH_REQUIRED"
    finally:
        daemon.stop()


def test_bad_arguments_raise_before_any_request(tmp_path: Path):
    # Nothing listens on this socket and auto-start is off: any request would raise
    # DaemonUnavailableError, so a ValueError/TypeError proves the check came first.
    c = DataeraiClient(socket_path=tmp_path / "nobody.sock", auto_start=False)
    f = tmp_path / "f.bin"
    f.write_bytes(b"x")
    cases = [
        (TypeError, lambda: c.get_metadata(42)),
        (TypeError, lambda: c.upload(f, title=3, owner_type="user", owner_id="u")),
        (TypeError, lambda: c.upload(None, title="t", owner_type="user", owner_id="u")),
        (TypeError, lambda: c.upload(f, title="t", owner_type="user", owner_id="u", tags="raw")),
        (ValueError, lambda: c.upload(f, title="t", owner_type="user", owner_id="u", chunk_size_mb=3)),
        (TypeError, lambda: c.upload(f, title="t", owner_type="user", owner_id="u", metadata=[1])),
        (ValueError, lambda: c.upload("", title="t", owner_type="user", owner_id="u")),
        (ValueError, lambda: c.download("a", tmp_path, transfer_timeout_s=-1)),
        (ValueError, lambda: c.set_metadata("a", colour="red")),
        (ValueError, lambda: c.create_relationship("a", "b")),
        (ValueError, lambda: c.upload_many([{"local_path": f, "bogus": 1}])),
        (TypeError, lambda: c.upload_many([42])),
        (ValueError, lambda: c.upload_many([], concurrency=0)),
        (TypeError, lambda: c.list_assets(limit="10")),
        (TypeError, lambda: c.upload(f, title="t", owner_type="user", owner_id="u", progress="yes")),
    ]
    for expected, call in cases:
        with pytest.raises(expected) as err:
            call()
        assert isinstance(err.value, InvalidInputError) and err.value.code == "ERR_INVALID_INPUT", err.value
    assert not c.connected
