"""Building blocks of every network: convolution + batch norm + ReLU, residual blocks, the strided encoder of
the comparison models, and the one decoder (a ten-dimensional code back to a 32x32 image)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


def conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """A 3x3 convolution (no bias: batch norm follows), batch norm and ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


def norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers between `sizes`, ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, channels: int, batch_norm: bool):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm), norm(channels, batch_norm),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm), norm(channels, batch_norm),
        )

    def forward(self, x):
        return F.relu(x + self.body(x))


class ConvEncoder(nn.Module):
    """32x32 image -> `out` features: a strided stem (32 -> 16), two strided stages (-> 8 -> 4).

    Downsampling first keeps the comparison models cheap; `depth` residual blocks follow each downsampling after
    the stem. Channels: width, 2 width, 4 width.
    """

    def __init__(self, width: int, depth: int, batch_norm: bool, out: int):
        super().__init__()
        layers: list[nn.Module] = []
        channels_in = 1
        for stage, channels in enumerate((width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(channels_in, channels, 3, stride=2, padding=1, bias=not batch_norm),
                       norm(channels, batch_norm), nn.ReLU(inplace=True)]
            if stage > 0:
                layers += [ResBlock(channels, batch_norm) for _ in range(depth)]
            channels_in = channels
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(4 * width * 4 * 4, out)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class Decoder(nn.Module):
    """A `latent`-dimensional code -> 32x32 image logits (apply a sigmoid for intensities in [0, 1]): a linear map
    to 4 width x 4 x 4, then three stride-2 transposed 4x4 convolutions (-> 8 -> 16 -> 32 pixels), with batch norm
    and ReLU between them and `depth` residual blocks before each of the first two."""

    def __init__(self, width: int, depth: int, batch_norm: bool, latent: int):
        super().__init__()
        self.width = width
        self.fc = nn.Sequential(nn.Linear(latent, 4 * width * 4 * 4), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        for channels_in, channels in ((4 * width, 2 * width), (2 * width, width)):
            layers += [ResBlock(channels_in, batch_norm) for _ in range(depth)]
            layers += [nn.ConvTranspose2d(channels_in, channels, 4, stride=2, padding=1, bias=not batch_norm),
                       norm(channels, batch_norm), nn.ReLU(inplace=True)]
        layers += [nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)]
        self.conv = nn.Sequential(*layers)

    def forward(self, z):
        return self.conv(self.fc(z).view(-1, 4 * self.width, 4, 4))  # -1: an export keeps the batch dynamic
