"""Command line: `python -m lib data | run | render | predict` (see `python -m lib --help`)."""

from __future__ import annotations

import argparse
import os
import sys

from lib.errors import UserError


def _data(args) -> None:
    from lib import data
    from lib.workspace import data_dir

    if args.data:
        data.load_assignment(args.data)
        print(f"{args.data} is a valid assignment pickle")
        return
    data.ensure_replica(data_dir(), seed=args.seed)


def _run(args) -> None:
    from lib import data, pipeline
    from lib.config import default_profile_name, get_profile
    from lib.notebook import pick_device
    from lib.workspace import Workspace

    # Every argument is checked before any data or model work starts.
    pipeline.check_notebook_names(args.only)
    device = str(pick_device(args.device))
    profile = get_profile(args.profile or default_profile_name(device)).name
    if not args.no_render:
        from lib.render.renderer import check_report_dir

        check_report_dir(pipeline.PROJECT_ROOT / "report")
    ws = Workspace(args.workspace)
    data_path = data.resolve_data_path(args.data).resolve()
    if args.data or os.environ.get("ASSIGNMENT_DATA"):
        data.load_assignment(data_path)
        print(f"data: {data_path}")
    else:
        data.ensure_replica(seed=0)
    print(f"profile {profile}, device {device}, workspace {ws.root}")
    pipeline.run_all(ws, profile, args.seed, device, str(data_path), only=args.only, render=not args.no_render,
                     engine=args.engine)


def _render(args) -> None:
    from pathlib import Path

    from lib.render.renderer import check_report_dir, render_report
    from lib.render.variables import write_report_variables
    from lib.workspace import Workspace

    report_dir = Path(args.report_dir)
    check_report_dir(report_dir)
    if (report_dir.resolve().parent / "results").is_dir():  # the numbers the text quotes, from the results
        write_report_variables(Workspace(report_dir.resolve().parent))
    print(f"report: {render_report(report_dir, engine=args.engine)}")


def _predict(args) -> None:
    from lib.predict import predict_file

    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    done = predict_file(args.input, args.out, args.model, args.threads)
    print(f"wrote {done['rows']} rows ({done['flagged']} flagged as anomalies) to {args.out} "
          f"with {done['model']} in {done['seconds']:.2f} s ({done['images_per_second']:.0f} images/s)")


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line (`error: …`) and exit status 2, like every other user error."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m lib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="build the replica (if missing or stale) and verify it")
    data.add_argument("--seed", type=int, default=0, help="replica seed (default 0)")
    data.add_argument("--data", help="only verify this assignment pickle (e.g. the original)")
    data.set_defaults(handler=_data)

    run = commands.add_parser("run", help="data, all notebooks (papermill), then the report")
    run.add_argument("--profile", choices=["smoke", "cpu", "gpu"], help="default: gpu with CUDA, else cpu")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    run.add_argument("--workspace", help="output folder (default: the project itself)")
    run.add_argument("--data", help="the original assignment_4_data.pickle (default: ASSIGNMENT_DATA or the replica)")
    run.add_argument("--only", nargs="+", metavar="NOTEBOOK", help="run only these notebooks, e.g. 01_data_exploration")
    run.add_argument("--no-render", action="store_true", help="skip rendering the report")
    run.add_argument("--engine", choices=["auto", "quarto", "builtin"], default="auto", help="report renderer")
    run.set_defaults(handler=_run)

    render = commands.add_parser("render", help="render the report (Quarto if installed, else pandoc + Typst)")
    render.add_argument("--report-dir", default="report")
    render.add_argument("--engine", choices=["auto", "quarto", "builtin"], default="auto")
    render.set_defaults(handler=_render)

    predict = commands.add_parser("predict", help="classify images, score anomalies, write a CSV")
    predict.add_argument("input", help=".npy of uint8 images (28x28 or 32x32) or a pickle like the assignment's")
    predict.add_argument("--out", required=True, help="CSV to write (its folder must exist)")
    predict.add_argument("--model", help="saved model folder (default: checkpoints/<profile>/final of the last run)")
    predict.add_argument("--threads", type=int, help="CPU threads (default: one per core; 1 helps on busy cores)")
    predict.set_defaults(handler=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
