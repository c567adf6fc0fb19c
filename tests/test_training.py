import numpy as np
import pytest
import torch

from lib.nn.augment import AugmentConfig
from lib.nn.models import ModelConfig, encode
from lib.nn.train import TrainConfig, list_checkpoints, load_history, load_trained, lr_at, train

IMAGES = np.random.default_rng(0).integers(0, 256, (64, 1, 32, 32), dtype=np.uint8)
QUIET = dict(log=lambda message: None, progress=False)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["contrastive", "vae"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, kind):
    config = ModelConfig(kind, width=4, features=8, decoder=False)
    two = TrainConfig(epochs=2, batch_size=32, augment=AugmentConfig(), keep=None)
    straight = train(config, IMAGES, two, tmp_path / "straight", **QUIET)

    # The same run killed after epoch 1: train one epoch, then drop the later checkpoints.
    interrupted = tmp_path / "interrupted"
    train(config, IMAGES, two, interrupted, **QUIET)
    (interrupted / "epoch_002.pt").unlink()
    resumed = train(config, IMAGES, two, interrupted, **QUIET)
    assert resumed.resumed_from == 1

    a, b = _weights(straight.model), _weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]


def test_checkpoints_history_and_reload(tmp_path):
    config = ModelConfig("conv_ae", width=4)
    result = train(config, IMAGES, TrainConfig(epochs=3, batch_size=32, keep=2), tmp_path, **QUIET)
    # The initialisation (epoch 0) is always kept, plus the `keep` newest.
    assert [epoch for epoch, _ in list_checkpoints(tmp_path)] == [0, 2, 3]
    assert [h["epoch"] for h in load_history(tmp_path)] == [1, 2, 3]
    assert all(h["images_per_second"] > 0 for h in result.history)
    reloaded = load_trained(tmp_path)
    assert np.allclose(encode(reloaded, IMAGES[:8]), encode(result.model, IMAGES[:8]), atol=1e-6)
    # A finished run is loaded, not retrained; a changed configuration starts afresh.
    again = train(config, IMAGES, TrainConfig(epochs=3, batch_size=32, keep=2), tmp_path, **QUIET)
    assert again.resumed_from == 3
    fresh = train(config, IMAGES, TrainConfig(epochs=1, batch_size=32, keep=2), tmp_path, **QUIET)
    assert fresh.resumed_from == 0 and [e for e, _ in list_checkpoints(tmp_path)] == [0, 1]


def test_schedule_warms_up_then_decays():
    cfg = TrainConfig(epochs=1, lr=1.0, min_lr_fraction=0.0)
    rates = [lr_at(step, 100, 10, cfg) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:])) and rates[-1] < 0.01
