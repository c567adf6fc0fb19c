"""What notebook 03 studies: few-label classifiers, all trained on one split of the labeled set and
evaluated on the same images in one run (label splits, the networks, linear probes on frozen embeddings,
stacking, the oracle, the label-efficiency curve, speed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lib.data import ANOMALY
from lib.eval import metrics
from lib.experiments.names import (
    CONTRASTIVE_PROBE,
    MODEL_SELF_TRAINED,
    MODEL_SUPERVISED,
    STACKING,
    SUPERVISED,
    VAE_PROBE,
)
from lib.nn.cnn import train_plain_cnn
from lib.nn.finetune import FinetuneConfig, FitResult, fit_classifier, predict_logits
from lib.nn.models import apply_batched, count_parameters, encode
from lib.nn.multihead import network_outputs, pseudo_labels, train_multihead
from lib.render.variables import mean_std


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) with every class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        cut = int(round(val_fraction * len(members)))
        val.append(members[:cut])
        train.append(members[cut:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def label_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` indices, balanced over classes as far as possible (for label-efficiency curves)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    chosen = [members[: n // len(classes) + (i < n % len(classes))] for i, members in enumerate(per_class)]
    return np.sort(np.concatenate(chosen))


def linear_probe(z_train: np.ndarray, y_train: np.ndarray, seed: int):
    """Standardise, then multinomial logistic regression: the head on a frozen embedding."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    return probe.fit(z_train, y_train)


@dataclass
class Stacking:
    """A meta-learner on the base models' class probabilities, trained on held-out predictions only.

    The base models are trained on the training split and frozen; the meta-learner
    sees their predictions on the validation split, which none of them trained on.
    """

    meta: object
    cv_accuracy: float  # cross-validated accuracy of the meta-learner on the validation split

    @classmethod
    def fit(cls, val_probs: list[np.ndarray], val_y: np.ndarray, seed: int) -> Stacking:
        features = np.log(np.clip(np.concatenate(val_probs, axis=1), 1e-6, 1.0))
        meta = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, random_state=seed))
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        cv_pred = cross_val_predict(meta, features, val_y, cv=folds)
        return cls(meta.fit(features, val_y), float((cv_pred == val_y).mean()))

    def predict_proba(self, probs: list[np.ndarray]) -> np.ndarray:
        return self.meta.predict_proba(np.log(np.clip(np.concatenate(probs, axis=1), 1e-6, 1.0)))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def inference_rate(predict, images: np.ndarray, threads: int = 2, repeats: int = 3) -> float:
    """Images per second of `predict(images)` on the CPU with `threads` threads (best of `repeats`)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        predict(images[:256])  # warm-up: first-call allocation and kernel selection
        best = min(_timed(predict, images) for _ in range(repeats))
    finally:
        torch.set_num_threads(previous)
    return len(images) / best


def _timed(function, argument) -> float:
    start = time.perf_counter()
    function(argument)
    return time.perf_counter() - start


# --------------------------------------------------------------------------- the study of notebook 03

# Networks trained by the fine-tuning loop: name in tables -> checkpoint folder under checkpoints/<profile>/
NETWORKS = {SUPERVISED: "clf_supervised", "contrastive, fine-tuned": "clf_contrastive_finetuned",
            "auxiliary (classification + reconstruction)": "clf_auxiliary",
            "contrastive + FixMatch": "clf_contrastive_fixmatch"}
STACKING_MEMBERS = (SUPERVISED, CONTRASTIVE_PROBE, "auxiliary (classification + reconstruction)")


@dataclass(frozen=True)
class Split:
    """The labeled set split once, stratified: training part and validation part (it chooses the model)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def split_labeled(data, validation_fraction: float, seed: int) -> Split:
    train, val = stratified_split(data.labeled_y, validation_fraction, seed)
    return Split(data.labeled_x[train], data.labeled_y[train], data.labeled_x[val], data.labeled_y[val])


def evaluation_sets(data, answer_key: dict | None, split: Split) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """validation (chooses), clean part of set 2, and the unlabeled images when the answer key exists."""
    clean = data.rep2_y != ANOMALY
    sets = {"validation": (split.x_val, split.y_val), "rep2_clean": (data.rep2_x[clean], data.rep2_y[clean])}
    if answer_key is not None:
        sets["unlabeled"] = (data.unlabeled, answer_key["unlabeled_class"])
    return sets


def finetune_config(settings, seed: int, steps: int, **changes) -> FinetuneConfig:
    """The fine-tuning loop's configuration from the profile's `classification` settings."""
    values = dict(steps=steps, batch_size=settings.batch, lr=settings.lr, weight_decay=settings.weight_decay,
                  weak=settings.weak, strong=settings.strong, confidence=settings.confidence,
                  eval_every=settings.eval_every, seed=seed)
    return FinetuneConfig(**{**values, **changes})


def network_configs(settings, seed: int) -> dict[str, tuple[FinetuneConfig, bool, bool]]:
    """name -> (configuration, starts from the contrastive encoder, uses the unlabeled images)."""
    base = finetune_config(settings, seed, settings.supervised_steps)
    pretrained = replace(base, backbone_lr_factor=settings.backbone_lr_factor)
    return {
        SUPERVISED: (base, False, False),
        "contrastive, fine-tuned": (pretrained, True, False),
        "auxiliary (classification + reconstruction)": (replace(base, recon_weight=settings.recon_weight), False, True),
        "contrastive + FixMatch": (replace(pretrained, steps=settings.fixmatch_steps,
                                           unlabeled_ratio=settings.unlabeled_ratio), True, True),
    }


def train_networks(ctx, split: Split, contrastive, architecture) -> dict[str, FitResult]:
    """Train (or load) every network of `network_configs` on the training split."""
    trained = {}
    for name, (config, from_contrastive, uses_unlabeled) in network_configs(ctx.profile.classification,
                                                                              ctx.seed).items():
        trained[name] = fit_classifier(
            config, architecture, split.x_train, split.y_train, split.x_val, split.y_val,
            ctx.ws.checkpoints(ctx.profile.name, NETWORKS[name]),
            unlabeled=ctx.data.unlabeled if uses_unlabeled else None,
            pretrained=contrastive if from_contrastive else None, device=ctx.device)
    return trained


def train_oracle(ctx, split: Split, contrastive, architecture) -> FitResult:
    """The same architecture from the contrastive encoder, trained with every label (the answer key's too):
    an upper bound, evaluated out of sample, never a candidate."""
    settings = ctx.profile.classification
    config = finetune_config(settings, ctx.seed, settings.oracle_steps, batch_size=settings.oracle_batch,
                             backbone_lr_factor=settings.backbone_lr_factor)
    return fit_classifier(config, architecture, np.concatenate([split.x_train, ctx.data.unlabeled]),
                          np.concatenate([split.y_train, ctx.answer_key["unlabeled_class"]]), split.x_val,
                          split.y_val, ctx.ws.checkpoints(ctx.profile.name, "clf_oracle"), pretrained=contrastive,
                          device=ctx.device)


def train_baseline(ctx):
    """The plain supervised CNN of DESIGN §5 on all 2,000 labels (lib.nn.cnn): the reference to beat."""
    return train_plain_cnn(ctx.data.labeled_x, ctx.data.labeled_y, ctx.profile.baseline,
                           ctx.ws.checkpoints(ctx.profile.name, "baseline_cnn"), ctx.seed, ctx.device)


MODEL_FOLDERS = {MODEL_SUPERVISED: "model_supervised", MODEL_SELF_TRAINED: "model_self_trained"}


def model_folder_name(variant: str, seed: int) -> str:
    """The checkpoint folder (under checkpoints/<profile>/) of one variant's network of one seed."""
    return f"{MODEL_FOLDERS[variant]}_seed{seed}"


def model_folder(ctx, variant: str, seed: int):
    return ctx.ws.checkpoints(ctx.profile.name, model_folder_name(variant, seed))


def train_model_variants(ctx) -> tuple[dict[str, dict], dict]:
    """The project's model (lib.nn.multihead) in both variants, each with every seed of `model.seeds` and the
    same number of steps: on the 2,000 labels alone, and self-trained on the labels plus the unlabeled images
    that the first seed's labels-only network labels with confidence >= `model.pseudo_confidence`.
    Returns ({variant: {seed: TrainResult}}, the pseudo-labels {"index", "label"})."""
    data, settings = ctx.data, ctx.profile.model
    runs = {MODEL_SUPERVISED: {seed: train_multihead(data.labeled_x, data.labeled_y, settings,
                                                     model_folder(ctx, MODEL_SUPERVISED, seed), seed, ctx.device)
                               for seed in settings.seeds}}
    teacher = runs[MODEL_SUPERVISED][settings.seeds[0]].model
    index, labels = pseudo_labels(network_outputs(teacher, data.unlabeled)["logits"], settings.pseudo_confidence)
    x, y = np.concatenate([data.labeled_x, data.unlabeled[index]]), np.concatenate([data.labeled_y, labels])
    runs[MODEL_SELF_TRAINED] = {seed: train_multihead(x, y, settings, model_folder(ctx, MODEL_SELF_TRAINED, seed),
                                                      seed, ctx.device) for seed in settings.seeds}
    return runs, {"index": index, "label": labels}


def model_system(result, labels: int, unlabeled_used: str) -> System:
    return System(lambda images: softmax(network_outputs(result.model, images)["logits"]), labels, unlabeled_used,
                  count_parameters(result.model), result.seconds)


def seed_accuracy(runs: dict[str, dict], sets: dict[str, tuple]) -> dict[str, dict[str, list[float]]]:
    """accuracy[variant][set] = one value per seed."""
    return {variant: {name: [metrics.accuracy(y, network_outputs(result.model, x)["logits"].argmax(1))
                             for result in by_seed.values()] for name, (x, y) in sets.items()}
            for variant, by_seed in runs.items()}


SEED_SETS = {"rep1_clean": "set 1 clean (chooses)", "unlabeled": "unlabeled 26,000", "rep2_clean": "set 2 clean"}


def seed_table(per_seed: dict[str, dict[str, list[float]]], chosen: str) -> pd.DataFrame:
    """Accuracy (%) of each variant as mean ± standard deviation over seeds, per set."""
    return pd.DataFrame([{"variant": variant + (" (chosen)" if variant == chosen else ""),
                          "seeds": len(next(iter(by_set.values()))),
                          **{title: mean_std(by_set[name], 2, 100)
                             for name, title in SEED_SETS.items() if name in by_set}}
                         for variant, by_set in per_seed.items()])


@dataclass(frozen=True)
class System:
    """A classifier in the comparison: probabilities of uint8 images, and what it used."""

    predict: Callable[[np.ndarray], np.ndarray]
    labels: int
    unlabeled_used: str
    parameters: int
    seconds: float | None  # training time (None: not trained here)


def network_probabilities(result: FitResult) -> Callable[[np.ndarray], np.ndarray]:
    return lambda images: softmax(predict_logits(result.model, images))


def baseline_system(result, n_labels: int) -> System:
    model = result.model.eval()
    device = next(model.parameters()).device
    return System(lambda images: softmax(apply_batched(model, images, device)), n_labels, "none",
                  count_parameters(model), result.seconds)


def probe_probabilities(model, split: Split, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A linear head on a frozen model's ten-dimensional description, fitted on the training split."""
    head = linear_probe(encode(model, split.x_train), split.y_train, seed)
    return lambda images: head.predict_proba(encode(model, images))


def catalogue(trained: dict[str, FitResult], pretrained: dict[str, torch.nn.Module], split: Split,
              n_unlabeled: int, seed: int) -> tuple[dict[str, System], Stacking]:
    """Every candidate system: the trained networks, linear probes on the pretrained models, and a stacking
    ensemble whose meta-learner is fitted on the validation split (it reports its cross-validated accuracy)."""
    n = len(split.y_train)
    used = {SUPERVISED: "none", "contrastive, fine-tuned": f"{n_unlabeled:,} (pretraining)",
            "auxiliary (classification + reconstruction)": f"{n_unlabeled:,}",
            "contrastive + FixMatch": f"{n_unlabeled:,} (pretraining, pseudo-labels)"}
    systems = {name: System(network_probabilities(result), n, used[name], count_parameters(result.model),
                            result.seconds) for name, result in trained.items()}
    for name, key in (("autoencoder + linear head", "conv_ae"), (VAE_PROBE, "vae"),
                      (CONTRASTIVE_PROBE, "contrastive")):
        systems[name] = System(probe_probabilities(pretrained[key], split, seed), n, f"{n_unlabeled:,} (pretraining)",
                               count_parameters(pretrained[key]), None)
    members = [systems[name] for name in STACKING_MEMBERS]
    stacking = Stacking.fit([member.predict(split.x_val) for member in members], split.y_val, seed)
    systems[STACKING] = System(
        lambda images: stacking.predict_proba([member.predict(images) for member in members]),
        n + len(split.y_val), "as its members", sum(member.parameters for member in members),
        sum(member.seconds or 0 for member in members))
    return systems, stacking


def evaluate(systems: dict[str, System], sets: dict[str, tuple], n_resamples: int, seed: int) -> tuple[dict, dict]:
    """(probabilities[name][set], accuracy[name][set] = {"value", "ci"}) of every system on every set."""
    probabilities = {name: {s: system.predict(x) for s, (x, _) in sets.items()} for name, system in systems.items()}
    accuracy = {name: {s: metrics.metric_with_ci(metrics.accuracy, y, probabilities[name][s].argmax(1),
                                                 n_resamples=n_resamples, seed=seed)
                       for s, (_, y) in sets.items()} for name in systems}
    return probabilities, accuracy


def comparison_table(systems: dict[str, System], accuracy: dict, rates: dict[str, float], chosen: str) -> pd.DataFrame:
    """The classification table of the report: accuracy per set, what each system used, size and speed."""
    columns = (("unlabeled", "unlabeled 26,000"), ("rep2_clean", "set 2 clean"))

    def cell(result, interval):
        if result["value"] is None:
            return "-"
        if result["ci"] is None:
            return f"{100 * result['value']:.1f} (CV)"
        if not interval:
            return f"{100 * result['value']:.1f}"
        low, high = result["ci"]
        return f"{100 * result['value']:.2f} [{100 * low:.1f}, {100 * high:.1f}]"

    return pd.DataFrame([{
        "model": name + (" (chosen)" if name == chosen else ""),
        **{title: cell(accuracy[name][s], s != "validation") for s, title in columns if s in accuracy[name]},
        "labels": f"{system.labels:,}", "unlabeled used": system.unlabeled_used,
        "parameters": f"{system.parameters:,}", "ms": f"{1e6 / rates[name]:.0f}",
        "train s": "-" if system.seconds is None else f"{system.seconds:.0f}",
    } for name, system in systems.items()])


def label_efficiency(ctx, split: Split, trained: dict[str, FitResult], contrastive, architecture,
                     eval_set: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """Accuracy on `eval_set` against the number of labels, for the supervised CNN, the fine-tuned encoder and
    FixMatch; shorter schedules than the main runs below the full split (lower bounds), the main runs at it."""
    settings = ctx.profile.classification
    configs = network_configs(settings, ctx.seed)
    methods = {SUPERVISED: replace(configs[SUPERVISED][0], steps=settings.curve_steps),
               "contrastive, fine-tuned": replace(configs["contrastive, fine-tuned"][0], steps=settings.curve_steps),
               "contrastive + FixMatch": replace(configs["contrastive + FixMatch"][0],
                                                 steps=settings.curve_fixmatch_steps)}
    budgets = [b for b in settings.budgets if b < len(split.y_train)] + [len(split.y_train)]
    x_eval, y_eval = eval_set
    rows = []
    for budget in budgets:
        subset = label_subset(split.y_train, budget, ctx.seed)
        for number, (method, config) in enumerate(methods.items()):
            if budget == len(split.y_train):
                result = trained[method]  # the main run already trained this one
            else:
                result = fit_classifier(
                    config, architecture, split.x_train[subset], split.y_train[subset], split.x_val, split.y_val,
                    ctx.ws.checkpoints(ctx.profile.name, f"curve_{number}_{budget}"),
                    unlabeled=ctx.data.unlabeled if config.unlabeled_ratio else None,
                    pretrained=contrastive if method != SUPERVISED else None, device=ctx.device,
                    progress=False)
            label = method + (" (short)" if method == "contrastive + FixMatch" else "")
            rows.append({"labels": budget, "method": label,
                         "accuracy": 100 * metrics.accuracy(y_eval, predict_logits(result.model, x_eval).argmax(1))})
    return pd.DataFrame(rows)
