"""The headline summary is built in one place from the notebooks' results, and leaves out what did not run."""

import pytest

from lib.results import Decision, Estimate, flat, plain, summary


def classification_results(chosen="model_labels_only"):
    accuracy = {name: {"unlabeled": {"value": v, "ci": [v - 0.01, v + 0.01]},
                       "rep2_clean": {"value": v - 0.005, "ci": [v - 0.02, v]}}
                for name, v in (("model_labels_only", 0.97), ("model_self_trained", 0.98), ("baseline", 0.96),
                                ("oracle", 0.99))}
    return plain({"choice": Decision("rule", chosen, {}), "accuracy": accuracy,
                  "images_per_second_cpu": {chosen: 1234.0},
                  "per_seed": {chosen: {"unlabeled": [0.97, 0.96, 0.98], "rep2_clean": [0.95, 0.97, 0.96]}}})


def test_summary_of_notebook_03_uses_the_chosen_variant_and_the_baseline():
    keys = summary({"03_classification": classification_results("model_self_trained")})
    assert keys["classification.accuracy.unlabeled"] == 0.98
    assert keys["classification.accuracy.unlabeled_ci"] == pytest.approx([0.97, 0.99])
    assert keys["baseline.accuracy.rep2_clean"] == pytest.approx(0.955)
    assert keys["classification.accuracy.oracle_rep2_clean"] == pytest.approx(0.985)
    assert keys["inference.images_per_second_cpu"] == 1234.0
    assert keys["seeds.classification.accuracy.unlabeled_std"] == pytest.approx(0.01)
    assert not any(key.startswith(("ood.", "embedding.")) for key in keys)  # notebook 04 has not run


def test_nothing_ran_gives_an_empty_summary():
    assert summary({}) == {}


def test_plain_turns_records_and_numpy_into_json_values():
    import numpy as np

    value = plain({1: Estimate(np.float64(0.5), (0.1, 0.9)), "a": np.arange(2), "b": (np.int64(3),)})
    assert value == {"1": {"value": 0.5, "ci": [0.1, 0.9]}, "a": [0, 1], "b": [3]}
    assert type(value["1"]["value"]) is float and type(value["b"][0]) is int


def test_flat_gives_dotted_keys():
    assert flat({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": 2}) == {"a.b": 1, "a.c.d": [1, 2], "e": 2}
