import math

import numpy as np
import torch

from lib.nn.augment import AugmentConfig, augment, seeded_generator
from lib.nn.models import (
    ModelConfig,
    build_model,
    count_parameters,
    encode,
    gaussian_kl,
    negative_elbo,
    nt_xent,
    reconstruction_error,
)
from lib.nn.train import TrainConfig, train


def test_nt_xent_matches_a_hand_computation():
    # Two pairs in 2-d: views of sample 0 along x, of sample 1 along y.
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    # For view 0 the others have cosines: partner 1, others 0 and 0.
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * math.exp(0)))
    assert math.isclose(float(nt_xent(z1, z2, t)), expected, rel_tol=1e-6)
    # Scale does not matter (cosine similarity); a swapped partner raises the loss.
    assert math.isclose(float(nt_xent(3 * z1, z2, t)), expected, rel_tol=1e-6)
    assert float(nt_xent(z1, z2.flip(0), t)) > expected


def test_gaussian_kl_matches_the_closed_form():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    logvar = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]])
    kl = gaussian_kl(mu, logvar)
    assert torch.allclose(kl[0], torch.tensor(0.0))
    # 0.5 * sum(mu^2 + var - 1 - log var) = 0.5 * ((1 + 4 - 1 - log 4) + (4 + 1 - 1 - 0))
    assert math.isclose(float(kl[1]), 0.5 * (4 - math.log(4) + 4), rel_tol=1e-6)


def test_every_model_has_a_ten_dimensional_code_and_a_finite_loss():
    x = torch.rand(6, 1, 32, 32)
    g = seeded_generator(0, 0)

    def views(batch):
        return augment(batch, AugmentConfig(), g)

    for kind in ("conv_ae", "fc_ae", "vae", "contrastive"):
        model = build_model(ModelConfig(kind, width=8, hidden=(32,), features=16))
        assert count_parameters(model) > 0
        assert model.embed(x).shape == (6, 10)
        loss, logs = model.loss(x, views, g)
        assert torch.isfinite(loss) and logs
        if hasattr(model, "reconstruct"):
            assert model.reconstruct(x).shape == x.shape


def test_contrastive_embedding_is_on_the_unit_sphere():
    model = build_model(ModelConfig("contrastive", width=8, features=16)).eval()
    z = encode(model, np.random.default_rng(0).integers(0, 256, (5, 1, 32, 32), dtype=np.uint8))
    assert np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)


def test_negative_elbo_is_reproducible_and_plausible():
    model = build_model(ModelConfig("vae", width=8)).eval()
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 32, 32), dtype=np.uint8)
    a, b = negative_elbo(model, images, samples=2, seed=1), negative_elbo(model, images, samples=2, seed=1)
    assert np.array_equal(a, b) and a.shape == (4,)
    # An untrained Bernoulli decoder costs about log 2 nats per pixel.
    assert 0.3 * 1024 * math.log(2) < a.mean() < 3 * 1024 * math.log(2)


def test_a_trained_autoencoder_reconstructs_its_images_better_than_an_untrained_one(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((64, 1, 32, 32), np.uint8)
    for i in range(len(images)):  # a bright bar at one of five heights on a black background
        top = 4 + 5 * (i % 5)
        images[i, 0, top:top + 4, 4:28] = 180 + rng.integers(0, 70)
    config = ModelConfig("conv_ae", width=4, depth=0)
    untrained = build_model(config).eval()
    quiet = dict(log=lambda message: None, progress=False)
    trained = train(config, images, TrainConfig(epochs=15, batch_size=16, lr=1e-2, keep=1), tmp_path, **quiet).model
    before, after = reconstruction_error(untrained, images).mean(), reconstruction_error(trained, images).mean()
    x = images / 255.0
    mean_image = ((x - x.mean(0)) ** 2).mean()  # the error of drawing every image as the average image
    assert after < 0.2 * before and after < 0.75 * mean_image, (before, after, mean_image)


def test_encode_and_error_agree_with_the_separate_functions():
    from lib.nn.models import encode_and_error

    model = build_model(ModelConfig("conv_ae", width=4)).eval()
    images = np.random.default_rng(1).integers(0, 256, (5, 1, 32, 32), dtype=np.uint8)
    z, error = encode_and_error(model, images)
    assert np.allclose(z, encode(model, images), atol=1e-6)
    assert np.allclose(error, reconstruction_error(model, images), atol=1e-6)
