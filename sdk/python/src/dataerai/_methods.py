"""The public daemon methods of both clients, each written once: signature, docstring, checks.

Each function here takes a method's arguments, checks them and says what to do, without I/O:
a :class:`~dataerai._core.Call` (one request, a transfer to start and follow, an
``upload_many`` batch, a wait) or :class:`~dataerai._core.Pages` (a paged list to iterate).
:class:`~dataerai.DataeraiClient` and :class:`~dataerai.AsyncDataeraiClient` list them in a
method table and carry them out, blocking or awaited (:func:`client_method` gives the generated
methods these functions' names, docstrings and signatures, so ``help()``, ``inspect.signature``
and type checkers see the real parameters). A new daemon method is one function here and one
table line in each client. The examples in the docstrings use the threaded client; with
:class:`~dataerai.AsyncDataeraiClient`, ``await`` the same calls.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from datetime import datetime
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    TypeVar,
    Union,
)

from . import _params
from ._collections import CollectionDownload
from ._core import (
    AllPages,
    Call,
    CrateExportRequest,
    JsonObject,
    Pages,
    Request,
    TransferRequest,
    WaitRequest,
    items_of,
    upload_many_plan,
)
from ._params import PathLike
from ._transfers import ProgressCallback
from .errors import InvalidArgumentTypeError, InvalidInputError
from .models import (
    AssetMetadata,
    AuthStatus,
    Collection,
    CollectionDownloadResult,
    CollectionPath,
    ContentVersion,
    DownloadResult,
    Lineage,
    ListPage,
    Project,
    ProjectMember,
    ProvenanceExport,
    Relationship,
    RoCrateExport,
    SearchResult,
    Transfer,
    UploadItem,
    UploadManyResult,
    UploadResult,
)

F = TypeVar("F", bound=Callable[..., Any])


def ping() -> Call[Dict[str, Any]]:
    """Check the daemon answers; returns ``{"version", "pid", "socket_path"}``."""
    return Request("daemon.ping", {}, dict)


def auth_status() -> Call[AuthStatus]:
    """Who the daemon is signed in as.

    Example::

        status = client.auth_status()
        print(status.user_email, status.expires_at)

    Raises:
        DaemonError: ``ERR_AUTH_REQUIRED`` when not signed in (run ``dataerai auth login``).
    """
    return Request("auth.status", {}, AuthStatus.from_json)


def create_project(name: str, *, description: str = "") -> Call[Project]:
    """Create a project (with its root collection, your owner membership and a quota).

    Needs a token with the ``write`` scope.

    Example::

        project = client.create_project("Tomography 2026", description="Beamtime 7")
        print(project.project_id, project.quota_bytes)
    """
    params = {"name": _params.require_str(name, "name"), "description": description}
    return Request("project.create", params, Project.from_json)


def list_project_members(project_id: str) -> Call[List[ProjectMember]]:
    """Members of a project with their roles (any member may list them).

    Example::

        for m in client.list_project_members(project.project_id):
            print(m.email, m.role)
    """
    return AllPages(iter_project_members(project_id))


def iter_project_members(project_id: str) -> Pages[ProjectMember]:
    """Members of a project, fetched page by page as you iterate."""
    params = {"project_id": _params.require_str(project_id, "project_id")}
    return Pages("project.list_members", params, ProjectMember.from_json)


def add_project_member(project_id: str, email: str, role: str) -> Call[ProjectMember]:
    """Add a user (by email) to a project, or change an existing member's role.

    ``role`` is ``owner``, ``admin``, ``member`` (read and write) or ``viewer`` (read only).
    Needs the ``owner`` or ``admin`` role; only owners grant or take away ``owner``.

    Example::

        client.add_project_member(project.project_id, "grace@lab.example", "viewer")
    """
    params = {**_member(project_id, email), "role": _params.require_str(role, "role")}
    return Request("project.add_member", params, ProjectMember.from_json)


def remove_project_member(project_id: str, email: str) -> Call[None]:
    """Remove a user from a project (the last owner cannot be removed)."""
    return Request("project.remove_member", _member(project_id, email), _nothing)


def list_projects(
    *, limit: Optional[int] = None, cursor: Optional[str] = None, offset: Optional[int] = None
) -> Call[ListPage[Project]]:
    """One page of the projects you belong to (``limit`` defaults to the server's, 100), as a
    :class:`~dataerai.ListPage`: ``.total`` counts every page, ``.next_cursor`` goes to ``cursor=``
    for the next one (or use :meth:`iter_projects`)."""
    params = _params.page(limit, offset, cursor)
    return Request("project.list", params, items_of(Project.from_json))


def iter_projects() -> Pages[Project]:
    """Every project you belong to, fetched page by page as you iterate.

    Example::

        for project in client.iter_projects():
            print(project.name, project.used_bytes)
    """
    return Pages("project.list", {}, Project.from_json)


def list_assets(
    *,
    owner_type: Optional[str] = None,
    owner_id: Optional[str] = None,
    collection_id: Optional[str] = None,
    limit: Optional[int] = None,
    cursor: Optional[str] = None,
    offset: Optional[int] = None,
) -> Call[ListPage[AssetMetadata]]:
    """One page of the assets of an owner (default: your personal assets) or of a collection,
    as a :class:`~dataerai.ListPage` (``.total``, ``.next_cursor``); :meth:`iter_assets` pages
    for you."""
    params = _params.list_assets(owner_type, owner_id, collection_id, limit, offset, cursor)
    return Request("asset.list", params, items_of(AssetMetadata.from_json))


def iter_assets(
    *,
    owner_type: Optional[str] = None,
    owner_id: Optional[str] = None,
    collection_id: Optional[str] = None,
) -> Pages[AssetMetadata]:
    """Every asset of an owner (default: your personal assets) or of a collection, fetched
    page by page as you iterate (the filters of :meth:`list_assets`).

    Example::

        for asset in client.iter_assets(owner_type="project", owner_id=project.project_id):
            print(asset.title, asset.total_bytes)
    """
    params = _params.list_assets(owner_type, owner_id, collection_id, None, None)
    return Pages("asset.list", params, AssetMetadata.from_json)


def search(
    query: str = "",
    *,
    limit: Optional[int] = 50,
    cursor: Optional[str] = None,
    sort: Optional[str] = None,
) -> Call[SearchResult]:
    """One page of the assets you can read that match ``query`` (the query language of
    ``docs/search.md``), with the total and facet counts over every match.

    Args:
        query: Free words and ``"quoted phrases"`` (title, description, alias, tags, file
            names), ``tag:``, ``type:``, ``project:``, ``collection:``/``within:``,
            ``owner:me``, ``created>=2026-11-01``, ``size>1GB``, ``md.<key>`` comparisons
            (``md.voltage_kv>=200``, ``md.sample.name="SrRuO3"``, ``md.mode:*``), ``AND``/``OR``/
            ``NOT``/``-`` and parentheses. Empty: everything you can read.
        limit: Matches per page (1–1000).
        cursor: ``next_cursor`` of the previous page.
        sort: ``relevance``, ``created``, ``updated``, ``title``, ``size`` or ``md.<key>``;
            a leading ``-`` sorts descending. Default: relevance with words, newest first without.

    Example::

        page = client.search('tag:calibrated md.voltage_kv>=200 "bright field"')
        print(page.total, [a.title for a in page.items], page.facets["tags"])

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` for a malformed query; its message names the position.
    """
    params = _params.search(query, limit, cursor, sort, facets=True)
    return Request("asset.search", params, SearchResult.from_json)


def iter_search(query: str = "", *, sort: Optional[str] = None) -> Pages[AssetMetadata]:
    """Every match of :meth:`search`, fetched page by page as you iterate.

    Example::

        for asset in client.iter_search("type:raw_data created>=2026-11-01", sort="created"):
            print(asset.asset_id, asset.title)
    """
    params = _params.search(query, None, None, sort, facets=False)
    return Pages("asset.search", params, AssetMetadata.from_json, by_cursor=True)


def upload(
    local_path: PathLike,
    *,
    title: str,
    owner_type: str,
    owner_id: str,
    description: Optional[str] = None,
    alias: Optional[str] = None,
    tags: Optional[Iterable[str]] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    collection_id: Optional[str] = None,
    chunk_size_mb: Optional[int] = None,
    on_progress: Optional[ProgressCallback] = None,
    transfer_timeout_s: Optional[float] = 3600,
    progress: bool = False,
    idempotency_key: Optional[str] = None,
    record_type: Optional[str] = None,
    allocation_id: Optional[str] = None,
) -> Call[UploadResult]:
    """Upload a file or a directory as a new asset and block until the server verified it.

    The daemon does the work (parallel chunks, BLAKE3 checks, retries with backoff while
    the server is unreachable, resume after a crash); this call follows it. A file the
    server already holds for the same owner (same size and BLAKE3) is not sent again
    (``result.deduplicated``, ``result.bytes_sent == 0``).

    Args:
        local_path: The file or directory to upload (relative paths are resolved here, not
            in the daemon). A directory becomes **one** asset holding every regular file
            below it, named by its ``/``-separated relative path (``result.files``). A
            symlink pointing out of the directory, or an empty directory, is refused with
            ``ERR_INVALID_INPUT`` before anything is sent.
        title: Asset title (required, non-empty).
        owner_type: ``"user"`` for a personal asset or ``"project"``.
        owner_id: Your user id (``auth_status().user_id``) — or your own email, which means
            the same — or a project id.
        description, alias, tags, metadata: Descriptive metadata; ``metadata`` is a dict.
        collection_id: Collection of a project-owned asset (default: the project's root).
        record_type: What kind of record it is (free text, at most 64 characters:
            ``raw_data``, ``analysis``, ``figure``, …); search it with ``type:``.
        allocation_id: The storage allocation (quota) to charge, whoever owns the asset: any
            you may write to — your personal one or a project's where you are a member, admin
            or owner (``Project.allocation_id``); e.g. a personal upload charged to a project.
            ``None``: the owner's. Every later version of the asset is charged to it too
            (``AssetMetadata.allocation_id``). An unknown allocation, or one you cannot see, is
            ``ERR_NOT_FOUND``; one of a project where you are a viewer
            ``ERR_PERMISSION_DENIED``.
        chunk_size_mb: Chunk size in MiB, a power of two from 1 to 512 (default 64).
        on_progress: Called with a :class:`~dataerai.ProgressEvent` after each chunk, on a
            background thread; the last call has ``bytes_done == bytes_total``. Exceptions
            it raises are logged and ignored.
        transfer_timeout_s: How long to wait for completion (``None``: forever). On expiry
            :class:`~dataerai.DaemonTimeoutError` is raised **but the transfer continues in
            the daemon**; the error's ``transfer_id`` identifies it (follow it again with
            :meth:`wait_transfer`, stop it with :meth:`cancel_transfer`). We chose not to
            cancel so that a long upload is never thrown away because a script's patience
            ran out.
        progress: Show a ``tqdm.auto`` progress bar per file (a widget in Jupyter, text in
            a terminal) with rate and ETA; ``on_progress`` is still called. Needs tqdm
            (``pip install 'dataerai-sdk[notebook]'``), else :class:`ImportError`.
        idempotency_key: Any string of yours (1–200 characters) naming this upload. A
            second call with the same key (a re-run after Ctrl-C, a retry after a lost
            connection) does not create another asset or send the bytes again: it follows
            the transfer the first call started — still running, resumed if it was paused or
            failed resumably, or already complete (its result). The daemon keeps keys in its
            journal for as long as it keeps the transfer (7 days after it finished).

    Example::

        result = client.upload("spectrum.csv", title="Raman spectrum", owner_type="user",
                               owner_id=client.auth_status().user_id,
                               metadata={"laser_nm": 532})
        print(result.asset_id, result.total_bytes)

        run = client.upload("run_042/", title="Run 42", owner_type="project",
                            owner_id=project.project_id)
        print(run.file_count, [f.name for f in run.files])   # "raw/frame_001.tif", …

    Raises:
        DaemonError: e.g. ``ERR_INVALID_INPUT`` (missing file, bad owner type, metadata not
            a dict, …), ``ERR_PERMISSION_DENIED``, ``ERR_QUOTA_EXCEEDED``,
            ``ERR_AUTH_REQUIRED``, ``ERR_SERVER_UNREACHABLE``.
        DaemonTimeoutError: not finished within ``transfer_timeout_s``.
        ConnectionError: the daemon went away.
    """
    params = _params.upload(
        local_path,
        title=title,
        owner_type=owner_type,
        owner_id=owner_id,
        description=description,
        alias=alias,
        tags=tags,
        metadata=metadata,
        collection_id=collection_id,
        chunk_size_mb=chunk_size_mb,
        idempotency_key=idempotency_key,
        record_type=record_type,
        allocation_id=allocation_id,
    )
    return TransferRequest(
        "asset.upload", params, UploadResult.from_json, on_progress, transfer_timeout_s, progress
    )


def download(
    asset_id: str,
    dest_dir: PathLike,
    *,
    content_id: Optional[str] = None,
    chunk_size_mb: Optional[int] = None,
    on_progress: Optional[ProgressCallback] = None,
    transfer_timeout_s: Optional[float] = 3600,
    progress: bool = False,
    overwrite: bool = False,
    allow_hidden: bool = False,
    idempotency_key: Optional[str] = None,
) -> Call[DownloadResult]:
    """Download an asset's latest (or a given) content version into ``dest_dir``.

    Blocks until every file is written and verified. Files appear under their final name
    only once their BLAKE3 checksum matches; ``dest_dir`` is created if missing. A
    multi-file version (a directory upload) is restored as the same tree below
    ``dest_dir``; each :class:`~dataerai.DownloadedFile` has its relative ``filename``.
    ``content_id`` selects an older version (see :meth:`list_versions`).
    ``on_progress``, ``transfer_timeout_s``, ``progress`` and ``idempotency_key`` behave as in
    :meth:`upload`.

    Existing files are never silently replaced: one already there with the same bytes
    (size and BLAKE3) is left as is and reported with ``skipped=True``; a different one makes
    the whole download fail with :class:`~dataerai.LocalFileExistsError` before anything
    is written, unless ``overwrite=True``. Downloading into your home directory refuses hidden
    paths (``.bashrc``, ``.ssh/…``, chosen by whoever uploaded the asset) unless
    ``allow_hidden=True``.

    Example::

        result = client.download(asset_id, "data/")
        for f in result.files:
            print(f.filename, f.local_path, f.size, f.checksum)

    Raises:
        DaemonError: ``ERR_NOT_FOUND``, ``ERR_PERMISSION_DENIED``, ``ERR_INTEGRITY`` (the
            bytes did not match their checksum; nothing is left under the final name),
            ``ERR_NO_SPACE`` (resumable with :meth:`resume_transfer` once space is freed),
            ``ERR_INVALID_INPUT`` (a stored name would escape ``dest_dir``, a directory stands
            where a file goes, a hidden path into your home), ``ERR_FILE_EXISTS`` (a different
            file is in the way; nothing was written).
    """
    params = _params.download(
        asset_id, dest_dir, content_id, chunk_size_mb, overwrite, allow_hidden, idempotency_key
    )
    return TransferRequest(
        "asset.download", params, DownloadResult.from_json, on_progress, transfer_timeout_s, progress
    )


def delete_asset(asset_id: str) -> Call[None]:
    """Delete an asset with all its content versions and relationships (write access needed).

    Bytes no other asset shares are removed from the store. Raises ``NotFoundError`` when the
    asset does not exist or you cannot read it.
    """
    params = {"asset_id": _params.require_str(asset_id, "asset_id")}
    return Request("asset.delete", params, _nothing)


def delete_version(asset_id: str, content_id: str) -> Call[None]:
    """Delete one content version of an asset (write access needed).

    The asset's other versions stay; when the newest goes, the one before it becomes the
    latest. An asset's only version cannot be deleted (``DaemonError`` with code
    ``ERR_CONFLICT``: delete the asset instead). Bytes no other version shares are removed from the store.

    Example::

        old = client.list_versions(asset_id)[-1]
        client.delete_version(asset_id, old.content_id)
    """
    params = {
        "asset_id": _params.require_str(asset_id, "asset_id"),
        "content_id": _params.require_str(content_id, "content_id"),
    }
    return Request("asset.delete_version", params, _nothing)


def get_metadata(asset_id: str) -> Call[AssetMetadata]:
    """An asset's metadata (title, tags, metadata dict, owner, latest content, …)."""
    params = {"asset_id": _params.require_str(asset_id, "asset_id")}
    return Request("asset.get_metadata", params, AssetMetadata.from_json)


def set_metadata(asset_id: str, **fields: Any) -> Call[AssetMetadata]:
    """Change some of ``title``, ``description``, ``alias``, ``tags``, ``metadata``,
    ``record_type``.

    ``metadata`` is merged key by key into the stored dict (a ``None`` value deletes a
    key); ``tags`` replaces the list. Returns the updated metadata.

    Example::

        client.set_metadata(asset_id, tags=["raw", "tomo"], metadata={"energy_keV": 25})

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` for an unknown field name (checked here).
    """
    return Request("asset.set_metadata", _params.set_metadata(asset_id, fields), AssetMetadata.from_json)


def set_record_type(asset_id: str, *, record_type: Optional[str]) -> Call[AssetMetadata]:
    """Set what kind of record an asset is (``set_metadata(asset_id, record_type=…)``).

    Free text of 1 to 64 characters (``dataset``, ``measurement``, ``analysis``, ``figure``,
    ``log``, ``model``, ``calibration``, ``simulation``, ``software_code``,
    ``jupyter_notebook``, …); search it with ``type:``. Returns the updated metadata.

    Example::

        client.set_record_type(up.asset_id, record_type="calibration")
    """
    fields = {"record_type": _params.require_str(record_type, "record_type")}
    return Request("asset.set_metadata", _params.set_metadata(asset_id, fields), AssetMetadata.from_json)


@dataclass(frozen=True)
class _Matching(AllPages[AssetMetadata]):
    """Every page of a search, keeping the assets whose title is ``title``."""

    title: Optional[str] = None

    def finish(self, raw: Any) -> List[AssetMetadata]:
        return [a for a in raw if self.title is None or a.title == self.title]


def find_assets(
    title: str,
    *,
    collection_id: Optional[str] = None,
    record_type: Optional[str] = None,
    exact: bool = True,
) -> Call[List[AssetMetadata]]:
    """Every asset you can read whose title is ``title`` (all matches, not just one).

    Built on :meth:`search`, so it sees exactly what you may read. ``collection_id`` keeps
    assets filed in that collection, ``record_type`` those of that type. With
    ``exact=False`` every asset whose title, description, tags, … contain the title's words
    in order is returned. Each result has ``.asset_id``, ``.title`` and ``.has_content``.

    Example::

        runs = client.find_assets(title="Rabi sweep", collection_id=coll_id)
        if not runs:
            client.upload("rabi.h5", title="Rabi sweep", owner_type="project", ...)
    """
    wanted = _params.require_str(title, "title").strip()
    words = re.findall(r"[^\W_]+", wanted)
    terms = [f'"{" ".join(words)}"'] if words else []
    if collection_id is not None:
        terms.append(f"collection:{_params.require_str(collection_id, 'collection_id')}")
    if record_type is not None:
        kind = _params.require_str(record_type, "record_type").replace('"', "")
        terms.append(f'type:"{kind}"')
    params = _params.search(" ".join(terms), None, None, None, facets=False)
    pages = Pages("asset.search", params, AssetMetadata.from_json, by_cursor=True)
    return _Matching(pages, wanted if exact else None)


def create_relationship(
    from_asset_id: str,
    to_asset_id: str,
    rel_type: Optional[str] = None,
    *,
    relationship_type: Optional[str] = None,
    analysis_mode: Optional[str] = None,
    qualifier_note: Optional[str] = None,
    qualifier_time: Optional[Union[datetime, str]] = None,
    qualifiers: Optional[Mapping[str, Any]] = None,
) -> Call[Relationship]:
    """Record that ``from_asset_id`` depends on ``to_asset_id`` (provenance).

    Give the type either positionally (``rel_type``) or as ``relationship_type=`` — exactly
    one of them. Needs write access to the source asset and read access to the target.

    Args:
        rel_type / relationship_type: e.g. ``"derived_from"``, ``"analysis_of"`` (≤255 chars).
        analysis_mode: One of ``non_destructive, altering, destructive, in_situ, ex_situ,
            invasive, non_invasive``.
        qualifier_note: Free text, stored as ``qualifiers["note"]``.
        qualifier_time: A ``datetime`` (naive means local time) or ISO-8601 string, stored
            as ``qualifiers["time"]``.
        qualifiers: Any JSON object.

    Example::

        rel = client.create_relationship(fit.asset_id, raw.asset_id,
                                         relationship_type="derived_from",
                                         analysis_mode="non_destructive")
        print(rel.related_asset["title"])

    Raises:
        DaemonError: ``ERR_RELATIONSHIP_EXISTS`` for a duplicate edge,
            ``ERR_PERMISSION_DENIED``, ``ERR_NOT_FOUND``, ``ERR_INVALID_INPUT``.
    """
    params = _params.relationship(
        from_asset_id,
        to_asset_id,
        rel_type,
        relationship_type,
        analysis_mode,
        qualifier_note,
        qualifier_time,
        qualifiers,
    )
    return Request("relationship.create", params, Relationship.from_json)


_RELATIONSHIP_DIRECTIONS = ("out", "in", "both")
_LINEAGE_DIRECTIONS = ("up", "down", "both")


def _one_of(value: Any, name: str, allowed: Any) -> str:
    text = _params.require_str(value, name)
    if text not in allowed:
        raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}, not {text!r}")
    return text


def list_relationships(asset_id: str, *, direction: str = "out") -> Call[List[Relationship]]:
    """Every relationship of an asset (all pages): ``direction="out"`` those from it (to its
    origins), ``"in"`` those pointing at it (what was derived from it), ``"both"``. Each
    :class:`Relationship` says its ``direction`` and carries the asset at its other end in
    ``related_asset`` (only its ``id`` when you may not read it).

    Example::

        for rel in client.list_relationships(raw.asset_id, direction="in"):
            print(rel.type, rel.from_asset_id, rel.related_asset.get("title"))
    """
    return AllPages(_iter_relationships(asset_id, direction))


def _iter_relationships(asset_id: str, direction: str) -> Pages[Relationship]:
    params = {
        "asset_id": _params.require_str(asset_id, "asset_id"),
        "direction": _one_of(direction, "direction", _RELATIONSHIP_DIRECTIONS),
    }
    return Pages("relationship.list", params, Relationship.from_json)


def lineage(
    asset_id: str,
    *,
    direction: str = "up",
    depth: Optional[int] = None,
    types: Optional[Iterable[str]] = None,
) -> Call[Lineage]:
    """An asset's lineage in one request: the assets reachable from it along relationships,
    and those relationships.

    Args:
        direction: ``"up"`` to its origins (what it was derived from), ``"down"`` to what was
            derived from it, ``"both"``.
        depth: Follow at most this many relationships (1–20; default 20).
        types: Follow only relationships of these types (default: all).

    Returns :class:`Lineage`: ``.nodes`` (:class:`LineageNode`, with ``depth`` from the
    asset; ones you may not read are ``redacted`` and carry their id only), ``.edges``
    (:class:`LineageEdge`) and ``.truncated`` (more than 10,000 relationships).

    Example::

        tree = client.lineage(figure.asset_id, direction="up")
        print([n.title for n in tree.nodes if n.depth == 1])
    """
    params: Dict[str, Any] = {
        "asset_id": _params.require_str(asset_id, "asset_id"),
        "direction": _one_of(direction, "direction", _LINEAGE_DIRECTIONS),
    }
    d = _params.optional_int(depth, "depth", minimum=1)
    if d is not None:
        params["depth"] = d
    if types is not None:
        if isinstance(types, str):
            types = [types]
        params["types"] = [_params.require_str(t, "types") for t in types]
    return Request("asset.lineage", params, Lineage.from_json)


def upload_version(
    asset_id: str,
    local_path: PathLike,
    *,
    chunk_size_mb: Optional[int] = None,
    on_progress: Optional[ProgressCallback] = None,
    transfer_timeout_s: Optional[float] = 3600,
    progress: bool = False,
) -> Call[UploadResult]:
    """Upload a file or directory as a **new content version** of an existing asset.

    The asset keeps its id, metadata and relationships; downloads without ``content_id``
    get the new version once it is verified, older ones stay reachable by ``content_id``.
    Needs write access to the asset. Change metadata with :meth:`set_metadata`.
    ``on_progress``, ``transfer_timeout_s`` and ``progress`` behave as in :meth:`upload`.

    Example::

        v2 = client.upload_version(asset_id, "scan_0042_recalibrated.h5")
        versions = client.list_versions(asset_id)        # newest first
        client.download(asset_id, "old/", content_id=versions[-1].content_id)

    Raises:
        DaemonError: ``ERR_NOT_FOUND``, ``ERR_PERMISSION_DENIED``, ``ERR_QUOTA_EXCEEDED``,
            ``ERR_INVALID_INPUT``, …
    """
    params = _params.upload_version(asset_id, local_path, chunk_size_mb)
    return TransferRequest(
        "asset.upload", params, UploadResult.from_json, on_progress, transfer_timeout_s, progress
    )


def list_versions(
    asset_id: str,
    *,
    limit: Optional[int] = None,
    cursor: Optional[str] = None,
    offset: Optional[int] = None,
) -> Call[ListPage[ContentVersion]]:
    """One page of an asset's complete content versions, newest first, as a
    :class:`~dataerai.ListPage` (``.total``, ``.next_cursor``).

    Example::

        for v in client.list_versions(asset_id):
            print(v.content_id, v.total_bytes, v.completed_at, [f.name for f in v.files])
    """
    params = {
        "asset_id": _params.require_str(asset_id, "asset_id"),
        **_params.page(limit, offset, cursor),
    }
    return Request("asset.list_versions", params, items_of(ContentVersion.from_json))


def iter_versions(asset_id: str) -> Pages[ContentVersion]:
    """Every complete content version of an asset, newest first, fetched page by page."""
    params = {"asset_id": _params.require_str(asset_id, "asset_id")}
    return Pages("asset.list_versions", params, ContentVersion.from_json)


def upload_many(
    items: Iterable[Union[UploadItem, Mapping[str, Any]]],
    *,
    concurrency: int = 8,
    chunk_size_mb: Optional[int] = None,
    on_progress: Optional[ProgressCallback] = None,
    transfer_timeout_s: Optional[float] = 3600,
    progress: bool = False,
) -> Call[List[UploadManyResult]]:
    """Upload many files (or directories) as many assets, ``concurrency`` at a time.

    One request hands the whole batch to the daemon, which runs at most ``concurrency``
    uploads at once (1–64) — much faster than calling :meth:`upload` in a loop for small
    files. A failing item (missing file, no permission, …) does not stop the others: every
    item gets an :class:`~dataerai.UploadManyResult` in input order with either ``result``
    or ``error``.

    Args:
        items: :class:`~dataerai.UploadItem` objects or dicts with the keyword arguments
            of :meth:`upload`: ``local_path``, ``title``, ``owner_type``, ``owner_id`` and
            optionally ``description``, ``alias``, ``tags``, ``metadata``,
            ``collection_id`` (or ``asset_id`` instead of title/owner for a new version).
        on_progress: Receives the progress of every item (tell them apart by
            ``event.transfer_id``).
        transfer_timeout_s: Limit for the **whole** batch (``None``: forever). Items still
            running then get a :class:`~dataerai.DaemonTimeoutError` as their ``error``;
            their transfers continue in the daemon (``error.transfer_id``).
        progress: One ``tqdm.auto`` bar per item, as in :meth:`upload`.

    Example::

        items = [{"local_path": p, "title": p.name, "owner_type": "project",
                  "owner_id": project.project_id} for p in Path("frames").glob("*.tif")]
        for item in client.upload_many(items, concurrency=16):
            if item.error:
                print(item.local_path, item.error.code, item.error.message)

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` when an item is not a dict/``UploadItem`` or has
            an unknown key (nothing is started then).
        ConnectionError: the daemon went away.
    """
    return upload_many_plan(items, concurrency, chunk_size_mb, on_progress, transfer_timeout_s, progress)


def list_transfers() -> Call[List[Transfer]]:
    """Transfers the daemon knows: this run's and those in its journal from earlier runs.

    Example::

        for t in client.list_transfers():
            print(t.transfer_id, t.kind, t.state, f"{t.percent:.0f}%")
    """
    return Request("transfer.list", {}, items_of(Transfer.from_json))


def get_transfer(transfer_id: str) -> Call[Transfer]:
    """A transfer's current state (``state``, ``bytes_done``, ``attempt``, ``error``, …).

    Raises:
        DaemonError: ``ERR_NOT_FOUND`` for an unknown id.
    """
    return Request("transfer.get", _params.transfer(transfer_id), Transfer.from_json)


def cancel_transfer(transfer_id: str) -> Call[Transfer]:
    """Cancel a queued, running, retrying or paused transfer.

    Returns the transfer as the daemon saw it when it took the request (a running one turns
    ``cancelled`` a moment later). Nothing partial is published; waiters get
    ``DaemonError`` with ``ERR_CANCELLED``. Any client of the daemon may cancel any of its
    transfers; cancelling a finished transfer changes nothing.
    """
    return Request("transfer.cancel", _params.transfer(transfer_id), Transfer.from_json)


def pause_transfer(transfer_id: str) -> Call[Transfer]:
    """Pause a transfer: chunks in flight finish, no new ones start (state ``paused``).

    Returns the transfer as the daemon saw it when it took the request: its state may still
    read ``running`` until the chunks in flight have finished, then turns ``paused`` (see
    :meth:`get_transfer`). A paused transfer stays paused across daemon restarts until
    :meth:`resume_transfer`. Waiters keep waiting.

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` for a finished transfer, ``ERR_NOT_FOUND``.
    """
    return Request("transfer.pause", _params.transfer(transfer_id), Transfer.from_json)


def resume_transfer(transfer_id: str) -> Call[Transfer]:
    """Continue a paused transfer, or a failed one whose error was ``ERR_NO_SPACE``,
    ``ERR_SERVER_UNREACHABLE`` or ``ERR_INTEGRITY``, from where it stopped.

    Example::

        try:
            client.download(asset_id, "/scratch/data")
        except DaemonError as err:
            if err.code != "ERR_NO_SPACE":
                raise
            ...  # free some space
            t = client.list_transfers()[-1]
            client.resume_transfer(t.transfer_id)
            client.wait_transfer(t.transfer_id)
    """
    params = _params.transfer(transfer_id)
    return Request("transfer.resume", params, Transfer.from_json, resumes=transfer_id)


def wait_transfer(
    transfer_id: str,
    timeout_s: Optional[float] = None,
    on_progress: Optional[ProgressCallback] = None,
) -> Call[Union[UploadResult, DownloadResult]]:
    """Block until a transfer — started by any client, or resumed by a restarted daemon —
    finishes, and return its result.

    Waits through ``retrying`` and ``paused`` states. Several clients (or threads) may wait
    for the same transfer at once.

    Args:
        transfer_id: e.g. ``err.transfer_id`` of a :class:`~dataerai.DaemonTimeoutError`.
        timeout_s: How long to wait (``None``: forever). On expiry
            :class:`~dataerai.DaemonTimeoutError` is raised and the transfer continues.
        on_progress: As in :meth:`upload`, from now on.

    Returns:
        :class:`~dataerai.UploadResult` for an upload, :class:`~dataerai.DownloadResult`
        for a download.

    Example::

        try:
            up = client.upload(path, title="big", owner_type="user", owner_id=uid,
                               transfer_timeout_s=60)
        except DaemonTimeoutError as err:
            up = client.wait_transfer(err.transfer_id)   # or client.cancel_transfer(…)

    Raises:
        DaemonError: the transfer failed (its ``ERR_*`` code) or was cancelled
            (``ERR_CANCELLED``); ``ERR_NOT_FOUND`` for an unknown id.
        DaemonTimeoutError: not finished within ``timeout_s``.
        ConnectionError: the daemon went away.
    """
    _params.require_str(transfer_id, "transfer_id")
    return WaitRequest(transfer_id, _params.timeout(timeout_s, "timeout_s"), on_progress)


# ---------------------------------------------------------------------- collections as a tree


def create_collection(
    project_id: str, name: str, *, parent_id: Optional[str] = None, description: str = ""
) -> Call[Collection]:
    """Create a collection in a project: under ``parent_id``, or the project's root collection.

    Sibling names are unique within a parent (case-sensitive); you need the member role.

    Example::

        raw = client.create_collection(project.project_id, "raw")
        day = client.create_collection(project.project_id, "2026-12-06", parent_id=raw.collection_id)

    Raises:
        DaemonError: ``ERR_CONFLICT`` (a sibling has that name; the message names it),
            ``ERR_INVALID_INPUT`` (the parent is not a collection of the project),
            ``ERR_PERMISSION_DENIED`` (viewers), ``ERR_NOT_FOUND``.
    """
    params: JsonObject = {
        "project_id": _params.require_str(project_id, "project_id"),
        "name": _params.require_str(name, "name"),
    }
    if parent_id is not None:
        params["parent_id"] = _params.require_str(parent_id, "parent_id")
    if not isinstance(description, str):
        raise InvalidInputError(f"description must be a string, not {type(description).__name__}")
    if description:
        params["description"] = description
    return Request("collection.create", params, Collection.from_json)


def _collections_params(project_id: str, parent_id: Optional[str]) -> JsonObject:
    params: JsonObject = {"project_id": _params.require_str(project_id, "project_id")}
    if parent_id is not None:
        params["parent_id"] = _params.require_str(parent_id, "parent_id")
    return params


def list_collections(project_id: str, *, parent_id: Optional[str] = None) -> Call[List[Collection]]:
    """Every collection of a project (the root included), or only those directly under
    ``parent_id``; oldest first, fetched page by page for you.

    Example::

        for c in client.list_collections(project.project_id):
            print(c.name, c.parent_id, c.asset_count)
    """
    return AllPages(iter_collections(project_id, parent_id=parent_id))


def iter_collections(project_id: str, *, parent_id: Optional[str] = None) -> Pages[Collection]:
    """The collections of :meth:`list_collections`, fetched page by page as you iterate."""
    return Pages("collection.list", _collections_params(project_id, parent_id), Collection.from_json)


def rename_collection(collection_id: str, name: str) -> Call[Collection]:
    """Rename a collection (not a project's root collection: ``ERR_INVALID_INPUT``).

    Raises:
        DaemonError: ``ERR_CONFLICT`` when a sibling already has the name.
    """
    params = {
        "collection_id": _params.require_str(collection_id, "collection_id"),
        "name": _params.require_str(name, "name"),
    }
    return Request("collection.rename", params, Collection.from_json)


def move_collection(collection_id: str, parent_id: str) -> Call[Collection]:
    """Move a collection (with everything in it) under another collection of its project.

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` for the root, a parent in the collection's own subtree
            or in another project; ``ERR_CONFLICT`` when the new parent has a child of that name.
    """
    params = {
        "collection_id": _params.require_str(collection_id, "collection_id"),
        "parent_id": _params.require_str(parent_id, "parent_id"),
    }
    return Request("collection.move", params, Collection.from_json)


def delete_collection(collection_id: str) -> Call[None]:
    """Delete an empty collection.

    Raises:
        DaemonError: ``ERR_CONFLICT`` when it still holds collections or assets (the message
            says how many), ``ERR_INVALID_INPUT`` for a project's root collection.
    """
    params = {"collection_id": _params.require_str(collection_id, "collection_id")}
    return Request("collection.delete", params, _nothing)


def ensure_collection_path(path: str, *, create_project: bool = False) -> Call[CollectionPath]:
    """Resolve a collection path such as ``"abTEM / notebook runs / tutorials"``, creating the
    collections that are missing (and, with ``create_project=True``, the project).

    Segments are split on ``/`` with surrounding spaces trimmed; the first names a project you
    belong to. The whole path is resolved in one server transaction, so concurrent calls for
    the same path get the same ids.

    Example::

        where = client.ensure_collection_path("abTEM/raw/2026-12-06", create_project=True)
        client.upload("scan.h5", title="scan", owner_type="project",
                      owner_id=where.project_id, collection_id=where.collection_id)

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` (an empty segment), ``ERR_NOT_FOUND`` (no project of
            that name and ``create_project=False``), ``ERR_CONFLICT`` (several projects of that
            name), ``ERR_PERMISSION_DENIED`` (a viewer, when something must be created).
    """
    text = _params.require_str(path, "path")
    if not isinstance(create_project, bool):
        raise InvalidInputError(f"create_project must be True or False, not {type(create_project).__name__}")
    segments = [part.strip() for part in text.split("/")]
    if any(not part for part in segments):
        raise InvalidInputError(
            f"collection path {path!r} has an empty segment; write it as 'Project/collection/sub-collection'"
        )
    params: JsonObject = {"path": text, "create_project": create_project}
    return Request("collection.ensure_path", params, CollectionPath.from_json)


def move_asset(asset_id: str, collection_id: str) -> Call[AssetMetadata]:
    """File a project asset in ``collection_id`` (another collection of its project), replacing
    the collection(s) it was in. Returns the asset's metadata.

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` for a collection of another project (or a personal
            asset), ``ERR_PERMISSION_DENIED`` without write access, ``ERR_NOT_FOUND``.
    """
    params = {
        "asset_id": _params.require_str(asset_id, "asset_id"),
        "collection_id": _params.require_str(collection_id, "collection_id"),
    }
    return Request("asset.move", params, AssetMetadata.from_json)


def download_collection(
    collection_id: str,
    dest_dir: PathLike,
    *,
    on_progress: Optional[ProgressCallback] = None,
    transfer_timeout_s: Optional[float] = 3600,
    progress: bool = False,
    overwrite: bool = False,
) -> Call[CollectionDownloadResult]:
    """Download every asset of a collection and of its sub-collections (current versions) into
    a folder tree below ``dest_dir`` that mirrors the collections.

    The collection becomes ``dest_dir/<collection name>/``; each sub-collection a folder named
    after it; each asset's files go under ``<collection folder>/<asset title>/`` (titles made
    safe for the file system; a second asset of the same title gets ``" (<first 8 of its
    id>)"`` appended). Each asset is an ordinary :meth:`download`: ``on_progress``,
    ``progress`` and ``overwrite`` work as there, ``transfer_timeout_s`` is per asset. Files
    already complete are skipped, so running it again fetches only what is missing.

    Example::

        result = client.download_collection(where.collection_id, "data/")
        for asset in result.assets:
            print(asset.title, asset.local_path, len(asset.files))

    Raises:
        CollectionDownloadError: some assets failed (``err.failed`` names them; the others are
            on disk, ``err.result``). ``err.code`` is the first failure's code.
        DaemonError: ``ERR_NOT_FOUND`` for a collection you cannot read.
    """
    params = {
        "collection_id": _params.require_str(collection_id, "collection_id"),
        "dest_dir": _params.absolute_path(dest_dir, "dest_dir"),
    }
    if not isinstance(overwrite, bool) or not isinstance(progress, bool):
        raise InvalidInputError("overwrite and progress must be True or False")
    return CollectionDownload(
        params, on_progress, _params.timeout(transfer_timeout_s, "transfer_timeout_s"), progress, overwrite
    )


# ---------------------------------------------------------------------- provenance export

#: The formats :func:`export_provenance` writes.
PROVENANCE_FORMATS = ("prov-json",)


def export_provenance(
    asset_id: str,
    path: PathLike,
    *,
    format: str = "prov-json",
    direction: str = "both",
    depth: Optional[int] = None,
) -> Call[ProvenanceExport]:
    """Write an asset's lineage as a W3C PROV-JSON file (https://www.w3.org/submissions/prov-json/).

    The document has an ``entity`` per asset (``dataerai:<asset id>``, with ``prov:label`` = title,
    ``prov:type`` = record type, alias, content id and checksum), a ``wasDerivedFrom`` per
    relationship (``prov:generatedEntity`` the dependent asset, ``prov:usedEntity`` its origin;
    relationship type, analysis mode and qualifiers as attributes) and an ``agent`` per person
    who created an asset (``wasAttributedTo``; an email only for yourself and people you share
    a project with). Assets you may not read are entities with their id only. Any PROV tool
    reads it, e.g. the ``prov`` package: ``prov.read(path, format="json")``.

    Args:
        path: The file to write (replaced if it exists).
        format: ``"prov-json"`` (the only format so far).
        direction: ``"both"`` (default), ``"up"`` (origins only) or ``"down"``.
        depth: Follow at most this many relationships each way (1–20; default 20).

    Example::

        client.export_provenance(figure.asset_id, "figure.prov.json")

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` (another format, a bad direction or depth),
            ``ERR_NOT_FOUND``.
    """
    if format not in PROVENANCE_FORMATS:
        raise InvalidInputError(
            f"format {format!r} is not supported; accepted: {', '.join(PROVENANCE_FORMATS)}"
        )
    params: Dict[str, Any] = {
        "asset_id": _params.require_str(asset_id, "asset_id"),
        "path": _params.absolute_path(path, "path"),
        "format": format,
        "direction": _one_of(direction, "direction", _LINEAGE_DIRECTIONS),
    }
    d = _params.optional_int(depth, "depth", minimum=1)
    if d is not None:
        params["depth"] = d
    return Request("asset.provenance", params, ProvenanceExport.from_json)


def export_ro_crate(
    dest_dir: PathLike,
    *,
    collection_id: Optional[str] = None,
    query: Optional[str] = None,
    include_data: bool = True,
    on_progress: Optional[ProgressCallback] = None,
    transfer_timeout_s: Optional[float] = 3600,
) -> Call[RoCrateExport]:
    """Export a collection (with every collection below it) or a search result as an RO-Crate 1.1
    folder (https://w3id.org/ro/crate/1.1).

    ``dest_dir`` gets ``ro-crate-metadata.json`` and, with ``include_data``, every file: one
    folder per collection, and in it one folder per asset (``<title>-<id prefix>/``) holding
    its latest version's files, each downloaded and checked against its BLAKE3 checksum as
    :meth:`download` does. The metadata describes each asset as a ``Dataset`` (title,
    description, tags as ``keywords``, record type as ``additionalType``, metadata as
    ``PropertyValue``s), each file as a ``File`` (size, media type, checksum), and a
    relationship between two exported assets as ``isBasedOn`` and ``wasDerivedFrom``. Only
    assets you may read are exported; at most 10,000. Without data the crate is metadata only
    and names each file by its download URL.

    Args:
        collection_id: A collection (exactly one of ``collection_id`` and ``query``).
        query: A search (``docs/search.md``), e.g. ``"tag:calibrated type:raw_data"``.
        include_data: Download the files (default) or write the metadata only.
        on_progress: Progress of every download (tell them apart by ``event.transfer_id``).
        transfer_timeout_s: Limit for all downloads together (``None``: forever).

    ``dest_dir`` must be empty, new, or an earlier crate of the same export (which is then
    refreshed: files already there with the same bytes are kept).

    Example::

        crate = client.export_ro_crate("beamtime-crate", collection_id=project.root_collection_id)
        print(crate.metadata_path, crate.asset_count, crate.file_count)

    Raises:
        DaemonError: ``ERR_INVALID_INPUT`` (not exactly one of collection_id/query, a bad query,
            more than 10,000 assets), ``ERR_FILE_EXISTS`` (``dest_dir`` holds something else),
            ``ERR_NOT_FOUND``, ``ERR_INTEGRITY``.
    """
    if (collection_id is None) == (query is None):
        raise InvalidInputError("give exactly one of collection_id and query")
    params: Dict[str, Any] = {
        "dest_dir": _params.absolute_path(dest_dir, "dest_dir"),
        "include_data": bool(include_data),
    }
    if collection_id is not None:
        params["collection_id"] = _params.require_str(collection_id, "collection_id")
    else:
        if not isinstance(query, str):
            raise InvalidArgumentTypeError(f"query must be a str, not {type(query).__name__}")
        params["query"] = query
    return CrateExportRequest(
        "export.ro_crate", params, RoCrateExport.from_json, on_progress, transfer_timeout_s
    )


def _member(project_id: str, email: str) -> JsonObject:
    return {
        "project_id": _params.require_str(project_id, "project_id"),
        "email": _params.require_str(email, "email"),
    }


def _nothing(_: JsonObject) -> None:
    return None


# ---------------------------------------------------------------------- turning them into methods

_RESULT = re.compile(r"(Call|Pages)\[(.*)\]")
# What a paging method returns, by the name its annotation uses (``typing.get_type_hints`` on a
# client method reads it in this module, through ``__wrapped__``).
_ITERATORS = {"Iterator": Iterator, "AsyncIterator": AsyncIterator}


def client_method(method: F, spec: Callable[..., Any], *, owner: str, pages_as: str, note: str = "") -> F:
    """Give ``owner``'s generated ``method`` (``self, *args, **kwargs``) the identity of ``spec``.

    Name, docstring (plus ``note``) and signature are ``spec``'s, with ``self`` first and the
    result the method gives: ``Call[X]`` becomes ``X``, ``Pages[X]`` becomes ``pages_as[X]``
    (``Iterator`` or ``AsyncIterator``).
    """
    signature = inspect.signature(spec)
    returns = _RESULT.fullmatch(str(signature.return_annotation))
    if returns is None:
        raise TypeError(f"{spec.__name__} must return Call[...] or Pages[...]")
    kind, item = returns.groups()
    if pages_as not in _ITERATORS:
        raise ValueError(f"pages_as must be one of {sorted(_ITERATORS)}")
    result = item if kind == "Call" else f"{pages_as}[{item}]"
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    method.__name__ = spec.__name__
    method.__qualname__ = f"{owner}.{spec.__name__}"
    method.__doc__ = (spec.__doc__ or "") + note
    method.__annotations__ = {**spec.__annotations__, "return": result}
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *signature.parameters.values()], return_annotation=result
    )
    method.__wrapped__ = spec  # type: ignore[attr-defined]
    return method
