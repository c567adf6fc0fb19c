"""What notebook 02 studies: five models learn a ten-dimensional description of the unlabeled images alone,
how well each description recovers the five modes, and what the autoencoder's checkpoints show.

This module trains (`lib.train.runs.pretrain`), embeds and scores (`lib.eval.embedding`) and gathers the
numbers of results/02_pretraining.json; the notebook draws the figures (`lib.plots`) and `lib.render` words
the tables and the report's sentences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lib.data import CLASS_NAMES
from lib.eval import embedding
from lib.nn.autoencoders import per_image_mse
from lib.nn.infer import batched
from lib.nn.registry import build, count_parameters
from lib.results import PRETRAINED, Decision, plain
from lib.train import checkpoint
from lib.train.runs import pretrain

BASELINE = "conv_ae_bn"  # the autoencoder whose every checkpoint is compared; the left map of the UMAP pair
SHOWN_IMAGES = (1, 2, 3, 6, 7, 9)  # unlabeled images of the reconstruction figure (its caption names them)
VIEWS = 8  # augmented views per class in the augmentation figure
NEAREST = 8  # unlabeled images nearest to each k-means centre in the modes figure (its caption says eight)


def unlabeled_classes(answer_key: dict | None) -> np.ndarray | None:
    """The true classes of the unlabeled images (replica only; None on the original data)."""
    return None if answer_key is None else answer_key["unlabeled_class"]


def parameter_counts(profile) -> dict[str, int]:
    return {name: count_parameters(build(getattr(profile.pretraining, name).network)) for name in PRETRAINED}


def training_summary(trained: dict, settings) -> dict[str, dict]:
    """Per model: size, budget, throughput, time and history (`settings`: the profile's `pretraining`)."""
    return {name: {"parameters": count_parameters(r.model), "epochs": getattr(settings, name).training.epochs,
                   "batch_size": getattr(settings, name).training.batch, "images_per_second": r.images_per_second,
                   "seconds": r.seconds, "history": r.history} for name, r in trained.items()}


def train_all(ctx) -> dict:
    """Train (or load, when its folder holds the finished run) every model on the unlabeled images."""
    return {name: pretrain(getattr(ctx.profile.pretraining, name), ctx.data.unlabeled, ctx.checkpoints, name,
                           ctx.seed, ctx.device) for name in PRETRAINED}


def augmentation_examples(data) -> np.ndarray:
    """The first labeled image of each class (the rows of the augmentation figure)."""
    return data.labeled_x[np.array([np.flatnonzero(data.labeled_y == c)[0] for c in range(len(CLASS_NAMES))])]


def reconstructions(trained: dict, images: np.ndarray) -> dict[str, np.ndarray]:
    """`SHOWN_IMAGES` of `images` in [0, 1] ("original") and what each model draws from its ten numbers."""
    shown = np.array(SHOWN_IMAGES)
    shown = shown[shown < len(images)]
    return {"original": images[shown] / 255.0,
            **{name: batched(result.model.reconstruct, images[shown]) for name, result in trained.items()}}


# --------------------------------------------------------------------------- descriptions and their quality


def embed_all(trained: dict, data, seed: int) -> dict[str, list[np.ndarray]]:
    """[description of the unlabeled images, of the labeled images] per method, PCA of the pixels first."""
    embeddings = {"pca": embedding.pca_embedding(data.unlabeled, data.labeled_x, seed=seed)}
    for name, result in trained.items():
        embeddings[name] = [batched(result.model.embed, images) for images in (data.unlabeled, data.labeled_x)]
    return embeddings


def evaluate_all(embeddings: dict, y_unlabeled: np.ndarray | None, y_labeled: np.ndarray, seed: int,
                 bootstrap: int, knn_k: int) -> dict[str, embedding.EmbeddingEvaluation]:
    return {method: embedding.evaluate_embedding(z, y_unlabeled, z_labeled, y_labeled, seed=seed, bootstrap=bootstrap,
                                                 knn_k=knn_k)
            for method, (z, z_labeled) in embeddings.items()}


def best_description(evaluations: dict) -> Decision:
    """The description with the highest k-means accuracy (the right-hand map of the UMAP pair)."""
    accuracy = {method: e.metrics["kmeans_accuracy"] for method, e in evaluations.items()}
    return Decision("highest k-means accuracy", max(accuracy, key=accuracy.get), accuracy)


@dataclass
class Maps:
    maps: dict[str, np.ndarray]  # method -> (points, 2) UMAP coordinates of the subsample
    colours: np.ndarray  # class (or, without the answer key, k-means cluster) of every point
    answer_key: bool  # colours are true classes


def map_subsample(n: int, points: int, seed: int) -> np.ndarray:
    """Sorted indices of at most `points` of `n` images, drawn without replacement."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(points, n), replace=False))


def umap_maps(embeddings: dict, evaluations: dict, best: str, y_unlabeled: np.ndarray | None, settings,
              seed: int) -> Maps:
    """UMAP of every description of the same subsample of unlabeled images (`settings`: `profile.report`)."""
    import umap  # slow to import: only the maps need it

    first = next(iter(embeddings.values()))[0]
    subsample = map_subsample(len(first), settings.umap_points, seed)
    colours = (y_unlabeled if y_unlabeled is not None else evaluations[best].kmeans.labels)[subsample]
    maps = {method: umap.UMAP(n_neighbors=settings.umap_neighbors, min_dist=settings.umap_min_dist,
                              n_epochs=settings.umap_epochs, random_state=seed, n_jobs=1).fit_transform(z[subsample])
            for method, (z, _) in embeddings.items()}
    return Maps(maps, colours, y_unlabeled is not None)


# --------------------------------------------------------------------------- checkpoints of the baseline


def checkpoint_tradeoff(folder, data, y_unlabeled: np.ndarray | None, device, knn_k: int) -> pd.DataFrame:
    """Per snapshot in `folder`: mean reconstruction error on the unlabeled images and the k-NN accuracy of its
    description (labeled images as reference; without the answer key, labeled half against half)."""
    def description_and_error(model):
        def both(x):
            z = model.embed(x)
            return {"z": z, "error": per_image_mse(model.decode(z), x)}
        return both

    rows = []
    for epoch, path in checkpoint.snapshots(folder):
        model = checkpoint.load_model(path, device)
        out = batched(description_and_error(model), data.unlabeled, device)
        z_labeled = batched(model.embed, data.labeled_x)
        if y_unlabeled is not None:
            accuracy = embedding.knn_accuracy(z_labeled, data.labeled_y, out["z"], y_unlabeled, k=knn_k)
        else:
            accuracy = embedding.knn_accuracy(z_labeled[::2], data.labeled_y[::2], z_labeled[1::2],
                                              data.labeled_y[1::2], k=knn_k)
        rows.append({"epoch": epoch, "reconstruction_mse": float(out["error"].mean()), "knn_accuracy": accuracy})
    return pd.DataFrame(rows)


def checkpoint_plateau(checkpoints: pd.DataFrame, tolerance: float) -> dict:
    """The first checkpoint whose k-NN accuracy is within `tolerance` of the last one's, and how much the
    reconstruction error still fell after it."""
    last = checkpoints.iloc[-1]
    plateau = checkpoints[checkpoints["knn_accuracy"] >= last.knn_accuracy - tolerance].iloc[0]
    return {"epoch": int(plateau.epoch), "knn_accuracy": float(plateau.knn_accuracy),
            "last_epoch": int(last.epoch), "last_knn_accuracy": float(last.knn_accuracy),
            "error_drop": float(1 - last.reconstruction_mse / plateau.reconstruction_mse),
            "epoch0_knn_accuracy": float(checkpoints.iloc[0].knn_accuracy), "count": len(checkpoints)}


# --------------------------------------------------------------------------- the five modes


def mode_rows(model, evaluation: embedding.EmbeddingEvaluation, z: np.ndarray,
              images: np.ndarray) -> list[tuple[str, int, np.ndarray]]:
    """Per k-means cluster, ordered by matched class: (matched class, size, the decoded centre followed by the
    `NEAREST` images nearest to the centre, in [0, 1])."""
    import torch

    centres = evaluation.kmeans.centers
    with torch.no_grad():
        decoded = model.decode(torch.as_tensor(centres, dtype=torch.float32)).numpy()
    nearest = embedding.nearest_to_centres(z, centres, NEAREST)
    sizes = np.bincount(evaluation.kmeans.labels, minlength=len(centres))
    return [(CLASS_NAMES[evaluation.kmeans_classes[k]], int(sizes[k]),
             np.concatenate([decoded[k:k + 1], images[nearest[k]] / 255.0]))
            for k in np.argsort(evaluation.kmeans_classes)]


# --------------------------------------------------------------------------- numbers for later notebooks and the report


def record(ctx, trained: dict, evaluations: dict, best: Decision, checkpoints: pd.DataFrame, plateau: dict,
           seconds: float) -> dict:
    """The content of results/02_pretraining.json (`checkpoints` holds each model's folder, relative to the
    workspace, from which later notebooks load it)."""
    settings = ctx.profile.pretraining
    return plain({
        "profile": ctx.profile.name, "seed": ctx.seed, "device": str(ctx.device),
        "scored_on": evaluations["contrastive"].metrics["evaluated_on"],
        "n_unlabeled": len(ctx.data.unlabeled),
        "settings": asdict(settings),
        "methods": {method: dict(e.metrics) for method, e in evaluations.items()},
        "best_description": best,
        "training": training_summary(trained, settings),
        "checkpoints": {name: ctx.ws.relative(r.folder) for name, r in trained.items()},
        "checkpoints_conv_ae_bn": checkpoints.to_dict("records"),
        "checkpoint_plateau": plateau,
        "seconds_notebook_after_setup": seconds,
    })
