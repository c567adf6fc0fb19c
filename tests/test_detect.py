"""The anomaly detectors of `lib.detect` on known cases: far points score higher, scores equal their
definitions (float64 references), and the shared `fit` / `score` API."""

import numpy as np
import pytest
import torch

from lib.detect import (
    KNN,
    Detector,
    Energy,
    FrameIntensity,
    Mahalanobis,
    MaxSoftmax,
    ReconstructionError,
    StandardizedSum,
)


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0.0, 0.0], [-4.0, 0.0, 0.0]])
    y = np.repeat([0, 1], 200)
    z = centres[y] + rng.normal(size=(400, 3))
    near = centres + 0.1
    far = np.array([[0.0, 12.0, 0.0], [0.0, 0.0, -12.0]])
    return z, y, near, far


def test_mahalanobis(blobs):
    z, y, near, far = blobs
    detector = Mahalanobis().fit(z, y)
    # whiten @ whiten.T is the precision: about the identity for unit-variance blobs
    whiten = detector.whiten.double().numpy()
    assert detector.whiten.dtype == torch.float32
    np.testing.assert_allclose(whiten @ whiten.T, np.eye(3), atol=0.3)
    assert detector.score(far).min() > detector.score(near).max()
    assert detector.score(near).max() < 0.5  # next to the class means: about zero
    scores = detector.score(z)
    assert scores.dtype == np.float64 and scores.shape == (400,)


def test_mahalanobis_is_the_distance_to_the_nearest_class_mean():
    rng = np.random.default_rng(1)
    y = np.arange(300) % 3
    mixing = rng.normal(size=(6, 6))
    z = (rng.normal(size=(300, 6)) @ mixing + 3 * y[:, None]) + 5.0  # correlated features, away from the origin
    means = np.stack([z[y == c].mean(axis=0) for c in range(3)])
    centred = z - means[y]
    covariance = centred.T @ centred / (len(z) - 3)
    covariance += 1e-6 * np.trace(covariance) / 6 * np.eye(6)
    queries = rng.normal(size=(50, 6)) @ mixing + 5.0
    diff = queries[:, None, :] - means[None]
    expected = np.einsum("nki,ij,nkj->nk", diff, np.linalg.inv(covariance), diff).min(axis=1)
    np.testing.assert_allclose(Mahalanobis().fit(z, y).score(queries), expected, rtol=1e-4)


def test_mahalanobis_needs_every_class():
    z = np.random.default_rng(2).normal(size=(10, 3))
    with pytest.raises(ValueError, match="every class needs at least one"):
        Mahalanobis().fit(z, np.zeros(10, int), n_classes=2)


def test_knn(blobs):
    z, _, near, far = blobs
    knn = KNN(k=5).fit(z)
    # cosine distance sees directions: the far points point away from both blobs
    assert knn.score(far).min() > knn.score(near).max()


def test_knn_is_the_kth_nearest_cosine_distance():
    rng = np.random.default_rng(1)
    bank, queries = rng.normal(size=(300, 10)), rng.normal(size=(20, 10))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    expected = np.sort(1 - unit(queries) @ unit(bank).T, axis=1)[:, 4]  # brute force, k = 5
    np.testing.assert_allclose(KNN(k=5).fit(bank).score(queries), expected, atol=1e-5)
    # scoring in chunks changes nothing, and no input gives no scores
    np.testing.assert_allclose(KNN(k=5).fit(bank).score(queries, chunk=3), expected, atol=1e-5)
    assert KNN(k=5).fit(bank).score(np.zeros((0, 10))).shape == (0,)


def test_logit_scores_signs():
    confident = np.array([[10.0, 0.0, 0.0, 0.0, 0.0]])
    unsure = np.zeros((1, 5))
    for detector in (MaxSoftmax(), Energy()):
        assert detector.fit(confident) is detector  # nothing to fit
        assert detector.score(confident)[0] < detector.score(unsure)[0]
    assert MaxSoftmax().score(unsure)[0] == pytest.approx(-0.2)
    assert Energy().score(unsure)[0] == pytest.approx(-np.log(5))


def test_max_softmax_is_float64():
    # a confident softmax saturates in single precision: 1 - 1e-9 is 1.0 in float32
    logits = np.array([[0.0, -20.7], [0.0, -25.0]], dtype=np.float32)
    msp = MaxSoftmax().score(logits)
    assert msp.dtype == np.float64 and -1 < msp[1] < msp[0] < -1 + 1e-8  # the more confident, the lower


def test_energy_is_a_torch_detector_in_float32():
    """Energy is a part of the deployed evidence: a module whose forward works on float32 logit tensors."""
    energy = Energy()
    assert isinstance(energy, Detector) and isinstance(energy, torch.nn.Module)
    logits = torch.tensor([[1000.0, 1000.0], [0.0, -30.0]])
    out = energy(logits)
    assert out.dtype == torch.float32 and out.shape == (2,)
    assert out[0].item() == pytest.approx(-1000 - np.log(2))  # no overflow
    assert torch.allclose(out, -torch.logsumexp(logits, dim=1))
    rng = np.random.default_rng(0)
    many = rng.normal(size=(50, 5)) * 5
    expected = -np.log(np.exp(many).sum(axis=1))
    np.testing.assert_allclose(energy.score(many, chunk=7), expected, rtol=1e-5, atol=1e-5)
    assert list(energy.state_dict()) == []  # nothing fitted, nothing to export


def test_pixel_detectors():
    rng = np.random.default_rng(3)
    images, reconstructions = rng.random((6, 1, 32, 32)), rng.random((6, 1, 32, 32))
    error = ReconstructionError().score(images, reconstructions)
    np.testing.assert_allclose(error, ((images - reconstructions) ** 2).mean(axis=(1, 2, 3)), rtol=1e-5)
    frame = FrameIntensity(width=2).score(images)
    inner = images[:, :, 2:-2, 2:-2].sum(axis=(1, 2, 3))
    np.testing.assert_allclose(frame, (images.sum(axis=(1, 2, 3)) - inner) / (32 * 32 - 28 * 28), rtol=1e-5)
    padded = np.zeros_like(images)
    padded[:, :, 2:-2, 2:-2] = images[:, :, 2:-2, 2:-2]
    # the replica's black frame: zero (up to float32 rounding of total minus inner sum)
    np.testing.assert_allclose(FrameIntensity(width=2).score(padded), 0, atol=1e-6)


def test_standardized_sum():
    rng = np.random.default_rng(4)
    normal = np.c_[rng.normal(10.0, 2.0, 500), rng.normal(-3.0, 0.5, 500), np.zeros(500)]  # last part constant
    combination = StandardizedSum(3, floors=[1e-12, 1e-12, 0.1]).fit(normal)
    np.testing.assert_allclose(combination.mean.numpy(), normal.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(combination.std.numpy(), [normal[:, 0].std(), normal[:, 1].std(), 0.1], rtol=1e-5)
    queries = rng.normal(size=(7, 3))
    standardised = (queries - normal.mean(axis=0)) / np.array([normal[:, 0].std(), normal[:, 1].std(), 0.1])
    np.testing.assert_allclose(combination.score(queries), standardised.sum(axis=1), rtol=1e-4, atol=1e-4)
    combination.weights.copy_(torch.tensor([0.0, 1.0, 1.0]))
    with torch.no_grad():  # only the chosen parts, as columns in that order
        chosen = combination(torch.as_tensor(queries[:, 1:], dtype=torch.float32), [1, 2]).numpy()
    np.testing.assert_allclose(chosen, standardised[:, 1:].sum(axis=1), rtol=1e-4, atol=1e-4)


def test_fitted_statistics_are_buffers(blobs):
    """The deployed model exports the detectors themselves: what `fit` learns must be module state."""
    z, y, _, _ = blobs
    assert set(Mahalanobis().fit(z, y).state_dict()) == {"whiten", "centres"}
    assert set(KNN(k=3).fit(z).state_dict()) == {"bank"}
    assert set(StandardizedSum(2).fit(np.ones((5, 2))).state_dict()) == {"mean", "std", "weights"}
    assert KNN(k=3).fit(z).bank.shape == (400, 3)
