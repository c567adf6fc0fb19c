"""The whole pipeline in the smoke profile: every notebook through papermill, then the PDF.

It writes into a temporary workspace, so committed figures, results and the report stay untouched.
"""

import json
import subprocess
import sys

import pytest

from lib.pipeline import notebook_names
from lib.workspace import PROJECT_ROOT
from tests.pdf import pdf_text

SECTION_TITLES = ["Problem formulation", "Model formulation", "Implementation and training",
                  "Experiments and evaluation", "Conclusion", "Discussion"]


@pytest.mark.slow
def test_smoke_pipeline_renders_the_report(tmp_path):
    committed = {path: path.read_bytes() for folder in ("results", "figures", "report")
                 for path in (PROJECT_ROOT / folder).glob("*.*")}
    result = subprocess.run(
        [sys.executable, "-m", "lib", "run", "--profile", "smoke", "--device", "cpu", "--workspace", str(tmp_path),
         "--engine", "builtin"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["profile"] == "smoke" and summary["device"] == "cpu"
    assert set(summary["seconds_per_notebook"]) == set(notebook_names())
    assert summary["seconds_total"] >= sum(summary["seconds_per_notebook"].values())
    # the plain baseline and the unseen-kind check run in every profile (keys of the README's summary)
    assert {"unlabeled", "rep2_clean"} <= set(summary["baseline"]["accuracy"])
    assert 0 <= summary["baseline"]["ood"]["auroc"]["rep2"] <= 1
    assert 0 <= summary["ood"]["unseen_kinds"]["min_auroc"] <= 1
    results = tmp_path / "results"
    assert (results / "runs" / "smoke.json").read_text() == (results / "summary.json").read_text()

    pdf = tmp_path / "report" / "report.pdf"
    text = pdf_text(pdf)
    for title in SECTION_TITLES:
        assert title in text
    assert "Ten labeled images per class" in text  # a figure caption embedded from notebook 01
    assert "??" not in text and "{{<" not in text
    assert (tmp_path / "figures" / "01_class_grid.png").exists()
    # the smoke run leaves the project's own artifacts as they were
    assert {path: path.read_bytes() for path in committed} == committed
