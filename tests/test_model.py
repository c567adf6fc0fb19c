"""The project's model in arms (lib.experiments.model): the per-seed accuracies, the choice of the arm, the paired
gains over the labels-only arm, the learning curves and budgets, and every arm trained on a tiny context."""

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import softmax

from lib.config import PROFILES, CNNConfig, override
from lib.data import load_answer_key
from lib.eval import metrics, protocol
from lib.experiments import classification as cls
from lib.experiments import model as ours
from lib.nn.infer import batched, images_per_second
from lib.notebook import Context, _subset
from lib.render import tables
from lib.render.names import ARMS
from lib.results import MODEL_ARMS, UNLABELED_ARM, Estimate, summary
from lib.train import checkpoint
from lib.train.cache import array_fingerprint
from lib.train.runs import weights_fingerprint
from lib.workspace import Workspace

TINY = CNNConfig(widths=(4, 4, 8, 8, 8, 8), description_dim=10, decoder=True)


def hand_made():
    """Predictions of both arms and two seeds on two sets: set 1's clean images (6 images) and another one (10)."""
    y1, y2 = np.array([0, 1, 2, 3, 4, 0]), np.arange(10) % 5
    sets = {"rep1_clean": (None, y1), "unlabeled": (None, y2)}
    wrong = lambda y, k: np.where(np.arange(len(y)) < k, (y + 1) % 5, y)  # noqa: E731 - the first k wrong
    predicted = {
        "labels_only": {0: {"rep1_clean": wrong(y1, 2), "unlabeled": wrong(y2, 4)},
                        1: {"rep1_clean": wrong(y1, 3), "unlabeled": wrong(y2, 2)}},
        "fixmatch": {0: {"rep1_clean": wrong(y1, 0), "unlabeled": wrong(y2, 1)},
                     1: {"rep1_clean": wrong(y1, 0), "unlabeled": wrong(y2, 1)}},
    }
    return predicted, sets


def test_seed_accuracy_and_the_choice_of_the_arm():
    predicted, sets = hand_made()
    per_seed = ours.seed_accuracy(predicted, sets)
    assert per_seed["labels_only"]["rep1_clean"] == pytest.approx([4 / 6, 3 / 6])
    assert per_seed["fixmatch"]["unlabeled"] == pytest.approx([0.9, 0.9])
    choice = ours.choose(per_seed)
    # FixMatch: 1.0 on set 1 against 0.583, beyond the larger seed spread (0.118): it is the model
    assert choice == protocol.choose_variant(per_seed, "labels_only", ["fixmatch"])
    assert choice.chosen == "fixmatch" and set(choice.evidence["gain"]) == {"fixmatch"}
    # within the spread, the simpler arm stays
    close = {"labels_only": per_seed["labels_only"],
             "fixmatch": {"rep1_clean": [4 / 6, 4 / 6], "unlabeled": [1.0, 1.0]}}
    assert ours.choose(close).chosen == "labels_only"


def test_gains_are_paired_differences_of_seed_mean_correctness():
    predicted, sets = hand_made()
    gains = ours.gains(predicted, sets, n_resamples=200, seed=0)
    y = sets["unlabeled"][1]
    correct = ours.seed_mean_correct(predicted, "labels_only", "unlabeled", y)
    assert set(gains) == {"fixmatch"}
    assert set(gains["fixmatch"]) == {"unlabeled"}  # set 1's clean images chose the arm: no gain reported there
    assert isinstance(gains["fixmatch"]["unlabeled"], Estimate)
    assert gains["fixmatch"]["unlabeled"].value == pytest.approx(0.9 - 0.7)
    expected = metrics.paired_difference(ours.seed_mean_correct(predicted, "fixmatch", "unlabeled", y), correct,
                                         n_resamples=200, seed=0)
    assert gains["fixmatch"]["unlabeled"].ci == pytest.approx(expected["ci"])


@pytest.fixture(scope="module")
def tiny_ctx(tmp_path_factory, replica_assignment):
    """A context like lib.notebook's on the first 64 images of every set of the replica (answer key cut to match),
    with a tiny network and one epoch per arm."""
    data = replica_assignment
    data, key = _subset(data, load_answer_key(data), 64)
    profile = override(PROFILES["smoke"], {
        "model.seeds": (0, 1), "model.network": TINY, "model.labels_only.epochs": 2, "model.labels_only.batch": 32,
        "model.fixmatch.training.epochs": 2, "model.fixmatch.training.batch": 32, "model.fixmatch.labeled_batch": 16,
        "model.oracle.epochs": 1, "model.oracle.batch": 32, "model.curve_every": 1, "model.curve_images": 40})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Context(profile, 0, torch.device("cpu"), Workspace(tmp_path_factory.mktemp("ws")), data, key)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_curves(tiny_ctx):
    return ours.curve_sets(tiny_ctx, cls.clean_set1(tiny_ctx.data))


@pytest.fixture(scope="module")
def tiny_arms(tiny_ctx, tiny_curves):
    return ours.train_arms(tiny_ctx, tiny_curves)


def test_train_arms_on_a_tiny_context(tiny_ctx, tiny_arms):
    ctx, data, arms = tiny_ctx, tiny_ctx.data, tiny_arms
    assert list(arms.runs) == list(MODEL_ARMS) and all(list(by_seed) == [0, 1] for by_seed in arms.runs.values())

    def key(result):
        return checkpoint.read(result.folder)["training"]["key"]

    for seed, result in arms.runs["fixmatch"].items():
        # FixMatch continues the labels-only network of its own seed, on the labels and the unlabeled images
        assert key(result)["init"] == weights_fingerprint(arms.runs["labels_only"][seed].model)
        assert key(result)["data"] == array_fingerprint(data.labeled_x, data.labeled_y, data.unlabeled)
        assert key(result)["settings"]["confidence"] == ctx.profile.model.fixmatch.confidence
        # the run returns the EMA network, the one its checkpoint holds
        saved = checkpoint.read(result.folder)
        for name, value in result.model.state_dict().items():
            torch.testing.assert_close(value, saved["state"][name])
        assert any(not torch.equal(saved["state"][n], saved["training"]["network"][n]) for n in saved["state"])
    assert all(key(result)["init"] == "none" for result in arms.runs["labels_only"].values())
    assert key(arms.runs["fixmatch"][0])["init"] != key(arms.runs["fixmatch"][1])["init"]
    # the oracle: the first labels-only network continued with the true classes of every image
    x_all = np.concatenate([data.labeled_x, data.unlabeled])
    truth = np.concatenate([data.labeled_y, ctx.answer_key["unlabeled_class"]])
    assert arms.oracle is not None and key(arms.oracle)["data"] == array_fingerprint(x_all, truth)
    assert key(arms.oracle)["init"] == weights_fingerprint(arms.runs["labels_only"][0].model)
    # without the answer key (the original data) there is no oracle
    no_key = Context(ctx.profile, ctx.seed, ctx.device, ctx.ws, data, None)
    curves = ours.curve_sets(no_key, cls.clean_set1(data))
    assert list(curves) == ["rep1_clean"]
    assert ours.train_arms(no_key, curves).oracle is None


def test_learning_curves_record_every_pass_and_start_fixmatch_at_its_warm_start(tiny_ctx, tiny_arms, tiny_curves):
    assert list(tiny_curves) == ["rep1_clean", "unlabeled"] and len(tiny_curves["unlabeled"][1]) == 40
    curves = ours.learning_curves(tiny_arms)
    assert [(r["seed"], r["epoch"]) for r in curves["labels_only"]] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert [(r["seed"], r["epoch"]) for r in curves["fixmatch"]] == [(s, e) for s in (0, 1) for e in (0, 1, 2)]
    start = [r for r in curves["fixmatch"] if r["epoch"] == 0]
    assert start == [{**r, "epoch": 0} for r in curves["labels_only"] if r["epoch"] == 2]
    # the last point is the returned network's accuracy
    last = curves["fixmatch"][-1]
    x, y = tiny_curves["unlabeled"]
    assert last["unlabeled"] == metrics.accuracy(y, batched(tiny_arms.runs["fixmatch"][1].model, x).argmax(1))


def test_pseudo_labels_are_measured_on_the_first_seeds_teacher(tiny_ctx, tiny_arms):
    key = tiny_ctx.answer_key
    assert ours.pseudo_labels(tiny_arms, tiny_ctx.data.unlabeled, None, 0.85) is None
    everything = ours.pseudo_labels(tiny_arms, tiny_ctx.data.unlabeled, key, 0.0)
    predicted = batched(tiny_arms.runs["fixmatch"][0].model, tiny_ctx.data.unlabeled).argmax(1)
    assert everything == {"confident_fraction": 1.0,
                          "accuracy": pytest.approx(metrics.accuracy(key["unlabeled_class"], predicted))}
    assert ours.pseudo_labels(tiny_arms, tiny_ctx.data.unlabeled, key, 1.01) == {"confident_fraction": 0.0,
                                                                                 "accuracy": None}


def test_budgets_count_the_passes_of_the_network_an_arm_continues(tiny_arms):
    settings = PROFILES["cpu"].model
    budget = ours.budgets(tiny_arms, settings, 2000, 26000)
    labels, passes = settings.labels_only.epochs, settings.fixmatch.training.epochs
    assert budget["labels_only"]["labeled"] == labels and budget["labels_only"]["unlabeled"] == 0
    steps = 26000 // settings.fixmatch.training.batch * passes
    assert budget["fixmatch"]["labeled"] == pytest.approx(labels + steps * settings.fixmatch.labeled_batch / 2000)
    assert budget["fixmatch"]["unlabeled"] == passes
    assert budget["oracle"]["labeled"] == labels + settings.oracle.epochs
    assert budget["fixmatch"]["images"] == pytest.approx(budget["fixmatch"]["labeled"] * 2000 + passes * 26000)
    seconds = np.mean([r.seconds for r in tiny_arms.runs["labels_only"].values()])
    assert budget["labels_only"]["seconds"] == pytest.approx(seconds)
    assert budget["fixmatch"]["seconds"] > budget["labels_only"]["seconds"]


def test_a_second_call_loads_every_run(tiny_ctx, tiny_arms, tiny_curves, capsys):
    """Everything is cached: 2 labels-only runs, 2 FixMatch runs and the oracle load."""
    capsys.readouterr()
    again = ours.train_arms(tiny_ctx, tiny_curves)
    out = capsys.readouterr().out
    assert out.count("already trained, loaded") == 5, out
    for arm, by_seed in tiny_arms.runs.items():
        assert {seed: result.folder for seed, result in again.runs[arm].items()} == \
            {seed: result.folder for seed, result in by_seed.items()}, arm


# --------------------------------------------------------------------------- notebook 03's bookkeeping


def test_reference_systems_are_the_baseline_the_oracle_and_the_chosen_arms_first_seed(tiny_ctx, tiny_arms):
    ctx, arms = tiny_ctx, tiny_arms
    baseline = arms.runs["labels_only"][1]  # any trained network stands in for the plain baseline
    images = ctx.data.rep2_x[:10]
    uses = {"labels_only": ("none", 0), "fixmatch": ("pseudo-labels", 64)}
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
    without = ours.Arms(arms.runs, oracle=None)  # the original data: no answer key
    assert list(cls.reference_systems(ctx, baseline, without, "labels_only")) == ["baseline", "model"]


def test_gain_over_baseline_is_paired_on_every_set_but_validation():
    y = np.arange(20) % 5
    right, wrong = np.eye(5)[y], np.eye(5)[(y + 1) % 5]
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


def test_set_1s_clean_images(tiny_ctx):
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


def test_record_feeds_the_summary_and_the_arms_table(tiny_ctx, tiny_arms):
    """Notebook 03's steps on the tiny context, its record through JSON, and what the summary reads from it."""
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
    budgets = ours.budgets(arms, ctx.profile.model, len(data.labeled_y), len(data.unlabeled))
    curves = ours.learning_curves(arms)
    pseudo = ours.pseudo_labels(arms, data.unlabeled, ctx.answer_key, 0.5)
    out = cls.record(ctx, split, systems, accuracy, {name: 1000.0 for name in systems}, choice, per_seed, gains,
                     budgets, curves, pseudo, arms, baseline, versus, ece, pd.DataFrame({"labels": [10]}),
                     "unlabeled")
    out = json.loads(json.dumps(out))
    assert out["choice"]["chosen"] == choice.chosen and set(out["gain_vs_labels_only"]) == {"fixmatch"}
    assert out["passes"] == json.loads(json.dumps(budgets)) and out["curves"] == json.loads(json.dumps(curves))
    assert out["pseudo_labels"] == pseudo
    assert list(out["model_checkpoints"]) == ["0", "1"]
    assert out["model_settings"]["seeds"] == [0, 1]

    keys = summary({"03_classification": out})
    assert keys["classification.accuracy.unlabeled"] == out["accuracy"]["model"]["unlabeled"]["value"]
    assert keys["classification.gain_over_baseline.rep2_clean"] == out["gain_over_baseline"]["rep2_clean"]["value"]
    # the gain from the unlabeled images is always FixMatch's, whichever arm was chosen
    assert keys["classification.gain_from_unlabeled.arm"] == UNLABELED_ARM == "fixmatch"
    assert keys["classification.gain_from_unlabeled.unlabeled"] == out["gain_vs_labels_only"]["fixmatch"][
        "unlabeled"]["value"]
    assert keys["classification.gain_from_unlabeled.unlabeled_ci"] == out["gain_vs_labels_only"]["fixmatch"][
        "unlabeled"]["ci"]

    table = tables.model_arms(per_seed, out["gain_vs_labels_only"], choice.chosen, out["passes"])
    assert list(table["arm"]) == [ARMS[arm] + (" (chosen)" if arm == choice.chosen else "") for arm in MODEL_ARMS]
    assert table["Δ 26,000"].iloc[0] == "-" and table["Δ 26,000"].iloc[1].startswith(("+", "-", "0"))
    assert list(table["seeds"]) == [2, 2]
    assert table["passes"].iloc[1] == f"{budgets['fixmatch']['labeled']:.0f} / 2"
    assert "nan" not in table.to_markdown(index=False)


def test_the_recipes_table_has_one_column_per_run_read_from_the_profile():
    profile = PROFILES["cpu"]
    table = tables.recipes(profile).set_index("setting")
    assert list(table.columns) == ["labels only", "FixMatch", "oracle", "plain baseline"]
    assert table.loc["passes", "labels only"] == f"{profile.model.labels_only.epochs:g}"
    assert table.loc["passes", "FixMatch"] == f"{profile.model.fixmatch.training.epochs:g}"
    assert table.loc["peak learning rate", "plain baseline"] == f"{profile.baseline.training.lr:g}"
    assert table.loc["label smoothing", "FixMatch"] == f"{profile.model.fixmatch.training.label_smoothing:g}"
    assert f"{profile.model.fixmatch.confidence:g}" in table.loc["targets", "FixMatch"]
