"""The base of the torch detectors: `forward` scores tensors, `score` scores numpy arrays in chunks."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def as_float32(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))


class Detector(nn.Module):
    def fit(self, *inputs, **kwargs) -> Detector:
        """Fit on in-distribution inputs (nothing to fit by default)."""
        return self

    @torch.no_grad()
    def score(self, *inputs: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """Scores (float64) of numpy inputs (every input has one row per item), `chunk` rows at a time."""
        tensors = [as_float32(values) for values in inputs]
        parts = [self(*(t[start:start + chunk] for t in tensors)) for start in range(0, len(tensors[0]), chunk)]
        return torch.cat(parts).numpy().astype(np.float64) if parts else np.zeros(0)
