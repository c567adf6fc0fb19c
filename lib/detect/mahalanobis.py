"""Squared Mahalanobis distance to the nearest class mean, with one covariance shared by the classes."""

from __future__ import annotations

import numpy as np
import torch

from lib.config import Anomaly
from lib.detect.base import Detector, as_float32


class Mahalanobis(Detector):
    """Class-conditional Gaussians with a shared covariance (linear discriminant analysis), fitted on labeled
    feature vectors; the score is min_k (f - mu_k)^T Sigma^-1 (f - mu_k).

    Fitting runs in float64: class means, the pooled within-class covariance with a ridge of `reg` times its mean
    variance (dead ReLU channels make it singular; the profile's `anomaly.mahalanobis_ridge`, by default the `cpu`
    profile's), its inverse, and the Cholesky factor L of the precision. Scoring computes |f L - mu_k L|^2 in
    float32, which never forms the quadratic form of a badly conditioned precision matrix in single precision.
    """

    def __init__(self, reg: float = Anomaly.mahalanobis_ridge):
        super().__init__()
        self.reg = reg
        self.register_buffer("whiten", torch.zeros(0, 0))
        self.register_buffer("centres", torch.zeros(0, 0))

    def fit(self, features, labels, n_classes: int | None = None) -> Mahalanobis:
        z, y = np.asarray(features, dtype=np.float64), np.asarray(labels, dtype=np.int64)
        n_classes = n_classes or int(y.max()) + 1
        counts = np.bincount(y, minlength=n_classes)
        if (counts == 0).any():
            raise ValueError(f"every class needs at least one feature vector; counts per class: {counts.tolist()}")
        means = np.stack([z[y == c].mean(axis=0) for c in range(n_classes)])
        centred = z - means[y]
        covariance = centred.T @ centred / max(len(z) - n_classes, 1)
        covariance += self.reg * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
        precision = np.linalg.inv(covariance)
        whiten = np.linalg.cholesky((precision + precision.T) / 2)
        self.whiten, self.centres = as_float32(whiten), as_float32(means @ whiten)
        return self

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        diff = (features @ self.whiten)[:, None, :] - self.centres[None]
        return diff.pow(2).sum(dim=2).min(dim=1).values
