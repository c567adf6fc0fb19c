"""The deployed model: one network, its classifier, description and anomaly score, exported with torch.export.

`FinalModel.forward(x)` takes uint8 images (n, 1, 32, 32) and returns
`(logits (n, 5), anomaly_score (n,), description (n, 10))`; inputs are scaled
to [0, 1] (x / 255), as in training (lib.nn.multihead).

The anomaly score is a weighted sum of standardised evidence (`PARTS`):
- the squared Mahalanobis distance to the nearest class mean (shared
  precision matrix, lib.eval.ood.ClassGaussians) of the pooled features of
  each of the three stages of the backbone and of the description;
- the decoder's reconstruction error (mean squared error per pixel);
- the mean intensity of the 2-pixel frame (every in-distribution image is a
  28x28 article padded with zeros, so its frame is black).
Each part is standardised by its mean and standard deviation on
in-distribution training images (`part_mean`, `part_std`; the standard
deviation of the frame, constant there, is floored at `STD_FLOOR`, one
intensity level). `weights` (0 or 1 per part) selects the combination
chosen on representative set 1; `threshold` was fixed there too.

`save_final_model` exports the model (`torch.export`, a dynamic batch size)
into `model.pt2` and writes `model.json` (threshold, class names, parts and
weights, input format, profile); `load_final_model` needs neither training
code nor this class.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lib.data.replica import CLASS_NAMES
from lib.errors import DataError

MODEL_FILE = "model.pt2"
META_FILE = "model.json"
FORMAT_VERSION = 2
PARTS = ("stage 1 features", "stage 2 features", "stage 3 features", "description", "reconstruction error",
         "frame intensity")
FEATURE_PARTS = 4  # the first four parts are Mahalanobis distances
FRAME = 2  # pixels of the black frame around every 28x28 article
STD_FLOOR = 1.0 / 255  # one intensity level: a part constant on the training images is measured in these units


def _tensor(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))


def frame_intensity(x: torch.Tensor) -> torch.Tensor:
    """Mean of the outer FRAME pixels of images x (n, 1, h, w) in [0, 1]."""
    inner = x[:, :, FRAME:-FRAME, FRAME:-FRAME]
    return (x.sum(dim=(1, 2, 3)) - inner.sum(dim=(1, 2, 3))) / (x[0].numel() - inner[0].numel())


class FinalModel(nn.Module):
    def __init__(self, network: nn.Module, gaussians: list, threshold: float = math.nan,
                 weights=None, part_mean=None, part_std=None, class_names: tuple[str, ...] = CLASS_NAMES):
        """`network`: a trained lib.nn.multihead.MultiHeadCNN; `gaussians`: four fitted ClassGaussians, one per
        feature part (stages 1-3, description)."""
        super().__init__()
        if len(gaussians) != FEATURE_PARTS:
            raise ValueError(f"need {FEATURE_PARTS} fitted class Gaussians (stages 1-3 and the description)")
        self.network, self.threshold, self.class_names = network, float(threshold), tuple(class_names)
        for i, g in enumerate(gaussians):
            # whitened once here in float64: |(h - mu) L|^2 with precision = L L^T, so float32 inference never
            # forms the quadratic form of a badly conditioned precision matrix (dead ReLU channels make one)
            whiten = np.linalg.cholesky(g.precision_)
            self.register_buffer(f"whiten{i}", _tensor(whiten))
            self.register_buffer(f"centres{i}", _tensor(g.means_ @ whiten))
        parts = len(PARTS)
        self.register_buffer("weights", torch.zeros(parts))
        self.set_weights(np.ones(parts) if weights is None else weights)
        self.register_buffer("part_mean", _tensor(np.zeros(parts) if part_mean is None else part_mean))
        self.register_buffer("part_std", _tensor(np.ones(parts) if part_std is None else part_std))

    def _evidence(self, x: torch.Tensor, parts: tuple[int, ...]):
        """(logits, standardised parts (n, len(parts)), description) of uint8 images; `parts`: indices into PARTS.
        Only the parts asked for are computed (the export keeps this choice: `predict` skips the others)."""
        x = x.float() / 255.0
        stages, logits, z = self.network.outputs(x)
        features = [*stages, z]
        raw = []
        for i in parts:
            if i < FEATURE_PARTS:
                diff = (features[i] @ getattr(self, f"whiten{i}"))[:, None, :] - getattr(self, f"centres{i}")[None]
                raw.append(diff.pow(2).sum(dim=2).min(dim=1).values)
            elif PARTS[i] == "reconstruction error":
                raw.append((self.network.decoder(z) - x).pow(2).flatten(1).mean(dim=1))
            else:
                raw.append(frame_intensity(x))
        index = list(parts)
        return logits, (torch.stack(raw, dim=1) - self.part_mean[index]) / self.part_std[index], z

    def evidence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, every standardised part (n, len(PARTS)), description) of uint8 images."""
        return self._evidence(x, tuple(range(len(PARTS))))

    def set_weights(self, weights) -> None:
        """The weight of each part in the score; parts of weight 0 are not computed by `forward`."""
        self.weights.copy_(_tensor(weights))
        self.active = tuple(i for i, w in enumerate(np.asarray(weights, dtype=float)) if w)

    def forward(self, x: torch.Tensor):
        logits, parts, z = self._evidence(x, self.active)
        return logits, parts @ self.weights[list(self.active)], z

    def standardise_on(self, images: np.ndarray) -> FinalModel:
        """Set part_mean and part_std from in-distribution training images (uint8); returns self."""
        self.part_mean.zero_()
        self.part_std.fill_(1.0)
        raw = evidence_parts(self, images)
        self.part_mean.copy_(_tensor(raw.mean(axis=0)))
        floor = np.where(np.array(PARTS) == "frame intensity", STD_FLOOR, 1e-12)  # the frame is in intensity units
        self.part_std.copy_(_tensor(np.maximum(raw.std(axis=0), floor)))
        return self


@torch.no_grad()
def evidence_parts(model: FinalModel, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """(n, len(PARTS)) standardised evidence of uint8 images, exactly as the deployed score sums it."""
    device = model.weights.device
    chunks = [model.evidence(torch.as_tensor(images[start:start + batch_size]).to(device))[1].cpu().numpy()
              for start in range(0, len(images), batch_size)]
    return np.concatenate(chunks).astype(np.float64)


@dataclass(frozen=True)
class LoadedModel:
    """A deployed model: the exported module and its metadata (model.json)."""

    module: nn.Module
    metadata: dict

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])


def fuse_batch_norm(network: nn.Module) -> None:
    """Fold every convolution + batch norm pair of the backbone into one convolution (inference only)."""
    for stage in network.stages:
        for block in stage:
            conv, norm = block[0], block[1]
            if isinstance(norm, nn.BatchNorm2d):
                block[0], block[1] = fuse_conv_bn_eval(conv, norm), nn.Identity()


def save_final_model(model: FinalModel, folder: Path | str, profile: str, extra: dict | None = None) -> Path:
    """Export `model` on CPU into folder/model.pt2 and write folder/model.json; return the folder."""
    if not math.isfinite(model.threshold):
        raise ValueError("set model.threshold (fixed on representative set 1) before saving")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()  # the caller's model may live on the GPU and keep training
    fuse_batch_norm(model.network)
    examples = torch.randint(0, 256, (7, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        program = torch.export.export(model, (examples[:4],), dynamic_shapes=({0: batch},))
        # exported on 4 images, checked on 3 others: a graph tied to the batch size would differ
        for got, expected in zip(program.module()(examples[4:]), model(examples[4:])):
            if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
                raise ValueError("the exported model differs from the model")
        torch.export.save(program, str(folder / MODEL_FILE))
    metadata = {
        "format_version": FORMAT_VERSION,
        "threshold": model.threshold,
        "anomaly_flag": "anomaly_score > threshold",
        "score_parts": [name for name, w in zip(PARTS, model.weights.tolist()) if w],
        "class_names": list(model.class_names),
        "embedding_dim": int(model.centres3.shape[1]),
        "input": {"dtype": "uint8", "shape": [1, 32, 32], "scaling": "x / 255"},
        "outputs": ["logits (n, 5)", "anomaly_score (n,)", f"description (n, {int(model.centres3.shape[1])})"],
        "profile": profile,
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    (folder / META_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return folder


def load_final_model(folder: Path | str) -> LoadedModel:
    """Load a saved model on CPU; a missing or damaged file raises DataError in one line."""
    folder = Path(folder)
    model_path, meta_path = folder / MODEL_FILE, folder / META_FILE
    for path in (model_path, meta_path):
        if not path.is_file():
            raise DataError(f"{path} does not exist: not a saved model folder")
    try:
        metadata = json.loads(meta_path.read_text())
        threshold = float(metadata["threshold"])
        names = metadata["class_names"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise DataError(f"{meta_path} is damaged: {type(error).__name__}: {error}") from None
    if not math.isfinite(threshold) or not isinstance(names, list) or len(names) != len(CLASS_NAMES):
        raise DataError(f"{meta_path} is damaged: needs a finite threshold and {len(CLASS_NAMES)} class names")
    try:
        module = torch.export.load(str(model_path)).module()
    except Exception as error:  # noqa: BLE001 - torch.export raises many types for a damaged archive
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"{model_path} is not a readable exported model: {first_line}") from None
    return LoadedModel(module, metadata)
