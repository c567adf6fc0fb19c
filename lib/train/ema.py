"""An exponential moving average (EMA) of a network's weights: FixMatch's teacher and the network it deploys."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """`model` holds the average: after optimizer step t, every floating-point parameter and buffer moves to
    decay_t * average + (1 - decay_t) * weight with decay_t = min(decay, (1 + t) / (10 + t)), so the first steps
    follow the network closely; integer buffers (batch norm's counter) are copied."""

    def __init__(self, network: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(network).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, network: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for average, current in zip(self.model.state_dict().values(), network.state_dict().values(), strict=True):
            if average.dtype.is_floating_point:
                average.lerp_(current, 1 - decay)
            else:
                average.copy_(current)

    def state_dict(self) -> dict:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state)
