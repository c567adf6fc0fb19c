"""The project's model: one network, three tasks (DESIGN §5).

The backbone is the plain CNN's (`lib.nn.cnn.PlainCNN`: six 3x3 convolutions,
the first at full 32x32 resolution). On its pooled 128-d features sit
- the classifier (a linear head, five logits);
- the ten-dimensional description `z` (a linear map), trained through its own
  linear five-class head, so that its five modes are the classes;
- a decoder that draws the image back from `z`; it learns from `z` with the
  gradient stopped, so it shows what the description holds without changing it,
  and its reconstruction error is pixel evidence for the anomaly score.

`train_multihead` trains it on labeled images, optionally with pseudo-labeled
ones (self-training: the labels of a trained network on the unlabeled images
where it is confident). The loss of a batch is the label-smoothed cross entropy
of both heads plus `reconstruction_weight` times the decoder's squared error.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import softmax
from torch import nn

from lib.nn.augment import NONE, AugmentConfig, augment, to_float
from lib.nn.cnn import PlainCNN
from lib.nn.train import LATEST, EpochBatches, Schedule, TrainResult, array_fingerprint, training_loop


class Decoder(nn.Module):
    """z (n, d) -> image (n, 1, 32, 32) in [0, 1]: a linear map to 128x4x4, three transposed convolutions."""

    def __init__(self, description_dim: int, width: int = 32):
        super().__init__()
        self.width = width
        self.project = nn.Sequential(nn.Linear(description_dim, 4 * width * 16), nn.ReLU(inplace=True))
        self.layers = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(self.project(z).view(-1, 4 * self.width, 4, 4))  # -1: export keeps the batch dynamic


class MultiHeadCNN(PlainCNN):
    def __init__(self, n_classes: int, widths: tuple[int, ...], strides: tuple[int, ...], dropout: float,
                 description_dim: int):
        super().__init__(n_classes, widths, strides, dropout)
        self.describe = nn.Linear(widths[-1], description_dim)
        self.description_head = nn.Linear(description_dim, n_classes)
        self.decoder = Decoder(description_dim)

    def outputs(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """(pooled features of every stage, logits, description z) of images x in [0, 1]."""
        stages = self.stage_features(x)
        return stages, self.head(self.dropout(stages[-1])), self.describe(stages[-1])

    def description(self, x: torch.Tensor) -> torch.Tensor:
        return self.describe(self.features(x))


def multihead_loss(model: MultiHeadCNN, x: torch.Tensor, y: torch.Tensor, label_smoothing: float,
                   reconstruction_weight: float) -> tuple[torch.Tensor, dict[str, float]]:
    _, logits, z = model.outputs(x)
    classify = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    describe = F.cross_entropy(model.description_head(z), y, label_smoothing=label_smoothing)
    reconstruct = F.mse_loss(model.decoder(z.detach()), x)
    logs = {"classifier": classify.item(), "description": describe.item(), "reconstruction": reconstruct.item()}
    return classify + describe + reconstruction_weight * reconstruct, logs


def train_multihead(x: np.ndarray, y: np.ndarray, settings, folder: Path | str, seed: int,
                    device: torch.device | str = "cpu", views: AugmentConfig | None = None, log=print,
                    progress: bool = True) -> TrainResult:
    """Train the model on uint8 images `x` with labels `y` (true or pseudo) for `settings.steps` steps
    (`settings`: the profile's `model` stage): shuffled epochs, random translations and flips, AdamW with a
    one-cycle schedule; resumes from `folder` like every model (lib.nn.train). `views`: the augmentation
    (default: translations of up to `settings.shift_pixels` pixels, flips with probability `settings.hflip`)."""
    device = torch.device(device)
    images, labels = torch.as_tensor(np.asarray(x)).to(device), torch.as_tensor(np.asarray(y)).to(device)
    batch = min(settings.batch, len(images))
    views = views or replace(NONE, shift=settings.shift_pixels / images.shape[-1], hflip=settings.hflip)
    torch.manual_seed(seed)
    model = MultiHeadCNN(int(labels.max()) + 1, settings.widths, settings.strides, settings.dropout,
                         settings.description_dim)
    batches = EpochBatches(len(images), batch, seed, device)

    def step_loss(model, step, g):
        index = batches(step)
        return multihead_loss(model, augment(to_float(images[index]), views, g), labels[index],
                              settings.label_smoothing, settings.reconstruction_weight)

    every = max(1, settings.steps // 10)
    schedule = Schedule(steps=settings.steps, every=every, lr=settings.lr, weight_decay=settings.weight_decay,
                        warmup=int(settings.warmup_fraction * settings.steps), min_lr_fraction=0.0, seed=seed)
    config = {"model": "MultiHeadCNN", "settings": asdict(settings), "views": asdict(views), "seed": seed,
              "data": array_fingerprint(x, y)}
    return training_loop(model, step_loss, schedule, folder, config, images_per_step=batch, device=device, log=log,
                         progress=progress)


def load_multihead(folder: Path | str, device: torch.device | str = "cpu") -> MultiHeadCNN:
    """The trained model from its checkpoint folder, in eval mode."""
    checkpoint = Path(folder) / LATEST  # step-counted runs keep one checkpoint
    if not checkpoint.is_file():
        raise FileNotFoundError(f"no checkpoint in {folder}: run notebook 03_classification first")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    settings = state["config"]["settings"]
    model = MultiHeadCNN(state["model"]["head.weight"].shape[0], tuple(settings["widths"]),
                         tuple(settings["strides"]), settings["dropout"], settings["description_dim"])
    model.load_state_dict(state["model"])
    return model.to(device).eval()


@torch.no_grad()
def network_outputs(model: MultiHeadCNN, images: np.ndarray, batch_size: int = 1024) -> dict[str, np.ndarray]:
    """Everything the analyses read from the network for uint8 images: `stage0..` pooled features, `logits`,
    `z` and `reconstruction_error` (mean squared error of the decoder, per image)."""
    device = next(model.parameters()).device
    parts: dict[str, list] = {}
    for start in range(0, len(images), batch_size):
        x = to_float(torch.as_tensor(np.asarray(images[start:start + batch_size])).to(device))
        stages, logits, z = model.outputs(x)
        error = (model.decoder(z) - x).pow(2).flatten(1).mean(1)
        for name, value in [*((f"stage{i}", s) for i, s in enumerate(stages)), ("logits", logits), ("z", z),
                            ("reconstruction_error", error)]:
            parts.setdefault(name, []).append(value.float().cpu().numpy())
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def pseudo_labels(logits: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices, labels) of the images whose softmax maximum reaches `confidence`."""
    probabilities = softmax(logits, axis=1)
    keep = np.flatnonzero(probabilities.max(1) >= confidence)
    return keep, probabilities[keep].argmax(1)
