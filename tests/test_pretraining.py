"""Notebook 02's experiment code (training summary, best description, checkpoint study, modes, the record and
its report variables), its tables and sentences (`lib.render.tables`) and its figures."""

import re
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lib import plots
from lib.config import STRONG, ConvAutoencoderConfig, Pretrained, Training, get_profile
from lib.data import CLASS_NAMES
from lib.eval.embedding import evaluate_embedding
from lib.experiments import pretraining as pre
from lib.nn.registry import build, count_parameters
from lib.render import tables
from lib.render.names import DESCRIPTIONS
from lib.render.variables import error_change, pretraining_variables
from lib.results import DESCRIPTIONS as DESCRIPTION_IDS
from lib.results import PRETRAINED, Decision
from lib.train.runs import pretrain
from lib.workspace import Workspace

matplotlib.use("Agg")
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (64, 1, 32, 32), dtype=np.uint8)
TINY_AE = Pretrained(ConvAutoencoderConfig(width=4), Training(lr=5e-3, weight_decay=1e-4, batch=32, epochs=2),
                     snapshots=True)


def _evaluations(seed=0):
    """A separable five-class description per method (PCA and the five models), evaluated."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 10)) * 10
    y = np.arange(5).repeat(20)
    y_ref = np.arange(5).repeat(4)
    out = {}
    for i, method in enumerate(DESCRIPTION_IDS):
        z = centres[y] + rng.normal(size=(100, 10)) * (1 + 4 * i)  # noisier for every later method
        z_ref = centres[y_ref] + rng.normal(size=(20, 10))
        out[method] = evaluate_embedding(z, y, z_ref, y_ref, seed=seed, bootstrap=50)
    return out, y


def _fake_trained(folder=None):
    return {name: SimpleNamespace(model=torch.nn.Linear(3, 2), history=[{"epoch": 1, "loss": 0.5, "nt_xent": 0.4}],
                                  images_per_second=1234.5, seconds=7.2, folder=folder and folder / name)
            for name in PRETRAINED}


def test_tables_and_best_description():
    evaluations, _ = _evaluations()
    table = tables.descriptions({method: e.metrics for method, e in evaluations.items()})
    assert list(table["description"]) == [DESCRIPTIONS[method] for method in DESCRIPTION_IDS]
    assert re.fullmatch(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", table["k-means accuracy (%)"][0])
    best = pre.best_description(evaluations)
    assert isinstance(best, Decision) and best.chosen == "pca"  # the least noisy description
    assert best.evidence == {method: e.metrics["kmeans_accuracy"] for method, e in evaluations.items()}
    settings = get_profile("smoke").pretraining
    summary = pre.training_summary(_fake_trained(), settings)
    assert summary["vae"]["epochs"] == settings.vae.training.epochs
    assert summary["contrastive"]["batch_size"] == settings.contrastive.training.batch
    models_table = tables.pretraining_models(summary)
    assert list(models_table["model"]) == [DESCRIPTIONS[name] for name in PRETRAINED]
    assert models_table["parameters"][0] == "8" and models_table["images/s"][0] == "1,234"
    assert models_table["final loss"][0] == "0.5"


def test_parameter_counts_are_those_of_the_profile_networks():
    profile = get_profile("smoke")
    counts = pre.parameter_counts(profile)
    assert list(counts) == list(PRETRAINED)
    assert counts["conv_ae"] == count_parameters(build(profile.pretraining.conv_ae.network)) > 0


def test_checkpoint_plateau():
    checkpoints = pd.DataFrame({"epoch": [0, 1, 2, 3, 4], "knn_accuracy": [0.5, 0.8, 0.9, 0.903, 0.905],
                                "reconstruction_mse": [1.0, 0.5, 0.3, 0.2, 0.15]})
    plateau = pre.checkpoint_plateau(checkpoints, 0.005)
    assert plateau["epoch"] == 2 and plateau["last_epoch"] == 4 and plateau["count"] == 5
    assert plateau["error_drop"] == pytest.approx(0.5) and plateau["epoch0_knn_accuracy"] == 0.5
    assert tables.plateau_sentence(plateau).startswith("k-NN accuracy 90.0 % at epoch 2, 90.5 % at the last epoch 4")


def test_checkpoint_tradeoff_reads_every_snapshot(tmp_path):
    result = pretrain(TINY_AE, IMAGES, tmp_path, "conv_ae", seed=0, log=lambda message: None, progress=False)
    labels = np.arange(64) % 5
    data = SimpleNamespace(unlabeled=IMAGES, labeled_x=IMAGES[:20], labeled_y=labels[:20])
    with_key = pre.checkpoint_tradeoff(result.folder, data, labels, "cpu", knn_k=3)
    assert list(with_key["epoch"]) == [0, 1, 2] and (with_key["reconstruction_mse"] > 0).all()  # 0: initialisation
    assert with_key["knn_accuracy"].between(0, 1).all()
    # the last snapshot is the trained model: its error is the model's own
    last = result.model.reconstruction_error(torch.as_tensor(IMAGES).float() / 255).mean().item()
    assert with_key["reconstruction_mse"].iloc[-1] == pytest.approx(last, rel=1e-4)
    without_key = pre.checkpoint_tradeoff(result.folder, data, None, "cpu", knn_k=3)
    assert len(without_key) == 3


def test_mode_rows_and_subsample():
    evaluations, _ = _evaluations()
    evaluation = evaluations["pca"]
    z = np.random.default_rng(1).normal(size=(100, 10))
    images = RNG.integers(0, 256, (100, 1, 32, 32), dtype=np.uint8)
    decoder = SimpleNamespace(decode=lambda centres: torch.full((len(centres), 1, 32, 32), 0.5))
    rows = pre.mode_rows(decoder, evaluation, z, images)
    assert len(rows) == 5 and all(r.shape == (1 + pre.NEAREST, 1, 32, 32) for _, _, r in rows)
    assert all(r.max() <= 1.0 and (r[0] == 0.5).all() for _, _, r in rows)  # the decoded centre first
    assert sum(size for _, size, _ in rows) == 100
    matched = [name for name, _, _ in rows]
    assert len(set(matched)) == 5 and matched == sorted(matched, key=CLASS_NAMES.index)
    sub = pre.map_subsample(100, 30, seed=0)
    assert len(sub) == 30 and len(set(sub)) == 30 and list(sub) == sorted(sub)
    assert len(pre.map_subsample(10, 30, seed=0)) == 10


def test_record_and_report_variables_match_the_committed_keys(tmp_path):
    profile = get_profile("smoke")
    evaluations, _ = _evaluations()
    checkpoints = pd.DataFrame({"epoch": [0, 1, 2], "knn_accuracy": [0.7, 0.85, 0.851],
                                "reconstruction_mse": [0.1, 0.05, 0.04]})
    ws = Workspace(tmp_path)
    ctx = SimpleNamespace(profile=profile, seed=0, device="cpu", ws=ws, data=SimpleNamespace(unlabeled=IMAGES))
    results = pre.record(ctx, _fake_trained(tmp_path / "checkpoints"), evaluations, pre.best_description(evaluations),
                         checkpoints, pre.checkpoint_plateau(checkpoints, profile.pretraining.plateau_tolerance), 12.0)
    results = yaml.safe_load(yaml.safe_dump(results))  # as read back from JSON: plain types only
    assert results["checkpoints"]["vae"] == "checkpoints/vae"  # relative to the workspace: later notebooks load it
    assert results["best_description"]["chosen"] == "pca" and results["best_description"]["rule"]
    assert "k-means target 98 %" in tables.description_target_sentence(results)

    assert pretraining_variables({}) is None
    values = pretraining_variables({"02_pretraining": results})
    from tests.test_report_variables import read_variables

    assert {f"pretraining.{key}" for key in values} <= read_variables()  # every one is quoted by the report
    assert all(isinstance(v, str) for v in values.values())
    assert values["checkpoint_plateau_epoch"] == "1" and values["checkpoint_count"] == "3"
    assert values["checkpoint_error_change"] == "falls another 20 %" and values["checkpoint_last_knn"] == "85.1"
    assert (error_change(-3), error_change(0)) == ("rises by 3 %", "stays within 0.5 %")
    assert values["temperature"] == f"{profile.pretraining.contrastive.network.temperature:g}"


def test_figures_draw():
    histories = {DESCRIPTIONS[name]: [{"epoch": e, "loss": 1.0 / e, "nt_xent": 2.0 / e} for e in (1, 2, 3)]
                 for name in PRETRAINED}
    rows = {"a": RNG.random((3, 1, 32, 32)), "b": RNG.random((2, 32, 32))}
    maps = {"one": RNG.normal(size=(30, 2)), "two": RNG.normal(size=(30, 2)), "three": RNG.normal(size=(30, 2))}
    figures = [
        plots.plot_views(IMAGES[:2], STRONG, n_views=3, seed=0, row_titles=["x", "y"]),
        plots.plot_histories(histories, tables.CURVE_PANELS),
        plots.plot_image_rows(rows, column_titles=["1", "2", "3"]),
        plots.plot_embedding_maps(maps, np.arange(30) % 5, ["a", "b", "c", "d", "e"], ncols=2),
        plots.plot_checkpoint_tradeoff(np.array([1.0, 0.5, 0.3, 0.2]), np.array([0.5, 0.8, 0.85, 0.86]),
                                       [0, 1, 2, 3], "model", "accuracy (%)"),
    ]
    assert [len(f.axes) for f in figures] == [2 * 4, 3, 2 * 3, 4, 3]
    for figure in figures:
        matplotlib.pyplot.close(figure)
