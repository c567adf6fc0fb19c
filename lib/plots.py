"""Figure helpers shared by the notebooks: image grids and 2-D maps, sized for the report."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

plt.rcParams.update({"font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "figure.dpi": 100})
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#d62728"]
# One colormap for every image: as the data is stored, light articles on a black background, so an
# inverted anomaly looks inverted.
IMAGE_CMAP = "gray"


TEXT_WIDTH_INCHES = 6.3  # the report's text width (A4, Typst's default margins): wider figures are scaled down
MIN_PRINTED_POINTS = 7.0


def enforce_min_font(fig, min_points: float = MIN_PRINTED_POINTS, width: float = TEXT_WIDTH_INCHES) -> None:
    """Enlarge every text of `fig` that would print smaller than `min_points` once the figure is scaled to the
    report's text width (a figure 10 inches wide prints at 63 %, so its 8-point labels would print at 5)."""
    scale = min(1.0, width / fig.get_figwidth())
    for text in fig.findobj(lambda artist: hasattr(artist, "get_fontsize") and hasattr(artist, "set_fontsize")):
        if text.get_fontsize() * scale < min_points:
            text.set_fontsize(min_points / scale)
    for ax in fig.axes:  # tick labels are made when the figure is drawn: size them through their axis
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_major_ticks()
            if ticks and ticks[0].label1.get_fontsize() * scale < min_points:
                axis.set_tick_params(which="both", labelsize=min_points / scale)


def save_figure(fig, path) -> None:
    """Save a figure as a PNG for the report, every text at least `MIN_PRINTED_POINTS` at print size."""
    enforce_min_font(fig)
    fig.savefig(path, dpi=150, bbox_inches="tight")


def image_rows(rows: list[np.ndarray], row_labels: list[str], col_titles: list[str] | None = None,
               cell: float = 0.9, cmap: str = IMAGE_CMAP, titles: list[list[str]] | None = None,
               notes: list[list[str]] | None = None):
    """One row of images per entry of `rows` (each (k, 1, 32, 32) or (k, 32, 32)), labelled on the left;
    `titles` gives a small title above each image and `notes` a small note below it (row by row)."""
    n_cols = max(len(row) for row in rows)
    height = cell * len(rows) * (1.8 if titles or notes else 1.0)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(cell * n_cols + 1.4, height), squeeze=False)
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
        axes[0, c].set_title(textwrap.fill(title, 9), fontsize=9)
    fig.subplots_adjust(wspace=0.08, hspace=0.08)
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


# --------------------------------------------------------------------------- notebooks 03 and 04


def classification_curves(histories: dict[str, list[dict]]):
    """Validation loss (log scale) and accuracy against optimisation steps, one line per network."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, history in histories.items():
        steps = [h["step"] for h in history]
        left.plot(steps, [h["val_loss"] for h in history], marker="o", ms=3, label=name)
        right.plot(steps, [100 * h["val_accuracy"] for h in history], marker="o", ms=3)
    left.set_xlabel("optimisation step")
    left.set_ylabel("validation cross entropy (nats)")
    left.set_yscale("log")
    right.set_xlabel("optimisation step")
    right.set_ylabel("validation accuracy (%)")
    right.set_ylim(max(50, right.get_ylim()[0]), 100)
    left.legend(fontsize=8)
    fig.tight_layout()
    return fig


def confusion(counts: np.ndarray, names=None, figsize=(5.8, 4.6)):
    """Confusion matrix as % of each true class (rows: true, columns: predicted)."""
    import seaborn as sns

    from lib.data import CLASS_NAMES

    names = list(names or CLASS_NAMES)
    share = 100 * counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=figsize)
    sns.heatmap(share, annot=True, fmt=".1f", cmap="Blues", xticklabels=names, yticklabels=names, ax=ax,
                cbar_kws={"label": "% of true class"}, vmin=0, vmax=100, annot_kws={"fontsize": 9})
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    return fig


def calibration(diagram: dict, ece: float):
    """Reliability diagram (left) and images per confidence bin (right, log scale)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    centres = (diagram["edges"][:-1] + diagram["edges"][1:]) / 2
    filled = diagram["count"] > 0
    left.bar(centres[filled], diagram["accuracy"][filled], width=1 / len(centres), edgecolor="k", alpha=0.7,
             label="accuracy")
    left.plot([0, 1], [0, 1], "k--", label="perfect calibration")
    left.set_xlabel("confidence (max probability)")
    left.set_ylabel("accuracy")
    left.legend(fontsize=8)
    left.set_title(f"expected calibration error {100 * ece:.2f} %")
    right.bar(centres, diagram["count"], width=1 / len(centres), edgecolor="k")
    right.set_yscale("log")
    right.set_xlabel("confidence (max probability)")
    right.set_ylabel("images (log scale)")
    fig.tight_layout()
    return fig


def label_efficiency(curve):
    """Accuracy (%) against labeled training images (log scale), one line per method."""
    import seaborn as sns

    budgets = sorted(curve["labels"].unique())
    fig, ax = plt.subplots(figsize=(7, 3.8))
    sns.lineplot(data=curve, x="labels", y="accuracy", hue="method", marker="o", ax=ax)
    ax.set_xscale("log")
    ax.set_xlabel("labeled training images (log scale)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.minorticks_off()
    return fig


def score_histograms(ax, scores: np.ndarray, is_anomaly: np.ndarray, threshold: float, label: str,
                     log: bool = False) -> None:
    """Densities of an anomaly score for clean images and anomalies, with the threshold dashed; `log`: a
    symmetric log axis (linear within ±1), for scores whose anomalies reach hundreds of standard deviations."""
    if log:  # bins equally spaced on the symmetric log axis
        squash = np.sign(scores) * np.log1p(np.abs(scores))
        grid = np.linspace(squash.min(), squash.max(), 41)
        bins = np.sign(grid) * np.expm1(np.abs(grid))
    else:
        bins = 40
    ax.hist(scores[~is_anomaly], bins=bins, alpha=0.6, label="clean", density=True)
    ax.hist(scores[is_anomaly], bins=bins, alpha=0.6, label="anomaly", density=True)
    ax.axvline(threshold, color="k", ls="--", label="threshold (set 1)")
    if log:
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel(f"anomaly score: {label}")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)


def end_to_end(scores: np.ndarray, is_anomaly: np.ndarray, threshold: float, score_label: str,
               counts: np.ndarray, log: bool = False):
    """Left: the score's densities with the set-1 threshold; right: six-class confusion (% of the row)."""
    import seaborn as sns

    from lib.data import CLASS_NAMES

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.1], "wspace": 0.4})
    score_histograms(left, scores, is_anomaly, threshold, score_label, log)
    names = list(CLASS_NAMES) + ["anomaly"]
    sns.heatmap(100 * counts / np.maximum(counts.sum(1, keepdims=True), 1), annot=True, fmt=".1f", cmap="Blues",
                xticklabels=names, yticklabels=names, ax=right, vmin=0, vmax=100,
                cbar_kws={"label": "% of true class"})
    right.set_xlabel("predicted")
    right.set_ylabel("true")
    return fig


# --------------------------------------------------------------------------- pretraining (notebook 02)


def plot_views(images, cfg, n_views: int = 7, seed: int = 0, row_titles: list[str] | None = None):
    """Each image (uint8 or float) beside `n_views` random views of it (`lib.nn.augment`): one row per image."""
    import torch

    from lib.nn.augment import augment, seeded_generator, to_float

    x = to_float(torch.as_tensor(np.asarray(images)))
    g = seeded_generator(seed, 0)
    views = [augment(x, cfg, g) for _ in range(n_views)]
    fig, axes = plt.subplots(len(x), n_views + 1, figsize=(1.0 * (n_views + 1) + 0.8, 1.0 * len(x)), squeeze=False)
    for r in range(len(x)):
        for c, image in enumerate([x[r], *(v[r] for v in views)]):
            ax = axes[r, c]
            ax.imshow(image[0].numpy(), cmap=IMAGE_CMAP, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        if row_titles:
            axes[r, 0].set_ylabel(row_titles[r], rotation=0, ha="right", va="center", fontsize=9)
    axes[0, 0].set_title("original", fontsize=9)
    for c in range(1, n_views + 1):
        axes[0, c].set_title(f"view {c}", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.08)
    return fig


def plot_histories(histories: dict[str, list[dict]], panels: list[tuple], figsize=(10, 3.6)):
    """Training curves: one panel per (title, model names, y label, log scale[, history key]); x = epoch.

    The history key defaults to "loss" (the total training loss).
    """
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for ax, (title, names, ylabel, log, *rest) in zip(axes[0], panels):
        key = rest[0] if rest else "loss"
        for name in names:
            h = histories[name]
            ax.plot([r["epoch"] for r in h], [r[key] for r in h], "o-", ms=3, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _imshow_row(axes, images, title=None, fontsize=9):
    for ax, image in zip(axes, images):
        ax.imshow(np.asarray(image).reshape(32, 32), cmap=IMAGE_CMAP, vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        axes[0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=fontsize)


def plot_image_rows(rows: dict[str, np.ndarray], column_titles: list[str] | None = None, figsize=None):
    """A grid of 32x32 images in [0, 1] (black background): one labelled row per entry."""
    n_cols = max(len(v) for v in rows.values())
    figsize = figsize or (1.0 + 0.9 * n_cols, 0.95 * len(rows))
    fig, axes = plt.subplots(len(rows), n_cols, figsize=figsize, squeeze=False)
    for ax_row, (title, images) in zip(axes, rows.items()):
        _imshow_row(ax_row, images, title)
    if column_titles:
        for ax, text in zip(axes[0], column_titles):
            ax.set_title(text, fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.08)
    return fig


def plot_embedding_maps(maps: dict[str, np.ndarray], colours: np.ndarray, class_names, ncols: int | None = None,
                        figsize=(10, 4.2), legend_title: str = "true class"):
    """Scatter of 2-d maps (e.g. UMAP) side by side, points coloured by class."""
    ncols = ncols or len(maps)
    nrows = -(-len(maps) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    palette = plt.get_cmap("tab10")
    for ax, (title, xy) in zip(axes.flat, maps.items()):
        for c, name in enumerate(class_names):
            sel = colours == c
            ax.scatter(xy[sel, 0], xy[sel, 1], s=2, color=palette(c), label=name, rasterized=True, alpha=0.7)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP 1 (no unit)", fontsize=9)
        ax.set_ylabel("UMAP 2 (no unit)", fontsize=9)
    for ax in list(axes.flat)[len(maps):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(class_names), fontsize=9, markerscale=5,
               title=legend_title, title_fontsize=9, bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    return fig


def plot_checkpoint_tradeoff(errors: np.ndarray, accuracies: np.ndarray, epochs: list[int], title: str,
                             accuracy_label: str, zoom_from: int = 2, figsize=(10, 4)):
    """Reconstruction error (x) against downstream accuracy (y, fractions shown in %) per checkpoint.

    Left: every checkpoint (log x); right: the checkpoints from epoch `zoom_from` on, linear axes; epochs annotated.
    """
    from matplotlib.ticker import MaxNLocator, NullFormatter

    errors, accuracies, epochs = np.asarray(errors), 100 * np.asarray(accuracies), np.asarray(epochs)
    fig, axes = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1, 1.15]})
    late = epochs >= zoom_from
    for ax, keep, log in ((axes[0], np.ones_like(late, dtype=bool), True), (axes[1], late, False)):
        ax.plot(errors[keep], accuracies[keep], "-", color="0.7", zorder=1)
        points = ax.scatter(errors[keep], accuracies[keep], c=epochs[keep], cmap="viridis", s=36, zorder=2,
                            vmin=epochs.min(), vmax=epochs.max())
        for e, x, y in zip(epochs[keep], errors[keep], accuracies[keep]):
            if not log or e <= zoom_from or e == epochs.max():  # the zoom labels the crowded late epochs
                ax.annotate(str(e), (x, y), textcoords="offset points", xytext=(4, -11 if log else 5), fontsize=9)
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:  # few ticks: long decimal labels would run into each other
            ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel("mean reconstruction error (MSE per pixel)", fontsize=9)
        ax.set_ylabel(accuracy_label, fontsize=9)
        ax.tick_params(labelsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_title(f"{title}: all checkpoints", fontsize=10)
    axes[1].set_title(f"zoom on epochs {zoom_from} to {epochs.max()}", fontsize=10)
    fig.colorbar(points, ax=axes[1], label="epoch")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- notebook 01: the data


def class_mean_std(images: np.ndarray, labels: np.ndarray, class_names):
    """Per class, the mean (top row) and standard deviation (bottom row) of the images, grey levels 0-255."""
    fig, axes = plt.subplots(2, len(class_names), figsize=(2 * len(class_names), 4.2))
    for c, name in enumerate(class_names):
        chosen = images[labels == c][:, 0].astype(np.float32)
        for row, (image, what, top) in enumerate(((chosen.mean(0), "mean", 255), (chosen.std(0), "std", 128))):
            shown = axes[row, c].imshow(image, cmap=IMAGE_CMAP, vmin=0, vmax=top)
            axes[row, c].set_xticks([])
            axes[row, c].set_yticks([])
            axes[row, c].set_title(f"{name} {what}", fontsize=9)
            if c == len(class_names) - 1:
                fig.colorbar(shown, ax=axes[row, :], fraction=0.02, pad=0.02, label="grey level")
    return fig


def pixel_histograms(normal: np.ndarray, anomalies: np.ndarray, ink: np.ndarray, ink_class: np.ndarray,
                     class_names):
    """Left: grey-level densities of normal and anomalous images (log scale). Right: ink per image by class
    (`ink_class` holds each image's class name)."""
    import seaborn as sns

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.arange(0, 257, 8)
    left.hist(np.ravel(normal), bins=bins, density=True, alpha=0.6, label="normal")
    left.hist(np.ravel(anomalies), bins=bins, density=True, alpha=0.6, label="anomalies")
    left.set_yscale("log")
    left.set_xlabel("grey level (0-255)")
    left.set_ylabel("density (log)")
    left.legend()
    sns.boxplot(x=ink_class, y=ink, ax=right, order=list(class_names), fliersize=2)
    right.set_xlabel("class")
    right.set_ylabel("ink per image (sum / 255)")
    return fig


def pixel_maps(pca_xy: np.ndarray, umap_xy: np.ndarray, groups: np.ndarray, names: list[str], highlight: int):
    """PCA (left) and UMAP (right) of raw pixels side by side; one legend, on the left."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4))
    scatter_2d(left, pca_xy, groups, names, "PCA of raw pixels", "PC 1", "PC 2", highlight)
    scatter_2d(right, umap_xy, groups, names, "UMAP of raw pixels", "UMAP 1", "UMAP 2", highlight)
    right.get_legend().remove()
    return fig


# --------------------------------------------------------------------------- notebook 05: transfer learning


def errorbars(ax, x, results: list[dict], scale: float = 1.0, **style) -> None:
    """Points {"value", "ci": [low, high]} at `x` with their intervals, values multiplied by `scale`."""
    value = np.array([scale * r["value"] for r in results])
    ci = np.array([[scale * c for c in r["ci"]] for r in results])
    ax.errorbar(x, value, yerr=[value - ci[:, 0], ci[:, 1] - value], marker="o", ms=4, capsize=3, **style)


def _budget_axis(ax, budgets, rotation: float = 0) -> None:
    ax.set_xscale("log")
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets], rotation=rotation)
    ax.minorticks_off()
    ax.set_xlabel("labeled training images (log scale)")
    ax.grid(alpha=0.3)


def transfer_accuracy(budgets: list[int], frozen: dict[str, list[dict]], tuned: dict[str, list[dict]],
                      gain: dict[str, list[dict]], names: dict[str, str], colors: dict[str, str]):
    """Three panels against the label budget (one curve per source, results {"value", "ci"} per budget):
    accuracy of a linear head on the frozen encoder, accuracy fine-tuned, fine-tuned minus from scratch
    (`gain`, pretrained sources only), in %."""
    fig, (frozen_ax, tuned_ax, gain_ax) = plt.subplots(1, 3, figsize=(10, 4.2))
    for k in frozen:
        errorbars(frozen_ax, budgets, frozen[k], 100, color=colors[k], label=names[k])
        errorbars(tuned_ax, budgets, tuned[k], 100, color=colors[k])
    for offset, k in zip(np.linspace(-0.05, 0.05, len(gain)), gain):  # side by side on the log axis
        errorbars(gain_ax, np.array(budgets) * 10 ** offset, gain[k], 100, color=colors[k])
    gain_ax.axhline(0, color="k", lw=0.8)
    low = min(100 * r["ci"][0] for results in frozen.values() for r in results)
    for ax, title in ((frozen_ax, "frozen encoder + linear head"), (tuned_ax, "fine-tuned"),
                      (gain_ax, "fine-tuned minus from scratch")):
        _budget_axis(ax, budgets, rotation=45)
        ax.set_title(title, fontsize=10)
    for ax in (frozen_ax, tuned_ax):
        ax.set_ylim(np.floor(low / 5) * 5, 100)
        ax.set_ylabel("accuracy (%)")
    gain_ax.set_ylabel("difference (percentage points)")
    fig.legend(loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.11, 1, 1))
    return fig


def transfer_ood(budgets: list[int], by_budget: dict[str, list[dict]], by_kind: dict[str, list[dict]],
                 kinds: list[str], names: dict[str, str], colors: dict[str, str]):
    """Left: ROC AUC (all anomalies) against the label budget, one curve per source. Right: with the largest
    budget, ROC AUC per kind of anomaly (`by_kind[source]`, one result per entry of `kinds`)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for k, results in by_budget.items():
        errorbars(left, budgets, results, color=colors[k], label=names[k])
    _budget_axis(left, budgets)
    left.set_ylabel("ROC AUC, all anomalies of set 1")
    left.legend(fontsize=9, loc="lower right")
    for offset, k in zip(np.linspace(-0.3, 0.3, len(by_kind)), by_kind):
        errorbars(right, np.arange(len(kinds)) + offset, by_kind[k], color=colors[k], ls="none")
    right.set_xticks(range(len(kinds)), [f"{kind} anomalies" for kind in kinds])
    right.set_xlim(-0.5, len(kinds) - 0.5)
    right.set_ylabel(f"ROC AUC, set 1 ({budgets[-1]:,} labels)")
    right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def model_diagram(widths: tuple[int, ...] = (32, 32, 64, 64, 128, 128), description_dim: int = 10):
    """The project's model as boxes and arrows: backbone stages, the three heads, and the six parts of the
    anomaly score (dashed). Widths come from the configuration."""
    fig, ax = plt.subplots(figsize=(6.4, 3.3))  # prints at full size: 7.5-point text stays 7.5
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 41)
    ax.axis("off")

    def box(x, y, text, colour="#dde8f4", w=14, h=6.5):
        ax.add_patch(plt.Rectangle((x - w / 2, y - h / 2), w, h, facecolor=colour, edgecolor="#333333", lw=0.8))
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5)

    def arrow(x0, y0, x1, y1, dashed=False):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(
            arrowstyle="->", lw=0.8, color="#555555" if dashed else "#222222", linestyle="--" if dashed else "-"))

    box(7, 34, "image\n1 x 32 x 32", "#eeeeee", w=12)
    stages = [f"stage {i + 1}\n2 convs, {widths[2 * i]}-{widths[2 * i + 1]}\n{32 >> i}x{32 >> i} -> {16 >> i}x{16 >> i}"
              for i in range(3)]
    for i, text in enumerate(stages):
        box(26 + 19 * i, 34, text, h=8, w=17.5)
        arrow(13 if i == 0 else 26 + 19 * (i - 1) + 8.75, 34, 26 + 19 * i - 8.75, 34)
    box(88, 34, f"pooled\n{widths[-1]}-d", w=11)
    arrow(26 + 19 * 2 + 8.75, 34, 82.5, 34)
    box(94.5, 20, "classifier\n5 logits", "#e3f1e0", w=10)
    box(77, 20, f"description z, {description_dim}-d\n(+ 5-class head)", "#e3f1e0", w=18)
    box(57, 20, "decoder\nz -> 32 x 32", "#e3f1e0", w=13)
    arrow(91, 30.7, 93.5, 23.3)
    arrow(86, 30.7, 80, 23.3)
    arrow(68.5, 20, 63.5, 20, dashed=True)
    box(44, 5, "anomaly score: sum of standardised parts chosen on set 1\n"
               "Mahalanobis on stages 1-3 and on z  |  kNN, stage 3  |  energy  |  reconstruction  |  frame",
        "#f8e5d6", w=76, h=7)
    for x in (26, 45, 65.5):
        arrow(x, 29.9, x if x < 60 else 64, 8.6, dashed=True)
    arrow(77, 16.7, 74, 8.6, dashed=True)
    arrow(57, 16.7, 57, 8.6, dashed=True)
    arrow(7, 30.7, 12, 8.6, dashed=True)
    ax.text(1, 39.5, "solid: forward pass; dashed: evidence for the anomaly score", fontsize=7.5, color="#555555")
    fig.tight_layout()
    return fig


def detection_curves(scores: dict[str, np.ndarray], is_anomaly: np.ndarray, threshold_sets: dict[str, tuple],
                     threshold: float):
    """Left: ROC curves, middle: precision-recall curves of several scores on one set (the first is ours);
    right: recall and false-positive rate of our score against its threshold on each set of `threshold_sets`
    {label: (scores, is_anomaly)}, with the threshold fixed on set 1 (dashed)."""
    from lib.eval.metrics import detection_curves

    fig, (roc, pr, rates) = plt.subplots(1, 3, figsize=(7.5, 3.3))
    for i, (name, values) in enumerate(scores.items()):
        curves = detection_curves(values, is_anomaly)
        style = dict(color=PALETTE[i % len(PALETTE)], lw=1.8 if i == 0 else 1.0)
        roc.plot(curves["fpr"], curves["tpr"], label=name, **style)
        pr.plot(curves["recall"], curves["precision"], **style)
    roc.plot([0, 1], [0, 1], color="#aaaaaa", lw=0.6, ls=":")
    roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC, set 2")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall, set 2", ylim=(0, 1.02))
    # thresholds from the bulk of the clean images to well past the fixed one: where the rates change
    clean = np.concatenate([values[~flags] for values, flags in threshold_sets.values()])
    grid = np.linspace(np.quantile(clean, 0.5), max(2 * threshold, np.quantile(clean, 0.999)), 200)
    for (label, (values, flags)), ls in zip(threshold_sets.items(), ("--", "-")):
        rates.plot(grid, [(values[flags] > t).mean() for t in grid], color=PALETTE[0], ls=ls, label=f"recall, {label}")
        rates.plot(grid, [(values[~flags] > t).mean() for t in grid], color=PALETTE[1], ls=ls,
                   label=f"false-positive rate, {label}")
    rates.axvline(threshold, color="black", lw=0.8, ls=":")
    rates.set(xlabel="threshold (anomaly score)", ylabel="rate", title="threshold fixed on set 1 (dotted)")
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    for ax, ncol in ((roc, 2), (rates, 2)):  # legends below the panels, never over a curve
        handles, labels = ax.get_legend_handles_labels()
        box = ax.get_position()
        fig.legend(handles, labels, fontsize=8, ncol=ncol if ax is rates else 1, frameon=False,
                   loc="upper left" if ax is roc else "upper right",
                   bbox_to_anchor=(box.x0 if ax is roc else box.x1, 0.19))
    return fig


def description_meaning(class_means: np.ndarray, decoded: np.ndarray, class_names):
    """What the ten coordinates mean: left, the mean of each coordinate per class (standardised over all
    images); right, the decoder's image at each class mean."""
    fig = plt.figure(figsize=(10, 2.8))
    heat = fig.add_axes([0.1, 0.2, 0.38, 0.68])
    image = heat.imshow(class_means, cmap="RdBu_r", vmin=-np.abs(class_means).max(), vmax=np.abs(class_means).max(),
                        aspect="auto")
    heat.set(xticks=range(class_means.shape[1]), xticklabels=[f"z{i}" for i in range(class_means.shape[1])],
             yticks=range(len(class_names)), yticklabels=class_names, xlabel="coordinate of the description",
             title="class mean of each coordinate (standard deviations)")
    fig.colorbar(image, ax=heat, fraction=0.05, pad=0.02)
    for i, name in enumerate(class_names):
        ax = fig.add_axes([0.58 + i * 0.083, 0.22, 0.078, 0.62])
        ax.imshow(decoded[i, 0], cmap=IMAGE_CMAP, vmin=0, vmax=1)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    fig.text(0.78, 0.1, "decoded class means", ha="center", fontsize=9)
    return fig
