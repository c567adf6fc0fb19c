"""Notebook 02's experiment code (tables, checkpoint plateau, results, report variables) and its figures."""

import re
from types import SimpleNamespace

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lib import plots
from lib.config import get_profile
from lib.eval.embedding import evaluate_embedding
from lib.experiments import pretraining as pre
from lib.nn.augment import AugmentConfig
from lib.nn.models import ModelConfig
from lib.nn.train import PRETRAINED, TrainConfig, pretraining_plan, train
from lib.render.variables import pretraining_variables
from lib.workspace import PROJECT_ROOT

matplotlib.use("Agg")
RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (64, 1, 32, 32), dtype=np.uint8)


def _evaluations(seed=0):
    """A separable five-class description per method (PCA and the five models), evaluated."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 10)) * 10
    y = np.arange(5).repeat(20)
    y_ref = np.arange(5).repeat(4)
    out = {}
    for i, method in enumerate(pre.METHOD_KEYS):
        z = centres[y] + rng.normal(size=(100, 10)) * (1 + 4 * i)  # noisier for every later method
        z_ref = centres[y_ref] + rng.normal(size=(20, 10))
        out[method] = evaluate_embedding(z, y, z_ref, y_ref, seed=seed, bootstrap=50)
    return out, y


def _fake_trained(plan):
    return {name: SimpleNamespace(model=torch.nn.Linear(3, 2), history=[{"epoch": 1, "loss": 0.5, "nt_xent": 0.4}],
                                  images_per_second=1234.5, seconds=7.2) for name in plan}


def test_tables_and_best_method():
    evaluations, _ = _evaluations()
    table = pre.comparison_table(evaluations)
    assert list(table["description"]) == list(pre.METHOD_KEYS)
    assert re.fullmatch(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", table["k-means accuracy (%)"][0])
    assert pre.best_method(evaluations) == pre.PCA  # the least noisy description
    plan = pretraining_plan(get_profile("smoke"))
    models_table = pre.training_table(_fake_trained(plan), plan)
    assert list(models_table["model"]) == list(PRETRAINED.values())
    assert models_table["parameters"][0] == "8" and models_table["images/s"][0] == "1,234"
    assert "parameters" in pre.describe_plan(plan).splitlines()[0]


def test_checkpoint_plateau():
    checkpoints = pd.DataFrame({"epoch": [0, 1, 2, 3, 4], "knn_accuracy": [0.5, 0.8, 0.9, 0.903, 0.905],
                                "reconstruction_mse": [1.0, 0.5, 0.3, 0.2, 0.15]})
    plateau = pre.checkpoint_plateau(checkpoints, 0.005)
    assert plateau["epoch"] == 2 and plateau["last_epoch"] == 4 and plateau["count"] == 5
    assert plateau["error_drop"] == pytest.approx(0.5) and plateau["epoch0_knn_accuracy"] == 0.5
    assert pre.plateau_sentence(plateau).startswith("k-NN accuracy 90.0 % at epoch 2, 90.5 % at the last epoch 4")


def test_checkpoint_tradeoff_reads_every_checkpoint(tmp_path):
    train(ModelConfig("conv_ae", width=4), IMAGES, TrainConfig(epochs=2, batch_size=32, keep=None), tmp_path,
          log=lambda message: None, progress=False)
    labels = np.arange(64) % 5
    data = SimpleNamespace(unlabeled=IMAGES, labeled_x=IMAGES[:20], labeled_y=labels[:20])
    with_key = pre.checkpoint_tradeoff(tmp_path, data, labels, "cpu", knn_k=3)
    assert list(with_key["epoch"]) == [0, 1, 2] and (with_key["reconstruction_mse"] > 0).all()
    assert with_key["knn_accuracy"].between(0, 1).all()
    without_key = pre.checkpoint_tradeoff(tmp_path, data, None, "cpu", knn_k=3)
    assert len(without_key) == 3


def test_mode_rows_and_subsample():
    evaluations, _ = _evaluations()
    evaluation = evaluations[pre.PCA]
    z = np.random.default_rng(1).normal(size=(100, 10))
    images = RNG.integers(0, 256, (100, 1, 32, 32), dtype=np.uint8)
    decoded = np.zeros((5, 1, 32, 32))
    rows = pre.mode_rows(decoded, images, evaluation, z)
    assert len(rows) == 5 and all(r.shape == (1 + pre.NEAREST, 1, 32, 32) for r in rows.values())
    assert all(r.max() <= 1.0 for r in rows.values())
    sub = pre.map_subsample(100, 30, seed=0)
    assert len(sub) == 30 and len(set(sub)) == 30 and list(sub) == sorted(sub)
    assert len(pre.map_subsample(10, 30, seed=0)) == 10


def test_results_summary_and_report_variables_match_the_committed_keys():
    profile = get_profile("smoke")
    plan = pretraining_plan(profile)
    evaluations, _ = _evaluations()
    checkpoints = pd.DataFrame({"epoch": [0, 1, 2], "knn_accuracy": [0.7, 0.85, 0.851],
                                "reconstruction_mse": [0.1, 0.05, 0.04]})
    ctx = SimpleNamespace(profile=profile, seed=0, device="cpu", data=SimpleNamespace(unlabeled=IMAGES))
    results = pre.results(ctx, plan, _fake_trained(plan), evaluations, checkpoints,
                          pre.checkpoint_plateau(checkpoints, profile.pretraining.plateau_tolerance), 12.0)
    results = yaml.safe_load(yaml.safe_dump(results))  # as read back from JSON: plain types only
    summary = pre.summary(results, answer_key=True)
    assert summary["embedding.dim"] == 10 and len(summary["embedding.kmeans_accuracy.unlabeled_ci"]) == 2
    assert pre.summary(results, answer_key=False) == {}
    assert "k-means target 98 %" in pre.conclusion(results)

    assert pretraining_variables({}) is None
    values = pretraining_variables({"02_pretraining": results})
    committed = yaml.safe_load((PROJECT_ROOT / "report" / "_variables.yml").read_text())["pretraining"]
    assert set(values) == set(committed)
    assert all(isinstance(v, str) for v in values.values())
    assert values["n_unlabeled"] == "64" and values["batch"] == str(profile.pretraining.batch)
    assert values["checkpoint_plateau_epoch"] == "1" and values["checkpoint_count"] == "3"
    assert values["checkpoint_error_drop"] == "20" and values["checkpoint_last_knn"] == "85.1"
    assert values["fc_ae_params"] == "8" and values["fc_ae_images_per_second"] == "1,234"
    assert re.fullmatch(r"\[\d+\.\d, \d+\.\d\]", values["contrastive_kmeans_accuracy_ci"])
    assert values["best_method"] == pre.PCA and values["kmeans_target_verdict"] in ("reaches", "does not reach")


def test_figures_draw():
    histories = {name: [{"epoch": e, "loss": 1.0 / e, "nt_xent": 2.0 / e} for e in (1, 2, 3)]
                 for name in PRETRAINED.values()}
    rows = {"a": RNG.random((3, 1, 32, 32)), "b": RNG.random((2, 32, 32))}
    maps = {"one": RNG.normal(size=(30, 2)), "two": RNG.normal(size=(30, 2)), "three": RNG.normal(size=(30, 2))}
    figures = [
        plots.plot_views(IMAGES[:2], AugmentConfig(), n_views=3, seed=0, row_titles=["x", "y"]),
        plots.plot_histories(histories, pre.CURVE_PANELS),
        plots.plot_image_rows(rows, column_titles=["1", "2", "3"]),
        plots.plot_embedding_maps(maps, np.arange(30) % 5, ["a", "b", "c", "d", "e"], ncols=2),
        plots.plot_checkpoint_tradeoff(np.array([1.0, 0.5, 0.3, 0.2]), np.array([0.5, 0.8, 0.85, 0.86]),
                                       [0, 1, 2, 3], "model", "accuracy (%)"),
    ]
    assert [len(f.axes) for f in figures] == [2 * 4, 3, 2 * 3, 4, 3]
    for figure in figures:
        matplotlib.pyplot.close(figure)
