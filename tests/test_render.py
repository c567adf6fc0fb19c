"""Tests of the builtin report renderer (pandoc + Typst) on a small generated report."""

import base64
import functools
import io
import shutil
from pathlib import Path

import matplotlib
import nbformat
import pytest
from pypdf import PdfReader

from lib.errors import RenderError
from lib.render import renderer as render
from tests.pdf import pdf_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the non-interactive backend)

QUARTO_YML = """\
project:
  type: default
format:
  typst:
    output-file: report.pdf
"""

INDEX_QMD = """\
---
title: "Demo Report"
author: "Test Author"
bibliography: references.bib
---

## Introduction {#sec-intro}

The accuracy is {{< var demo.accuracy >}} percent. See @fig-demo and @tbl-demo.

{{< include _intro.qmd >}}

## Results {#sec-results}

{{< embed notebooks/demo.ipynb#fig-demo >}}

{{< embed notebooks/demo.ipynb#tbl-demo >}}

{{< embed notebooks/demo.ipynb#demo-print echo=true >}}

As discussed in @sec-intro, results agree with earlier work [@smith2020].
"""

INTRO_QMD = "Included text with an inline figure reference to [-@fig-demo].\n"

REFERENCES_BIB = """\
@article{smith2020,
  author = {Smith, John},
  title = {Distributions of things},
  journal = {Journal of Examples},
  year = {2020}
}
"""

TABLE_MARKDOWN = """\
| class | accuracy |
|:------|---------:|
| cat   |     0.91 |
| dog   |     0.88 |
"""


@functools.cache
def _sine_png() -> str:
    """A small real PNG, base64-encoded as in a notebook's image/png output."""
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([0, 1, 2, 3], [0, 1, 0, -1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=50)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _write_notebook(path: Path) -> None:
    v4 = nbformat.v4
    figure_cell = v4.new_code_cell(
        '#| label: fig-demo\n#| fig-cap: "Demo caption shows a sine curve"\nplt.plot(x, y)',
        outputs=[
            v4.new_output(
                "display_data",
                data={"image/png": _sine_png(), "text/plain": "<Figure size 300x200 with 1 Axes>"},
            ),
            # what a figure cell returns or prints besides its figure stays out of the report
            v4.new_output("execute_result", data={"text/plain": "PosixPath('figures/demo.png')"}),
        ],
    )
    table_cell = v4.new_code_cell(
        '#| label: tbl-demo\n#| tbl-cap: "Demo table caption"\nMarkdown(table)',
        outputs=[
            v4.new_output(
                "execute_result",
                data={"text/markdown": TABLE_MARKDOWN, "text/plain": "<Markdown object>"},
                execution_count=2,
            )
        ],
    )
    print_cell = v4.new_code_cell(
        "#| label: demo-print\nprint('printed by the notebook')",
        outputs=[v4.new_output("stream", name="stdout", text="printed by the notebook\n")],
    )
    notebook = v4.new_notebook(cells=[figure_cell, table_cell, print_cell])
    path.parent.mkdir(parents=True)
    nbformat.write(notebook, path)


def _make_report(root: Path, index: str = INDEX_QMD) -> Path:
    report = root / "report"
    _write_notebook(report / "notebooks" / "demo.ipynb")
    (report / "_quarto.yml").write_text(QUARTO_YML)
    (report / "_variables.yml").write_text('demo:\n  accuracy: "97.3"\n')
    (report / "references.bib").write_text(REFERENCES_BIB)
    (report / "_intro.qmd").write_text(INTRO_QMD)
    (report / "index.qmd").write_text(index)
    return report


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    report = _make_report(tmp_path_factory.mktemp("render"))
    pdf = render.render_report(report, engine="builtin")
    return report, pdf, pdf_text(pdf)


def test_render_writes_pdf_and_build_files(rendered):
    report, pdf, _ = rendered
    assert pdf == report.resolve() / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert (report / "_build" / "index.typ").is_file()
    assert (report / "_build" / "demo-fig-demo-1.png").is_file()


def test_render_content(rendered):
    text = rendered[2]
    assert "PosixPath" not in text
    for expected in [
        "Demo Report",
        "Test Author",
        "Contents",
        "97.3 percent",
        "See Figure 1 and Table 1.",
        "Figure 1: Demo caption shows a sine curve",
        "Table 1: Demo table caption",
        "cat",
        "0.91",
        "Included text with an inline figure reference to 1.",
        "print('printed by the notebook')",
        "printed by the notebook",
        "As discussed in Section 1",
        "(Smith 2020)",
        "References",
        "Distributions of Things",
    ]:
        assert expected in text
    for forbidden in ["??", "{{<", "#|", "<Figure size", "fig-demo", "tbl-demo"]:
        assert forbidden not in text


def test_numbered_sections(rendered):
    text = rendered[2]
    # ## headings become top-level sections, as Quarto does for Typst.
    assert "1 Introduction" in text
    assert "2 Results" in text


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{{< var demo.accuracy >}}", "{{< var demo.missing >}}", "demo.missing"),
        ("notebooks/demo.ipynb#fig-demo", "notebooks/absent.ipynb#fig-demo", "absent.ipynb"),
        ("notebooks/demo.ipynb#fig-demo", "notebooks/demo.ipynb#fig-nothing", "fig-nothing"),
        ("See @fig-demo", "See @fig-nope", "@fig-nope"),
        ("{{< include _intro.qmd >}}", "{{< include _absent.qmd >}}", "_absent.qmd"),
        ("[@smith2020]", "[@jones1999]", "@jones1999"),
        ("{{< var demo.accuracy >}}", "{{< video demo.mp4 >}}", "video"),
    ],
)
def test_errors_name_the_missing_thing(tmp_path, old, new, message):
    assert old in INDEX_QMD
    report = _make_report(tmp_path, INDEX_QMD.replace(old, new))
    with pytest.raises(RenderError, match=message.replace(".", r"\.")):
        render.render_builtin(report)


def test_table_cell_without_table_is_an_error(tmp_path):
    report = _make_report(tmp_path)
    notebook = report / "notebooks" / "demo.ipynb"
    nb = nbformat.read(notebook, as_version=4)
    nb.cells[1].outputs[0].data["text/markdown"] = "just a sentence"
    nbformat.write(nb, notebook)
    with pytest.raises(RenderError, match="tbl-demo"):
        render.render_builtin(report)


def test_auto_engine_uses_builtin_without_quarto(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(render, "render_builtin", lambda report_dir: report_dir / "x.pdf")
    assert render.render_report(tmp_path) == tmp_path / "x.pdf"
    assert "builtin" in capsys.readouterr().out
    with pytest.raises(RenderError, match="quarto"):
        render.render_report(tmp_path, engine="quarto")


def test_typst_error_becomes_render_error(tmp_path):
    report = _make_report(tmp_path, INDEX_QMD + "\n```{=typst}\n#undefined-function()\n```\n")
    with pytest.raises(RenderError, match="Typst failed.*unknown variable: undefined-function"):
        render.render_builtin(report)


def test_an_interval_in_a_table_cell_never_breaks_inside():
    import json

    markdown = "| a | b |\n|---|---|\n| 0.967 [0.928, 0.989] | x [y, z |\n\ntext [0.1, 0.2]\n"
    doc = json.loads(render._pandoc(["-f", "markdown", "-t", "json"], Path("."), stdin=markdown))
    render._unbreakable_intervals(doc)
    typst = render._pandoc(["-f", "json", "-t", "typst"], Path("."), stdin=json.dumps(doc))
    assert "[0.928,~0.989]" in typst.replace("\\[", "[").replace("\\]", "]")  # in the table: one unit
    assert "[y, z" in typst.replace("\\[", "[")  # not an interval: untouched
    assert "[0.1, 0.2]" in typst.replace("\\[", "[").replace("\\]", "]")  # running text may break as usual


def test_a_table_longer_than_a_page_breaks_across_pages(tmp_path):
    rows = "".join(f"| setting {i} | value {i} |\n" for i in range(90))
    report = _make_report(tmp_path, "---\ntitle: Long\n---\n\nSee @tbl-long.\n\n| name | value |\n|---|---|\n"
                          + rows + "\n: A long table {#tbl-long}\n")
    pages = [" ".join(page.extract_text().split()) for page in PdfReader(render.render_builtin(report)).pages]
    assert len(pages) >= 2
    assert "setting 0 " in pages[0] and "setting 89 " not in pages[0]  # not one page overflowing its bottom
    assert "setting 89 " in pages[-1] and "name value" in pages[-1]  # the header repeats where the table goes on
