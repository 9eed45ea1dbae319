"""progress=True in a real Jupyter kernel: nbclient runs a small notebook that uploads and
downloads through the real daemon, and tqdm.auto's widgets must show up in its cell outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import short_tmpdir, write_random

from dataerai import DataeraiClient, Project

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("ipywidgets")
pytest.importorskip("tqdm")

MIB = 1 << 20
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def notebook(socket_path: Path, base: Path, project_id: str) -> Any:
    """Upload a file and a folder, then download the file, each with progress=True."""
    cells = [
        f"""
from dataerai import DataeraiClient
client = DataeraiClient(socket_path={str(socket_path)!r}, auto_start=False)
up = client.upload({str(base / "scan.bin")!r}, title="notebook scan", owner_type="project",
                   owner_id={project_id!r}, chunk_size_mb=1, progress=True)
print("UPLOADED", up.total_bytes)
""",
        f"""
folder = client.upload({str(base / "run")!r}, title="notebook run", owner_type="project",
                       owner_id={project_id!r}, progress=True)
print("FOLDER", folder.file_count)
""",
        f"""
down = client.download(up.asset_id, {str(base / "restored")!r}, chunk_size_mb=1, progress=True)
print("DOWNLOADED", down.files[0].size)
client.close()
""",
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in cells])


def outputs(cell: Any, output_type: str) -> List[Dict[str, Any]]:
    return [o for o in cell["outputs"] if o["output_type"] == output_type]


def test_progress_widgets_in_a_jupyter_kernel(
    client: DataeraiClient, project: Project, base_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    base = base_dir / "notebook"
    (base / "run").mkdir(parents=True)
    write_random(base / "scan.bin", 2 * MIB + 5)
    write_random(base / "run" / "a.dat", 1000)
    write_random(base / "run" / "b.dat", 2000)
    # The kernel's connection file and IPython profile go to temporary directories, not $HOME.
    jupyter_dir = short_tmpdir("jupyter-")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(jupyter_dir / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(jupyter_dir / "ipython"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")

    nb = notebook(client.socket_path, base, project.project_id)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(base)}}
    ).execute()
    upload_cell, folder_cell, download_cell = nb.cells

    # Each call printed its result: the transfers really happened inside the kernel.
    assert f"UPLOADED {2 * MIB + 5}" in "".join(o["text"] for o in outputs(upload_cell, "stream"))
    assert "FOLDER 2" in "".join(o["text"] for o in outputs(folder_cell, "stream"))
    assert f"DOWNLOADED {2 * MIB + 5}" in "".join(o["text"] for o in outputs(download_cell, "stream"))

    # tqdm.auto chose its Jupyter widget: one displayed bar per file, whose text form names the
    # file and its direction.
    def bars(cell: Any) -> List[str]:
        return [o["data"]["text/plain"] for o in outputs(cell, "display_data") if WIDGET_VIEW in o["data"]]

    assert len(bars(upload_cell)) == 1 and "↑ scan.bin" in bars(upload_cell)[0], upload_cell["outputs"]
    folder_bars = bars(folder_cell)
    assert len(folder_bars) == 2, folder_cell["outputs"]
    assert any("↑ a.dat" in b for b in folder_bars) and any("↑ b.dat" in b for b in folder_bars), folder_bars
    assert len(bars(download_cell)) == 1 and "↓ scan.bin" in bars(download_cell)[0], download_cell["outputs"]
    # Nothing went to stderr (no fallback warning, no traceback).
    assert not any(o.get("name") == "stderr" for c in nb.cells for o in outputs(c, "stream")), nb.cells

    # The widgets' final state (kept by nbclient in the notebook's metadata): every bar reached
    # its total, and the text beside it shows sizes and a rate.
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    progress = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
    assert len(progress) == 4, json.dumps(state)[:2000]
    assert all(p["value"] == p["max"] > 0 for p in progress), progress
    # (tqdm pads its widget labels with figure spaces.)
    labels = [
        m["state"].get("value", "").replace("\u2007", " ")
        for m in state.values()
        if m["model_name"] == "HTMLModel"
    ]
    for done in ("↑ scan.bin: 100%", "↑ a.dat: 100%", "↑ b.dat: 100%", "↓ scan.bin: 100%"):
        assert done in labels, labels
    assert any("2.00M/2.00M" in label and "MB/s" in label for label in labels), labels
