"""A weighted sum of standardised scores: the combination of evidence that set 1 chooses."""

from __future__ import annotations

import numpy as np
import torch

from lib.detect.base import Detector, as_float32


class StandardizedSum(Detector):
    """score = sum_i w_i (s_i - mean_i) / std_i over P parts; mean and std from in-distribution scores, each std
    floored at `floors[i]` (a part constant on the training images is measured in units of its floor)."""

    def __init__(self, parts: int, floors=None):
        super().__init__()
        self.register_buffer("mean", torch.zeros(parts))
        self.register_buffer("std", torch.ones(parts))
        self.register_buffer("weights", torch.ones(parts))
        self.floors = np.full(parts, 1e-12) if floors is None else np.asarray(floors, dtype=np.float64)

    def fit(self, scores) -> StandardizedSum:
        """Standardise on in-distribution scores (n, P)."""
        scores = np.asarray(scores, dtype=np.float64)
        self.mean.copy_(as_float32(scores.mean(axis=0)))
        self.std.copy_(as_float32(np.maximum(scores.std(axis=0), self.floors)))
        return self

    def standardize(self, scores: torch.Tensor, parts: list[int]) -> torch.Tensor:
        """The standardised scores of the parts `parts` (columns of `scores` in that order)."""
        return (scores - self.mean[parts]) / self.std[parts]

    def forward(self, scores: torch.Tensor, parts: list[int] | None = None) -> torch.Tensor:
        parts = list(range(len(self.mean))) if parts is None else parts
        return self.standardize(scores, parts) @ self.weights[parts]
