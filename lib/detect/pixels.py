"""Evidence from the pixels themselves: reconstruction error and the intensity of the image border."""

from __future__ import annotations

import torch

from lib.detect.base import Detector


class ReconstructionError(Detector):
    """Mean squared error per image between images and their reconstructions (both in [0, 1])."""

    def forward(self, images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
        return (reconstructions - images).pow(2).flatten(1).mean(dim=1)


class FrameIntensity(Detector):
    """Mean intensity of the outer `width` pixels of images in [0, 1] (the profile's `anomaly.frame_width`). Every
    in-distribution image is a 28x28 article padded with zeros to 32x32, so its 2-pixel frame is black: this reads
    the padding, and is evidence only for data padded the same way."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        w = self.width
        inner = images[:, :, w:-w, w:-w]
        return (images.sum(dim=(1, 2, 3)) - inner.sum(dim=(1, 2, 3))) / (images[0].numel() - inner[0].numel())
