"""The project's network (CNNConfig(description_dim=10, decoder=True)): three heads on the plain CNN's backbone,
its losses (lib.train.objectives.cnn with hard or soft targets, cnn_contrastive), its training
(lib.train.runs.train_cnn, from scratch or from another network's backbone) and its contrastive pretraining
(lib.train.runs.contrastive_cnn)."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.config import PROFILES, STRONG, CNNConfig, Training
from lib.nn.cnn import CNN
from lib.nn.infer import batched
from lib.train import checkpoint, objectives
from lib.train.runs import contrastive_cnn, train_cnn, weights_fingerprint
from tests.test_cnn import tiny_data
from tests.test_training import Killed, assert_same_weights, die_after_records, untimed

MODEL = PROFILES["cpu"].model
TINY_NETWORK = replace(MODEL.network, widths=(4, 4, 8, 8, 8, 8))
# the labels-only arm's recipe for 8 steps: a record (and checkpoint) every step
TINY_TRAINING = replace(MODEL.labels_only, epochs=None, steps=8, batch=16)
QUIET = dict(log=lambda *_: None, progress=False)


def one_hot(labels, classes: int = 5) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[np.asarray(labels)]


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


def test_without_a_decoder_the_loss_has_no_reconstruction_term():
    torch.manual_seed(0)
    model = CNN(replace(TINY_NETWORK, decoder=False, dropout=0.0)).eval()
    assert not hasattr(model, "decoder")
    x, y = torch.rand(6, 1, 32, 32), torch.arange(6) % 5
    loss, logs = objectives.cnn(model, x, y, 0.1, reconstruction_weight=5.0)
    assert set(logs) == {"classifier", "description"}
    out = model.outputs(x)
    expected = (torch.nn.functional.cross_entropy(out["logits"], y, label_smoothing=0.1)
                + torch.nn.functional.cross_entropy(model.description_head(out["z"]), y, label_smoothing=0.1))
    assert torch.allclose(loss, expected)


def test_soft_targets_are_class_probabilities():
    """Distillation's targets: one-hot rows give the loss of the class indices; other rows weigh the classes."""
    torch.manual_seed(0)
    model = CNN(replace(TINY_NETWORK, dropout=0.0)).eval()
    x, y = torch.rand(6, 1, 32, 32), torch.arange(6) % 5
    hard, hard_logs = objectives.cnn(model, x, y, 0.1, 1.0)
    soft, soft_logs = objectives.cnn(model, x, torch.as_tensor(one_hot(y.numpy())), 0.1, 1.0)
    assert soft.item() == pytest.approx(hard.item(), rel=1e-5)
    assert soft_logs == pytest.approx(hard_logs, rel=1e-5)
    probabilities = torch.softmax(torch.randn(6, 5), dim=1)
    _, logs = objectives.cnn(model, x, probabilities, 0.0, 1.0)
    out = model.outputs(x)
    expected = -(probabilities * torch.log_softmax(out["logits"], dim=1)).sum(1).mean()
    assert logs["classifier"] == pytest.approx(expected.item(), rel=1e-5)


def test_training_on_soft_targets(tmp_path):
    x, y = tiny_data()
    quiet = dict(seed=1, reconstruction_weight=1.0, **QUIET)
    training = replace(TINY_TRAINING, steps=4)
    hard = train_cnn(TINY_NETWORK, training, x, y, tmp_path, "hard", **quiet)
    soft = train_cnn(TINY_NETWORK, training, x, one_hot(y), tmp_path, "soft", **quiet)
    # one-hot targets: the same batches and the same losses as the class indices, so (nearly) the same weights
    for name, value in hard.model.state_dict().items():
        torch.testing.assert_close(soft.model.state_dict()[name], value, rtol=1e-4, atol=1e-4)
    # the targets are part of the run: other targets, another folder; the same ones load
    blurred = (0.8 * one_hot(y) + 0.04).astype(np.float32)
    other = train_cnn(TINY_NETWORK, training, x, blurred, tmp_path, "soft", **quiet)
    assert other.folder != soft.folder and np.isfinite(other.history[-1]["loss"])
    messages = []
    again = train_cnn(TINY_NETWORK, training, x, blurred, tmp_path, "soft", **{**quiet, "log": messages.append})
    assert messages == [f"{other.folder.name}: already trained, loaded"]
    assert_same_weights(again.model, other.model)


def test_weights_fingerprint():
    torch.manual_seed(0)
    a = CNN(TINY_NETWORK)
    assert weights_fingerprint(None) == "none"
    copy = CNN(TINY_NETWORK)
    copy.load_state_dict(a.state_dict())
    assert weights_fingerprint(copy) == weights_fingerprint(a) and len(weights_fingerprint(a)) == 10
    with torch.no_grad():
        copy.head.bias[0] += 1e-3
    assert weights_fingerprint(copy) != weights_fingerprint(a)


def test_init_copies_the_backbone_and_the_description_only(tmp_path):
    """`train_cnn(init=...)` starts from another network's stages and description (whatever its classifier or
    decoder); the classifier, the description's head and the decoder start fresh; the start is part of the key."""
    x, y = tiny_data()
    torch.manual_seed(7)
    source = CNN(replace(TINY_NETWORK, n_classes=7, decoder=False)).eval()  # e.g. a transfer source, 7 classes
    frozen = replace(TINY_TRAINING, lr=0.0, steps=2)  # no step moves a weight: the start stays visible
    result = train_cnn(TINY_NETWORK, frozen, x, y, tmp_path, "init", seed=0, init=source, **QUIET)
    torch.manual_seed(0)
    fresh = CNN(TINY_NETWORK)  # the start of a run of seed 0 from scratch
    start = dict(source.named_parameters())
    for name, value in result.model.named_parameters():
        if name.startswith(("stages.", "describe.")):
            assert torch.equal(value, start[name]), name
        else:  # the classifier, the description's own head and the decoder: as from scratch
            assert torch.equal(value, dict(fresh.named_parameters())[name]), name
    key = checkpoint.read(result.folder)["training"]["key"]
    assert key["init"] == weights_fingerprint(source)
    scratch = train_cnn(TINY_NETWORK, frozen, x, y, tmp_path, "init", seed=0, **QUIET)
    assert scratch.folder != result.folder
    assert checkpoint.read(scratch.folder)["training"]["key"]["init"] == "none"
    assert not torch.equal(scratch.model.stages[0][0][0].weight, source.stages[0][0][0].weight)


def test_contrastive_pretraining_of_the_network(tmp_path):
    x, _ = tiny_data()
    training = Training(lr=2e-3, weight_decay=1e-4, batch=16, epochs=2, warmup=0.25, min_lr_fraction=0.01,
                        augment=STRONG)
    first = contrastive_cnn(TINY_NETWORK, training, x, tmp_path, "simclr", seed=0, temperature=0.5, **QUIET)
    assert isinstance(first.model, CNN) and [h["step"] for h in first.history] == [4, 8]
    assert all(np.isfinite(h["nt_xent"]) for h in first.history)
    key = checkpoint.read(first.folder)["training"]["key"]
    assert key["objective"] == "nt_xent" and key["temperature"] == 0.5
    messages = []
    again = contrastive_cnn(TINY_NETWORK, training, x, tmp_path, "simclr", seed=0, temperature=0.5, progress=False,
                            log=messages.append)
    assert messages == [f"{first.folder.name}: already trained, loaded"]
    assert_same_weights(again.model, first.model)
    # the temperature is part of the run
    other = contrastive_cnn(TINY_NETWORK, replace(training, epochs=1), x, tmp_path, "simclr", seed=0,
                            temperature=0.1, **QUIET)
    assert other.folder != first.folder
    # its backbone is the start of a labels run
    run = train_cnn(TINY_NETWORK, replace(TINY_TRAINING, lr=0.0, steps=1), x, np.arange(len(x)) % 5, tmp_path,
                    "from_simclr", seed=0, init=first.model, **QUIET)
    assert torch.equal(run.model.describe.weight, first.model.describe.weight)


def test_contrastive_objective_is_nt_xent_of_two_views():
    torch.manual_seed(0)
    model = CNN(replace(TINY_NETWORK, dropout=0.0)).eval()
    x = torch.rand(5, 1, 32, 32)
    views = iter([x.flip(-1), 0.5 * x])  # two fixed "augmentations"
    loss, logs = objectives.cnn_contrastive(model, x, lambda v: next(views), temperature=0.5)
    z = model.outputs(torch.cat([x.flip(-1), 0.5 * x]))["z"]
    assert torch.allclose(loss, objectives.nt_xent(z[:5], z[5:], 0.5))
    assert logs == {"nt_xent": pytest.approx(loss.item())}
