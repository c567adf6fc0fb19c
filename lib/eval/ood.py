"""Anomaly scores on embeddings and logits, fitted on in-distribution training data only.

Every score is "higher = more anomalous" and takes numpy arrays, so it works
for the embedding or logits of any model. Fitting uses only the unlabeled and
labeled sets (DESIGN §3); representative set 1 chooses among scores and fixes
the threshold (lib/eval/metrics.py), representative set 2 only tests.

- `ClassGaussians`: one Gaussian per class with a shared covariance (linear
  discriminant analysis). Score: the squared Mahalanobis distance to the
  nearest class mean; it also classifies (posterior over the five classes).
- `KNNDistance`: cosine distance from an L2-normalised embedding to its k-th
  nearest unlabeled training embedding (Sun et al. 2022, "deep nearest
  neighbours").
- `msp_score`, `energy_score`: from classifier logits.
- Reconstruction error and negative ELBO come from lib/nn/models.py as arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import log_softmax, logsumexp, softmax


def _float64(z) -> np.ndarray:
    return np.asarray(z, dtype=np.float64)


class ClassGaussians:
    """Class-conditional Gaussians with one shared covariance, fitted on labeled embeddings.

    Attributes after `fit`: `means_` (k, d), `covariance_` and `precision_`
    (d, d), `log_priors_` (k,) from class frequencies, `n_pseudo_` (unlabeled
    embeddings added with pseudo-labels).
    """

    def __init__(self, reg: float = 1e-6):
        self.reg = reg  # ridge, relative to the mean variance, that keeps the covariance invertible

    def _fit_once(self, z: np.ndarray, y: np.ndarray, n_classes: int) -> None:
        counts = np.bincount(y, minlength=n_classes)
        if (counts == 0).any():
            raise ValueError(f"every class needs at least one embedding; counts per class: {counts.tolist()}")
        self.means_ = np.stack([z[y == c].mean(axis=0) for c in range(n_classes)])
        centred = z - self.means_[y]
        covariance = centred.T @ centred / max(len(z) - n_classes, 1)  # pooled within-class covariance
        covariance += self.reg * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
        self.covariance_ = covariance
        precision = np.linalg.inv(covariance)
        self.precision_ = (precision + precision.T) / 2
        self.log_priors_ = np.log(counts / counts.sum())

    def fit(self, z, y, n_classes: int | None = None, z_unlabeled=None, min_posterior: float = 0.99):
        """Fit on labeled embeddings; with `z_unlabeled`, refit once adding those whose posterior >= min_posterior."""
        z, y = _float64(z), np.asarray(y, dtype=np.int64)
        n_classes = n_classes or int(y.max()) + 1
        self._fit_once(z, y, n_classes)
        self.n_pseudo_ = 0
        if z_unlabeled is not None:
            z_unlabeled = _float64(z_unlabeled)
            posterior = np.exp(self.log_posterior(z_unlabeled))
            confident = posterior.max(axis=1) >= min_posterior
            self.n_pseudo_ = int(confident.sum())
            self._fit_once(np.concatenate([z, z_unlabeled[confident]]),
                           np.concatenate([y, posterior[confident].argmax(axis=1)]), n_classes)
        return self

    def squared_distances(self, z) -> np.ndarray:
        """(n, k) squared Mahalanobis distances to every class mean (difference form: no cancellation)."""
        diff = _float64(z)[:, None, :] - self.means_[None]
        return np.einsum("ncd,de,nce->nc", diff, self.precision_, diff)

    def mahalanobis(self, z) -> np.ndarray:
        """Anomaly score: squared Mahalanobis distance to the nearest class mean."""
        return self.squared_distances(z).min(axis=1)

    def log_posterior(self, z) -> np.ndarray:
        """(n, k) log p(class | z) of linear discriminant analysis."""
        return log_softmax(-0.5 * self.squared_distances(z) + self.log_priors_, axis=1)

    def predict(self, z) -> np.ndarray:
        return self.log_posterior(z).argmax(axis=1)


def knn_cosine_distance(bank: torch.Tensor, z: torch.Tensor, k: int) -> torch.Tensor:
    """1 - cosine similarity of each row of z to its k-th most similar row of the L2-normalised `bank`."""
    similarity = torch.nn.functional.normalize(z, dim=1) @ bank.T
    return 1.0 - similarity.topk(k, dim=1).values[:, -1]


class KNNDistance:
    """Cosine distance to the k-th nearest training embedding (brute force, torch matmul in chunks).

    Score the labeled set (not part of the bank) for in-distribution training
    statistics: scoring the bank's own points would find themselves at distance 0.
    """

    def __init__(self, k: int = 10, chunk: int = 2048):
        self.k, self.chunk = k, chunk

    def fit(self, z):
        self.bank_ = torch.nn.functional.normalize(torch.as_tensor(np.asarray(z, dtype=np.float32)), dim=1)
        return self

    def score(self, z) -> np.ndarray:
        z = torch.as_tensor(np.asarray(z, dtype=np.float32))
        with torch.inference_mode():
            parts = [knn_cosine_distance(self.bank_, z[start:start + self.chunk], self.k)
                     for start in range(0, len(z), self.chunk)]
        return torch.cat(parts).numpy().astype(np.float64) if parts else np.zeros(0)


def msp_score(logits) -> np.ndarray:
    """Negative maximum softmax probability (Hendrycks & Gimpel 2017)."""
    return -softmax(_float64(logits), axis=1).max(axis=1)


def energy_score(logits) -> np.ndarray:
    """Energy, -logsumexp of the logits (Liu et al. 2020): low for confident in-distribution inputs."""
    return -logsumexp(_float64(logits), axis=1)
