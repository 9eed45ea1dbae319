"""``progress=True``: ``tqdm.auto`` bars (a widget in Jupyter, text in a terminal).

One bar per file of each transfer — a folder upload or download shows one bar per file, a batch
(``upload_many``) one per item — each with bytes, rate and ETA. The bars are fed from the same
:class:`~dataerai.ProgressEvent` stream as ``on_progress``, which keeps working alongside.

tqdm is optional (``pip install 'dataerai-sdk[notebook]'``); asking for ``progress=True``
without it raises :class:`ImportError` before any request is sent.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

from ._params import local_file_sizes
from .errors import InvalidArgumentTypeError
from .models import ContentVersion, ProgressEvent

ProgressCallback = Callable[[ProgressEvent], Any]

MISSING_TQDM = (
    "progress=True needs tqdm, which is not installed: "
    "pip install 'dataerai-sdk[notebook]' (or pip install tqdm)"
)


def load_tqdm() -> Any:
    """The ``tqdm.auto.tqdm`` class, or :class:`ImportError` naming the extra to install."""
    try:
        module = importlib.import_module("tqdm.auto")
    except ImportError as exc:
        raise ImportError(MISSING_TQDM, name="tqdm") from exc
    return module.tqdm


class ProgressBars:
    """Bars for the transfers of one call; feed it events, then :meth:`close`.

    :meth:`expect` tells it what a transfer carries (``file_sizes`` by the file names the daemon
    reports, ``bytes_total``, ``file_count``, a ``label``) so each file's bar has a total and
    therefore an ETA. Bytes are attributed to a file as the transfer's ``bytes_done`` grows
    with each of that file's events.
    """

    def __init__(self, tqdm_cls: Any, on_progress: Optional[ProgressCallback] = None) -> None:
        self._tqdm = tqdm_cls
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self._expected: Dict[str, Mapping[str, Any]] = {}
        self._done: Dict[str, int] = {}
        self._bars: Dict[Tuple[str, int], Any] = {}
        self._order: List[Tuple[str, int]] = []
        self._retrying: Set[str] = set()

    def expect(self, transfer_id: str, info: Mapping[str, Any]) -> None:
        with self._lock:
            self._expected[transfer_id] = info

    def __call__(self, event: ProgressEvent) -> None:
        try:
            with self._lock:
                if event.state == "retrying":
                    self._note_retry(event)
                else:
                    self._update(event)
        finally:
            if self._on_progress is not None:
                self._on_progress(event)

    def close(self) -> None:
        """Close every bar (left on screen: finished ones at 100 %, others where they stopped)."""
        with self._lock:
            bars = [self._bars[key] for key in self._order]
            self._bars.clear()
            self._order.clear()
        for bar in bars:
            bar.close()

    def _update(self, event: ProgressEvent) -> None:
        tid = event.transfer_id
        previous = self._done.get(tid, 0)
        delta = max(0, event.bytes_done - previous)
        self._done[tid] = max(previous, event.bytes_done)
        bar = self._bar(event)
        if tid in self._retrying:
            # Moving again: drop the retry note.
            self._retrying.discard(tid)
            for (bar_tid, _), other in self._bars.items():
                if bar_tid == tid:
                    other.set_postfix_str("", refresh=False)
        if delta:
            bar.update(delta)
        if event.bytes_total > 0 and event.bytes_done >= event.bytes_total or event.bytes_total == 0:
            # The transfer is complete: every file of it is too.
            for (bar_tid, _), other in self._bars.items():
                if bar_tid == tid and other.total is not None and other.n < other.total:
                    other.update(other.total - other.n)
            bar.refresh()

    def _note_retry(self, event: ProgressEvent) -> None:
        """Show on the transfer's bars (a new one if it has none yet) that the daemon waits."""
        code = event.error.code if event.error is not None else "an error"
        note = f"retrying after {code} (attempt {event.retry_attempt}, next in {event.retry_delay_s:.0f} s)"
        bars = [bar for (tid, _), bar in self._bars.items() if tid == event.transfer_id]
        if not bars:
            info = self._expected.get(event.transfer_id, {})
            if event.bytes_total <= 0 and info.get("bytes_total"):
                event = dataclasses.replace(event, bytes_total=int(info["bytes_total"]))
            bars = [self._bar(event)]
        for bar in bars:
            bar.set_postfix_str(note)
        self._retrying.add(event.transfer_id)

    def _bar(self, event: ProgressEvent) -> Any:
        key = (event.transfer_id, event.file_index)
        bar = self._bars.get(key)
        if bar is not None:
            return bar
        info = self._expected.get(event.transfer_id, {})
        sizes = info.get("file_sizes") or {}
        file_count = int(info.get("file_count") or 1)
        total: Optional[int] = sizes.get(event.file_name)
        if total is None and file_count <= 1:
            total = event.bytes_total
        name = event.file_name or str(info.get("label") or event.transfer_id[:8])
        arrow = "↑" if (event.kind or info.get("kind")) == "upload" else "↓"
        bar = self._tqdm(
            total=total,
            desc=f"{arrow} {name}",
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            dynamic_ncols=True,
            leave=True,
        )
        self._bars[key] = bar
        self._order.append(key)
        return bar


def bars_for(progress: bool, on_progress: Optional[ProgressCallback]) -> Optional[ProgressBars]:
    """Bars when ``progress`` is true (checked before any request), else ``None``."""
    if not isinstance(progress, bool):
        raise InvalidArgumentTypeError(f"progress must be True or False, not {type(progress).__name__}")
    if not progress:
        return None
    return ProgressBars(load_tqdm(), on_progress)


def upload_info(params: Mapping[str, Any]) -> Dict[str, Any]:
    """What the bars of an ``asset.upload`` need to know before it starts."""
    return {
        "kind": "upload",
        "label": params.get("title") or params.get("asset_id") or "",
        "file_sizes": local_file_sizes(str(params.get("local_path") or "")),
    }


def download_info(params: Mapping[str, Any], version: Optional[ContentVersion]) -> Dict[str, Any]:
    """What the bars of an ``asset.download`` need: its version's file sizes, when known."""
    sizes = {f.name: f.size for f in version.files} if version is not None else {}
    return {"kind": "download", "label": params.get("asset_id") or "", "file_sizes": sizes}


def wanted_version(version: ContentVersion, params: Mapping[str, Any]) -> bool:
    """Whether ``version`` is the one ``asset.download`` with ``params`` fetches (versions come
    newest first, so the first complete one when no ``content_id`` is given)."""
    content_id = params.get("content_id")
    return version.content_id == content_id if content_id else True


def started(info: Mapping[str, Any], start: Mapping[str, Any]) -> Dict[str, Any]:
    """Merge a transfer's start answer (``file_count``, ``bytes_total``) into ``info``."""
    merged = dict(info)
    for key in ("file_count", "bytes_total", "kind"):
        if start.get(key) is not None:
            merged[key] = start[key]
    return merged
