"""Notebook 05's transfer study: the leakage filter, the digits source, source pretraining, paired comparisons
with training from scratch, and the record the report's variables are made from."""

import json
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lib.config import CNNConfig, Transfer, get_profile, override
from lib.data import Assignment
from lib.data.digits import upscale_pad
from lib.data.replica import FOREIGN, IN_DISTRIBUTION, pad
from lib.eval import metrics
from lib.experiments import transfer
from lib.nn.cnn import CNN
from lib.nn.infer import batched
from lib.render import tables
from lib.render.format import with_ci
from lib.render.variables import effect_phrase, effect_word, ranking, transfer_variables
from lib.train import checkpoint
from lib.train.runs import train_cnn, weights_fingerprint
from lib.workspace import Workspace

TINY = CNNConfig(widths=(4, 4, 8, 8, 8, 8), description_dim=10, decoder=True)  # the model's network, tiny
NAMES = tuple(f"class {i}" for i in range(10))


def fake_fashion(n_per_label=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_label).astype(np.uint8)
    images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    return images, labels


# --------------------------------------------------------------------------- sources and the leakage filter


def test_leakage_filter_removes_exactly_the_images_of_the_excluded_sets():
    images, labels = fake_fashion()
    foreign = np.flatnonzero(np.isin(labels, FOREIGN))
    leaked = foreign[[0, 7, 13]]  # three foreign images placed in the representative sets
    rep1 = np.concatenate([pad(images[leaked[:2]]), pad(images[np.isin(labels, IN_DISTRIBUTION)][:5])])
    rep2 = pad(images[leaked[2:]])
    pool = transfer.foreign_source(images, labels, [rep1, rep2], NAMES)

    assert pool.n_candidates == len(foreign) and pool.n_excluded == 3
    assert len(pool.x) == len(foreign) - 3 and pool.x.dtype == np.uint8 and pool.x.shape[1:] == (1, 32, 32)
    kept = set(transfer.image_hashes(pool.x))
    assert not kept & set(transfer.image_hashes(np.concatenate([rep1, rep2])))
    others = [i for i in foreign if i not in leaked]
    assert kept == set(transfer.image_hashes(pad(images[others])))
    # labels: index i is Fashion-MNIST label FOREIGN[i], and they follow their images
    expected = {h: FOREIGN.index(int(labels[i])) for h, i in zip(transfer.image_hashes(pad(images[others])), others)}
    assert all(expected[h] == y for h, y in zip(transfer.image_hashes(pool.x), pool.y))
    assert pool.class_names == tuple(NAMES[label] for label in FOREIGN)


def test_leakage_filter_catches_duplicates_at_other_indices_and_keeps_near_copies():
    images, labels = fake_fashion()
    foreign = np.flatnonzero(np.isin(labels, FOREIGN))
    twin = images[foreign[0]].copy()
    images = np.concatenate([images, twin[None]])  # a second, pixel-identical copy under another index
    labels = np.concatenate([labels, labels[foreign[:1]]])
    near = pad(images[foreign[1]][None]).copy()
    near[0, 0, 10, 10] ^= 1  # one grey level different: a different image, kept
    pool = transfer.foreign_source(images, labels, [pad(twin[None]), near], NAMES)
    assert pool.n_excluded == 2  # both copies of the twin, and nothing else
    assert len(pool.x) == len(foreign) + 1 - 2


def test_leakage_filter_rejects_unpadded_sets():
    pool = np.zeros((3, 1, 32, 32), np.uint8)
    with pytest.raises(ValueError, match="cannot compare"):
        transfer.not_in(pool, np.zeros((2, 28, 28), np.uint8))


def test_foreign_source_limit_is_seeded():
    images, labels = fake_fashion(n_per_label=20)
    a = transfer.foreign_source(images, labels, [], NAMES, limit=30, seed=1)
    b = transfer.foreign_source(images, labels, [], NAMES, limit=30, seed=1)
    assert len(a.x) == 30 and np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def test_digits_source_looks_like_the_assignment():
    source = transfer.digits_source()
    x = source.x
    assert x.shape == (1797, 1, 32, 32) and x.dtype == np.uint8
    assert (x[:, :, :2] == 0).all() and (x[:, :, -2:] == 0).all()
    assert (x[:, :, :, :2] == 0).all() and (x[:, :, :, -2:] == 0).all()
    assert x.max() == 255 and x.min() == 0
    assert sorted(np.unique(source.y)) == list(range(10)) and len(source.class_names) == 10


def test_upscale_pad_keeps_constant_images_constant():
    full = upscale_pad(np.full((2, 8, 8), 16.0), max_value=16.0)
    assert full.shape == (2, 1, 32, 32) and full.dtype == np.uint8
    assert (full[:, 0, 2:30, 2:30] == 255).all() and full[:, 0].sum() == 2 * 28 * 28 * 255
    quarter = upscale_pad(np.full((1, 8, 8), 4.0), max_value=16.0)
    assert (quarter[0, 0, 2:30, 2:30] == 64).all()  # 63.75 rounded


def test_holdout_split():
    train, held = transfer.holdout_split(50, 0.2, seed=0)
    assert len(held) == 10 and len(train) == 40 and not set(train) & set(held)


# --------------------------------------------------------------------------- supervised source pretraining


def bars(n=80, n_classes=4):
    rng = np.random.default_rng(0)
    y = np.arange(n) % n_classes
    x = np.zeros((n, 1, 32, 32), np.uint8)
    for i, c in enumerate(y):  # a class-dependent bar, learnable in a few steps
        x[i, 0, 4 + 6 * c: 8 + 6 * c, 4:28] = 200 + rng.integers(0, 50)
    return x, y


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second thread, and on a shared machine its spin-waits cost seconds."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_ctx(tmp_path=None, changes=None):
    profile = override(get_profile("smoke"), {"model.network": TINY, **(changes or {})})
    return SimpleNamespace(profile=profile, seed=0, device=torch.device("cpu"),
                           ws=tmp_path and Workspace(tmp_path), checkpoints=tmp_path and tmp_path / "checkpoints")


def test_the_study_network_is_the_models_without_its_decoder():
    ctx = tiny_ctx()
    assert transfer.network(ctx) == replace(TINY, decoder=False)
    assert transfer.network(ctx, 10) == replace(TINY, decoder=False, n_classes=10)
    torch.manual_seed(0)
    model = CNN(transfer.network(ctx))
    x = np.random.default_rng(0).integers(0, 256, (6, 1, 32, 32), dtype=np.uint8)
    z = transfer.description(model, x)
    assert z.shape == (6, 10)
    np.testing.assert_array_equal(z, batched(model.outputs, x)["z"])


def test_supervised_source_learns_saves_and_reloads(tmp_path, one_thread):
    x, y = bars()
    ctx = tiny_ctx()
    settings = replace(Transfer().source, steps=25, batch=16, lr=2e-2)
    messages = []

    def run(network, name, init=None, training=settings, labels=y):
        return train_cnn(network, training, x, labels, tmp_path, name, seed=0, init=init, log=messages.append,
                         progress=False)

    first = run(transfer.network(ctx, 4), "src")
    assert (batched(first.model, x).argmax(1) == y).mean() > 0.5
    assert first.model(torch.zeros(2, 1, 32, 32)).shape == (2, 4) and not hasattr(first.model, "decoder")
    again = run(transfer.network(ctx, 4), "src")
    assert messages[-1].endswith("already trained, loaded") and again.folder == first.folder
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    # fine-tuning's 5-way network takes the source's backbone and description, not its 4-way head
    frozen = replace(settings, lr=0.0, steps=1)  # no step moves a weight: the copied start stays visible
    tuned = run(transfer.network(ctx), "ft", init=first.model, training=frozen, labels=y % 5)
    source = dict(first.model.named_parameters())
    for name, value in tuned.model.named_parameters():
        if name.startswith(("stages.", "describe.")):
            assert torch.equal(value, source[name]), name
    assert tuned.model.head.weight.shape[0] == 5
    # a run that starts from a source is another run than from scratch: its own folder and key
    scratch = run(transfer.network(ctx), "ft", training=frozen, labels=y % 5)
    assert scratch.folder != tuned.folder
    assert checkpoint.read(tuned.folder)["training"]["key"]["init"] == weights_fingerprint(first.model)


# --------------------------------------------------------------------------- words, numbers, rankings


def test_effect_words_and_phrases():
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.95
    b = a.copy()
    b[:200] = False
    assert effect_word(metrics.paired_difference(a, b, n_resamples=500, seed=0)) == "helps"
    assert effect_word(metrics.paired_difference(b, a, n_resamples=500, seed=0)) == "hurts"
    same = metrics.paired_difference(a, a, n_resamples=200, seed=0)
    assert effect_word(same) == "makes no measurable difference"
    assert effect_phrase({"value": 0.041, "ci": [0.02, 0.063]}) == \
        "helps (+4.10 points, 95 % CI [+2.00, +6.30])"
    assert effect_phrase({"value": -0.0123, "ci": [-0.03, 0.004]}, unit=1, what="AUROC", digits=3) == \
        "makes no measurable difference (-0.012 AUROC, 95 % CI [-0.030, +0.004])"
    assert effect_phrase({"value": -0.00001, "ci": [-0.005, 0.005]}).startswith(
        "makes no measurable difference (+0.00 points")  # never "-0.00"


def test_auroc_by_origin_and_its_format():
    labels = np.array([0, 1, 2, 3, 5, 5, 5, 5])
    origin = np.array(["in_distribution"] * 4 + ["foreign", "foreign", "corrupted", "corrupted"])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.35, 0.05])
    result = transfer.auroc_by_origin(scores, labels, origin, n_resamples=50, seed=0)
    assert result["foreign"]["value"] == 1.0
    assert result["corrupted"]["value"] == pytest.approx((3 + 0) / 8)  # 0.35 beats 3 of 4 normals, 0.05 none
    assert set(result) == {"all", "foreign", "corrupted"}
    assert set(transfer.auroc_by_origin(scores, labels, None, n_resamples=10)) == {"all"}
    assert with_ci({"value": 0.9731, "ci": [0.962, 0.983]}) == "97.3 [96.2, 98.3]"
    assert with_ci({"value": 0.012, "ci": [-0.01, 0.05]}, scale=1, digits=3, sign=True) == "+0.012 [-0.010, +0.050]"


def test_ranking():
    entries = {"b": (0.8, "80.0"), "a": (0.9, "90.0"), "c": (0.85, "85.0")}
    assert ranking(entries) == "a (90.0) ≥ c (85.0) ≥ b (80.0)"


# --------------------------------------------------------------------------- the study's bookkeeping


def fake_assignment(n=40):
    rng = np.random.default_rng(0)
    draw = lambda k: rng.integers(0, 256, (k, 1, 32, 32), dtype=np.uint8)
    rep1_y = np.r_[np.arange(n) % 5, [5] * 6]
    return Assignment(unlabeled=draw(n), labeled_x=draw(n), labeled_y=np.arange(n) % 5, rep1_x=draw(n + 6),
                      rep1_y=rep1_y, rep2_x=draw(5), rep2_y=np.arange(5), source=Path("fake"), is_replica=True)


def fake_key(n=40):
    return {"unlabeled_class": np.arange(n) % 5,
            "rep1_origin": np.array(["in_distribution"] * n + ["foreign", "corrupted"] * 3)}


def test_evaluation_split_budgets_and_accuracy_images():
    data = fake_assignment()
    ev = transfer.evaluation(data, fake_key(), Transfer(budgets=(10, 50), eval_images=25), 0.2, seed=0)
    assert len(ev.split.y_train) == 30 and len(ev.split.y_val) == 10
    assert ev.budgets == [10, 30] and [len(ev.subsets[b]) for b in ev.budgets] == [10, 30]
    assert set(ev.subsets[10]) <= set(ev.subsets[30])  # nested
    assert len(ev.x) == 25 and ev.on_unlabeled and ev.rep1_origin is not None
    assert tables.transfer_evaluated_on(ev.on_unlabeled, len(ev.y)) == "25 unlabeled images (answer key)"
    ev = transfer.evaluation(data, None, Transfer(budgets=(10,), eval_images=None), 0.2, seed=0)
    assert len(ev.x) == 40 and (ev.y != 5).all() and ev.rep1_origin is None and not ev.on_unlabeled
    assert tables.transfer_evaluated_on(ev.on_unlabeled, len(ev.y)) == "the clean images of representative set 1"


def test_source_examples_take_the_first_images_of_every_class():
    x = np.arange(12)[:, None] * np.ones((1, 4), np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    assert [int(image[0]) for image in transfer.per_class(x, y, 3, 2)] == [0, 3, 1, 4, 2, 5]


RUN = ("scratch", "foreign_contrastive", "foreign_supervised", "digits")


def fake_runs(sources=RUN, budgets=(10, 30), n_eval=200, seed=0):
    """Runs with per-image correctness and anomaly scores; later sources are a little better."""
    rng = np.random.default_rng(seed)
    is_anomaly = np.r_[np.ones(12, bool), np.zeros(60, bool)]
    origin = np.where(is_anomaly, np.resize(["foreign", "corrupted"], len(is_anomaly)), "in_distribution")
    runs = {}
    for b in budgets:
        for i, k in enumerate(sources):
            correct = rng.random(n_eval) < 0.6 + 0.1 * i
            scores = {"mahalanobis": rng.normal(size=72) + (1 + i) * is_anomaly, "msp": rng.normal(size=72)}
            auroc = {name: transfer.auroc_by_origin(v, np.where(is_anomaly, 5, 0), origin, n_resamples=20)
                     for name, v in scores.items()}
            runs[(k, b)] = transfer.Run(k, b, correct, metrics.metric_with_ci(
                metrics.accuracy, correct, np.ones(n_eval, bool), n_resamples=20, seed=0), 0.9, 0.8, 1.5, scores,
                auroc)
    return runs, is_anomaly, origin


def test_gains_tables_curves_record_and_report_variables():
    runs, is_anomaly, origin = fake_runs()
    budgets = [10, 30]
    split = SimpleNamespace(y_train=np.zeros(30))
    ev = transfer.Evaluation(split, None, np.zeros(200), True, None, np.where(is_anomaly, 5, 0), origin, budgets,
                             {})
    gains = transfer.accuracy_gains(runs, n_resamples=50, seed=0)
    assert set(gains) == {(k, b) for k in RUN[1:] for b in budgets}
    expected = runs[("digits", 10)].correct.mean() - runs[("scratch", 10)].correct.mean()
    assert gains[("digits", 10)]["value"] == pytest.approx(expected)
    auroc_gain = transfer.auroc_gains(runs, ev, n_resamples=50, seed=0)
    assert ("digits", "foreign", 30) in auroc_gain and ("digits", "foreign", 10) not in auroc_gain
    assert ("digits", "all", 10) in auroc_gain
    assert transfer.anomaly_kinds(runs, 30) == ["all", "foreign", "corrupted"]

    table = tables.transfer_accuracy({key: run.accuracy for key, run in runs.items()}, budgets)
    assert list(table["source"]) == [tables.SOURCE_NAMES[k] for k in RUN]
    assert list(table.columns) == ["source", "10 labels", "30 labels"]
    ood = tables.transfer_ood({key: run.auroc for key, run in runs.items()}, auroc_gain, 30, with_origin=True)
    assert ood["foreign: change vs scratch"].iloc[0] == "—" and ood["foreign: change vs scratch"].iloc[-1][0] in "+-"
    frozen, tuned, gain = transfer.accuracy_curves({key: run.accuracy for key, run in runs.items()}, runs, gains,
                                                   budgets)
    assert list(frozen) == list(tuned) == list(RUN) and "scratch" not in gain
    by_budget, by_kind, kinds = transfer.ood_curves(runs, budgets)
    assert kinds == ["foreign", "corrupted"] and len(by_budget["digits"]) == 2 and len(by_kind["digits"]) == 2

    # record -> JSON -> the report's variables
    sources = transfer.Sources({k: None for k in RUN},
                               {"digits": {"images": 1438, "epochs": 1.5, "seconds": 2.0, "heldout": 0.9889},
                                "foreign_supervised": {"images": 23400, "epochs": 1, "seconds": 1.0,
                                                       "heldout": 0.769},
                                "foreign_contrastive": {"images": 26000, "epochs": 2, "seconds": 1.0}})
    pool = lambda n: transfer.SourcePool(np.zeros((n, 1, 32, 32), np.uint8), np.zeros(n, np.int64), ("a",), n, 0)
    probe = {key: run.accuracy for key, run in runs.items()}
    ctx = SimpleNamespace(profile=get_profile("smoke"), seed=0)
    out = transfer.record(ctx, ev, pool(26000), pool(1797), sources, probe, runs, gains, auroc_gain, 12.3)
    out = json.loads(json.dumps(out, sort_keys=True))  # what results/05_transfer_learning.json holds
    assert out["sources"]["digits"]["frozen_linear_head_accuracy"]["30"] == probe[("digits", 30)]
    assert out["sources_order"] == list(transfer.SOURCES) == list(tables.SOURCE_NAMES)
    assert out["architecture"] == json.loads(json.dumps(asdict(transfer.network(ctx))))
    assert out["rep1_anomalies"] == {"foreign": 6, "corrupted": 6}
    variables = transfer_variables({"05_transfer_learning": out})
    assert variables["budgets"] == "10 and 30" and variables["n_digits"] == "1,797"
    assert variables["eval_name"] == "200 unlabeled images (answer key)"
    assert variables["acc_scratch_large"] == f"{100 * runs[('scratch', 30)].accuracy['value']:.1f}"
    assert variables["probe_rank_large"].count("≥") == len(out["sources_order"]) - 1
    assert all(isinstance(value, str) for value in variables.values())
    assert transfer_variables({}) is None


def test_notebook_05_steps_on_a_tiny_assignment(tmp_path, one_thread):
    """pretrain_sources -> probe_sources -> finetune_grid -> record on 40 images per set with tiny budgets: every
    source and budget is measured; supervised sources train on all but their held-out part."""
    data = fake_assignment()
    ctx = tiny_ctx(tmp_path, {
        "report.bootstrap": 20, "transfer.contrastive.epochs": 1, "transfer.contrastive.batch": 20,
        "transfer.source.steps": 3, "transfer.source.batch": 8, "transfer.finetune.steps": 3,
        "transfer.finetune.batch": 8, "transfer.budgets": (10,), "transfer.eval_images": 30})
    ctx.data, ctx.answer_key, profile = data, fake_key(), ctx.profile
    images, labels = fake_fashion()
    foreign = transfer.foreign_source(images, labels, [data.rep1_x, data.rep2_x], NAMES)
    digits = transfer.digits_source()
    digits = transfer.SourcePool(digits.x[:50], digits.y[:50], digits.class_names, 50, 0)

    sources = transfer.pretrain_sources(ctx, foreign, digits)
    assert list(sources.models) == list(transfer.SOURCES) == ["scratch", "foreign_contrastive", "foreign_supervised",
                                                              "digits"]
    assert sources.info["digits"]["images"] == 40 and sources.info["foreign_supervised"]["images"] == 27
    assert sources.info["digits"]["epochs"] == pytest.approx(3 * 8 / 40)
    assert 0 <= sources.info["digits"]["heldout"] <= 1
    assert sources.info["foreign_contrastive"]["images"] == 30  # the whole (filtered) foreign pool, < 40
    assert sources.models["digits"].config.n_classes == 10 and sources.models["foreign_supervised"].config == \
        transfer.network(ctx, 5)

    ev = transfer.evaluation(data, ctx.answer_key, profile.transfer, 0.2, seed=0)
    probe = transfer.probe_sources(ctx, sources, ev)
    runs = transfer.finetune_grid(ctx, sources, ev)
    assert set(probe) == set(runs) == {(k, b) for k in sources.models for b in ev.budgets}
    run = runs[("digits", ev.budgets[-1])]
    assert run.correct.shape == (30,) and run.accuracy["value"] == pytest.approx(run.correct.mean())
    assert set(run.scores) == {"mahalanobis", "msp"} and run.scores["mahalanobis"].shape == (46,)
    assert set(run.auroc["mahalanobis"]) == {"all", "foreign", "corrupted"}
    assert 0 <= run.val_accuracy <= 1
    gains = transfer.accuracy_gains(runs, n_resamples=20, seed=0)
    auroc_gain = transfer.auroc_gains(runs, ev, n_resamples=20, seed=0)
    out = transfer.record(ctx, ev, foreign, digits, sources, probe, runs, gains, auroc_gain, 1.0)
    out = json.loads(json.dumps(out))
    assert out["leakage_filter"] == {"foreign_candidates": 30, "excluded": 0, "used": 30}
    assert transfer_variables({"05_transfer_learning": out})["budgets"]

