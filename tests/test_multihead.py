"""The project's model (CNNConfig(description_dim=10, decoder=True)): three heads on the plain CNN's backbone,
its loss (lib.train.objectives.cnn), training (lib.train.runs.train_cnn) and pseudo-labels."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.config import PROFILES, CNNConfig
from lib.experiments.classification import pseudo_labels
from lib.nn.cnn import CNN
from lib.nn.infer import batched
from lib.train import checkpoint, objectives
from lib.train.runs import train_cnn
from tests.test_cnn import tiny_data
from tests.test_training import Killed, assert_same_weights, die_after_records, untimed

MODEL = PROFILES["cpu"].model
TINY_NETWORK = replace(MODEL.network, widths=(4, 4, 8, 8, 8, 8))
TINY_TRAINING = replace(MODEL.training, steps=8, batch=16)  # a record (and checkpoint) every step


def test_heads_and_shapes():
    assert MODEL.network == CNNConfig(description_dim=10, decoder=True)
    model = CNN(MODEL.network).eval()
    out = model.outputs(torch.zeros(3, 1, 32, 32))
    assert [out[f"stage{i}"].shape[1] for i in range(3)] == [32, 64, 128]
    assert out["logits"].shape == (3, 5) and out["z"].shape == (3, 10)
    images = model.decode(out["z"])
    assert images.shape == (3, 1, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert model.description_head(out["z"]).shape == (3, 5)


def test_decoder_does_not_shape_the_description():
    """The reconstruction loss reaches the decoder only: the backbone's gradient is that of the two heads."""
    torch.manual_seed(0)
    model = CNN(replace(TINY_NETWORK, dropout=0.0)).eval()
    x, y = torch.rand(6, 1, 32, 32), torch.arange(6) % 5
    gradients, logs = [], []
    for weight in (0.0, 5.0):
        model.zero_grad()
        loss, log = objectives.cnn(model, x, y, 0.1, weight)
        loss.backward()
        logs.append(log)
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    backbone = [name for name in gradients[0] if not name.startswith("decoder.")]
    assert any(name.startswith("stages.") for name in backbone) and "describe.weight" in backbone
    for name in backbone:  # stages, classifier, description and its head: unchanged by the decoder's weight
        assert torch.allclose(gradients[0][name], gradients[1][name]), name
    assert not torch.allclose(gradients[0]["decoder.fc.0.weight"], gradients[1]["decoder.fc.0.weight"])
    assert "decoder.fc.0.weight" not in gradients[0] or gradients[0]["decoder.fc.0.weight"].abs().sum() == 0
    assert logs[0] == logs[1] and set(logs[0]) == {"classifier", "description", "reconstruction"}
    terms = logs[1]
    assert loss.item() == pytest.approx(terms["classifier"] + terms["description"] + 5.0 * terms["reconstruction"],
                                        rel=1e-5)


def test_training_resumes_exactly_and_reloads(tmp_path):
    x, y = tiny_data()
    quiet = dict(seed=1, reconstruction_weight=1.0, log=lambda *_: None, progress=False)
    full = train_cnn(TINY_NETWORK, TINY_TRAINING, x, y, tmp_path / "full", "model", **quiet)
    assert [h["step"] for h in full.history] == list(range(1, 9))
    assert {"classifier", "description", "reconstruction"} <= set(full.history[-1])
    # same settings, so the folder's checkpoint is this run's: it is loaded, not retrained
    messages = []
    again = train_cnn(TINY_NETWORK, TINY_TRAINING, x, y, tmp_path / "full", "model",
                      **{**quiet, "log": messages.append})
    assert messages == [f"{full.folder.name}: already trained, loaded"] and again.history == full.history
    # killed after three records, then resumed: the same weights as the uninterrupted run
    with pytest.raises(Killed):
        train_cnn(TINY_NETWORK, TINY_TRAINING, x, y, tmp_path / "killed", "model",
                  **{**quiet, "log": die_after_records(3)})
    messages.clear()
    resumed = train_cnn(TINY_NETWORK, TINY_TRAINING, x, y, tmp_path / "killed", "model",
                        **{**quiet, "log": messages.append})
    assert messages[0] == f"{resumed.folder.name}: resuming at step 3 of 8"
    assert_same_weights(full.model, resumed.model)
    assert untimed(full.history) == untimed(resumed.history)
    # the reconstruction weight is part of the run: another weight, another folder
    other = train_cnn(TINY_NETWORK, TINY_TRAINING, x, y, tmp_path / "full", "model",
                      **{**quiet, "reconstruction_weight": 0.0})
    assert other.folder != full.folder
    # reloaded from the one checkpoint format
    reloaded = checkpoint.load_model(full.folder)
    assert isinstance(reloaded, CNN) and reloaded.config == TINY_NETWORK
    expected = batched(full.model.outputs, x)
    got = batched(reloaded.outputs, x)
    assert set(got) == {"stage0", "stage1", "stage2", "logits", "z"}
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched(lambda t: reloaded.decode(reloaded.outputs(t)["z"]), x[:4]),
                               batched(lambda t: full.model.decode(full.model.outputs(t)["z"]), x[:4]), atol=1e-6)


def test_pseudo_labels_keep_confident_images_only():
    logits = np.array([[5.0, 0, 0, 0, 0], [0.1, 0, 0, 0, 0], [0, 0, 0, 9.0, 0]])
    index, labels = pseudo_labels(logits, confidence=0.9)
    assert index.tolist() == [0, 2] and labels.tolist() == [0, 3]
    assert len(pseudo_labels(logits, confidence=1.0)[0]) == 0
