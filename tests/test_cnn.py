"""The plain baseline CNN (CNNConfig(): the backbone and its classifier alone), its training (lib.train.runs
.train_cnn) and the epoch batches it shares with notebook 02's training."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.config import PROFILES, SHIFT_3, CNNConfig
from lib.nn.augment import seeded_generator
from lib.nn.cnn import CNN
from lib.nn.infer import batched
from lib.train import checkpoint, objectives
from lib.train.loop import EpochBatches
from lib.train.runs import train_cnn
from tests.test_training import Killed, assert_same_weights, die_after_records, untimed

BASELINE = PROFILES["cpu"].baseline
TINY_NETWORK = replace(BASELINE.network, widths=(4, 4, 8, 8, 8, 8))
TINY_TRAINING = replace(BASELINE.training, epochs=2, batch=16)  # 64 images: 4 steps per epoch
QUIET = dict(progress=False, log=lambda *a: None)


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 5
    x = (rng.random((n, 1, 32, 32)) * 40 + 40 * y[:, None, None, None]).astype(np.uint8)
    return x, y


def test_epoch_batches_are_seeded_permutations():
    batches = EpochBatches(10, 4, seed=3)
    epoch0 = torch.cat([batches(0), batches(1)])
    assert len(set(epoch0.tolist())) == 8  # two full batches per epoch, no repeats
    expected = torch.randperm(10, generator=seeded_generator(3, 1, stream=1))[:4]
    assert torch.equal(batches(2), expected)  # step 2 opens epoch 1
    assert torch.equal(EpochBatches(10, 4, seed=3)(2), expected)  # no hidden state: a resumed run agrees
    assert len(EpochBatches(3, 8, seed=0)(0)) == 3  # a batch larger than the data is the whole data


def test_architecture_follows_design():
    assert BASELINE.network == CNNConfig() and BASELINE.training.augment == SHIFT_3
    model = CNN(CNNConfig())
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2] and convs[0].kernel_size == (3, 3)
    pooled = model.stage_features(torch.zeros(2, 1, 32, 32))
    assert [p.shape[1] for p in pooled] == [32, 64, 128] and model(torch.zeros(2, 1, 32, 32)).shape == (2, 5)
    # the plain baseline has the classifier alone: no description, no decoder
    out = model.eval().outputs(torch.zeros(2, 1, 32, 32))
    assert set(out) == {"stage0", "stage1", "stage2", "logits"}
    assert torch.equal(out["logits"], model(torch.zeros(2, 1, 32, 32)))
    assert not hasattr(model, "describe") and not hasattr(model, "decoder")


def test_the_plain_loss_is_label_smoothed_cross_entropy():
    torch.manual_seed(0)
    model = CNN(TINY_NETWORK).eval()
    x, y = torch.rand(6, 1, 32, 32), torch.arange(6) % 5
    loss, logs = objectives.cnn(model, x, y, 0.1, reconstruction_weight=1.0)
    assert logs == {}
    expected = torch.nn.functional.cross_entropy(model(x), y, label_smoothing=0.1)
    assert torch.allclose(loss, expected)


def test_a_killed_run_resumes_exactly_and_reloads(tmp_path):
    x, y = tiny_data()
    straight = train_cnn(TINY_NETWORK, TINY_TRAINING, x, y, tmp_path / "a", "cnn", seed=0, **QUIET)
    assert [h["step"] for h in straight.history] == [4, 8] and [h["epoch"] for h in straight.history] == [1, 2]
    with pytest.raises(Killed):
        train_cnn(TINY_NETWORK, TINY_TRAINING, x, y, tmp_path / "b", "cnn", seed=0, progress=False,
                  log=die_after_records(1))
    messages = []
    resumed = train_cnn(TINY_NETWORK, TINY_TRAINING, x, y, tmp_path / "b", "cnn", seed=0, progress=False,
                        log=messages.append)
    assert messages[0] == f"{resumed.folder.name}: resuming at step 4 of 8"
    assert_same_weights(straight.model, resumed.model)  # dropout's draws are repeated on resume too
    assert untimed(straight.history) == untimed(resumed.history)
    reloaded = checkpoint.load_model(straight.folder)
    assert isinstance(reloaded, CNN) and reloaded.config == TINY_NETWORK
    images = torch.as_tensor(x[:8]).float() / 255
    with torch.no_grad():
        # the trained network is kept channels-last, the reloaded one is not: equal up to rounding
        assert torch.allclose(reloaded(images), straight.model(images), atol=1e-5)
    np.testing.assert_allclose(batched(reloaded, x), batched(straight.model, x), atol=1e-5)

