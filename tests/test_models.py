"""The comparison models (lib.nn.autoencoders, lib.nn.contrastive), their losses (lib.train.objectives), the
registry that builds every network from its configuration, and the one batched inference (lib.nn.infer)."""

import json
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from lib.config import (
    STRONG,
    ClassifierConfig,
    CNNConfig,
    ContrastiveConfig,
    ConvAutoencoderConfig,
    FCAutoencoderConfig,
    Pretrained,
    Training,
    VAEConfig,
)
from lib.nn.augment import augment, seeded_generator
from lib.nn.autoencoders import gaussian_kl, per_image_mse
from lib.nn.infer import batched
from lib.nn.registry import build, config_from_dict, count_parameters
from lib.train import objectives
from lib.train.objectives import nt_xent
from lib.train.runs import pretrain

SMALL = {
    "fc_ae": FCAutoencoderConfig(hidden=(32,)),
    "conv_ae": ConvAutoencoderConfig(width=8),
    "vae": VAEConfig(width=8),
    "contrastive": ContrastiveConfig(width=8, features=16),
    "classifier": ClassifierConfig(encoder=ContrastiveConfig(width=8, features=16, decoder=False), decoder=True),
    "cnn": CNNConfig(widths=(4, 4, 8, 8, 8, 8), description_dim=10, decoder=True),
}


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


def test_per_image_mse():
    x = torch.zeros(2, 1, 2, 2)
    recon = torch.stack([torch.zeros(1, 2, 2), torch.full((1, 2, 2), 0.5)])
    assert per_image_mse(recon, x).tolist() == [0.0, 0.25]


def test_every_model_has_a_ten_dimensional_code_and_a_finite_loss():
    x = torch.rand(6, 1, 32, 32)
    y = torch.arange(6) % 5
    g = seeded_generator(0, 0)

    def views(batch):
        return augment(batch, STRONG, g)

    for kind, config in SMALL.items():
        model = build(config)
        assert model.config is config and count_parameters(model) > 0, kind
        if kind == "cnn":
            assert model.outputs(x)["z"].shape == (6, 10)
            loss, logs = objectives.cnn(model, x, y, 0.1, 1.0)
        else:
            assert model.embed(x).shape == (6, 10), kind
        if kind in ("fc_ae", "conv_ae"):
            loss, logs = objectives.reconstruction(model, x)
        elif kind == "vae":
            loss, logs = objectives.negative_elbo(model, x, g)
        elif kind == "contrastive":
            loss, logs = objectives.contrastive(model, x, views)
        elif kind == "classifier":
            logits = model(x)
            assert logits.shape == (6, 5)
            loss, logs = torch.nn.functional.cross_entropy(logits, y), {"classifier": 0.0}
        assert torch.isfinite(loss) and logs, kind
        if hasattr(model, "reconstruct"):
            assert model.reconstruct(x).shape == x.shape, kind


def test_count_parameters():
    model = build(FCAutoencoderConfig(hidden=(32,), latent=10))
    # 1024 -> 32 -> 10 -> 32 -> 1024, weights and biases
    assert count_parameters(model) == (1024 * 32 + 32) + (32 * 10 + 10) + (10 * 32 + 32) + (32 * 1024 + 1024)


def test_every_configuration_round_trips_through_its_json_form():
    for kind, config in SMALL.items():
        assert config.kind == kind
        values = json.loads(json.dumps(asdict(config)))  # what a checkpoint gives back: tuples become lists
        assert config_from_dict(kind, values) == config, kind
    with pytest.raises(ValueError, match="unknown network kind"):
        config_from_dict("transformer", {})


def test_contrastive_embedding_is_on_the_unit_sphere():
    model = build(SMALL["contrastive"]).eval()
    z = batched(model.embed, np.random.default_rng(0).integers(0, 256, (5, 1, 32, 32), dtype=np.uint8))
    assert isinstance(z, np.ndarray) and z.shape == (5, 10)
    assert np.allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)


def test_the_contrastive_decoder_learns_from_the_detached_embedding():
    """The decoder's error is added to the loss, but the encoder's gradient is that of NT-Xent alone."""
    torch.manual_seed(0)
    model = build(SMALL["contrastive"]).train()
    x = torch.rand(8, 1, 32, 32)

    def encoder_gradient():
        model.zero_grad()
        loss, logs = objectives.contrastive(model, x, lambda v: augment(v, STRONG, seeded_generator(0, 0)))
        loss.backward()
        return loss, logs, [p.grad.clone() for p in model.encoder.parameters()]

    loss, logs, with_decoder = encoder_gradient()
    assert set(logs) == {"nt_xent", "decoder_mse"}
    assert math.isclose(loss.item(), logs["nt_xent"] + logs["decoder_mse"], rel_tol=1e-5)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    decoder, model.decoder = model.decoder, None
    loss, logs, alone = encoder_gradient()
    assert set(logs) == {"nt_xent"}
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(with_decoder, alone))
    model.decoder = decoder


def _generator(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_negative_elbo_is_reproducible_and_plausible():
    model = build(VAEConfig(width=8)).eval()
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 32, 32), dtype=np.uint8)

    def score(seed):
        g = _generator(seed)
        return batched(lambda x: model.negative_elbo(x, 2, g), images)

    a, b = score(1), score(1)
    assert np.array_equal(a, b) and a.shape == (4,)
    # An untrained Bernoulli decoder costs about log 2 nats per pixel.
    assert 0.3 * 1024 * math.log(2) < a.mean() < 3 * 1024 * math.log(2)


def test_the_vae_loss_is_the_negative_elbo_with_beta_on_the_kl():
    x = torch.rand(4, 1, 32, 32)
    torch.manual_seed(0)
    model = build(VAEConfig(width=8, beta=0.5)).eval()
    nll, kl = model.elbo_terms(x, _generator(3), 1)
    assert (kl >= 0).all() and (nll > 0).all()
    loss, logs = objectives.negative_elbo(model, x, _generator(3))
    assert math.isclose(loss.item(), (nll + 0.5 * kl).mean().item(), rel_tol=1e-5)
    assert math.isclose(logs["nll"], nll.mean().item(), rel_tol=1e-5)
    assert math.isclose(logs["kl"], kl.mean().item(), rel_tol=1e-5)
    # the anomaly score is the plain (beta = 1) negative ELBO, in nats per image
    assert torch.allclose(model.negative_elbo(x, 1, _generator(3)), nll + kl)
    assert torch.equal(model.embed(x), model.posterior(x)[0])


def test_a_trained_autoencoder_reconstructs_its_images_better_than_an_untrained_one(tmp_path):
    rng = np.random.default_rng(0)
    images = np.zeros((64, 1, 32, 32), np.uint8)
    for i in range(len(images)):  # a bright bar at one of five heights on a black background
        top = 4 + 5 * (i % 5)
        images[i, 0, top:top + 4, 4:28] = 180 + rng.integers(0, 70)
    config = ConvAutoencoderConfig(width=4, depth=0)
    torch.manual_seed(0)
    untrained = build(config).eval()
    training = Training(lr=1e-2, weight_decay=1e-4, batch=16, epochs=15, warmup=0.5 / 15, min_lr_fraction=0.01)
    trained = pretrain(Pretrained(config, training), images, tmp_path, "conv_ae", seed=0, log=lambda m: None,
                       progress=False).model
    before = batched(untrained.reconstruction_error, images).mean()
    after = batched(trained.reconstruction_error, images).mean()
    x = images / 255.0
    mean_image = ((x - x.mean(0)) ** 2).mean()  # the error of drawing every image as the average image
    assert after < 0.2 * before and after < 0.75 * mean_image, (before, after, mean_image)


def test_batched_gives_a_dict_of_arrays_that_agree_with_separate_passes():
    """One pass for several outputs (the old encode_and_error) is a function returning a dict."""
    model = build(ConvAutoencoderConfig(width=4)).train()
    images = np.random.default_rng(1).integers(0, 256, (5, 1, 32, 32), dtype=np.uint8)

    def both(x):
        z = model.embed(x)
        return {"z": z, "error": per_image_mse(model.decode(z), x)}

    z = batched(model.embed, images, batch_size=2)  # a method of a module: the module is put in eval mode
    assert not model.training
    out = batched(both, images, batch_size=3)
    assert set(out) == {"z", "error"} and out["z"].shape == (5, 10) and out["error"].shape == (5,)
    assert np.allclose(out["z"], z, atol=1e-6)
    assert np.allclose(out["error"], batched(model.reconstruction_error, images), atol=1e-6)
    # the images are scaled from uint8 to [0, 1]
    with torch.no_grad():
        direct = model.reconstruction_error(torch.as_tensor(images).float() / 255).numpy()
    assert np.allclose(out["error"], direct, atol=1e-6)
