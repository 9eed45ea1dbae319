"""Result types returned by :class:`dataerai.DataeraiClient`.

All results are plain dataclasses built from the daemon's JSON. Each keeps the untouched JSON
object in ``raw`` so fields added by newer daemons stay reachable without an SDK upgrade.
Timestamps are timezone-aware :class:`datetime.datetime` objects (UTC).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Type, TypeVar

from .errors import DaemonError

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "AssetMetadata",
    "AuthStatus",
    "ContentVersion",
    "Lineage",
    "LineageEdge",
    "LineageNode",
    "DownloadResult",
    "DownloadedFile",
    "ErrorInfo",
    "ProgressEvent",
    "Project",
    "ProvenanceExport",
    "Relationship",
    "RoCrateExport",
    "Transfer",
    "UploadItem",
    "UploadManyResult",
    "UploadResult",
    "UploadedFile",
    "VersionFile",
    "parse_datetime",
    # The collection tree.
    "Collection",
    "CollectionAssetDownload",
    "CollectionDownloadResult",
    "CollectionPath",
]

JsonObject = Dict[str, Any]

T = TypeVar("T")
D = TypeVar("D")


class ListPage(List[T]):
    """One page of a list call (``list_projects``, ``list_assets``, ``list_versions``, …).

    A plain ``list`` of the page's items that also says how many there are on every page
    (``total``) and where the next page starts (``next_cursor``: pass it as ``cursor=`` to the
    same call; ``None`` on the last page). ``iter_*`` calls page for you.

    Example::

        page = client.list_assets(limit=50)
        print(len(page), "of", page.total)
        while page.next_cursor:
            page = client.list_assets(limit=50, cursor=page.next_cursor)
    """

    total: int
    next_cursor: Optional[str]

    def __init__(
        self, items: Iterable[T] = (), *, total: Optional[int] = None, next_cursor: Optional[str] = None
    ) -> None:
        super().__init__(items)
        self.total = len(self) if total is None else total
        self.next_cursor = next_cursor

    def __repr__(self) -> str:
        return f"ListPage({list.__repr__(self)}, total={self.total}, next_cursor={self.next_cursor!r})"


# RFC 3339 as written by the daemon (chrono): up to nanosecond fractions and a `Z` suffix,
# neither of which `datetime.fromisoformat` accepts before Python 3.11.
_RFC3339 = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?"
    r"(?P<tz>Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(value: Any) -> Optional[datetime]:
    """Parse an RFC 3339 timestamp; ``None`` and empty strings give ``None``.

    >>> parse_datetime("2026-12-01T00:00:00.123456789Z").isoformat()
    '2026-12-01T00:00:00.123456+00:00'
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    match = _RFC3339.match(str(value))
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    text = match.group("base").replace(" ", "T")
    frac = match.group("frac")
    if frac:
        text += "." + frac[:6].ljust(6, "0")
    tz = match.group("tz")
    if tz is None or tz in ("Z", "z"):
        tz = "+00:00"
    elif ":" not in tz:
        tz = tz[:3] + ":" + tz[3:]
    parsed = datetime.fromisoformat(text + tz)
    return parsed.astimezone(timezone.utc)


def _opt_str(value: Any) -> Optional[str]:
    return None if value is None else str(value)


def _opt_dict(value: Any) -> Optional[JsonObject]:
    return dict(value) if isinstance(value, dict) else None


def _none() -> None:
    return None


def _same(value: Any) -> Any:
    return value


# How ``_from_json`` reads a field, by its annotation as written (the module postpones
# annotations): a converter, and what a missing or null value gives when the field has no
# default.
_READERS: Dict[str, Tuple[Callable[[Any], Any], Callable[[], Any]]] = {
    "str": (str, str),
    "Optional[str]": (str, _none),
    "int": (int, int),
    "Optional[int]": (int, _none),
    "float": (float, float),
    "bool": (bool, bool),
    "Optional[datetime]": (parse_datetime, _none),
    "List[str]": (list, list),
    "JsonObject": (dict, dict),
    "Optional[JsonObject]": (_opt_dict, _none),
    "Optional[ErrorInfo]": (lambda value: ErrorInfo.from_json(value), _none),
}

_FieldReader = Tuple[str, Optional[Callable[[Any], Any]], Callable[[], Any]]
_FieldPlan = Tuple[_FieldReader, ...]


_PLANS: Dict[type, _FieldPlan] = {}


def _field_plan(cls: type) -> _FieldPlan:
    """Each field of the dataclass ``cls``: its name, converter (``None``: the caller must give
    it) and what a missing or null value gives; worked out once per class."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple(_field_reader(f) for f in dataclasses.fields(cls))
    return plan


def _field_reader(f: dataclasses.Field[Any]) -> _FieldReader:
    reader, empty = _READERS.get(str(f.type), (None, _none))
    if f.default is not dataclasses.MISSING:
        empty = functools.partial(_same, f.default)
    elif f.default_factory is not dataclasses.MISSING:
        empty = f.default_factory
    return f.name, reader, empty


def _from_json(cls: Type[D], data: JsonObject, **given: Any) -> D:
    """Build the dataclass ``cls`` from the daemon's JSON object ``data``.

    ``given`` holds the fields read another way (required keys, renamed keys, nested results);
    ``raw`` is ``data``; every other field is ``data[<its name>]`` converted by its annotation
    (``_READERS``), or its default when missing or null.
    """
    values: Dict[str, Any] = {}
    for name, reader, empty in _field_plan(cls):
        if name in given:
            values[name] = given[name]
        elif name == "raw":
            values[name] = data
        elif reader is None:
            raise TypeError(f"{cls.__name__}.from_json must give {name!r}")
        else:
            value = data.get(name)
            values[name] = empty() if value is None else reader(value)
    return cls(**values)


class _FromJson:
    """``from_json`` for a result whose every field is read by ``_from_json`` as it is."""

    @classmethod
    def from_json(cls: Type[D], data: JsonObject) -> D:
        return _from_json(cls, data)


@dataclass(frozen=True)
class AuthStatus(_FromJson):
    """Who the daemon is signed in as (see :meth:`DataeraiClient.auth_status`)."""

    user_email: str
    expires_at: Optional[datetime]
    """When the token expires; ``None`` for a token that never expires."""
    user_id: str
    server: str
    scopes: List[str]
    signed_in: bool = True
    token_kind: Optional[str] = None
    """``"oauth"`` (device login: short-lived access token, refreshed by the daemon) or ``"pat"``."""
    refresh_expires_at: Optional[datetime] = None
    """When the sign-in itself ends (the refresh token's expiry); ``None`` for personal tokens."""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def server_url(self) -> str:
        """The server's address (the same as ``server``)."""
        return self.server


@dataclass(frozen=True)
class ProjectMember(_FromJson):
    """A user's membership of a project (see :meth:`DataeraiClient.list_project_members`)."""

    user_id: str
    email: str
    role: str
    """``owner``, ``admin``, ``member`` or ``viewer``."""
    added_at: Optional[datetime]
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Project:
    """A project: members share its assets and its storage allocation (quota)."""

    project_id: str
    name: str
    description: str
    root_collection_id: str
    created_at: Optional[datetime]
    role: str
    """The caller's role: ``owner``, ``admin``, ``member`` or ``viewer``."""
    quota_bytes: Optional[int]
    used_bytes: Optional[int]
    reserved_bytes: Optional[int] = None
    allocation_id: Optional[str] = None
    created_by: Optional[str] = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> Project:
        alloc = data.get("allocation") or {}
        return _from_json(
            cls,
            data,
            project_id=str(data["project_id"]),
            quota_bytes=alloc.get("quota_bytes"),
            used_bytes=alloc.get("used_bytes"),
            reserved_bytes=alloc.get("reserved_bytes"),
            allocation_id=_opt_str(alloc.get("allocation_id")),
        )


@dataclass(frozen=True)
class UploadedFile:
    """One file of an uploaded content version."""

    name: str
    """The file's name in the content version: its ``/``-separated path relative to an
    uploaded directory, or the file name for a single-file upload."""
    size: int
    checksum: Optional[str]
    """``blake3:<hex>`` of the whole file, as verified by the server."""
    deduplicated: bool = False
    """The server already held these bytes for the same owner, so none were sent."""


@dataclass(frozen=True)
class UploadResult:
    """A finished upload (see :meth:`DataeraiClient.upload`)."""

    asset_id: str
    content_id: str
    transfer_id: str
    total_bytes: int
    chunk_count: int
    files: List[UploadedFile] = field(default_factory=list)
    file_count: int = 0
    """Number of files in the content version (more than one for a directory upload)."""
    bytes_sent: Optional[int] = None
    """Bytes that actually crossed the network (0 when everything was deduplicated);
    ``None`` when the daemon does not report it."""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def checksum(self) -> Optional[str]:
        """Checksum of the first (usually only) file, ``blake3:<hex>``."""
        return self.files[0].checksum if self.files else None

    @property
    def deduplicated(self) -> bool:
        """Every file was already stored for the same owner, so no file content was sent."""
        return bool(self.files) and all(f.deduplicated for f in self.files)

    @classmethod
    def from_json(cls, data: JsonObject) -> UploadResult:
        files = [_from_json(UploadedFile, f) for f in data.get("files") or []]
        return _from_json(
            cls,
            data,
            asset_id=str(data["asset_id"]),
            files=files,
            file_count=int(data.get("file_count") or len(files)),
        )


@dataclass(frozen=True)
class DownloadedFile:
    """One file written by a download, complete and verified."""

    local_path: Path
    size: int
    filename: str
    """The file's name in the content version, ``/``-separated and relative to ``dest_dir``
    (``"raw/frame_001.tif"`` for a directory upload)."""
    checksum: Optional[str] = None
    """``blake3:<hex>`` that the file was verified against."""
    skipped: bool = False
    """The file was already there with these bytes and was left untouched."""


@dataclass(frozen=True)
class DownloadResult:
    """A finished download (see :meth:`DataeraiClient.download`)."""

    asset_id: str
    content_id: str
    transfer_id: str
    total_bytes: int
    files: List[DownloadedFile]
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def file_count(self) -> int:
        """Number of files written (the whole tree of a directory upload)."""
        return len(self.files)

    @classmethod
    def from_json(cls, data: JsonObject) -> DownloadResult:
        files = [
            _from_json(
                DownloadedFile,
                f,
                local_path=Path(f["local_path"]),
                filename=str(f.get("filename") or Path(f["local_path"]).name),
            )
            for f in data.get("files") or []
        ]
        return _from_json(cls, data, asset_id=str(data["asset_id"]), files=files)


@dataclass(frozen=True)
class AssetMetadata:
    """An asset's descriptive metadata and its latest content version."""

    asset_id: str
    title: str
    description: Optional[str]
    alias: Optional[str]
    tags: List[str]
    metadata: JsonObject
    owner_type: str
    """``"user"`` (personal asset) or ``"project"``."""
    owner_id: str
    collection_ids: List[str]
    created_at: Optional[datetime]
    updated_at: Optional[datetime]
    content_id: Optional[str]
    """Latest complete content version, ``None`` before the first upload completes."""
    total_bytes: Optional[int] = None
    created_by: Optional[str] = None
    latest_content: Optional[JsonObject] = field(default=None, repr=False)
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)
    record_type: Optional[str] = None
    """What kind of record it is (``raw_data``, ``analysis``, ``figure``, …), if set."""
    allocation_id: Optional[str] = None
    """The allocation (quota) its versions are charged to when it is not the owner's (see
    ``upload(…, allocation_id=…)``); ``None``: the owner's."""

    @property
    def has_content(self) -> bool:
        """Whether a content version is published (there is something to download)."""
        return self.content_id is not None

    @classmethod
    def from_json(cls, data: JsonObject) -> AssetMetadata:
        latest = data.get("latest_content") or None
        return _from_json(
            cls,
            data,
            asset_id=str(data["asset_id"]),
            content_id=_opt_str(latest.get("content_id")) if latest else None,
            total_bytes=latest.get("total_bytes") if latest else None,
            latest_content=latest,
        )


@dataclass(frozen=True)
class SearchResult:
    """One page of :meth:`DataeraiClient.search`."""

    items: List[AssetMetadata]
    total: int
    """Every match you can read, on all pages, counted exactly up to 10,000; past that a lower
    bound (see ``total_is_lower_bound``)."""
    facets: Dict[str, Dict[str, int]]
    """The most frequent values among the counted matches (all of them unless
    ``total_is_lower_bound``), most frequent first:
    ``{"tags": {"calibrated": 12, …}, "record_types": {…}, "projects": {project_id: n, …}}``."""
    next_cursor: Optional[str]
    """Pass as ``cursor=`` for the next page; ``None`` on the last page."""
    total_is_lower_bound: bool = False
    """``True`` when there are more matches than were counted: ``total`` then reads "10,000+"."""

    @classmethod
    def from_json(cls, data: JsonObject) -> SearchResult:
        facets = data.get("facets") or {}
        return _from_json(
            cls,
            data,
            items=[AssetMetadata.from_json(item) for item in data.get("items") or []],
            facets={
                name: {str(f["value"]): int(f["count"]) for f in facets.get(name) or []}
                for name in ("tags", "record_types", "projects")
            },
        )


@dataclass(frozen=True)
class Relationship:
    """A directed provenance edge from a dependent asset to its origin."""

    id: str
    type: str
    from_asset_id: str
    to_asset_id: str
    analysis_mode: Optional[str]
    qualifiers: JsonObject
    related_asset: JsonObject
    """Summary of the other asset (the target of an outgoing relationship, the source of an
    incoming one): ``id``, ``title``, ``alias``, ``owner_type``, ``owner_id``; only ``id`` when
    you may not read it."""
    created_at: Optional[datetime]
    created_by: Optional[str] = None
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)
    direction: str = "out"
    """``"out"`` (from the asset it was listed for) or ``"in"`` (pointing at it)."""

    @property
    def qualifier_note(self) -> Optional[str]:
        """The ``qualifier_note`` given at creation (``qualifiers["note"]``), if any."""
        return _opt_str(self.qualifiers.get("note"))

    @property
    def qualifier_time(self) -> Optional[datetime]:
        """The ``qualifier_time`` given at creation (``qualifiers["time"]``), if any."""
        value = self.qualifiers.get("time")
        try:
            return parse_datetime(value)
        except ValueError:
            return None

    @classmethod
    def from_json(cls, data: JsonObject) -> Relationship:
        return _from_json(cls, data, id=str(data["id"]))


@dataclass(frozen=True)
class LineageNode:
    """An asset of a :class:`Lineage`. One you may not read has ``redacted`` set and
    carries its ``asset_id`` and ``depth`` only."""

    asset_id: str
    depth: int
    """Relationships between the lineage's root (0) and this asset, fewest first."""
    redacted: bool
    title: Optional[str] = None
    alias: Optional[str] = None
    record_type: Optional[str] = None
    owner_type: Optional[str] = None
    owner_id: Optional[str] = None

    @classmethod
    def from_json(cls, data: JsonObject) -> LineageNode:
        return _from_json(cls, data, asset_id=str(data["id"]))


@dataclass(frozen=True)
class LineageEdge:
    """A relationship of a :class:`Lineage`: ``from_asset_id`` was derived from (depends on)
    ``to_asset_id``."""

    id: str
    type: str
    from_asset_id: str
    to_asset_id: str
    analysis_mode: Optional[str] = None

    @classmethod
    def from_json(cls, data: JsonObject) -> LineageEdge:
        return _from_json(cls, data, id=str(data["id"]))


@dataclass(frozen=True)
class Lineage:
    """What :meth:`DataeraiClient.lineage` found: the assets reachable from ``root`` along
    relationships and the relationships between them."""

    root: str
    nodes: List[LineageNode]
    edges: List[LineageEdge]
    truncated: bool
    """More relationships were reachable than one answer holds (10,000)."""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    def node(self, asset_id: str) -> Optional[LineageNode]:
        """The node of ``asset_id``, or ``None`` when the lineage does not reach it."""
        return next((n for n in self.nodes if n.asset_id == asset_id), None)

    @classmethod
    def from_json(cls, data: JsonObject) -> Lineage:
        return _from_json(
            cls,
            data,
            nodes=[LineageNode.from_json(n) for n in data.get("nodes") or []],
            edges=[LineageEdge.from_json(e) for e in data.get("edges") or []],
        )


@dataclass(frozen=True)
class ProgressEvent(_FromJson):
    """Progress of a running transfer, passed to ``on_progress`` callbacks.

    ``bytes_done`` only grows and ends equal to ``bytes_total``; ``chunk_index`` is the chunk
    (within file ``file_index``) that just finished; ``rate_bps`` is the average rate in bytes
    per second since the transfer started.

    While the daemon waits for a server it cannot reach (``transfer.retrying``, also before a
    new transfer could start), callbacks get events with ``state == "retrying"``: the attempt,
    the wait before the next one and the error; their byte fields repeat the last progress
    (zeros before any). Other events have ``state == "running"``.
    """

    transfer_id: str
    bytes_done: int
    bytes_total: int
    chunk_index: int
    chunk_count: int
    rate_bps: float
    file_index: int
    file_name: str
    kind: str = ""
    """``"upload"`` or ``"download"``."""
    state: str = "running"
    """``"running"``, or ``"retrying"`` while the daemon waits for the server."""
    retry_attempt: int = 0
    """With ``state == "retrying"``: how many attempts failed in a row."""
    retry_delay_s: float = 0.0
    """With ``state == "retrying"``: seconds until the next attempt."""
    error: Optional[ErrorInfo] = None
    """With ``state == "retrying"``: why the last attempt failed."""

    @property
    def percent(self) -> float:
        """Completion in percent, 0–100 (a 0-byte transfer counts as 100)."""
        if self.bytes_total <= 0:
            return 100.0
        return max(0.0, min(100.0, 100.0 * self.bytes_done / self.bytes_total))

    @property
    def rate_mbps(self) -> float:
        """Average rate in megabytes (10^6 bytes) per second."""
        return self.rate_bps / 1e6


@dataclass(frozen=True)
class ErrorInfo:
    """An error recorded on a transfer: a stable ``ERR_*`` code and a message."""

    code: str
    message: str

    @classmethod
    def from_json(cls, data: Any) -> Optional[ErrorInfo]:
        if not isinstance(data, dict):
            return None
        return cls(code=str(data.get("code") or "ERR_INTERNAL"), message=str(data.get("message") or ""))


#: Transfer states in which the daemon is still working (or will work again on its own).
ACTIVE_STATES = frozenset({"queued", "running", "retrying"})
#: States a transfer ends in. ``failed`` ones with ``ERR_NO_SPACE``, ``ERR_SERVER_UNREACHABLE``
#: or ``ERR_INTEGRITY`` can still be continued with ``resume_transfer``.
FINAL_STATES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class Transfer:
    """A transfer as the daemon's journal records it (see :meth:`DataeraiClient.get_transfer`).

    ``state`` is one of ``queued``, ``running``, ``retrying`` (a non-fatal error, the daemon
    waits and tries again; see ``last_error`` and ``attempt``), ``paused``, ``completed``,
    ``failed`` (see ``error``) or ``cancelled``. ``result`` is the raw result of a completed
    transfer; :meth:`DataeraiClient.wait_transfer` turns it into an ``UploadResult`` or
    ``DownloadResult``.

    For code written against SDK 0.1, ``transfer["state"]`` still works (item access reads
    the daemon's JSON in ``raw``).
    """

    transfer_id: str
    kind: str
    """``"upload"`` or ``"download"``."""
    state: str
    asset_id: Optional[str]
    content_id: Optional[str]
    local_path: Optional[str]
    """Upload source (file or directory) or download ``dest_dir``."""
    bytes_done: int
    bytes_total: int
    chunk_count: int
    file_count: int
    created_at: Optional[datetime]
    updated_at: Optional[datetime]
    attempt: int
    """How many times in a row the daemon has retried (0 while all goes well)."""
    last_error: Optional[ErrorInfo]
    """The most recent non-fatal error (while ``retrying``)."""
    result: Optional[JsonObject]
    error: Optional[ErrorInfo]
    """The fatal error of a ``failed`` or ``cancelled`` transfer."""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def percent(self) -> float:
        """Completion in percent, 0–100 (a 0-byte transfer counts as 100 once completed)."""
        if self.bytes_total <= 0:
            return 100.0 if self.state == "completed" else 0.0
        return max(0.0, min(100.0, 100.0 * self.bytes_done / self.bytes_total))

    @property
    def finished(self) -> bool:
        """Whether the transfer reached ``completed``, ``failed`` or ``cancelled``."""
        return self.state in FINAL_STATES

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    @classmethod
    def from_json(cls, data: JsonObject) -> Transfer:
        return _from_json(cls, data, transfer_id=str(data["transfer_id"]))


@dataclass(frozen=True)
class VersionFile:
    """One file of a content version."""

    file_index: int
    name: str
    size: int
    checksum: Optional[str]


@dataclass(frozen=True)
class ContentVersion:
    """One content version of an asset (see :meth:`DataeraiClient.list_versions`)."""

    content_id: str
    asset_id: str
    status: str
    total_bytes: int
    files: List[VersionFile]
    created_at: Optional[datetime]
    completed_at: Optional[datetime]
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> ContentVersion:
        files = [
            _from_json(VersionFile, f, file_index=int(f.get("file_index", i)))
            for i, f in enumerate(data.get("files") or [])
        ]
        return _from_json(cls, data, content_id=str(data["content_id"]), files=files)


@dataclass
class UploadItem:
    """One file (or directory) for :meth:`DataeraiClient.upload_many`.

    A plain ``dict`` with the same keys works too.
    """

    local_path: Any
    """``str`` or ``os.PathLike``; relative paths are resolved against your working directory."""
    title: str
    owner_type: str
    owner_id: str
    description: Optional[str] = None
    alias: Optional[str] = None
    tags: Optional[List[str]] = None
    metadata: Optional[JsonObject] = None
    collection_id: Optional[str] = None
    idempotency_key: Optional[str] = None
    """As for :meth:`DataeraiClient.upload`: a repeat with the same key follows the first."""
    record_type: Optional[str] = None
    allocation_id: Optional[str] = None
    """As for :meth:`DataeraiClient.upload`: the allocation to charge (``None``: the owner's)."""

    def to_params(self) -> JsonObject:
        params: JsonObject = {
            "local_path": self.local_path,
            "title": self.title,
            "owner_type": self.owner_type,
            "owner_id": self.owner_id,
        }
        for name in (
            "description",
            "alias",
            "tags",
            "metadata",
            "collection_id",
            "idempotency_key",
            "record_type",
            "allocation_id",
        ):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        return params


@dataclass(frozen=True)
class UploadManyResult:
    """The outcome of one item of :meth:`DataeraiClient.upload_many`, in input order.

    Exactly one of ``result`` and ``error`` is set. An ``error`` that is a
    :class:`~dataerai.DaemonTimeoutError` means the item's transfer was still going when the
    call stopped waiting; it continues in the daemon (``error.transfer_id``).
    """

    index: int
    local_path: Optional[Path]
    result: Optional[UploadResult]
    error: Optional[DaemonError]

    @property
    def ok(self) -> bool:
        return self.error is None


# ---------------------------------------------------------------------- collections as a tree


@dataclass(frozen=True)
class Collection:
    """A collection of a project: a folder of assets in a tree whose root carries the project's
    name (``parent_id`` ``None``). Sibling names are unique within a parent."""

    collection_id: str
    project_id: str
    name: str
    parent_id: Optional[str]
    description: str = ""
    created_at: Optional[datetime] = None
    asset_count: int = 0
    """Assets filed directly in this collection (not in its sub-collections)."""
    child_count: int = 0
    """Collections directly under this one."""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_root(self) -> bool:
        return self.parent_id is None

    @classmethod
    def from_json(cls, data: JsonObject) -> Collection:
        return _from_json(cls, data, collection_id=str(data["collection_id"]))


@dataclass(frozen=True)
class CollectionPath:
    """A resolved collection path (see :meth:`DataeraiClient.ensure_collection_path`)."""

    path: str
    """The normalised path: segments trimmed, joined by ``/`` (``"abTEM/notebook runs/tutorials"``)."""
    project_id: str
    project_name: str
    collection_id: str
    """The last segment's collection (the project's root collection for a bare project name)."""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> CollectionPath:
        return _from_json(
            cls,
            data,
            path=str(data["path"]),
            project_id=str(data["project_id"]),
            collection_id=str(data["collection_id"]),
        )


@dataclass(frozen=True)
class CollectionAssetDownload:
    """One asset of a :class:`CollectionDownloadResult`."""

    asset_id: str
    title: str
    collection_id: str
    """The collection (the downloaded one or a descendant) the asset is filed in."""
    local_path: Path
    """The asset's folder: ``<collection folder>/<title>``; its files are below it."""
    result: Optional[DownloadResult]
    """``None`` for an asset without content (nothing to download)."""

    @property
    def files(self) -> List[DownloadedFile]:
        return list(self.result.files) if self.result is not None else []


@dataclass(frozen=True)
class CollectionDownloadResult:
    """A downloaded collection (see :meth:`DataeraiClient.download_collection`)."""

    collection_id: str
    local_path: Path
    """The collection's own folder, ``dest_dir/<collection name>``."""
    assets: List[CollectionAssetDownload]

    @property
    def files(self) -> List[DownloadedFile]:
        """Every file written (or found already complete), all assets together."""
        return [f for a in self.assets for f in a.files]


# ---------------------------------------------------------------------- provenance export


@dataclass(frozen=True)
class ProvenanceExport:
    """The file :meth:`DataeraiClient.export_provenance` wrote, and what it holds."""

    path: Path
    format: str
    asset_id: str
    entity_count: int
    """Assets in the document (those you may not read are there by id only)."""
    derivation_count: int
    """``wasDerivedFrom`` relations: the relationships of the lineage."""
    agent_count: int
    """People who created the assets."""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject) -> ProvenanceExport:
        return _from_json(
            cls, data, path=Path(str(data["path"])), format=str(data.get("format", "prov-json"))
        )


@dataclass(frozen=True)
class RoCrateExport:
    """The RO-Crate folder :meth:`DataeraiClient.export_ro_crate` wrote."""

    dest_dir: Path
    metadata_path: Path
    """``dest_dir / "ro-crate-metadata.json"``."""
    asset_count: int
    file_count: int
    bytes_total: int
    """Bytes of every file the metadata names."""
    downloads: List[DownloadResult]
    """One per asset with content (empty for a metadata-only crate)."""
    raw: JsonObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: JsonObject, results: List[JsonObject]) -> RoCrateExport:
        return _from_json(
            cls,
            data,
            dest_dir=Path(str(data["dest_dir"])),
            metadata_path=Path(str(data["metadata_path"])),
            downloads=[DownloadResult.from_json(r) for r in results],
        )
