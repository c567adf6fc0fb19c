"""The cosine-head classifier (lib.nn.contrastive.Classifier) and its training (lib.train.runs.finetune): labels,
FixMatch, the auxiliary decoder, a pretrained encoder, and another number of classes."""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import lib.nn
import lib.train
from lib.config import NONE, ClassifierConfig, ContrastiveConfig, Finetune, Training
from lib.experiments import classification
from lib.nn.contrastive import Classifier, ContrastiveModel
from lib.nn.infer import batched
from lib.train import checkpoint
from lib.train.loop import Schedule, lr_at
from lib.train.objectives import fixmatch
from lib.train.runs import finetune, validation
from tests.test_training import Killed, assert_same_weights, die_after_records, untimed

TINY = ContrastiveConfig(width=4, depth=0, features=16)
QUIET = dict(progress=False, log=lambda m: None)


def settings(steps, batch, eval_every, **changes):
    return Finetune(Training(lr=2e-3, weight_decay=5e-4, batch=batch, steps=steps, min_lr_fraction=0.01),
                    eval_every=eval_every, **changes)


def test_fixmatch_loss_by_hand():
    # image 1: confident (p = 0.98 for class 0) -> counted; image 2: p = 0.5/0.5 -> masked out
    weak = torch.tensor([[math.log(0.98), math.log(0.02)], [0.0, 0.0]])
    strong = torch.tensor([[0.0, 0.0], [5.0, -5.0]])
    loss, mask = fixmatch(weak, strong, confidence=0.95)
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


def test_fit_resumes_exactly(tmp_path):
    x, y = tiny_data()
    cfg = settings(6, 8, 3, unlabeled_ratio=1, confidence=0.0)
    straight = finetune(cfg, TINY, x, y, tmp_path / "a", "ft", seed=0, unlabeled=x, evaluate=validation(x, y),
                        **QUIET)
    assert [h["step"] for h in straight.history] == [3, 6]
    assert {"val_loss", "val_accuracy", "supervised", "unsupervised", "confident_fraction"} <= set(straight.history[0])

    # kill a second run at its second evaluation (step 6), after the checkpoint of step 3
    evaluations = []
    real_evaluate = validation(x, y)

    def evaluate_then_die(model, steps):
        evaluations.append(steps)
        if len(evaluations) == 2:
            raise KeyboardInterrupt
        return real_evaluate(model, steps)

    with pytest.raises(KeyboardInterrupt):
        finetune(cfg, TINY, x, y, tmp_path / "b", "ft", seed=0, unlabeled=x, evaluate=evaluate_then_die, **QUIET)
    assert evaluations == [3, 6]
    messages = []
    resumed = finetune(cfg, TINY, x, y, tmp_path / "b", "ft", seed=0, unlabeled=x, evaluate=real_evaluate,
                       progress=False, log=messages.append)
    assert messages[0] == f"{resumed.folder.name}: resuming at step 3 of 6"
    assert_same_weights(straight.model, resumed.model)
    assert untimed(straight.history) == untimed(resumed.history)
    reloaded = checkpoint.load_model(straight.folder)
    assert isinstance(reloaded, Classifier)
    np.testing.assert_array_equal(batched(reloaded, x), batched(straight.model, x))


def test_validation_measures_loss_and_accuracy():
    x, y = tiny_data(20)
    torch.manual_seed(0)
    model = Classifier(ClassifierConfig(encoder=replace(TINY, decoder=False)))
    logits = torch.as_tensor(batched(model, x))
    record = validation(x, y)(model, 10)
    assert record["val_accuracy"] == pytest.approx((logits.argmax(1).numpy() == y).mean())
    assert record["val_loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, torch.as_tensor(y)).item())


def test_training_code_never_reads_the_answer_key():
    """The networks and their training (lib/nn, lib/train) never name the answer key or its fields."""
    sources = sorted([*Path(lib.nn.__file__).parent.glob("*.py"), *Path(lib.train.__file__).parent.glob("*.py")])
    assert len(sources) >= 10
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


def test_another_number_of_classes_resumes_exactly_and_reloads(tmp_path):
    """A classifier over 7 classes: trained, killed, resumed and reloaded with its own head."""
    x, y = tiny_data()
    cfg = settings(6, 8, 3)
    run = dict(n_classes=7, evaluate=validation(x, y))
    straight = finetune(cfg, TINY, x, y, tmp_path / "a", "source", seed=0, **run, **QUIET)
    assert [h["step"] for h in straight.history] == [3, 6] and "val_accuracy" in straight.history[-1]
    messages = []
    with pytest.raises(Killed):
        finetune(cfg, TINY, x, y, tmp_path / "b", "source", seed=0, **run, progress=False,
                 log=die_after_records(1, messages))
    messages.clear()
    resumed = finetune(cfg, TINY, x, y, tmp_path / "b", "source", seed=0, **run, progress=False, log=messages.append)
    assert messages[0] == f"{resumed.folder.name}: resuming at step 3 of 6"
    assert_same_weights(straight.model, resumed.model)
    assert untimed(resumed.history) == untimed(straight.history)
    reloaded = checkpoint.load_model(resumed.folder)
    assert reloaded.config.n_classes == 7 and reloaded.head.weight.shape == (7, TINY.latent)
    np.testing.assert_array_equal(batched(reloaded, x), batched(straight.model, x))
    with pytest.raises(ValueError, match="labels go up to 4"):
        finetune(cfg, TINY, x, y, tmp_path / "c", "source", seed=0, n_classes=4, **QUIET)


def test_fit_twice_with_one_seed_is_identical_and_groups_follow_the_rule(tmp_path):
    x, y = tiny_data()
    cfg = settings(4, 8, 2, backbone_lr_factor=0.3, recon_weight=0.5)
    cfg = replace(cfg, training=replace(cfg.training, weight_decay=0.01))
    torch.manual_seed(5)
    pretrained = ContrastiveModel(TINY).eval()
    quiet = dict(unlabeled=x, pretrained=pretrained, evaluate=validation(x, y), **QUIET)
    a = finetune(cfg, TINY, x, y, tmp_path / "a", "ft", seed=0, **quiet)
    b = finetune(cfg, TINY, x, y, tmp_path / "b", "ft", seed=0, **quiet)
    assert_same_weights(a.model, b.model)
    assert [h["step"] for h in a.history] == [2, 4] and untimed(a.history) == untimed(b.history)
    assert "reconstruction" in a.history[0] and a.model.decoder is not None
    saved = torch.load(a.folder / checkpoint.FILE, weights_only=True)
    groups = saved["training"]["optimizer"]["param_groups"]
    # the pretrained encoder learns at backbone_lr_factor times the rate; weights decay, the rest does not
    assert [(g["lr_factor"], g["weight_decay"]) for g in groups] == [(0.3, 0.01), (0.3, 0.0), (1.0, 0.01), (1.0, 0.0)]
    schedule = Schedule.of(cfg.training, len(x), 0, every=cfg.eval_every)
    assert groups[0]["lr"] == pytest.approx(0.3 * lr_at(3, schedule)) and groups[-1]["lr"] == lr_at(3, schedule)
    # from scratch, every parameter learns at the full rate
    scratch = finetune(cfg, TINY, x, y, tmp_path / "a", "ft", seed=0, unlabeled=x, **QUIET)
    assert scratch.folder != a.folder  # the start (pretrained or not) is part of the run
    groups = checkpoint.read(scratch.folder)["training"]["optimizer"]["param_groups"]
    assert [g["lr_factor"] for g in groups] == [1.0, 1.0, 1.0, 1.0]


def test_a_pretrained_encoder_is_copied_and_the_head_starts_at_the_class_means():
    x, y = tiny_data(20)
    torch.manual_seed(1)
    pretrained = ContrastiveModel(TINY).eval()
    model = Classifier(ClassifierConfig(encoder=replace(TINY, decoder=False))).eval()
    model.load_encoder(pretrained)
    np.testing.assert_array_equal(batched(model.embed, x), batched(pretrained.embed, x))
    z = torch.as_tensor(batched(model.embed, x))
    labels = torch.as_tensor(y)
    model.init_prototypes(z[labels != 4], labels[labels != 4])  # class 4 absent: its weight stays as it was
    before = model.head.weight[4].detach().clone()
    for c in range(4):
        mean = z[labels == c].mean(0)
        assert torch.allclose(model.head.weight[c], mean / mean.norm(), atol=1e-6)
    assert torch.equal(model.head.weight[4], before)


def test_fixmatch_or_the_decoder_need_the_unlabeled_images(tmp_path):
    x, y = tiny_data(16)
    for changes in ({"unlabeled_ratio": 1}, {"recon_weight": 1.0}):
        with pytest.raises(ValueError, match="needs the unlabeled images"):
            finetune(settings(2, 8, 1, **changes), TINY, x, y, tmp_path, "ft", seed=0, **QUIET)
    labels_only = settings(2, 8, 1)
    labels_only = replace(labels_only, training=replace(labels_only.training, augment=NONE))
    plain = finetune(labels_only, TINY, x, y, tmp_path, "ft", seed=0, **QUIET)
    assert plain.model.decoder is None and "unsupervised" not in plain.history[-1]
