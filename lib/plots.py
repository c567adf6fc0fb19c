"""Figure helpers shared by the notebooks: image grids and 2-D maps, sized for the report."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

plt.rcParams.update({"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "figure.dpi": 100})
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#d62728"]


def image_rows(rows: list[np.ndarray], row_labels: list[str], col_titles: list[str] | None = None,
               cell: float = 0.9, cmap: str = "gray_r", titles: list[list[str]] | None = None):
    """One row of images per entry of `rows` (each (k, 1, 32, 32) or (k, 32, 32)), labelled on the left;
    `titles` gives a small title per image (row by row)."""
    n_cols = max(len(row) for row in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell * n_cols + 1.4, cell * len(rows)), squeeze=False)
    for r, (images, label) in enumerate(zip(rows, row_labels)):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(np.asarray(images[c]).reshape(32, 32), cmap=cmap, vmin=0, vmax=255)
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=12)
            if r == 0 and col_titles:
                ax.set_title(col_titles[c], fontsize=8)
            if titles and c < len(titles[r]):
                ax.set_title(titles[r][c], fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.6 if titles else 0.05)
    return fig


def scatter_2d(ax, points: np.ndarray, groups: np.ndarray, names: list[str], title: str,
               xlabel: str, ylabel: str, highlight: int | None = None) -> None:
    """2-D map coloured by group; the `highlight` group (e.g. anomalies) is drawn on top, larger."""
    for index, name in enumerate(names):
        chosen = groups == index
        if not chosen.any():
            continue
        on_top = index == highlight
        ax.scatter(points[chosen, 0], points[chosen, 1], s=18 if on_top else 3, alpha=1.0 if on_top else 0.5,
                   c=PALETTE[index % len(PALETTE)], marker="x" if on_top else "o", label=name,
                   zorder=3 if on_top else 2, rasterized=True)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(markerscale=3 if highlight is None else 1.5, fontsize=8, loc="best", frameon=True)
