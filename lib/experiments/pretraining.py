"""What notebook 02 studies: five models learn a ten-dimensional description of the unlabeled images alone,
how well each description recovers the five modes, and what the autoencoder's checkpoints show.

The notebook narrates; this module trains every model (`lib.nn.train`), embeds and scores the descriptions
(`lib.eval.embedding`), builds the tables and the contents of the figures (drawn by `lib.plots`), and
gathers the numbers of results/02_pretraining.json, from which `lib.render.variables.pretraining_variables`
makes the report's text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lib import plots
from lib.data import CLASS_NAMES
from lib.eval import embedding
from lib.eval.targets import KMEANS_DESCRIPTION
from lib.nn import models
from lib.nn.train import PRETRAINED, list_checkpoints, load_trained, train

PCA = "PCA-10 of pixels"  # the floor: PCA of the raw pixels to ten components
METHOD_KEYS = {PCA: "pca", **{label: name for name, label in PRETRAINED.items()}}  # table name -> variable prefix
BASELINE = "conv_ae_bn"  # the autoencoder whose every checkpoint is compared; the left map of the UMAP pair
SHOWN_IMAGES = (1, 2, 3, 6, 7, 9)  # unlabeled images of the reconstruction figure (its caption names them)
VIEWS = 8  # augmented views per class in the augmentation figure
NEAREST = 8  # unlabeled images nearest to each k-means centre in the modes figure (its caption says eight)
CURVE_PANELS = [  # training-curve panels: (title, models, y label, log scale[, history key])
    ("autoencoders", [PRETRAINED["fc_ae"], PRETRAINED["conv_ae"], PRETRAINED["conv_ae_bn"]],
     "MSE per pixel (intensity in [0, 1])", True),
    ("VAE", [PRETRAINED["vae"]], "negative ELBO (nats per image)", False),
    ("contrastive", [PRETRAINED["contrastive"]], "NT-Xent loss (nats)", False, "nt_xent"),
]


def percent(x: float) -> str:
    return f"{100 * x:.1f}"


def unlabeled_classes(answer_key: dict | None) -> np.ndarray | None:
    """The true classes of the unlabeled images (replica only; None on the original data)."""
    return None if answer_key is None else answer_key["unlabeled_class"]


# --------------------------------------------------------------------------- models and training


def describe_plan(plan: dict) -> str:
    """One line per model: parameters, epochs and batch size."""
    return "\n".join(f"{PRETRAINED[name]:>24}: {models.count_parameters(models.build_model(model_config)):>9,}"
                     f" parameters, {train_config.epochs} epochs, batch {train_config.batch_size}"
                     for name, (model_config, train_config) in plan.items())


def train_all(ctx, plan: dict) -> dict:
    """Train (or load, when its folder holds the finished run) every model of the plan on the unlabeled images."""
    return {name: train(model_config, ctx.data.unlabeled, train_config, ctx.ws.checkpoints(ctx.profile.name, name),
                        ctx.device)
            for name, (model_config, train_config) in plan.items()}


def training_table(trained: dict, plan: dict) -> pd.DataFrame:
    """Size, budget, throughput and final loss of every trained model."""
    return pd.DataFrame([{
        "model": PRETRAINED[name],
        "parameters": f"{models.count_parameters(result.model):,}",
        "epochs": plan[name][1].epochs,
        "batch": plan[name][1].batch_size,
        "images/s": f"{result.images_per_second:,.0f}",
        "training time (s)": f"{result.seconds:.0f}",
        "final loss": f"{result.history[-1]['loss']:.4g}",
    } for name, result in trained.items()])


def augmented_views_figure(data, plan: dict, seed: int):
    """The first labeled image of each class beside random views of the contrastive model's augmentation."""
    examples = np.array([np.flatnonzero(data.labeled_y == c)[0] for c in range(len(CLASS_NAMES))])
    return plots.plot_views(data.labeled_x[examples], plan["contrastive"][1].augment, n_views=VIEWS, seed=seed,
                            row_titles=list(CLASS_NAMES))


def training_curves_figure(trained: dict):
    return plots.plot_histories({PRETRAINED[name]: result.history for name, result in trained.items()}, CURVE_PANELS)


def reconstructions_figure(trained: dict, images: np.ndarray):
    """`SHOWN_IMAGES` of `images` (top row) and what each model draws from its ten numbers."""
    shown = np.array(SHOWN_IMAGES)
    shown = shown[shown < len(images)]
    rows = {"original": images[shown] / 255.0}
    for name, result in trained.items():
        rows[PRETRAINED[name]] = models.reconstruct(result.model, images[shown])
    return plots.plot_image_rows(rows, column_titles=[f"image {i}" for i in shown], figsize=(7.5, 7.0))


# --------------------------------------------------------------------------- descriptions and their quality


def embed_all(trained: dict, data, seed: int) -> dict[str, list[np.ndarray]]:
    """[description of the unlabeled images, of the labeled images] per method, PCA of the pixels first."""
    embeddings = {PCA: embedding.pca_embedding(data.unlabeled, data.labeled_x, seed=seed)}
    for name, result in trained.items():
        embeddings[PRETRAINED[name]] = [models.encode(result.model, images) for images in (data.unlabeled,
                                                                                             data.labeled_x)]
    return embeddings


def evaluate_all(embeddings: dict, y_unlabeled: np.ndarray | None, y_labeled: np.ndarray, seed: int,
                 bootstrap: int, knn_k: int) -> dict[str, embedding.EmbeddingEvaluation]:
    return {method: embedding.evaluate_embedding(z, y_unlabeled, z_labeled, y_labeled, seed=seed, bootstrap=bootstrap,
                                                 knn_k=knn_k)
            for method, (z, z_labeled) in embeddings.items()}


def comparison_table(evaluations: dict) -> pd.DataFrame:
    """Clustering (k-means, GMM), k-NN accuracy and silhouette of every description."""
    rows = []
    for method, evaluation in evaluations.items():
        m = evaluation.metrics
        ci = m.get("kmeans_accuracy_ci")
        rows.append({
            "description": method,
            "k-means accuracy (%)": percent(m["kmeans_accuracy"]) + (f" [{percent(ci[0])}, {percent(ci[1])}]"
                                                                     if ci else ""),
            "k-means NMI": f"{m['kmeans_nmi']:.3f}",
            "GMM accuracy (%)": percent(m["gmm_accuracy"]),
            "GMM NMI": f"{m['gmm_nmi']:.3f}",
            "k-NN accuracy (%)": percent(m["knn_accuracy"]),
            "silhouette": f"{m['silhouette']:.2f}",
        })
    return pd.DataFrame(rows)


def best_method(evaluations: dict) -> str:
    """The description with the highest k-means accuracy."""
    return max(evaluations, key=lambda method: evaluations[method].metrics["kmeans_accuracy"])


# --------------------------------------------------------------------------- maps


@dataclass
class Maps:
    maps: dict[str, np.ndarray]  # method -> (points, 2) UMAP coordinates of the subsample
    colours: np.ndarray  # class (or, without the answer key, k-means cluster) of every point
    legend_title: str
    titles: dict[str, str]  # method -> panel title (with its k-means accuracy)


def map_subsample(n: int, points: int, seed: int) -> np.ndarray:
    """Sorted indices of at most `points` of `n` images, drawn without replacement."""
    return np.sort(np.random.default_rng(seed).choice(n, size=min(points, n), replace=False))


def umap_maps(embeddings: dict, evaluations: dict, y_unlabeled: np.ndarray | None, settings, seed: int) -> Maps:
    """UMAP of every description of the same subsample of unlabeled images (`settings`: `profile.report`)."""
    import umap  # slow to import: only the maps need it

    first = next(iter(embeddings.values()))[0]
    subsample = map_subsample(len(first), settings.umap_points, seed)
    colours = (y_unlabeled if y_unlabeled is not None else
               evaluations[best_method(evaluations)].kmeans.labels)[subsample]
    legend_title = "true class" if y_unlabeled is not None else "k-means cluster (no answer key)"
    maps = {method: umap.UMAP(n_neighbors=settings.umap_neighbors, min_dist=settings.umap_min_dist,
                              n_epochs=settings.umap_epochs, random_state=seed, n_jobs=1).fit_transform(z[subsample])
            for method, (z, _) in embeddings.items()}
    titles = {method: f"{method}\nk-means accuracy {percent(evaluations[method].metrics['kmeans_accuracy'])} %"
              for method in maps}
    return Maps(maps, colours, legend_title, titles)


def umap_pair_figure(maps: Maps, best: str):
    """The baseline autoencoder's map beside the best description's."""
    chosen = [PRETRAINED[BASELINE], best]
    return plots.plot_embedding_maps({maps.titles[m]: maps.maps[m] for m in chosen}, maps.colours, CLASS_NAMES,
                                     figsize=(10, 4.6), legend_title=maps.legend_title)


def umap_others_figure(maps: Maps, best: str):
    """The maps of every other description, in one row."""
    others = [m for m in maps.maps if m not in (PRETRAINED[BASELINE], best)]
    return plots.plot_embedding_maps({maps.titles[m]: maps.maps[m] for m in others}, maps.colours, CLASS_NAMES,
                                     ncols=len(others), figsize=(10, 3.4), legend_title=maps.legend_title)


# --------------------------------------------------------------------------- checkpoints of the baseline


def checkpoint_tradeoff(folder, data, y_unlabeled: np.ndarray | None, device, knn_k: int) -> pd.DataFrame:
    """Per checkpoint in `folder`: mean reconstruction error on the unlabeled images and the k-NN accuracy of
    its description (labeled images as reference; without the answer key, labeled half against half)."""
    rows = []
    for epoch, _ in list_checkpoints(folder):
        model = load_trained(folder, device, epoch=epoch)
        z, error = models.encode_and_error(model, data.unlabeled)
        z_labeled = models.encode(model, data.labeled_x)
        if y_unlabeled is not None:
            accuracy = embedding.knn_accuracy(z_labeled, data.labeled_y, z, y_unlabeled, k=knn_k)
        else:
            accuracy = embedding.knn_accuracy(z_labeled[::2], data.labeled_y[::2], z_labeled[1::2],
                                              data.labeled_y[1::2], k=knn_k)
        rows.append({"epoch": epoch, "reconstruction_mse": float(error.mean()), "knn_accuracy": accuracy})
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


def plateau_sentence(plateau: dict) -> str:
    return (f"k-NN accuracy {percent(plateau['knn_accuracy'])} % at epoch {plateau['epoch']}, "
            f"{percent(plateau['last_knn_accuracy'])} % at the last epoch {plateau['last_epoch']}; "
            f"meanwhile the reconstruction error fell another {100 * plateau['error_drop']:.0f} %")


def checkpoint_figure(checkpoints: pd.DataFrame, answer_key: bool):
    label = ("k-NN accuracy on the unlabeled images (%)" if answer_key
             else "k-NN accuracy, labeled half vs. half (%)")
    return plots.plot_checkpoint_tradeoff(checkpoints["reconstruction_mse"].to_numpy(),
                                          checkpoints["knn_accuracy"].to_numpy(), checkpoints["epoch"].tolist(),
                                          PRETRAINED[BASELINE], label)


# --------------------------------------------------------------------------- the five modes


def mode_rows(decoded: np.ndarray, images: np.ndarray, evaluation: embedding.EmbeddingEvaluation,
              z: np.ndarray) -> dict[str, np.ndarray]:
    """Per k-means cluster (ordered by matched class, named after it with its size): the decoded centre and the
    `NEAREST` images nearest to the centre, in [0, 1]."""
    centres = evaluation.kmeans.centers
    nearest = embedding.nearest_to_centres(z, centres, NEAREST)
    sizes = np.bincount(evaluation.kmeans.labels, minlength=len(centres))
    return {f"{CLASS_NAMES[evaluation.kmeans_classes[k]]}\n({sizes[k]:,} images)":
            np.concatenate([decoded[k:k + 1], images[nearest[k]] / 255.0])
            for k in np.argsort(evaluation.kmeans_classes)}


def modes_figure(trained: dict, embeddings: dict, evaluations: dict, images: np.ndarray):
    """The contrastive description's k-means clusters: decoded centre and nearest unlabeled images."""
    name = PRETRAINED["contrastive"]
    evaluation = evaluations[name]
    decoded = models.decode(trained["contrastive"].model, evaluation.kmeans.centers)
    rows = mode_rows(decoded, images, evaluation, embeddings[name][0])
    titles = ["decoded\ncentre"] + [f"nearest\n{i + 1}" for i in range(NEAREST)]
    return plots.plot_image_rows(rows, column_titles=titles, figsize=(9, 5.8))


# --------------------------------------------------------------------------- numbers for later notebooks and the report


def results(ctx, plan: dict, trained: dict, evaluations: dict, checkpoints: pd.DataFrame, plateau: dict,
            seconds: float) -> dict:
    """The content of results/02_pretraining.json."""
    ours = evaluations[PRETRAINED["contrastive"]].metrics
    return {
        "profile": ctx.profile.name, "seed": ctx.seed, "device": str(ctx.device),
        "scored_on": ours["evaluated_on"],
        "embedding_dim": ctx.profile.pretraining.latent,
        "n_unlabeled": len(ctx.data.unlabeled),
        "settings": asdict(ctx.profile.pretraining),
        "methods": {method: dict(e.metrics) for method, e in evaluations.items()},
        "method_keys": {method: METHOD_KEYS[method] for method in evaluations},
        "best_kmeans_method": best_method(evaluations),
        "training": {name: {"parameters": models.count_parameters(r.model), "epochs": plan[name][1].epochs,
                            "batch_size": plan[name][1].batch_size, "images_per_second": r.images_per_second,
                            "seconds": r.seconds, "history": r.history,
                            "model_config": plan[name][0].to_dict(), "train_config": plan[name][1].to_dict()}
                     for name, r in trained.items()},
        "checkpoints_conv_ae_bn": checkpoints.to_dict("records"),
        "checkpoint_plateau": plateau,
        "seconds_notebook_after_setup": seconds,
    }


def summary(results: dict, answer_key: bool) -> dict:
    """Keys of results/summary.json for the contrastive description (none without the answer key)."""
    if not answer_key:
        return {}
    ours = results["methods"][PRETRAINED["contrastive"]]
    return {
        "embedding.dim": results["embedding_dim"],
        "embedding.kmeans_accuracy.unlabeled": ours["kmeans_accuracy"],
        "embedding.kmeans_accuracy.unlabeled_ci": ours["kmeans_accuracy_ci"],
        "embedding.nmi.unlabeled": ours["kmeans_nmi"],
        "embedding.nmi.unlabeled_ci": ours["kmeans_nmi_ci"],
    }


def conclusion(results: dict) -> str:
    """Whether the contrastive description reaches the k-means target, and its numbers."""
    ours = results["methods"][PRETRAINED["contrastive"]]
    verdict = "reaches" if KMEANS_DESCRIPTION.met(ours["kmeans_accuracy"]) else "does not reach"
    ci = ours.get("kmeans_accuracy_ci") or []
    return (f"k-means target {KMEANS_DESCRIPTION.scale * KMEANS_DESCRIPTION.goal:g} %: the contrastive description "
            f"{verdict} it\ncontrastive description: k-means accuracy {percent(ours['kmeans_accuracy'])} % "
            f"{[round(100 * v, 1) for v in ci]}, NMI {ours['kmeans_nmi']:.3f} ({ours['evaluated_on']})")
