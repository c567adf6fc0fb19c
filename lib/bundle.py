"""The deployed model: one network, its classifier, description and anomaly score, exported with torch.export.

`FinalModel.forward(x)` takes uint8 images (n, 1, 32, 32) and returns
`(logits (n, 5), anomaly_score (n,), description (n, 10))`; inputs are scaled
to [0, 1] (x / 255), as in training.

The anomaly score is a `lib.detect.StandardizedSum` of evidence: one detector per part of
`lib.results.PART_REGISTRY`, held and dispatched by part id, each reading the network output its entry names
(`lib.detect.parts` makes and fits them). Each part is standardised on in-distribution training images (the
frame's standard deviation, zero there, is floored at the profile's `anomaly.frame_std_floor`, one intensity
level). The weights (0 or 1 per part) select the combination chosen on representative set 1; `threshold` was
fixed there too. Parts of weight 0 are not computed.

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
from lib.detect import Detector, StandardizedSum
from lib.detect.base import as_float32
from lib.errors import DataError
from lib.nn.cnn import CNN
from lib.nn.infer import batched
from lib.results import PART_REGISTRY, PARTS

MODEL_FILE = "model.pt2"
META_FILE = "model.json"
FORMAT_VERSION = 4


class FinalModel(nn.Module):
    def __init__(self, network: CNN, detectors: dict[str, Detector], frame_std_floor: float,
                 threshold: float = math.nan, class_names: tuple[str, ...] = CLASS_NAMES):
        """`network`: the trained CNN with description and decoder; `detectors`: the fitted detector of every part,
        by part id (`lib.detect.parts.fit_detectors`); `frame_std_floor`: the profile's `anomaly.frame_std_floor`."""
        super().__init__()
        missing = [part for part in PARTS if part not in detectors]
        if missing:
            raise ValueError(f"need a detector for every part; missing: {', '.join(missing)}")
        self.network, self.threshold, self.class_names = network, float(threshold), tuple(class_names)
        self.detectors = nn.ModuleDict({part: detectors[part] for part in PARTS})
        floors = [frame_std_floor if PART_REGISTRY[part].detector == "frame" else 1e-12 for part in PARTS]
        self.combination = StandardizedSum(len(PARTS), floors)
        self.set_weights(np.ones(len(PARTS)))

    def raw_evidence(self, x: torch.Tensor, parts: tuple[str, ...]):
        """(logits, the parts `parts` (ids) of the evidence before standardisation (n, len(parts)), in that order,
        description) of images x in [0, 1]."""
        out = self.network.outputs(x)
        inputs = {**{name: (value,) for name, value in out.items()}, "pixels": (x,)}
        if any(PART_REGISTRY[part].reads == "decoder" for part in parts):
            inputs["decoder"] = (x, self.network.decode(out["z"]))
        raw = [self.detectors[part](*inputs[PART_REGISTRY[part].reads]) for part in parts]
        return out["logits"], torch.stack(raw, dim=1), out["z"]

    def set_weights(self, weights) -> None:
        """The weight of each part (PARTS order) in the score; parts of weight 0 are not computed by `forward`."""
        self.combination.weights.copy_(as_float32(weights))
        self.active = tuple(part for part, w in zip(PARTS, np.asarray(weights, dtype=float)) if w)

    def forward(self, x: torch.Tensor):
        # channels-last: the convolutions run about twice as fast in this layout on CPUs (save_final_model stores
        # the network's weights in it too)
        x = (x.float() / 255.0).contiguous(memory_format=torch.channels_last)
        logits, raw, z = self.raw_evidence(x, self.active)
        return logits, self.combination(raw, [PARTS.index(part) for part in self.active]), z

    def evidence(self, images: np.ndarray) -> np.ndarray:
        """(n, len(PARTS)) standardised evidence of uint8 images, exactly as the deployed score sums it."""
        raw = batched(lambda x: self.raw_evidence(x, PARTS)[1], images, self.combination.mean.device)
        return self.combination.standardize(torch.as_tensor(raw), list(range(len(PARTS)))).numpy().astype(np.float64)

    def standardise_on(self, images: np.ndarray) -> FinalModel:
        """Fit the standardisation of every part on in-distribution training images (uint8); returns self."""
        self.combination.fit(batched(lambda x: self.raw_evidence(x, PARTS)[1], images, self.combination.mean.device))
        return self


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


def fuse_batch_norm(network: CNN) -> None:
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
    model.network = model.network.to(memory_format=torch.channels_last)
    examples = torch.randint(0, 256, (7, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        program = torch.export.export(model, (examples[:4],), dynamic_shapes=({0: batch},))
        # exported on 4 images, checked on 3 others: a graph tied to the batch size would differ
        for got, expected in zip(program.module()(examples[4:]), model(examples[4:])):
            if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
                raise ValueError("the exported model differs from the model")
        torch.export.save(program, str(folder / MODEL_FILE))
    dim = model.network.config.description_dim
    metadata = {
        "format_version": FORMAT_VERSION,
        "threshold": model.threshold,
        "anomaly_flag": "anomaly_score > threshold",
        "score_parts": list(model.active),
        "class_names": list(model.class_names),
        "embedding_dim": dim,
        "input": {"dtype": "uint8", "shape": [1, 32, 32], "scaling": "x / 255"},
        "outputs": ["logits (n, 5)", "anomaly_score (n,)", f"description (n, {dim})"],
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
