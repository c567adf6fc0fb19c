"""Notebook 04's data audit: per-image loss trajectories from the autoencoder's snapshots, hardness measures."""

import numpy as np
import pytest

from lib.config import ConvAutoencoderConfig, Pretrained, Training
from lib.experiments import audit
from lib.nn.infer import batched
from lib.train import checkpoint
from lib.train.runs import pretrain


def test_loss_trajectories_read_the_trained_snapshots(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (48, 1, 32, 32), dtype=np.uint8)
    spec = Pretrained(ConvAutoencoderConfig(width=4), Training(lr=5e-3, weight_decay=1e-4, batch=16, epochs=2),
                      snapshots=True)
    result = pretrain(spec, images, tmp_path, "conv_ae_bn", seed=0, log=lambda message: None, progress=False)
    assert [epoch for epoch, _ in checkpoint.snapshots(result.folder)] == [0, 1, 2]  # 000: the initialisation
    epochs, errors = audit.loss_trajectories(result.folder, images[:10])
    assert epochs == [1, 2] and errors.shape == (10, 2)  # trained epochs only
    np.testing.assert_allclose(errors[:, -1], batched(result.model.reconstruction_error, images[:10]), rtol=1e-5)
    with pytest.raises(FileNotFoundError, match="no trained snapshots"):
        audit.loss_trajectories(tmp_path / "empty", images)


def test_hardness_measures_and_their_rank_correlation():
    epochs = [1, 2, 3]
    easy = np.array([[1.0, 0.5, 0.1]] * 8)
    hard = np.array([[1.0, 0.9, 0.8]] * 2)
    measures = audit.hardness(epochs, np.concatenate([easy, hard]))
    assert list(measures.columns) == ["last", "mean", "area under the curve", "lack of improvement"]
    np.testing.assert_allclose(measures["last"], [0.1] * 8 + [0.8] * 2)
    np.testing.assert_allclose(measures["area under the curve"][:1], [0.5 * (1.0 + 0.5) + 0.5 * (0.5 + 0.1)])
    np.testing.assert_allclose(measures["lack of improvement"][-1:], [0.8])
    is_anomaly = np.array([0] * 8 + [1] * 2)
    correlations = audit.rank_correlations(measures, is_anomaly)
    assert all(value > 0.9 for value in correlations.values())
