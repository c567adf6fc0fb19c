"""Cosine distance to the k-th nearest training feature vector (Sun et al. 2022, "deep nearest neighbours")."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lib.detect.base import Detector, as_float32


class KNN(Detector):
    """The bank is the L2-normalised training features; score = 1 - cosine similarity to the k-th most similar.
    Score images outside the bank: a bank image finds itself at distance 0."""

    def __init__(self, k: int = 10):
        super().__init__()
        self.k = k
        self.register_buffer("bank", torch.zeros(0, 0))

    def fit(self, features) -> KNN:
        self.bank = F.normalize(as_float32(features), dim=1)
        return self

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        similarity = F.normalize(features, dim=1) @ self.bank.T
        return 1.0 - similarity.topk(self.k, dim=1).values[:, -1]
