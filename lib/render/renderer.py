"""Render the Quarto report (``report/``) to PDF.

With Quarto installed this runs ``quarto render``. Without it, a builtin renderer
turns the same sources into PDF with pandoc (from ``pypandoc-binary``) and Typst
(the ``typst`` wheel). It supports the subset of Quarto the report uses:

* metadata from ``_quarto.yml`` (top level and ``format: typst:``) and the front
  matter of ``index.qmd``;
* the shortcodes ``var``, ``include``, ``embed`` and ``pagebreak``;
* cross-references ``@fig-``, ``@tbl-`` and ``@sec-`` to figures, tables and
  sections, numbered by Typst;
* citations through pandoc's citeproc when a ``bibliography`` is given.

Intermediate files (the merged markdown, the Typst source, images extracted from
notebooks) are kept in ``report_dir / "_build"``.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import NamedTuple

import nbformat
import pypandoc
import typst
import yaml

from lib.errors import RenderError

# Label prefixes Quarto treats as cross-references, and the pandoc element each must label.
CROSSREF_KINDS = {"fig": "Figure", "tbl": "Table", "sec": "Header"}
_TARGET_NAMES = {"Figure": "figure", "Table": "table", "Header": "section"}

# Page layout used when neither _quarto.yml nor index.qmd says otherwise.
LAYOUT_DEFAULTS = {
    "papersize": "a4",
    "fontsize": "11pt",
    "toc": True,
    "toc-depth": 3,
    "number-sections": True,
    "section-numbering": "1.1.a",
    "page-numbering": "1",
}

# Typst rules added to pandoc's template: shade code blocks as Quarto does, and drop
# the leading space pandoc leaves in image captions (it writes them on their own line),
# which would otherwise print "Figure 1:  Caption" with two spaces. Figures and tables
# float to the top or bottom of a page, so one that does not fit leaves no half-empty page;
# every top-level section first places the floats of the one before, so none drifts past it.
TYPST_STYLE = """\
#set figure(placement: auto)
#show heading.where(level: 1): it => { place.flush(); it }
#show raw.where(block: true): set block(fill: luma(245), inset: 8pt, radius: 2pt, width: 100%)
#show table: set par(justify: false)
#show table: set text(size: 8pt)
#set table(inset: (x: 4pt, y: 3pt))
#show figure.caption: it => {
  let body = it.body
  if body.func() == [].func() and body.children.first(default: none) == [ ] {
    body = body.children.slice(1).join()
  }
  [#it.supplement~#context it.counter.display(it.numbering)#it.separator#body]
}
"""

# Notebook image outputs we can place in the PDF, with the file extension to write.
IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "image/svg+xml": ".svg"}

_SHORTCODE = re.compile(r"\{\{<\s*([\w-]+)\s*(.*?)\s*>\}\}")
_INCLUDE = re.compile(r"\{\{<\s*include\s+(.*?)\s*>\}\}")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_CELL_OPTION = re.compile(r"^#\|\s?")
_MISSING_CITATION = re.compile(r"citation (\S+) not found")


# --------------------------------------------------------------------------- public API


def check_report_dir(report_dir: Path) -> None:
    """A report folder must hold the Quarto project's `_quarto.yml` and `index.qmd`."""
    for name in ("_quarto.yml", "index.qmd"):
        if not (Path(report_dir) / name).is_file():
            raise RenderError(f"{report_dir} is no report folder: {name} is missing")


def render_report(report_dir: Path, engine: str = "auto") -> Path:
    """Render ``report_dir`` to PDF and return the PDF's path.

    ``engine`` is ``"quarto"``, ``"builtin"`` or ``"auto"`` (Quarto when it is on PATH).
    """
    report_dir = Path(report_dir)
    if engine not in ("auto", "quarto", "builtin"):
        raise RenderError(f"unknown render engine '{engine}' (use auto, quarto or builtin)")
    quarto = shutil.which("quarto")
    if engine == "quarto" and quarto is None:
        raise RenderError("engine 'quarto' requested but quarto is not on PATH")
    if engine != "builtin" and quarto is not None:
        print(f"Rendering {report_dir} with Quarto ({quarto})")
        return _render_quarto(report_dir, quarto)
    print(f"Rendering {report_dir} with the builtin renderer (pandoc + Typst; Quarto not used)")
    return render_builtin(report_dir)


def render_builtin(report_dir: Path) -> Path:
    """Render ``report_dir`` with pandoc and Typst, without Quarto; return the PDF's path."""
    report_dir = Path(report_dir).resolve()
    index = report_dir / "index.qmd"
    meta, body = _load_document(report_dir)
    build_dir = report_dir / "_build"
    build_dir.mkdir(exist_ok=True)

    shortcodes = _Shortcodes(report_dir, build_dir)
    body = shortcodes.expand(_expand_includes(body, index, report_dir, (index,)))
    meta = _expand_metadata(meta, shortcodes.expand)
    if meta.get("date") in ("today", "now"):
        today = datetime.date.today()
        meta["date"] = f"{today.day} {today:%B %Y}"
    layout = {key: meta.pop(key, default) for key, default in LAYOUT_DEFAULTS.items()}
    bibliography = _bibliography_files(meta, report_dir)
    if bibliography and "reference-section-title" not in meta and "#refs" not in body:
        meta["reference-section-title"] = "References"

    source = build_dir / "index.md"
    source.write_text(_with_front_matter(meta, body), encoding="utf-8")
    doc = json.loads(_pandoc(["-f", "markdown", "-t", "json", str(source)], report_dir))
    targets = _label_targets(doc, shortcodes.labels)
    _resolve_crossrefs(doc, targets, bool(layout["number-sections"]), bool(bibliography))
    _shift_headings(doc, meta.get("shift-heading-level-by"))
    _auto_column_widths(doc)
    _unbreakable_intervals(doc)
    _long_tables_break(doc["blocks"])
    images = _relocate_images(doc, report_dir, build_dir)

    style = build_dir / "style.typ"
    style.write_text(TYPST_STYLE, encoding="utf-8")
    typ_path = build_dir / "index.typ"
    _pandoc(
        ["-f", "json", "-t", "typst", "-s", "-o", str(typ_path), f"--include-in-header={style}", *_layout_args(layout)]
        + (["--citeproc"] if bibliography else []),
        report_dir,
        stdin=json.dumps(doc),
    )
    pdf_path = report_dir / _output_name(meta)
    root = Path(os.path.commonpath([report_dir, *(image.parent for image in images)]))
    try:
        typst.compile(str(typ_path), output=str(pdf_path), root=str(root))
    except typst.TypstError as error:
        first_line = (str(error).splitlines() or ["unknown error"])[0]
        raise RenderError(f"Typst failed on {typ_path}: {first_line}") from None
    return pdf_path


# --------------------------------------------------------------------------- Quarto


def _render_quarto(report_dir: Path, quarto: str) -> Path:
    """Run ``quarto render`` and move the PDF to where the builtin renderer would put it."""
    meta, _ = _load_document(report_dir)
    result = subprocess.run([quarto, "render", str(report_dir), "--to", "typst"], capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no message"]
        raise RenderError(f"quarto render {report_dir} failed: {lines[-1].strip()}")
    pdf_path = report_dir / _output_name(meta)
    # Without an output-file Quarto names the PDF after index.qmd.
    produced = report_dir / ("index.pdf" if "output-file" not in meta else pdf_path.name)
    if produced != pdf_path:
        produced.replace(pdf_path)
    return pdf_path


# --------------------------------------------------------------------------- metadata


def _load_document(report_dir: Path) -> tuple[dict, str]:
    """Return the merged metadata of the project and index.qmd, and index.qmd's body."""
    index = report_dir / "index.qmd"
    if not index.is_file():
        raise RenderError(f"{index} not found: the report needs an index.qmd")
    text = index.read_text(encoding="utf-8")
    match = _FRONT_MATTER.match(text)
    front = _parse_yaml(match.group(1) or "", index) if match else {}
    body = text[match.end() :] if match else text
    meta: dict = {}
    # Later layers win: project, project typst format, document, document typst format.
    for layer in (_read_yaml(report_dir / "_quarto.yml"), front):
        layer = dict(layer)
        layer.pop("project", None)
        formats = layer.pop("format", None)
        meta.update(layer)
        if isinstance(formats, dict) and isinstance(formats.get("typst"), dict):
            meta.update(formats["typst"])
    return meta, body


def _read_yaml(path: Path) -> dict:
    """Parse a YAML mapping file; a missing file is an empty mapping."""
    if not path.is_file():
        return {}
    return _parse_yaml(path.read_text(encoding="utf-8"), path)


def _parse_yaml(text: str, path: Path, loader=yaml.SafeLoader) -> dict:
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as error:
        raise RenderError(f"{path}: invalid YAML ({str(error).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RenderError(f"{path}: expected a YAML mapping")
    return data


def _expand_metadata(value, expand):
    """Apply shortcode expansion to every string in the metadata (e.g. a var in the title)."""
    if isinstance(value, str):
        return expand(value)
    if isinstance(value, dict):
        return {key: _expand_metadata(item, expand) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand_metadata(item, expand) for item in value]
    return value


def _bibliography_files(meta: dict, report_dir: Path) -> list[Path]:
    files = meta.get("bibliography") or []
    files = [files] if isinstance(files, str) else files
    paths = [report_dir / name for name in files]
    for path in paths:
        if not path.is_file():
            raise RenderError(f"bibliography file {path} not found")
    return paths


def _output_name(meta: dict) -> str:
    name = str(meta.get("output-file", "report.pdf"))
    return name if name.endswith(".pdf") else name + ".pdf"


def _with_front_matter(meta: dict, body: str) -> str:
    if not meta:
        return body
    return f"---\n{yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)}---\n\n{body}"


def _layout_args(layout: dict) -> list[str]:
    """Pandoc options filling the variables of pandoc's standalone Typst template."""
    args = ["-V", f"papersize={layout['papersize']}", "-V", f"fontsize={layout['fontsize']}"]
    if layout["page-numbering"]:
        args += ["-V", f"page-numbering={layout['page-numbering']}"]
    if layout["number-sections"]:
        args += ["-V", f"section-numbering={layout['section-numbering']}"]
    if layout["toc"]:
        args += ["--toc", f"--toc-depth={layout['toc-depth']}"]
    return args


# --------------------------------------------------------------------------- shortcodes


def _resolve(target: str, base_dir: Path, report_dir: Path) -> Path:
    """Quarto paths are relative to the citing file, or to the project when they start with /."""
    return report_dir / target[1:] if target.startswith("/") else base_dir / target


def _expand_includes(text: str, path: Path, report_dir: Path, chain: tuple[Path, ...]) -> str:
    """Replace ``{{< include file >}}`` by the file's contents, recursively."""

    def include(match: re.Match) -> str:
        target = _resolve(match.group(1), path.parent, report_dir).resolve()
        if not target.is_file():
            raise RenderError(f"{path.name}: included file '{match.group(1)}' not found")
        if target in chain:
            raise RenderError(f"{path.name}: include cycle through '{match.group(1)}'")
        return _expand_includes(target.read_text(encoding="utf-8"), target, report_dir, (*chain, target))

    return _INCLUDE.sub(include, text)


class _Cell(NamedTuple):
    """A labelled notebook code cell."""

    options: dict  # the leading "#|" options
    code: str  # the source without the option lines
    outputs: list
    language: str


class _Shortcodes:
    """Expands ``var``, ``embed`` and ``pagebreak`` shortcodes for one render."""

    def __init__(self, report_dir: Path, build_dir: Path):
        self.report_dir = report_dir
        self.build_dir = build_dir
        self.variables_path = report_dir / "_variables.yml"
        # BaseLoader keeps every scalar exactly as written (97.30 stays "97.30").
        self.variables = (
            _parse_yaml(self.variables_path.read_text(encoding="utf-8"), self.variables_path, loader=yaml.BaseLoader)
            if self.variables_path.is_file()
            else {}
        )
        self.notebooks: dict[Path, dict[str, _Cell]] = {}
        # Labels of embedded figures and tables, checked later to exist in the document.
        self.labels: set[str] = set()

    def expand(self, text: str) -> str:
        text = _SHORTCODE.sub(self._replace, text)
        if "{{<" in text:
            line = next(line for line in text.splitlines() if "{{<" in line)
            raise RenderError(f"malformed shortcode: {line.strip()}")
        return text

    def _replace(self, match: re.Match) -> str:
        name, argument = match.group(1), match.group(2)
        if name == "var":
            return self._var(argument)
        if name == "embed":
            return self._embed(argument)
        if name == "pagebreak":
            return "\n\n```{=typst}\n#pagebreak()\n```\n\n"
        raise RenderError(f"unsupported shortcode '{name}' in {match.group(0)}")

    def _var(self, key: str) -> str:
        value = self.variables
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise RenderError(f"variable '{key}' is not defined in {self.variables_path}")
            value = value[part]
        if isinstance(value, (dict, list)):
            raise RenderError(f"variable '{key}' in {self.variables_path} is not a single value")
        return value

    def _embed(self, argument: str) -> str:
        """Markdown for the outputs of one labelled notebook cell."""
        target, *options = argument.split()
        notebook, _, label = target.partition("#")
        if not label:
            raise RenderError(f"embed '{target}' needs a cell label: notebook.ipynb#label")
        cell = self._cell(_resolve(notebook, self.report_dir, self.report_dir), notebook, label)
        cell_options = dict(cell.options)
        for option in options:
            key, _, value = option.partition("=")
            if key != "echo" or value not in ("true", "false"):
                raise RenderError(f"embed {target}: unsupported option '{option}'")
            cell_options["echo"] = value == "true"

        is_figure = label.startswith("fig-")
        caption = _caption(cell_options, "fig-cap", target) if is_figure else ""
        blocks = [_code_block(cell.code, cell.language)] if cell_options.get("echo") else []
        images = []
        stream = ""
        for output in cell.outputs:
            if is_figure and not any(mime in output.get("data", {}) for mime in IMAGE_TYPES):
                continue  # a figure cell's result is its figure; printed values and returned paths stay out
            if output.output_type == "stream":
                # stdout is part of the result; stderr carries warnings and progress bars.
                if output.name == "stdout":
                    stream += output.text
                continue
            if stream:
                blocks.append(_code_block(stream))
                stream = ""
            if output.output_type == "error":
                raise RenderError(f"embed {target}: the cell raised {output.ename}")
            data = output.get("data", {})
            mime = next((mime for mime in IMAGE_TYPES if mime in data), None)
            if mime:
                images.append(self._write_image(data[mime], mime, notebook, label, len(images)))
                # With a caption and a label, pandoc makes the image a numbered figure.
                blocks.append(f"![{caption}]({images[-1]})" + (f"{{#{label}}}" if is_figure else ""))
            elif "text/markdown" in data:
                blocks.append(data["text/markdown"].strip())
            elif "text/plain" in data:
                blocks.append(_code_block(data["text/plain"]))
        if stream:
            blocks.append(_code_block(stream))

        if is_figure:
            if len(images) != 1:
                raise RenderError(f"embed {target}: a fig- cell must output exactly one image, found {len(images)}")
            self.labels.add(label)
        elif label.startswith("tbl-"):
            # A pipe table followed by ": caption {#label}" becomes a numbered table.
            blocks.append(f": {_caption(cell_options, 'tbl-cap', target)} {{#{label}}}")
            self.labels.add(label)
        return "\n\n" + "\n\n".join(blocks) + "\n\n"

    def _cell(self, path: Path, name: str, label: str) -> _Cell:
        """The code cell labelled ``label``; notebooks are read once per render."""
        if path not in self.notebooks:
            if not path.is_file():
                raise RenderError(f"embedded notebook '{name}' not found ({path})")
            try:
                notebook = nbformat.read(path, as_version=4)
            except Exception as error:  # nbformat raises several unrelated types
                raise RenderError(f"cannot read notebook {path}: {error}") from None
            language = notebook.metadata.get("kernelspec", {}).get("language", "python")
            cells = {}
            for cell in notebook.cells:
                if cell.cell_type != "code":
                    continue
                options, code = _cell_options(cell.source, path)
                cell_label = options.get("label")
                if cell_label in cells:
                    raise RenderError(f"notebook '{name}' has two cells labelled '{cell_label}'")
                if cell_label:
                    cells[cell_label] = _Cell(options, code, cell.outputs, language)
            self.notebooks[path] = cells
        if label not in self.notebooks[path]:
            raise RenderError(
                f"no cell labelled '{label}' in notebook '{name}' "
                f"(expected a line '#| label: {label}' at the top of a code cell)"
            )
        return self.notebooks[path][label]

    def _write_image(self, data, mime: str, notebook: str, label: str, index: int) -> str:
        """Save one image output in the build folder; return its markdown path."""
        path = self.build_dir / f"{Path(notebook).stem}-{label}-{index + 1}{IMAGE_TYPES[mime]}"
        if mime == "image/svg+xml":
            path.write_text("".join(data), encoding="utf-8")
        else:
            path.write_bytes(base64.b64decode("".join(data)))
        return f"<{path.relative_to(self.report_dir).as_posix()}>"


def _cell_options(source: str, path: Path | None = None) -> tuple[dict, str]:
    """Split a cell into its leading ``#|`` options (YAML) and the remaining code."""
    lines = source.splitlines()
    count = 0
    while count < len(lines) and lines[count].startswith("#|"):
        count += 1
    options_yaml = "\n".join(_CELL_OPTION.sub("", line) for line in lines[:count])
    options = _parse_yaml(options_yaml, path or Path("cell options"))
    return options, "\n".join(lines[count:]).strip("\n")


def _caption(options: dict, key: str, target: str) -> str:
    if not options.get(key):
        raise RenderError(f"embed {target}: the cell needs a '#| {key}:' option")
    return " ".join(str(options[key]).split())


def _code_block(text: str, language: str = "") -> str:
    # The fence must be longer than any run of backticks inside the code.
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


# --------------------------------------------------------------------------- pandoc AST


def _pandoc(args: list[str], cwd: Path, stdin: str | None = None) -> str:
    """Run pandoc; citeproc's 'citation not found' warnings are errors."""
    result = subprocess.run(
        [pypandoc.get_pandoc_path(), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RenderError(f"pandoc failed: {(result.stderr.strip().splitlines() or ['?'])[0]}")
    missing = _MISSING_CITATION.findall(result.stderr)
    if missing:
        raise RenderError("citations not found in the bibliography: " + ", ".join(f"@{key}" for key in missing))
    return result.stdout


def _nodes(value):
    """Every pandoc element (a dict with a "t" key) in ``value``, depth first."""
    if isinstance(value, dict):
        if "t" in value:
            yield value
        for item in value.values():
            yield from _nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from _nodes(item)


def _auto_column_widths(doc: dict) -> None:
    """Let Typst size table columns to their content.

    Pandoc derives fixed widths for long pipe tables from the dashes of the separator
    line, which squeezes a column of short but unbreakable words (e.g. `unlabeled_data`)
    until it overlaps its neighbour.
    """
    for node in _nodes(doc["blocks"]):
        if node["t"] == "Table":
            colspecs = node["c"][2]
            for spec in colspecs:
                spec[1] = {"t": "ColWidthDefault"}


def _unbreakable_intervals(doc: dict) -> None:
    """Keep "[0.928, 0.989]" on one line in table cells: a narrow column may break before an interval, never
    inside it."""
    for node in _nodes(doc["blocks"]):
        if node["t"] != "Table":
            continue
        for inlines in (item for item in _nodes(node) if isinstance(item.get("c"), list)):
            items = inlines["c"]
            for i in range(1, len(items) - 1):
                before, between, after = items[i - 1], items[i], items[i + 1]
                if (all(isinstance(item, dict) for item in (before, between, after))
                        and [before.get("t"), between.get("t"), after.get("t")] == ["Str", "Space", "Str"]
                        and before["c"].startswith("[") and before["c"].endswith(",") and after["c"].endswith("]")):
                    items[i] = {"t": "Str", "c": "\u00a0"}


LONG_TABLE_ROWS = 30  # about a page of 8-pt rows beside a caption


def _long_tables_break(blocks: list) -> None:
    """A float never breaks across pages, so a table of more than `LONG_TABLE_ROWS` rows is set in the text
    flow, where Typst may break it (its header repeats on each page)."""
    for i in reversed(range(len(blocks))):
        block = blocks[i]
        if block.get("t") == "Table" and sum(len(body[3]) for body in block["c"][4]) > LONG_TABLE_ROWS:
            blocks[i:i + 1] = [
                {"t": "RawBlock", "c": ["typst", "#[\n#set figure(placement: none)\n"
                                                 "#show figure: set block(breakable: true)"]},
                block,
                {"t": "RawBlock", "c": ["typst", "]"]},
            ]
            continue
        for child in _block_lists(block.get("c")):
            _long_tables_break(child)


def _block_lists(value):
    """Every list of blocks directly inside a pandoc element's content (a Div's body, a list's items...)."""
    if isinstance(value, list):
        if value and all(isinstance(item, dict) and "t" in item for item in value):
            yield value
        else:
            for item in value:
                yield from _block_lists(item)


def _splice_cites(value, replace) -> None:
    """Replace, in place, each Cite element by the list of inlines ``replace`` returns."""
    if isinstance(value, dict):
        for item in value.values():
            _splice_cites(item, replace)
    elif isinstance(value, list):
        for item in value:
            _splice_cites(item, replace)
        value[:] = [
            new
            for item in value
            for new in (replace(item) if isinstance(item, dict) and item.get("t") == "Cite" else [item])
        ]


def _label_targets(doc: dict, embedded_labels: set[str]) -> dict[str, dict]:
    """Map each label to the Figure, Table or Header element it labels."""
    targets = {}
    for node in _nodes(doc):
        if node["t"] in ("Figure", "Table", "Header"):
            label = node["c"][1 if node["t"] == "Header" else 0][0]
            if label in targets and _crossref_kind(label):
                raise RenderError(f"label '{label}' is defined twice")
            targets[label] = node
    # An embedded table whose output is not a pipe table would leave its caption as text.
    for label in sorted(embedded_labels):
        kind = _crossref_kind(label)
        if targets.get(label, {}).get("t") != kind:
            raise RenderError(
                f"the output of cell '{label}' did not become a "
                f"{_TARGET_NAMES[kind]} (for a table it must be a pipe table)"
            )
    return targets


def _resolve_crossrefs(doc: dict, targets: dict[str, dict], numbered_sections: bool, has_bibliography: bool) -> None:
    """Turn @fig-/@tbl-/@sec- citations into Typst references, in place.

    Other citation keys stay citations for citeproc. Raises RenderError listing every
    reference that cannot be resolved, so the PDF never shows a placeholder.
    """
    unresolved = []

    def replace(cite: dict) -> list[dict]:
        citations = cite["c"][0]
        if not has_bibliography:
            unresolved.extend(
                f"@{c['citationId']} (no bibliography is configured)"
                for c in citations
                if not _crossref_kind(c["citationId"])
            )
        if not any(_crossref_kind(c["citationId"]) for c in citations):
            return [cite]
        inlines = []
        for citation in citations:
            key = citation["citationId"]
            kind = _crossref_kind(key)
            if kind is None:
                # A bibliography key grouped with cross-references: cite it on its own.
                inlines += [*_separator(inlines), {"t": "Cite", "c": [[citation], [{"t": "Str", "c": f"@{key}"}]]}]
                continue
            # Quarto's capitalised form (@Fig-x) refers to the same label.
            label = key[0].lower() + key[1:]
            target = targets.get(label)
            if target is None or target["t"] != kind:
                unresolved.append(f"@{key} (no {_TARGET_NAMES[kind]} labelled '{label}')")
                continue
            number_only = citation["citationMode"]["t"] == "SuppressAuthor"
            inlines += [
                *_separator(inlines),
                *_prefix(citation["citationPrefix"]),
                _reference(target, label, number_only, numbered_sections),
                *citation["citationSuffix"],
            ]
        return inlines

    _splice_cites(doc, replace)
    if unresolved:
        raise RenderError("unresolved references: " + ", ".join(unresolved))


def _shift_headings(doc: dict, shift) -> None:
    """Shift heading levels; like Quarto for Typst, by -1 when there is no level-1 heading."""
    headers = [node for node in _nodes(doc["blocks"]) if node["t"] == "Header"]
    if shift is None:
        shift = 0 if any(header["c"][0] == 1 for header in headers) else -1
    for header in headers:
        header["c"][0] = max(1, header["c"][0] + int(shift))


def _relocate_images(doc: dict, report_dir: Path, build_dir: Path) -> list[Path]:
    """Point image paths at the .typ file's folder, in place; return the image files."""
    images = []
    for node in _nodes(doc):
        if node["t"] == "Image":
            # Pandoc stores image paths URL-encoded ("my%20plot.png").
            source = urllib.parse.unquote(node["c"][2][0])
            path = _resolve(source, report_dir, report_dir)
            if not path.is_file():
                raise RenderError(f"image '{source}' not found ({path})")
            # Typst resolves image paths relative to the .typ file, which lives in _build.
            node["c"][2][0] = Path(os.path.relpath(path, build_dir)).as_posix()
            images.append(path.resolve())
    return images


def _crossref_kind(key: str) -> str | None:
    """The element type a cross-reference key must label, or None for a citation key."""
    prefix, dash, _ = key.partition("-")
    return CROSSREF_KINDS.get(prefix.lower()) if dash else None


def _separator(inlines: list) -> list[dict]:
    return [{"t": "Str", "c": ","}, {"t": "Space"}] if inlines else []


def _prefix(prefix: list) -> list[dict]:
    return [*prefix, {"t": "Space"}] if prefix else []


def _reference(target: dict, label: str, number_only: bool, numbered_sections: bool) -> dict:
    """A reference to a labelled element: Typst prints 'Figure 2', 'Table 1', 'Section 3'."""
    if target["t"] == "Header" and (not numbered_sections or "unnumbered" in target["c"][1][1]):
        # Typst cannot number a reference to an unnumbered heading: link its title instead.
        return {"t": "Link", "c": [["", [], []], target["c"][2], [f"#{label}", ""]]}
    supplement = ", supplement: none" if number_only else ""
    # The trailing ';' ends the Typst expression, so following text cannot extend it.
    code = f"#ref(label({json.dumps(label, ensure_ascii=False)}){supplement});"
    return {"t": "RawInline", "c": ["typst", code]}
