"""The evaluation protocol: choices come from the validation split and set 1 only; set 2 moves none of them."""

import numpy as np
import pytest

from lib.errors import UserError
from lib.eval import metrics, protocol
from lib.eval.targets import targets_table
from lib.experiments import anomaly, classification
from lib.render import variables
from lib.results import Decision, flat


def anomaly_sets(seed: int = 0):
    """Scores of three candidates on sets 1 and 2: 'b' separates set 1 best, 'c' separates set 2 best."""
    rng = np.random.default_rng(seed)
    flags = {s: np.r_[np.zeros(200, bool), np.ones(20, bool)] for s in ("rep1", "rep2")}
    shift = {"a": {"rep1": 2.0, "rep2": 1.0}, "b": {"rep1": 4.0, "rep2": 0.0}, "c": {"rep1": 0.0, "rep2": 5.0}}
    scores = {name: {s: rng.normal(size=220) + by_set[s] * flags[s] for s in flags} for name, by_set in shift.items()}
    return scores, flags


def test_choose_score_reads_set_1_only():
    scores, flags = anomaly_sets()
    decision = protocol.choose_score(scores, flags, ["a", "b", "c"])
    assert isinstance(decision, Decision) and decision.chosen == "b" and decision.rule == protocol.SCORE_RULE
    assert set(decision.evidence) == {"a", "b", "c"}  # the numbers it read: set 1's, by candidate
    assert decision.evidence["b"]["auroc_rep1"] == metrics.auroc(scores["b"]["rep1"], flags["rep1"])
    assert protocol.choose_score(scores, flags, ["a", "c"]).chosen == "a"  # only candidates compete


def test_every_choice_is_unchanged_when_set_2_is_scrambled():
    scores, flags = anomaly_sets()
    rng = np.random.default_rng(1)
    scrambled = {**flags, "rep2": rng.permutation(flags["rep2"])}
    shuffled_scores = {name: {**by_set, "rep2": rng.permutation(by_set["rep2"])} for name, by_set in scores.items()}
    accuracy = {"x": {"rep1_clean": [0.98, 0.981], "rep2_clean": [0.5, 0.5]},
                "y": {"rep1_clean": [0.97, 0.971], "rep2_clean": [0.99, 0.99]}}
    scrambled_accuracy = {name: {**by_set, "rep2_clean": [1.0 - v for v in by_set["rep2_clean"]]}
                          for name, by_set in accuracy.items()}
    for test_scores, test_flags, test_accuracy in ((scores, flags, accuracy),
                                                   (shuffled_scores, scrambled, scrambled_accuracy)):
        score_choice = protocol.choose_score(test_scores, test_flags, ["a", "b", "c"])
        assert score_choice == protocol.choose_score(scores, flags, ["a", "b", "c"])  # evidence included
        assert score_choice.chosen == "b"
        assert protocol.fix_threshold(test_scores["b"], test_flags) == protocol.fix_threshold(scores["b"], flags)
        variant_choice = protocol.choose_variant(test_accuracy, "y", "x")
        assert variant_choice == protocol.choose_variant(accuracy, "y", "x") and variant_choice.chosen == "x"
    # ... while the final evaluation on set 2 does see the scrambling
    honest = protocol.final_evaluation(scores["c"]["rep2"], flags["rep2"], np.zeros(220, int), np.zeros(220, int),
                                       0.0, n_resamples=50, seed=0)
    broken = protocol.final_evaluation(shuffled_scores["c"]["rep2"], flags["rep2"], np.zeros(220, int),
                                       np.zeros(220, int), 0.0, n_resamples=50, seed=0)
    assert honest["auroc"]["value"] > 0.95 > broken["auroc"]["value"]


def test_choose_variant_needs_more_than_the_seed_spread():
    def choose(simple, rich):
        return protocol.choose_variant({"labels only": {"rep1_clean": simple}, "self-trained": {"rep1_clean": rich}},
                                       "labels only", "self-trained").chosen

    assert choose([0.970, 0.972, 0.974], [0.980, 0.981, 0.982]) == "self-trained"
    # ahead by 0.001 with a spread of 0.002: a tie, so the simpler variant stays
    assert choose([0.970, 0.972, 0.974], [0.971, 0.973, 0.975]) == "labels only"
    assert choose([0.97], [0.99]) == "labels only"  # one seed: no spread to beat
    assert choose([0.98, 0.98], [0.97, 0.97]) == "labels only"


def test_choose_variant_records_its_evidence_by_variant():
    per_seed = {"simple": {"rep1_clean": [0.970, 0.972, 0.974], "rep2_clean": [0.0, 0.0, 0.0]},
                "rich": {"rep1_clean": [0.980, 0.981, 0.982], "rep2_clean": [1.0, 1.0, 1.0]}}
    decision = protocol.choose_variant(per_seed, "simple", "rich")
    assert decision.rule == protocol.VARIANT_RULE and decision.chosen == "rich"
    evidence = decision.evidence
    assert set(evidence) == {"mean", "std", "gain", "seeds"}
    assert evidence["mean"] == pytest.approx({"simple": 0.972, "rich": 0.981})
    assert evidence["std"] == pytest.approx({"simple": 0.002, "rich": 0.001})
    assert evidence["gain"] == pytest.approx({"rich": 0.009}) and evidence["seeds"] == {"simple": 3, "rich": 3}
    # a name alone and a list of one name are the same choice
    assert protocol.choose_variant(per_seed, "simple", ["rich"]) == decision
    # one seed: no standard deviation, and the simpler variant stays
    single = protocol.choose_variant({"simple": {"rep1_clean": [0.9]}, "rich": {"rep1_clean": [0.99]}},
                                     "simple", "rich")
    assert single.chosen == "simple" and single.evidence["std"] == {"simple": None, "rich": None}
    assert single.evidence["gain"]["rich"] == pytest.approx(0.09)


def test_choose_variant_among_several_candidates_takes_the_best_eligible_mean():
    simple = [0.970, 0.972, 0.974]  # std 0.002

    def choose(**candidates):
        per_seed = {"simple": {"rep1_clean": simple}, **{k: {"rep1_clean": v} for k, v in candidates.items()}}
        return protocol.choose_variant(per_seed, "simple", list(candidates))

    # both beat the spread: the higher mean wins, whatever the listing order
    both = dict(a=[0.980, 0.981, 0.982], b=[0.985, 0.986, 0.987])
    assert choose(**both).chosen == "b"
    assert choose(b=both["b"], a=both["a"]).chosen == "b"
    decision = choose(**both)
    assert set(decision.evidence["gain"]) == {"a", "b"} and set(decision.evidence["mean"]) == {"simple", "a", "b"}
    assert decision.evidence["gain"]["b"] == pytest.approx(0.014)
    # the higher mean is not eligible (its own spread, 0.02, exceeds its gain): the eligible one wins
    assert choose(a=[0.980, 0.981, 0.982], b=[0.97, 0.99, 1.01]).chosen == "a"
    # neither beats the spread: the simpler variant stays
    assert choose(a=[0.971, 0.973, 0.975], b=[0.960, 0.970, 0.980]).chosen == "simple"
    # equal means: listing order breaks the tie
    assert choose(a=[0.980, 0.981, 0.982], b=[0.980, 0.981, 0.982]).chosen == "a"
    assert choose(b=[0.980, 0.981, 0.982], a=[0.980, 0.981, 0.982]).chosen == "b"


def test_final_evaluation_counts_flags_and_six_classes():
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.95])
    flags = np.array([False, False, False, True, True])
    y = np.array([0, 1, 2, 5, 5])
    result = protocol.final_evaluation(scores, flags, np.array([0, 1, 2, 3, 4]), y, threshold=0.85,
                                       n_resamples=20, seed=0)
    assert result["at_threshold"]["flagged"] == 2 and result["at_threshold"]["recall"] == 0.5
    assert result["six_class"].tolist() == [0, 1, 5, 3, 5]


def test_split_is_stratified_and_disjoint():
    class Data:
        labeled_y = np.repeat(np.arange(5), 40)
        labeled_x = np.arange(200)[:, None]

    split = classification.split_labeled(Data, 0.2, seed=0)
    assert np.bincount(split.y_val).tolist() == [8] * 5
    assert not set(split.x_train.ravel()) & set(split.x_val.ravel())


def test_breakdown_by_origin_and_failure_cases():
    kind = np.array(["clean"] * 6 + ["foreign: Shirt"] * 2 + ["inverted"] * 2)
    scores = np.array([0, 1, 2, 3, 4, 9, 8, 2.5, 10, 11], float)
    rows = anomaly.breakdown_by_origin(scores, scores > 5, kind)
    assert [row["origin"] for row in rows] == ["foreign: Shirt", "inverted"]
    assert [row["anomalies"] for row in rows] == [2, 2]
    assert [row["flagged"] for row in rows] == [0.5, 1.0]
    # against the six clean images: 8 beats five of them and 2.5 three, so (5 + 3) / 12
    assert [row["auroc"] for row in rows] == pytest.approx([2 / 3, 1.0])
    assert anomaly.breakdown_by_origin(scores, scores > 5, None) is None  # no answer key: no breakdown
    clean, missed = anomaly.failure_cases(scores, kind != "clean", count=1)
    assert clean.tolist() == [5] and missed.tolist() == [7]


def test_targets_table_judges_point_estimates():
    summary = flat({"classification": {"accuracy": {"unlabeled": 0.99, "unlabeled_ci": [0.98, 0.995],
                                                    "rep2_clean": 0.97, "oracle_rep2_clean": 0.98},
                                       "gain_over_baseline": {"unlabeled": 0.004, "unlabeled_ci": [-0.001, 0.009]}},
                    "ood": {"auroc": {"rep2": 0.9}},
                    "baseline": {"ood": {"auroc": {"rep2": 0.85}}, "accuracy": {"rep2_clean": 0.975}}})
    assert summary["classification.accuracy.unlabeled_ci"] == [0.98, 0.995]
    table = targets_table(summary, predict_seconds=4.0).set_index("quantity")
    assert table.loc["accuracy, 26,000 (%)", "met"] == "yes"
    assert table.loc["accuracy, 26,000 (%)", "this run"] == "99.00 [98.00, 99.50]"
    assert tuple(table.loc["accuracy, set 2 clean (%)", ["met", "missed by"]]) == ("no", "1.50")
    assert tuple(table.loc["ROC AUC, set 2", ["met", "missed by"]]) == ("no", "0.095")
    # a gain whose point is above zero but whose interval is not: missed
    gain = table.loc["over the baseline, 26,000 (points)"]
    assert (gain["met"], gain["missed by"]) == ("no", "interval includes 0")
    assert "six-class macro-F1, set 2" not in table.index  # not produced: left out, never a placeholder
    # the oracle gap and the "above the plain baseline" rows are gone (tables.versus_baseline compares, paired)
    assert not any("oracle" in row or "above the plain baseline" in row for row in table.index)
    assert table.loc["predict, 10,000 images (s)", "met"] == "yes"


def test_report_variables_come_from_results(tmp_path):
    class Ws:
        results = tmp_path

        def __init__(self):
            self.written = {}

        def update_report_variables(self, section, values):
            self.written[section] = values

    ws = Ws()
    (tmp_path / "summary.json").write_text('{"ood": {"auroc": {"rep2": 0.999}}}')
    assert variables.write_report_variables(ws) == []  # notebooks 03 and 04 have not run: no placeholders
    (tmp_path / "03_classification.json").write_text('{"accuracy": {}}')  # written by an older version
    with pytest.raises(UserError, match="report variables '(classification|model)'.*rerun"):
        variables.write_report_variables(ws)
