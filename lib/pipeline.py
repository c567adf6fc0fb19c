"""The batch pipeline: data, then every notebook headless (jupytext -> papermill), then the report."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import jupytext
import papermill

from lib.errors import UserError
from lib.render import runinfo
from lib.render.variables import write_report_variables
from lib.results import summary
from lib.workspace import PROJECT_ROOT, Workspace

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
REPORT_SOURCES = ("_quarto.yml", "*.qmd", "*.bib")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def notebook_names() -> list[str]:
    return sorted(path.stem for path in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def check_notebook_names(only: list[str] | None) -> None:
    """Refuse names that are no notebook of this project (before any work starts)."""
    unknown = sorted(set(only or ()) - set(notebook_names()))
    if unknown:
        raise UserError(f"unknown notebook(s) {', '.join(unknown)}: choose from {', '.join(notebook_names())}")


def prepare_report_folder(ws: Workspace) -> None:
    """A workspace outside the project gets a copy of the report sources (never the generated variables)."""
    source = PROJECT_ROOT / "report"
    if ws.report.resolve() == source.resolve():
        return
    for pattern in REPORT_SOURCES:
        for path in source.glob(pattern):
            shutil.copy2(path, ws.report / path.name)


def clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}:{seconds:02d}"


class ProgressLog:
    """Where papermill writes a running notebook's stdout and stderr (its `stdout_file`/`stderr_file`):
    each finished line goes to the terminal at once, after the notebook's name, its elapsed time and,
    when an earlier run of the profile took `expected` seconds, an estimate of the time left."""

    def __init__(self, name: str, expected: float | None, stream=sys.stdout):
        self.name, self.expected, self.stream = name, expected, stream
        self.start = time.perf_counter()
        self.pending = ""

    def status(self) -> str:
        elapsed = time.perf_counter() - self.start
        if self.expected is None:
            return f"{self.name} {clock(elapsed)}"
        if elapsed <= self.expected:
            return f"{self.name} {clock(elapsed)}, ~{clock(self.expected - elapsed)} left"
        return f"{self.name} {clock(elapsed)}, {clock(elapsed - self.expected)} over the last run"

    def write(self, text: str) -> None:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            line = line.split("\r")[-1].rstrip()  # what a terminal would end up showing
            if line:
                print(f"  [{self.status()}] {line}", file=self.stream, flush=True)

    def flush(self) -> None:
        self.stream.flush()


def expected_seconds(ws: Workspace, profile: str) -> dict[str, float]:
    """Seconds per notebook of the profile's last complete run (results/runs/<profile>.json), if any."""
    path = ws.results / "runs" / f"{profile}.json"
    return json.loads(path.read_text()).get("seconds_per_notebook", {}) if path.exists() else {}


def execute_notebook(name: str, ws: Workspace, parameters: dict, expected: float | None = None) -> Path:
    """Convert notebooks/<name>.py to a notebook in report/notebooks/ and execute it there in place,
    its output lines reaching the terminal as they come (see ProgressLog)."""
    executed_dir = ws.report / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    path = executed_dir / f"{name}.ipynb"
    notebook = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    notebook.metadata["kernelspec"] = KERNELSPEC
    jupytext.write(notebook, path, fmt="ipynb")
    log = ProgressLog(name, expected)
    os.environ["TQDM_DISABLE"] = "1"  # the kernel inherits it: epoch lines, not progress bars, reach the log
    try:
        papermill.execute_notebook(str(path), str(path), parameters=parameters, kernel_name="python3",
                                   cwd=str(NOTEBOOK_DIR), progress_bar=False, stdout_file=log, stderr_file=log)
    except papermill.PapermillExecutionError as error:
        raise UserError(f"notebook {name} failed in cell {error.exec_count}: {error.ename}: {error.evalue}"
                        f" (executed notebook: {path})") from None
    return path


def run(ws: Workspace, profile: str, seed: int, device: str, data_path: str | None,
        only: list[str] | None = None, log=print) -> dict[str, float]:
    """Execute the notebooks in order; record each one's wall time in results/summary.json."""
    check_notebook_names(only)
    names = [name for name in notebook_names() if not only or name in only]
    prepare_report_folder(ws)
    parameters = {"profile": profile, "seed": seed, "device": device,
                  "workspace": str(ws.root), "data_path": data_path}
    seconds, expected = {}, expected_seconds(ws, profile)
    for number, name in enumerate(names, 1):
        last = f", last {profile} run {clock(expected[name])}" if name in expected else ""
        log(f"[{number}/{len(names)}] {name} (profile {profile}, device {device}{last})")
        start = time.perf_counter()
        execute_notebook(name, ws, parameters, expected.get(name))
        seconds[name] = round(time.perf_counter() - start, 1)
        # a complete run's summary holds the numbers of the notebooks it has run so far, a partial run's those
        # of every notebook's results
        fresh = {stem: values for stem, values in ws.all_results().items() if only or stem in seconds}
        ws.update_summary({**summary(fresh), f"seconds_per_notebook.{name}": seconds[name], "profile": profile,
                           "device": device, "seed": seed})
        log(f"[{number}/{len(names)}] {name} done in {clock(seconds[name])}")
    write_report_variables(ws)  # once all ran: the results of one notebook may feed another's section
    return seconds


def renderer_name(engine: str) -> str:
    use_quarto = engine == "quarto" or (engine == "auto" and shutil.which("quarto"))
    return "Quarto" if use_quarto else "pandoc + Typst (builtin)"


def run_all(ws: Workspace, profile: str, seed: int, device: str, data_path: str | None,
            only: list[str] | None = None, render: bool = True, engine: str = "auto", log=print) -> Path | None:
    """Notebooks, then the run's report variables, then the report; returns the PDF path (None without render)."""
    start = time.perf_counter()
    if not only:  # a complete run starts its summary afresh: no number of an earlier run survives in it
        (ws.results / "summary.json").unlink(missing_ok=True)
    seconds = run(ws, profile, seed, device, data_path, only=only, log=log)
    if only:
        return None  # a partial run leaves the report and the totals of the last full run alone
    ws.update_report_variables("run", runinfo.report_variables(profile, seed, device, seconds, renderer_name(engine)))
    # the run's record is kept before rendering, so that a report that fails to render loses no run
    summary_path = ws.update_summary({"seconds_total": round(time.perf_counter() - start, 1)})
    runs = ws.results / "runs"
    runs.mkdir(exist_ok=True)
    shutil.copyfile(summary_path, runs / f"{profile}.json")  # this profile's last complete run
    if not render:
        return None
    from lib.render.renderer import render_report

    log(f"rendering the report with {renderer_name(engine)}")
    pdf = render_report(ws.report, engine=engine)
    log(f"report: {pdf}")
    return pdf
