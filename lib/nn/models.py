"""Models that learn from the unlabeled images, each with a ten-dimensional code.

All models share one interface, which the training loop (`lib.nn.train.train`) uses:

- `model.loss(x, views, generator) -> (loss, logs)`: the training loss on a
  float batch x in [0, 1]; `views(x)` returns an augmented view of x;
  `generator` drives any other randomness (the VAE's sampling), so runs repeat.
- `model.embed(x) -> (n, latent)`: the ten-dimensional description.
- `model.config`: the `ModelConfig` that rebuilds it (`build_model(config)`).

Autoencoders add `reconstruct(x)` and `reconstruction_error(x)` (per image),
the VAE adds `negative_elbo(x)` (per image, nats), and the contrastive model
decodes its embedding through a decoder trained on the detached embedding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("conv_ae", "fc_ae", "vae", "contrastive")


@dataclass(frozen=True)
class ModelConfig:
    kind: str  # one of KINDS
    width: int  # channels of the first convolution (doubling at each downsampling); unused by fc_ae
    latent: int = 10  # size of the description
    depth: int = 1  # residual blocks after each downsampling
    batch_norm: bool = True
    hidden: tuple[int, ...] = (512, 128)  # fully connected autoencoder: hidden layer sizes
    beta: float = 1.0  # VAE: weight of the KL term
    features: int = 128  # contrastive: encoder features before the ten-dimensional bottleneck
    temperature: float = 0.5  # contrastive: NT-Xent temperature
    decoder: bool = True  # contrastive: train a decoder on the detached embedding
    decoder_fraction: float = 0.25  # contrastive: share of each batch the decoder learns from (it is slow)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
        return cls(**values)


# --------------------------------------------------------------------------- losses

def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's normalized-temperature cross entropy for n positive pairs (z1[i], z2[i]).

    Each of the 2n views must pick its partner among the other 2n - 1 views by
    cosine similarity / temperature; the loss is the mean cross entropy.
    """
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def per_image_mse(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (recon.float() - x.float()).pow(2).flatten(1).mean(dim=1)


# --------------------------------------------------------------------------- building blocks

def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class ResBlock(nn.Module):
    def __init__(self, channels: int, batch_norm: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm), _norm(channels, batch_norm),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm), _norm(channels, batch_norm),
        )

    def forward(self, x):
        return F.relu(x + self.body(x))


class ConvEncoder(nn.Module):
    """32x32 image -> `out` features: a strided stem (32 -> 16), two strided stages (-> 8 -> 4).

    Downsampling first keeps the CPU profile fast; `depth` residual blocks
    follow each downsampling. Channels: width, 2 width, 4 width.
    """

    def __init__(self, width: int, depth: int, batch_norm: bool, out: int):
        super().__init__()
        layers: list[nn.Module] = []
        channels_in = 1
        for stage, channels in enumerate((width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(channels_in, channels, 3, stride=2, padding=1, bias=not batch_norm),
                       _norm(channels, batch_norm), nn.ReLU(inplace=True)]
            if stage > 0:
                layers += [ResBlock(channels, batch_norm) for _ in range(depth)]
            channels_in = channels
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(4 * width * 4 * 4, out)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class ConvDecoder(nn.Module):
    """`latent` -> 32x32 image logits, mirroring ConvEncoder with transposed convolutions."""

    def __init__(self, width: int, depth: int, batch_norm: bool, latent: int):
        super().__init__()
        self.width = width
        self.fc = nn.Sequential(nn.Linear(latent, 4 * width * 4 * 4), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for channels_in, channels in ((4 * width, 2 * width), (2 * width, width)):
            layers += [ResBlock(channels_in, batch_norm) for _ in range(depth)]
            layers += [nn.ConvTranspose2d(channels_in, channels, 4, stride=2, padding=1, bias=not batch_norm),
                       _norm(channels, batch_norm), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)]
        self.conv = nn.Sequential(*layers)

    def forward(self, z):
        return self.conv(self.fc(z).view(-1, 4 * self.width, 4, 4))


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- models

class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder with a `latent`-d bottleneck; loss = mean squared error per pixel."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = ConvEncoder(c.width, c.depth, c.batch_norm, c.latent)
        self.decoder = ConvDecoder(c.width, c.depth, c.batch_norm, c.latent)

    def embed(self, x):
        return self.encoder(x)

    def reconstruct(self, x):
        return torch.sigmoid(self.decoder(self.embed(x)))

    def reconstruction_error(self, x):
        return per_image_mse(self.reconstruct(x), x)

    def loss(self, x, views=None, generator=None):
        loss = self.reconstruction_error(x).mean()
        return loss, {"mse": loss.item()}


class FCAutoencoder(ConvAutoencoder):
    """Fully connected autoencoder: 1024 -> hidden -> latent -> reversed hidden -> 1024."""

    def __init__(self, config: ModelConfig):
        nn.Module.__init__(self)
        self.config = config
        sizes = [32 * 32, *config.hidden, config.latent]
        self.encoder = nn.Sequential(nn.Flatten(), _mlp(sizes))
        self.decoder = nn.Sequential(_mlp(sizes[::-1]), nn.Unflatten(1, (1, 32, 32)))


class VAE(nn.Module):
    """Variational autoencoder with a `latent`-d Gaussian code and a Bernoulli decoder.

    Loss = negative ELBO = E_q[-log p(x|z)] + beta KL(q(z|x) || N(0, I)), in nats per image;
    the description is the posterior mean mu(x).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = ConvEncoder(c.width, c.depth, c.batch_norm, 2 * c.latent)
        self.decoder = ConvDecoder(c.width, c.depth, c.batch_norm, c.latent)

    def posterior(self, x):
        mu, logvar = self.encoder(x).float().chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def embed(self, x):
        return self.posterior(x)[0]

    def reconstruct(self, x):
        return torch.sigmoid(self.decoder(self.embed(x)))

    def reconstruction_error(self, x):
        return per_image_mse(self.reconstruct(x), x)

    def _terms(self, x, generator, samples: int):
        mu, logvar = self.posterior(x)
        std = (0.5 * logvar).exp()
        nll = 0.0
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=generator, device=mu.device)
            logits = self.decoder(mu + eps * std).float()
            nll = nll + F.binary_cross_entropy_with_logits(logits, x.float(), reduction="none").flatten(1).sum(1)
        return nll / samples, gaussian_kl(mu, logvar)

    def negative_elbo(self, x, samples: int = 1, generator=None):
        """Per-image negative ELBO in nats (beta = 1), with `samples` draws of z: the anomaly score."""
        nll, kl = self._terms(x, generator, samples)
        return nll + kl

    def loss(self, x, views=None, generator=None):
        nll, kl = self._terms(x, generator, 1)
        loss = (nll + self.config.beta * kl).mean()
        return loss, {"nll": nll.mean().item(), "kl": kl.mean().item()}


class ContrastiveModel(nn.Module):
    """SimCLR with a ten-dimensional bottleneck: encoder -> features -> z (latent).

    The description is the L2-normalized z. The NT-Xent loss acts on z itself (no
    projection head), so the geometry k-means sees is the one the loss shapes.
    A decoder learns to draw an image from the (detached) embedding, which makes
    the modes visible without changing the embedding.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.encoder = ConvEncoder(c.width, c.depth, c.batch_norm, c.features)
        self.bottleneck = nn.Sequential(nn.BatchNorm1d(c.features) if c.batch_norm else nn.Identity(),
                                        nn.ReLU(inplace=True), nn.Linear(c.features, c.latent))
        self.decoder = ConvDecoder(c.width, 0, c.batch_norm, c.latent) if c.decoder else None

    def embed(self, x):
        return F.normalize(self.bottleneck(self.encoder(x)).float(), dim=1)

    def decode(self, z):
        return torch.sigmoid(self.decoder(F.normalize(z.float(), dim=1)))

    def reconstruct(self, x):
        return self.decode(self.embed(x))

    def reconstruction_error(self, x):
        return per_image_mse(self.reconstruct(x), x)

    def loss(self, x, views, generator=None):
        v = torch.cat([views(x), views(x)])
        z = self.bottleneck(self.encoder(v))
        loss = nt_xent(*z.chunk(2), self.config.temperature)
        logs = {"nt_xent": loss.item()}
        if self.decoder is not None:
            m = max(1, int(self.config.decoder_fraction * len(x)))
            recon = self.decoder(F.normalize(z[:m].detach().float(), dim=1))
            mse = (torch.sigmoid(recon.float()) - x[:m].float()).pow(2).mean()
            loss = loss + mse
            logs["decoder_mse"] = mse.item()
        return loss, logs


MODEL_CLASSES = {"conv_ae": ConvAutoencoder, "fc_ae": FCAutoencoder, "vae": VAE, "contrastive": ContrastiveModel}


def build_model(config: ModelConfig | dict) -> nn.Module:
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if config.kind not in MODEL_CLASSES:
        raise ValueError(f"unknown model kind {config.kind!r}: choose one of {', '.join(KINDS)}")
    return MODEL_CLASSES[config.kind](config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- batched inference

@torch.no_grad()
def apply_batched(fn, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
                  batch_size: int = 1024) -> np.ndarray:
    """fn(float batch in [0, 1] on device) for uint8 images (n, 1, 32, 32), concatenated as numpy."""
    device = torch.device(device)
    images = torch.as_tensor(images)
    outputs = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = fn(x)
        else:
            out = fn(x)
        outputs.append(out.float().cpu())
    return torch.cat(outputs).numpy()


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def encode(model: nn.Module, images, batch_size: int = 1024) -> np.ndarray:
    """The ten-dimensional description of uint8 images (n, 1, 32, 32), as float32 (n, latent)."""
    model.eval()
    return apply_batched(model.embed, images, _device_of(model), batch_size)


def reconstruct(model: nn.Module, images, batch_size: int = 1024) -> np.ndarray:
    """Reconstructions in [0, 1], shape (n, 1, 32, 32)."""
    model.eval()
    return apply_batched(model.reconstruct, images, _device_of(model), batch_size)


def reconstruction_error(model: nn.Module, images, batch_size: int = 1024) -> np.ndarray:
    """Per-image mean squared error between image and reconstruction (intensities in [0, 1])."""
    model.eval()
    return apply_batched(model.reconstruction_error, images, _device_of(model), batch_size)


def encode_and_error(model: nn.Module, images, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The description and the per-image reconstruction error in one pass (an autoencoder or the VAE)."""
    model.eval()

    def both(x):
        z = model.embed(x)
        recon = torch.sigmoid(model.decoder(z))
        return torch.cat([z.float(), per_image_mse(recon, x)[:, None]], dim=1)

    out = apply_batched(both, images, _device_of(model), batch_size)
    return out[:, :-1], out[:, -1]


def negative_elbo(model: VAE, images, samples: int = 8, seed: int = 0, batch_size: int = 1024) -> np.ndarray:
    """Per-image negative ELBO (nats) of a VAE, averaged over `samples` draws: the VAE's anomaly score."""
    model.eval()
    device = _device_of(model)
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return apply_batched(lambda x: model.negative_elbo(x, samples, g), images, device, batch_size)


def decode(model: nn.Module, z: np.ndarray) -> np.ndarray:
    """Images (n, 1, 32, 32) in [0, 1] drawn by the model's decoder from codes z (n, latent)."""
    model.eval()
    device = _device_of(model)
    with torch.no_grad():
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32), device=device)
        if hasattr(model, "decode"):
            out = model.decode(zt)
        else:
            out = torch.sigmoid(model.decoder(zt))
    return out.float().cpu().numpy()
