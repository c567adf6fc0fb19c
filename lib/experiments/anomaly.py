"""What notebook 04 studies: anomaly scores of every model, fitted on in-distribution training data only,
the complete model built from the chosen score, and the analyses of its errors (by origin, gallery, the
systems table). The choices themselves are `lib.eval.protocol`'s."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score

from lib.bundle import FinalModel
from lib.eval import embedding, metrics, ood
from lib.eval.protocol import CHOICE_SET, fix_threshold
from lib.experiments.names import (
    BASELINE,
    BASELINE_SCORE,
    CONTRASTIVE_PROBE,
    CONV_AE_SCORE,
    STACKING,
    SUPERVISED,
    VAE_PROBE,
    VAE_SCORE,
)
from lib.nn.finetune import embed, predict_logits
from lib.nn.models import apply_batched, encode, negative_elbo, reconstruction_error
from lib.predict import run_model

SCORED = ("labeled", "rep1", "rep2")  # the labeled set is in-distribution and in no kNN bank
AUTOENCODERS = {"fully connected AE": "fc_ae", "convolutional AE": "conv_ae",
                "convolutional AE + batch norm": "conv_ae_bn"}
MAHALANOBIS, KNN = "Mahalanobis (class Gaussians)", "kNN distance, fine-tuned embedding"
# Scores the deployed model computes from its own embedding and logits: name -> FinalModel score_name
DEPLOYABLE = {MAHALANOBIS: "mahalanobis", KNN: "knn", "energy": "energy", "max softmax probability": "msp",
              "Mahalanobis + kNN (standardised mean)": "mahalanobis+knn",
              "Mahalanobis + kNN + energy (standardised mean)": "mahalanobis+knn+energy"}
COMPONENTS = {"mahalanobis": MAHALANOBIS, "knn": KNN, "energy": "energy", "msp": "max softmax probability"}


def baseline_scores(baseline, data) -> dict[str, np.ndarray]:
    """The plain CNN's score (DESIGN §5): squared Mahalanobis distance of its pooled 128-d features to the
    nearest class mean (shared covariance, class means from the labeled images)."""
    device = next(baseline.parameters()).device
    features = {s: apply_batched(baseline.features, images, device) for s, images in
                (("labeled", data.labeled_x), ("rep1", data.rep1_x), ("rep2", data.rep2_x))}
    gaussians = ood.ClassGaussians().fit(features["labeled"], data.labeled_y, n_classes=5)
    return {s: gaussians.mahalanobis(f) for s, f in features.items()}


def score_catalogue(ctx, classifier, contrastive, autoencoders: dict, vae, baseline) -> tuple[dict, dict]:
    """scores[name][set] of every score on SCORED, and the fitted pieces of the complete model
    (`z`: classifier embeddings by set, `gaussians`)."""
    data, settings = ctx.data, ctx.profile.anomaly
    sets = {"unlabeled": data.unlabeled, "labeled": data.labeled_x, "rep1": data.rep1_x, "rep2": data.rep2_x}
    z = {name: embed(classifier, images) for name, images in sets.items()}
    logits = {name: predict_logits(classifier, images) for name, images in sets.items()}
    z_contrastive = {name: encode(contrastive, images) for name, images in sets.items()}
    gaussians = ood.ClassGaussians().fit(z["labeled"], data.labeled_y, n_classes=5, z_unlabeled=z["unlabeled"],
                                         min_posterior=settings.posterior_refit)
    mixture = ood.GaussianMixtureDensity(seed=ctx.seed).fit(z["unlabeled"], z["labeled"], data.labeled_y)
    knn = ood.KNNDistance(k=settings.knn_k).fit(z["unlabeled"])
    knn_contrastive = ood.KNNDistance(k=settings.knn_k).fit(z_contrastive["unlabeled"])
    scores = {
        **{f"reconstruction error, {label}": {s: reconstruction_error(model, sets[s]) for s in SCORED}
           for label, model in autoencoders.items()},
        VAE_SCORE: {s: negative_elbo(vae, sets[s], samples=settings.elbo_samples, seed=ctx.seed)
                               for s in SCORED},
        "max softmax probability": {s: ood.msp_score(logits[s]) for s in SCORED},
        "energy": {s: ood.energy_score(logits[s]) for s in SCORED},
        "kNN distance, contrastive embedding": {s: knn_contrastive.score(z_contrastive[s]) for s in SCORED},
        KNN: {s: knn.score(z[s]) for s in SCORED},
        "Gaussian mixture, negative log-density": {s: mixture.score(z[s]) for s in SCORED},
        MAHALANOBIS: {s: gaussians.mahalanobis(z[s]) for s in SCORED},
        BASELINE_SCORE: baseline_scores(baseline, data),
    }
    for name, score_name in DEPLOYABLE.items():
        if "+" in score_name:  # standardised by the in-distribution (labeled) images, then averaged
            parts = [COMPONENTS[part] for part in score_name.split("+")]
            train = {part: scores[part]["labeled"] for part in parts}
            scores[name] = {s: ood.combine_scores(train, {part: scores[part][s] for part in parts}) for s in SCORED}
    return scores, {"z": z, "gaussians": gaussians}


def complete_model(classifier, fitted: dict, scores: dict, chosen: str, rep1_x: np.ndarray,
                   rep1_is_anomaly: np.ndarray) -> FinalModel:
    """The deployed model: the classifier's encoder and head, the chosen score, its threshold fixed on set 1
    from the bundle's own scores (what `predict` will compute)."""
    score_name = DEPLOYABLE[chosen]
    stats = ood.score_stats({part: scores[COMPONENTS[part]]["labeled"] for part in score_name.split("+")})
    gaussians = fitted["gaussians"]
    model = FinalModel(classifier.embedder().cpu(), classifier.head.cpu(), gaussians.means_, gaussians.precision_,
                       score_name=score_name, class_log_priors=gaussians.log_priors_, knn_bank=fitted["z"]["unlabeled"],
                       score_stats=stats).eval()
    rep1_scores = run_model(model, rep1_x)[1]
    model.threshold = fix_threshold({CHOICE_SET: rep1_scores}, {CHOICE_SET: rep1_is_anomaly})
    return model


def origins(answer_key: dict, set_name: str, n: int) -> np.ndarray:
    """Per item of a representative set: "clean", "foreign: <class>" or the corruption kind (answer key)."""
    origin, detail = answer_key[f"{set_name}_origin"][:n], answer_key[f"{set_name}_detail"][:n]
    return np.where(origin == "foreign", "foreign: " + detail, np.where(origin == "corrupted", detail, "clean"))


def breakdown_by_origin(scores: np.ndarray, flags: np.ndarray, kind: np.ndarray) -> pd.DataFrame:
    """Per anomaly origin: count, share flagged at the threshold and ROC AUC against every clean image."""
    clean = kind == "clean"
    rows = []
    for group in sorted(set(kind) - {"clean"}, key=lambda k: (not k.startswith("foreign"), k)):
        members = kind == group
        rows.append({"origin": group.replace("_", " "), "anomalies": int(members.sum()),
                     "flagged (%)": 100 * flags[members].mean(),
                     "ROC AUC vs clean": metrics.auroc(scores[members | clean], members[members | clean])})
    return pd.DataFrame(rows)


def failure_cases(scores: np.ndarray, is_anomaly: np.ndarray, count: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the `count` most anomalous clean images and the `count` least anomalous anomalies."""
    clean_order = np.argsort(-np.where(is_anomaly, -np.inf, scores))[:count]
    anomaly_order = np.argsort(np.where(is_anomaly, scores, np.inf))[:count]
    return clean_order, anomaly_order


def time_predict(model_folder: Path, images: np.ndarray) -> float:
    """Seconds `python -m lib predict` takes on `images` saved as .npy, model load included."""
    with tempfile.TemporaryDirectory() as folder:
        images_path, out_path = Path(folder) / "images.npy", Path(folder) / "predictions.csv"
        np.save(images_path, images)
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "lib", "predict", str(images_path), "--out", str(out_path),
                                    "--model", str(model_folder)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            raise RuntimeError(f"predict failed: {completed.stderr.strip()}")
        if len(pd.read_csv(out_path)) != len(images):
            raise RuntimeError("predict wrote the wrong number of rows")
    return seconds


def description_quality(z: np.ndarray, y: np.ndarray, n_resamples: int, seed: int) -> dict:
    """k-means (five clusters, Hungarian matching) accuracy and NMI of a description, with intervals."""
    clusters = embedding.kmeans(z, 5, seed=seed).labels
    matched = embedding.hungarian_mapping(y, clusters)[clusters]
    accuracy = metrics.metric_with_ci(metrics.accuracy, y, matched, n_resamples=n_resamples, seed=seed)
    nmi = metrics.metric_with_ci(normalized_mutual_info_score, y, clusters, n_resamples=n_resamples, seed=seed)
    return {"kmeans_accuracy": accuracy["value"], "kmeans_accuracy_ci": accuracy["ci"],
            "nmi": nmi["value"], "nmi_ci": nmi["ci"]}


def systems_table(pretraining: dict, classification: dict, auroc_rep2: dict, ours: tuple) -> pd.DataFrame:
    """Every system in one table: k-means accuracy of its description, classification accuracy on the
    unlabeled images, and ROC AUC on set 2 with its own score ("-": the system does not provide it)."""
    methods, accuracy = pretraining["methods"], classification["accuracy"]

    def get(table, name, key):
        value = table.get(name, {}).get(key)
        return value.get("value") if isinstance(value, dict) else value

    rows = [
        ("PCA-10 of pixels + k-means", get(methods, "PCA-10 of pixels", "kmeans_accuracy"), None, None),
        ("FC autoencoder (reconstruction error)", get(methods, "FC autoencoder", "kmeans_accuracy"), None,
         auroc_rep2["reconstruction error, fully connected AE"]),
        ("conv autoencoder + linear head", get(methods, "conv autoencoder", "kmeans_accuracy"),
         get(accuracy, "autoencoder + linear head", "unlabeled"), auroc_rep2[CONV_AE_SCORE]),
        ("conv autoencoder + BN", get(methods, "conv autoencoder + BN", "kmeans_accuracy"), None,
         auroc_rep2["reconstruction error, convolutional AE + batch norm"]),
        (VAE_PROBE, get(methods, "VAE", "kmeans_accuracy"), get(accuracy, VAE_PROBE, "unlabeled"),
         auroc_rep2[VAE_SCORE]),
        ("contrastive (frozen) + linear head", get(methods, "contrastive", "kmeans_accuracy"),
         get(accuracy, CONTRASTIVE_PROBE, "unlabeled"), auroc_rep2["kNN distance, contrastive embedding"]),
        (SUPERVISED, None, get(accuracy, SUPERVISED, "unlabeled"), None),
        ("auxiliary (classification + reconstruction)", None,
         get(accuracy, "auxiliary (classification + reconstruction)", "unlabeled"), None),
        (STACKING, None, get(accuracy, STACKING, "unlabeled"), None),
        (BASELINE, None, get(accuracy, BASELINE, "unlabeled"), auroc_rep2[BASELINE_SCORE]),
        ours,
    ]

    def pct(value):
        return "-" if value is None else f"{100 * value:.2f}"

    return pd.DataFrame([{"system": name, "k-means (%)": pct(k), "accuracy (%)": pct(a),
                          "AUROC set 2": "-" if u is None else f"{u:.3f}"} for name, k, a, u in rows])


def unseen_kinds(scores: np.ndarray, check, threshold: float) -> pd.DataFrame:
    """Per anomaly kind of the unseen-kind check set (lib.data.unseen): ROC AUC against its fresh clean
    images and the share flagged at the threshold fixed on set 1."""
    rows = []
    for kind in check.kinds:
        pair, members = check.pair(kind), check.kind == kind
        rows.append({"kind": kind.replace("_", " "), "images": int(members.sum()),
                     "ROC AUC vs clean": metrics.auroc(scores[pair], check.is_anomaly[pair]),
                     "flagged (%)": 100 * float((scores[members] > threshold).mean())})
    rows.append({"kind": "clean (false alarms)", "images": int((check.kind == "clean").sum()), "ROC AUC vs clean": None,
                 "flagged (%)": 100 * float((scores[check.kind == "clean"] > threshold).mean())})
    return pd.DataFrame(rows)
