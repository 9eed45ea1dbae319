"""Notebooks that record their own provenance: a trace of every executed cell, published as one
execution-log asset linked to what the run read and made.

Start a trace with the IPython magic (``%load_ext dataerai.magics`` then ``%dataerai --trace
Project / runs``), or from code with :meth:`NotebookSession.start`. While the trace runs, every
cell is recorded without any per-cell magic: its source, execution count, start and end time,
status or error name, and its stdout/stderr and rich outputs (each bounded; a longer output is
cut with a marker). Files go into the session's collection through :meth:`NotebookSession.upload`
(the run's *products*) and come from the store through :meth:`NotebookSession.download` (its
*inputs*). :meth:`NotebookSession.finish` uploads the trace as one asset (``record_type="log"``:
``execution-log.json``, plus the notebook file when it is known) and links it: every product
``records_telemetry`` → the run, the run ``uses_data`` → every input, so ``lineage()`` from a
figure reaches the raw data through the run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, TextIO, Union

from ._params import PathLike
from .errors import DaemonError, InvalidInputError

TRACE_ENV = "DATAERAI_NOTEBOOK_TRACE_RUN_ID"
"""Set in the kernel's environment while a trace runs: code the notebook calls can stamp it."""

LOG_FORMAT = "dataerai-notebook-trace/1"
LOG_FILE = "execution-log.json"

MAX_STREAM_CHARS = 64 * 1024
"""Of each cell's stdout and of its stderr."""
MAX_OUTPUT_CHARS = 64 * 1024
"""Of each rich output's value per MIME type (an image as base64 counts its characters)."""
MAX_SOURCE_CHARS = 256 * 1024
MAX_LOG_CHARS = 16 * 1024 * 1024
"""Of all recorded outputs of a run; later cells keep their source and status only."""
TRUNCATED = "\n[… truncated by dataerai: {} more characters]"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATED.format(len(text) - limit)


class _Tee:
    """A stream that writes through to ``target`` and keeps a bounded copy."""

    def __init__(self, target: TextIO, limit: int) -> None:
        self._target = target
        self._limit = limit
        self._parts: List[str] = []
        self._kept = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            room = self._limit - self._kept
            if room > 0:
                self._parts.append(text[:room])
                self._kept += min(room, len(text))
            self._dropped += max(0, len(text) - max(room, 0))
        return self._target.write(text)

    def text(self) -> str:
        kept = "".join(self._parts)
        return kept + TRUNCATED.format(self._dropped) if self._dropped else kept

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno, …
        return getattr(self._target, name)


@dataclass
class _Cell:
    source: str
    started_at: str
    execution_count: Optional[int] = None
    finished_at: Optional[str] = None
    status: str = "running"
    error: Optional[str] = None
    error_message: Optional[str] = None
    stdout: str = ""
    stderr: str = ""
    outputs: List[Dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> Dict[str, Any]:
        return {
            "execution_count": self.execution_count,
            "source": self.source,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "error": self.error,
            "error_message": self.error_message,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "outputs": self.outputs,
        }


class _CellRecorder:
    """Records cells through IPython's ``pre_run_cell``/``post_run_cell`` events."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.cells: List[_Cell] = []
        self._current: Optional[_Cell] = None
        self._streams: Optional[tuple[Any, Any, _Tee, _Tee]] = None
        self._publish_patched = False
        self._budget = MAX_LOG_CHARS

    # -- IPython events
    def start(self) -> None:
        self.shell.events.register("pre_run_cell", self._pre)
        self.shell.events.register("post_run_cell", self._post)
        pub = getattr(self.shell, "display_pub", None)
        if pub is not None and "publish" not in vars(pub):
            original = pub.publish

            def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
                self._record_output("display_data", data)
                return original(data, *args, **kwargs)

            pub.publish = publish
            self._publish_patched = True

    def stop(self) -> None:
        """Stop recording; the cell running now (the one that stops it) is not kept."""
        for name, callback in (("pre_run_cell", self._pre), ("post_run_cell", self._post)):
            try:
                self.shell.events.unregister(name, callback)
            except ValueError:
                pass
        if self._publish_patched:
            del self.shell.display_pub.publish
            self._publish_patched = False
        self._restore_streams()
        self._current = None

    def _pre(self, info: Any) -> None:
        source = getattr(info, "raw_cell", "") or ""
        self._current = _Cell(source=_bounded(source, MAX_SOURCE_CHARS), started_at=_now())
        out, err = sys.stdout, sys.stderr
        limit = MAX_STREAM_CHARS if self._budget > 0 else 0
        tee_out, tee_err = _Tee(out, limit), _Tee(err, limit)
        self._streams = (out, err, tee_out, tee_err)
        sys.stdout, sys.stderr = tee_out, tee_err

    def _post(self, result: Any) -> None:
        cell = self._current
        if cell is None:  # the cell that started the trace: it began before the recorder
            return
        self._current = None
        tees = self._restore_streams()
        if tees is not None:
            cell.stdout, cell.stderr = tees[0].text(), tees[1].text()
            self._budget -= len(cell.stdout) + len(cell.stderr)
        cell.finished_at = _now()
        cell.execution_count = getattr(result, "execution_count", None)
        error = getattr(result, "error_before_exec", None) or getattr(result, "error_in_exec", None)
        if error is not None:
            cell.status = "error"
            cell.error = type(error).__name__
            cell.error_message = _bounded(str(error), 4096)
        else:
            cell.status = "ok"
        value = getattr(result, "result", None)
        if value is not None and not getattr(self.shell.displayhook, "quiet", lambda: False)():
            try:
                data, _ = self.shell.display_formatter.format(value)
            except Exception:  # noqa: BLE001 — a broken _repr_ must not break the kernel
                data = {"text/plain": f"<unprintable {type(value).__name__}>"}
            self._record_output("execute_result", data, cell)
        self.cells.append(cell)

    # -- helpers
    def _record_output(self, kind: str, data: Any, cell: Optional[_Cell] = None) -> None:
        cell = cell or self._current
        if cell is None or not isinstance(data, Mapping):
            return
        kept: Dict[str, str] = {}
        for mime, value in data.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            limit = MAX_OUTPUT_CHARS if self._budget > 0 else 0
            kept[str(mime)] = _bounded(text, limit)
            self._budget -= len(kept[str(mime)])
        cell.outputs.append({"output_type": kind, "data": kept})

    def _restore_streams(self) -> Optional[tuple[_Tee, _Tee]]:
        if self._streams is None:
            return None
        out, err, tee_out, tee_err = self._streams
        self._streams = None
        # Only put back what we replaced: code in the cell may have redirected the streams itself.
        if sys.stdout is tee_out:
            sys.stdout = out
        if sys.stderr is tee_err:
            sys.stderr = err
        return tee_out, tee_err


@dataclass(frozen=True)
class PublishedTrace:
    """What :meth:`NotebookSession.finish` published."""

    run_id: str
    asset_id: str
    cell_count: int
    product_count: int
    input_count: int


class NotebookSession:
    """A traced notebook run: its collection, the products it uploads and the inputs it reads.

    Attributes:
        trace_run_id: The run's id while tracing; ``None`` once finished.
        collection_path: The normalised path of the session's collection (``"Project/runs"``).
        collection_id: Where :meth:`upload` files products.
        project_id: The project of that collection.
        client: The :class:`~dataerai.DataeraiClient` the session calls.
    """

    def __init__(
        self,
        client: Any,
        *,
        collection_path: str,
        collection_id: str,
        project_id: str,
        notebook: Optional[str] = None,
        title: Optional[str] = None,
        shell: Any = None,
    ) -> None:
        self.client = client
        self.collection_path = collection_path
        self.collection_id = collection_id
        self.project_id = project_id
        self.notebook = notebook
        self.title = title
        self.trace_run_id: Optional[str] = uuid.uuid4().hex
        self.started_at = _now()
        self._products: Dict[str, str] = {}  # title → asset id, in upload order
        self._inputs: Dict[str, Optional[str]] = {}  # asset id → content id
        self._recorder = _CellRecorder(shell) if shell is not None else None
        if self._recorder is not None:
            self._recorder.start()
        os.environ[TRACE_ENV] = self.trace_run_id

    @classmethod
    def start(
        cls,
        client: Any,
        collection_path: str,
        *,
        notebook: Optional[str] = None,
        title: Optional[str] = None,
        shell: Any = None,
    ) -> NotebookSession:
        """Resolve (or create, with its project) ``collection_path`` and start a trace.

        ``shell`` is the IPython shell whose cells are recorded (the magic passes its own);
        without one, only uploads and downloads are traced.
        """
        where = client.ensure_collection_path(collection_path, create_project=True)
        return cls(
            client,
            collection_path=where.path,
            collection_id=where.collection_id,
            project_id=where.project_id,
            notebook=notebook,
            title=title,
            shell=shell,
        )

    # -- what a notebook calls
    def upload(
        self,
        path: PathLike,
        *,
        title: str,
        record_type: Optional[str] = None,
        tags: Optional[Sequence[str]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        description: Optional[str] = None,
    ) -> Any:
        """Upload a product of this run into the session's collection.

        A second upload with the same ``title`` in one run becomes a new content version of the
        same asset. The asset's metadata records the run id (``notebook_trace_run_id``).
        """
        run_id = self._require_running()
        stamped = {**dict(metadata or {}), "notebook_trace_run_id": run_id}
        if title in self._products:
            asset_id = self._products[title]
            result = self.client.upload_version(asset_id, path)
            fields: Dict[str, Any] = {"metadata": stamped}
            if record_type is not None:
                fields["record_type"] = record_type
            if tags is not None:
                fields["tags"] = list(tags)
            if description is not None:
                fields["description"] = description
            self.client.set_metadata(asset_id, **fields)
            return result
        result = self.client.upload(
            path,
            title=title,
            owner_type="project",
            owner_id=self.project_id,
            collection_id=self.collection_id,
            record_type=record_type,
            tags=list(tags) if tags is not None else None,
            metadata=stamped,
            description=description,
        )
        self._products[title] = result.asset_id
        return result

    def download(self, asset_id: str, dest_dir: PathLike, **options: Any) -> Any:
        """Download an input of this run (the arguments of ``client.download``)."""
        self._require_running()
        result = self.client.download(asset_id, dest_dir, **options)
        self._inputs[result.asset_id] = result.content_id
        return result

    def create_relationship(
        self,
        from_id: str,
        to_id: str,
        relationship_type: str,
        *,
        qualifiers: Optional[Mapping[str, Any]] = None,
        analysis_mode: Optional[str] = None,
        qualifier_note: Optional[str] = None,
    ) -> Any:
        """Record that ``from_id`` depends on ``to_id``; an existing edge raises a
        ``DaemonError`` whose code is ``ERR_RELATIONSHIP_EXISTS``."""
        return self.client.create_relationship(
            from_id,
            to_id,
            relationship_type=relationship_type,
            qualifiers=dict(qualifiers) if qualifiers is not None else None,
            analysis_mode=analysis_mode,
            qualifier_note=qualifier_note,
        )

    def find_assets(self, **filters: Any) -> Any:
        """``client.find_assets``; ``collection_id`` defaults to the session's collection."""
        filters.setdefault("collection_id", self.collection_id)
        return self.client.find_assets(**filters)

    def get_metadata(self, asset_id: str) -> Any:
        return self.client.get_metadata(asset_id)

    @property
    def cells(self) -> List[Dict[str, Any]]:
        """The cells recorded so far."""
        return [c.as_json() for c in self._recorder.cells] if self._recorder else []

    # -- the end of a run
    def finish(self) -> PublishedTrace:
        """Stop recording and publish the run: one execution-log asset, linked to every product
        (``records_telemetry``) and every input (``uses_data``)."""
        run_id = self._require_running()
        if self._recorder is not None:
            self._recorder.stop()
        cells = self.cells
        log = {
            "format": LOG_FORMAT,
            "run_id": run_id,
            "notebook": self.notebook,
            "title": self.title,
            "collection_path": self.collection_path,
            "project_id": self.project_id,
            "collection_id": self.collection_id,
            "started_at": self.started_at,
            "finished_at": _now(),
            "python": sys.version.split()[0],
            "cells": cells,
            "products": [{"title": t, "asset_id": a} for t, a in self._products.items()],
            "inputs": [{"asset_id": a, "content_id": c} for a, c in self._inputs.items()],
        }
        with tempfile.TemporaryDirectory(prefix="dataerai-trace-") as tmp:
            folder = Path(tmp) / f"run-{run_id}"
            folder.mkdir()
            (folder / LOG_FILE).write_text(json.dumps(log, indent=1, ensure_ascii=False), "utf-8")
            notebook_file = self._notebook_file()
            if notebook_file is not None:
                shutil.copyfile(notebook_file, folder / notebook_file.name)
            source: Union[Path, str] = folder if notebook_file is not None else folder / LOG_FILE
            name = self.title or (Path(self.notebook).stem if self.notebook else "notebook")
            uploaded = self.client.upload(
                source,
                title=f"{name} — execution trace {run_id[:8]}",
                owner_type="project",
                owner_id=self.project_id,
                collection_id=self.collection_id,
                record_type="log",
                tags=["notebook-trace"],
                metadata={
                    "notebook_trace_run_id": run_id,
                    "notebook": self.notebook,
                    "cells": len(cells),
                    "products": len(self._products),
                    "inputs": len(self._inputs),
                },
                description=f"Execution trace of notebook run {run_id}",
            )
        log_id = uploaded.asset_id
        for product in self._products.values():
            self._link(product, log_id, "records_telemetry")
        for source_id in self._inputs:
            self._link(log_id, source_id, "uses_data")
        self.trace_run_id = None
        if os.environ.get(TRACE_ENV) == run_id:
            del os.environ[TRACE_ENV]
        return PublishedTrace(run_id, log_id, len(cells), len(self._products), len(self._inputs))

    def _link(self, from_id: str, to_id: str, kind: str) -> None:
        try:
            self.client.create_relationship(from_id, to_id, relationship_type=kind)
        except DaemonError as err:
            if err.code != "ERR_RELATIONSHIP_EXISTS":
                raise

    def _notebook_file(self) -> Optional[Path]:
        if not self.notebook:
            return None
        path = Path(self.notebook).expanduser()
        if path.is_file():
            return path
        # Jupyter Server may name the notebook relative to its root directory, while the kernel
        # runs in the notebook's own folder.
        here = Path(path.name)
        return here.resolve() if not path.is_absolute() and here.is_file() else None

    def _require_running(self) -> str:
        if self.trace_run_id is None:
            raise InvalidInputError("this notebook trace is finished; start a new one with %dataerai --trace")
        return self.trace_run_id

    def __repr__(self) -> str:
        state = f"run {self.trace_run_id}" if self.trace_run_id else "finished"
        return f"NotebookSession({self.collection_path!r}, {state}, {len(self._products)} products)"
