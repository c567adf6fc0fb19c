"""The report's pages: every embedded figure and table is referenced from the text, and the committed PDF's
main text ends by page 12 (the appendix starts on a fresh page)."""

import re
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[1] / "report"
PAGES = ["index.qmd", "_transfer.qmd", "_appendix.qmd"]
MAIN_TEXT_PAGES = 12


def _text() -> str:
    return "\n".join((REPORT / name).read_text() for name in PAGES)


def test_every_embedded_figure_and_table_is_referenced():
    text = _text()
    embedded = set(re.findall(r"\{\{< embed [^#>]+#((?:fig|tbl)-[\w-]+) >\}\}", text))
    assert embedded, "no embedded figure or table found: the embed syntax changed?"
    unreferenced = sorted(label for label in embedded if not re.search(rf"@{re.escape(label)}\b", text))
    assert not unreferenced, f"embedded but never referenced: {unreferenced}"


def test_main_text_ends_by_page_12():
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(REPORT / "report.pdf")
    # the first page after the table of contents whose text starts with the appendix heading
    starts = [i + 1 for i, page in enumerate(reader.pages)
              if i > 0 and (page.extract_text() or "").lstrip().startswith("Appendix")]
    assert starts, "no page starts with the appendix heading"
    assert starts[0] - 1 <= MAIN_TEXT_PAGES, f"the main text runs to page {starts[0] - 1}"
