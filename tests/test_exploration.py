"""Notebook 01's descriptive statistics and its report variables, on a tiny fake assignment."""

from pathlib import Path

import numpy as np

from lib.data import ANOMALY, Assignment
from lib.experiments import exploration
from lib.render.variables import data_variables


def fake_assignment(seed=0):
    rng = np.random.default_rng(seed)

    def images(n):
        return rng.integers(0, 256, (n, 1, 32, 32), dtype=np.uint8)

    labeled_y = np.repeat(np.arange(5), 4)
    rep1_y = np.array([0, 1, 2, 3, 4, 0, 1, ANOMALY, ANOMALY, ANOMALY])
    rep2_y = np.array([0, 1, 2, 3, 4, ANOMALY])
    data = Assignment(unlabeled=images(30), labeled_x=images(len(labeled_y)), labeled_y=labeled_y,
                      rep1_x=images(len(rep1_y)), rep1_y=rep1_y, rep2_x=images(len(rep2_y)), rep2_y=rep2_y,
                      source=Path("fake"), is_replica=True)
    key = {"unlabeled_class": np.arange(30) % 5,
           "rep1_origin": np.array(["in_distribution"] * 7 + ["foreign", "corrupted", "corrupted"]),
           "rep1_detail": np.array([""] * 7 + ["shirt", "invert", "noise"])}
    return data, key


def test_class_balance_counts_every_set():
    data, key = fake_assignment()
    table = exploration.class_balance(data, key).set_index("class")
    assert table.loc["anomaly", "representative_set_1"] == 3 and table.loc["anomaly", "labeled"] == 0
    assert table.loc["total", "unlabeled (answer key)"] == 30 and table.loc["total", "labeled"] == 20
    assert "unlabeled (answer key)" not in exploration.class_balance(data, None).columns


def test_exact_duplicates_between_and_within_sets():
    data, key = fake_assignment()
    data.rep2_x[0] = data.labeled_x[3]  # one image shared by two sets
    data.unlabeled[5] = data.unlabeled[6]  # one repeated within a set
    table = exploration.exact_duplicates(data)
    count = {(r["first set"], r["second set"]): r["shared images"] for _, r in table.iterrows()}
    assert count[("labeled", "representative_set_2")] == 1 and count[("unlabeled", "unlabeled")] == 1
    assert sum(count.values()) == 2
    results = exploration.summary(data, table, 0.5, is_replica=True)
    assert results["shared_images_between_sets"] == 1 and results["repeated_images_within_sets"] == 1


def test_anomaly_rows_by_origin_and_without_answer_key():
    data, key = fake_assignment()
    rows, labels = exploration.anomaly_rows(data, key, per_row=6)
    assert labels == ["foreign", "invert", "noise"]
    assert np.array_equal(rows[0], data.rep1_x[[7]]) and np.array_equal(rows[2], data.rep1_x[[9]])
    rows, labels = exploration.anomaly_rows(data, None, per_row=2)
    assert labels == ["anomalies", "anomalies"] and [len(r) for r in rows] == [2, 1]


def test_class_examples_ink_and_pixel_statistics():
    data, _ = fake_assignment()
    examples = exploration.class_examples(data, per_class=3)
    assert len(examples) == 5 and all(len(e) == 3 for e in examples)
    assert np.array_equal(examples[2], data.labeled_x[data.labeled_y == 2][:3])
    white = np.full((2, 1, 32, 32), 255, np.uint8)
    assert exploration.ink_per_image(white).tolist() == [1024, 1024]
    stats = exploration.pixel_statistics(data).set_index("set")
    assert stats.loc["labeled", "images"] == 20
    assert np.isclose(stats.loc["labeled", "pixel mean"], data.labeled_x.mean())


def test_summary_and_report_variables():
    data, key = fake_assignment()
    results = exploration.summary(data, exploration.exact_duplicates(data), 0.7123, is_replica=True)
    assert results["sizes"] == {"unlabeled": 30, "labeled": 20, "representative_set_1": 10,
                                "representative_set_2": 6}
    assert results["anomalies"] == {"rep1": 3, "rep2": 1}
    variables = data_variables({"01_data_exploration": results})
    assert variables["n_unlabeled"] == "30" and variables["n_anomalies_rep2"] == "1"
    assert variables["one_anomaly_recall"] == "100.0"
    results["sizes"]["unlabeled"] = 26000
    results["is_replica"] = False
    variables = data_variables({"01_data_exploration": results})
    assert variables["n_unlabeled"] == "26,000"
    assert data_variables({}) is None
