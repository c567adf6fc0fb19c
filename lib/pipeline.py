"""The batch pipeline: data, then every notebook headless (jupytext -> papermill), then the report."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import jupytext
import papermill

from lib import runinfo
from lib.errors import UserError
from lib.workspace import PROJECT_ROOT, Workspace

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
REPORT_SOURCES = ("_quarto.yml", "*.qmd", "*.bib")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook_names() -> list[str]:
    return sorted(path.stem for path in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def prepare_report_folder(ws: Workspace) -> None:
    """A workspace outside the project gets a copy of the report sources (never the generated variables)."""
    source = PROJECT_ROOT / "report"
    if ws.report.resolve() == source.resolve():
        return
    for pattern in REPORT_SOURCES:
        for path in source.glob(pattern):
            shutil.copy2(path, ws.report / path.name)


def execute_notebook(name: str, ws: Workspace, parameters: dict) -> Path:
    """Convert notebooks/<name>.py to a notebook in report/notebooks/ and execute it there in place."""
    executed_dir = ws.report / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    path = executed_dir / f"{name}.ipynb"
    notebook = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    notebook.metadata["kernelspec"] = KERNELSPEC
    jupytext.write(notebook, path, fmt="ipynb")
    try:
        papermill.execute_notebook(str(path), str(path), parameters=parameters, kernel_name="python3",
                                   cwd=str(NOTEBOOK_DIR), progress_bar=True)
    except papermill.PapermillExecutionError as error:
        raise UserError(f"notebook {name} failed in cell {error.exec_count}: {error.ename}: {error.evalue}"
                        f" (executed notebook: {path})") from None
    return path


def run(ws: Workspace, profile: str, seed: int, device: str, data_path: str | None,
        only: list[str] | None = None, log=print) -> dict[str, float]:
    """Execute the notebooks in order; record each one's wall time in results/summary.json."""
    names = notebook_names()
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise UserError(f"unknown notebook(s) {', '.join(unknown)}: choose from {', '.join(names)}")
        names = [name for name in names if name in only]
    prepare_report_folder(ws)
    parameters = {"profile": profile, "seed": seed, "device": device,
                  "workspace": str(ws.root), "data_path": data_path}
    seconds = {}
    for number, name in enumerate(names, 1):
        log(f"[{number}/{len(names)}] {name} (profile {profile}, device {device})")
        start = time.perf_counter()
        execute_notebook(name, ws, parameters)
        seconds[name] = round(time.perf_counter() - start, 1)
        ws.update_summary({f"seconds_per_notebook.{name}": seconds[name], "profile": profile,
                           "device": device, "seed": seed})
        log(f"[{number}/{len(names)}] {name} done in {seconds[name]:.0f} s")
    return seconds


def renderer_name(engine: str) -> str:
    use_quarto = engine == "quarto" or (engine == "auto" and shutil.which("quarto"))
    return "Quarto" if use_quarto else "pandoc + Typst (builtin)"


def run_all(ws: Workspace, profile: str, seed: int, device: str, data_path: str | None,
            only: list[str] | None = None, render: bool = True, engine: str = "auto", log=print) -> Path | None:
    """Notebooks, then the run's report variables, then the report; returns the PDF path (None without render)."""
    start = time.perf_counter()
    seconds = run(ws, profile, seed, device, data_path, only=only, log=log)
    if only:
        return None  # a partial run leaves the report and the totals of the last full run alone
    ws.update_report_variables("run", runinfo.report_variables(profile, seed, device, seconds, renderer_name(engine)))
    pdf = None
    if render:
        from lib.render import render_report

        log(f"rendering the report with {renderer_name(engine)}")
        pdf = render_report(ws.report, engine=engine)
        log(f"report: {pdf}")
    ws.update_summary({"seconds_total": round(time.perf_counter() - start, 1)})
    return pdf
