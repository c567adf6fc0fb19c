import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.nn.augment import AugmentConfig, seeded_generator
from lib.nn.models import ModelConfig, build_model, encode
from lib.nn.train import (
    TrainConfig,
    array_fingerprint,
    list_checkpoints,
    load_history,
    load_trained,
    lr_at,
    make_optimizer,
    train,
)

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


def test_two_runs_with_the_same_seed_are_identical_and_another_seed_differs(tmp_path):
    config = ModelConfig("contrastive", width=4, features=8, decoder=False)
    cfg = TrainConfig(epochs=1, batch_size=32, augment=AugmentConfig(), keep=1)
    a = train(config, IMAGES, cfg, tmp_path / "a", **QUIET)
    b = train(config, IMAGES, cfg, tmp_path / "b", **QUIET)
    c = train(config, IMAGES, replace(cfg, seed=1), tmp_path / "c", **QUIET)
    wa, wb, wc = _weights(a.model), _weights(b.model), _weights(c.model)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_other_data_start_afresh(tmp_path):
    config, cfg = ModelConfig("conv_ae", width=4), TrainConfig(epochs=1, batch_size=32)
    train(config, IMAGES, cfg, tmp_path, **QUIET)
    messages = []
    again = train(config, IMAGES[::-1].copy(), cfg, tmp_path, log=messages.append, progress=False)
    assert again.resumed_from == 0 and "another configuration" in messages[0]
    assert json.loads((tmp_path / "config.json").read_text())["data"] == array_fingerprint(IMAGES[::-1])


def test_weights_decay_but_biases_and_normalisation_do_not():
    model = build_model(ModelConfig("contrastive", width=4, features=8))
    backbone = list(model.encoder.parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in backbone)]
    optimizer = make_optimizer([(backbone, 0.3), (rest, 1.0)], lr=1e-3, weight_decay=0.05)
    groups = optimizer.param_groups
    assert [(g["lr_factor"], g["weight_decay"]) for g in groups] == [(0.3, 0.05), (0.3, 0.0), (1.0, 0.05), (1.0, 0.0)]
    for group in groups:
        assert all((p.ndim > 1) == (group["weight_decay"] > 0) for p in group["params"])
    assert all(any(p is q for q in groups[0]["params"] + groups[1]["params"]) for p in backbone)
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len(list(model.parameters())) == len({id(p) for p in grouped})
    norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    assert norms and all(p.ndim == 1 for m in norms for p in m.parameters())  # so none of them decays


def test_generators_differ_by_seed_index_and_stream():
    def draw(*args):
        return torch.rand(4, generator=seeded_generator(*args)).tolist()

    assert draw(0, 3) == draw(0, 3)
    assert len({tuple(draw(*a)) for a in [(0, 3), (1, 3), (0, 4), (0, 3, "cpu", 1)]}) == 4


def test_checkpoints_from_before_the_shared_loop_still_load(tmp_path):
    """Older checkpoints kept the configurations at the top level, with model fields since removed."""
    config = ModelConfig("contrastive", width=4, features=8)
    model = build_model(config)
    old_fields = dict(projection=0, prototypes=0, prototype_weight=1.0, prototype_temperature=0.1,
                      sinkhorn_epsilon=0.05)
    torch.save({"epoch": 1, "model_config": {**config.to_dict(), **old_fields}, "train_config": {},
                "model": model.state_dict(), "optimizer": {}, "history": [{"epoch": 1, "loss": 1.0}]},
               tmp_path / "epoch_001.pt")
    assert load_history(tmp_path) == [{"epoch": 1, "loss": 1.0}]
    assert np.array_equal(encode(load_trained(tmp_path), IMAGES[:4]), encode(model.eval(), IMAGES[:4]))
