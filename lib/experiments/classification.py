"""Helpers of notebook 03: label splits, linear probes on frozen embeddings, stacking, speed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) with every class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        cut = int(round(val_fraction * len(members)))
        val.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def label_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` indices, balanced over classes as far as possible (for label-efficiency curves)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    chosen = [members[: n // len(classes) + (i < n % len(classes))] for i, members in enumerate(per_class)]
    return np.sort(np.concatenate(chosen))


def linear_probe(z_train: np.ndarray, y_train: np.ndarray, seed: int):
    """Standardise, then multinomial logistic regression: the head on a frozen embedding."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    return probe.fit(z_train, y_train)


@dataclass
class Stacking:
    """A meta-learner on the base models' class probabilities, trained on held-out predictions only.

    The base models are trained on the training split and frozen; the meta-learner
    sees their predictions on the validation split, which none of them trained on.
    """

    meta: object
    cv_accuracy: float  # cross-validated accuracy of the meta-learner on the validation split

    @classmethod
    def fit(cls, val_probs: list[np.ndarray], val_y: np.ndarray, seed: int) -> Stacking:
        features = np.log(np.clip(np.concatenate(val_probs, axis=1), 1e-6, 1.0))
        meta = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, random_state=seed))
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        cv_pred = cross_val_predict(meta, features, val_y, cv=folds)
        return cls(meta.fit(features, val_y), float((cv_pred == val_y).mean()))

    def predict_proba(self, probs: list[np.ndarray]) -> np.ndarray:
        return self.meta.predict_proba(np.log(np.clip(np.concatenate(probs, axis=1), 1e-6, 1.0)))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def inference_rate(predict, images: np.ndarray, threads: int = 2, repeats: int = 3) -> float:
    """Images per second of `predict(images)` on the CPU with `threads` threads (best of `repeats`)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        predict(images[:256])  # warm-up: first-call allocation and kernel selection
        best = min(_timed(predict, images) for _ in range(repeats))
    finally:
        torch.set_num_threads(previous)
    return len(images) / best


def _timed(function, argument) -> float:
    start = time.perf_counter()
    function(argument)
    return time.perf_counter() - start
