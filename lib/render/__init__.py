"""Reads results only: the notebooks' tables and display names, the report's numbers, the one number formatter,
the run description and the pandoc + Typst renderer (no ML here)."""
