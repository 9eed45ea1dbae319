"""Request parameters of the daemon's methods, built and checked in one place.

Both clients (:class:`~dataerai.DataeraiClient` and :class:`~dataerai.AsyncDataeraiClient`)
turn their keyword arguments into ``docs/ipc.md`` params here, so an argument is checked the same
way whichever client sends it. Bad arguments raise before any request:
:class:`~dataerai.InvalidInputError` (a ``ValueError``) or
:class:`~dataerai.InvalidArgumentTypeError` (a ``TypeError``), both ``ERR_INVALID_INPUT``.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .errors import InvalidArgumentTypeError, InvalidInputError
from .models import UploadItem

PathLike = Union[str, "os.PathLike[str]"]

#: Fields that ``set_metadata`` may change.
METADATA_FIELDS = ("title", "description", "alias", "tags", "metadata", "record_type")
#: Fields an ``upload_many`` item may carry (the ``asset.upload`` params except ``chunk_size_mb``).
UPLOAD_ITEM_FIELDS = (
    "local_path",
    "title",
    "owner_type",
    "owner_id",
    "description",
    "alias",
    "tags",
    "metadata",
    "collection_id",
    "record_type",
    "allocation_id",
    "asset_id",
    "idempotency_key",
)
# The daemon refuses larger `asset.upload_many` batches (docs/ipc.md).
MAX_BATCH_ITEMS = 10_000
#: Page size the ``iter_*`` methods ask for.
PAGE_SIZE = 500


def drop_none(params: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def require_str(value: Any, name: str) -> str:
    """An id or name argument: must be a string (emptiness is left to the daemon)."""
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def optional_str(value: Any, name: str) -> Optional[str]:
    return None if value is None else require_str(value, name)


def optional_mapping(value: Any, name: str) -> Optional[Dict[str, Any]]:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidArgumentTypeError(f"{name} must be a dict, not {type(value).__name__}")
    return dict(value)


def optional_int(value: Any, name: str, *, minimum: int = 0) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentTypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise InvalidInputError(f"{name} must be at least {minimum}, not {value}")
    return value


def chunk_size(value: Any) -> Optional[int]:
    size = optional_int(value, "chunk_size_mb", minimum=1)
    if size is not None and (size > 512 or size & (size - 1)):
        raise InvalidInputError(f"chunk_size_mb must be a power of two from 1 to 512, not {size}")
    return size


def timeout(value: Any, name: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentTypeError(f"{name} must be a number of seconds or None")
    if value < 0:
        raise InvalidInputError(f"{name} must not be negative")
    return float(value)


def absolute_path(value: Any, name: str) -> str:
    # The daemon has its own working directory, so relative paths are resolved here.
    try:
        raw: Union[str, bytes] = os.fspath(value)
    except TypeError:
        raise InvalidArgumentTypeError(
            f"{name} must be a str or os.PathLike, not {type(value).__name__}"
        ) from None
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    if not raw:
        raise InvalidInputError(f"{name} must not be empty")
    return os.path.abspath(os.path.expanduser(raw))


def tag_list(tags: Any) -> Any:
    if tags is None:
        return None
    if isinstance(tags, str):
        # A bare string would otherwise become a list of characters.
        raise InvalidArgumentTypeError("tags must be a list of strings, not a string")
    try:
        return list(tags)
    except TypeError:
        return tags  # let the daemon explain what is wrong with it


def page(limit: Any, offset: Any, cursor: Any = None) -> Dict[str, Any]:
    if cursor is not None:
        if offset is not None:
            raise InvalidInputError("give either cursor or offset, not both")
        offset = offset_of_cursor(cursor)
    return drop_none(
        {"limit": optional_int(limit, "limit", minimum=1), "offset": optional_int(offset, "offset")}
    )


def cursor_at(offset: int) -> str:
    """The ``next_cursor`` of a list page whose next page starts at ``offset``."""
    return f"o{offset}"


def offset_of_cursor(cursor: Any) -> int:
    if not isinstance(cursor, str):
        raise InvalidArgumentTypeError(f"cursor must be a str, not {type(cursor).__name__}")
    if not re.fullmatch(r"o[0-9]{1,18}", cursor):
        raise InvalidInputError(
            f"cursor {cursor!r} is not a cursor this list gave out (pass a page's next_cursor)"
        )
    return int(cursor[1:])


def transfer(transfer_id: Any) -> Dict[str, Any]:
    return {"transfer_id": require_str(transfer_id, "transfer_id")}


def list_assets(
    owner_type: Any, owner_id: Any, collection_id: Any, limit: Any, offset: Any, cursor: Any = None
) -> Dict[str, Any]:
    params = drop_none(
        {
            "owner_type": optional_str(owner_type, "owner_type"),
            "owner_id": optional_str(owner_id, "owner_id"),
            "collection_id": optional_str(collection_id, "collection_id"),
        }
    )
    params.update(page(limit, offset, cursor))
    return params


def upload(
    local_path: Any,
    *,
    title: Any,
    owner_type: Any,
    owner_id: Any,
    description: Any = None,
    alias: Any = None,
    tags: Any = None,
    metadata: Any = None,
    collection_id: Any = None,
    chunk_size_mb: Any = None,
    idempotency_key: Any = None,
    record_type: Any = None,
    allocation_id: Any = None,
) -> Dict[str, Any]:
    params: Dict[str, Any] = {
        "local_path": absolute_path(local_path, "local_path"),
        "title": require_str(title, "title"),
        "owner_type": require_str(owner_type, "owner_type"),
        "owner_id": require_str(owner_id, "owner_id"),
    }
    params.update(
        drop_none(
            {
                "description": optional_str(description, "description"),
                "alias": optional_str(alias, "alias"),
                "tags": tag_list(tags),
                "metadata": optional_mapping(metadata, "metadata"),
                "collection_id": optional_str(collection_id, "collection_id"),
                "record_type": optional_str(record_type, "record_type"),
                "allocation_id": optional_str(allocation_id, "allocation_id"),
                "chunk_size_mb": chunk_size(chunk_size_mb),
                "idempotency_key": optional_str(idempotency_key, "idempotency_key"),
            }
        )
    )
    return params


def upload_version(asset_id: Any, local_path: Any, chunk_size_mb: Any) -> Dict[str, Any]:
    params: Dict[str, Any] = {
        "asset_id": require_str(asset_id, "asset_id"),
        "local_path": absolute_path(local_path, "local_path"),
    }
    params.update(drop_none({"chunk_size_mb": chunk_size(chunk_size_mb)}))
    return params


def download(
    asset_id: Any,
    dest_dir: Any,
    content_id: Any,
    chunk_size_mb: Any,
    overwrite: Any,
    allow_hidden: Any,
    idempotency_key: Any = None,
) -> Dict[str, Any]:
    params: Dict[str, Any] = {
        "asset_id": require_str(asset_id, "asset_id"),
        "dest_dir": absolute_path(dest_dir, "dest_dir"),
    }
    for name, flag in (("overwrite", overwrite), ("allow_hidden", allow_hidden)):
        if not isinstance(flag, bool):
            raise InvalidArgumentTypeError(f"{name} must be True or False, not {type(flag).__name__}")
        if flag:
            params[name] = True
    params.update(
        drop_none(
            {
                "content_id": optional_str(content_id, "content_id"),
                "chunk_size_mb": chunk_size(chunk_size_mb),
                "idempotency_key": optional_str(idempotency_key, "idempotency_key"),
            }
        )
    )
    return params


def set_metadata(asset_id: Any, fields: Mapping[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(fields) - set(METADATA_FIELDS))
    if unknown:
        raise InvalidInputError(
            f"unknown metadata field(s) {', '.join(unknown)}; allowed: {', '.join(METADATA_FIELDS)}"
        )
    params: Dict[str, Any] = {"asset_id": require_str(asset_id, "asset_id")}
    for name, value in fields.items():
        params[name] = tag_list(value) if name == "tags" else value
    return params


def relationship(
    from_asset_id: Any,
    to_asset_id: Any,
    rel_type: Any,
    relationship_type: Any,
    analysis_mode: Any,
    qualifier_note: Any,
    qualifier_time: Any,
    qualifiers: Any,
) -> Dict[str, Any]:
    if (rel_type is None) == (relationship_type is None):
        raise InvalidInputError("give exactly one of rel_type and relationship_type")
    if isinstance(qualifier_time, datetime):
        moment = qualifier_time if qualifier_time.tzinfo else qualifier_time.astimezone()
        qualifier_time = moment.isoformat()
    params: Dict[str, Any] = {
        "from_asset_id": require_str(from_asset_id, "from_asset_id"),
        "to_asset_id": require_str(to_asset_id, "to_asset_id"),
        "relationship_type": require_str(
            rel_type if rel_type is not None else relationship_type, "relationship_type"
        ),
    }
    params.update(
        drop_none(
            {
                "analysis_mode": optional_str(analysis_mode, "analysis_mode"),
                "qualifier_note": optional_str(qualifier_note, "qualifier_note"),
                "qualifier_time": optional_str(qualifier_time, "qualifier_time"),
                "qualifiers": qualifiers,
            }
        )
    )
    return params


def upload_item(index: int, item: Any) -> Dict[str, Any]:
    """Turn one ``upload_many`` item into ``asset.upload`` params (paths made absolute)."""
    if isinstance(item, UploadItem):
        raw = item.to_params()
    elif isinstance(item, Mapping):
        raw = dict(item)
    else:
        raise InvalidArgumentTypeError(
            f"items[{index}] must be a dict or UploadItem, not {type(item).__name__}"
        )
    unknown = sorted(set(raw) - set(UPLOAD_ITEM_FIELDS))
    if unknown:
        raise InvalidInputError(
            f"items[{index}] has unknown field(s) {', '.join(map(str, unknown))}; "
            f"allowed: {', '.join(UPLOAD_ITEM_FIELDS)}"
        )
    params = drop_none(raw)
    if "local_path" in params:
        params["local_path"] = absolute_path(params["local_path"], f"items[{index}].local_path")
    if "tags" in params:
        params["tags"] = tag_list(params["tags"])
    return params


def upload_batch(items: Iterable[Any], concurrency: Any) -> List[Dict[str, Any]]:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise InvalidArgumentTypeError(f"concurrency must be an int, not {type(concurrency).__name__}")
    if not 1 <= concurrency <= 64:
        raise InvalidInputError(f"concurrency must be from 1 to 64, not {concurrency}")
    if isinstance(items, (str, bytes, Mapping)):
        raise InvalidArgumentTypeError("items must be a list of dicts or UploadItems")
    return [upload_item(i, item) for i, item in enumerate(items)]


def local_file_sizes(local_path: str) -> Dict[str, int]:
    """Sizes of the files an upload of ``local_path`` sends, by the name the daemon reports
    (progress bars only; best effort)."""
    root = Path(local_path)
    sizes: Dict[str, int] = {}
    try:
        if root.is_file():
            sizes[root.name] = root.stat().st_size
        elif root.is_dir():
            for path in root.rglob("*"):
                if path.is_file():
                    sizes[path.relative_to(root).as_posix()] = path.stat().st_size
    except OSError:
        pass
    return sizes


def first_page(by_cursor: bool) -> Union[int, str]:
    """Where a paged list starts: offset 0, or no cursor yet."""
    return "" if by_cursor else 0


def next_page(params: Mapping[str, Any], position: Union[int, str], by_cursor: bool) -> Dict[str, Any]:
    """The parameters asking a paged list method for the page at ``position`` (an offset, or a
    cursor the previous page gave)."""
    if by_cursor:
        return {**params, "limit": PAGE_SIZE, **({"cursor": position} if position else {})}
    return {**params, "limit": PAGE_SIZE, "offset": position}


def page_items(
    answer: Mapping[str, Any], position: Union[int, str], by_cursor: bool
) -> Tuple[List[Any], Optional[Union[int, str]]]:
    """The items of one page of a list answer and where the next page starts (``None``: last).

    Both clients page the same way: ``PAGE_SIZE`` items per request until a page is empty, the
    answer's ``total`` is reached, or (cursor paging) no ``next_cursor`` is given.
    """
    items = list(answer.get("items") or [])
    if by_cursor:
        following_cursor = answer.get("next_cursor")
        return items, (str(following_cursor) if items and following_cursor else None)
    assert isinstance(position, int)
    following = position + len(items)
    if not items or following >= int(answer.get("total") or 0):
        return items, None
    return items, following


def search(query: Any, limit: Any, cursor: Any, sort: Any, facets: bool) -> Dict[str, Any]:
    if not isinstance(query, str):
        raise InvalidArgumentTypeError(f"query must be a str, not {type(query).__name__}")
    params: Dict[str, Any] = {"query": query, "facets": facets}
    params.update(
        drop_none(
            {
                "limit": optional_int(limit, "limit", minimum=1),
                "cursor": optional_str(cursor, "cursor"),
                "sort": optional_str(sort, "sort"),
            }
        )
    )
    return params
