"""The tutorial notebooks in docs/tutorials/ run from top to bottom in a real Jupyter kernel."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"


@pytest.mark.parametrize(("name", "steps"), [("pendulum", 1200), ("lane_following", 300)])
def test_tutorial_notebook_runs(tmp_path, monkeypatch, name, steps):
    monkeypatch.setenv("DDPG_TUTORIAL_STEPS", str(steps))
    monkeypatch.setenv("DDPG_TUTORIAL_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(TUTORIALS / f"{name}.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]  # no warnings
    shown = {kind for o in outputs for kind in o.get("data", {})}
    assert {"image/png", "text/html"} <= shown  # the figures and the video
