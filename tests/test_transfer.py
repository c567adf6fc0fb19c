"""Transfer-learning helpers: the leakage filter, the digits source, pretraining, paired comparisons."""

import json

import numpy as np
import pytest
import torch

from lib.data.replica import FOREIGN, IN_DISTRIBUTION, pad
from lib.eval import metrics
from lib.experiments import transfer
from lib.nn import finetune
from lib.nn.augment import AugmentConfig
from lib.nn.finetune import Classifier, FinetuneConfig
from lib.nn.models import ModelConfig
from lib.nn.train import TrainConfig
from lib.render.variables import effect_phrase, effect_word, ranking, transfer_variables

TINY = ModelConfig(kind="contrastive", width=4, depth=0, features=16)
NAMES = tuple(f"class {i}" for i in range(10))


def fake_fashion(n_per_label=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n_per_label).astype(np.uint8)
    images = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
    return images, labels


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
    full = transfer.upscale_pad(np.full((2, 8, 8), 16.0), max_value=16.0)
    assert (full[:, 0, 2:30, 2:30] == 255).all() and full[:, 0].sum() == 2 * 28 * 28 * 255
    quarter = transfer.upscale_pad(np.full((1, 8, 8), 4.0), max_value=16.0)
    assert (quarter[0, 0, 2:30, 2:30] == 64).all()  # 63.75 rounded


def test_holdout_split():
    train, held = transfer.holdout_split(50, 0.2, seed=0)
    assert len(held) == 10 and len(train) == 40 and not set(train) & set(held)


def test_fingerprints():
    a = np.arange(12, dtype=np.uint8)
    assert finetune.array_fingerprint(a) == finetune.array_fingerprint(a.copy())
    assert finetune.array_fingerprint(a) != finetune.array_fingerprint(a.reshape(3, 4))
    assert transfer.weights_fingerprint(None) == "scratch"
    torch.manual_seed(0)
    model = Classifier(TINY)
    before = transfer.weights_fingerprint(model)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if not name.startswith(("encoder.", "bottleneck.")):
                parameter.add_(1.0)  # the head is not part of what transfer copies
    assert transfer.weights_fingerprint(model) == before
    with torch.no_grad():
        model.encoder.fc.bias.add_(1.0)
    assert transfer.weights_fingerprint(model) != before


def test_contrastive_recipe(tmp_path):
    plan = (TINY, TrainConfig(epochs=30, batch_size=64, augment=AugmentConfig()))
    model, train, found = transfer.contrastive_recipe(tmp_path, plan, epochs=3)
    assert not found and train.epochs == 3 and train.batch_size == 64 and not model.decoder
    assert model.width == TINY.width
    saved = ModelConfig(kind="contrastive", width=6, temperature=0.5)
    recipe = TrainConfig(epochs=40, batch_size=96, augment=AugmentConfig(rotation=5.0))
    (tmp_path / "config.json").write_text(json.dumps({"model_config": saved.to_dict(),
                                                       "train_config": recipe.to_dict()}))
    model, train, found = transfer.contrastive_recipe(tmp_path, plan, epochs=3)
    assert found and model.width == 6 and model.temperature == 0.5 and not model.decoder
    assert train.epochs == 3 and train.batch_size == 96 and train.augment == recipe.augment and train.keep == 1


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


def test_pretrain_classifier_learns_saves_and_reloads(tmp_path, one_thread):
    x, y = bars()
    cfg = FinetuneConfig(steps=25, batch_size=16, lr=5e-3)
    messages = []
    first = finetune.pretrain_classifier(TINY, x, y, 4, cfg, tmp_path / "src", heldout=(x, y), log=messages.append)
    assert first.heldout_accuracy > 0.5 and first.model(torch.zeros(2, 1, 32, 32)).shape == (2, 4)
    again = finetune.pretrain_classifier(TINY, x, y, 4, cfg, tmp_path / "src", heldout=(x, y), log=messages.append)
    assert messages[-1].startswith("src: already trained")
    assert again.heldout_accuracy == first.heldout_accuracy
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    # the 5-way classifier of fine-tuning takes the source's encoder and bottleneck
    target = Classifier(TINY)
    target.load_pretrained(first.model)
    assert transfer.weights_fingerprint(target) == transfer.weights_fingerprint(first.model)
    with pytest.raises(ValueError, match="labels go up to"):
        finetune.pretrain_classifier(TINY, x, y, 3, cfg, tmp_path / "bad", log=messages.append)


def test_paired_difference_and_words():
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.95
    b = a.copy()
    b[:200] = False  # b is wrong on 200 more items (a few of which a also gets wrong)
    diff = transfer.paired_difference(a, b, n_resamples=500, seed=0)
    assert diff["value"] == pytest.approx(a.mean() - b.mean())
    assert 0 < diff["ci"][0] < diff["value"] < diff["ci"][1]
    assert effect_word(diff) == "helps"
    assert effect_word(transfer.paired_difference(b, a, n_resamples=500, seed=0)) == "hurts"
    same = transfer.paired_difference(a, a, n_resamples=200, seed=0)
    assert same["ci"] == [0.0, 0.0] and effect_word(same) == "makes no measurable difference"
    assert effect_phrase({"value": 0.041, "ci": [0.02, 0.063]}) == \
        "helps (+4.1 points, 95 % CI [+2.0, +6.3])"
    assert effect_phrase({"value": -0.0123, "ci": [-0.03, 0.004]}, unit=1, what="AUROC", digits=3) == \
        "makes no measurable difference (-0.012 AUROC, 95 % CI [-0.030, +0.004])"
    assert effect_phrase({"value": -0.0001, "ci": [-0.005, 0.005]}).startswith(
        "makes no measurable difference (+0.0 points")  # never "-0.0"
    with pytest.raises(ValueError):
        transfer.paired_difference(a, b[:10], n_resamples=10, seed=0)


def test_paired_intervals_are_bootstrap_ci_of_the_difference():
    """Both paired intervals are `bootstrap_ci` of the plain difference (all arrays resampled jointly; the
    AUROC difference within anomalies and normal images): the vectorised metrics change nothing but speed."""
    rng = np.random.default_rng(1)
    a, b = rng.random(300) < 0.8, rng.random(300) < 0.7
    diff = transfer.paired_difference(a, b, n_resamples=200, seed=3)
    plain = metrics.bootstrap_ci(lambda x, y: x.mean() - y.mean(), a.astype(float), b.astype(float),
                                 n_resamples=200, seed=3)
    assert diff["ci"] == pytest.approx(list(plain))
    is_anomaly = np.r_[np.ones(20, bool), np.zeros(100, bool)]
    s1, s2 = rng.normal(size=120) + is_anomaly, rng.normal(size=120) + 2 * is_anomaly
    diff = transfer.paired_auroc_difference(s1, s2, is_anomaly, n_resamples=100, seed=4)
    plain = metrics.bootstrap_ci(lambda x, y, z: metrics.auroc(x, z) - metrics.auroc(y, z), s1, s2, is_anomaly,
                                 n_resamples=100, seed=4, stratify=is_anomaly)
    assert diff["ci"] == pytest.approx(list(plain))
    assert diff["value"] == pytest.approx(metrics.auroc(s1, is_anomaly) - metrics.auroc(s2, is_anomaly))


def test_auroc_by_origin():
    labels = np.array([0, 1, 2, 3, 5, 5, 5, 5])
    origin = np.array(["in_distribution"] * 4 + ["foreign", "foreign", "corrupted", "corrupted"])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.35, 0.05])
    result = transfer.auroc_by_origin(scores, labels, origin, n_resamples=50, seed=0)
    assert result["foreign"]["value"] == 1.0
    assert result["corrupted"]["value"] == pytest.approx((3 + 0) / 8)  # 0.35 beats 3 of 4 normals, 0.05 none
    assert set(result) == {"all", "foreign", "corrupted"}
    assert set(transfer.auroc_by_origin(scores, labels, None, n_resamples=10)) == {"all"}
    assert transfer.format_ci({"value": 0.9731, "ci": [0.962, 0.983]}) == "97.3 [96.2, 98.3]"
    assert transfer.format_ci({"value": 0.012, "ci": [-0.01, 0.05]}, scale=1, digits=3, signed=True) == \
        "+0.012 [-0.010, +0.050]"


def test_paired_auroc_difference():
    rng = np.random.default_rng(0)
    is_anomaly = np.r_[np.ones(30, bool), np.zeros(300, bool)]
    good = rng.normal(size=330) + 3 * is_anomaly
    weak = rng.normal(size=330) + 0.5 * is_anomaly
    from lib.eval.metrics import auroc

    diff = transfer.paired_auroc_difference(good, weak, is_anomaly, n_resamples=300, seed=0)
    assert diff["value"] == pytest.approx(auroc(good, is_anomaly) - auroc(weak, is_anomaly))
    assert 0 < diff["ci"][0] < diff["value"] < diff["ci"][1]
    assert effect_word(diff) == "helps"
    assert transfer.paired_auroc_difference(good, good, is_anomaly, n_resamples=50, seed=0)["ci"] == [0.0, 0.0]


def test_ranking():
    entries = {"b": (0.8, "80.0"), "a": (0.9, "90.0"), "c": (0.85, "85.0")}
    assert ranking(entries) == "a (90.0) ≥ c (85.0) ≥ b (80.0)"


def test_pretrain_with_holdout_trains_on_the_rest_and_summarises(tmp_path, one_thread):
    x, y = bars()
    cfg = FinetuneConfig(steps=10, batch_size=16, lr=5e-3, seed=1)
    result, info = transfer.pretrain_with_holdout(TINY, x, y, 4, cfg, tmp_path / "src", 0.25)
    fit, held = transfer.holdout_split(len(x), 0.25, 1)
    assert info["images"] == len(fit) and info["heldout"] == result.heldout_accuracy is not None
    assert info["epochs"] == pytest.approx(10 * 16 / len(fit)) and info["seconds"] == result.seconds


# --------------------------------------------------------------------------- the study's bookkeeping


def fake_assignment(n=40):
    from pathlib import Path

    from lib.data import Assignment

    rng = np.random.default_rng(0)
    images = lambda k: rng.integers(0, 256, (k, 1, 32, 32), dtype=np.uint8)
    rep1_y = np.r_[np.arange(n) % 5, [5] * 6]
    return Assignment(unlabeled=images(n), labeled_x=images(n), labeled_y=np.arange(n) % 5, rep1_x=images(n + 6),
                      rep1_y=rep1_y, rep2_x=images(5), rep2_y=np.arange(5), source=Path("fake"), is_replica=True)


def test_evaluation_split_budgets_and_accuracy_images():
    from lib.config import Transfer

    data = fake_assignment()
    key = {"unlabeled_class": np.arange(40) % 5, "rep1_origin": np.array(["in_distribution"] * 40
                                                                          + ["foreign", "corrupted"] * 3)}
    ev = transfer.evaluation(data, key, Transfer(budgets=(10, 50), eval_images=25), 0.2, seed=0)
    assert len(ev.split.y_train) == 30 and len(ev.split.y_val) == 10
    assert ev.budgets == [10, 30] and [len(ev.subsets[b]) for b in ev.budgets] == [10, 30]
    assert set(ev.subsets[10]) <= set(ev.subsets[30])  # nested
    assert len(ev.x) == 25 and ev.name == "25 unlabeled images (answer key)" and ev.rep1_origin is not None
    ev = transfer.evaluation(data, None, Transfer(budgets=(10,), eval_images=None), 0.2, seed=0)
    assert len(ev.x) == 40 and (ev.y != 5).all() and ev.rep1_origin is None
    assert ev.name == "the clean images of representative set 1"


def test_source_examples_take_the_first_images_of_every_class():
    x = np.arange(12)[:, None] * np.ones((1, 4), np.uint8)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2])
    assert [int(image[0]) for image in transfer.per_class(x, y, 3, 2)] == [0, 3, 1, 4, 2, 5]


RUN = ("scratch", "in_domain_matched", "foreign_contrastive", "foreign_supervised", "digits")  # notebook 02 missing


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


def test_gains_tables_curves_results_and_report_variables():
    import json
    from types import SimpleNamespace

    from lib.config import PROFILES

    runs, is_anomaly, origin = fake_runs()
    budgets = [10, 30]
    split = SimpleNamespace(y_train=np.zeros(30))
    ev = transfer.Evaluation(split, None, None, "200 unlabeled images (answer key)", None,
                             np.where(is_anomaly, 5, 0), origin, budgets, {})
    gains = transfer.accuracy_gains(runs, n_resamples=50, seed=0)
    assert set(gains) == {(k, b) for k in RUN[1:] for b in budgets}
    expected = runs[("digits", 10)].correct.mean() - runs[("scratch", 10)].correct.mean()
    assert gains[("digits", 10)]["value"] == pytest.approx(expected)
    auroc_gain = transfer.auroc_gains(runs, ev, n_resamples=50, seed=0)
    assert ("digits", "foreign", 30) in auroc_gain and ("digits", "foreign", 10) not in auroc_gain
    assert ("digits", "all", 10) in auroc_gain
    assert transfer.anomaly_kinds(runs, 30) == ["all", "foreign", "corrupted"]

    table = transfer.accuracy_table(runs, budgets)
    assert list(table["source"]) == [transfer.SOURCE_NAMES[k] for k in RUN]
    assert list(table.columns) == ["source", "10 labels", "30 labels"]
    ood = transfer.ood_table(runs, auroc_gain, 30, with_origin=True)
    assert ood["foreign: change vs scratch"].iloc[0] == "—" and ood["foreign: change vs scratch"].iloc[4][0] in "+-"
    frozen, tuned, gain = transfer.accuracy_curves({key: run.accuracy for key, run in runs.items()}, runs, gains,
                                                   budgets)
    assert list(frozen) == list(tuned) == list(RUN) and "scratch" not in gain
    by_budget, by_kind, kinds = transfer.ood_curves(runs, budgets)
    assert kinds == ["foreign", "corrupted"] and len(by_budget["digits"]) == 2 and len(by_kind["digits"]) == 2

    # results -> JSON -> the report's variables
    sources = transfer.Sources(TINY, TrainConfig(epochs=2), True, {k: None for k in RUN},
                               {"in_domain_matched": {"images": 40, "epochs": 2, "seconds": 3.0},
                                "digits": {"images": 1438, "epochs": 1.5, "seconds": 2.0, "heldout": 0.9889},
                                "foreign_supervised": {"images": 23400, "epochs": 1, "seconds": 1.0,
                                                       "heldout": 0.769},
                                "foreign_contrastive": {"images": 26000, "epochs": 2, "seconds": 1.0}})
    pool = lambda n: transfer.SourcePool(np.zeros((n, 1, 32, 32), np.uint8), np.zeros(n, np.int64), ("a",), n, 0)
    probe = {key: run.accuracy for key, run in runs.items()}
    out = transfer.results(PROFILES["smoke"], 0, ev, pool(26000), pool(1797), sources, probe, runs, gains, auroc_gain,
                           12.3)
    out = json.loads(json.dumps(out, sort_keys=True))  # what results/05_transfer_learning.json holds
    assert out["sources"]["digits"]["frozen_linear_head_accuracy"]["30"] == probe[("digits", 30)]
    variables = transfer_variables({"05_transfer_learning": out})
    assert variables["budgets"] == "10 and 30" and variables["n_digits"] == "1,797"
    assert variables["n_digits_supervised"] == "1,438" and variables["heldout_digits"] == "98.9"
    assert variables["n_foreign_rep1"] == "6" and variables["seconds_total"] == "12"
    assert variables["acc_digits_small"] == f"{100 * runs[('digits', 10)].accuracy['value']:.1f}"
    assert variables["gain_digits_small"] == effect_phrase(gains[("digits", 10)])
    assert variables["auroc_gain_digits_foreign"] == effect_phrase(auroc_gain[("digits", "foreign", 30)], unit=1,
                                                                   what="AUROC", digits=3)
    assert variables["in_domain_status"] == "not available: its pretraining had not run"
    assert variables["acc_in_domain_small"] == variables["gain_in_domain_large"] == "n/a"
    assert variables["n_foreign_supervised"] == "23,400" and variables["heldout_foreign"] == "76.9"
    assert variables["finetuned_rank_large"].startswith(transfer.SOURCE_NAMES["digits"])  # the best source first
    assert transfer_variables({}) is None
