"""Scores from a classifier's logits."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import softmax

from lib.detect.base import Detector


class MaxSoftmax:
    """Negative maximum softmax probability (Hendrycks & Gimpel 2017), in float64: a confident softmax
    saturates in single precision. Nothing to fit."""

    def fit(self, *inputs) -> MaxSoftmax:
        return self

    def score(self, logits) -> np.ndarray:
        return -softmax(np.asarray(logits, dtype=np.float64), axis=1).max(axis=1)


class Energy(Detector):
    """Energy, -logsumexp of the logits (Liu et al. 2020): low for confident in-distribution inputs."""

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return -torch.logsumexp(logits, dim=1)
