"""Transfer learning, measured (notebook 05): source data sets, source pretraining and paired comparisons.

The project's own model may not use pretrained models or outside data; this
module exists to answer *when transfer would help, how, and when it would hurt*
with experiments. Every source trains the same architecture as the in-domain
contrastive model of notebook 02, so `Classifier.load_pretrained` can copy its
encoder and bottleneck before fine-tuning on the labels.

Sources
- related: the five Fashion-MNIST classes that are *not* ours (`replica.FOREIGN`),
  padded to 32x32 like the assignment. The representative sets hold foreign
  Fashion-MNIST images as anomalies, so every pool image that is pixel-identical
  to an image of a given set (SHA-1 of the padded bytes) is removed first:
  `foreign_source` uses only the images, never the answer key.
- mismatched: scikit-learn's bundled 8x8 digits (`digits_source`), upscaled
  bilinearly to 28x28, scaled from 16 grey levels to 0-255 and padded to 32x32.

`pretrain_classifier` trains a k-way `Classifier` on a source (supervised
pretraining); contrastive pretraining reuses `lib.training.train` with the
recipe of notebook 02 (`contrastive_recipe`). Comparisons with training from
scratch are paired (same evaluation images) with bootstrap intervals
(`paired_difference`), and `effect_phrase` turns them into words for the report.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib.data.replica import FOREIGN, pad
from lib.eval import metrics
from lib.nn.augment import AugmentConfig
from lib.nn.finetune import (
    FinetuneConfig,
    PretrainResult,
    pretrain_classifier,
)
from lib.nn.models import ModelConfig
from lib.nn.train import TrainConfig

# --------------------------------------------------------------------------- source data


def image_hashes(images: np.ndarray) -> list[str]:
    """SHA-1 of every image's bytes (uint8, C order): equal hashes = pixel-identical images."""
    images = np.ascontiguousarray(images)
    return [hashlib.sha1(image.tobytes()).hexdigest() for image in images]


def not_in(pool: np.ndarray, *sets: np.ndarray) -> np.ndarray:
    """Boolean mask over `pool`: True where the image is pixel-identical to no image of `sets`.

    Pool and sets must have the same image shape and dtype (e.g. uint8 (n, 1, 32, 32)).
    """
    for images in sets:
        if images.shape[1:] != pool.shape[1:] or images.dtype != pool.dtype:
            raise ValueError(f"cannot compare images {images.shape[1:]} {images.dtype} with the pool's "
                             f"{pool.shape[1:]} {pool.dtype}")
    seen = {h for images in sets for h in image_hashes(images)}
    return np.array([h not in seen for h in image_hashes(pool)], dtype=bool)


@dataclass(frozen=True)
class SourcePool:
    x: np.ndarray  # uint8 (n, 1, 32, 32)
    y: np.ndarray  # int64 class indices 0..k-1
    class_names: tuple[str, ...]
    n_candidates: int  # images of the source classes before filtering
    n_excluded: int  # removed because they also appear in an excluded set


def foreign_source(images: np.ndarray, labels: np.ndarray, exclude: list[np.ndarray], class_names,
                   limit: int | None = None, seed: int = 0) -> SourcePool:
    """The foreign Fashion-MNIST classes as a 5-way source, padded, with every image of `exclude` removed.

    `images` (n, 28, 28) and `labels` (n,) are all of Fashion-MNIST; the class
    index of label FOREIGN[i] is i. After filtering, `limit` images are drawn at
    random (seeded), keeping the class proportions of the pool on average.
    """
    chosen = np.flatnonzero(np.isin(labels, FOREIGN))
    x = pad(images[chosen])
    keep = not_in(x, *exclude)
    index_of = {label: i for i, label in enumerate(FOREIGN)}
    y = np.array([index_of[int(label)] for label in labels[chosen]], dtype=np.int64)
    x, y = x[keep], y[keep]
    if limit is not None and limit < len(x):
        pick = np.sort(np.random.default_rng(seed).choice(len(x), size=limit, replace=False))
        x, y = x[pick], y[pick]
    return SourcePool(x, y, tuple(class_names[label] for label in FOREIGN), len(chosen), int((~keep).sum()))


def upscale_pad(images: np.ndarray, max_value: float) -> np.ndarray:
    """Small grey images (n, h, w) with values in [0, max_value] -> uint8 (n, 1, 32, 32).

    Bilinear interpolation to 28x28 (as Fashion-MNIST), scaled to 0-255, then two
    zero pixels of padding on every side, like the assignment's images.
    """
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))[:, None] / float(max_value)
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    out = np.clip(np.rint(x[:, 0].numpy() * 255.0), 0, 255).astype(np.uint8)
    return pad(out)


def digits_source() -> SourcePool:
    """scikit-learn's bundled handwritten digits (1,797 images, 8x8, 16 grey levels) as a 10-way source."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = upscale_pad(digits.images, max_value=16.0)
    return SourcePool(x, digits.target.astype(np.int64), tuple(str(d) for d in range(10)), len(x), 0)


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, held-out) indices of range(n); the held-out part has round(fraction * n) items."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(fraction * n))
    return np.sort(order[cut:]), np.sort(order[:cut])


# --------------------------------------------------------------------------- fingerprints and recipes


def weights_fingerprint(model: nn.Module | None) -> str:
    """Short SHA-1 of a model's encoder and bottleneck weights ("scratch" for None).

    Fine-tuning folders carry it in their name, so a retrained source never lets
    a stale fine-tuned checkpoint be reused.
    """
    if model is None:
        return "scratch"
    digest = hashlib.sha1()
    for part in (model.encoder, model.bottleneck):
        for name, tensor in part.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:10]


def train_config_from_dict(data: dict) -> TrainConfig:
    """Inverse of `TrainConfig.to_dict` (JSON turns tuples into lists)."""
    values = dict(data)
    if values.get("augment") is not None:
        values["augment"] = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v
                                             for k, v in values["augment"].items()})
    return TrainConfig(**values)


def contrastive_recipe(folder: Path | str, fallback: tuple[ModelConfig, TrainConfig], epochs: int
                       ) -> tuple[ModelConfig, TrainConfig, bool]:
    """(model config, train config, found) of the contrastive model that notebook 02 trained in `folder`.

    Without a `config.json` there (notebook 02 has not run), `fallback`: notebook
    02's plan for the profile (`lib.training.pretraining_plan`). The number of
    epochs is always `epochs` (the short pretraining budget of notebook 05); the
    decoder is switched off, since it learns from the detached embedding and so
    never changes the encoder that transfer copies.
    """
    path = Path(folder) / "config.json"
    if path.exists():
        saved = json.loads(path.read_text())
        model, train, found = (ModelConfig.from_dict(saved["model_config"]),
                               train_config_from_dict(saved["train_config"]), True)
    else:
        (model, train), found = fallback, False
    return replace(model, decoder=False), replace(train, epochs=epochs, keep=1), found


# --------------------------------------------------------------------------- supervised pretraining


def pretrain_with_holdout(model_config: ModelConfig, x: np.ndarray, y: np.ndarray, n_classes: int,
                          cfg: FinetuneConfig, folder: Path | str, holdout_fraction: float,
                          device: torch.device | str = "cpu") -> tuple[PretrainResult, dict]:
    """`pretrain_classifier` on a source minus a held-out part (split by `cfg.seed`), and a summary of the run:
    {"epochs", "seconds", "images" (trained on), "heldout" (accuracy on the held-out part)}."""
    fit, held = holdout_split(len(x), holdout_fraction, cfg.seed)
    result = pretrain_classifier(model_config, x[fit], y[fit], n_classes, cfg, folder, heldout=(x[held], y[held]),
                                 device=device)
    return result, {"epochs": cfg.steps * cfg.batch_size / len(fit), "seconds": result.seconds,
                    "images": len(fit), "heldout": result.heldout_accuracy}


# --------------------------------------------------------------------------- comparisons


def paired_difference(correct_a, correct_b, n_resamples: int, seed: int, level: float = 0.95) -> dict:
    """Difference of two accuracies on the same items, mean(a) - mean(b), with a paired bootstrap interval.

    Items are resampled jointly, so the interval reflects only how the two models
    differ on the same images (much narrower than two separate intervals).
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two 1-D arrays of the same non-zero length, got {a.shape} and {b.shape}")
    d = a - b
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // len(d))
    means = np.concatenate([d[rng.integers(0, len(d), size=(min(chunk, n_resamples - s), len(d)))].mean(axis=1)
                            for s in range(0, n_resamples, chunk)])
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {"value": float(d.mean()), "ci": [float(low), float(high)]}


def effect_word(difference: dict) -> str:
    """"helps" / "hurts" when the interval excludes zero, else "makes no measurable difference"."""
    low, high = difference["ci"]
    if low > 0:
        return "helps"
    if high < 0:
        return "hurts"
    return "makes no measurable difference"


def _signed(x: float, digits: int) -> str:
    """"+1.2" / "-0.3", and "+0.0" rather than "-0.0" for tiny negative numbers."""
    return f"{round(x, digits) + 0.0:+.{digits}f}"


def effect_phrase(difference: dict, unit: float = 100.0, what: str = "points", digits: int = 1) -> str:
    """E.g. "helps (+4.1 points, 95 % CI [+2.0, +6.3])", for a difference of accuracies in [0, 1]."""
    low, high = difference["ci"]
    return (f"{effect_word(difference)} ({_signed(unit * difference['value'], digits)} {what}, "
            f"95 % CI [{_signed(unit * low, digits)}, {_signed(unit * high, digits)}])")


def auroc_by_origin(scores, labels, origin=None, n_resamples: int = 1000, seed: int = 0,
                    anomaly: int = 5) -> dict:
    """ROC AUC of `scores` for anomalies (label == `anomaly`) against normal images, with 95 % intervals.

    "all" uses every anomaly; with `origin` (the answer key's origin per item,
    evaluation only) also "foreign" and "corrupted": that kind of anomaly
    against all normal images. A group with no member is left out.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    is_anomaly = labels == anomaly
    out = {}
    groups = {"all": is_anomaly}
    if origin is not None:
        origin = np.asarray(origin)
        groups.update({kind: origin == kind for kind in ("foreign", "corrupted")})
    for name, members in groups.items():
        chosen = members | ~is_anomaly
        if members.any() and (~is_anomaly).any():
            out[name] = metrics.metric_with_ci(metrics.auroc, scores[chosen], members[chosen],
                                               n_resamples=n_resamples, seed=seed)
    return out


def ranking(entries: dict) -> str:
    """"a (91.5) ≥ b (83.8) ≥ c (80.1)": names sorted by value, best first.

    `entries` maps a name to (value to sort by, text to show beside the name).
    """
    ordered = sorted(entries.items(), key=lambda item: -item[1][0])
    return " ≥ ".join(f"{name} ({text})" for name, (_, text) in ordered)


def format_ci(result: dict, scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    """"97.3 [96.2, 98.3]" from {"value", "ci"} (scaled, e.g. to %; `signed` writes "+" on positive numbers)."""
    low, high = (scale * x for x in result["ci"])
    value = scale * result["value"]
    if signed:
        return f"{_signed(value, digits)} [{_signed(low, digits)}, {_signed(high, digits)}]"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def paired_auroc_difference(scores_a, scores_b, is_anomaly, n_resamples: int, seed: int,
                            level: float = 0.95) -> dict:
    """AUROC(a) - AUROC(b) on the same items, with a paired bootstrap interval.

    Anomalies and normal images are resampled separately (their numbers stay
    fixed, as in `metrics.auroc`'s own intervals) and both scores are evaluated on
    the same resamples.
    """
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    positive = np.asarray(is_anomaly, dtype=bool)
    if a.shape != b.shape or a.shape != positive.shape:
        raise ValueError(f"scores {a.shape}, {b.shape} and labels {positive.shape} must have the same shape")
    n = len(a)
    strata = [np.flatnonzero(positive), np.flatnonzero(~positive)]
    rng = np.random.default_rng(seed)
    differences = []
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        index = np.concatenate([members[rng.integers(0, len(members), size=(size, len(members)))]
                                for members in strata], axis=1)
        counts = np.stack([np.bincount(row, minlength=n) for row in index])
        differences.append(metrics.auroc(a, positive, weights=counts) - metrics.auroc(b, positive, weights=counts))
    differences = np.concatenate(differences)
    alpha = (1 - level) / 2
    low, high = np.quantile(differences, [alpha, 1 - alpha])
    value = metrics.auroc(a, positive) - metrics.auroc(b, positive)
    return {"value": float(value), "ci": [float(low), float(high)]}
