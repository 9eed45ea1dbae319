"""Notebooks record their own provenance: a real Jupyter kernel (nbclient) runs notebooks that
use ``%load_ext dataerai.magics`` and ``%dataerai --trace … / --finish`` against the real daemon
and server; the published execution log, its links and its bounds are then read back."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import CLI_BIN, short_tmpdir, write_random

from dataerai import DataeraiClient, Project

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def code(source: str, *, raises: bool = False) -> Any:
    cell = nbformat.v4.new_code_cell(source.strip())
    if raises:
        cell.metadata["tags"] = ["raises-exception"]
    return cell


def text_of(cell: Any) -> str:
    parts: List[str] = []
    for o in cell["outputs"]:
        if o["output_type"] == "stream":
            parts.append(o["text"])
        elif o["output_type"] == "error":
            parts.append(f"{o['ename']}: {o['evalue']}")
        elif "data" in o:
            parts.append(o["data"].get("text/plain", ""))
    return "".join(parts)


def run(nb: Any, path: Path) -> None:
    nbformat.write(nb, str(path))
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()


@pytest.fixture()
def kernel_env(client: DataeraiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel talks to the test's daemon; its files stay out of $HOME."""
    jupyter_dir = short_tmpdir("jupyter-")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(jupyter_dir / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(jupyter_dir / "ipython"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("DATAERAI_SOCKET", str(client.socket_path))


def test_a_traced_notebook_publishes_one_linked_execution_log(
    client: DataeraiClient, project: Project, base_dir: Path, kernel_env: None
):
    work = base_dir / f"traced-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    raw_file = write_random(work / "raw-scan.bin", 5000)
    raw = client.upload(raw_file, title="raw scan", owner_type="project", owner_id=project.project_id)
    project_name = f"Traced lab {uuid.uuid4().hex[:8]}"
    nb_path = work / "analysis.ipynb"
    nb = nbformat.v4.new_notebook(
        cells=[
            code("%load_ext dataerai.magics"),
            code(
                f'%dataerai --trace --notebook {nb_path} --title "tiny analysis" '
                f"{project_name} / runs / tutorials"
            ),
            code(
                f'raw = dataerai_session.download("{raw.asset_id}", "inputs")\n'
                'print("read", raw.files[0].size)'
            ),
            code(
                'size = len(open(raw.files[0].local_path, "rb").read())\n'
                'open("figure.txt", "w").write(f"size={size}")\n'
                'fig = dataerai_session.upload("figure.txt", title="Figure 1", record_type="figure")\n'
                "fig.asset_id"
            ),
            code(
                'open("figure.txt", "w").write("second draft")\n'
                'again = dataerai_session.upload("figure.txt", title="Figure 1")\n'
                "print(again.asset_id == fig.asset_id)"
            ),
            code('import os\nprint("RUN", os.environ["DATAERAI_NOTEBOOK_TRACE_RUN_ID"])'),
            code("1 / 0", raises=True),
            code('print("x" * 200_000)'),
            code("%dataerai --finish"),
            code(
                "import os\n"
                'print("AFTER", os.environ.get("DATAERAI_NOTEBOOK_TRACE_RUN_ID"),'
                " dataerai_session.trace_run_id)"
            ),
        ]
    )
    run(nb, nb_path)
    cells = nb.cells

    started = text_of(cells[1])
    assert f"Tracing this notebook into {project_name}/runs/tutorials" in started, started
    run_id = re.search(r"run ([0-9a-f]{32})", started).group(1)  # type: ignore[union-attr]
    assert f"RUN {run_id}" in text_of(cells[5])
    assert "True" in text_of(cells[4]), "same title in one run: a new version of the same asset"
    finished = text_of(cells[8])
    # Traced: the download, two uploads, the env print, the error and the long print.
    assert f"Published notebook execution trace {run_id} (6 cells, 1 products)." in finished, finished
    assert "AFTER None None" in text_of(cells[9])

    # One execution-log asset in the session's collection, holding the log and the notebook.
    where = client.ensure_collection_path(f"{project_name}/runs/tutorials")
    logs = client.search(f"type:log collection:{where.collection_id}").items
    assert len(logs) == 1
    log_asset = logs[0]
    assert log_asset.metadata["notebook_trace_run_id"] == run_id
    got = client.download(log_asset.asset_id, work / "published")
    names = sorted(f.filename for f in got.files)
    assert names == ["analysis.ipynb", "execution-log.json"]
    log: Dict[str, Any] = json.loads(
        next(Path(f.local_path) for f in got.files if f.filename == "execution-log.json").read_text()
    )
    assert log["run_id"] == run_id and log["title"] == "tiny analysis"
    recorded = log["cells"]
    assert [c["status"] for c in recorded] == ["ok", "ok", "ok", "ok", "error", "ok"]
    assert recorded[0]["stdout"] == "read 5000\n"
    assert recorded[0]["source"].startswith("raw = dataerai_session.download(")
    assert recorded[1]["outputs"][0]["output_type"] == "execute_result"
    fig_id = recorded[1]["outputs"][0]["data"]["text/plain"].strip("'")
    assert recorded[4]["error"] == "ZeroDivisionError"
    assert all(c["execution_count"] and c["started_at"] <= c["finished_at"] for c in recorded)
    long_out = recorded[5]["stdout"]
    assert len(long_out) < 70_000 and "truncated by dataerai" in long_out
    assert log["products"] == [{"title": "Figure 1", "asset_id": fig_id}]
    assert [i["asset_id"] for i in log["inputs"]] == [raw.asset_id]

    # The figure's lineage reaches the raw data through the run.
    up = client.lineage(fig_id, direction="up")
    edges = {(e.from_asset_id, e.type, e.to_asset_id) for e in up.edges}
    assert (fig_id, "records_telemetry", log_asset.asset_id) in edges
    assert (log_asset.asset_id, "uses_data", raw.asset_id) in edges
    assert up.node(raw.asset_id) is not None
    assert len(client.list_versions(fig_id)) == 2


def published_log(client: DataeraiClient, project_name: str, dest: Path) -> tuple[List[str], Dict[str, Any]]:
    """The file names of the one execution-log asset in ``project_name`` and its parsed log."""
    where = client.ensure_collection_path(project_name)
    [log_asset] = client.search(f"type:log project:{where.project_id}").items
    got = client.download(log_asset.asset_id, dest)
    log_file = next(Path(f.local_path) for f in got.files if f.filename == "execution-log.json")
    log = json.loads(log_file.read_text())
    assert log["project_id"] == where.project_id
    return sorted(f.filename for f in got.files), log


def test_the_session_api_inside_a_kernel(
    client: DataeraiClient,
    project: Project,
    base_dir: Path,
    kernel_env: None,
    monkeypatch: pytest.MonkeyPatch,
):
    """``--request-timeout``, the ``NotebookSession`` attributes and methods (upload with tags,
    metadata and description; get_metadata; find_assets; create_relationship and its
    ERR_RELATIONSHIP_EXISTS), stderr and rich outputs (a large one cut with the marker), and the
    notebook file found from what Jupyter Server tells the kernel."""
    root = base_dir / f"server-root-{uuid.uuid4().hex[:6]}"
    work = root / "lab"
    work.mkdir(parents=True)
    # Jupyter Server names the notebook relative to its root directory; the kernel runs in the
    # notebook's folder.
    monkeypatch.setenv("JPY_SESSION_NAME", "lab/session.ipynb")
    raw_file = write_random(work / "raw.bin", 100)
    raw = client.upload(raw_file, title="session raw", owner_type="project", owner_id=project.project_id)
    project_name = f"Session lab {uuid.uuid4().hex[:8]}"
    nb = nbformat.v4.new_notebook(
        cells=[
            code("%load_ext dataerai.magics"),
            code(f"%dataerai --request-timeout 7.5 --trace {project_name} / session api"),
            code(
                """
from dataerai import DataeraiClient
from dataerai.notebook import NotebookSession
s = dataerai_session
print(type(s) is NotebookSession, isinstance(s.client, DataeraiClient), s.client.request_timeout_s)
print("WHERE", s.collection_path, s.collection_id, s.project_id)
"""
            ),
            code(
                """
open("result.csv", "w").write("a,b\\n1,2\\n")
res = s.upload("result.csv", title="Result table", record_type="analysis", tags=["fit"],
               metadata={"model": "linear"}, description="fitted")
m = s.get_metadata(res.asset_id)
print("META", m.record_type, m.tags, m.metadata["model"], m.description,
      m.metadata["notebook_trace_run_id"] == s.trace_run_id, m.collection_ids == [s.collection_id])
found = s.find_assets(title="Result table")
print("FOUND", [a.asset_id == res.asset_id and a.has_content for a in found])
"""
            ),
            code(
                f"""
from dataerai import DaemonError
rel = s.create_relationship(res.asset_id, "{raw.asset_id}", "derived_from", qualifiers={{"step": 1}},
                            analysis_mode="non_destructive", qualifier_note="least squares")
print("REL", rel.type, rel.analysis_mode, rel.qualifier_note, rel.qualifiers["step"])
try:
    s.create_relationship(res.asset_id, "{raw.asset_id}", "derived_from")
except DaemonError as err:
    print("AGAIN", err.code)
"""
            ),
            code(
                """
import sys
from IPython.display import HTML, display
print("to stderr", file=sys.stderr)
display(HTML("<b>bold</b>"))
display(HTML("<i>" + "y" * 100_000 + "</i>"))
"""
            ),
            code("%dataerai --finish"),
        ]
    )
    run(nb, work / "session.ipynb")
    cells = nb.cells
    where = client.ensure_collection_path(f"{project_name}/session api")
    assert "True True 7.5" in text_of(cells[2]), text_of(cells[2])
    assert f"WHERE {project_name}/session api {where.collection_id} {where.project_id}" in text_of(cells[2])
    assert "META analysis ['fit'] linear fitted True True" in text_of(cells[3]), text_of(cells[3])
    assert "FOUND [True]" in text_of(cells[3])
    assert "REL derived_from non_destructive least squares 1" in text_of(cells[4]), text_of(cells[4])
    assert "AGAIN ERR_RELATIONSHIP_EXISTS" in text_of(cells[4])
    assert "(4 cells, 1 products)." in text_of(cells[6]), text_of(cells[6])

    names, log = published_log(client, project_name, root / "published")
    assert names == ["execution-log.json", "session.ipynb"]
    assert log["notebook"] == "lab/session.ipynb"
    shown = log["cells"][3]
    assert shown["stderr"] == "to stderr\n"
    small, large = shown["outputs"]
    assert (small["output_type"], small["data"]["text/html"]) == ("display_data", "<b>bold</b>")
    assert len(large["data"]["text/html"]) < 70_000
    assert large["data"]["text/html"].endswith(
        f"[… truncated by dataerai: {len('<i></i>') + 100_000 - 64 * 1024} more characters]"
    )


def test_without_a_known_notebook_only_the_log_is_published(
    client: DataeraiClient, base_dir: Path, kernel_env: None, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    work = base_dir / f"anonymous-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    project_name = f"Anonymous lab {uuid.uuid4().hex[:8]}"
    nb = nbformat.v4.new_notebook(
        cells=[
            code("%load_ext dataerai.magics"),
            code(f"%dataerai --trace {project_name}"),
            code('print("only this")'),
            code("%dataerai --finish"),
        ]
    )
    run(nb, work / "anonymous.ipynb")
    assert "(1 cells, 0 products)." in text_of(nb.cells[3]), text_of(nb.cells[3])
    names, log = published_log(client, project_name, work / "published")
    assert names == ["execution-log.json"]
    assert log["notebook"] is None and log["cells"][0]["stdout"] == "only this\n"


def test_magic_errors_stay_in_the_cell(
    client: DataeraiClient, base_dir: Path, kernel_env: None, monkeypatch: pytest.MonkeyPatch
):
    work = base_dir / f"untraced-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    # A kernel whose daemon has no sign-in: a fresh config dir and socket.
    lonely = short_tmpdir("nosignin-")
    monkeypatch.setenv("DATAERAI_CONFIG_DIR", str(lonely / "config"))
    monkeypatch.setenv("DATAERAI_STATE_DIR", str(lonely / "state"))
    monkeypatch.setenv("DATAERAI_SOCKET", str(lonely / "d.sock"))
    nb = nbformat.v4.new_notebook(
        cells=[
            code("%load_ext dataerai.magics"),
            code("%dataerai --finish", raises=True),
            code("%dataerai --trace --bogus-flag Lab", raises=True),
            code("%env DATAERAI_BINARY=/nonexistent/dataerai\n%dataerai --trace Lab / runs", raises=True),
            code(f"%env DATAERAI_BINARY={CLI_BIN}\n%dataerai --trace Lab / runs", raises=True),
            code('print("kernel alive")\n%dataerai --status'),
        ]
    )
    run(nb, work / "errors.ipynb")
    assert "no notebook trace is running" in text_of(nb.cells[1])
    assert "unrecognized arguments: --bogus-flag" in text_of(nb.cells[2])
    no_daemon = text_of(nb.cells[3])
    assert "ERR_DAEMON_UNAVAILABLE" in no_daemon, no_daemon
    not_signed_in = text_of(nb.cells[4])
    assert "ERR_AUTH_REQUIRED" in not_signed_in, not_signed_in
    for cell in nb.cells[1:5]:
        # IPython shows a UsageError as one line, never a stack trace.
        assert "UsageError: " in text_of(cell) and "Traceback" not in json.dumps(cell["outputs"])
    alive = text_of(nb.cells[5])
    assert "kernel alive" in alive and "No notebook trace is running." in alive


def test_the_example_notebook_runs_end_to_end(client: DataeraiClient, base_dir: Path, kernel_env: None):
    example = Path(__file__).resolve().parents[3] / "examples" / "traced_analysis.ipynb"
    work = base_dir / f"example-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    (work / "traced_analysis.ipynb").write_bytes(example.read_bytes())
    nb = nbformat.read(str(work / "traced_analysis.ipynb"), as_version=4)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    ).execute()
    finished = "".join(text_of(c) for c in nb.cells if c.cell_type == "code" and "--finish" in c.source)
    assert re.search(r"Published notebook execution trace [0-9a-f]{32} \(\d+ cells, 1 products\)\.", finished)
    last = text_of(nb.cells[-1])
    assert "Voltage summary --records_telemetry-> Example analysis" in last, last
    assert "--uses_data-> Raw voltages" in last, last
