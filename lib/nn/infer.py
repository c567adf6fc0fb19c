"""The one batched forward pass: a function of a float batch applied to many uint8 images, without gradients."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


def device_of(model: nn.Module) -> torch.device:
    """The device of a module's parameters (its buffers' for a module without parameters, the CPU for none)."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


@torch.no_grad()
def batched(fn, images: np.ndarray | torch.Tensor, device: torch.device | str | None = None,
            batch_size: int = 1024, scale: bool = True):
    """fn(batch on `device`) for uint8 images (n, 1, 32, 32), as numpy, batch by batch.

    The batch is float in [0, 1] (x / 255), or the uint8 images as they are with `scale=False` (the deployed
    model scales them itself). `fn` returns a tensor, a tuple of tensors or a dict of them (a tuple or dict of
    arrays comes back). When `fn` is a module or a method of one, that module is put in eval mode (if it is
    training) and `device` defaults to its device. On CUDA the batches are channels-last under bfloat16
    autocast, as in training; outputs always come back as float32.
    """
    owner = fn if isinstance(fn, nn.Module) else getattr(fn, "__self__", None)
    if isinstance(owner, nn.Module):
        if not isinstance(owner, torch.fx.GraphModule):
            owner.eval()
        device = device if device is not None else device_of(owner)
    device = torch.device(device or "cpu")
    images = torch.as_tensor(images)
    if len(images) == 0:
        raise ValueError("batched: no images")
    parts: dict = {}
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        if scale:
            x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if device.type == "cuda" and scale:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = fn(x)
        items = out.items() if isinstance(out, dict) else enumerate(out) if isinstance(out, tuple) else [(None, out)]
        for key, value in items:
            parts.setdefault(key, []).append(value.float().cpu())
    arrays = {key: torch.cat(chunks).numpy() for key, chunks in parts.items()}
    if isinstance(out, tuple):
        return tuple(arrays.values())
    return arrays[None] if list(arrays) == [None] else arrays


def images_per_second(predict, images: np.ndarray, threads: int = 2, repeats: int = 3) -> float:
    """Images per second of `predict(images)` on the CPU with `threads` threads (best of `repeats`, after a
    warm-up call that pays first-call allocation and kernel selection)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        predict(images[:256])
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            predict(images)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return len(images) / best
