"""The contrastive family: one encoder with a ten-dimensional bottleneck (`ContrastiveEncoder`), trained by
SimCLR (`ContrastiveModel`, loss in `lib.train.objectives`) and reused, pretrained or not, by the cosine-head
classifier (`Classifier`) of the comparison systems and the transfer study."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib.config import ClassifierConfig, ContrastiveConfig
from lib.nn.blocks import ConvEncoder, Decoder


class ContrastiveEncoder(nn.Module):
    """Image -> `features` (strided encoder) -> batch norm, ReLU, linear -> `latent`; the description is the
    L2-normalised output."""

    def __init__(self, config: ContrastiveConfig):
        super().__init__()
        c = config
        self.conv = ConvEncoder(c.width, c.depth, c.batch_norm, c.features)
        self.bottleneck = nn.Sequential(nn.BatchNorm1d(c.features) if c.batch_norm else nn.Identity(),
                                        nn.ReLU(inplace=True), nn.Linear(c.features, c.latent))

    def project(self, x):
        """The bottleneck's output before normalisation (what NT-Xent compares)."""
        return self.bottleneck(self.conv(x))

    def forward(self, x):
        return F.normalize(self.project(x).float(), dim=1)


class ContrastiveModel(nn.Module):
    """SimCLR with a ten-dimensional bottleneck and no projection head, so the geometry k-means sees is the one
    the loss shapes; a decoder learns to draw an image from the (detached) embedding, which makes the modes
    visible without changing the embedding."""

    def __init__(self, config: ContrastiveConfig):
        super().__init__()
        self.config = config
        self.encoder = ContrastiveEncoder(config)
        self.decoder = Decoder(config.width, 0, config.batch_norm, config.latent) if config.decoder else None

    def embed(self, x):
        return self.encoder(x)

    def decode(self, z):
        return torch.sigmoid(self.decoder(F.normalize(z.float(), dim=1)))

    def reconstruct(self, x):
        return self.decode(self.embed(x))


class CosineHead(nn.Module):
    """logits = s * cos(z, w_k): classes are directions in the normalised embedding."""

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.1)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(10.0))))

    def forward(self, z):
        return self.log_scale.exp() * z @ F.normalize(self.weight, dim=1).t()


class Classifier(nn.Module):
    """The contrastive encoder -> normalised ten-dimensional embedding -> cosine head (+ optional decoder)."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        c = config.encoder
        self.encoder = ContrastiveEncoder(c)
        self.head = CosineHead(config.n_classes, c.latent)
        self.decoder = Decoder(c.width, 0, c.batch_norm, c.latent) if config.decoder else None

    def embed(self, x):
        return self.encoder(x)

    def forward(self, x):
        return self.head(self.embed(x))

    def load_encoder(self, pretrained: nn.Module) -> None:
        """Copy the encoder of a trained contrastive model (or classifier)."""
        self.encoder.load_state_dict(pretrained.encoder.state_dict())

    @torch.no_grad()
    def init_prototypes(self, z: torch.Tensor, labels: torch.Tensor) -> None:
        """Point each class weight at its class's mean embedding `z`, so training starts from the nearest-class-mean
        classifier of the pretrained embedding instead of a random head."""
        for c in range(len(self.head.weight)):
            if (labels == c).any():
                self.head.weight[c] = F.normalize(z[labels == c].mean(0), dim=0)
