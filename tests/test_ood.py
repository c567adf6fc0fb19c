"""Anomaly scores on two Gaussian blobs: far points score higher; logits scores have the right sign."""


import numpy as np
import pytest

from lib.eval import ood


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0.0, 0.0], [-4.0, 0.0, 0.0]])
    y = np.repeat([0, 1], 200)
    z = centres[y] + rng.normal(size=(400, 3))
    near = centres + 0.1
    far = np.array([[0.0, 12.0, 0.0], [0.0, 0.0, -12.0]])
    return z, y, near, far


def test_class_gaussians(blobs):
    z, y, near, far = blobs
    model = ood.ClassGaussians().fit(z, y)
    assert np.allclose(model.covariance_, np.eye(3), atol=0.3)
    assert model.mahalanobis(far).min() > model.mahalanobis(near).max()
    assert model.predict(near).tolist() == [0, 1]
    assert (model.predict(z) == y).mean() > 0.99
    assert np.allclose(np.exp(model.log_posterior(z)).sum(axis=1), 1.0)


def test_class_gaussians_with_pseudo_labels(blobs):
    z, y, near, _ = blobs
    few = np.r_[0:5, 200:205]  # five labels per class, the rest as unlabeled data
    model = ood.ClassGaussians().fit(z[few], y[few], z_unlabeled=z)
    assert model.n_pseudo_ > 350
    assert model.predict(near).tolist() == [0, 1]


def test_knn_distance(blobs):
    z, _, near, far = blobs
    knn = ood.KNNDistance(k=5).fit(z)
    # cosine distance sees directions: the far points point away from both blobs
    assert knn.score(far).min() > knn.score(near).max()


def test_knn_distance_is_the_kth_nearest_cosine_distance():
    rng = np.random.default_rng(1)
    bank, queries = rng.normal(size=(300, 10)), rng.normal(size=(20, 10))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    expected = np.sort(1 - unit(queries) @ unit(bank).T, axis=1)[:, 4]  # brute force, k = 5
    np.testing.assert_allclose(ood.KNNDistance(k=5).fit(bank).score(queries), expected, atol=1e-5)


def test_logit_scores_signs():
    confident = np.array([[10.0, 0.0, 0.0, 0.0, 0.0]])
    unsure = np.zeros((1, 5))
    assert ood.msp_score(confident)[0] < ood.msp_score(unsure)[0]
    assert ood.energy_score(confident)[0] < ood.energy_score(unsure)[0]
    assert ood.msp_score(unsure)[0] == pytest.approx(-0.2)
    assert ood.energy_score(unsure)[0] == pytest.approx(-np.log(5))
