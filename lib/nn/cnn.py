"""The plain supervised CNN of DESIGN §5: the baseline every method of this study must beat.

Six 3x3 convolutions with batch norm and ReLU, widths 32-32-64-64-128-128,
stride 2 in the 2nd, 4th and 6th, the first at full 32x32 resolution; global
average pooling, dropout, a linear head. Its anomaly score is the Mahalanobis
distance on the pooled 128-d features (`lib.eval.ood.ClassGaussians`).
`stage_features` gives the pooled output of each resolution stage (after the
2nd, 4th and 6th convolution), for scores that look at several depths.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib.nn.augment import AugmentConfig, augment, to_float
from lib.nn.train import EpochBatches, Schedule, TrainResult, array_fingerprint, list_checkpoints, training_loop


def conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class PlainCNN(nn.Module):
    def __init__(self, n_classes: int, widths: tuple[int, ...], strides: tuple[int, ...], dropout: float):
        super().__init__()
        channels = (1, *widths)
        self.stages = nn.ModuleList(
            nn.Sequential(conv_bn_relu(channels[i], channels[i + 1], strides[i]),
                          conv_bn_relu(channels[i + 1], channels[i + 2], strides[i + 1]))
            for i in range(0, len(widths), 2))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], n_classes)

    def stage_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Globally average-pooled output of every stage, shallow to deep."""
        pooled = []
        for stage in self.stages:
            x = stage(x)
            pooled.append(F.adaptive_avg_pool2d(x, 1).flatten(1))
        return pooled

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features of the last stage (the 128-d input of the head)."""
        return self.stage_features(x)[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def train_plain_cnn(x: np.ndarray, y: np.ndarray, settings, folder: Path | str, seed: int,
                    device: torch.device | str = "cpu", log=print, progress: bool = True) -> TrainResult:
    """Train the plain CNN on labeled uint8 images as DESIGN §5 specifies it (`settings`: the profile's
    `baseline` stage): epochs of shuffled batches, random translations, label smoothing, AdamW with a one-cycle
    schedule (linear warm-up, cosine decay); resumes from `folder` like every model (lib.nn.train)."""
    device = torch.device(device)
    images, labels = torch.as_tensor(np.asarray(x)).to(device), torch.as_tensor(np.asarray(y)).to(device)
    batch = min(settings.batch, len(images))
    per_epoch = len(images) // batch
    shift = AugmentConfig(shift=settings.shift_pixels / images.shape[-1], scale=(1.0, 1.0), aspect=0.0, rotation=0.0,
                          gain=0.0, gamma=0.0, noise=0.0, erase=0.0)
    torch.manual_seed(seed)
    model = PlainCNN(int(labels.max()) + 1, settings.widths, settings.strides, settings.dropout)

    batches = EpochBatches(len(images), batch, seed, device)

    def step_loss(model, step, g):
        index = batches(step)
        logits = model(augment(to_float(images[index]), shift, g))
        return F.cross_entropy(logits, labels[index], label_smoothing=settings.label_smoothing), {}

    steps = per_epoch * settings.epochs
    schedule = Schedule(steps=steps, every=per_epoch, lr=settings.lr, weight_decay=settings.weight_decay,
                        warmup=int(settings.warmup_fraction * steps), min_lr_fraction=settings.min_lr_fraction,
                        seed=seed, unit="epoch", keep=1)
    config = {"model": "PlainCNN", "settings": asdict(settings), "seed": seed, "data": array_fingerprint(x, y)}
    return training_loop(model, step_loss, schedule, folder, config, images_per_step=batch, device=device, log=log,
                         progress=progress)


def load_plain_cnn(folder: Path | str, device: torch.device | str = "cpu") -> PlainCNN:
    """The trained plain CNN from its checkpoint folder, in eval mode."""
    files = list_checkpoints(folder)
    if not files:
        raise FileNotFoundError(f"no checkpoints in {folder}: run notebook 03_classification first")
    state = torch.load(files[-1][1], map_location="cpu", weights_only=False)
    settings = state["config"]["settings"]
    model = PlainCNN(state["model"]["head.weight"].shape[0], tuple(settings["widths"]), tuple(settings["strides"]),
                     settings["dropout"])
    model.load_state_dict(state["model"])
    return model.to(device).eval()
