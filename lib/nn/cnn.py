"""The project's network family: one CNN backbone with optional heads (`CNNConfig`).

The backbone: six 3x3 convolutions with batch norm and ReLU, two per stage,
the first at full 32x32 resolution and the second of each stage with stride 2
(widths 32-32-64-64-128-128 by default), then global average pooling. Heads on
the pooled features of the last stage:
- the classifier (dropout, a linear layer to `n_classes` logits), always;
- the `description_dim`-dimensional description `z` (a linear map), trained
  through its own linear head to the classes, so that its modes are the classes;
- a decoder (`lib.nn.blocks.Decoder`) that draws the image back from `z`. It
  learns from `z` with the gradient stopped (`lib.train.objectives`), so it shows
  what the description holds without changing it, and its reconstruction error
  is pixel evidence for the anomaly score.
The plain baseline is this network with the classifier alone; the project's
model has all three heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lib.config import CNNConfig
from lib.nn.blocks import Decoder, conv_bn_relu


class CNN(nn.Module):
    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        widths, strides = config.widths, config.strides
        channels = (1, *widths)
        self.stages = nn.ModuleList(
            nn.Sequential(conv_bn_relu(channels[i], channels[i + 1], strides[i]),
                          conv_bn_relu(channels[i + 1], channels[i + 2], strides[i + 1]))
            for i in range(0, len(widths), 2))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(widths[-1], config.n_classes)
        if config.description_dim:
            self.describe = nn.Linear(widths[-1], config.description_dim)
            self.description_head = nn.Linear(config.description_dim, config.n_classes)
        if config.decoder:
            self.decoder = Decoder(config.decoder_width, 0, True, config.description_dim)

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Globally average-pooled output of every stage, shallow to deep."""
        pooled = []
        for stage in self.stages:
            x = stage(x)
            pooled.append(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of images x (n, 1, 32, 32) in [0, 1]."""
        return self.head(self.dropout(self.stage_features(x)[-1]))

    def outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the backbone and heads give for images x in [0, 1]: `stage0`, `stage1`, ... (pooled features of
        each stage), `logits`, and with a description head, the description `z`."""
        stages = self.stage_features(x)
        out = {f"stage{i}": s for i, s in enumerate(stages)}
        out["logits"] = self.head(self.dropout(stages[-1]))
        if self.config.description_dim:
            out["z"] = self.describe(stages[-1])
        return out

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] drawn from descriptions z."""
        return torch.sigmoid(self.decoder(z))
