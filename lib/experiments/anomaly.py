"""What notebook 04 studies: the evidence of the project's model and its combinations, the comparison systems'
scores, all fitted on in-distribution training data only; the complete model built from the combination chosen
on set 1; the analyses of its errors (by origin and part, gallery, seeds, unseen kinds). The choices themselves
are `lib.eval.protocol`'s. Analyses that need the replica's answer key return None on the original data."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import normalized_mutual_info_score

from lib.bundle import FEATURES, KNN_FEATURES, FinalModel
from lib.data import ANOMALY
from lib.data.unseen import load_unseen_set
from lib.detect import KNN, Mahalanobis, MaxSoftmax
from lib.eval import embedding, metrics, protocol
from lib.nn.infer import batched, device_of
from lib.results import COMBINATIONS, PARTS, Estimate
from lib.train import checkpoint

SCORED = ("rep1", "rep2")
AUTOENCODERS = {"recon_fc_ae": "fc_ae", "recon_conv_ae": "conv_ae", "recon_conv_ae_bn": "conv_ae_bn"}


def is_anomaly(data) -> dict[str, np.ndarray]:
    return {"rep1": data.rep1_y == ANOMALY, "rep2": data.rep2_y == ANOMALY}


def load_networks(ctx) -> dict[int, torch.nn.Module]:
    """The chosen variant's network of every seed (notebook 03), by seed."""
    folders = ctx.ws.read_results("03_classification")["model_checkpoints"]
    return {int(seed): checkpoint.load_model(ctx.ws.path(folder), ctx.device) for seed, folder in folders.items()}


def load_comparison(ctx) -> dict[str, torch.nn.Module]:
    """Notebook 02's models and notebook 03's plain baseline, by id."""
    folders = {**ctx.ws.read_results("02_pretraining")["checkpoints"],
               "baseline": ctx.ws.read_results("03_classification")["baseline_checkpoint"]}
    return {name: checkpoint.load_model(ctx.ws.path(folder), ctx.device) for name, folder in folders.items()}


def network_outputs(network, images: np.ndarray) -> dict[str, np.ndarray]:
    """The network's outputs for uint8 images: `stage0..` pooled features, `logits`, `z`."""
    return batched(network.outputs, images)


def mahalanobis_on(features: np.ndarray, labels: np.ndarray) -> Mahalanobis:
    return Mahalanobis().fit(features, labels, n_classes=5)


def baseline_scores(baseline, data) -> dict[str, np.ndarray]:
    """The plain CNN's score: squared Mahalanobis distance of its pooled last-stage features to the nearest class
    mean (shared covariance, class means from the labeled images)."""
    features = {s: batched(baseline.outputs, images)[f"stage{len(baseline.stages) - 1}"]
                for s, images in (("labeled", data.labeled_x), ("rep1", data.rep1_x), ("rep2", data.rep2_x))}
    detector = mahalanobis_on(features["labeled"], data.labeled_y)
    return {s: detector.score(features[s]) for s in SCORED}


def reference_scores(ctx, models: dict, network) -> dict[str, dict[str, np.ndarray]]:
    """scores[id][set] on SCORED of the comparison systems' scores and of the maximum softmax probability of our
    classifier (its energy is a part of our evidence)."""
    data, settings = ctx.data, ctx.profile.anomaly
    sets = {"unlabeled": data.unlabeled, "rep1": data.rep1_x, "rep2": data.rep2_x}
    contrastive = {name: batched(models["contrastive"].embed, images) for name, images in sets.items()}
    knn = KNN(k=settings.knn_k).fit(contrastive["unlabeled"])
    logits = {s: batched(network, sets[s]) for s in SCORED}
    vae = models["vae"]

    def elbo(images):  # every set is scored with the same draws of the latent
        generator = torch.Generator(device=ctx.device)
        generator.manual_seed(ctx.seed)
        return batched(lambda x: vae.negative_elbo(x, settings.elbo_samples, generator), images, ctx.device)

    return {
        **{score: {s: batched(models[name].reconstruction_error, sets[s]) for s in SCORED}
           for score, name in AUTOENCODERS.items()},
        "vae_elbo": {s: elbo(sets[s]) for s in SCORED},
        "knn_contrastive": {s: knn.score(contrastive[s]) for s in SCORED},
        "msp": {s: MaxSoftmax().score(logits[s]) for s in SCORED},
        "baseline_mahalanobis": baseline_scores(models["baseline"], data),
    }


def combination_weights(name: str) -> np.ndarray:
    return np.array([float(part in COMBINATIONS[name]) for part in PARTS])


def fit_evidence(network, data, settings, seed: int) -> FinalModel:
    """The deployed model before its choice: the network; one Mahalanobis detector per feature part fitted on
    the labeled images and the unlabeled ones with the network's own labels; the kNN detector's bank, a random
    `settings.knn_bank` of the unlabeled images' last-stage features (at most half of them; `settings`: the
    profile's `anomaly`); every part standardised on the other unlabeled images (the bank's own would find
    themselves in it).
    In-distribution training data only."""
    labeled, unlabeled = network_outputs(network, data.labeled_x), network_outputs(network, data.unlabeled)
    y = np.concatenate([data.labeled_y, unlabeled["logits"].argmax(1)])
    mahalanobis = [mahalanobis_on(np.concatenate([labeled[name], unlabeled[name]]), y) for name in FEATURES]
    in_bank = np.zeros(len(data.unlabeled), dtype=bool)
    bank = min(settings.knn_bank, len(data.unlabeled) // 2)
    in_bank[np.random.default_rng(seed).permutation(len(data.unlabeled))[:bank]] = True
    knn = KNN(k=settings.knn_k).fit(unlabeled[KNN_FEATURES][in_bank])
    return FinalModel(network.cpu().eval(), mahalanobis, knn).standardise_on(data.unlabeled[~in_bank])


def combination_scores(model: FinalModel, images: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(parts[set] (n, len(PARTS)), scores[combination][set]) of the model's evidence on each image set."""
    parts = {name: model.evidence(x) for name, x in images.items()}
    scores = {name: {s: p @ combination_weights(name) for s, p in parts.items()} for name in COMBINATIONS}
    return parts, scores


def choose_score(scores: dict, flags: dict):
    return protocol.choose_score(scores, flags, list(COMBINATIONS))


def deploy(model: FinalModel, chosen: str, rep1_scores: np.ndarray, rep1_is_anomaly: np.ndarray) -> FinalModel:
    """Set the chosen combination and its threshold (best anomaly F1 on set 1)."""
    model.set_weights(combination_weights(chosen))
    model.threshold = protocol.fix_threshold({protocol.CHOICE_SET: rep1_scores},
                                             {protocol.CHOICE_SET: rep1_is_anomaly})
    return model


DETECTION = {"auroc": metrics.auroc, "average_precision": metrics.average_precision,
             "fpr_at_95_tpr": metrics.fpr_at_tpr}


def baseline_estimates(baseline_rep2: np.ndarray, flags: np.ndarray, n_resamples: int, seed: int) -> dict:
    """ROC AUC, average precision and FPR95 of the plain CNN's score on set 2, with intervals."""
    return {name: Estimate(**metrics.metric_with_ci(metric, baseline_rep2, flags, n_resamples=n_resamples, seed=seed))
            for name, metric in DETECTION.items()}


def versus_baseline(ours_rep2: np.ndarray, baseline_rep2: np.ndarray, flags: np.ndarray, n_resamples: int,
                    seed: int) -> dict:
    """Our deployed score minus the plain CNN's on set 2, per detection metric, paired over the same images."""
    return {name: Estimate(**metrics.paired_detection_difference(metric, ours_rep2, baseline_rep2, flags,
                                                                 n_resamples, seed))
            for name, metric in DETECTION.items()}


def seed_metrics(network, data, settings, seed: int, chosen: str, flags: dict,
                 answer_key: dict | None) -> dict[str, float | None]:
    """The complete model rebuilt from one seed's network (evidence, the chosen combination, its set-1
    threshold) and its numbers on set 2 and the unlabeled images, without bootstrap."""
    model = fit_evidence(network, data, settings, seed)
    _, scores = combination_scores(model, {"rep1": data.rep1_x, "rep2": data.rep2_x})
    model = deploy(model, chosen, scores[chosen]["rep1"], flags["rep1"])
    rep2 = scores[chosen]["rep2"]
    predicted = network_outputs(network, data.rep2_x)["logits"].argmax(1)
    six_class = metrics.end_to_end_predictions(predicted, rep2 > model.threshold)
    row = {"auroc_rep2": metrics.auroc(rep2, flags["rep2"]), "ap_rep2": metrics.average_precision(rep2, flags["rep2"]),
           "fpr95_rep2": metrics.fpr_at_tpr(rep2, flags["rep2"]),
           "macro_f1_rep2": metrics.macro_f1(data.rep2_y, six_class, n_classes=6), "kmeans_unlabeled": None}
    if answer_key is not None:
        clusters = embedding.kmeans(network_outputs(network, data.unlabeled)["z"], 5, seed=0).labels
        row["kmeans_unlabeled"] = embedding.hungarian_accuracy(answer_key["unlabeled_class"], clusters)
    return row


def description_meaning(network, data) -> tuple[np.ndarray, np.ndarray]:
    """(class means of each description coordinate over the labeled images, in standard deviations over the
    unlabeled images (5, d); the decoder's images at the class means (5, 1, 32, 32))."""
    z_unlabeled = network_outputs(network, data.unlabeled)["z"]
    z_labeled = network_outputs(network, data.labeled_x)["z"]
    means = np.stack([z_labeled[data.labeled_y == c].mean(axis=0) for c in range(5)])
    with torch.no_grad():
        decoded = network.decode(torch.as_tensor(means, dtype=torch.float32, device=device_of(network))).cpu().numpy()
    return (means - z_unlabeled.mean(axis=0)) / z_unlabeled.std(axis=0), decoded


def origins(answer_key: dict | None, set_name: str, n: int) -> np.ndarray | None:
    """Per item of a representative set: "clean", "foreign: <class>" or the corruption kind (answer key; None
    without it)."""
    if answer_key is None:
        return None
    origin, detail = answer_key[f"{set_name}_origin"][:n], answer_key[f"{set_name}_detail"][:n]
    return np.where(origin == "foreign", "foreign: " + detail, np.where(origin == "corrupted", detail, "clean"))


def _groups(kind: np.ndarray) -> list[str]:
    """The anomaly origins present, foreign classes first."""
    return sorted(set(kind) - {"clean"}, key=lambda k: (not k.startswith("foreign"), k))


def origin_auroc(scores: dict[str, np.ndarray], kind: np.ndarray | None) -> list[dict] | None:
    """Per anomaly origin: its count and the ROC AUC of each score against all clean images."""
    if kind is None:
        return None
    clean = kind == "clean"
    rows = []
    for group in _groups(kind):
        members = kind == group
        pair = members | clean
        rows.append({"origin": group, "n": int(members.sum()),
                     **{name: metrics.auroc(values[pair], members[pair]) for name, values in scores.items()}})
    return rows


def breakdown_by_origin(scores: np.ndarray, flags: np.ndarray, kind: np.ndarray | None) -> list[dict] | None:
    """Per anomaly origin: count, share flagged at the threshold and ROC AUC against every clean image."""
    if kind is None:
        return None
    clean = kind == "clean"
    return [{"origin": group, "anomalies": int((kind == group).sum()), "flagged": float(flags[kind == group].mean()),
             "auroc": metrics.auroc(scores[(kind == group) | clean], (kind == group)[(kind == group) | clean])}
            for group in _groups(kind)]


def failure_cases(scores: np.ndarray, flags: np.ndarray, count: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the `count` most anomalous clean images and the `count` least anomalous anomalies."""
    clean_order = np.argsort(-np.where(flags, -np.inf, scores))[:count]
    anomaly_order = np.argsort(np.where(flags, scores, np.inf))[:count]
    return clean_order, anomaly_order


def description_quality(z: np.ndarray, answer_key: dict | None, n_resamples: int, seed: int) -> dict | None:
    """k-means (five clusters, Hungarian matching) accuracy and NMI of a description on the unlabeled images,
    with intervals (answer key; None without it)."""
    if answer_key is None:
        return None
    y = answer_key["unlabeled_class"]
    clusters = embedding.kmeans(z, 5, seed=seed).labels
    matched = embedding.hungarian_mapping(y, clusters)[clusters]
    accuracy = metrics.metric_with_ci(metrics.accuracy, y, matched, n_resamples=n_resamples, seed=seed)
    nmi = metrics.metric_with_ci(normalized_mutual_info_score, y, clusters, n_resamples=n_resamples, seed=seed)
    return {"dim": int(z.shape[1]), "kmeans_accuracy": Estimate(**accuracy), "nmi": Estimate(**nmi)}


def unseen_check(data, answer_key: dict | None, settings):
    """The unseen-kind check set (`lib.data.unseen`; `settings`: the profile's `anomaly`), None without the
    answer key."""
    return load_unseen_set(data, answer_key, n_clean=settings.unseen_clean, n_per_kind=settings.unseen_per_kind)


def unseen_kinds(scores: np.ndarray, check, threshold: float) -> dict:
    """Per anomaly kind of the check set: ROC AUC against its fresh clean images and the share flagged at the
    threshold fixed on set 1; and the share of clean images flagged."""
    rows = [{"kind": kind, "images": int((check.kind == kind).sum()),
             "auroc": metrics.auroc(scores[check.pair(kind)], check.is_anomaly[check.pair(kind)]),
             "flagged": float((scores[check.kind == kind] > threshold).mean())} for kind in check.kinds]
    clean = check.kind == "clean"
    return {"kinds": rows, "clean_images": int(clean.sum()), "clean_flagged": float((scores[clean] > threshold).mean()),
            "digest": check.digest()}


def unpadded(images: np.ndarray) -> np.ndarray:
    """The same articles without the zero border: the inner 28x28 of each uint8 image (n, 1, 32, 32) zoomed
    bilinearly to fill the whole 32x32 frame, as images from a source that does not pad would look."""
    x = torch.as_tensor(images[:, :, 2:-2, 2:-2]).float()
    x = torch.nn.functional.interpolate(x, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def frame_study(model: FinalModel, chosen: str, parts: dict[str, np.ndarray], flags: dict, data,
                check) -> dict | None:
    """The chosen score with and without its frame part (None when it has none): detection on set 2 and on the
    unseen kinds, and the share of set 2's clean images flagged as they are and unpadded (`unpadded`), each
    score with its own threshold fixed on set 1. The frame part reads the replica's zero padding."""
    if "frame" not in COMBINATIONS[chosen]:
        return None
    with_frame = combination_weights(chosen)
    clean = data.rep2_x[~flags["rep2"]]
    evidence = {"unpadded": model.evidence(unpadded(clean)), "check": model.evidence(check.x) if check else None}
    out = {}
    for name, weights in (("with", with_frame), ("without", with_frame * (np.array(PARTS) != "frame"))):
        rep1, rep2 = parts["rep1"] @ weights, parts["rep2"] @ weights
        threshold = protocol.fix_threshold({"rep1": rep1}, {"rep1": flags["rep1"]})
        row = {"auroc_rep2": metrics.auroc(rep2, flags["rep2"]),
               "ap_rep2": metrics.average_precision(rep2, flags["rep2"]),
               "fpr95_rep2": metrics.fpr_at_tpr(rep2, flags["rep2"]), "threshold": threshold,
               "flagged_clean_rep2": float((rep2[~flags["rep2"]] > threshold).mean()),
               "flagged_unpadded_rep2": float((evidence["unpadded"] @ weights > threshold).mean())}
        if check is not None:
            scores = evidence["check"] @ weights
            row["unseen_auroc"] = {kind: metrics.auroc(scores[check.pair(kind)], check.is_anomaly[check.pair(kind)])
                                   for kind in check.kinds}
        out[name] = row
    return out
