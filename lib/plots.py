"""Figure helpers shared by the notebooks: image grids and 2-D maps, sized for the report."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Text

# Every figure is drawn at most FIGURE_WIDTH wide with texts of at least 8 points, so that it prints at about 90 %
# of its size and every text at 7 points or more; `save_figure` enlarges whatever would still print smaller.
plt.rcParams.update({"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
                     "ytick.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8, "figure.dpi": 100})
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#d62728"]
# One colour per class (lib.data.CLASS_NAMES order), the same in every figure; anomalies are red, clean images
# (all classes together) grey, images of unknown class light grey.
CLASS_COLOURS = PALETTE[:5]
ANOMALY_COLOUR = PALETTE[5]
CLEAN_COLOUR = "#666666"
UNKNOWN_COLOUR = "#bbbbbb"
# One colormap for every image: as the data is stored, light articles on a black background, so an
# inverted anomaly looks inverted.
IMAGE_CMAP = "gray"
# Markers and line styles that tell curves apart without colour (in order of the curves).
MARKERS = ["o", "s", "^", "D", "v", "P"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1))]


# The report's text width: A4 (8.27 in) less the 1.25-inch side margins of Quarto's Typst template. A figure is
# printed at its own size (its tight bounding box, plus padding), shrunk to this width when wider.
TEXT_WIDTH_INCHES = 415.3 / 72
MIN_PRINTED_POINTS = 7.0
FIGURE_WIDTH = 6.2  # inches: a full-width figure prints at about 90 % of its size
PAD_INCHES = 0.1  # the padding savefig and the notebook's inline backend add around the tight bounding box


def class_colour(index: int) -> str:
    """The colour of class `index` (0-4) in every figure; ANOMALY (5) is red, -1 (class unknown) light grey."""
    if index < 0:
        return UNKNOWN_COLOUR
    return CLASS_COLOURS[index] if index < len(CLASS_COLOURS) else ANOMALY_COLOUR


def _renderer(fig):
    canvas = fig.canvas
    if not hasattr(canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
    return canvas.get_renderer()


def printed_scale(fig, width: float = TEXT_WIDTH_INCHES) -> float:
    """How much `fig` is shrunk in the report: the saved image (tight bounding box plus padding) is shown at its
    own size, or at the text width when wider."""
    box = fig.get_tightbbox(_renderer(fig))
    return min(1.0, width / (box.width + 2 * PAD_INCHES))


def smallest_printed_font(fig, width: float = TEXT_WIDTH_INCHES) -> float:
    """The size in points, once printed, of the smallest visible text of `fig` (tick labels included)."""
    fig.draw_without_rendering()
    scale = printed_scale(fig, width)
    sizes = [text.get_fontsize() for text in fig.findobj(Text) if text.get_visible() and text.get_text().strip()]
    return scale * min(sizes) if sizes else float("inf")


def enforce_min_font(fig, min_points: float = MIN_PRINTED_POINTS, width: float = TEXT_WIDTH_INCHES) -> None:
    """Enlarge every text of `fig` that would print smaller than `min_points` once the figure is scaled to the
    report's text width (a figure 10 inches wide prints at 58 %, so its 8-point labels would print at 4.6).
    Larger texts can widen the figure's bounding box, so this repeats until nothing changes."""
    for _ in range(4):
        fig.draw_without_rendering()
        scale = printed_scale(fig, width)
        target = min_points / scale + 1e-6
        changed = False
        for text in fig.findobj(Text):
            if text.get_text().strip() and text.get_fontsize() < target - 1e-6:
                text.set_fontsize(target)
                changed = True
        for ax in fig.axes:  # tick labels are made when the figure is drawn: size them through their axis
            for axis in (ax.xaxis, ax.yaxis):
                ticks = axis.get_major_ticks()
                if ticks and ticks[0].label1.get_fontsize() < target - 1e-6:
                    axis.set_tick_params(which="both", labelsize=target)
                    changed = True
        if not changed:
            return


def save_figure(fig, path) -> None:
    """Save a figure as a PNG for the report, every text at least `MIN_PRINTED_POINTS` at print size."""
    enforce_min_font(fig)
    fig.savefig(path, dpi=150, bbox_inches="tight", pad_inches=PAD_INCHES)


def _legend_below(fig, axes, ncol: int, handles=None, labels=None, gap: float = 0.02, **kwargs):
    """One legend for the figure, below `axes` (one or several), outside every data area."""
    axes = list(np.ravel(axes))
    if handles is None:
        handles, labels = axes[0].get_legend_handles_labels()
    boxes = [ax.get_tightbbox(_renderer(fig)).transformed(fig.transFigure.inverted()) for ax in axes]
    left, right, bottom = min(b.x0 for b in boxes), max(b.x1 for b in boxes), min(b.y0 for b in boxes)
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=((left + right) / 2, bottom - gap),
                      ncol=ncol, frameon=False, **kwargs)


def image_rows(rows: list[np.ndarray], row_labels: list[str], col_titles: list[str] | None = None,
               cell: float = 0.5, cmap: str = IMAGE_CMAP, titles: list[list[str]] | None = None,
               notes: list[list[str]] | None = None):
    """One row of images per entry of `rows` (each (k, 1, 32, 32) or (k, 32, 32)), labelled on the left;
    `titles` gives a small title above each image and `notes` a small note below it (row by row)."""
    n_cols = max(len(row) for row in rows)
    height = cell * len(rows) * (1.9 if titles or notes else 1.0)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell * n_cols + 1.2, height), squeeze=False)
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
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and col_titles:
                ax.set_title(col_titles[c], fontsize=8)
            if titles and c < len(titles[r]):
                ax.set_title(titles[r][c], fontsize=8, pad=2)
            if notes and c < len(notes[r]):
                ax.set_xlabel(notes[r][c], fontsize=8, labelpad=2)
    fig.subplots_adjust(wspace=0.12, hspace=0.75 if titles or notes else 0.05)
    return fig


def image_columns(columns: list[np.ndarray], titles: list[str], cell: float = 0.8, cmap: str = IMAGE_CMAP):
    """One column of images per entry of `columns` (each (k, 1, 32, 32)), titled on top (words on two lines)."""
    n_rows = max(len(column) for column in columns)
    fig, axes = plt.subplots(n_rows, len(columns), figsize=(cell * len(columns), cell * n_rows + 0.45),
                             squeeze=False)
    for c, (images, title) in enumerate(zip(columns, titles)):
        for r in range(n_rows):
            ax = axes[r, c]
            ax.axis("off")
            if r < len(images):
                ax.imshow(np.asarray(images[r]).reshape(32, 32), cmap=cmap, vmin=0, vmax=255)
        axes[0, c].set_title(textwrap.fill(title, 9), fontsize=8)
    fig.subplots_adjust(wspace=0.08, hspace=0.08)
    return fig


def scatter_2d(ax, points: np.ndarray, groups: np.ndarray, names: list[str], title: str,
               xlabel: str, ylabel: str, highlight: int | None = None, legend: bool = True) -> None:
    """2-D map coloured by group (`class_colour`: group i is class i, -1 unknown); the `highlight` group (e.g.
    anomalies) is drawn on top, larger. The legend, if any, goes below the axes."""
    for index, name in [(-1, "unlabeled (class unknown)"), *enumerate(names)]:
        chosen = groups == index
        if not chosen.any():
            continue
        on_top = index == highlight
        ax.scatter(points[chosen, 0], points[chosen, 1], s=18 if on_top else 3, alpha=1.0 if on_top else 0.5,
                   c=class_colour(index), marker="x" if on_top else "o", label=name,
                   zorder=3 if on_top else 2, rasterized=True)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(markerscale=3 if highlight is None else 1.5, loc="upper center", bbox_to_anchor=(0.5, -0.18),
                  ncol=3, frameon=False)


# --------------------------------------------------------------------------- notebooks 03 and 04


def classification_curves(histories: dict[str, list[dict]]):
    """Validation loss (log scale) and accuracy against optimisation steps, one line per network."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 2.8))
    for i, (name, history) in enumerate(histories.items()):
        steps = [h["step"] for h in history]
        style = dict(marker=MARKERS[i % len(MARKERS)], ls=LINESTYLES[i % len(LINESTYLES)], ms=3, label=name)
        left.plot(steps, [h["val_loss"] for h in history], **style)
        right.plot(steps, [100 * h["val_accuracy"] for h in history], **style)
    left.set_xlabel("optimisation step")
    left.set_ylabel("validation cross entropy (nats)")
    left.set_yscale("log")
    right.set_xlabel("optimisation step")
    right.set_ylabel("validation accuracy (%)")
    right.set_ylim(max(50, right.get_ylim()[0]), 100)
    fig.tight_layout()
    _legend_below(fig, [left, right], ncol=2)
    return fig


def confusion(counts: np.ndarray, names=None, figsize=(4.6, 3.7)):
    """Confusion matrix as % of each true class (rows: true, columns: predicted)."""
    import seaborn as sns

    from lib.data import CLASS_NAMES

    names = list(names or CLASS_NAMES)
    share = 100 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=figsize)
    sns.heatmap(share, annot=True, fmt=".1f", cmap="Blues", xticklabels=names, yticklabels=names, ax=ax,
                cbar_kws={"label": "% of true class"}, vmin=0, vmax=100, annot_kws={"fontsize": 8})
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    return fig


def calibration(diagram: dict, ece: float):
    """Reliability diagram (left) and images per confidence bin (right, log scale)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 2.8))
    centres = (diagram["edges"][:-1] + diagram["edges"][1:]) / 2
    filled = diagram["count"] > 0
    left.bar(centres[filled], 100 * diagram["accuracy"][filled], width=1 / len(centres), edgecolor="k",
             alpha=0.7, label="accuracy in the bin")
    left.plot([0, 1], [0, 100], "k--", label="perfect calibration")
    left.set_xlabel("confidence (max probability)")
    left.set_ylabel("accuracy (%)")
    left.set_title(f"expected calibration error {100 * ece:.2f} %")
    right.bar(centres, diagram["count"], width=1 / len(centres), edgecolor="k")
    right.set_yscale("log")
    right.set_xlabel("confidence (max probability)")
    right.set_ylabel("images (log scale)")
    fig.tight_layout()
    _legend_below(fig, left, ncol=2)
    return fig


def label_efficiency(curve):
    """Accuracy (%) against labeled training images (log scale), one line per method."""
    budgets = sorted(curve["labels"].unique())
    fig, ax = plt.subplots(figsize=(5.2, 2.9))
    for i, (method, rows) in enumerate(curve.groupby("method", sort=False)):
        mean = rows.groupby("labels")["accuracy"].mean()
        ax.plot(mean.index, mean.to_numpy(), marker=MARKERS[i % len(MARKERS)], ls=LINESTYLES[i % len(LINESTYLES)],
                ms=4, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("labeled training images (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets])
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _legend_below(fig, ax, ncol=2, title="method")
    return fig


def score_histograms(ax, scores: np.ndarray, is_anomaly: np.ndarray, threshold: float, label: str,
                     log: bool = False, legend: bool = True) -> None:
    """Densities of an anomaly score for clean images and anomalies, with the threshold dashed; `log`: a
    symmetric log axis (linear within ±1), for scores whose anomalies reach hundreds of standard deviations.
    The legend goes above the axes, outside the data."""
    if log:  # bins equally spaced on the symmetric log axis
        squash = np.sign(scores) * np.log1p(np.abs(scores))
        grid = np.linspace(squash.min(), squash.max(), 41)
        bins = np.sign(grid) * np.expm1(np.abs(grid))
    else:
        bins = 40
    ax.hist(scores[~is_anomaly], bins=bins, alpha=0.6, label="clean", density=True, color=CLEAN_COLOUR)
    ax.hist(scores[is_anomaly], bins=bins, alpha=0.6, label="anomaly", density=True, color=ANOMALY_COLOUR)
    ax.axvline(threshold, color="k", ls="--", lw=1.2, label="threshold (set 1)")
    if log:
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel(f"anomaly score (standardised units):\n{label}")
    ax.set_ylabel("density (per score unit)")
    if legend:
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.01), ncol=3, frameon=False, handlelength=1.5,
                  columnspacing=1.0)


def end_to_end(scores: np.ndarray, is_anomaly: np.ndarray, threshold: float, score_label: str,
               counts: np.ndarray, log: bool = False):
    """Left: the score's densities with the set-1 threshold; right: six-class confusion (% of the row)."""
    import seaborn as sns

    from lib.data import CLASS_NAMES

    fig, (left, right) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 3.1),
                                      gridspec_kw={"width_ratios": [1, 1.15], "wspace": 0.55})
    score_histograms(left, scores, is_anomaly, threshold, score_label, log)
    names = list(CLASS_NAMES) + ["anomaly"]
    sns.heatmap(100 * counts / np.maximum(counts.sum(1, keepdims=True), 1), annot=True, fmt=".1f", cmap="Blues",
                xticklabels=names, yticklabels=names, ax=right, vmin=0, vmax=100,
                cbar_kws={"label": "% of true class"}, annot_kws={"fontsize": 7.5})
    right.set_xlabel("predicted class")
    right.set_ylabel("true class")
    return fig


# --------------------------------------------------------------------------- pretraining (notebook 02)


def plot_views(images, cfg, n_views: int = 7, seed: int = 0, row_titles: list[str] | None = None):
    """Each image (uint8 or float) beside `n_views` random views of it (`lib.nn.augment`): one row per image."""
    import torch

    from lib.nn.augment import augment, seeded_generator, to_float

    x = to_float(torch.as_tensor(np.asarray(images)))
    g = seeded_generator(seed, 0)
    views = [augment(x, cfg, g) for _ in range(n_views)]
    cell = 0.6
    fig, axes = plt.subplots(len(x), n_views + 1, figsize=(cell * (n_views + 1) + 0.9, cell * len(x)), squeeze=False)
    for r in range(len(x)):
        for c, image in enumerate([x[r], *(v[r] for v in views)]):
            ax = axes[r, c]
            ax.imshow(image[0].numpy(), cmap=IMAGE_CMAP, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        if row_titles:
            axes[r, 0].set_ylabel(row_titles[r], rotation=0, ha="right", va="center", fontsize=8)
    axes[0, 0].set_title("original", fontsize=8)
    for c in range(1, n_views + 1):
        axes[0, c].set_title(f"view {c}", fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.08)
    return fig


def plot_histories(histories: dict[str, list[dict]], panels: list[tuple], figsize=(FIGURE_WIDTH, 2.6)):
    """Training curves: one panel per (title, model names, y label, log scale[, history key]); x = epoch.

    The history key defaults to "loss" (the total training loss). Curves differ by colour, marker and line
    style; a panel with several curves has its legend below it.
    """
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for ax, (title, names, ylabel, log, *rest) in zip(axes[0], panels):
        key = rest[0] if rest else "loss"
        for i, name in enumerate(names):
            h = histories[name]
            ax.plot([r["epoch"] for r in h], [r[key] for r in h], marker=MARKERS[i % len(MARKERS)],
                    ls=LINESTYLES[i % len(LINESTYLES)], ms=3, label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    for ax, (_, names, *_) in zip(axes[0], panels):
        if len(names) > 1:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    return fig


def _imshow_row(axes, images, title=None, fontsize=8):
    for ax, image in zip(axes, images):
        ax.imshow(np.asarray(image).reshape(32, 32), cmap=IMAGE_CMAP, vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        axes[0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=fontsize)


def plot_image_rows(rows: dict[str, np.ndarray], column_titles: list[str] | None = None, figsize=None):
    """A grid of 32x32 images in [0, 1] (black background): one labelled row per entry."""
    n_cols = max(len(v) for v in rows.values())
    figsize = figsize or (1.2 + 0.55 * n_cols, 0.6 * len(rows))
    fig, axes = plt.subplots(len(rows), n_cols, figsize=figsize, squeeze=False)
    for ax_row, (title, images) in zip(axes, rows.items()):
        _imshow_row(ax_row, images, title)
    if column_titles:
        for ax, text in zip(axes[0], column_titles):
            ax.set_title(text, fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.08)
    return fig


def plot_embedding_maps(maps: dict[str, np.ndarray], colours: np.ndarray, class_names, ncols: int | None = None,
                        figsize=(FIGURE_WIDTH, 3.3), legend_title: str = "true class"):
    """Scatter of 2-d maps (e.g. UMAP) side by side, points coloured by class (`CLASS_COLOURS`)."""
    ncols = ncols or len(maps)
    nrows = -(-len(maps) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for ax, (title, xy) in zip(axes.flat, maps.items()):
        for c, name in enumerate(class_names):
            sel = colours == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=2, color=class_colour(c), label=name, rasterized=True, alpha=0.7)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP 1 (no unit)", fontsize=8)
        ax.set_ylabel("UMAP 2 (no unit)", fontsize=8)
    for ax in list(axes.flat)[len(maps):]:
        ax.axis("off")
    fig.tight_layout()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    _legend_below(fig, axes.flat[:len(maps)], ncol=len(class_names), handles=handles, labels=labels, markerscale=4,
                  title=legend_title, columnspacing=1.0, handletextpad=0.2)
    return fig


def _label_points(ax, x, y, labels, always, min_distance: float = 11.0, offset=(4, 4)) -> None:
    """Write `labels` beside the points (x, y), in points, leaving out a label whose point lies within
    `min_distance` points of one already labelled; the indices in `always` are labelled first."""
    fig = ax.figure
    to_points = 72 / fig.dpi
    xy = ax.transData.transform(np.column_stack([x, y])) * to_points
    placed = []
    order = list(always) + [i for i in range(len(labels)) if i not in always]
    for i in order:
        if any(np.hypot(*(xy[i] - xy[j])) < min_distance for j in placed):
            continue
        placed.append(i)
        ax.annotate(str(labels[i]), (x[i], y[i]), textcoords="offset points", xytext=offset, fontsize=8,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))


def plot_checkpoint_tradeoff(errors: np.ndarray, accuracies: np.ndarray, epochs: list[int], title: str,
                             accuracy_label: str, zoom_from: int = 2, figsize=(FIGURE_WIDTH, 2.9)):
    """Reconstruction error (x) against downstream accuracy (y, fractions shown in %) per checkpoint.

    Left: every checkpoint (log x); right: the checkpoints from epoch `zoom_from` on, linear axes. Colour gives
    every point's epoch; the number beside a point is its epoch, left out where points crowd (the first and
    last epochs are always labelled).
    """
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

    errors, accuracies, epochs = np.asarray(errors), 100 * np.asarray(accuracies), np.asarray(epochs)
    fig, axes = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1, 1.15]})
    late = epochs >= zoom_from
    shown = []
    for ax, keep, log in ((axes[0], np.ones_like(late, dtype=bool), True), (axes[1], late, False)):
        ax.plot(errors[keep], accuracies[keep], "-", color="0.7", zorder=1)
        points = ax.scatter(errors[keep], accuracies[keep], c=epochs[keep], cmap="viridis", s=24, zorder=2,
                            vmin=epochs.min(), vmax=epochs.max())
        shown.append(keep)
        if log:  # ticks written plainly: at 1, 2 and 5 times powers of ten over a wide range, else three
            ax.set_xscale("log")
            wide = errors[keep].max() >= 4 * errors[keep].min()
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)) if wide else MaxNLocator(3))
            ax.xaxis.set_major_formatter(FormatStrFormatter("%g" if wide else "%.3g"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:  # few ticks: long decimal labels would run into each other
            ax.xaxis.set_major_locator(MaxNLocator(3))
        ax.set_xlabel("reconstruction error\n(MSE per pixel, intensity in [0, 1])")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(accuracy_label)
    axes[0].set_title(f"{title}: all checkpoints")
    axes[1].set_title(f"zoom on epochs {zoom_from} to {epochs.max()}")
    fig.colorbar(points, ax=axes[1], label="epoch")
    fig.tight_layout()
    for ax, keep in zip(axes, shown):  # labels once the layout is fixed: their distances are final
        index = np.flatnonzero(keep)
        ends = [0, len(index) - 1] if len(index) > 1 else [0]
        _label_points(ax, errors[index], accuracies[index], epochs[index], always=ends)
    return fig


# --------------------------------------------------------------------------- notebook 01: the data


def class_mean_std(images: np.ndarray, labels: np.ndarray, class_names):
    """Per class, the mean (top row) and standard deviation (bottom row) of the images, grey levels 0-255."""
    fig, axes = plt.subplots(2, len(class_names), figsize=(1.1 * len(class_names) + 0.9, 2.9))
    for c, name in enumerate(class_names):
        chosen = images[labels == c][:, 0].astype(np.float32)
        for row, (image, what, top) in enumerate(((chosen.mean(0), "mean", 255), (chosen.std(0), "std", 128))):
            shown = axes[row, c].imshow(image, cmap=IMAGE_CMAP, vmin=0, vmax=top)
            axes[row, c].set_xticks([])
            axes[row, c].set_yticks([])
            axes[row, c].set_title(f"{name}\n{what}", fontsize=8)
            if c == len(class_names) - 1:
                fig.colorbar(shown, ax=axes[row, :], fraction=0.03, pad=0.02, label="grey level")
    return fig


def pixel_histograms(normal: np.ndarray, anomalies: np.ndarray, ink: np.ndarray, ink_class: np.ndarray,
                     class_names):
    """Left: grey-level densities of normal and anomalous images (log scale). Right: ink per image by class
    (`ink_class` holds each image's class name), each class in its colour."""
    import seaborn as sns

    fig, (left, right) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 2.8))
    bins = np.arange(0, 257, 8)
    left.hist(np.ravel(normal), bins=bins, density=True, alpha=0.6, label="normal", color=CLEAN_COLOUR)
    left.hist(np.ravel(anomalies), bins=bins, density=True, alpha=0.6, label="anomalies", color=ANOMALY_COLOUR)
    left.set_yscale("log")
    left.set_xlabel("grey level (0-255)")
    left.set_ylabel("density (per grey level, log)")
    left.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    order = list(class_names)
    sns.boxplot(x=ink_class, y=ink, ax=right, order=order, hue=ink_class, hue_order=order,
                palette=dict(zip(order, CLASS_COLOURS)), fliersize=2, legend=False)
    right.set_xlabel("class")
    right.set_ylabel("ink per image (sum of grey levels / 255)")
    right.tick_params(axis="x", labelrotation=20)
    fig.tight_layout()
    return fig


def pixel_maps(pca_xy: np.ndarray, umap_xy: np.ndarray, groups: np.ndarray, names: list[str], highlight: int):
    """PCA (left) and UMAP (right) of raw pixels side by side; one legend, below both."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 3.2))
    scatter_2d(left, pca_xy, groups, names, "PCA of raw pixels", "PC 1 (intensity in [0, 1])",
               "PC 2 (intensity in [0, 1])", highlight, legend=False)
    scatter_2d(right, umap_xy, groups, names, "UMAP of raw pixels", "UMAP 1 (no unit)", "UMAP 2 (no unit)",
               highlight, legend=False)
    fig.tight_layout()
    _legend_below(fig, [left, right], ncol=4, markerscale=2, columnspacing=1.0, handletextpad=0.2)
    return fig


# --------------------------------------------------------------------------- notebook 05: transfer learning


def errorbars(ax, x, results: list[dict], scale: float = 1.0, **style) -> None:
    """Points {"value", "ci": [low, high]} at `x` with their intervals, values multiplied by `scale`."""
    value = np.array([scale * r["value"] for r in results])
    ci = np.array([[scale * c for c in r["ci"]] for r in results])
    style = {"marker": "o", "ms": 4, **style}
    ax.errorbar(x, value, yerr=[value - ci[:, 0], ci[:, 1] - value], capsize=2.5, **style)


def _budget_axis(ax, budgets, rotation: float = 0) -> None:
    ax.set_xscale("log")
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets], rotation=rotation)
    ax.minorticks_off()
    ax.set_xlabel("labeled training images\n(log scale)")
    ax.grid(alpha=0.3)
    low, high = min(budgets), max(budgets)
    ax.set_xlim(low / (high / low) ** 0.12, high * (high / low) ** 0.12)


def _source_styles(keys, colors: dict[str, str]) -> dict[str, dict]:
    """Per source, its colour, marker and line style (the order of `keys`), so overlapping curves stay apart."""
    return {k: dict(color=colors[k], marker=MARKERS[i % len(MARKERS)], ls=LINESTYLES[i % len(LINESTYLES)])
            for i, k in enumerate(keys)}


def _dodged(budgets, i: int, n: int, spread: float = 0.09) -> np.ndarray:
    """The budgets moved sideways on the log axis for curve `i` of `n`, so intervals at one budget don't hide
    each other."""
    offsets = np.linspace(-spread, spread, n) if n > 1 else [0.0]
    return np.asarray(budgets, dtype=float) * 10 ** offsets[i]


def transfer_accuracy(budgets: list[int], frozen: dict[str, list[dict]], tuned: dict[str, list[dict]],
                      gain: dict[str, list[dict]], names: dict[str, str], colors: dict[str, str]):
    """Three panels against the label budget (one curve per source, results {"value", "ci"} per budget):
    accuracy of a linear head on the frozen encoder, accuracy fine-tuned, fine-tuned minus from scratch
    (`gain`, pretrained sources only), in %. Sources differ by colour, marker and line style, and sit side by
    side at each budget; the legend is below the panels."""
    fig, (frozen_ax, tuned_ax, gain_ax) = plt.subplots(1, 3, figsize=(FIGURE_WIDTH, 2.9))
    keys = [k for k in names if k in frozen or k in tuned] + [k for k in frozen if k not in names]
    styles = _source_styles(keys, colors)
    for i, k in enumerate(keys):
        x = _dodged(budgets, i, len(keys))
        if k in frozen:
            errorbars(frozen_ax, x, frozen[k], 100, label=names.get(k, k), **styles[k])
        if k in tuned:
            errorbars(tuned_ax, x, tuned[k], 100, **({} if k in frozen else {"label": names.get(k, k)}),
                      **styles[k])
        if k in gain:
            errorbars(gain_ax, x, gain[k], 100, **styles[k])
    gain_ax.axhline(0, color="k", lw=0.8)
    low = min(100 * r["ci"][0] for results in (*frozen.values(), *tuned.values()) for r in results)
    for ax, title in ((frozen_ax, "frozen encoder\n+ linear head"), (tuned_ax, "fine-tuned"),
                      (gain_ax, "fine-tuned minus\nfrom scratch")):
        _budget_axis(ax, budgets, rotation=45)
        ax.set_title(title)
    for ax in (frozen_ax, tuned_ax):
        ax.set_ylim(np.floor(low / 5) * 5, 100)
        ax.set_ylabel("accuracy (%)")
    gain_ax.set_ylabel("difference (percentage points)")
    fig.tight_layout(w_pad=1.2)
    handles, labels = [], []
    for ax in (frozen_ax, tuned_ax):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    _legend_below(fig, [frozen_ax, tuned_ax, gain_ax], ncol=2, handles=handles, labels=labels)
    return fig


def transfer_ood(budgets: list[int], by_budget: dict[str, list[dict]], by_kind: dict[str, list[dict]],
                 kinds: list[str], names: dict[str, str], colors: dict[str, str]):
    """Left: ROC AUC (all anomalies) against the label budget, one curve per source. Right: with the largest
    budget, ROC AUC per kind of anomaly (`by_kind[source]`, one result per entry of `kinds`). Both panels share
    one legend, below them: each source has its colour and marker in both."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(FIGURE_WIDTH, 2.9), gridspec_kw={"width_ratios": [1, 1.1]})
    keys = [k for k in names if k in by_budget or k in by_kind]
    keys += [k for k in (*by_budget, *by_kind) if k not in keys]
    styles = _source_styles(keys, colors)
    for i, k in enumerate(keys):
        if k in by_budget:
            errorbars(left, _dodged(budgets, i, len(keys)), by_budget[k], label=names.get(k, k), **styles[k])
    _budget_axis(left, budgets)
    left.set_ylabel("ROC AUC, all anomalies of set 1")
    left.set_title("all anomalies")
    in_right = [k for k in keys if k in by_kind]
    for offset, k in zip(np.linspace(-0.3, 0.3, len(in_right)), in_right):
        errorbars(right, np.arange(len(kinds)) + offset, by_kind[k], label=names.get(k, k),
                  **{**styles[k], "ls": "none"})
    right.set_xticks(range(len(kinds)), [f"{kind}\nanomalies" for kind in kinds])
    right.set_xlim(-0.5, len(kinds) - 0.5)
    right.set_xlabel("kind of anomaly")
    right.set_ylabel(f"ROC AUC ({budgets[-1]:,} labels)")
    right.set_title(f"by kind, {budgets[-1]:,} labels")
    right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    handles, labels = [], []
    for ax in (left, right):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    _legend_below(fig, [left, right], ncol=2, handles=handles, labels=labels, title="pretraining source")
    return fig


def model_diagram(widths: tuple[int, ...] = (32, 32, 64, 64, 128, 128), description_dim: int = 10):
    """The project's model as boxes and arrows: backbone stages, the three heads, and the six parts of the
    anomaly score. Solid arrows: the forward pass; dotted: the gradient stopped (before the decoder); dashed
    (brown): the evidence the anomaly score can sum. Widths come from the configuration. Drawn at the report's
    text width, so its 8-point texts print at 8 points."""
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 57)
    ax.axis("off")
    evidence = "#a6530a"  # the anomaly score's colour: its box edge and the dashed arrows into it

    def box(x, y, text, colour="#dde8f4", w=14, h=7, edge="#333333"):
        ax.add_patch(plt.Rectangle((x - w / 2, y - h / 2), w, h, facecolor=colour, edgecolor=edge, lw=1.0))
        ax.text(x, y, text, ha="center", va="center", fontsize=8, linespacing=1.25)

    def arrow(x0, y0, x1, y1, ls="-", colour="#111111"):  # the line in its style, the head always solid
        ax.plot([x0, x1], [y0, y1], color=colour, lw=1.4, ls=ls, solid_capstyle="butt")
        ax.annotate("", xy=(x1, y1), xytext=(x1 - 0.01 * (x1 - x0), y1 - 0.01 * (y1 - y0)), arrowprops=dict(
            arrowstyle="-|>", mutation_scale=11, lw=1.4, color=colour, shrinkA=0, shrinkB=0))

    def convs(a, b):
        return f"2 convs × {a}" if a == b else f"2 convs, {a}-{b}"

    top, row_h = 49, 8  # the backbone
    box(5.5, top, "image\n1×32×32", "#eeeeee", w=11, h=row_h)
    centres = [25.5, 49.5, 73.5]
    for i, x in enumerate(centres):
        size = 32 >> i
        resolution = f"{size}×{size} → {size // 2}×{size // 2}"
        box(x, top, f"stage {i + 1}\n{convs(widths[2 * i], widths[2 * i + 1])}\n{resolution}",
            w=19, h=row_h)
        arrow(11 if i == 0 else centres[i - 1] + 9.5, top, x - 9.5, top)
    box(94, top, f"pooled\n{widths[-1]}-d", w=12, h=row_h)
    arrow(centres[-1] + 9.5, top, 88, top)
    low = top - row_h / 2
    # the heads, under the pooled features
    box(78, 34, f"description\nz, {description_dim}-d\n+ 5-class head", "#e3f1e0", w=17, h=8)
    box(93.5, 34, "classifier\n5 logits", "#e3f1e0", w=12, h=8)
    box(78, 19.5, "decoder\nz → 32×32", "#e3f1e0", w=14, h=7)
    arrow(89, low, 84, 38)
    arrow(94, low, 94, 38)
    arrow(78, 30, 78, 23, ls=":")  # the decoder sees z with the gradient stopped
    # the anomaly score and its evidence
    box(50, 5.5, "anomaly score: sum of standardised parts chosen on set 1\n"
                 "Mahalanobis on stages 1-3 and on z  |  kNN, stage 3\n"
                 "energy  |  reconstruction  |  frame", "#f8e5d6", w=98, h=10, edge=evidence)
    for x in (5.5, 25.5, 49.5, 66):
        arrow(x, low, x, 10.5, ls="--", colour=evidence)
    arrow(85.5, 30, 90, 10.5, ls="--", colour=evidence)
    arrow(78, 16, 78, 10.5, ls="--", colour=evidence)
    key = [Line2D([], [], color="#111111", lw=1.4, ls="-"), Line2D([], [], color="#111111", lw=1.4, ls=":"),
           Line2D([], [], color=evidence, lw=1.4, ls="--")]
    ax.legend(key, ["forward pass", "gradient stopped (into the decoder)", "evidence for the anomaly score"],
              loc="lower center", bbox_to_anchor=(0.5, 0.97), ncol=3, frameon=False, fontsize=8, handlelength=2.2,
              columnspacing=1.0, handletextpad=0.4)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92)
    return fig


def detection_curves(scores: dict[str, np.ndarray], is_anomaly: np.ndarray, threshold_sets: dict[str, tuple],
                     threshold: float):
    """Left: ROC curves, middle: precision-recall curves of several scores on one set (the first is ours, thick
    and black); right: recall and false-positive rate of our score against its threshold on each set of
    `threshold_sets` {label: (scores, is_anomaly)}, with the threshold fixed on set 1 (dotted). The right panel's
    colours (recall teal, false-positive rate magenta) appear in no other panel; legends are below the panels."""
    from lib.eval.metrics import detection_curves

    recall_colour, fpr_colour = "#00897b", "#c2185b"
    score_colours = ["black", PALETTE[1], PALETTE[0], PALETTE[3], PALETTE[4], PALETTE[2]]
    fig, (roc, pr, rates) = plt.subplots(1, 3, figsize=(FIGURE_WIDTH, 2.5))
    for i, (name, values) in enumerate(scores.items()):
        curves = detection_curves(values, is_anomaly)
        style = dict(color=score_colours[i % len(score_colours)], lw=2.0 if i == 0 else 1.2,
                     ls=LINESTYLES[i % len(LINESTYLES)])
        roc.plot(curves["fpr"], curves["tpr"], label=name, **style)
        pr.plot(curves["recall"], curves["precision"], **style)
    roc.plot([0, 1], [0, 1], color="#aaaaaa", lw=0.6, ls=":")
    roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC, set 2")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall, set 2", ylim=(0, 1.02))
    # thresholds from the bulk of the clean images to well past the fixed one: where the rates change
    clean = np.concatenate([values[~flags] for values, flags in threshold_sets.values()])
    grid = np.linspace(np.quantile(clean, 0.5), max(2 * threshold, np.quantile(clean, 0.999)), 200)
    for (label, (values, flags)), ls in zip(threshold_sets.items(), ("--", "-")):
        rates.plot(grid, [(values[flags] > t).mean() for t in grid], color=recall_colour, ls=ls, lw=1.4,
                   label=f"recall, {label}")
        rates.plot(grid, [(values[~flags] > t).mean() for t in grid], color=fpr_colour, ls=ls, lw=1.4,
                   label=f"false-positive rate, {label}")
    rates.axvline(threshold, color="black", lw=1.0, ls=":", label="threshold fixed on set 1")
    rates.set(xlabel="threshold\n(anomaly score, standardised)", ylabel="rate", title="our score's threshold")
    fig.tight_layout(w_pad=0.8)
    _legend_below(fig, [roc, pr], ncol=1, title="score (ROC and precision-recall)")
    _legend_below(fig, rates, ncol=1, title="our score")
    return fig


def description_meaning(class_means: np.ndarray, decoded: np.ndarray, class_names):
    """What the ten coordinates mean: left, the mean of each coordinate per class (standardised over all
    images); right, the decoder's image at each class mean."""
    fig = plt.figure(figsize=(FIGURE_WIDTH, 2.5))
    heat = fig.add_axes([0.14, 0.24, 0.3, 0.62])
    top = np.abs(class_means).max()
    image = heat.imshow(class_means, cmap="RdBu_r", vmin=-top, vmax=top, aspect="auto")
    heat.set(xticks=range(class_means.shape[1]), xticklabels=[f"z{i}" for i in range(class_means.shape[1])],
             yticks=range(len(class_names)), yticklabels=class_names, xlabel="coordinate of the description",
             title="class mean of each coordinate")
    fig.colorbar(image, ax=heat, fraction=0.05, pad=0.02, label="standard deviations")
    for i, name in enumerate(class_names):
        ax = fig.add_axes([0.575 + i * 0.085, 0.3, 0.08, 0.5])
        ax.imshow(decoded[i, 0], cmap=IMAGE_CMAP, vmin=0, vmax=1)
        ax.set_title(name.replace(" ", "\n"), fontsize=8)
        ax.axis("off")
    fig.text(0.575 + 2.5 * 0.085 - 0.0025, 0.2, "decoded class means", ha="center", fontsize=8)
    return fig


def learning_curves(curves: dict[str, list[dict]], titles: dict[str, str], xlabels: dict[str, str],
                    set_names: dict[str, str]):
    """Accuracy (%) against passes, one panel per arm (in the order of `titles`), one colour per evaluation set,
    one line per seed."""
    fig, axes = plt.subplots(1, len(titles), figsize=(4.2 * len(titles), 3.3), squeeze=False)
    for ax, arm in zip(axes[0], titles):
        rows = curves[arm]
        for colour, (name, label) in zip(("C0", "C1"), set_names.items()):
            for i, seed in enumerate(sorted({r["seed"] for r in rows})):
                points = [r for r in rows if r["seed"] == seed and name in r]
                ax.plot([r["epoch"] for r in points], [100 * r[name] for r in points], "o-", ms=2.5, lw=1,
                        color=colour, alpha=0.8, label=label if i == 0 else None)
        ax.set_title(titles[arm], fontsize=9)
        ax.set_xlabel(xlabels[arm], fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        values = [100 * r[name] for r in rows for name in set_names if name in r]
        if values:  # an arm trained from scratch climbs from chance: shown from 90 %; one that continues: its range
            low = min(values) - 0.3 if min(r["epoch"] for r in rows) == 0 else max(min(values) - 0.5, 90)
            ax.set_ylim(low, min(max(values) + 0.3, 100))
        ax.set_ylabel("accuracy (%)", fontsize=8)
    fig.legend(*axes[0][-1].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # the legend below the panels, off the data
    return fig
