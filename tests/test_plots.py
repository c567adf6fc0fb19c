"""Every figure of `lib.plots`, drawn from synthetic data: texts print at 7 points or more, legends stay out of
the data areas, classes keep one colour, and the network diagram's line styles keep one meaning each."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from lib import plots
from lib.data import CLASS_NAMES

matplotlib.use("Agg")
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (20, 1, 32, 32), dtype=np.uint8)
BUDGETS = [50, 250, 1599]
SOURCES = {"scratch": "none (from scratch)", "foreign_contrastive": "related, contrastive",
           "foreign_supervised": "related, supervised", "digits": "mismatched (digits), supervised"}
COLOURS = dict(zip(SOURCES, ["#7f7f7f", "#2ca02c", "#ff7f0e", "#d62728"]))


def _result(value):
    return {"value": value, "ci": [value - 0.01, value + 0.01]}


def _scores(n=400):
    is_anomaly = np.arange(n) % 8 == 0
    return RNG.normal(size=n) + 4 * is_anomaly, is_anomaly


def figures() -> dict:
    """Name -> a function drawing that figure."""
    scores, is_anomaly = _scores()
    history = [{"step": 100 * i, "val_loss": 1 / i, "val_accuracy": 0.9 + 0.01 * i} for i in range(1, 5)]
    curve = pd.DataFrame([{"labels": b, "accuracy": 90 + i + j, "method": m} for i, b in enumerate(BUDGETS)
                          for j, m in enumerate(["supervised CNN", "contrastive, fine-tuned"])])
    diagram = {"edges": np.linspace(0, 1, 16), "count": RNG.integers(0, 100, 15),
               "accuracy": RNG.uniform(0, 1, 15)}
    flat = {k: [_result(0.9 + 0.01 * i) for i in range(len(BUDGETS))] for k in SOURCES}
    groups = np.r_[np.arange(200) % 5, np.full(20, 5)]
    histories = {name: [{"epoch": e, "loss": 1.0 / e, "nt_xent": 2.0 / e} for e in (1, 2, 3)]
                 for name in ("a", "b", "c", "v", "s")}
    panels = [("autoencoders", ["a", "b", "c"], "MSE per pixel", True), ("VAE", ["v"], "nats", False),
              ("contrastive", ["s"], "nats", False, "nt_xent")]
    return {
        "image_rows": lambda: plots.image_rows([IMAGES[:10], IMAGES[10:]], ["one", "two"]),
        "image_columns": lambda: plots.image_columns([IMAGES[:3], IMAGES[3:6]], ["foreign: Shirt", "noise"]),
        "pixel_maps": lambda: plots.pixel_maps(RNG.normal(size=(220, 2)), RNG.normal(size=(220, 2)), groups,
                                               list(CLASS_NAMES) + ["anomaly (set 1)"], highlight=5),
        "pixel_histograms": lambda: plots.pixel_histograms(
            IMAGES[:10], IMAGES[10:], RNG.uniform(0, 500, 50), np.array(CLASS_NAMES)[np.arange(50) % 5],
            CLASS_NAMES),
        "class_mean_std": lambda: plots.class_mean_std(IMAGES, np.arange(20) % 5, CLASS_NAMES),
        "histories": lambda: plots.plot_histories(histories, panels),
        "embedding_maps": lambda: plots.plot_embedding_maps(
            {"one": RNG.normal(size=(50, 2)), "two": RNG.normal(size=(50, 2))}, np.arange(50) % 5, CLASS_NAMES),
        "checkpoint_tradeoff": lambda: plots.plot_checkpoint_tradeoff(
            np.r_[0.2, 0.02, 0.015, 0.0121, 0.0120, 0.01195, 0.0119], np.r_[0.8, 0.9, 0.92, 0.93, 0.931, 0.931, 0.93],
            list(range(7)), "model", "k-NN accuracy (%)"),
        "classification_curves": lambda: plots.classification_curves({"one": history, "two": history}),
        "confusion": lambda: plots.confusion(RNG.integers(0, 50, (5, 5))),
        "calibration": lambda: plots.calibration(diagram, 0.05),
        "label_efficiency": lambda: plots.label_efficiency(curve),
        "end_to_end": lambda: plots.end_to_end(scores, is_anomaly, 2.0, "features + frame",
                                               RNG.integers(0, 50, (6, 6)), log=True),
        "detection_curves": lambda: plots.detection_curves(
            {"ours (features, kNN, energy + frame)": scores, "plain CNN (baseline)": scores + RNG.normal(size=400)},
            is_anomaly, {"set 1": (scores, is_anomaly), "set 2": (scores, is_anomaly)}, 2.0),
        "description_meaning": lambda: plots.description_meaning(
            RNG.normal(size=(5, 10)), RNG.uniform(size=(5, 1, 32, 32)), CLASS_NAMES),
        "transfer_accuracy": lambda: plots.transfer_accuracy(
            BUDGETS, flat, flat, {k: flat[k] for k in list(SOURCES)[1:]}, SOURCES, COLOURS),
        "transfer_ood": lambda: plots.transfer_ood(BUDGETS, flat, {k: flat[k][:2] for k in SOURCES},
                                                   ["foreign", "corrupted"], SOURCES, COLOURS),
        "model_diagram": lambda: plots.model_diagram(),
    }


def _boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("name", list(figures()))
def test_figure_prints_legibly(name, tmp_path):
    """Saved as for the report, no text prints under MIN_PRINTED_POINTS and no legend lies on a data area."""
    fig = figures()[name]()
    plots.save_figure(fig, tmp_path / f"{name}.png")
    assert plots.smallest_printed_font(fig) >= plots.MIN_PRINTED_POINTS - 0.01
    renderer = fig.canvas.get_renderer()
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    data_areas = [ax.get_window_extent(renderer) for ax in fig.axes if ax.has_data() and ax.axison]
    if name != "model_diagram":  # the diagram's key sits above its (axis-less) drawing
        for legend in legends:
            assert not any(_boxes_overlap(legend.get_window_extent(renderer), area) for area in data_areas), name
    matplotlib.pyplot.close(fig)


def test_one_colour_per_class():
    """The embedding maps and the pixel maps give each class the same colour."""
    embedding = figures()["embedding_maps"]()
    maps = figures()["pixel_maps"]()
    for fig in (embedding, maps):
        handles, labels = fig.legends[0].legend_handles, [t.get_text() for t in fig.legends[0].get_texts()]
        for c, name in enumerate(CLASS_NAMES):
            colour = handles[labels.index(name)].get_facecolor()[0][:3]
            assert np.allclose(colour, matplotlib.colors.to_rgb(plots.CLASS_COLOURS[c]))
        matplotlib.pyplot.close(fig)


def test_diagram_line_styles():
    """Dotted only into the decoder (gradient stopped), dashed only into the anomaly score."""
    fig = plots.model_diagram()
    ax = fig.axes[0]
    styles = {}
    for line in ax.lines:  # each arrow's line; its head is drawn solid
        styles.setdefault(line.get_linestyle(), []).append(line.get_xydata()[-1])
    assert set(styles) == {"-", ":", "--"}
    assert len(styles[":"]) == 1 and all(y < 11 for _, y in styles["--"])
    matplotlib.pyplot.close(fig)
