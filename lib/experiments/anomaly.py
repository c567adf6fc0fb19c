"""What notebook 04 studies: the evidence of the project's model and its combinations, the comparison systems'
scores, all fitted on in-distribution training data only; the complete model built from the combination chosen
on set 1; the analyses of its errors (by origin and part, gallery, seeds, unseen kinds); its comparison with the
plain CNN with and without the frame part, and with its detectors fitted on the labeled images alone (set 2,
evaluation only). The choices themselves are `lib.eval.protocol`'s. Analyses that need the replica's answer key
return None on the original data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import normalized_mutual_info_score

from lib.bundle import FinalModel
from lib.data import ANOMALY
from lib.data.unseen import load_unseen_set
from lib.detect import KNN, Mahalanobis, MaxSoftmax
from lib.detect.parts import fit_detectors
from lib.eval import embedding, metrics, protocol
from lib.nn.infer import batched, device_of
from lib.results import COMBINATIONS, PARTS, Estimate, plain
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


def baseline_scores(baseline, data, settings) -> dict[str, np.ndarray]:
    """The plain CNN's score: squared Mahalanobis distance of its pooled last-stage features to the nearest class
    mean (shared covariance, class means from the labeled images; `settings`: the profile's `anomaly`)."""
    features = {s: batched(baseline.outputs, images)[f"stage{len(baseline.stages) - 1}"]
                for s, images in (("labeled", data.labeled_x), ("rep1", data.rep1_x), ("rep2", data.rep2_x))}
    detector = Mahalanobis(reg=settings.mahalanobis_ridge).fit(features["labeled"], data.labeled_y, n_classes=5)
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
        "baseline_mahalanobis": baseline_scores(models["baseline"], data, settings),
    }


def combination_weights(name: str, frame: bool = True) -> np.ndarray:
    """The weight (0 or 1) of each part (PARTS order) in a combination; frame=False: without its frame part."""
    return np.array([float(part in COMBINATIONS[name] and (frame or part != "frame")) for part in PARTS])


def fit_evidence(network, data, settings, seed: int, labels_only: bool = False) -> FinalModel:
    """The deployed model before its choice: the network and every part's detector (`lib.detect.parts`), fitted
    on in-distribution training data only (`settings`: the profile's `anomaly`). The Mahalanobis parts: class
    means and shared covariance of the labeled images and the unlabeled ones with the network's own labels; the
    kNN part's bank: a random `settings.knn_bank` of the unlabeled images (at most half of them); every part
    standardised on the other unlabeled images (the bank's own would find themselves in it).
    `labels_only`: the same from the labeled images alone (Mahalanobis on them with their labels, the bank and
    the standardisation from them), to measure what the unlabeled images add."""
    labeled = network_outputs(network, data.labeled_x)
    if labels_only:
        outputs, classes, pool, pooled = labeled, data.labeled_y, data.labeled_x, labeled
    else:
        unlabeled = network_outputs(network, data.unlabeled)
        outputs = {name: np.concatenate([labeled[name], unlabeled[name]]) for name in labeled}
        classes = np.concatenate([data.labeled_y, unlabeled["logits"].argmax(1)])
        pool, pooled = data.unlabeled, unlabeled
    in_bank = np.zeros(len(pool), dtype=bool)
    in_bank[np.random.default_rng(seed).permutation(len(pool))[:min(settings.knn_bank, len(pool) // 2)]] = True
    detectors = fit_detectors(outputs, classes, {name: values[in_bank] for name, values in pooled.items()}, settings)
    return FinalModel(network.cpu().eval(), detectors, settings.frame_std_floor).standardise_on(pool[~in_bank])


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


def detection_estimates(scores: np.ndarray, flags: np.ndarray, n_resamples: int, seed: int) -> dict:
    """ROC AUC, average precision and FPR95 of a score on set 2, with intervals."""
    return {name: Estimate(**metrics.metric_with_ci(metric, scores, flags, n_resamples=n_resamples, seed=seed))
            for name, metric in DETECTION.items()}


def detection_differences(scores_a: np.ndarray, scores_b: np.ndarray, flags: np.ndarray, n_resamples: int,
                          seed: int) -> dict:
    """Score a's detection metrics minus score b's on set 2, each with a paired interval (the same images)."""
    return {name: Estimate(**metrics.paired_detection_difference(metric, scores_a, scores_b, flags, n_resamples,
                                                                 seed))
            for name, metric in DETECTION.items()}


def versus_baseline_without_frame(parts_rep2: np.ndarray, chosen: str, baseline_rep2: np.ndarray,
                                  flags: np.ndarray, n_resamples: int, seed: int) -> dict:
    """The chosen combination without its frame part (which reads the replica's zero padding) against the plain
    CNN's score on set 2, evaluation only: its parts, its detection metrics and their paired differences from
    the plain CNN's. `parts_rep2`: set 2's standardised evidence (n, len(PARTS))."""
    ours = parts_rep2 @ combination_weights(chosen, frame=False)
    return {"parts": [part for part in COMBINATIONS[chosen] if part != "frame"],
            "ours": detection_estimates(ours, flags, n_resamples, seed),
            "versus_baseline": detection_differences(ours, baseline_rep2, flags, n_resamples, seed)}


def fit_on_labels_only(network, data, settings, seed: int, chosen: str, parts_rep2: np.ndarray, flags: np.ndarray,
                       n_resamples: int) -> dict:
    """What fitting the detectors' statistics on the unlabeled images adds: the chosen combination with every
    detector fitted on the labeled and unlabeled images (`parts_rep2`, set 2's evidence as deployed) and on the
    labeled images alone (`fit_evidence(labels_only=True)`), on set 2, evaluation only: both scores' detection
    metrics and the paired difference (labeled and unlabeled minus labels only)."""
    weights = combination_weights(chosen)
    scores = {"labeled_and_unlabeled": parts_rep2 @ weights,
              "labels_only": fit_evidence(network, data, settings, seed, labels_only=True).evidence(data.rep2_x)
              @ weights}
    return {"combination": chosen,
            "fit_images": {"labeled_and_unlabeled": len(data.labeled_x) + len(data.unlabeled),
                           "labels_only": len(data.labeled_x)},
            **{name: detection_estimates(values, flags, n_resamples, seed) for name, values in scores.items()},
            "difference": detection_differences(scores["labeled_and_unlabeled"], scores["labels_only"], flags,
                                                n_resamples, seed)}


METRIC_NAMES = {"auroc": "ROC AUC", "average_precision": "average precision", "fpr_at_95_tpr": "FPR at 95 % TPR"}


def _with_interval(estimate) -> str:
    estimate = plain(estimate)
    return f"{estimate['value']:+.3f} [{estimate['ci'][0]:+.3f}, {estimate['ci'][1]:+.3f}]"


def versus_baseline_table(with_frame: dict, without_frame: dict, baseline: dict) -> pd.DataFrame:
    """Ours against the plain CNN on set 2, with and without the frame part: per score and metric, both values,
    the difference with its paired interval and the verdict it gives. `with_frame`, `without_frame`: {"ours":
    metric -> estimate, "versus_baseline": metric -> difference}; `baseline`: metric -> estimate."""
    rows = []
    for score, record in (("with frame (deployed)", with_frame), ("without frame", without_frame)):
        for metric, name in METRIC_NAMES.items():
            difference = record["versus_baseline"][metric]
            rows.append({"our score": score, "metric": name, "ours": f"{plain(record['ours'][metric])['value']:.3f}",
                         "baseline": f"{plain(baseline[metric])['value']:.3f}",
                         "ours − baseline [95 % interval]": _with_interval(difference),
                         "verdict": metrics.verdict(plain(difference), metric == "fpr_at_95_tpr")})
    return pd.DataFrame(rows)


def fit_on_labels_only_table(study: dict) -> pd.DataFrame:
    """The chosen combination with its detectors fitted on labeled and unlabeled images and on the labeled images
    alone (`fit_on_labels_only`): per metric, both values and the difference with its paired interval."""
    images = study["fit_images"]
    fitted_on = {"labeled_and_unlabeled": f"fitted on {images['labeled_and_unlabeled']:,} labeled + unlabeled",
                 "labels_only": f"fitted on {images['labels_only']:,} labeled"}
    return pd.DataFrame([{"metric on set 2": name,
                          **{title: f"{plain(study[key][metric])['value']:.3f}" for key, title in fitted_on.items()},
                          "difference [95 % interval]": _with_interval(study["difference"][metric]),
                          "verdict": metrics.verdict(plain(study["difference"][metric]), metric == "fpr_at_95_tpr")}
                         for metric, name in METRIC_NAMES.items()])


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


def _kmeans_record(z: np.ndarray, y: np.ndarray, n_resamples: int, seed: int) -> tuple[dict, np.ndarray]:
    """(k-means (five clusters, Hungarian matching) accuracy and NMI of a description against the classes `y`,
    with intervals; whether each image's matched cluster is its class)."""
    clusters = embedding.kmeans(z, 5, seed=seed).labels
    matched = embedding.hungarian_mapping(y, clusters)[clusters]
    accuracy = metrics.metric_with_ci(metrics.accuracy, y, matched, n_resamples=n_resamples, seed=seed)
    nmi = metrics.metric_with_ci(normalized_mutual_info_score, y, clusters, n_resamples=n_resamples, seed=seed)
    return {"dim": int(z.shape[1]), "kmeans_accuracy": Estimate(**accuracy), "nmi": Estimate(**nmi)}, matched == y


def description_quality(z: np.ndarray, answer_key: dict | None, n_resamples: int, seed: int) -> dict | None:
    """k-means (five clusters, Hungarian matching) accuracy and NMI of a description on the unlabeled images,
    with intervals (answer key; None without it)."""
    if answer_key is None:
        return None
    return _kmeans_record(z, answer_key["unlabeled_class"], n_resamples, seed)[0]


def load_baseline(ctx) -> torch.nn.Module:
    """Notebook 03's plain baseline CNN (the classifier alone, trained on the labeled images)."""
    return checkpoint.load_model(ctx.ws.path(ctx.ws.read_results("03_classification")["baseline_checkpoint"]),
                                 ctx.device)


def description_outputs(network, images: np.ndarray) -> dict[str, np.ndarray]:
    """Per image: the description `z`, the `logits` and `decoder_mse`, the mean squared error per pixel (pixels in
    [0, 1]) of the decoder's image drawn from the description alone."""
    network.eval()

    def outputs(x):
        out = network.outputs(x)
        decoded = network.decode(out["z"]).float()
        return {"z": out["z"], "logits": out["logits"], "decoder_mse": ((decoded - x.float()) ** 2).flatten(1).mean(1)}

    return batched(outputs, images, device_of(network))


DESCRIPTIONS = ("description", "baseline_pca10", "pixels_pca10")  # ours and the two references at equal dimension
RECONSTRUCTIONS = ("decoder", "pixels_pca10", "class_mean")  # from our ten numbers and the two references


def _mean_with_ci(values: np.ndarray, n_resamples: int, seed: int) -> Estimate:
    return Estimate(**metrics.metric_with_ci(np.mean, values, n_resamples=n_resamples, seed=seed))


def description_study(network, baseline, data, answer_key: dict | None, n_resamples: int, seed: int) -> dict:
    """What the description holds, on the unlabeled images, against references of the same dimension `d` (10),
    every one fitted on the unlabeled images without labels (the answer key only evaluates):
    - "kmeans": k-means (five clusters, Hungarian matching) accuracy and NMI with intervals of our description,
      of PCA-d of the plain baseline CNN's pooled last-stage features ("baseline_pca10", the fair reference: any
      network trained on the labels) and of PCA-d of the pixels ("pixels_pca10"); "kmeans_versus": our accuracy
      minus each reference's, paired (the same images); "within_class_share": the share of each description's
      variance within the classes (`embedding.within_class_share`). All three None without the answer key.
    - "reconstruction_mse": mean squared error per pixel (pixels in [0, 1]) with intervals, of the decoder's
      image from the description ("decoder"), of PCA-d of the pixels ("pixels_pca10") and of each image replaced
      by the mean image of the class our classifier predicts ("class_mean": the best a reconstruction knowing
      only the class can do); "reconstruction_versus": the decoder's minus each reference's, paired (lower is
      better: a negative difference to the class means says the description carries more than the class).
    The decoder learns from the description with the gradient stopped: its error bounds what the ten numbers
    hold from above, for what that decoder can draw."""
    ours = description_outputs(network, data.unlabeled)
    dim = int(ours["z"].shape[1])
    features = batched(baseline.outputs, data.unlabeled)[f"stage{len(baseline.stages) - 1}"]
    descriptions = {"description": ours["z"], "baseline_pca10": embedding.pca_of(features, dim, seed),
                    "pixels_pca10": embedding.pca_of(embedding.flat_pixels(data.unlabeled), dim, seed)}
    mse = {"decoder": ours["decoder_mse"].astype(np.float64),
           "pixels_pca10": embedding.pca_reconstruction_mse(data.unlabeled, dim, seed),
           "class_mean": embedding.class_mean_mse(data.unlabeled, ours["logits"].argmax(1))}
    study = {"images": len(data.unlabeled), "reference_dim": dim, "kmeans": None, "kmeans_versus": None,
             "within_class_share": None,
             "reconstruction_mse": {name: _mean_with_ci(mse[name], n_resamples, seed) for name in RECONSTRUCTIONS},
             "reconstruction_versus": {name: Estimate(**metrics.paired_difference(mse["decoder"], mse[name],
                                                                                   n_resamples, seed))
                                       for name in RECONSTRUCTIONS[1:]}}
    if answer_key is not None:
        y = answer_key["unlabeled_class"]
        records = {name: _kmeans_record(z, y, n_resamples, seed) for name, z in descriptions.items()}
        study["kmeans"] = {name: record for name, (record, _) in records.items()}
        study["kmeans_versus"] = {name: Estimate(**metrics.paired_difference(records["description"][1],
                                                                              records[name][1], n_resamples, seed))
                                  for name in DESCRIPTIONS[1:]}
        study["within_class_share"] = {name: embedding.within_class_share(z, y) for name, z in descriptions.items()}
    return study


STUDY_NAMES = {"baseline_pca10": "plain CNN's features, PCA-10", "pixels_pca10": "pixels, PCA-10",
               "class_mean": "predicted class's mean image"}
MSE_MEASURE = "reconstruction MSE (×10⁻³)"


def description_study_table(study: dict) -> pd.DataFrame:
    """The description study (`description_study`) as one table: per measure and reference, our value, the
    reference's, and where it exists the paired difference with its interval and the verdict it gives (for the
    reconstruction error, lower is better). The k-means rows need the answer key."""
    def value(estimate, scale, digits):
        estimate = plain(estimate)
        return (f"{scale * estimate['value']:.{digits}f} "
                f"[{scale * estimate['ci'][0]:.{digits}f}, {scale * estimate['ci'][1]:.{digits}f}]")

    def difference(estimate, scale, digits, lower_is_better=False):
        estimate = plain(estimate)
        return (f"{scale * estimate['value']:+.{digits}f} [{scale * estimate['ci'][0]:+.{digits}f}, "
                f"{scale * estimate['ci'][1]:+.{digits}f}]", metrics.verdict(estimate, lower_is_better))

    rows = []
    if study.get("kmeans"):
        kmeans, share = study["kmeans"], study["within_class_share"]
        for name in DESCRIPTIONS[1:]:
            shown, said = difference(study["kmeans_versus"][name], 100, 2)
            rows += [{"measure": "k-means accuracy (%)", "reference": STUDY_NAMES[name],
                      "ours": value(kmeans["description"]["kmeans_accuracy"], 100, 2),
                      "reference's": value(kmeans[name]["kmeans_accuracy"], 100, 2),
                      "ours − reference [95 % CI]": shown, "verdict": said},
                     {"measure": "k-means NMI", "reference": STUDY_NAMES[name],
                      "ours": value(kmeans["description"]["nmi"], 1, 3),
                      "reference's": value(kmeans[name]["nmi"], 1, 3),
                      "ours − reference [95 % CI]": "-", "verdict": "-"},
                     {"measure": "variance within classes (%)", "reference": STUDY_NAMES[name],
                      "ours": f"{100 * share['description']:.1f}", "reference's": f"{100 * share[name]:.1f}",
                      "ours − reference [95 % CI]": "-", "verdict": "-"}]
    mse = study["reconstruction_mse"]
    for name in RECONSTRUCTIONS[1:]:
        shown, said = difference(study["reconstruction_versus"][name], 1000, 2, lower_is_better=True)
        rows.append({"measure": MSE_MEASURE, "reference": STUDY_NAMES[name],
                     "ours": value(mse["decoder"], 1000, 2), "reference's": value(mse[name], 1000, 2),
                     "ours − reference [95 % CI]": shown, "verdict": said})
    return (pd.DataFrame(rows).sort_values("measure", kind="stable", key=lambda c: c.map(MEASURE_ORDER))
            .reset_index(drop=True))


MEASURE_ORDER = {"k-means accuracy (%)": 0, "k-means NMI": 1, "variance within classes (%)": 2,
                 MSE_MEASURE: 3}


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
    clean = data.rep2_x[~flags["rep2"]]
    evidence = {"unpadded": model.evidence(unpadded(clean)), "check": model.evidence(check.x) if check else None}
    out = {}
    for name, weights in (("with", combination_weights(chosen)), ("without", combination_weights(chosen, False))):
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
