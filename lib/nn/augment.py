"""Batched image augmentation on the training device (settings: `lib.config.AugmentConfig`).

Every transform draws its parameters per sample from one `torch.Generator`, so
a batch of n images gets n different views in a handful of tensor operations
(no per-image Python loop), and the same generator state gives the same views.

The transforms follow the data's symmetries (the notebook explains the
choices): small translations, zooms, aspect changes and rotations keep the
class of a centred, upright article; a multiplicative gain and a gamma change
mimic different exposure while keeping the black background black; faint noise
and small erased patches make the encoder ignore pixel-level detail. Every
transform stays well below the corruptions that make anomalies (noise of 90
grey levels, a 16x16 block, inversion), so the encoder is never taught to be
blind to them. Horizontal flips are available but off by default: every shoe in
Fashion-MNIST points left, so a flipped shoe is an image the data never holds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lib.config import AugmentConfig


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (n, 1, h, w) -> float in [0, 1]."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def _uniform(n: int, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def augment(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Random views of a float batch x (n, c, h, w) in [0, 1]; parameters differ per sample.

    The generator must live on x's device; the output is clamped to [0, 1].
    """
    n, _, h, w = x.shape
    dev, g = x.device, generator
    x = x.float()

    # Geometry: one affine grid per sample (rotation, zoom, aspect, translation, flip).
    if cfg.shift or cfg.scale != (1.0, 1.0) or cfg.aspect or cfg.rotation or cfg.hflip:
        angle = _uniform(n, -cfg.rotation, cfg.rotation, g, dev) * (math.pi / 180)
        log_zoom = _uniform(n, math.log(cfg.scale[0]), math.log(cfg.scale[1]), g, dev)
        log_aspect = _uniform(n, -cfg.aspect, cfg.aspect, g, dev)
        # theta maps output to input coordinates: zoom > 1 enlarges, so divide by it.
        sx = torch.exp(-(log_zoom + log_aspect / 2))
        sy = torch.exp(-(log_zoom - log_aspect / 2))
        flip = torch.where(torch.rand(n, generator=g, device=dev) < cfg.hflip, -1.0, 1.0)
        tx = _uniform(n, -2 * cfg.shift, 2 * cfg.shift, g, dev)  # affine coordinates span [-1, 1]
        ty = _uniform(n, -2 * cfg.shift, 2 * cfg.shift, g, dev)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([
            torch.stack([cos * sx * flip, -sin * sy, tx], dim=1),
            torch.stack([sin * sx * flip, cos * sy, ty], dim=1),
        ], dim=1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    # Intensity: gain and gamma keep black at black (the background of every image).
    if cfg.gamma:
        gamma = torch.exp(_uniform(n, -cfg.gamma, cfg.gamma, g, dev)).view(n, 1, 1, 1)
        x = x.clamp_min(1e-6).pow(gamma)
    if cfg.gain:
        x = x * _uniform(n, 1 - cfg.gain, 1 + cfg.gain, g, dev).view(n, 1, 1, 1)
    if cfg.noise:
        sigma = _uniform(n, 0.0, cfg.noise, g, dev).view(n, 1, 1, 1)
        x = x + sigma * torch.randn(x.shape, generator=g, device=dev)

    # Random erasing: one rectangle per chosen sample, through a mask (no loop).
    if cfg.erase:
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        eh = (_uniform(n, *cfg.erase_size, g, dev) * h).round()
        ew = (_uniform(n, *cfg.erase_size, g, dev) * w).round()
        top = (torch.rand(n, generator=g, device=dev) * (h - eh + 1)).floor()
        left = (torch.rand(n, generator=g, device=dev) * (w - ew + 1)).floor()
        chosen = torch.rand(n, generator=g, device=dev) < cfg.erase
        t, lft = top.view(n, 1, 1), left.view(n, 1, 1)
        inside = (rows >= t) & (rows < t + eh.view(n, 1, 1)) & (cols >= lft) & (cols < lft + ew.view(n, 1, 1))
        mask = (inside & chosen.view(n, 1, 1)).unsqueeze(1)
        x = x.masked_fill(mask, 0.0)

    return x.clamp_(0.0, 1.0)


def seeded_generator(seed: int, index: int, device: torch.device | str = "cpu", stream: int = 0) -> torch.Generator:
    """The generator of step (or epoch) `index` of a run seeded `seed`; `stream` separates independent
    streams of the same index. Seeds come from numpy's SeedSequence, so nearby arguments give unrelated streams."""
    g = torch.Generator(device=device)
    g.manual_seed(derived_seed(seed, index, stream))
    return g


def derived_seed(seed: int, index: int, stream: int = 0) -> int:
    """The seed of step (or epoch) `index`, stream `stream`, of a run seeded `seed` (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, stream, index]).generate_state(1, np.uint64)[0])
