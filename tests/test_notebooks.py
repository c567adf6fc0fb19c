"""The notebooks narrate: papermill parameters, calls into lib, figures and short text; they lint clean."""

import json
import shutil
import subprocess

import jupytext
import pytest

from lib import pipeline
from lib.errors import UserError
from lib.pipeline import NOTEBOOK_DIR, notebook_names
from lib.workspace import PROJECT_ROOT, Workspace

PARAMETERS = ("profile", "seed", "device", "workspace", "data_path")
CODE_LINE_BUDGET = 600  # all notebooks together: the logic lives in lib, with tests


def code_lines(notebook) -> int:
    """Non-blank, non-comment lines of the code cells."""
    return sum(1 for cell in notebook.cells if cell.cell_type == "code" for line in cell.source.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def test_every_notebook_takes_the_pipeline_parameters():
    for name in notebook_names():
        notebook = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
        tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        assert all(f"{parameter} = " in tagged[0].source for parameter in PARAMETERS), name


def test_notebooks_stay_within_the_code_line_budget():
    lines = {name: code_lines(jupytext.read(NOTEBOOK_DIR / f"{name}.py")) for name in notebook_names()}
    assert sum(lines.values()) <= CODE_LINE_BUDGET, lines


def test_lib_tests_and_notebooks_lint_clean():
    ruff = shutil.which("ruff", path=str(PROJECT_ROOT / ".venv" / "bin")) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it is a dev dependency: pip install -e '.[dev]')")
    result = subprocess.run([ruff, "check", "--output-format", "concise", "lib", "tests", "notebooks"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_code_line_count_ignores_comments_and_markdown():
    notebook = jupytext.reads("# %% [markdown]\n# text\n\n# %%\n# a comment\nx = 1\n\ny = 2\n", fmt="py:percent")
    assert code_lines(notebook) == 2


def test_a_report_that_fails_to_render_loses_no_run(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    seconds = {name: 1.0 for name in notebook_names()}
    monkeypatch.setattr(pipeline, "run", lambda *args, **kwargs: seconds)
    with pytest.raises(UserError):  # the workspace has no report project to render
        pipeline.run_all(ws, "smoke", 0, "cpu", None, engine="builtin", log=lambda message: None)
    record = json.loads((ws.results / "runs" / "smoke.json").read_text())
    assert record == json.loads((ws.results / "summary.json").read_text())
    assert record["seconds_total"] >= 0
