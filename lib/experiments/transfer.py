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
pretraining); contrastive pretraining reuses `lib.nn.train.train` with the
recipe of notebook 02 (`contrastive_recipe`); `pretrain_sources` builds every
source of the study. `probe_sources` and `finetune_grid` measure them; the
comparisons with training from scratch are paired (same evaluation images)
with bootstrap intervals (`paired_difference`, `paired_auroc_difference`, both
through `lib.eval.metrics.bootstrap_ci`). `results` gathers the numbers for
results/05_transfer_learning.json, from which `lib.render.variables` words them
for the report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from lib.data import ANOMALY, CLASS_NAMES
from lib.data.replica import FOREIGN, pad
from lib.eval import metrics
from lib.eval.ood import ClassGaussians, msp_score
from lib.experiments.classification import Split, finetune_config, label_subset, linear_probe, split_labeled
from lib.nn.augment import AugmentConfig
from lib.nn.finetune import (
    Classifier,
    FinetuneConfig,
    PretrainResult,
    array_fingerprint,
    embed,
    fit_classifier,
    predict_logits,
    pretrain_classifier,
)
from lib.nn.models import ModelConfig
from lib.nn.train import TrainConfig, list_checkpoints, load_history, load_trained, pretraining_plan, train
from lib.render import variables  # its `signed`: one formatter of signed differences

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
    02's plan for the profile (`lib.nn.train.pretraining_plan`). The number of
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


def _mean_difference(a, b, weights=None):
    """mean(a) - mean(b); with resampling counts `weights` (B, n), one value per resample."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if weights is None:
        return float(d.mean())
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    return w @ d / w.sum(axis=1)


def _auroc_difference(scores_a, scores_b, is_anomaly, weights=None):
    """AUROC(a) - AUROC(b) for the same labels (per resample with `weights`)."""
    return metrics.auroc(scores_a, is_anomaly, weights=weights) - metrics.auroc(scores_b, is_anomaly, weights=weights)


# Both evaluate all bootstrap resamples at once (`bootstrap_ci`'s vectorised path); the AUROC difference
# resamples anomalies and normal images separately (argument 2 holds the labels), like `metrics.auroc`.
_mean_difference.supports_weights, _mean_difference.stratify_by = True, None
_auroc_difference.supports_weights, _auroc_difference.stratify_by = True, 2


def paired_difference(correct_a, correct_b, n_resamples: int, seed: int, level: float = 0.95) -> dict:
    """Difference of two accuracies on the same items, mean(a) - mean(b), with a paired bootstrap interval.

    `bootstrap_ci` resamples the items of both arrays jointly, so the interval reflects only how the two
    models differ on the same images (much narrower than two separate intervals).
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two 1-D arrays of the same non-zero length, got {a.shape} and {b.shape}")
    return metrics.metric_with_ci(_mean_difference, a, b, n_resamples=n_resamples, seed=seed, level=level)


def paired_auroc_difference(scores_a, scores_b, is_anomaly, n_resamples: int, seed: int,
                            level: float = 0.95) -> dict:
    """AUROC(a) - AUROC(b) on the same items, with a paired bootstrap interval.

    Anomalies and normal images are resampled separately (their numbers stay fixed, as in `metrics.auroc`'s
    own intervals) and both scores are evaluated on the same resamples.
    """
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    positive = np.asarray(is_anomaly, dtype=bool)
    if a.shape != b.shape or a.shape != positive.shape:
        raise ValueError(f"scores {a.shape}, {b.shape} and labels {positive.shape} must have the same shape")
    return metrics.metric_with_ci(_auroc_difference, a, b, positive, n_resamples=n_resamples, seed=seed,
                                  level=level)


def auroc_by_origin(scores, labels, origin=None, n_resamples: int = 1000, seed: int = 0,
                    anomaly: int = ANOMALY) -> dict:
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
        groups.update({kind: origin == kind for kind in ORIGINS})
    for name, members in groups.items():
        chosen = members | ~is_anomaly
        if members.any() and (~is_anomaly).any():
            out[name] = metrics.metric_with_ci(metrics.auroc, scores[chosen], members[chosen],
                                               n_resamples=n_resamples, seed=seed)
    return out


def format_ci(result: dict, scale: float = 100.0, digits: int = 1, signed: bool = False) -> str:
    """"97.3 [96.2, 98.3]" from {"value", "ci"} (scaled, e.g. to %; `signed` writes "+" on positive numbers)."""
    low, high = (scale * x for x in result["ci"])
    value = scale * result["value"]
    if signed:
        sign = variables.signed
        return f"{sign(value, digits)} [{sign(low, digits)}, {sign(high, digits)}]"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


# --------------------------------------------------------------------------- the study of notebook 05

ORIGINS = ("foreign", "corrupted")  # the answer key's two kinds of anomaly
SOURCE_NAMES = {  # key -> name in tables, figures and the report (this order everywhere)
    "scratch": "none (from scratch)",
    "in_domain": "in-domain, contrastive (our unlabeled images)",
    "in_domain_matched": "in-domain, contrastive (short)",
    "foreign_contrastive": "related, contrastive (short)",
    "foreign_supervised": "related, supervised",
    "digits": "mismatched (digits), supervised",
}
SOURCE_COLORS = dict(zip(SOURCE_NAMES, ["#7f7f7f", "#08306b", "#6baed6", "#2ca02c", "#ff7f0e", "#d62728"]))


@dataclass(frozen=True)
class Evaluation:
    """What every source is measured on: the labeled split (label budgets are drawn from its training part,
    the validation part is monitored), the images accuracy is measured on, and representative set 1."""

    split: Split
    x: np.ndarray  # accuracy images: a sample of the unlabeled set (answer key), else set 1's clean images
    y: np.ndarray
    name: str  # e.g. "5,000 unlabeled images (answer key)"
    rep1_x: np.ndarray
    rep1_y: np.ndarray
    rep1_origin: np.ndarray | None  # answer key: "in_distribution", "foreign" or "corrupted" per image
    budgets: list[int]  # label budgets, ending with the whole training split
    subsets: dict[int, np.ndarray]  # budget -> indices into the training split (class-balanced, nested)


def evaluation(data, answer_key: dict | None, settings, validation_fraction: float, seed: int) -> Evaluation:
    """The evaluation of notebook 05 (`settings`: the profile's `transfer`)."""
    split = split_labeled(data, validation_fraction, seed)
    if answer_key is not None:
        n = len(data.unlabeled) if settings.eval_images is None else min(settings.eval_images, len(data.unlabeled))
        pick = np.sort(np.random.default_rng(seed).choice(len(data.unlabeled), n, replace=False))
        x, y, name = data.unlabeled[pick], answer_key["unlabeled_class"][pick], f"{n:,} unlabeled images (answer key)"
    else:
        clean = data.rep1_y != ANOMALY
        x, y, name = data.rep1_x[clean], data.rep1_y[clean], "the clean images of representative set 1"
    budgets = [b for b in settings.budgets if b < len(split.y_train)] + [len(split.y_train)]
    origin = answer_key["rep1_origin"][: len(data.rep1_y)] if answer_key is not None else None
    return Evaluation(split, x, y, name, data.rep1_x, data.rep1_y, origin, budgets,
                      {b: label_subset(split.y_train, b, seed) for b in budgets})


def per_class(x: np.ndarray, y: np.ndarray, n_classes: int, n: int) -> list[np.ndarray]:
    """The first `n` images of every class 0..n_classes-1, class by class."""
    return [x[i] for c in range(n_classes) for i in np.flatnonzero(y == c)[:n]]


def source_examples(data, foreign: SourcePool, digits: SourcePool) -> tuple[list[list[np.ndarray]], list[str]]:
    """Image rows (ours, related, mismatched) and their labels for the figure of the sources."""
    rows = [per_class(data.labeled_x, data.labeled_y, len(CLASS_NAMES), 2),
            per_class(foreign.x, foreign.y, len(foreign.class_names), 2),
            per_class(digits.x, digits.y, len(digits.class_names), 1)]
    return rows, ["ours", "related", "mismatched"]


@dataclass
class Sources:
    """The pretrained encoders of the study and what their pretraining cost."""

    architecture: ModelConfig  # every source trains it (notebook 02's contrastive model, without decoder)
    contrastive_train: TrainConfig  # the short contrastive recipe
    recipe_found: bool  # the recipe is notebook 02's run (else notebook 02's plan for the profile)
    models: dict[str, nn.Module | None]  # key -> model whose encoder is copied (None: from scratch), in
    #                                      SOURCE_NAMES order, only the sources of this run
    info: dict[str, dict]  # key -> {"images", "epochs", "seconds"} (+ "heldout" for supervised sources)


def pretrain_sources(data, foreign: SourcePool, digits: SourcePool, profile, seed: int, device,
                     checkpoints: Callable[[str], Path], log=print) -> Sources:
    """Load notebook 02's encoder (when it exists) and pretrain (or load) every other source.

    `checkpoints(name)` is the folder of a checkpoint name (`Workspace.checkpoints` for the profile); every
    folder name carries a fingerprint of its data, so a changed source is never served a stale model.
    """
    settings, classification = profile.transfer, profile.classification
    nb02 = checkpoints("contrastive")
    architecture, recipe, found = contrastive_recipe(nb02, pretraining_plan(profile, seed)["contrastive"],
                                                     settings.contrastive_epochs)
    models, info = {"scratch": None}, {}
    if list_checkpoints(nb02):
        models["in_domain"] = load_trained(nb02, device)
        history = load_history(nb02)
        info["in_domain"] = {"epochs": len(history), "seconds": sum(h["seconds"] for h in history),
                             "images": len(data.unlabeled)}
    else:
        log(f"notebook 02's contrastive checkpoint is missing ({nb02}): its row is left out, and the in-domain"
            " comparison rests on the model trained with the related source's budget")
    # the same short contrastive budget on our unlabeled images and on as many foreign images
    for key, prefix, images in (("in_domain_matched", "transfer_in_domain_contrastive", data.unlabeled),
                                ("foreign_contrastive", "transfer_foreign_contrastive",
                                 foreign.x[: len(data.unlabeled)])):
        result = train(architecture, images, recipe, checkpoints(f"{prefix}_{array_fingerprint(images)}"), device,
                       progress=False)
        models[key] = result.model
        info[key] = {"epochs": recipe.epochs, "seconds": result.seconds, "images": len(images)}
    # supervised: the optimiser and weak augmentation of fine-tuning, a held-out part to show the task was learned
    config = FinetuneConfig(steps=settings.source_steps, batch_size=settings.source_batch, lr=classification.lr,
                            weight_decay=classification.weight_decay, weak=classification.weak, seed=seed)
    for key, prefix, pool, holdout in (("foreign_supervised", "transfer_foreign_supervised", foreign,
                                        settings.foreign_holdout),
                                       ("digits", "transfer_digits_supervised", digits, settings.source_holdout)):
        result, info[key] = pretrain_with_holdout(
            architecture, pool.x, pool.y, len(pool.class_names), config,
            checkpoints(f"{prefix}_{array_fingerprint(pool.x, pool.y)}"), holdout, device)
        models[key] = result.model
    return Sources(architecture, recipe, found, {k: models[k] for k in SOURCE_NAMES if k in models}, info)


def probe_sources(sources: Sources, ev: Evaluation, seed: int, n_resamples: int, device) -> dict:
    """(source, budget) -> accuracy with interval of a linear head on the frozen ten-dimensional embedding.

    For "scratch" the encoder is the random initialisation that fine-tuning starts from.
    """
    torch.manual_seed(seed)  # the random start of the from-scratch runs (fit_classifier seeds the same way)
    init = Classifier(sources.architecture).to(device).eval()
    accuracy = {}
    for k, model in sources.models.items():
        frozen = model if model is not None else init
        z_fit, z_test = embed(frozen, ev.split.x_train), embed(frozen, ev.x)
        for b, subset in ev.subsets.items():
            head = linear_probe(z_fit[subset], ev.split.y_train[subset], seed)
            accuracy[(k, b)] = metrics.metric_with_ci(metrics.accuracy, ev.y, head.predict(z_test),
                                                      n_resamples=n_resamples, seed=seed)
    return accuracy


@dataclass(frozen=True)
class Run:
    """One fine-tuning run: a source at a label budget, evaluated."""

    source: str
    labels: int
    correct: np.ndarray  # per evaluation image: predicted class is right
    accuracy: dict  # {"value", "ci"} on the evaluation images
    accuracy_rep1_clean: float
    val_accuracy: float
    seconds: float
    scores: dict[str, np.ndarray]  # anomaly scores on set 1: "mahalanobis", "msp"
    auroc: dict  # score -> anomaly kind ("all", "foreign", "corrupted") -> {"value", "ci"}


def finetune_grid(sources: Sources, ev: Evaluation, profile, seed: int, device, checkpoints: Callable[[str], Path],
                  n_resamples: int) -> dict[tuple[str, int], Run]:
    """Fine-tune every source at every label budget with the same schedule, and evaluate each run.

    Pretrained encoders learn at `backbone_lr_factor` times the head's rate (as in notebook 03), the
    from-scratch network at the full rate. Anomaly scores on set 1: the Mahalanobis distance to the nearest
    class Gaussian, fitted on the embeddings of the run's own labeled training images, and the negative
    maximum softmax probability.
    """
    settings, classification = profile.transfer, profile.classification
    base = replace(finetune_config(classification, seed, settings.finetune_steps), eval_every=settings.eval_every)
    clean1 = ev.rep1_y != ANOMALY
    runs = {}
    for budget, subset in ev.subsets.items():
        xs, ys = ev.split.x_train[subset], ev.split.y_train[subset]
        for k, model in sources.models.items():
            config = replace(base, backbone_lr_factor=1.0 if model is None else classification.backbone_lr_factor)
            folder = checkpoints(f"transfer_ft_{k}_{budget}_{weights_fingerprint(model)}_"
                                 f"{array_fingerprint(xs, ys)[:6]}")
            result = fit_classifier(config, sources.architecture, xs, ys, ev.split.x_val, ev.split.y_val, folder,
                                    pretrained=model, device=device, progress=False)
            net = result.model
            gaussians = ClassGaussians().fit(embed(net, xs), ys, n_classes=len(CLASS_NAMES))
            rep1_logits = predict_logits(net, ev.rep1_x)
            scores = {"mahalanobis": gaussians.mahalanobis(embed(net, ev.rep1_x)), "msp": msp_score(rep1_logits)}
            predicted = predict_logits(net, ev.x).argmax(1)
            runs[(k, budget)] = Run(
                k, budget, predicted == ev.y,
                metrics.metric_with_ci(metrics.accuracy, ev.y, predicted, n_resamples=n_resamples, seed=seed),
                float((rep1_logits[clean1].argmax(1) == ev.rep1_y[clean1]).mean()),
                float(result.history[-1]["val_accuracy"]), float(result.seconds), scores,
                {score: auroc_by_origin(values, ev.rep1_y, ev.rep1_origin, n_resamples=n_resamples, seed=seed)
                 for score, values in scores.items()})
    return runs


def runs_table(runs: dict[tuple[str, int], Run]) -> pd.DataFrame:
    """One line per run: validation accuracy, accuracy on set 1's clean images, seconds."""
    return pd.DataFrame([{"source": r.source, "labels": r.labels, "val_accuracy": r.val_accuracy,
                          "accuracy_rep1_clean": r.accuracy_rep1_clean, "seconds": r.seconds}
                         for r in runs.values()])


def accuracy_gains(runs: dict[tuple[str, int], Run], n_resamples: int, seed: int) -> dict[tuple[str, int], dict]:
    """(source, budget) -> fine-tuned accuracy minus training from scratch, paired on the evaluation images."""
    return {(k, b): paired_difference(run.correct, runs[("scratch", b)].correct, n_resamples=n_resamples, seed=seed)
            for (k, b), run in runs.items() if k != "scratch"}


def auroc_gains(runs: dict[tuple[str, int], Run], ev: Evaluation, n_resamples: int, seed: int) -> dict:
    """(source, kind, budget) -> Mahalanobis AUROC on set 1 minus that of training from scratch (paired).

    "all" anomalies at every budget; with the answer key also "foreign" and "corrupted" (each against all
    normal images) at the largest budget.
    """
    is_anomaly = ev.rep1_y == ANOMALY
    gains = {}
    for (k, b), run in runs.items():
        if k == "scratch":
            continue
        ours, scratch = run.scores["mahalanobis"], runs[("scratch", b)].scores["mahalanobis"]
        gains[(k, "all", b)] = paired_auroc_difference(ours, scratch, is_anomaly, n_resamples=n_resamples,
                                                       seed=seed)
        if ev.rep1_origin is None or b != ev.budgets[-1]:
            continue
        for kind in ORIGINS:
            members = (ev.rep1_origin == kind) | ~is_anomaly
            if (ev.rep1_origin == kind).any():
                gains[(k, kind, b)] = paired_auroc_difference(ours[members], scratch[members], is_anomaly[members],
                                                              n_resamples=n_resamples, seed=seed)
    return gains


def anomaly_kinds(runs: dict[tuple[str, int], Run], budget: int) -> list[str]:
    """The anomaly groups measured: "all", and "foreign" and "corrupted" with the answer key."""
    measured = runs[("scratch", budget)].auroc["mahalanobis"]
    return [kind for kind in ("all", *ORIGINS) if kind in measured]


def sources_table(sources: Sources, probe: dict, budgets: list[int]) -> pd.DataFrame:
    """Images, epochs and time of each source's pretraining, held-out source accuracy, and the frozen
    embedding's linear-head accuracy with every label of the training split."""
    rows = []
    for k in sources.models:
        info = sources.info.get(k)
        rows.append({
            "source": SOURCE_NAMES[k],
            "images": f"{info['images']:,}" if info else "—",
            "epochs": f"{info['epochs']:.1f}" if info else "—",
            "pretraining s": f"{info['seconds']:.0f}" if info else "—",
            "held-out source accuracy (%)": f"{100 * info['heldout']:.1f}" if info and "heldout" in info else "—",
            f"frozen + linear head, {budgets[-1]:,} labels (%)": format_ci(probe[(k, budgets[-1])]),
        })
    return pd.DataFrame(rows)


def accuracy_table(runs: dict[tuple[str, int], Run], budgets: list[int]) -> pd.DataFrame:
    """Fine-tuned accuracy (%) with interval per source (rows) and label budget (columns)."""
    keys = [k for k in SOURCE_NAMES if (k, budgets[0]) in runs]
    return pd.DataFrame([{"source": SOURCE_NAMES[k], **{f"{b:,} labels": format_ci(runs[(k, b)].accuracy)
                                                        for b in budgets}} for k in keys])


def ood_table(runs: dict[tuple[str, int], Run], auroc_gain: dict, budget: int, with_origin: bool) -> pd.DataFrame:
    """ROC AUC on set 1 at `budget` per source: Mahalanobis per anomaly kind, MSP, and (with the answer key)
    the change of the foreign-article AUROC relative to training from scratch."""
    kinds = anomaly_kinds(runs, budget)
    rows = []
    for k in [k for k in SOURCE_NAMES if (k, budget) in runs]:
        run = runs[(k, budget)]
        row = {"source": SOURCE_NAMES[k]}
        for kind in kinds:
            row[f"Mahalanobis, {kind}"] = format_ci(run.auroc["mahalanobis"][kind], scale=1, digits=3)
        row["MSP, all"] = format_ci(run.auroc["msp"]["all"], scale=1, digits=3)
        if with_origin:
            change = auroc_gain.get((k, "foreign", budget))
            row["foreign: change vs scratch"] = "—" if change is None else format_ci(change, scale=1, digits=3,
                                                                                     signed=True)
        rows.append(row)
    return pd.DataFrame(rows)


def accuracy_curves(probe: dict, runs: dict[tuple[str, int], Run], gains: dict, budgets: list[int]
                    ) -> tuple[dict, dict, dict]:
    """Per source, results per budget: frozen linear head, fine-tuned, fine-tuned minus scratch (pretrained
    sources only), for `plots.transfer_accuracy`."""
    keys = [k for k in SOURCE_NAMES if (k, budgets[0]) in runs]
    return ({k: [probe[(k, b)] for b in budgets] for k in keys},
            {k: [runs[(k, b)].accuracy for b in budgets] for k in keys},
            {k: [gains[(k, b)] for b in budgets] for k in keys if k != "scratch"})


def ood_curves(runs: dict[tuple[str, int], Run], budgets: list[int]) -> tuple[dict, dict, list[str]]:
    """Per source: Mahalanobis AUROC (all anomalies) per budget, and per anomaly kind at the largest budget
    (the kinds shown: foreign and corrupted with the answer key, else all), for `plots.transfer_ood`."""
    keys = [k for k in SOURCE_NAMES if (k, budgets[0]) in runs]
    shown = [kind for kind in anomaly_kinds(runs, budgets[-1]) if kind != "all"] or ["all"]
    return ({k: [runs[(k, b)].auroc["mahalanobis"]["all"] for b in budgets] for k in keys},
            {k: [runs[(k, budgets[-1])].auroc["mahalanobis"][kind] for kind in shown] for k in keys}, shown)


def _plain(value):
    """JSON-ready copy: numpy scalars to Python numbers, tuples to lists, keys to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def results(profile, seed: int, ev: Evaluation, foreign: SourcePool, digits: SourcePool, sources: Sources,
            probe: dict, runs: dict[tuple[str, int], Run], gains: dict, auroc_gain: dict,
            seconds_total: float) -> dict:
    """Everything notebook 05 measured, for results/05_transfer_learning.json (the report's `transfer`
    variables are derived from it by `lib.render.variables.transfer_variables`)."""
    origin = ev.rep1_origin
    return _plain({
        "profile": profile.name, "seed": seed, "architecture": sources.architecture.to_dict(),
        "notebook_02_encoder": "in_domain" in sources.models,
        "contrastive_recipe_from_notebook_02": sources.recipe_found,
        "contrastive_train_config": sources.contrastive_train.to_dict(), "evaluated_on": ev.name,
        "budgets": ev.budgets, "settings": asdict(profile.transfer),
        "leakage_filter": {"foreign_candidates": foreign.n_candidates, "excluded": foreign.n_excluded,
                           "used": len(foreign.x)},
        "source_names": [[k, name] for k, name in SOURCE_NAMES.items()],  # pairs: JSON keeps their order
        "source_pools": {"foreign": len(foreign.x), "digits": len(digits.x)},
        "rep1_anomalies": None if origin is None else {kind: int((origin == kind).sum()) for kind in ORIGINS},
        "sources": {k: {**sources.info.get(k, {}),
                        "frozen_linear_head_accuracy": {str(b): probe[(k, b)] for b in ev.budgets}}
                    for k in sources.models},
        "runs": [{"source": r.source, "labels": r.labels, "accuracy": r.accuracy,
                  "accuracy_rep1_clean": r.accuracy_rep1_clean, "val_accuracy": r.val_accuracy,
                  "seconds": r.seconds, "auroc_rep1": r.auroc, "gain_vs_scratch": gains.get((r.source, r.labels))}
                 for r in runs.values()],
        "auroc_change_vs_scratch": {f"{k}.{kind}.{b}": v for (k, kind, b), v in auroc_gain.items()},
        "seconds_total": seconds_total,
    })
