"""The deployed model bundle and `python -m lib predict`: good inputs give a CSV, bad ones one error line."""

import json
import os
import pickle
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lib.bundle import FORMAT_VERSION, FinalModel, load_final_model, save_final_model
from lib.cli import main
from lib.config import Anomaly, CNNConfig
from lib.data.replica import CLASS_NAMES, pad
from lib.detect.parts import fit_detectors
from lib.errors import DataError, UserError
from lib.nn.cnn import CNN
from lib.nn.infer import batched
from lib.predict import default_model_folder, run_model, time_predict
from lib.results import PARTS
from lib.workspace import PROJECT_ROOT
from tests.test_safe_pickle import CreatesFile, valid_data

COLUMNS = ["index", "class", "class_name", "anomaly_score", "anomaly_flag"] + [f"z{i}" for i in range(10)]
LABELS = np.arange(200) % 5
SETTINGS = replace(Anomaly(), knn_k=5)  # the profile's `anomaly` as deployed, k = 5 for a bank of 100 images


def tiny_network(seed=0) -> CNN:
    """A random small network of the project's architecture (classifier, description from 16 channels, decoder),
    in eval mode. Its batch-norm statistics are those of random images, as a trained network's are of its data:
    with the default statistics the signal fades layer by layer and the pooled features hardly vary."""
    torch.manual_seed(seed)
    network = CNN(CNNConfig(widths=(4, 4, 8, 8, 16, 16), dropout=0.0, description_dim=10, decoder=True))
    calibration = torch.rand(400, 1, 32, 32, generator=torch.Generator().manual_seed(100 + seed))
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the calibration batch
    with torch.no_grad():
        network.train()
        network.decode(network.outputs(calibration)["z"])
    return network.eval()


def tiny_model(seed=0, weights=None, settings=SETTINGS) -> tuple[FinalModel, np.ndarray]:
    """FinalModel on `tiny_network` with every part's detector made with `settings` (the profile's `anomaly`):
    the Mahalanobis detectors fitted to its own outputs of random images, the kNN bank its outputs of other random
    images; every part standardised on the first images."""
    network = tiny_network(seed)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (200, 1, 32, 32), dtype=np.uint8)
    outputs = batched(network.outputs, images)
    bank = batched(network.outputs, rng.integers(0, 256, (100, 1, 32, 32), dtype=np.uint8))
    detectors = fit_detectors(outputs, LABELS, bank, settings)
    model = FinalModel(network, detectors, settings.frame_std_floor).standardise_on(images)
    if weights is not None:
        model.set_weights(weights)
    return model, images


def weights_of(*parts: str) -> list[int]:
    """The weights of a combination of named parts."""
    return [int(part in parts) for part in PARTS]


def mahalanobis_reference(features, labels, reg):
    """min over classes of (f - mu_k)^T Sigma^-1 (f - mu_k) in float64 numpy: a shared covariance of the
    centred features with a ridge of `reg` times its mean variance."""
    f = np.asarray(features, dtype=np.float64)
    means = np.stack([f[labels == c].mean(axis=0) for c in range(labels.max() + 1)])
    centred = f - means[labels]
    covariance = centred.T @ centred / (len(f) - len(means))
    covariance += reg * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    diff = f[:, None, :] - means[None]
    return np.einsum("nki,ij,nkj->nk", diff, np.linalg.inv(covariance), diff).min(axis=1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on shared cores: one thread avoids threads of each operation waiting for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    model, images = tiny_model()
    _, scores, _ = run_model(model, images)
    model.threshold = float(np.median(scores))  # about half the random images get flagged
    return save_final_model(model, tmp_path_factory.mktemp("final"), profile="smoke")


# --------------------------------------------------------------------------- the bundle


def test_evidence_matches_its_definitions():
    model, images = tiny_model(seed=1)
    outputs = batched(model.network.outputs, images)
    mean, std = model.combination.mean.numpy(), model.combination.std.numpy()
    raw = model.evidence(images) * std + mean
    assert raw.shape == (200, len(PARTS)) and raw.dtype == np.float64
    # the Mahalanobis parts: the pooled features of each stage and the description
    for part, output in (("stage_1", "stage0"), ("stage_2", "stage1"), ("stage_3", "stage2"), ("description", "z")):
        expected = mahalanobis_reference(outputs[output], LABELS, reg=1e-6)
        np.testing.assert_allclose(raw[:, PARTS.index(part)], expected, rtol=1e-3, atol=1e-3)
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    bank = model.detectors["knn"].bank.numpy().astype(np.float64)
    knn = np.sort(1 - unit(outputs["stage2"].astype(np.float64)) @ bank.T, axis=1)[:, 4]  # the last stage, k = 5
    np.testing.assert_allclose(raw[:, PARTS.index("knn")], knn, atol=1e-5)
    logits = outputs["logits"].astype(np.float64)
    energy = -np.log(np.exp(logits).sum(axis=1))
    np.testing.assert_allclose(raw[:, PARTS.index("energy")], energy, rtol=1e-5, atol=1e-5)
    x = images / 255.0
    with torch.no_grad():
        decoded = model.network.decode(torch.as_tensor(outputs["z"])).numpy()
    np.testing.assert_allclose(raw[:, PARTS.index("reconstruction")], ((decoded - x) ** 2).mean(axis=(1, 2, 3)),
                               rtol=1e-4, atol=1e-6)
    frame = (x.sum(axis=(1, 2, 3)) - x[:, :, 2:-2, 2:-2].sum(axis=(1, 2, 3))) / (32 * 32 - 28 * 28)
    np.testing.assert_allclose(raw[:, PARTS.index("frame")], frame, rtol=1e-5, atol=1e-6)
    standardised = model.evidence(images)  # standardised on these very images: mean 0, std 1
    np.testing.assert_allclose(standardised.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(standardised.std(axis=0), 1, atol=1e-3)


def test_score_is_the_weighted_sum_of_the_chosen_parts():
    for weights in (weights_of("stage_3"), weights_of("stage_1", "stage_2", "stage_3", "description"),
                    weights_of("stage_3", "reconstruction", "frame"), weights_of("knn", "energy"),
                    [1] * len(PARTS)):
        model, images = tiny_model(seed=2, weights=weights)
        assert model.active == tuple(p for p, w in zip(PARTS, weights) if w)  # only these parts are computed
        logits, scores, z = run_model(model, images)
        np.testing.assert_allclose(scores, model.evidence(images) @ np.asarray(weights), rtol=1e-4, atol=1e-4)
        outputs = batched(model.network.outputs, images)
        np.testing.assert_allclose(logits, outputs["logits"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(z, outputs["z"], rtol=1e-5, atol=1e-5)


def test_frame_std_is_floored_on_black_frames():
    model, images = tiny_model(seed=3)
    frame = PARTS.index("frame")
    padded = images.copy()
    padded[:, :, :2], padded[:, :, -2:], padded[:, :, :, :2], padded[:, :, :, -2:] = 0, 0, 0, 0
    model.standardise_on(padded)  # every frame black: a standard deviation of 0 becomes the floor
    assert model.combination.std[frame].item() == pytest.approx(SETTINGS.frame_std_floor) == pytest.approx(1 / 255)
    noise = np.random.default_rng(0).integers(0, 256, (5, 1, 32, 32), dtype=np.uint8)
    assert (model.evidence(noise)[:, frame] > 50).all()  # uniform noise: far beyond any clean image
    floored = tiny_model(seed=3, settings=replace(SETTINGS, frame_std_floor=0.5))[0].standardise_on(padded)
    assert floored.combination.std[frame].item() == pytest.approx(0.5)  # the floor comes from the settings


def test_final_model_needs_a_detector_per_part():
    model, _ = tiny_model()
    detectors = {part: model.detectors[part] for part in PARTS if part != "frame"}
    with pytest.raises(ValueError, match="need a detector for every part; missing: frame"):
        FinalModel(model.network, detectors, SETTINGS.frame_std_floor)


def test_the_bundle_dispatches_by_part_id():
    """Each part's evidence is its own detector on its own network output, whatever parts are asked for, in
    whatever order, and whatever order the detectors come in."""
    model, images = tiny_model(seed=4)
    x = torch.as_tensor(images[:50] / 255.0, dtype=torch.float32)
    with torch.no_grad():
        every = model.raw_evidence(x, PARTS)[1].numpy()
        for parts in (("frame", "stage_1", "knn"), ("reconstruction",), ("energy",), tuple(reversed(PARTS))):
            columns = [PARTS.index(part) for part in parts]
            np.testing.assert_allclose(model.raw_evidence(x, parts)[1].numpy(), every[:, columns], rtol=1e-6)
        shuffled = FinalModel(model.network, dict(reversed(list(model.detectors.items()))), SETTINGS.frame_std_floor)
        np.testing.assert_allclose(shuffled.raw_evidence(x, PARTS)[1].numpy(), every, rtol=1e-6)
    assert list(model.detectors) == list(PARTS)


def test_the_parts_settings_come_from_the_config():
    """The frame width, the Mahalanobis ridge and the kNN's k of the profile's `anomaly` reach the deployed parts."""
    model, images = tiny_model(seed=1)
    changed, _ = tiny_model(seed=1, settings=replace(SETTINGS, frame_width=4, mahalanobis_ridge=0.5, knn_k=2))
    raw = {name: m.evidence(images) * m.combination.std.numpy() + m.combination.mean.numpy()
           for name, m in (("deployed", model), ("changed", changed))}
    x = images / 255.0
    for width, name in ((2, "deployed"), (4, "changed")):
        inner = x[:, :, width:-width, width:-width]
        frame = (x.sum(axis=(1, 2, 3)) - inner.sum(axis=(1, 2, 3))) / (32 * 32 - inner[0].size)
        np.testing.assert_allclose(raw[name][:, PARTS.index("frame")], frame, rtol=1e-5, atol=1e-6)
    outputs = batched(model.network.outputs, images)
    np.testing.assert_allclose(raw["changed"][:, PARTS.index("stage_3")],
                               mahalanobis_reference(outputs["stage2"], LABELS, reg=0.5), rtol=1e-3, atol=1e-3)
    assert changed.detectors["knn"].k == 2 and changed.detectors["stage_1"].reg == 0.5
    assert not np.allclose(raw["deployed"][:, PARTS.index("knn")], raw["changed"][:, PARTS.index("knn")])


def test_exported_model_matches_eager(tmp_path):
    model, images = tiny_model(seed=1, weights=weights_of("stage_3", "knn", "energy", "reconstruction", "frame"))
    with pytest.raises(ValueError, match="set model.threshold"):
        save_final_model(model, tmp_path / "unset", profile="smoke")  # no threshold fixed on set 1 yet
    model.threshold = 1.0
    loaded = load_final_model(save_final_model(model, tmp_path, profile="smoke", extra={"note": "test"}))
    assert (tmp_path / "model.pt2").is_file()
    assert loaded.threshold == 1.0 and loaded.metadata["note"] == "test" and len(loaded.class_names) == 5
    assert loaded.metadata["score_parts"] == ["stage_3", "knn", "energy", "reconstruction", "frame"]
    assert loaded.metadata["format_version"] == FORMAT_VERSION == 4
    for batch in (images[:1], images[:7], images):  # the export is not tied to the example's batch size
        for a, b in zip(run_model(loaded.module, batch), run_model(model, batch)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_damaged_or_missing_model(tmp_path, model_folder):
    with pytest.raises(DataError, match="does not exist"):
        load_final_model(tmp_path / "nowhere")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "model.json").write_text((model_folder / "model.json").read_text())
    (damaged / "model.pt2").write_bytes(b"not a model")
    with pytest.raises(DataError, match="not a readable exported model"):
        load_final_model(damaged)
    (damaged / "model.json").write_text("{")
    with pytest.raises(DataError, match="model.json is damaged"):
        load_final_model(damaged)


def test_default_model_folder(tmp_path):
    with pytest.raises(UserError, match="make report"):
        default_model_folder(tmp_path)
    (tmp_path / "checkpoints" / "smoke" / "final").mkdir(parents=True)
    assert default_model_folder(tmp_path).parts[-2] == "smoke"
    (tmp_path / "checkpoints" / "gpu" / "final").mkdir(parents=True)
    assert default_model_folder(tmp_path).parts[-2] == "gpu"  # cpu, then gpu, then smoke
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "summary.json").write_text(json.dumps({"profile": "smoke"}))
    assert default_model_folder(tmp_path).parts[-2] == "smoke"  # the last full run wins


# --------------------------------------------------------------------------- the command line
# A fresh process pays torch's import (seconds on two shared cores), so two cases (a good input, a
# malicious pickle) run as real subprocesses and the rest through lib.cli.main in this process: the
# same handler, the same one-line error, the same exit code.


def run_predict(*args, capsys=None):
    """`python -m lib predict ARGS` as a subprocess, or in this process when given capsys."""
    if capsys is None:
        return subprocess.run([sys.executable, "-m", "lib", "predict", *map(str, args)], capture_output=True,
                              text=True, cwd=PROJECT_ROOT, env=dict(os.environ), timeout=120)
    capsys.readouterr()
    returncode = main(["predict", *map(str, args)])
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=returncode, stdout=captured.out, stderr=captured.err)


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], result.stderr


def check_csv(out, rows, columns=COLUMNS):
    table = pd.read_csv(out)
    assert list(table.columns) == columns and len(table) == rows
    assert table["class"].between(0, 4).all() and set(table["anomaly_flag"]) <= {0, 1}
    assert table["class_name"].isin(CLASS_NAMES).all()
    return table


def test_predict_npy_subprocess(tmp_path, model_folder):
    images = np.random.default_rng(0).integers(0, 256, (9, 28, 28), dtype=np.uint8)
    path, out = tmp_path / "images.npy", tmp_path / "predictions.csv"
    np.save(path, images)
    result = run_predict(path, "--out", out, "--model", model_folder, "--threads", "1")
    assert result.returncode == 0 and "wrote 9 rows" in result.stdout, result.stderr
    check_csv(out, 9)
    assert np.array_equal(np.load(path), images)  # the input is untouched


def test_time_predict_runs_the_command(model_folder):
    """Notebook 04 times `predict` in a fresh process on images saved as .npy, model load included (it checks
    the CSV's row count itself)."""
    images = np.random.default_rng(3).integers(0, 256, (20, 1, 32, 32), dtype=np.uint8)
    assert 0 < time_predict(model_folder, images) < 120


@pytest.mark.parametrize("shape", [(6, 32, 32), (6, 1, 32, 32), (6, 1, 28, 28)])
def test_predict_npy_shapes(tmp_path, model_folder, capsys, shape):
    path, out = tmp_path / "images.npy", tmp_path / "predictions.csv"
    np.save(path, np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8))
    result = run_predict(path, "--out", out, "--model", model_folder, capsys=capsys)
    assert result.returncode == 0, result.stderr
    check_csv(out, 6)


def test_predict_28_is_padded_like_the_data(tmp_path, model_folder, capsys):
    small = np.random.default_rng(2).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    for name, images in (("small", small), ("padded", pad(small))):
        np.save(tmp_path / f"{name}.npy", images)
        assert run_predict(tmp_path / f"{name}.npy", "--out", tmp_path / f"{name}.csv", "--model", model_folder,
                           capsys=capsys).returncode == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "small.csv"), pd.read_csv(tmp_path / "padded.csv"))


def test_predict_assignment_pickle(tmp_path, model_folder, capsys):
    path, out = tmp_path / "data.pickle", tmp_path / "predictions.csv"
    path.write_bytes(pickle.dumps(valid_data(n=3), protocol=4))
    result = run_predict(path, "--out", out, "--model", model_folder, capsys=capsys)
    assert result.returncode == 0, result.stderr
    table = check_csv(out, 12, ["set"] + COLUMNS)
    assert table["set"].value_counts().to_dict() == {name: 3 for name in valid_data()}


def test_predict_refuses_malicious_pickle_subprocess(tmp_path, model_folder):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pickle"
    path.write_bytes(pickle.dumps({"unlabeled_data": CreatesFile(target)}, protocol=4))
    result = run_predict(path, "--out", tmp_path / "out.csv", "--model", model_folder)
    assert_one_line_error(result, "refused to load pickle global")
    assert not target.exists() and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("name, array, fragment", [
    ("wrong_shape", np.zeros((4, 30, 30), np.uint8), "shape (4, 30, 30) is not supported"),
    ("channels", np.zeros((4, 3, 32, 32), np.uint8), "shape (4, 3, 32, 32) is not supported"),
    ("float", np.zeros((4, 32, 32), np.float32), "found dtype float32; uint8 images with values 0-255 expected"),
    ("nan", np.full((4, 32, 32), np.nan), "found float values including NaN; uint8 images with values 0-255"),
    ("int", np.zeros((4, 32, 32), np.int64), "found dtype int64; uint8 images"),
    ("empty", np.zeros((0, 32, 32), np.uint8), "contains no images"),
    ("objects", np.array([None, 1], dtype=object), "holds Python objects"),
])
def test_predict_refuses_bad_arrays(tmp_path, model_folder, capsys, name, array, fragment):
    path = tmp_path / f"{name}.npy"
    np.save(path, array, allow_pickle=True)
    result = run_predict(path, "--out", tmp_path / "out.csv", "--model", model_folder, capsys=capsys)
    assert_one_line_error(result, fragment)


@pytest.mark.parametrize("filename, content, fragment", [
    ("a.pickle", [np.zeros((2, 32, 32), np.uint8)], "expected a .npy array or a pickled dict of sets"),
    ("a.pickle", {"a": {"data": np.zeros((2, 32, 32), np.float64)}}, ": a: found dtype float64"),
    ("a.pickle", b"garbage", "not a readable pickle"),
    ("a.npy", b"garbage", "not a .npy file (no NumPy header)"),
])
def test_predict_refuses_bad_files(tmp_path, model_folder, capsys, filename, content, fragment):
    path = tmp_path / filename
    path.write_bytes(content if isinstance(content, bytes) else pickle.dumps(content, protocol=4))
    assert_one_line_error(run_predict(path, "--out", tmp_path / "out.csv", "--model", model_folder, capsys=capsys),
                          fragment)


def test_predict_refuses_missing_input_and_model(tmp_path, model_folder, capsys):
    images = tmp_path / "images.npy"
    np.save(images, np.zeros((2, 32, 32), np.uint8))
    assert_one_line_error(run_predict(tmp_path / "nope.npy", "--out", tmp_path / "out.csv", "--model", model_folder,
                                      capsys=capsys), "nope.npy does not exist")
    assert_one_line_error(run_predict(images, "--out", tmp_path / "out.csv", "--model", tmp_path / "no_model",
                                      capsys=capsys), "model.pt2 does not exist")


def test_predict_refuses_to_overwrite_input(tmp_path, model_folder, capsys):
    path = tmp_path / "images.npy"
    np.save(path, np.zeros((2, 32, 32), np.uint8))
    before = path.read_bytes()
    assert_one_line_error(run_predict(path, "--out", path, "--model", model_folder, capsys=capsys),
                          "is the input file")
    assert path.read_bytes() == before
    assert_one_line_error(run_predict(path, "--out", tmp_path / "no" / "out.csv", "--model", model_folder,
                                      capsys=capsys), "folder of --out")
