"""The project's model (notebook 03): one network of the CNN family, trained in several arms that differ only in
what they learn from, so that what the 26,000 unlabeled images add is measured in one run.

- `labels_only`: the 2,000 labels alone, every seed of `model.seeds`; with the first seed also trained twice
  as long (`labels_only_long`), a check that the recipe has converged, never a candidate;
- `distilled`: each labels-only network trained further on all 28,000 images: the labels, and for each
  unlabeled image the averaged class probabilities of the labels-only networks (the teacher ensemble), with
  stronger augmentation and dropout (a noisy student);
- `contrastive_init`: the labels-only recipe, started from a backbone pretrained contrastively on the unlabeled
  images (SimCLR, the description as projection);
- `oracle`: the distillation recipe with the answer key's true classes of all 28,000 images: a ceiling, out of
  sample on set 2's clean images, never a candidate.
Each arm is trained on its own schedule (`lib.config.Model`); the choice between them is
`lib.eval.protocol.choose_variant` on set 1's clean images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import softmax

from lib.eval import metrics, protocol
from lib.nn.infer import batched
from lib.results import MODEL_ARMS, Estimate
from lib.train.loop import TrainResult
from lib.train.runs import contrastive_cnn, train_cnn

SIMPLER = "labels_only"
CANDIDATES = [arm for arm in MODEL_ARMS if arm != SIMPLER]


@dataclass
class Arms:
    runs: dict[str, dict[int, TrainResult]]  # arm -> seed -> trained network
    teacher: np.ndarray  # the teacher ensemble's class probabilities of the unlabeled images
    pretraining: TrainResult  # the contrastive pretraining the `contrastive_init` arm starts from
    oracle: TrainResult | None = None  # with the answer key only
    long: TrainResult | None = None  # the labels-only recipe trained twice as long (first seed): a convergence check


def one_hot(labels: np.ndarray, classes: int = 5) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[np.asarray(labels)]


def probabilities(models: list, images: np.ndarray) -> np.ndarray:
    """The class probabilities of `images`, averaged over `models` (an ensemble)."""
    return np.mean([softmax(batched(model, images), axis=1) for model in models], axis=0).astype(np.float32)


def train_arms(ctx) -> Arms:
    """Train (or load) every arm with every seed, the teacher ensemble being the labels-only arm."""
    data, settings = ctx.data, ctx.profile.model

    def train(arm, training, x, y, seed, init=None):
        return train_cnn(settings.network, training, x, y, ctx.checkpoints, f"model_{arm}_seed{seed}", seed,
                         settings.reconstruction_weight, init=init, device=ctx.device)

    labels_only = {seed: train("labels_only", settings.labels_only, data.labeled_x, data.labeled_y, seed)
                   for seed in settings.seeds}
    first = settings.seeds[0]
    long = train("labels_only_long", replace(settings.labels_only, epochs=settings.long_epochs), data.labeled_x,
                 data.labeled_y, first)
    teacher = probabilities([result.model for result in labels_only.values()], data.unlabeled)
    x_all = np.concatenate([data.labeled_x, data.unlabeled])
    targets = np.concatenate([one_hot(data.labeled_y), teacher])
    runs = {"labels_only": labels_only,
            "distilled": {seed: train("distilled", settings.distilled, x_all, targets, seed, labels_only[seed].model)
                          for seed in settings.seeds}}
    pretraining = contrastive_cnn(settings.network, settings.pretraining, data.unlabeled, ctx.checkpoints,
                                  "model_contrastive_pretraining", settings.seeds[0], settings.temperature,
                                  device=ctx.device)
    runs["contrastive_init"] = {seed: train("contrastive_init", settings.labels_only, data.labeled_x,
                                            data.labeled_y, seed, init=pretraining.model) for seed in settings.seeds}
    oracle = None
    if ctx.answer_key is not None:
        truth = np.concatenate([one_hot(data.labeled_y), one_hot(ctx.answer_key["unlabeled_class"])])
        oracle = train("oracle", settings.distilled, x_all, truth, first, labels_only[first].model)
    return Arms(runs, teacher, pretraining, oracle, long)


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


def passes_per_image(settings, n_labeled: int, n_unlabeled: int) -> dict[str, dict[str, float]]:
    """Per arm, the passes over each labeled and each unlabeled image in training (a contrastive epoch sees two
    views of every image), and the images seen in all."""
    labels, distill, pretrain = (settings.labels_only.epochs, settings.distilled.epochs,
                                 2 * settings.pretraining.epochs)
    passes = {"labels_only": (labels, 0), "labels_only_long": (settings.long_epochs, 0),
              "distilled": (labels + distill, distill), "contrastive_init": (labels, pretrain)}
    return {arm: {"labeled": a, "unlabeled": b, "images": a * n_labeled + b * n_unlabeled}
            for arm, (a, b) in passes.items()}


def long_check(arms: Arms, sets: dict[str, tuple]) -> dict[str, float]:
    """The labels-only recipe trained twice as long (first seed): its accuracy on every set."""
    model = arms.long.model
    return {name: metrics.accuracy(y, batched(model, x).argmax(1)) for name, (x, y) in sets.items()}
