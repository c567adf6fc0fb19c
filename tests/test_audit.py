import numpy as np

from lib.experiments import audit


def test_hardness_measures_and_their_rank_correlation():
    epochs = [1, 2, 3]
    easy = np.array([[1.0, 0.5, 0.1]] * 8)
    hard = np.array([[1.0, 0.9, 0.8]] * 2)
    measures = audit.hardness(epochs, np.concatenate([easy, hard]))
    assert list(measures.columns) == ["last", "mean", "area under the curve", "lack of improvement"]
    np.testing.assert_allclose(measures["last"], [0.1] * 8 + [0.8] * 2)
    np.testing.assert_allclose(measures["area under the curve"][:1], [0.5 * (1.0 + 0.5) + 0.5 * (0.5 + 0.1)])
    np.testing.assert_allclose(measures["lack of improvement"][-1:], [0.8])
    is_anomaly = np.array([0] * 8 + [1] * 2)
    correlations = audit.rank_correlations(measures, is_anomaly)
    assert all(value > 0.9 for value in correlations.values())
