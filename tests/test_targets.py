from lib.eval.targets import KMEANS_DESCRIPTION, TARGETS, Target


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
