"""The project's model (notebook 03): one network of the CNN family, trained in two arms that differ only in what
they learn from, so that what the 26,000 unlabeled images add is measured in one run.

- `labels_only`: the 2,000 labels alone, every seed of `model.seeds`, with its learning curve;
- `fixmatch`: each seed's labels-only network continued by FixMatch on the 26,000 unlabeled images (an EMA
  teacher's confident pseudo-labels of weak views, learned on strong views), with its learning curve;
- `oracle`: the first seed's labels-only network continued with the answer key's true classes of all 28,000
  images: a ceiling, out of sample on set 2's clean images, never a candidate.
Each arm is trained on its own schedule (`lib.config.Model`); the choice between them is
`lib.eval.protocol.choose_variant` on set 1's clean images. The learning curves are measured on set 1's clean
images and on a fixed sample of the unlabeled images (answer key): shown, never used for a choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import softmax

from lib.eval import metrics, protocol
from lib.nn.infer import batched
from lib.results import MODEL_ARMS, Estimate
from lib.train.loop import TrainResult
from lib.train.runs import fixmatch_cnn, train_cnn

SIMPLER = "labels_only"
CANDIDATES = [arm for arm in MODEL_ARMS if arm != SIMPLER]


@dataclass
class Arms:
    runs: dict[str, dict[int, TrainResult]]  # arm -> seed -> trained network
    oracle: TrainResult | None = None  # with the answer key only


def curve_sets(ctx, rep1_clean: tuple) -> dict[str, tuple]:
    """The images of the learning curves: set 1's clean images and, with the answer key, a fixed sample of
    `model.curve_images` unlabeled images."""
    sets = {"rep1_clean": rep1_clean}
    if ctx.answer_key is not None:
        n = min(ctx.profile.model.curve_images, len(ctx.data.unlabeled))
        pick = np.sort(np.random.default_rng(ctx.seed).choice(len(ctx.data.unlabeled), n, replace=False))
        sets["unlabeled"] = (ctx.data.unlabeled[pick], ctx.answer_key["unlabeled_class"][pick])
    return sets


def accuracy_on(sets: dict[str, tuple]):
    """An `evaluate` for the training loop: the accuracy on every set at every record."""

    def evaluate(model, steps):
        return {f"accuracy_{name}": metrics.accuracy(y, batched(model, x).argmax(1)) for name, (x, y) in sets.items()}

    return evaluate


def train_arms(ctx, curves: dict[str, tuple]) -> Arms:
    """Train (or load) every arm with every seed, recording accuracy on `curves` (`curve_sets`) as they train."""
    data, settings = ctx.data, ctx.profile.model
    evaluate = accuracy_on(curves)

    def labels_only(seed):
        return train_cnn(settings.network, settings.labels_only, data.labeled_x, data.labeled_y, ctx.checkpoints,
                         f"model_labels_only_seed{seed}", seed, settings.reconstruction_weight, evaluate=evaluate,
                         every_epochs=settings.curve_every, device=ctx.device)

    runs = {"labels_only": {seed: labels_only(seed) for seed in settings.seeds}}
    runs["fixmatch"] = {seed: fixmatch_cnn(settings.network, settings.fixmatch, data.labeled_x, data.labeled_y,
                                           data.unlabeled, ctx.checkpoints, f"model_fixmatch_seed{seed}", seed,
                                           settings.reconstruction_weight, runs["labels_only"][seed].model,
                                           evaluate=evaluate, device=ctx.device)
                        for seed in settings.seeds}
    oracle = None
    if ctx.answer_key is not None:
        first = settings.seeds[0]
        x_all = np.concatenate([data.labeled_x, data.unlabeled])
        truth = np.concatenate([data.labeled_y, ctx.answer_key["unlabeled_class"]])
        oracle = train_cnn(settings.network, settings.oracle, x_all, truth, ctx.checkpoints,
                           f"model_oracle_seed{first}", first, settings.reconstruction_weight,
                           init=runs["labels_only"][first].model, device=ctx.device)
    return Arms(runs, oracle)


def learning_curves(arms: Arms) -> dict[str, list[dict]]:
    """curves[arm]: one row per record of every seed's run: seed, passes over the images the arm iterates over
    (the labels; FixMatch: the unlabeled images, from 0, the labels-only network it continues) and the accuracy
    on each curve set."""

    def row(seed, epoch, record):
        return {"seed": seed, "epoch": epoch,
                **{k.removeprefix("accuracy_"): v for k, v in record.items() if k.startswith("accuracy_")}}

    curves = {arm: [row(seed, h["epoch"], h) for seed, result in by_seed.items() for h in result.history]
              for arm, by_seed in arms.runs.items()}
    starts = [row(seed, 0, result.history[-1]) for seed, result in arms.runs["labels_only"].items()]
    curves["fixmatch"] = sorted(starts + curves["fixmatch"], key=lambda r: (r["seed"], r["epoch"]))
    return curves


def pseudo_labels(arms: Arms, unlabeled: np.ndarray, answer_key: dict | None, confidence: float) -> dict | None:
    """The first seed's FixMatch teacher at the end of training on the unlabeled images: the share whose top
    probability reaches the threshold, and the accuracy of those pseudo-labels (answer key; None without)."""
    if answer_key is None:
        return None
    probs = softmax(batched(next(iter(arms.runs["fixmatch"].values())).model, unlabeled), axis=1)
    confident = probs.max(1) >= confidence
    right = answer_key["unlabeled_class"][confident] == probs.argmax(1)[confident]
    return {"confident_fraction": float(confident.mean()), "accuracy": float(right.mean()) if right.size else None}


def predictions(arms: Arms, sets: dict[str, tuple]) -> dict[str, dict[int, dict[str, np.ndarray]]]:
    """predicted[arm][seed][set]: the predicted class of every image of each set."""
    return {arm: {seed: {name: batched(result.model, x).argmax(1) for name, (x, _) in sets.items()}
                  for seed, result in by_seed.items()} for arm, by_seed in arms.runs.items()}


def seed_accuracy(predicted: dict, sets: dict[str, tuple]) -> dict[str, dict[str, list[float]]]:
    """accuracy[arm][set] = one value per seed."""
    return {arm: {name: [metrics.accuracy(y, by_set[name]) for by_set in by_seed.values()]
                  for name, (_, y) in sets.items()} for arm, by_seed in predicted.items()}


def choose(per_seed: dict):
    """The arm that is the model: a candidate that uses the unlabeled images only if it beats the labels-only arm
    on set 1's clean images by more than the seed spread."""
    return protocol.choose_variant(per_seed, SIMPLER, CANDIDATES)


def seed_mean_correct(predicted: dict, arm: str, set_name: str, y: np.ndarray) -> np.ndarray:
    """Per image, the share of the arm's seeds that classify it correctly."""
    return np.mean([by_set[set_name] == y for by_set in predicted[arm].values()], axis=0)


def gains(predicted: dict, sets: dict[str, tuple], n_resamples: int, seed: int) -> dict[str, dict[str, Estimate]]:
    """gain[arm][set]: the arm's seed-mean accuracy minus the labels-only arm's, with a paired bootstrap interval
    over the same images."""
    out = {}
    for arm in CANDIDATES:
        out[arm] = {name: Estimate(**metrics.paired_difference(seed_mean_correct(predicted, arm, name, y),
                                                               seed_mean_correct(predicted, SIMPLER, name, y),
                                                               n_resamples=n_resamples, seed=seed))
                    for name, (_, y) in sets.items() if name != "rep1_clean"}
    return out


def budgets(arms: Arms, settings, n_labeled: int, n_unlabeled: int) -> dict[str, dict[str, float]]:
    """Per arm, the passes over each labeled and each unlabeled image in training, counting those of the
    labels-only network an arm continues, the images seen in all, and the training seconds per seed (mean)."""
    labels = settings.labels_only.epochs
    fixmatch = settings.fixmatch
    steps_per_pass = n_unlabeled // min(fixmatch.training.batch, n_unlabeled)
    fixmatch_labeled = fixmatch.training.epochs * steps_per_pass * fixmatch.labeled_batch / n_labeled
    passes = {"labels_only": (labels, 0.0), "fixmatch": (labels + fixmatch_labeled, fixmatch.training.epochs)}
    seconds = {arm: float(np.mean([r.seconds for r in by_seed.values()])) for arm, by_seed in arms.runs.items()}
    seconds["fixmatch"] += seconds["labels_only"]
    if arms.oracle is not None:
        oracle = settings.oracle.epochs
        passes["oracle"] = (labels + oracle, oracle)
        seconds["oracle"] = arms.oracle.seconds + seconds["labels_only"]
    return {arm: {"labeled": a, "unlabeled": b, "images": a * n_labeled + b * n_unlabeled,
                  "seconds": seconds[arm]} for arm, (a, b) in passes.items()}
