"""scikit-learn's bundled handwritten digits (1,797 images, 8x8, values 0-16; no download), shaped like the
assignment's images: the unseen-kind check set and the transfer study's mismatched source use them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lib.data.replica import pad

INNER = 28  # the article area of a 32x32 image (two pixels of padding on every side)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) with values 0-16, digit labels)."""
    from sklearn.datasets import load_digits as bundled

    digits = bundled()
    return digits.images, digits.target.astype(np.int64)


def upscale_pad(images: np.ndarray, max_value: float) -> np.ndarray:
    """Small grey images (n, h, w) in [0, max_value] -> uint8 (n, 1, 32, 32).

    Bilinear interpolation to 28x28 (pixel-area aligned, edges extended), scaled to
    0-255, then two zero pixels on every side, like Fashion-MNIST in the replica.
    """
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None] / float(max_value)
    x = F.interpolate(x, size=(INNER, INNER), mode="bilinear", align_corners=False)
    return pad(np.clip(np.rint(x[:, 0].numpy() * 255.0), 0, 255).astype(np.uint8))
