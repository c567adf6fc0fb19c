"""Reading a rendered PDF's text in tests, with pypdf (no system program needed)."""

from pathlib import Path

from pypdf import PdfReader


def pdf_text(pdf: Path) -> str:
    """All pages' text, whitespace runs (Typst's non-breaking spaces too) collapsed to one space."""
    text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    return " ".join(text.split())
