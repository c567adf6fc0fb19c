"""The numbers the report quotes (`{{< var section.key >}}`), derived from results/*.json in one place.

Notebooks write numbers (results/<notebook>.json, results/summary.json); the
functions here turn them into the strings the report text shows. Each is
registered for one section of report/_variables.yml and returns None while the
results it needs do not exist yet (a notebook that has not run). The pipeline
calls `write_report_variables` after every notebook, and `python -m lib render`
before rendering.
"""

from __future__ import annotations

import json
from collections.abc import Callable

SECTIONS: dict[str, Callable[[dict], dict | None]] = {}


def section(name: str):
    """Register `function(results) -> dict | None` as the producer of report variables `name.*`."""

    def register(function):
        SECTIONS[name] = function
        return function

    return register


def load_results(results_dir) -> dict[str, dict]:
    """Every results/*.json by file stem (e.g. "03_classification", "summary")."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(results_dir.glob("*.json"))}


def write_report_variables(ws) -> list[str]:
    """Recompute every section whose results exist; return the sections written."""
    results = load_results(ws.results)
    written = []
    for name, function in SECTIONS.items():
        values = function(results)
        if values is not None:
            ws.update_report_variables(name, values)
            written.append(name)
    return written


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage string ("n/a" when missing)."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}"


def interval(ci, digits: int = 3, scale: float = 1.0) -> str:
    """A [low, high] interval as text."""
    return f"[{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]"


# --------------------------------------------------------------------------- sections, one per notebook
