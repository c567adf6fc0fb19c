"""The report: the pandoc + Typst renderer and the run description (no ML here)."""
