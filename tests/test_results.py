"""The headline summary is built in one place from the notebooks' results, and leaves out what did not run."""

import pytest

from lib.results import MODEL_ARMS, UNLABELED_ARM, Decision, Estimate, flat, plain, summary


def estimate(value, width=0.01):
    return {"value": value, "ci": [value - width, value + width]}


def classification_results(chosen="fixmatch", gains=None):
    """What notebook 03 records and the summary reads: "model" is the chosen arm's first network."""
    accuracy = {name: {"unlabeled": estimate(v), "rep2_clean": {"value": v - 0.005, "ci": [v - 0.02, v]}}
                for name, v in (("model", 0.98), ("baseline", 0.96), ("oracle", 0.99))}
    per_seed = {arm: {"rep1_clean": [0.97, 0.97, 0.98], "unlabeled": [0.97, 0.96, 0.98],
                      "rep2_clean": [0.95, 0.97, 0.96]} for arm in MODEL_ARMS}
    gains = gains or {"fixmatch": 0.01}
    return plain({"choice": Decision("rule", chosen, {"mean": {}, "std": {}, "gain": gains, "seeds": {}}),
                  "accuracy": accuracy, "per_seed": per_seed,
                  "gain_over_baseline": {"unlabeled": estimate(0.02), "rep2_clean": estimate(0.015)},
                  "gain_vs_labels_only": {arm: {"unlabeled": estimate(0.001 * (i + 1)),
                                                "rep2_clean": estimate(0.002 * (i + 1))}
                                          for i, arm in enumerate(MODEL_ARMS[1:])},
                  "images_per_second_cpu": {"model": 1234.0}})


def test_summary_of_notebook_03_uses_the_model_and_the_baseline():
    keys = summary({"03_classification": classification_results("fixmatch")})
    assert keys["classification.accuracy.unlabeled"] == 0.98
    assert keys["classification.accuracy.unlabeled_ci"] == pytest.approx([0.97, 0.99])
    assert keys["baseline.accuracy.rep2_clean"] == pytest.approx(0.955)
    assert keys["classification.accuracy.oracle_rep2_clean"] == pytest.approx(0.985)
    assert keys["classification.gain_over_baseline.unlabeled"] == pytest.approx(0.02)
    assert keys["classification.gain_over_baseline.rep2_clean_ci"] == pytest.approx([0.005, 0.025])
    # the chosen arm uses the unlabeled images: its gain over the labels-only arm
    assert keys["classification.gain_from_unlabeled.unlabeled"] == pytest.approx(0.001)
    assert keys["classification.gain_from_unlabeled.rep2_clean"] == pytest.approx(0.002)
    assert keys["seeds.classification.accuracy.unlabeled_std"] == pytest.approx(0.01)
    assert "inference.images_per_second_cpu" not in keys  # notebook 04 times the deployed bundle
    assert not any(key.startswith(("ood.", "embedding.")) for key in keys)  # notebook 04 has not run


def test_the_gain_from_unlabeled_images_is_fixmatchs_whichever_arm_is_chosen():
    assert UNLABELED_ARM == "fixmatch" and UNLABELED_ARM in MODEL_ARMS
    for chosen in MODEL_ARMS:
        keys = summary({"03_classification": classification_results(chosen, {"fixmatch": -0.01})})
        assert keys["classification.gain_from_unlabeled.arm"] == "fixmatch"
        assert keys["classification.gain_from_unlabeled.unlabeled"] == pytest.approx(0.001)
        assert keys["classification.gain_from_unlabeled.unlabeled_ci"] == pytest.approx([-0.009, 0.011])


def test_nothing_ran_gives_an_empty_summary():
    assert summary({}) == {}


def test_plain_turns_records_and_numpy_into_json_values():
    import numpy as np

    value = plain({1: Estimate(np.float64(0.5), (0.1, 0.9)), "a": np.arange(2), "b": (np.int64(3),)})
    assert value == {"1": {"value": 0.5, "ci": [0.1, 0.9]}, "a": [0, 1], "b": [3]}
    assert type(value["1"]["value"]) is float and type(value["b"][0]) is int


def test_flat_gives_dotted_keys():
    assert flat({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": 2}) == {"a.b": 1, "a.c.d": [1, 2], "e": 2}


def test_parts_systems_and_arms_have_names_everywhere():
    from lib.render import names
    from lib.results import COMBINATIONS, FEATURE_PARTS, PARTS, REFERENCE_SCORES, SYSTEMS

    assert PARTS == ("stage_1", "stage_2", "stage_3", "description", "knn", "energy", "reconstruction", "frame")
    assert FEATURE_PARTS == PARTS[:4]  # the Mahalanobis parts (lib.results.PART_REGISTRY)
    assert COMBINATIONS["features_knn_energy_frame"] == (*FEATURE_PARTS, "knn", "energy", "frame")
    assert COMBINATIONS["every_part"] == PARTS and all(set(parts) <= set(PARTS) for parts in COMBINATIONS.values())
    assert "energy" not in REFERENCE_SCORES  # a part of our evidence now
    assert "model" in SYSTEMS and not any(name.startswith("model_") for name in SYSTEMS)
    assert MODEL_ARMS == ("labels_only", "fixmatch")
    assert set(names.SYSTEMS) == set(SYSTEMS)
    assert tuple(names.ARMS) == MODEL_ARMS
    assert set(COMBINATIONS) | set(REFERENCE_SCORES) <= set(names.SCORES)
    assert tuple(names.PART_COLUMNS) == PARTS
