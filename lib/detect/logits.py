"""Scores from a classifier's logits, in float64 (a confident softmax saturates in single precision)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax


class MaxSoftmax:
    """Negative maximum softmax probability (Hendrycks & Gimpel 2017); nothing to fit."""

    def fit(self, *inputs) -> MaxSoftmax:
        return self

    def score(self, logits) -> np.ndarray:
        return -softmax(np.asarray(logits, dtype=np.float64), axis=1).max(axis=1)


class Energy(MaxSoftmax):
    """Energy, -logsumexp of the logits (Liu et al. 2020): low for confident in-distribution inputs."""

    def score(self, logits) -> np.ndarray:
        return -logsumexp(np.asarray(logits, dtype=np.float64), axis=1)
