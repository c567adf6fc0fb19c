import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.experiments import classification
from lib.nn import finetune
from lib.nn.finetune import FinetuneConfig, fit_classifier, fixmatch_loss
from lib.nn.models import ModelConfig
from lib.nn.train import lr_at

TINY = ModelConfig(kind="contrastive", width=4, depth=0, features=16)


def test_fixmatch_loss_by_hand():
    # image 1: confident (p = 0.98 for class 0) -> counted; image 2: p = 0.5/0.5 -> masked out
    weak = torch.tensor([[math.log(0.98), math.log(0.02)], [0.0, 0.0]])
    strong = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    loss, mask = fixmatch_loss(weak, strong, confidence=0.95)
    assert mask.tolist() == [1.0, 0.0]
    # CE of uniform logits against class 0 is log 2; averaged over both images
    assert loss.item() == pytest.approx(math.log(2) / 2)


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 5
    x = np.zeros((n, 1, 32, 32), np.uint8)
    for i, c in enumerate(y):  # a class-dependent bar, learnable in a few steps
        x[i, 0, 4 + 5 * c : 8 + 5 * c, 4:28] = 200 + rng.integers(0, 50)
    return x, y


def test_fit_resumes_exactly(tmp_path, monkeypatch):
    x, y = tiny_data()
    cfg = FinetuneConfig(steps=6, batch_size=8, eval_every=3, unlabeled_ratio=1, confidence=0.0)
    straight = fit_classifier(cfg, TINY, x, y, x, y, tmp_path / "a", unlabeled=x, progress=False)

    # kill a second run at its second evaluation (step 6), after the checkpoint of step 3
    evaluations = []
    real_evaluate = finetune.evaluate

    def evaluate_then_die(*args, **kwargs):
        evaluations.append(1)
        if len(evaluations) == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(finetune, "evaluate", evaluate_then_die)
    with pytest.raises(KeyboardInterrupt):
        fit_classifier(cfg, TINY, x, y, x, y, tmp_path / "b", unlabeled=x, progress=False)
    monkeypatch.setattr(finetune, "evaluate", real_evaluate)
    messages = []
    resumed = fit_classifier(cfg, TINY, x, y, x, y, tmp_path / "b", unlabeled=x, progress=False,
                             log=messages.append)
    assert messages[0].startswith("b: resuming at step 3")
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    reloaded = finetune.load_classifier(tmp_path / "a")
    np.testing.assert_array_equal(finetune.predict_logits(reloaded, x), finetune.predict_logits(straight.model, x))


def test_training_code_never_reads_the_answer_key():
    """The networks and their training (lib/nn) never name the answer key or its fields."""
    sources = sorted(Path(finetune.__file__).parent.glob("*.py"))
    assert len(sources) >= 4
    for path in sources:
        text = path.read_text()
        assert "answer_key" not in text and "unlabeled_class" not in text, path.name


def test_stratified_split_and_label_subset():
    y = np.repeat(np.arange(5), 40)
    train, val = classification.stratified_split(y, 0.2, seed=0)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(y)
    assert np.bincount(y[val]).tolist() == [8] * 5
    subset = classification.label_subset(y, 12, seed=0)
    assert len(subset) == 12 and np.bincount(y[subset]).max() - np.bincount(y[subset]).min() <= 1


def test_stacking_learns_from_held_out_probabilities():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 30)
    good = np.eye(5)[y] * 0.8 + 0.04
    noise = rng.dirichlet(np.ones(5), len(y))
    stack = classification.Stacking.fit([noise, good], y, seed=0)
    assert stack.cv_accuracy > 0.9
    assert (stack.predict_proba([noise, good]).argmax(1) == y).mean() > 0.9


class Killed(Exception):
    pass


def _die_after_first_record(messages):
    def log(message):
        messages.append(message)
        if " step " in message:  # the first record's line: its checkpoint is written
            raise Killed

    return log


def test_pretrain_classifier_resumes_exactly_and_reloads(tmp_path):
    x, y = tiny_data()
    cfg = FinetuneConfig(steps=6, batch_size=8, eval_every=3)
    straight = finetune.pretrain_classifier(TINY, x, y, 5, cfg, tmp_path / "a", heldout=(x, y), log=lambda m: None)
    messages = []
    with pytest.raises(Killed):
        finetune.pretrain_classifier(TINY, x, y, 5, cfg, tmp_path / "b", heldout=(x, y),
                                     log=_die_after_first_record(messages))
    messages.clear()
    resumed = finetune.pretrain_classifier(TINY, x, y, 5, cfg, tmp_path / "b", heldout=(x, y), log=messages.append)
    assert messages[0].startswith("b: resuming at step 3 of 6")
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.heldout_accuracy == straight.heldout_accuracy is not None
    reloaded = finetune.load_classifier(tmp_path / "b")
    np.testing.assert_array_equal(finetune.predict_logits(reloaded, x), finetune.predict_logits(straight.model, x))


def test_fit_twice_with_one_seed_is_identical_and_groups_follow_the_rule(tmp_path):
    x, y = tiny_data()
    cfg = FinetuneConfig(steps=4, batch_size=8, eval_every=2, backbone_lr_factor=0.3, weight_decay=0.01,
                         recon_weight=0.5)
    quiet = dict(unlabeled=x, progress=False, log=lambda m: None)
    a = fit_classifier(cfg, TINY, x, y, x, y, tmp_path / "a", **quiet)
    b = fit_classifier(cfg, TINY, x, y, x, y, tmp_path / "b", **quiet)
    for (name, wa), wb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(wa, wb), name

    def untimed(history):
        return [{k: v for k, v in h.items() if k not in ("seconds", "images_per_second")} for h in history]

    assert [h["step"] for h in a.history] == [2, 4] and untimed(a.history) == untimed(b.history)
    groups = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["optimizer"]["param_groups"]
    assert [(g["lr_factor"], g["weight_decay"]) for g in groups] == [(0.3, 0.01), (0.3, 0.0), (1.0, 0.01), (1.0, 0.0)]
    assert groups[0]["lr"] == pytest.approx(0.3 * lr_at(3, 4, 0, cfg)) and groups[-1]["lr"] == lr_at(3, 4, 0, cfg)
