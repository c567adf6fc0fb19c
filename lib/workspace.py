"""Where a run reads and writes: data, checkpoints, figures, results and the report.

A workspace is a folder with the project's output layout. The default is the
project itself, so a real run updates the committed figures, results and
report; tests point a workspace at a temporary folder so they never overwrite
committed artifacts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Folder for the built replica and its answer key (`LIB_DATA_DIR` overrides)."""
    return Path(os.environ.get("LIB_DATA_DIR", PROJECT_ROOT / "data"))


class Workspace:
    """Output folders of one run: figures/, results/, report/, checkpoints/."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root else PROJECT_ROOT
        self.figures = self.root / "figures"
        self.results = self.root / "results"
        self.report = self.root / "report"
        for folder in (self.figures, self.results, self.report):
            folder.mkdir(parents=True, exist_ok=True)

    def checkpoints(self, profile: str) -> Path:
        """The folder of a profile's training runs (one subfolder per run, lib.train.cache)."""
        folder = self.root / "checkpoints" / profile
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def relative(self, path: Path | str) -> str:
        """`path` relative to the workspace (as results JSON records checkpoint folders)."""
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    def path(self, relative: str) -> Path:
        return self.root / relative

    def write_results(self, notebook: str, results: dict) -> Path:
        """Write one notebook's numbers to results/<notebook>.json."""
        path = self.results / f"{notebook}.json"
        _write_json(path, results)
        return path

    def read_results(self, notebook: str) -> dict:
        path = self.results / f"{notebook}.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: run notebook {notebook} first")
        return json.loads(path.read_text())

    def all_results(self) -> dict[str, dict]:
        """Every notebook's results/<notebook>.json by notebook name (the summary is not one of them)."""
        return {path.stem: json.loads(path.read_text()) for path in sorted(self.results.glob("[0-9][0-9]_*.json"))}

    def update_summary(self, values: dict) -> Path:
        """Merge dotted keys (e.g. 'ood.auroc.rep2') into results/summary.json."""
        path = self.results / "summary.json"
        summary = json.loads(path.read_text()) if path.exists() else {}
        for dotted, value in values.items():
            _set_dotted(summary, dotted, value)
        _write_json(path, summary)
        return path

    def update_report_variables(self, section: str, values: dict, sections: set[str] | None = None) -> Path:
        """Set report/_variables.yml[section] = values, for `{{< var section.key >}}`; with `sections`, drop
        every other section not among them (one an older version of the code wrote)."""
        path = self.report / "_variables.yml"
        variables = yaml.safe_load(path.read_text()) if path.exists() else {}
        variables = {k: v for k, v in (variables or {}).items() if sections is None or k in sections}
        variables[section] = values
        path.write_text(yaml.safe_dump(variables, sort_keys=True, allow_unicode=True))
        return path


def _set_dotted(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
