"""Transfer learning, measured (notebook 05): source data sets, source pretraining and paired comparisons.

The project's own model may not use pretrained models or outside data; this
module exists to answer *when transfer would help, how, and when it would hurt*
with experiments on the network the project ships (`profile.model.network`,
without its decoder): every source pretrains it, and it is fine-tuned on the
labels from the source's backbone and description (`train_cnn(init=...)`).

Sources
- related: the five Fashion-MNIST classes that are *not* ours (`replica.FOREIGN`),
  padded to 32x32 like the assignment. The representative sets hold foreign
  Fashion-MNIST images as anomalies, so every pool image that is pixel-identical
  to an image of a given set (SHA-1 of the padded bytes) is removed first:
  `foreign_source` uses only the images, never the answer key.
- mismatched: scikit-learn's bundled 8x8 digits (`lib.data.digits`), upscaled
  bilinearly to 28x28, scaled from 16 grey levels to 0-255 and padded to 32x32.

`pretrain_sources` builds every source (`lib.train.runs`: `contrastive_cnn` for
the contrastive one, `train_cnn` with the source's classes for the supervised ones);
`probe_sources` and `finetune_grid` measure them; the comparisons with training
from scratch are paired (same evaluation images) with bootstrap intervals
(`lib.eval.metrics.paired_difference`, `paired_auroc_difference`). `record`
gathers the numbers for results/05_transfer_learning.json.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from lib.config import CNNConfig
from lib.data import ANOMALY, CLASS_NAMES
from lib.data.digits import load_digits, upscale_pad
from lib.data.replica import FOREIGN, pad
from lib.detect import Mahalanobis, MaxSoftmax
from lib.eval import metrics
from lib.experiments.classification import Split, label_subset, linear_probe, split_labeled
from lib.nn.infer import batched
from lib.nn.registry import build
from lib.results import plain
from lib.train.runs import contrastive_cnn, train_cnn

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


def digits_source() -> SourcePool:
    """scikit-learn's bundled handwritten digits (1,797 images, 8x8, 16 grey levels) as a 10-way source."""
    images, labels = load_digits()
    x = upscale_pad(images, max_value=16.0)
    return SourcePool(x, labels, tuple(str(d) for d in range(10)), len(x), 0)


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, held-out) indices of range(n); the held-out part has round(fraction * n) items."""
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(fraction * n))
    return np.sort(order[cut:]), np.sort(order[:cut])


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


# --------------------------------------------------------------------------- the study of notebook 05

ORIGINS = ("foreign", "corrupted")  # the answer key's two kinds of anomaly
SOURCES = ("scratch", "foreign_contrastive", "foreign_supervised", "digits")


@dataclass(frozen=True)
class Evaluation:
    """What every source is measured on: the labeled split (label budgets are drawn from its training part,
    the validation part is monitored), the images accuracy is measured on, and representative set 1."""

    split: Split
    x: np.ndarray  # accuracy images: a sample of the unlabeled set (answer key), else set 1's clean images
    y: np.ndarray
    on_unlabeled: bool  # x is a sample of the unlabeled images (else set 1's clean images)
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
        x, y = data.unlabeled[pick], answer_key["unlabeled_class"][pick]
    else:
        clean = data.rep1_y != ANOMALY
        x, y = data.rep1_x[clean], data.rep1_y[clean]
    budgets = [b for b in settings.budgets if b < len(split.y_train)] + [len(split.y_train)]
    origin = answer_key["rep1_origin"][: len(data.rep1_y)] if answer_key is not None else None
    return Evaluation(split, x, y, answer_key is not None, data.rep1_x, data.rep1_y, origin, budgets,
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
    """The pretrained networks of the study and what their pretraining cost."""

    models: dict[str, nn.Module | None]  # key -> network whose backbone is copied (None: from scratch), in
    #                                      SOURCES order, only the sources of this run
    info: dict[str, dict]  # key -> {"images", "epochs", "seconds"} (+ "heldout" for supervised sources)


def network(ctx, n_classes: int = 5) -> CNNConfig:
    """The shipped network without its decoder (it never changes the backbone), with `n_classes` outputs."""
    return replace(ctx.profile.model.network, decoder=False, n_classes=n_classes)


def pretrain_sources(ctx, foreign: SourcePool, digits: SourcePool) -> Sources:
    """Pretrain (or load) every source."""
    data, settings, seed, recipe = ctx.data, ctx.profile.transfer, ctx.seed, ctx.profile.transfer.contrastive
    models, info = {"scratch": None}, {}
    images = foreign.x[: len(data.unlabeled)]  # as many foreign images as we have unlabeled ones
    result = contrastive_cnn(network(ctx), recipe, images, ctx.checkpoints, "transfer_foreign_contrastive", seed,
                             settings.temperature, device=ctx.device, progress=False)
    models["foreign_contrastive"] = result.model
    info["foreign_contrastive"] = {"epochs": recipe.epochs, "seconds": result.seconds, "images": len(images)}
    for key, pool, fraction in (("foreign_supervised", foreign, settings.foreign_holdout),
                                ("digits", digits, settings.source_holdout)):
        fit, held = holdout_split(len(pool.x), fraction, seed)
        result = train_cnn(network(ctx, len(pool.class_names)), settings.source, pool.x[fit], pool.y[fit],
                           ctx.checkpoints, f"transfer_{key}", seed, device=ctx.device, progress=False)
        models[key] = result.model
        info[key] = {"epochs": settings.source.steps * settings.source.batch / len(fit), "seconds": result.seconds,
                     "images": len(fit),
                     "heldout": float((batched(result.model, pool.x[held]).argmax(1) == pool.y[held]).mean())}
    return Sources({k: models[k] for k in SOURCES if k in models}, info)


def probe_sources(ctx, sources: Sources, ev: Evaluation) -> dict:
    """(source, budget) -> accuracy with interval of a linear head on the frozen ten-dimensional description.

    For "scratch" the network is the random initialisation that fine-tuning starts from.
    """
    torch.manual_seed(ctx.seed)  # the random start of the from-scratch runs (`train_cnn` seeds the same way)
    init = build(network(ctx)).to(ctx.device).eval()
    accuracy = {}
    for k, model in sources.models.items():
        frozen = model if model is not None else init
        z_fit, z_test = description(frozen, ev.split.x_train), description(frozen, ev.x)
        for b, subset in ev.subsets.items():
            head = linear_probe(z_fit[subset], ev.split.y_train[subset], ctx.seed)
            accuracy[(k, b)] = metrics.metric_with_ci(metrics.accuracy, ev.y, head.predict(z_test),
                                                      n_resamples=ctx.profile.bootstrap, seed=ctx.seed)
    return accuracy


def description(model, images: np.ndarray) -> np.ndarray:
    return batched(model.outputs, images)["z"]


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


def finetune_grid(ctx, sources: Sources, ev: Evaluation) -> dict[tuple[str, int], Run]:
    """Fine-tune every source at every label budget with the same schedule, and evaluate each run.

    Anomaly scores on set 1: the Mahalanobis distance of the description to the nearest class Gaussian, fitted
    on the run's own labeled training images, and the negative maximum softmax probability.
    """
    settings, n_resamples, seed = ctx.profile.transfer, ctx.profile.bootstrap, ctx.seed
    clean1 = ev.rep1_y != ANOMALY
    runs = {}
    for budget, subset in ev.subsets.items():
        xs, ys = ev.split.x_train[subset], ev.split.y_train[subset]
        for k, model in sources.models.items():
            result = train_cnn(network(ctx), settings.finetune, xs, ys, ctx.checkpoints, f"transfer_ft_{k}_{budget}",
                               seed, init=model, device=ctx.device, progress=False)
            net = result.model
            detector = Mahalanobis().fit(description(net, xs), ys, n_classes=len(CLASS_NAMES))
            rep1 = batched(net.outputs, ev.rep1_x)
            scores = {"mahalanobis": detector.score(rep1["z"]), "msp": MaxSoftmax().score(rep1["logits"])}
            predicted = batched(net, ev.x).argmax(1)
            runs[(k, budget)] = Run(
                k, budget, predicted == ev.y,
                metrics.metric_with_ci(metrics.accuracy, ev.y, predicted, n_resamples=n_resamples, seed=seed),
                float((rep1["logits"][clean1].argmax(1) == ev.rep1_y[clean1]).mean()),
                float((batched(net, ev.split.x_val).argmax(1) == ev.split.y_val).mean()), float(result.seconds),
                scores, {score: auroc_by_origin(values, ev.rep1_y, ev.rep1_origin, n_resamples=n_resamples, seed=seed)
                         for score, values in scores.items()})
    return runs


def accuracy_gains(runs: dict[tuple[str, int], Run], n_resamples: int, seed: int) -> dict[tuple[str, int], dict]:
    """(source, budget) -> fine-tuned accuracy minus training from scratch, paired on the evaluation images."""
    return {(k, b): metrics.paired_difference(run.correct, runs[("scratch", b)].correct, n_resamples=n_resamples,
                                              seed=seed)
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
        gains[(k, "all", b)] = metrics.paired_auroc_difference(ours, scratch, is_anomaly, n_resamples=n_resamples,
                                                               seed=seed)
        if ev.rep1_origin is None or b != ev.budgets[-1]:
            continue
        for kind in ORIGINS:
            members = (ev.rep1_origin == kind) | ~is_anomaly
            if (ev.rep1_origin == kind).any():
                gains[(k, kind, b)] = metrics.paired_auroc_difference(ours[members], scratch[members],
                                                                      is_anomaly[members], n_resamples=n_resamples,
                                                                      seed=seed)
    return gains


def anomaly_kinds(runs: dict[tuple[str, int], Run], budget: int) -> list[str]:
    """The anomaly groups measured: "all", and "foreign" and "corrupted" with the answer key."""
    measured = runs[("scratch", budget)].auroc["mahalanobis"]
    return [kind for kind in ("all", *ORIGINS) if kind in measured]


def accuracy_curves(probe: dict, runs: dict[tuple[str, int], Run], gains: dict, budgets: list[int]
                    ) -> tuple[dict, dict, dict]:
    """Per source, results per budget: frozen linear head, fine-tuned, fine-tuned minus scratch (pretrained
    sources only), for `plots.transfer_accuracy`."""
    keys = [k for k in SOURCES if (k, budgets[0]) in runs]
    return ({k: [probe[(k, b)] for b in budgets] for k in keys},
            {k: [runs[(k, b)].accuracy for b in budgets] for k in keys},
            {k: [gains[(k, b)] for b in budgets] for k in keys if k != "scratch"})


def ood_curves(runs: dict[tuple[str, int], Run], budgets: list[int]) -> tuple[dict, dict, list[str]]:
    """Per source: Mahalanobis AUROC (all anomalies) per budget, and per anomaly kind at the largest budget
    (the kinds shown: foreign and corrupted with the answer key, else all), for `plots.transfer_ood`."""
    keys = [k for k in SOURCES if (k, budgets[0]) in runs]
    shown = [kind for kind in anomaly_kinds(runs, budgets[-1]) if kind != "all"] or ["all"]
    return ({k: [runs[(k, b)].auroc["mahalanobis"]["all"] for b in budgets] for k in keys},
            {k: [runs[(k, budgets[-1])].auroc["mahalanobis"][kind] for kind in shown] for k in keys}, shown)


def record(ctx, ev: Evaluation, foreign: SourcePool, digits: SourcePool, sources: Sources, probe: dict,
           runs: dict[tuple[str, int], Run], gains: dict, auroc_gain: dict, seconds_total: float) -> dict:
    """Everything notebook 05 measured, for results/05_transfer_learning.json."""
    origin = ev.rep1_origin
    return plain({
        "profile": ctx.profile.name, "seed": ctx.seed,
        "architecture": asdict(network(ctx)),
        "evaluated_on": {"unlabeled": ev.on_unlabeled, "images": len(ev.y)},
        "budgets": ev.budgets, "settings": asdict(ctx.profile.transfer),
        "leakage_filter": {"foreign_candidates": foreign.n_candidates, "excluded": foreign.n_excluded,
                           "used": len(foreign.x)},
        "sources_order": list(SOURCES),
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
