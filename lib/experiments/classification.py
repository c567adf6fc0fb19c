"""What notebook 03 studies: few-label classifiers, all evaluated on the same images in one run (label splits,
the comparison networks, linear probes on frozen embeddings, stacking, the oracle, the label-efficiency curve,
speed), the plain baseline, and the project's model without and with the unlabeled images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
import torch
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lib.data import ANOMALY
from lib.eval import metrics
from lib.nn.infer import batched
from lib.nn.registry import count_parameters
from lib.results import Estimate, plain
from lib.train import checkpoint
from lib.train.loop import TrainResult
from lib.train.runs import finetune, train_cnn, validation


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


# --------------------------------------------------------------------------- the data of the study


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


def reference_set(eval_sets: dict) -> str:
    """The set the chosen model's figures are drawn on: the unlabeled images with the answer key, else set 2's
    clean images."""
    return "unlabeled" if "unlabeled" in eval_sets else "rep2_clean"


def load_pretrained(ctx) -> dict[str, torch.nn.Module]:
    """Notebook 02's contrastive model and autoencoders, from the folders its results name."""
    folders = ctx.ws.read_results("02_pretraining")["checkpoints"]
    return {name: checkpoint.load_model(ctx.ws.path(folders[name]), ctx.device)
            for name in ("contrastive", "conv_ae", "vae")}


# --------------------------------------------------------------------------- the comparison networks

NETWORKS = ("supervised_cnn", "contrastive_finetuned", "auxiliary", "contrastive_fixmatch")
FROM_CONTRASTIVE = ("contrastive_finetuned", "contrastive_fixmatch")  # start from notebook 02's encoder
STACKING_MEMBERS = ("supervised_cnn", "contrastive_probe", "auxiliary")


def network_settings(settings) -> dict:
    """id -> the `Finetune` settings of each comparison network (`settings`: the profile's `classification`)."""
    return {"supervised_cnn": settings.supervised, "contrastive_finetuned": settings.contrastive_finetuned,
            "auxiliary": settings.auxiliary, "contrastive_fixmatch": settings.fixmatch}


def train_networks(ctx, split: Split, contrastive) -> dict[str, TrainResult]:
    """Train (or load) every comparison network on the training split."""
    encoder = ctx.profile.pretraining.contrastive.network
    trained = {}
    for name, settings in network_settings(ctx.profile.classification).items():
        uses_unlabeled = settings.unlabeled_ratio > 0 or settings.recon_weight > 0
        trained[name] = finetune(settings, encoder, split.x_train, split.y_train, ctx.checkpoints, name, ctx.seed,
                                 unlabeled=ctx.data.unlabeled if uses_unlabeled else None,
                                 pretrained=contrastive if name in FROM_CONTRASTIVE else None,
                                 evaluate=validation(split.x_val, split.y_val), device=ctx.device)
    return trained


def train_baseline(ctx) -> TrainResult:
    """The plain supervised CNN on all 2,000 labels: the reference to beat."""
    settings = ctx.profile.baseline
    return train_cnn(settings.network, settings.training, ctx.data.labeled_x, ctx.data.labeled_y, ctx.checkpoints,
                     "baseline", ctx.seed, device=ctx.device)


def clean_set1(data) -> tuple[np.ndarray, np.ndarray]:
    """Representative set 1's clean images and classes (they choose the model's arm)."""
    clean = data.rep1_y != ANOMALY
    return data.rep1_x[clean], data.rep1_y[clean]


# --------------------------------------------------------------------------- every system on the same images


@dataclass(frozen=True)
class System:
    """A classifier in the comparison: probabilities of uint8 images, and what it used."""

    predict: Callable[[np.ndarray], np.ndarray]
    labels: int
    unlabeled_used: str  # how: "none", "all", "pretraining", "pseudo-labels", "as its members", ...
    unlabeled_images: int  # how many unlabeled images that was
    parameters: int
    seconds: float | None  # training time (None: not trained here)


def network_system(result: TrainResult, labels: int, unlabeled_used: str, unlabeled_images: int) -> System:
    model = result.model
    return System(lambda images: softmax(batched(model, images), axis=1), labels, unlabeled_used, unlabeled_images,
                  count_parameters(model), result.seconds)


def probe_probabilities(model, split: Split, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """A linear head on a frozen model's ten-dimensional description, fitted on the training split."""
    head = linear_probe(batched(model.embed, split.x_train), split.y_train, seed)
    return lambda images: head.predict_proba(batched(model.embed, images))


UNLABELED_USE = {"supervised_cnn": "none", "contrastive_finetuned": "pretraining", "auxiliary": "all",
                 "contrastive_fixmatch": "pretraining, pseudo-labels"}


def catalogue(trained: dict[str, TrainResult], pretrained: dict[str, torch.nn.Module], split: Split,
              n_unlabeled: int, seed: int) -> tuple[dict[str, System], Stacking]:
    """Every comparison system: the trained networks, linear probes on the pretrained models, and a stacking
    ensemble whose meta-learner is fitted on the validation split (it reports its cross-validated accuracy)."""
    n = len(split.y_train)
    systems = {name: network_system(result, n, UNLABELED_USE[name], n_unlabeled) for name, result in trained.items()}
    for name, key in (("autoencoder_probe", "conv_ae"), ("vae_probe", "vae"), ("contrastive_probe", "contrastive")):
        systems[name] = System(probe_probabilities(pretrained[key], split, seed), n, "pretraining", n_unlabeled,
                               count_parameters(pretrained[key]), None)
    members = [systems[name] for name in STACKING_MEMBERS]
    stacking = Stacking.fit([member.predict(split.x_val) for member in members], split.y_val, seed)
    systems["stacking"] = System(
        lambda images: stacking.predict_proba([member.predict(images) for member in members]),
        n + len(split.y_val), "as its members", n_unlabeled, sum(member.parameters for member in members),
        sum(member.seconds or 0 for member in members))
    return systems, stacking


def reference_systems(ctx, baseline: TrainResult, arms, chosen: str) -> dict[str, System]:
    """The plain baseline, the oracle (with the answer key: an upper bound, not a candidate) and our model: the
    first seed's network of the chosen arm, the one deployed."""
    n_labels, n_unlabeled = len(ctx.data.labeled_y), len(ctx.data.unlabeled)
    uses = {"labels_only": ("none", 0), "fixmatch": ("pseudo-labels", n_unlabeled)}[chosen]
    systems = {"baseline": network_system(baseline, n_labels, "none", 0)}
    if arms.oracle is not None:
        systems["oracle"] = network_system(arms.oracle, n_labels + n_unlabeled, "all, with true labels", n_unlabeled)
    first = ctx.profile.model.seeds[0]
    systems["model"] = network_system(arms.runs[chosen][first], n_labels, *uses)
    return systems


def gain_over_baseline(probabilities: dict, sets: dict[str, tuple], n_resamples: int, seed: int) -> dict:
    """Our deployed network's accuracy minus the plain baseline's on each set, paired over the same images."""
    return {name: Estimate(**metrics.paired_difference(probabilities["model"][name].argmax(1) == y,
                                                       probabilities["baseline"][name].argmax(1) == y,
                                                       n_resamples=n_resamples, seed=seed))
            for name, (_, y) in sets.items() if name != "validation"}


def system_info(systems: dict[str, System]) -> dict[str, dict]:
    """What each system used, its size and training time (everything but its predictions)."""
    return {name: {"labels": s.labels, "unlabeled_used": s.unlabeled_used, "unlabeled_images": s.unlabeled_images,
                   "parameters": s.parameters, "seconds": s.seconds} for name, s in systems.items()}


def evaluate(systems: dict[str, System], sets: dict[str, tuple], n_resamples: int, seed: int) -> tuple[dict, dict]:
    """(probabilities[name][set], accuracy[name][set] = Estimate) of every system on every set."""
    probabilities = {name: {s: system.predict(x) for s, (x, _) in sets.items()} for name, system in systems.items()}
    accuracy = {name: {s: Estimate(**metrics.metric_with_ci(metrics.accuracy, y, probabilities[name][s].argmax(1),
                                                            n_resamples=n_resamples, seed=seed))
                       for s, (_, y) in sets.items()} for name in systems}
    return probabilities, accuracy


def no_validation_number(accuracy: dict, stacking: Stacking) -> None:
    """Systems trained on the validation split have no validation accuracy; the stacking meta-learner reports its
    cross-validated accuracy there (no interval)."""
    accuracy["stacking"]["validation"] = Estimate(stacking.cv_accuracy)
    for name in ("baseline", "model", "oracle"):
        if name in accuracy:
            accuracy[name]["validation"] = Estimate(None)


def label_efficiency(ctx, split: Split, trained: dict[str, TrainResult], contrastive,
                     eval_set: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """Accuracy on `eval_set` against the number of labels, for the supervised CNN, the fine-tuned encoder and
    FixMatch; shorter schedules than the main runs below the full split (lower bounds), the main runs at it."""
    settings = ctx.profile.classification
    encoder = ctx.profile.pretraining.contrastive.network

    def shorter(finetune_settings, steps):
        return replace(finetune_settings, training=replace(finetune_settings.training, steps=steps))

    methods = {"supervised_cnn": shorter(settings.supervised, settings.curve_steps),
               "contrastive_finetuned": shorter(settings.contrastive_finetuned, settings.curve_steps),
               "contrastive_fixmatch": shorter(settings.fixmatch, settings.curve_fixmatch_steps)}
    budgets = [b for b in settings.budgets if b < len(split.y_train)] + [len(split.y_train)]
    x_eval, y_eval = eval_set
    rows = []
    for budget in budgets:
        subset = label_subset(split.y_train, budget, ctx.seed)
        for method, method_settings in methods.items():
            if budget == len(split.y_train):
                result = trained[method]  # the main run already trained this one
            else:
                result = finetune(method_settings, encoder, split.x_train[subset], split.y_train[subset],
                                  ctx.checkpoints, f"curve_{method}_{budget}", ctx.seed,
                                  unlabeled=ctx.data.unlabeled if method_settings.unlabeled_ratio else None,
                                  pretrained=contrastive if method in FROM_CONTRASTIVE else None,
                                  evaluate=validation(split.x_val, split.y_val), device=ctx.device, progress=False)
            rows.append({"labels": budget, "method": method, "short": method == "contrastive_fixmatch",
                         "accuracy": 100 * metrics.accuracy(y_eval, batched(result.model, x_eval).argmax(1))})
    return pd.DataFrame(rows)


def record(ctx, split: Split, systems: dict[str, System], accuracy: dict, rates: dict, choice, per_seed: dict,
           gains: dict, budgets: dict, curves: dict, pseudo_labels: dict | None, arms, baseline: TrainResult,
           versus_baseline: dict, ece: dict, curve: pd.DataFrame, reference: str) -> dict:
    """The content of results/03_classification.json."""
    model = ctx.profile.model
    return plain({
        "choice": choice, "model_settings": asdict(model),
        "model_checkpoints": {str(seed): ctx.ws.relative(result.folder)
                              for seed, result in arms.runs[choice.chosen].items()},
        "baseline_checkpoint": ctx.ws.relative(baseline.folder),
        "per_seed": per_seed, "seeds": list(model.seeds), "gain_vs_labels_only": gains,
        "passes": budgets, "curves": curves, "pseudo_labels": pseudo_labels, "gain_over_baseline": versus_baseline,
        "split": {"train": len(split.y_train), "validation": len(split.y_val), "seed": ctx.seed},
        "settings": {"fixmatch_steps": ctx.profile.classification.fixmatch.training.steps,
                     "unlabeled_ratio": ctx.profile.classification.fixmatch.unlabeled_ratio,
                     "batch": ctx.profile.classification.supervised.training.batch},
        "systems": system_info(systems),
        "reference_set": reference, "accuracy": accuracy, "images_per_second_cpu": rates, "ece": ece,
        "label_efficiency": curve.to_dict(orient="records"),
    })
