"""The project's model (lib.nn.multihead): three heads on the plain CNN's backbone, training, pseudo-labels."""

from dataclasses import replace

import numpy as np
import torch

from lib.config import PROFILES
from lib.nn.multihead import (
    MultiHeadCNN,
    load_multihead,
    multihead_loss,
    network_outputs,
    pseudo_labels,
    train_multihead,
)
from tests.test_cnn import tiny_data

TINY = replace(PROFILES["cpu"].model, widths=(4, 4, 8, 8, 8, 8), steps=8, batch=16)


def test_heads_and_shapes():
    model = MultiHeadCNN(5, (32, 32, 64, 64, 128, 128), (1, 2, 1, 2, 1, 2), 0.3, 10).eval()
    stages, logits, z = model.outputs(torch.zeros(3, 1, 32, 32))
    assert [s.shape[1] for s in stages] == [32, 64, 128] and logits.shape == (3, 5) and z.shape == (3, 10)
    assert model.decoder(z).shape == (3, 1, 32, 32) and model.description_head(z).shape == (3, 5)


def test_decoder_does_not_shape_the_description():
    """The reconstruction loss reaches the decoder only: the backbone's gradient is that of the two heads."""
    torch.manual_seed(0)
    model = MultiHeadCNN(5, (4, 4, 8, 8, 8, 8), (1, 2, 1, 2, 1, 2), 0.0, 10).eval()
    x, y = torch.rand(6, 1, 32, 32), torch.arange(6) % 5
    gradients = []
    for weight in (0.0, 5.0):
        model.zero_grad()
        multihead_loss(model, x, y, 0.1, weight)[0].backward()
        gradients.append((model.describe.weight.grad.clone(), model.decoder.project[0].weight.grad.clone()))
    assert torch.allclose(gradients[0][0], gradients[1][0])  # description: unchanged by the decoder's weight
    assert not torch.allclose(gradients[0][1], gradients[1][1])  # decoder: learns from it


def test_training_resumes_exactly_and_reloads(tmp_path):
    x, y = tiny_data()
    full = train_multihead(x, y, TINY, tmp_path / "full", seed=1, log=lambda *_: None, progress=False)
    # same configuration, so the folder's checkpoint is this run's: it is loaded, not retrained
    again = train_multihead(x, y, TINY, tmp_path / "full", seed=1, log=lambda *_: None, progress=False)
    assert again.resumed_from == TINY.steps
    reloaded = load_multihead(tmp_path / "full")
    for name, value in network_outputs(full.model, x).items():
        np.testing.assert_allclose(network_outputs(reloaded, x)[name], value, rtol=1e-5, atol=1e-6)


def test_pseudo_labels_keep_confident_images_only():
    logits = np.array([[5.0, 0, 0, 0, 0], [0.1, 0, 0, 0, 0], [0, 0, 0, 9.0, 0]])
    index, labels = pseudo_labels(logits, confidence=0.9)
    assert index.tolist() == [0, 2] and labels.tolist() == [0, 3]
    assert len(pseudo_labels(logits, confidence=1.0)[0]) == 0
