"""Every number formatter of the report and the notebooks' tables."""

from __future__ import annotations

import numpy as np


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage ("n/a" when missing)."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}"


def signed(x: float, digits: int) -> str:
    """"+1.2" / "-0.3", and "+0.0" rather than "-0.0" for tiny negative numbers."""
    return f"{round(x, digits) + 0.0:+.{digits}f}"


def interval(ci, digits: int = 3, scale: float = 1.0, sign: bool = False) -> str:
    """A [low, high] interval as text."""
    low, high = (scale * x for x in ci)
    if sign:
        return f"[{signed(low, digits)}, {signed(high, digits)}]"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def with_ci(estimate: dict, scale: float = 100.0, digits: int = 1, sign: bool = False) -> str:
    """"97.3 [96.2, 98.3]" from an estimate {"value", "ci"} (scaled, e.g. to %; `sign` writes "+" on positives)."""
    value = scale * estimate["value"]
    shown = signed(value, digits) if sign else f"{value:.{digits}f}"
    return f"{shown} {interval(estimate['ci'], digits, scale, sign)}"


def mean_std(values: list[float], digits: int, scale: float = 1.0) -> str:
    """"mean ± standard deviation" of values over seeds ("n/a" with fewer than two)."""
    if len(values) < 2:
        return "n/a"
    values = scale * np.asarray(values, dtype=float)
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"
