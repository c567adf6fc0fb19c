"""The project's model in arms (lib.experiments.model): the distillation targets, the per-seed accuracies, the
choice of the arm, the paired gains over the labels-only arm, and every arm trained on a tiny context."""

import json
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import softmax
from torch import nn

from lib.config import PROFILES, CNNConfig, override
from lib.data import load_answer_key
from lib.eval import metrics, protocol
from lib.experiments import classification as cls
from lib.experiments import model as ours
from lib.nn.infer import batched, images_per_second
from lib.notebook import Context, _subset
from lib.render import tables
from lib.render.format import mean_std
from lib.render.names import ARMS
from lib.render.variables import classification_variables, long_check_sentence, model_variables, verdict
from lib.results import MODEL_ARMS, Estimate, summary, unlabeled_arm
from lib.train import checkpoint
from lib.train.cache import array_fingerprint
from lib.train.runs import weights_fingerprint
from lib.workspace import Workspace

TINY = CNNConfig(widths=(4, 4, 8, 8, 8, 8), description_dim=10, decoder=True)


class Linear(nn.Module):
    """A fixed linear classifier of the mean intensity: logits = scale * mean(x) + bias."""

    def __init__(self, scale, bias):
        super().__init__()
        self.scale, self.bias = torch.tensor(scale), torch.tensor(bias)

    def forward(self, x):
        return x.mean(dim=(1, 2, 3))[:, None] * self.scale + self.bias


def test_one_hot():
    targets = ours.one_hot(np.array([0, 3, 4, 3]))
    assert targets.dtype == np.float32 and targets.shape == (4, 5)
    assert targets.tolist() == [[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0]]
    assert ours.one_hot(np.array([1]), classes=3).tolist() == [[0, 1, 0]]


def test_probabilities_are_the_average_of_the_softmaxes():
    images = np.random.default_rng(0).integers(0, 256, (7, 1, 32, 32), dtype=np.uint8)
    models = [Linear([1.0, -2.0, 0.5, 0.0, 3.0], [0.0, 1.0, 0.0, -1.0, 0.0]),
              Linear([0.0, 4.0, -1.0, 2.0, 0.0], [2.0, 0.0, 0.0, 0.0, -3.0])]
    got = ours.probabilities(models, images)
    mean = (images / 255.0).mean(axis=(1, 2, 3))[:, None]
    expected = np.mean([softmax(mean * m.scale.numpy() + m.bias.numpy(), axis=1) for m in models], axis=0)
    assert got.dtype == np.float32 and got.shape == (7, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1, rtol=1e-5)
    # an ensemble of one is that model's softmax; averaging probabilities is not averaging logits
    np.testing.assert_allclose(ours.probabilities(models[:1], images), softmax(batched(models[0], images), axis=1),
                               rtol=1e-5, atol=1e-6)
    logit_mean = softmax(np.mean([batched(m, images) for m in models], axis=0), axis=1)
    assert not np.allclose(got, logit_mean, atol=1e-3)


def hand_made():
    """Predictions of every arm and seed on two sets: set 1's clean images (3 + 3 images) and another one (10)."""
    y1, y2 = np.array([0, 1, 2, 3, 4, 0]), np.arange(10) % 5
    sets = {"rep1_clean": (None, y1), "unlabeled": (None, y2)}
    wrong = lambda y, k: np.where(np.arange(len(y)) < k, (y + 1) % 5, y)  # noqa: E731 - the first k wrong
    predicted = {
        "labels_only": {0: {"rep1_clean": wrong(y1, 2), "unlabeled": wrong(y2, 4)},
                        1: {"rep1_clean": wrong(y1, 3), "unlabeled": wrong(y2, 2)}},
        "distilled": {0: {"rep1_clean": wrong(y1, 0), "unlabeled": wrong(y2, 1)},
                      1: {"rep1_clean": wrong(y1, 0), "unlabeled": wrong(y2, 1)}},
        "contrastive_init": {0: {"rep1_clean": wrong(y1, 1), "unlabeled": wrong(y2, 5)},
                             1: {"rep1_clean": wrong(y1, 4), "unlabeled": wrong(y2, 5)}},
    }
    return predicted, sets


def test_seed_accuracy_and_the_choice_of_the_arm():
    predicted, sets = hand_made()
    per_seed = ours.seed_accuracy(predicted, sets)
    assert per_seed["labels_only"]["rep1_clean"] == pytest.approx([4 / 6, 3 / 6])
    assert per_seed["labels_only"]["unlabeled"] == pytest.approx([0.6, 0.8])
    assert per_seed["distilled"]["unlabeled"] == pytest.approx([0.9, 0.9])
    assert per_seed["contrastive_init"]["rep1_clean"] == pytest.approx([5 / 6, 2 / 6])
    choice = ours.choose(per_seed)
    # distilled: 1.0 on set 1 against 0.583, beyond the larger seed spread (0.118): it is the model
    assert choice == protocol.choose_variant(per_seed, "labels_only", ["distilled", "contrastive_init"])
    assert choice.chosen == "distilled" and set(choice.evidence["gain"]) == {"distilled", "contrastive_init"}
    assert choice.evidence["gain"]["contrastive_init"] == pytest.approx(0.0)
    # the other sets never choose
    flipped = {arm: {**by_set, "unlabeled": [1 - v for v in by_set["unlabeled"]]} for arm, by_set in per_seed.items()}
    assert ours.choose(flipped) == choice
    # nothing beats the labels-only arm by more than the spread: it stays
    close = {arm: {"rep1_clean": [0.9, 0.92]} for arm in MODEL_ARMS}
    assert ours.choose(close).chosen == "labels_only"


def test_gains_are_paired_differences_of_seed_mean_correctness():
    predicted, sets = hand_made()
    y = sets["unlabeled"][1]
    correct = ours.seed_mean_correct(predicted, "labels_only", "unlabeled", y)
    assert correct.tolist() == [0, 0, 0.5, 0.5, 1, 1, 1, 1, 1, 1]
    gains = ours.gains(predicted, sets, n_resamples=200, seed=0)
    assert set(gains) == {"distilled", "contrastive_init"}
    assert set(gains["distilled"]) == {"unlabeled"}  # set 1's clean images chose the arm: no gain reported there
    assert isinstance(gains["distilled"]["unlabeled"], Estimate)
    assert gains["distilled"]["unlabeled"].value == pytest.approx(0.9 - 0.7)
    assert gains["contrastive_init"]["unlabeled"].value == pytest.approx(0.5 - 0.7)
    expected = metrics.paired_difference(ours.seed_mean_correct(predicted, "distilled", "unlabeled", y), correct,
                                         n_resamples=200, seed=0)
    assert gains["distilled"]["unlabeled"].ci == pytest.approx(expected["ci"])
    low, high = gains["distilled"]["unlabeled"].ci
    assert low <= 0.2 <= high


def test_passes_per_image():
    settings = PROFILES["cpu"].model
    labels, distill, pretrain = settings.labels_only.epochs, settings.distilled.epochs, settings.pretraining.epochs
    assert (labels, distill, pretrain) == (30, 3, 2)
    passes = ours.passes_per_image(settings, 2000, 26000)
    assert list(passes) == ["labels_only", "labels_only_long", "distilled", "contrastive_init"]
    assert passes["labels_only"] == {"labeled": 30, "unlabeled": 0, "images": 30 * 2000}
    # the convergence check: the labels-only recipe for `long_epochs` passes
    assert passes["labels_only_long"] == {"labeled": settings.long_epochs, "unlabeled": 0,
                                          "images": settings.long_epochs * 2000}
    # distillation continues from the labels-only network: its passes over the labels, then the distillation's
    # passes over every image (the labels among them)
    assert passes["distilled"] == {"labeled": 30 + 3, "unlabeled": 3, "images": 33 * 2000 + 3 * 26000}
    # the contrastive arm saw two views of every unlabeled image per pretraining epoch, then the labels-only recipe
    assert passes["contrastive_init"] == {"labeled": 30, "unlabeled": 2 * 2, "images": 30 * 2000 + 4 * 26000}


@pytest.fixture(scope="module")
def tiny_ctx(tmp_path_factory, replica_assignment):
    """A context like lib.notebook's on the first 64 images of every set of the replica (answer key cut to match),
    with a tiny network and one epoch per arm."""
    data = replica_assignment
    data, key = _subset(data, load_answer_key(data), 64)
    profile = override(PROFILES["smoke"], {
        "model.seeds": (0, 1), "model.network": TINY, "model.labels_only.epochs": 1, "model.labels_only.batch": 32,
        "model.distilled.epochs": 1, "model.distilled.batch": 32, "model.pretraining.epochs": 1,
        "model.pretraining.batch": 32})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Context(profile, 0, torch.device("cpu"), Workspace(tmp_path_factory.mktemp("ws")), data, key)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_arms(tiny_ctx):
    return ours.train_arms(tiny_ctx)


def test_train_arms_on_a_tiny_context(tiny_ctx, tiny_arms, capsys):
    ctx, data, arms = tiny_ctx, tiny_ctx.data, tiny_arms
    assert list(arms.runs) == list(MODEL_ARMS) and all(list(by_seed) == [0, 1] for by_seed in arms.runs.values())
    # the teacher: the labels-only networks' averaged probabilities of the unlabeled images
    labels_only = [result.model for result in arms.runs["labels_only"].values()]
    np.testing.assert_allclose(arms.teacher, ours.probabilities(labels_only, data.unlabeled), atol=1e-6)
    assert arms.teacher.shape == (64, 5)

    def key(result):
        return checkpoint.read(result.folder)["training"]["key"]

    # the student learns from the labels (one-hot) and the teacher's probabilities of the unlabeled images
    x_all = np.concatenate([data.labeled_x, data.unlabeled])
    student = np.concatenate([ours.one_hot(data.labeled_y), arms.teacher])
    assert key(arms.runs["distilled"][1])["data"] == array_fingerprint(x_all, student)
    assert key(arms.runs["labels_only"][0])["data"] == array_fingerprint(data.labeled_x, data.labeled_y)
    # the contrastive arm starts from the pretraining, on the labels alone
    assert key(arms.pretraining)["objective"] == "nt_xent"
    for result in arms.runs["contrastive_init"].values():
        assert key(result)["init"] == weights_fingerprint(arms.pretraining.model)
        assert key(result)["data"] == array_fingerprint(data.labeled_x, data.labeled_y)
        assert key(result)["training"] == key(arms.runs["labels_only"][0])["training"]  # the labels-only recipe
    assert all(key(result)["init"] == "none" for result in arms.runs["labels_only"].values())
    # each student starts from the labels-only network of its own seed, with the distillation recipe
    for seed, result in arms.runs["distilled"].items():
        assert key(result)["init"] == weights_fingerprint(arms.runs["labels_only"][seed].model)
        assert key(result)["training"]["epochs"] == ctx.profile.model.distilled.epochs
    assert key(arms.runs["distilled"][0])["init"] != key(arms.runs["distilled"][1])["init"]
    # the oracle: the student's recipe with the true classes of every image, from the first labels-only network
    truth = np.concatenate([ours.one_hot(data.labeled_y), ours.one_hot(ctx.answer_key["unlabeled_class"])])
    assert arms.oracle is not None and key(arms.oracle)["data"] == array_fingerprint(x_all, truth)
    assert key(arms.oracle)["training"] == key(arms.runs["distilled"][0])["training"]
    assert key(arms.oracle)["init"] == weights_fingerprint(arms.runs["labels_only"][0].model)
    # the convergence check: the labels-only recipe, longer, first seed only, kept apart from the arms
    long = arms.long
    assert "labels_only_long" not in arms.runs and long.folder.name.startswith("model_labels_only_long_seed0-")
    assert key(long)["training"] == {**key(arms.runs["labels_only"][0])["training"],
                                     "epochs": ctx.profile.model.long_epochs}
    assert key(long)["seed"] == 0 and key(long)["init"] == "none"
    assert key(long)["data"] == array_fingerprint(data.labeled_x, data.labeled_y)
    # without the answer key there is no oracle
    capsys.readouterr()
    ctx.answer_key, key_saved = None, ctx.answer_key
    try:
        assert ours.train_arms(ctx).oracle is None
    finally:
        ctx.answer_key = key_saved

    # predictions, accuracy per seed, the choice and the gains on the data of notebook 03
    sets = {"rep1_clean": cls.clean_set1(data), "unlabeled": (data.unlabeled, ctx.answer_key["unlabeled_class"])}
    predicted = ours.predictions(arms, sets)
    assert set(predicted) == set(MODEL_ARMS) and predicted["distilled"][1]["unlabeled"].shape == (64,)
    np.testing.assert_array_equal(predicted["labels_only"][0]["unlabeled"],
                                  batched(arms.runs["labels_only"][0].model, data.unlabeled).argmax(1))
    per_seed = ours.seed_accuracy(predicted, sets)
    assert per_seed["contrastive_init"]["unlabeled"][1] == metrics.accuracy(
        sets["unlabeled"][1], predicted["contrastive_init"][1]["unlabeled"])
    assert ours.choose(per_seed).chosen in MODEL_ARMS
    gains = ours.gains(predicted, sets, n_resamples=20, seed=0)
    assert set(gains) == {"distilled", "contrastive_init"} and set(gains["distilled"]) == {"unlabeled"}


def test_a_second_call_loads_every_run(tiny_ctx, tiny_arms, capsys):
    """Everything is cached: 2 labels-only runs, the long check, 2 students, the pretraining, 2 contrastive runs
    and the oracle load, the teacher included."""
    capsys.readouterr()
    again = ours.train_arms(tiny_ctx)
    out = capsys.readouterr().out
    assert out.count("already trained, loaded") == 9, out
    # the teacher of the reloaded labels-only networks is the teacher of the trained ones: its fingerprint is in
    # the students' keys
    np.testing.assert_array_equal(again.teacher, tiny_arms.teacher)
    for arm, by_seed in tiny_arms.runs.items():
        assert {seed: result.folder for seed, result in again.runs[arm].items()} == \
            {seed: result.folder for seed, result in by_seed.items()}, arm


def test_long_check_is_the_long_networks_accuracy_on_every_set(tiny_ctx, tiny_arms):
    data, long = tiny_ctx.data, tiny_arms.long.model
    sets = {"rep1_clean": cls.clean_set1(data), "unlabeled": (data.unlabeled, tiny_ctx.answer_key["unlabeled_class"])}
    check = ours.long_check(tiny_arms, sets)
    assert list(check) == ["rep1_clean", "unlabeled"]
    for name, (x, y) in sets.items():
        assert check[name] == metrics.accuracy(y, batched(long, x).argmax(1))
    # it reads the long network only, never the arms' networks
    always_2 = Linear([0.0] * 5, [0.0, 0.0, 1.0, 0.0, 0.0])  # class 2 for every image
    fake = ours.Arms({}, tiny_arms.teacher, tiny_arms.pretraining, long=SimpleNamespace(model=always_2))
    x = data.unlabeled
    y = np.full(len(x), 2)
    y[:3] = 4  # three wrong
    assert ours.long_check(fake, {"any": (x, y)}) == {"any": pytest.approx(1 - 3 / len(y))}


# --------------------------------------------------------------------------- notebook 03's bookkeeping


def test_reference_systems_are_the_baseline_the_oracle_and_the_chosen_arms_first_seed(tiny_ctx, tiny_arms):
    ctx, arms = tiny_ctx, tiny_arms
    baseline = arms.runs["labels_only"][1]  # any trained network stands in for the plain baseline
    images = ctx.data.rep2_x[:10]
    uses = {"labels_only": ("none", 0), "distilled": ("teacher's probabilities", 64),
            "contrastive_init": ("pretraining", 64)}
    for chosen in MODEL_ARMS:
        systems = cls.reference_systems(ctx, baseline, arms, chosen)
        assert list(systems) == ["baseline", "oracle", "model"]
        model = systems["model"]
        np.testing.assert_allclose(model.predict(images),
                                   softmax(batched(arms.runs[chosen][0].model, images), axis=1), atol=1e-6)
        assert (model.labels, model.unlabeled_used, model.unlabeled_images) == (64, *uses[chosen])
    assert (systems["baseline"].labels, systems["baseline"].unlabeled_used) == (64, "none")
    oracle = systems["oracle"]
    assert (oracle.labels, oracle.unlabeled_used, oracle.unlabeled_images) == (128, "all, with true labels", 64)
    without = ours.Arms(arms.runs, arms.teacher, arms.pretraining, oracle=None)  # the original data: no answer key
    assert list(cls.reference_systems(ctx, baseline, without, "labels_only")) == ["baseline", "model"]


def test_gain_over_baseline_is_paired_on_every_set_but_validation():
    y = np.arange(20) % 5
    right, wrong = ours.one_hot(y), ours.one_hot((y + 1) % 5)
    model = np.where(np.arange(20)[:, None] < 18, right, wrong)  # 18 of 20 right
    baseline = np.where(np.arange(20)[:, None] < 15, right, wrong)  # 15 of 20 right
    probabilities = {"model": {"unlabeled": model, "validation": model},
                     "baseline": {"unlabeled": baseline, "validation": baseline}}
    sets = {"unlabeled": (None, y), "validation": (None, y)}
    gain = cls.gain_over_baseline(probabilities, sets, n_resamples=200, seed=0)
    assert list(gain) == ["unlabeled"] and isinstance(gain["unlabeled"], Estimate)
    assert gain["unlabeled"].value == pytest.approx(0.15)
    expected = metrics.paired_difference(model.argmax(1) == y, baseline.argmax(1) == y, n_resamples=200, seed=0)
    assert gain["unlabeled"].ci == pytest.approx(expected["ci"])


def test_teacher_accuracy_and_set_1s_clean_images(tiny_ctx):
    teacher = ours.one_hot(np.array([0, 1, 2, 3]))
    assert cls.teacher_accuracy(None, teacher) is None  # the original data: no answer key
    assert cls.teacher_accuracy({"unlabeled_class": np.array([0, 1, 2, 4])}, teacher) == 0.75
    data = tiny_ctx.data
    x, y = cls.clean_set1(data)
    clean = data.rep1_y != 5
    assert 0 < len(y) == clean.sum() < len(data.rep1_y) and (y != 5).all()
    np.testing.assert_array_equal(x, data.rep1_x[clean])


def test_images_per_second_times_the_best_of_the_repeats_with_the_threads_asked_for():
    calls, threads = [], []

    def predict(images):
        calls.append(len(images))
        threads.append(torch.get_num_threads())
        time.sleep(0.01)

    before = torch.get_num_threads()
    images = np.zeros((300, 1, 32, 32), np.uint8)
    rate = images_per_second(predict, images, threads=1, repeats=2)
    assert calls == [256, 300, 300]  # a warm-up, then the repeats
    assert threads == [1, 1, 1] and torch.get_num_threads() == before
    assert 0 < rate <= 300 / 0.01


def test_record_feeds_the_summary_the_report_variables_and_the_arms_table(tiny_ctx, tiny_arms):
    """Notebook 03's steps on the tiny context, its record through JSON, and what the report reads from it."""
    ctx, data, arms = tiny_ctx, tiny_ctx.data, tiny_arms
    split = cls.split_labeled(data, 0.2, seed=0)
    seed_sets = {"rep1_clean": cls.clean_set1(data), "unlabeled": (data.unlabeled, ctx.answer_key["unlabeled_class"]),
                 "rep2_clean": (data.rep2_x[data.rep2_y != 5], data.rep2_y[data.rep2_y != 5])}
    predicted = ours.predictions(arms, seed_sets)
    per_seed, bootstrap = ours.seed_accuracy(predicted, seed_sets), 20
    choice = ours.choose(per_seed)
    gains = ours.gains(predicted, seed_sets, bootstrap, 0)
    baseline = arms.runs["labels_only"][1]
    systems = cls.reference_systems(ctx, baseline, arms, choice.chosen)
    eval_sets = {name: seed_sets[name] for name in ("unlabeled", "rep2_clean")}
    probabilities, accuracy = cls.evaluate(systems, eval_sets, bootstrap, 0)
    versus = cls.gain_over_baseline(probabilities, eval_sets, bootstrap, 0)
    ece = metrics.metric_with_ci(metrics.expected_calibration_error, probabilities["model"]["unlabeled"],
                                 eval_sets["unlabeled"][1], n_resamples=bootstrap, seed=0)
    passes = ours.passes_per_image(ctx.profile.model, len(data.labeled_y), len(data.unlabeled))
    long_check = ours.long_check(arms, seed_sets)
    out = cls.record(ctx, split, systems, accuracy, {name: 1000.0 for name in systems}, choice, per_seed, gains,
                     passes, long_check, arms, baseline, versus, cls.teacher_accuracy(ctx.answer_key, arms.teacher),
                     ece, pd.DataFrame({"labels": [10]}), "unlabeled")
    out = json.loads(json.dumps(out))
    assert out["choice"]["chosen"] == choice.chosen and set(out["gain_vs_labels_only"]) == set(MODEL_ARMS[1:])
    assert out["passes"] == ours.passes_per_image(ctx.profile.model, 64, 64) == passes
    assert out["labels_only_long"] == pytest.approx(long_check) and set(long_check) == set(seed_sets)
    assert list(out["model_checkpoints"]) == ["0", "1"] and out["pretraining_checkpoint"].startswith("checkpoints/")
    assert out["model_settings"]["seeds"] == [0, 1] and out["teacher_accuracy"] == pytest.approx(
        metrics.accuracy(ctx.answer_key["unlabeled_class"], arms.teacher.argmax(1)))

    keys = summary({"03_classification": out})
    assert keys["classification.accuracy.unlabeled"] == out["accuracy"]["model"]["unlabeled"]["value"]
    assert keys["classification.gain_over_baseline.rep2_clean"] == out["gain_over_baseline"]["rep2_clean"]["value"]
    arm = unlabeled_arm(out)
    assert arm in MODEL_ARMS[1:]
    assert keys["classification.gain_from_unlabeled.unlabeled"] == out["gain_vs_labels_only"][arm]["unlabeled"][
        "value"]

    values = classification_variables({"03_classification": out})
    assert values["chosen"] == ARMS[choice.chosen] and values["n_seeds"] == "2" and values["seeds"] == "0, 1"
    assert values["chosen_uses_unlabeled"] == ("does not use" if choice.chosen == "labels_only" else "uses")
    # one labels-only epoch, then one distillation epoch over every image
    assert values["accuracy_oracle"] != "n/a" and values["labels_only_passes_labeled"] == "1"
    assert (values["distilled_passes_labeled"], values["distilled_passes_unlabeled"]) == ("2", "1")
    assert values["contrastive_init_passes_unlabeled"] == "2"  # two views per pretraining epoch
    assert values["labels_only_long_unlabeled"] == f"{100 * long_check['unlabeled']:.2f}"
    assert values["labels_only_rep1_clean"] == mean_std(per_seed["labels_only"]["rep1_clean"], 2, 100)
    assert values["distilled_gain_unlabeled_verdict"] == verdict(out["gain_vs_labels_only"]["distilled"]["unlabeled"])
    assert values["gain_over_baseline_unlabeled_verdict"] in ("better", "worse", "no detectable difference")
    assert all(isinstance(value, str) for value in values.values())
    settings = model_variables({"03_classification": out})
    assert settings["widths"] == "4-4-8-8-8-8" and settings["labels_only_epochs"] == "1"
    assert settings["temperature"] == f"{ctx.profile.model.temperature:g}"

    table = tables.model_arms(per_seed, out["gain_vs_labels_only"], choice.chosen, out["passes"])
    assert list(table["arm"]) == [ARMS[arm] + (" (chosen)" if arm == choice.chosen else "") for arm in MODEL_ARMS]
    assert table["Δ 26,000"].iloc[0] == "-" and table["Δ 26,000"].iloc[1].startswith(("+", "-"))
    assert list(table["seeds"]) == [2, 2, 2]
    assert list(table["passes"]) == ["1 / 0", "2 / 1", "1 / 2"]
    # with the long check: one more row, one seed, its accuracy on every set and its passes
    checked = tables.model_arms(per_seed, out["gain_vs_labels_only"], choice.chosen, out["passes"],
                                out["labels_only_long"])
    assert len(checked) == 4 and checked.iloc[:3].equals(table)
    last = checked.iloc[-1]
    assert (last["arm"], last["seeds"]) == (ARMS["labels_only_long"], 1)
    assert last["passes"] == f"{ctx.profile.model.long_epochs} / 0"
    for name, title in tables.SEED_SETS.items():
        assert last[title] == f"{100 * long_check[name]:.2f}"


def test_the_long_check_row_shows_dashes_where_it_has_no_number():
    """The long check has no gain over the labels-only arm: its gain cells are dashes, like the labels-only arm's,
    never "nan" in the notebook's table."""
    per_seed = {arm: {"rep1_clean": [0.9, 0.91], "unlabeled": [0.9, 0.9], "rep2_clean": [0.9, 0.9]}
                for arm in MODEL_ARMS}
    gains = {arm: {"unlabeled": {"value": 0.01, "ci": [0.0, 0.02]}, "rep2_clean": {"value": 0.0, "ci": [-0.01, 0.01]}}
             for arm in MODEL_ARMS[1:]}
    passes = ours.passes_per_image(PROFILES["cpu"].model, 2000, 26000)
    table = tables.model_arms(per_seed, gains, "labels_only", passes,
                              {"rep1_clean": 0.9, "unlabeled": 0.91, "rep2_clean": 0.92})
    assert list(table.iloc[-1][["Δ 26,000", "95 % CI"]]) == ["-", "-"]
    assert "nan" not in table.to_markdown(index=False)


def test_verdict_reads_the_interval():
    assert verdict is tables.verdict  # the report's variables and the tables judge alike
    assert verdict({"value": 0.01, "ci": [0.002, 0.02]}) == "better"
    assert verdict({"value": -0.01, "ci": [-0.02, -0.001]}) == "worse"
    assert verdict({"value": 0.01, "ci": [-0.001, 0.02]}) == "no detectable difference"
    assert verdict({"value": 0.0, "ci": [0.0, 0.0]}) == "no detectable difference"


def test_the_recipes_table_has_one_column_per_run_read_from_the_profile():
    profile = PROFILES["cpu"]
    table = tables.recipes(profile).set_index("setting")
    assert list(table.columns) == ["labels only", "distilled", "contrastive pretraining", "contrastive init.",
                                   "oracle", "plain baseline"]
    assert table.loc["passes", "labels only"] == f"{profile.model.labels_only.epochs:g}"
    assert table.loc["passes", "distilled"] == f"{profile.model.distilled.epochs:g}"
    assert table.loc["peak learning rate", "plain baseline"] == f"{profile.baseline.training.lr:g}"
    assert table.loc["views", "distilled"] == tables.augmentation(profile.model.distilled.augment)
    assert "erasing" in table.loc["views", "contrastive pretraining"] and "erasing" not in table.loc["views",
                                                                                                      "labels only"]


def test_the_long_check_is_placed_against_the_seed_spread_and_concluded_only_from_set_1():
    seeds = {"unlabeled": [0.9748, 0.9758, 0.9768], "rep1_clean": [0.967, 0.970, 0.973]}  # 97.58 ± 0.10, 97.00 ± 0.30
    higher = long_check_sentence({"unlabeled": 0.9779, "rep1_clean": 0.9700}, seeds)
    assert "97.79 % on the 26,000 images, above the seeds' spread at the usual length (97.58 ± 0.10 %)" in higher
    assert "97.00 % on set 1's clean images, within" in higher
    assert higher.endswith("keeps its length, although the 26,000 images suggest that it has not fully converged")
    same = long_check_sentence({"unlabeled": 0.9759, "rep1_clean": 0.9650}, seeds)
    assert "26,000 images, within" in same and "clean images, below" in same and same.endswith("keeps its length")
    # where set 1 gains, the sentence draws no conclusion: the recipe was declared before the run
    assert long_check_sentence({"unlabeled": 0.9700, "rep1_clean": 0.9800}, seeds).endswith("(97.00 ± 0.30 %)")
