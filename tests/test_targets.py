"""The targets of docs/protocol.md: their direction, their keys in results/summary.json, and the table."""

import json

import pandas as pd

from lib.eval.targets import KMEANS_DESCRIPTION, TARGETS, Target, targets_table
from lib.results import flat, summary
from lib.workspace import Workspace


def test_met_respects_the_direction_of_the_target():
    at_least = Target("a", "x", ">=", 0.97, 100)
    at_most = Target("b", "y", "<=", 0.02)
    assert at_least.met(0.97) and not at_least.met(0.969)
    assert at_most.met(0.02) and not at_most.met(0.021)
    assert at_least.shown_goal() == "≥ 97" and at_most.shown_goal() == "≤ 0.02"


def test_every_target_names_a_distinct_summary_key():
    keys = [t.summary_key for t in TARGETS]
    assert len(keys) == len(set(keys)) and KMEANS_DESCRIPTION in TARGETS
    assert all(t.sense in (">=", "<=") for t in TARGETS)


def estimate(value):
    return {"value": value, "ci": [value - 0.01, value]}


def notebook_results():
    """The parts of notebooks 03 and 04's results that results/summary.json is built from."""
    accuracy = {name: {"unlabeled": estimate(v), "rep2_clean": estimate(v)}
                for name, v in (("model_labels_only", 0.99), ("baseline", 0.98), ("oracle", 0.992))}
    classification = {"choice": {"rule": "r", "chosen": "model_labels_only", "evidence": {}}, "accuracy": accuracy,
                      "images_per_second_cpu": {"model_labels_only": 6000.0},
                      "per_seed": {"model_labels_only": {"unlabeled": [0.99], "rep2_clean": [0.99]}}}
    ood = {"rep2": {"auroc": estimate(0.996), "average_precision": estimate(0.96), "fpr_at_95_tpr": estimate(0.03),
                    "macro_f1": estimate(0.97)},
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
    table = targets_table(keys, predict_seconds=4.0).set_index("quantity")
    assert len(table) == len(TARGETS) + 1 + 3 + 1  # the targets, the oracle gap, three baselines, predict
    assert table.loc["ROC AUC, set 2", "this run"] == "0.996 [0.986, 0.996]"
    assert table.loc["ROC AUC, worst unseen anomaly kind", "met"] == "no"  # digits: 0.94 < 0.95
    assert table.loc["inference, images/s on the CPU", "this run"] == "6,000"
    assert table.loc["average precision above the plain baseline, set 2", "met"] == "no"  # 0.96 < 0.97
    # results/summary.json holds the keys nested; flattened back, the table is the same
    ws = Workspace(tmp_path)
    ws.update_summary(keys)
    stored = flat(json.loads((ws.results / "summary.json").read_text()))
    assert stored == keys
    pd.testing.assert_frame_equal(targets_table(stored, 4.0), targets_table(keys, 4.0))
    assert targets_table({}, None).empty  # nothing ran: no row, never a placeholder
