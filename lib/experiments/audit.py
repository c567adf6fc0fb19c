"""Data audit: per-sample hardness from an autoencoder's per-epoch losses (notebook 04).

An image the autoencoder never learns to reconstruct well is unlike the bulk of
the data. From the reconstruction error of every image at every saved epoch
(its loss trajectory) we take four summaries: the last value, the mean, the
area under the curve over epochs, and the relative improvement from the first
trained epoch to the last (images the model cannot get better at are suspect).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from lib.nn.infer import batched
from lib.train import checkpoint


def loss_trajectories(folder, images: np.ndarray, device="cpu") -> tuple[list[int], np.ndarray]:
    """(epochs, errors (n, epochs)): per-image reconstruction error at every saved trained epoch."""
    saved = [(epoch, path) for epoch, path in checkpoint.snapshots(folder) if epoch > 0]
    if not saved:
        raise FileNotFoundError(f"no trained snapshots in {folder}: run notebook 02_pretraining first")
    columns = [batched(checkpoint.load_model(path, device).reconstruction_error, images) for _, path in saved]
    return [epoch for epoch, _ in saved], np.stack(columns, axis=1)


def hardness(epochs: list[int], trajectories: np.ndarray) -> pd.DataFrame:
    """Four hardness measures per image (higher = harder)."""
    first, last = trajectories[:, 0], trajectories[:, -1]
    area = np.trapezoid(trajectories, epochs, axis=1) if len(epochs) > 1 else last
    return pd.DataFrame({
        "last": last,
        "mean": trajectories.mean(axis=1),
        "area under the curve": area,
        "lack of improvement": last / np.maximum(first, 1e-12),  # 1 - relative improvement, shifted by 1
    })


def rank_correlations(measures: pd.DataFrame, is_anomaly: np.ndarray) -> dict[str, float]:
    """Spearman correlation of each hardness measure with the anomaly flag."""
    return {name: float(spearmanr(measures[name], is_anomaly).statistic) for name in measures}
