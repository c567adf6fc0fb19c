"""What notebook 04 studies: the evidence of the project's model and its combinations, the neighbouring
systems' scores, all fitted on in-distribution training data only; the complete model built from the
combination chosen on set 1; the analyses of its errors (by origin and part, gallery, seeds, the systems
table). The choices themselves are `lib.eval.protocol`'s."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import normalized_mutual_info_score

from lib.bundle import PARTS, FinalModel, evidence_parts
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
from lib.nn.models import apply_batched, encode, negative_elbo, reconstruction_error
from lib.nn.multihead import network_outputs

SCORED = ("rep1", "rep2")
AUTOENCODERS = {"fully connected AE": "fc_ae", "convolutional AE": "conv_ae",
                "convolutional AE + batch norm": "conv_ae_bn"}


def baseline_scores(baseline, data) -> dict[str, np.ndarray]:
    """The plain CNN's score (DESIGN §5): squared Mahalanobis distance of its pooled 128-d features to the
    nearest class mean (shared covariance, class means from the labeled images)."""
    device = next(baseline.parameters()).device
    features = {s: apply_batched(baseline.features, images, device) for s, images in
                (("labeled", data.labeled_x), ("rep1", data.rep1_x), ("rep2", data.rep2_x))}
    gaussians = ood.ClassGaussians().fit(features["labeled"], data.labeled_y, n_classes=5)
    return {s: gaussians.mahalanobis(f) for s in SCORED for f in [features[s]]}


def reference_scores(ctx, contrastive, autoencoders: dict, vae, baseline, network) -> dict[str, dict]:
    """scores[name][set] on SCORED of the neighbouring systems' scores and of the common detectors on our
    classifier's logits (maximum softmax probability, energy)."""
    data, settings = ctx.data, ctx.profile.anomaly
    sets = {"unlabeled": data.unlabeled, "rep1": data.rep1_x, "rep2": data.rep2_x}
    z_contrastive = {name: encode(contrastive, images) for name, images in sets.items()}
    knn_contrastive = ood.KNNDistance(k=settings.knn_k).fit(z_contrastive["unlabeled"])
    logits = {s: network_outputs(network, sets[s])["logits"] for s in SCORED}
    return {
        **{f"reconstruction error, {label}": {s: reconstruction_error(model, sets[s]) for s in SCORED}
           for label, model in autoencoders.items()},
        VAE_SCORE: {s: negative_elbo(vae, sets[s], samples=settings.elbo_samples, seed=ctx.seed) for s in SCORED},
        "kNN distance, contrastive embedding": {s: knn_contrastive.score(z_contrastive[s]) for s in SCORED},
        "max softmax probability, our classifier": {s: ood.msp_score(logits[s]) for s in SCORED},
        "energy, our classifier": {s: ood.energy_score(logits[s]) for s in SCORED},
        BASELINE_SCORE: baseline_scores(baseline, data),
    }


# The combinations of evidence that set 1 chooses among: name -> the parts summed (each standardised)
COMBINATIONS = {
    **{part: (part,) for part in PARTS},
    "features, every depth": PARTS[:4],
    "features, every depth + frame": (*PARTS[:4], "frame intensity"),
    "deepest features + pixels": ("stage 3 features", "reconstruction error", "frame intensity"),
    "every part": PARTS,
}


def combination_weights(name: str) -> np.ndarray:
    return np.array([float(part in COMBINATIONS[name]) for part in PARTS])


def fit_evidence(network, data) -> FinalModel:
    """The deployed model before its choice: the network, one class-Gaussian model per feature part fitted on
    the labeled images and the unlabeled ones with the network's own labels, every part standardised on the
    unlabeled images. In-distribution training data only."""
    labeled, unlabeled = network_outputs(network, data.labeled_x), network_outputs(network, data.unlabeled)
    y = np.concatenate([data.labeled_y, unlabeled["logits"].argmax(1)])
    gaussians = [ood.ClassGaussians().fit(np.concatenate([labeled[name], unlabeled[name]]), y, n_classes=5)
                 for name in ("stage0", "stage1", "stage2", "z")]
    return FinalModel(network.cpu().eval(), gaussians).standardise_on(data.unlabeled)


def combination_scores(model: FinalModel, images: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(parts[set] (n, len(PARTS)), scores[combination][set]) of the model's evidence on each image set."""
    parts = {name: evidence_parts(model, x) for name, x in images.items()}
    scores = {name: {s: p @ combination_weights(name) for s, p in parts.items()} for name in COMBINATIONS}
    return parts, scores


def deploy(model: FinalModel, chosen: str, rep1_scores: np.ndarray, rep1_is_anomaly: np.ndarray) -> FinalModel:
    """Set the chosen combination and its threshold (best anomaly F1 on set 1)."""
    model.set_weights(combination_weights(chosen))
    model.threshold = fix_threshold({CHOICE_SET: rep1_scores}, {CHOICE_SET: rep1_is_anomaly})
    return model


# summary key (DESIGN §8, under seeds.) -> column of seed_metrics
SEED_KEYS = {"ood.auroc.rep2": "ROC AUC set 2", "ood.average_precision.rep2": "AP set 2",
             "ood.fpr_at_95_tpr.rep2": "FPR95 set 2", "end_to_end.macro_f1.rep2": "macro-F1 set 2",
             "embedding.kmeans_accuracy.unlabeled": "k-means unlabeled"}


def seed_metrics(network, data, chosen: str, is_anomaly: dict, answer_key: dict | None) -> dict[str, float]:
    """The complete model rebuilt from one seed's network (evidence, the chosen combination, its set-1
    threshold) and its numbers on set 2 and the unlabeled images, without bootstrap."""
    model = fit_evidence(network, data)
    _, scores = combination_scores(model, {"rep1": data.rep1_x, "rep2": data.rep2_x})
    model = deploy(model, chosen, scores[chosen]["rep1"], is_anomaly["rep1"])
    rep2 = scores[chosen]["rep2"]
    predicted = network_outputs(network, data.rep2_x)["logits"].argmax(1)
    six_class = metrics.end_to_end_predictions(predicted, rep2 > model.threshold)
    row = {"ROC AUC set 2": metrics.auroc(rep2, is_anomaly["rep2"]),
           "AP set 2": metrics.average_precision(rep2, is_anomaly["rep2"]),
           "FPR95 set 2": metrics.fpr_at_tpr(rep2, is_anomaly["rep2"]),
           "macro-F1 set 2": metrics.macro_f1(data.rep2_y, six_class, n_classes=6), "k-means unlabeled": None}
    if answer_key is not None:
        clusters = embedding.kmeans(network_outputs(network, data.unlabeled)["z"], 5, seed=0).labels
        row["k-means unlabeled"] = embedding.hungarian_accuracy(answer_key["unlabeled_class"], clusters)
    return row


def seed_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of every column of a seed_metrics table."""
    return pd.DataFrame([{"metric": column, "seeds": int(table[column].notna().sum()),
                          "mean": f"{table[column].mean():.4f}", "std": f"{table[column].std(ddof=1):.4f}"}
                         for column in table.columns if table[column].notna().any()])


def description_meaning(network, data) -> tuple[np.ndarray, np.ndarray]:
    """(class means of each description coordinate over the labeled images, in standard deviations over the
    unlabeled images (5, d); the decoder's images at the class means (5, 1, 32, 32))."""
    z_unlabeled = network_outputs(network, data.unlabeled)["z"]
    z_labeled = network_outputs(network, data.labeled_x)["z"]
    means = np.stack([z_labeled[data.labeled_y == c].mean(axis=0) for c in range(5)])
    device = next(network.parameters()).device
    with torch.no_grad():
        decoded = network.decoder(torch.as_tensor(means, dtype=torch.float32, device=device)).cpu().numpy()
    return (means - z_unlabeled.mean(axis=0)) / z_unlabeled.std(axis=0), decoded


def origin_auroc(scores: dict[str, np.ndarray], kind: np.ndarray) -> pd.DataFrame:
    """ROC AUC of each score (columns) for each anomaly origin (rows) against all clean images."""
    clean = kind == "clean"
    rows = []
    for group in sorted(set(kind) - {"clean"}, key=lambda k: (not k.startswith("foreign"), k)):
        members = kind == group
        pair = members | clean
        rows.append({"origin": group.removeprefix("foreign: ").replace("_", " "), "n": int(members.sum()),
                     **{name: metrics.auroc(values[pair], members[pair]) for name, values in scores.items()}})
    return pd.DataFrame(rows)


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
