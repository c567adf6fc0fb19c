"""The comparison models that learn from pixels alone: fully connected and convolutional autoencoders and a
variational autoencoder, each with a ten-dimensional code. Pure modules: their losses are in
`lib.train.objectives`.

Every one offers `embed(x)` (the description), `reconstruct(x)` (images in [0, 1]) and
`reconstruction_error(x)` (per image); the VAE adds `negative_elbo(x)`, its loss and anomaly score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lib.config import ConvAutoencoderConfig, FCAutoencoderConfig, VAEConfig
from lib.nn.blocks import ConvEncoder, Decoder, mlp


def per_image_mse(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image between reconstructions and images in [0, 1]."""
    return (recon.float() - x.float()).pow(2).flatten(1).mean(dim=1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder with a `latent`-d bottleneck."""

    def __init__(self, config: ConvAutoencoderConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = ConvEncoder(c.width, c.depth, c.batch_norm, c.latent)
        self.decoder = Decoder(c.width, c.depth, c.batch_norm, c.latent)

    def embed(self, x):
        return self.encoder(x)

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def reconstruct(self, x):
        return self.decode(self.embed(x))

    def reconstruction_error(self, x):
        return per_image_mse(self.reconstruct(x), x)


class FCAutoencoder(ConvAutoencoder):
    """Fully connected autoencoder: 1024 -> hidden -> latent -> reversed hidden -> 1024."""

    def __init__(self, config: FCAutoencoderConfig):
        nn.Module.__init__(self)
        self.config = config
        sizes = [32 * 32, *config.hidden, config.latent]
        self.encoder = nn.Sequential(nn.Flatten(), mlp(sizes))
        self.decoder = nn.Sequential(mlp(sizes[::-1]), nn.Unflatten(1, (1, 32, 32)))


class VAE(ConvAutoencoder):
    """Variational autoencoder with a `latent`-d Gaussian code and a Bernoulli decoder.

    Negative ELBO = E_q[-log p(x|z)] + beta KL(q(z|x) || N(0, I)), in nats per image; the description is the
    posterior mean mu(x).
    """

    def __init__(self, config: VAEConfig):
        nn.Module.__init__(self)
        self.config = config
        c = config
        self.encoder = ConvEncoder(c.width, c.depth, c.batch_norm, 2 * c.latent)
        self.decoder = Decoder(c.width, c.depth, c.batch_norm, c.latent)

    def posterior(self, x):
        mu, logvar = self.encoder(x).float().chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def embed(self, x):
        return self.posterior(x)[0]

    def elbo_terms(self, x, generator: torch.Generator | None, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction negative log-likelihood averaged over `samples` draws of z, KL) per image, in nats."""
        mu, logvar = self.posterior(x)
        std = (0.5 * logvar).exp()
        nll = 0.0
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device)
            logits = self.decoder(mu + eps * std).float()
            nll = nll + F.binary_cross_entropy_with_logits(logits, x.float(), reduction="none").flatten(1).sum(1)
        return nll / samples, gaussian_kl(mu, logvar)

    def negative_elbo(self, x, samples: int = 1, generator: torch.Generator | None = None):
        """Per-image negative ELBO in nats (beta = 1), with `samples` draws of z: the anomaly score."""
        nll, kl = self.elbo_terms(x, generator, samples)
        return nll + kl
