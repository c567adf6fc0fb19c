"""The targets of docs/protocol.md: their direction, their keys in results/summary.json, and the table."""

import json

import pandas as pd

from lib.eval.targets import KMEANS_DESCRIPTION, TARGETS, Target, targets_table
from lib.results import flat, summary
from lib.workspace import Workspace


def test_met_respects_the_direction_of_the_target():
    at_least = Target("a", "x", ">=", 0.97, 100)
    at_most = Target("b", "y", "<=", 0.02)
    above = Target("c", "z", ">", 0.0, 100)
    assert at_least.met(0.97) and not at_least.met(0.969)
    assert at_most.met(0.02) and not at_most.met(0.021)
    assert above.met(0.001) and not above.met(0.0) and not above.met(-0.01)  # strictly
    assert at_least.shown_goal() == "≥ 97" and at_most.shown_goal() == "≤ 0.02" and above.shown_goal() == "> 0"


def test_a_gain_must_have_its_interval_above_zero():
    gain = Target("gain", "g", ">=", 0.005, 100, interval_above_zero=True)
    assert gain.shown_goal() == "≥ 0.5, CI > 0"
    assert gain.met(0.01, [0.002, 0.02])
    assert not gain.met(0.01, [-0.001, 0.02]) and not gain.met(0.01, [0.0, 0.02])  # the interval touches zero
    assert not gain.met(0.01)  # no interval: not shown to be above zero
    assert not gain.met(0.004, [0.001, 0.007])  # the interval is above zero, the point below the goal
    # an interval is only asked for where the target says so
    assert Target("a", "x", ">=", 0.97).met(0.98, [-1.0, 2.0])


def test_shortfall_is_the_distance_to_the_goal_in_shown_units():
    at_least = Target("a", "x", ">=", 0.985, 100, digits=".1f")
    at_most = Target("b", "y", "<=", 0.02, digits=".2f")
    gain = Target("gain", "g", ">", 0.0, 100, interval_above_zero=True, digits=".0f")
    assert at_least.shortfall(0.99, None) == "" and at_most.shortfall(0.01, None) == ""  # met: nothing missing
    assert at_least.shortfall(0.97, None) == "1.5"  # points
    assert at_most.shortfall(0.03, [0.02, 0.04]) == "0.01"
    assert gain.shortfall(0.01, [0.004, 0.016]) == ""
    assert gain.shortfall(0.01, [-0.002, 0.02]) == "interval includes 0"  # the point is met, its interval is not
    assert gain.shortfall(-0.01, [-0.02, 0.0]) == "1"  # the point itself is missed: by how much
    signed_gain = Target("gain", "g", ">=", 0.005, 100, interval_above_zero=True, digits="+.2f")
    assert signed_gain.shortfall(0.001, [-0.002, 0.004]) == "0.40"  # a distance, unsigned, even for a signed value


def test_every_target_names_a_distinct_summary_key():
    keys = [t.summary_key for t in TARGETS]
    assert len(keys) == len(set(keys)) and KMEANS_DESCRIPTION in TARGETS
    assert all(t.sense in (">=", "<=", ">") for t in TARGETS)
    # the gains over the plain baseline and from the unlabeled images: paired differences, interval above zero
    assert {t.summary_key for t in TARGETS if t.interval_above_zero} == {
        "classification.gain_over_baseline.unlabeled", "classification.gain_from_unlabeled.unlabeled"}
    assert "inference.images_per_second_cpu" in keys  # the deployed model's speed
    assert not any("oracle" in key or key.startswith("baseline.") for key in keys)  # no oracle gap, no baselines


def estimate(value):
    return {"value": value, "ci": [value - 0.01, value]}


def notebook_results():
    """The parts of notebooks 03 and 04's results that results/summary.json is built from."""
    accuracy = {name: {"unlabeled": estimate(v), "rep2_clean": estimate(v)}
                for name, v in (("model", 0.99), ("baseline", 0.98), ("oracle", 0.992))}
    gain = {"unlabeled": estimate(0.01), "rep2_clean": estimate(0.01)}  # intervals [0, 0.01]: touch zero
    over_baseline = {"unlabeled": {"value": 0.01, "ci": [0.004, 0.016]}, "rep2_clean": estimate(0.01)}
    classification = {"choice": {"rule": "r", "chosen": "labels_only",
                                 "evidence": {"gain": {"fixmatch": 0.0}}},
                      "accuracy": accuracy, "gain_over_baseline": over_baseline,
                      "gain_vs_labels_only": {"fixmatch": gain},
                      "per_seed": {"labels_only": {"unlabeled": [0.99], "rep2_clean": [0.99]}}}
    ood = {"rep2": {"auroc": estimate(0.996), "average_precision": estimate(0.96), "fpr_at_95_tpr": estimate(0.03),
                    "macro_f1": estimate(0.97)},
           "bundle_images_per_second": 6000.0,  # the deployed bundle, timed by notebook 04
           "threshold": {"value": 1.5}, "baseline_rep2": {"auroc": estimate(0.99), "average_precision": estimate(0.97)},
           "unseen_kinds": {"kinds": [{"kind": "uniform_noise", "auroc": 1.0, "flagged": 1.0},
                                      {"kind": "digits", "auroc": 0.94, "flagged": 0.5}]},
           "description": {"dim": 10, "kmeans_accuracy": estimate(0.981), "nmi": estimate(0.95)},
           "per_seed": [{"auroc_rep2": 0.996, "ap_rep2": 0.96, "fpr95_rep2": 0.03, "macro_f1_rep2": 0.97,
                         "kmeans_unlabeled": 0.981}]}
    return {"03_classification": classification, "04_ood_scoring": ood}


def test_every_target_is_a_key_of_the_summary_and_the_table_reads_dotted_keys(tmp_path):
    keys = summary(notebook_results())
    assert {t.summary_key for t in TARGETS} <= set(keys)
    table = targets_table(keys, predict_seconds=4.0)
    assert list(table.columns) == ["quantity", "target", "this run", "met", "missed by"]
    table = table.set_index("quantity")
    assert len(table) == len(TARGETS) + 1  # every target, and the predict run
    assert table.loc["ROC AUC, set 2", "this run"] == "0.996 [0.986, 0.996]"
    assert table.loc["ROC AUC, worst unseen kind", "met"] == "no"  # digits: 0.94 < 0.95
    assert table.loc["ROC AUC, worst unseen kind", "missed by"] == "0.010"
    assert table.loc["FPR at 95 % TPR, set 2", "target"] == "≤ 0.02"
    assert tuple(table.loc["FPR at 95 % TPR, set 2", ["met", "missed by"]]) == ("no", "0.010")  # 0.03 > 0.02
    assert tuple(table.loc["average precision, set 2", ["met", "missed by"]]) == ("yes", "")
    deployed = table.loc["deployed model, images/s"]
    assert (deployed["this run"], deployed["met"]) == ("6,000", "yes")
    # the gain over the plain baseline: its interval is above zero; the gain from the unlabeled images: it is not
    over = table.loc["over the baseline, 26,000 (points)"]
    assert (over["target"], over["this run"], over["met"], over["missed by"]) == (
        "> 0, CI > 0", "+1.00 [+0.40, +1.60]", "yes", "")
    unlabeled = table.loc["from unlabeled images, 26,000 (points)"]
    assert (unlabeled["met"], unlabeled["missed by"]) == ("no", "interval includes 0")
    assert table.loc["predict, 10,000 images (s)", "met"] == "yes"
    # results/summary.json holds the keys nested; flattened back, the table is the same
    ws = Workspace(tmp_path)
    ws.update_summary(keys)
    stored = flat(json.loads((ws.results / "summary.json").read_text()))
    assert stored == keys
    pd.testing.assert_frame_equal(targets_table(stored, 4.0), targets_table(keys, 4.0))
    assert targets_table({}, None).empty  # nothing ran: no row, never a placeholder
