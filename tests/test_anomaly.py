"""Notebook 04's evidence (lib.experiments.anomaly): the fitted parts of the deployed model with its kNN bank, one
seed's complete model, the unpadded images and the study of the frame part."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lib.config import Anomaly
from lib.data import load_answer_key
from lib.data.unseen import UnseenSet
from lib.detect import Mahalanobis
from lib.eval import embedding, metrics, protocol
from lib.experiments import anomaly
from lib.nn.infer import batched
from lib.notebook import _subset
from lib.render import tables
from lib.results import COMBINATIONS, FEATURE_PARTS, PART_REGISTRY, PARTS, plain
from tests.test_predict import tiny_network

SETTINGS = replace(Anomaly(), knn_bank=20, knn_k=3)  # the profile's `anomaly`, for 64 unlabeled images


@pytest.fixture(scope="module")
def replica(replica_assignment):
    """The first 64 images of every set of the replica, the answer key cut to match."""
    data = replica_assignment
    return _subset(data, load_answer_key(data), 64)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def in_bank(n: int, bank: int, seed: int) -> np.ndarray:
    chosen = np.zeros(n, dtype=bool)
    chosen[np.random.default_rng(seed).permutation(n)[:bank]] = True
    return chosen


def test_unpadded_fills_the_frame_with_the_article():
    images = np.zeros((3, 1, 32, 32), np.uint8)
    images[0, 0, 2:30, 2:30] = 200  # a constant article: the whole frame becomes that constant
    images[1, 0, 2:30, 2:30] = np.arange(28, dtype=np.uint8)[None, :] * 9  # a left-to-right ramp
    out = anomaly.unpadded(images)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert (out[0] == 200).all() and (out[2] == 0).all()
    assert (np.diff(out[1, 0].astype(int), axis=1) >= 0).all() and (out[1, 0, :, :2] < 10).all()
    assert out[1, 0, :, -1].min() == out[1].max() >= 9 * 27 - 1  # the ramp now reaches the edge
    assert (out[1, 0] == out[1, 0, :1]).all()  # rows stay identical
    # the same zoom as torch's bilinear interpolation of the inner 28x28
    x = torch.as_tensor(images[:, :, 2:-2, 2:-2]).float()
    expected = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).round().clamp(0, 255)
    np.testing.assert_array_equal(out, expected.to(torch.uint8).numpy())


def test_fit_evidence_fits_the_parts_on_training_data_and_keeps_the_bank_apart(replica):
    data, _ = replica
    network = tiny_network()
    model = anomaly.fit_evidence(network, data, SETTINGS, seed=3)
    unlabeled = batched(network.outputs, data.unlabeled)
    # the kNN bank: `knn_bank` unlabeled images drawn with the seed, their last stage's features (normalised)
    bank = in_bank(64, 20, seed=3)
    knn = model.detectors["knn"]
    assert knn.k == 3 and tuple(knn.bank.shape) == (20, unlabeled["stage2"].shape[1])
    features = unlabeled["stage2"][bank]  # the last stage's pooled features
    np.testing.assert_allclose(knn.bank.numpy(), features / np.linalg.norm(features, axis=1, keepdims=True),
                               atol=1e-5)
    # at most half the unlabeled images go in the bank
    assert model_bank(anomaly.fit_evidence(network, data, replace(SETTINGS, knn_bank=10_000), 3)) == 32
    assert not np.allclose(model_bank_of(anomaly.fit_evidence(network, data, SETTINGS, seed=4)), knn.bank.numpy())
    # every part is standardised on the other unlabeled images (a bank image finds itself in the bank)
    standardised = model.evidence(data.unlabeled[~bank])
    frame = PARTS.index("frame")
    np.testing.assert_allclose(standardised.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(np.delete(standardised.std(axis=0), frame), 1, atol=1e-3)
    assert np.abs(standardised[:, frame]).max() < 1e-3  # black frames: their standard deviation is floored
    # the Mahalanobis parts: the labeled images and the unlabeled ones with the network's own classes
    labeled = batched(network.outputs, data.labeled_x)
    y = np.concatenate([data.labeled_y, unlabeled["logits"].argmax(1)])
    for part in FEATURE_PARTS:
        name = PART_REGISTRY[part].reads
        reference = Mahalanobis().fit(np.concatenate([labeled[name], unlabeled[name]]), y, n_classes=5)
        np.testing.assert_allclose(model.detectors[part].score(unlabeled[name]), reference.score(unlabeled[name]),
                                   rtol=1e-5, atol=1e-5)


def model_bank_of(model) -> np.ndarray:
    return model.detectors["knn"].bank.numpy()


def model_bank(model) -> int:
    return len(model_bank_of(model))


def test_fit_on_labels_only_fits_every_statistic_on_the_labeled_images(replica):
    data, _ = replica
    network = tiny_network()
    model = anomaly.fit_evidence(network, data, SETTINGS, seed=3, labels_only=True)
    labeled = batched(network.outputs, data.labeled_x)
    # the Mahalanobis parts: the labeled images with their labels, nothing else
    for part in FEATURE_PARTS:
        name = PART_REGISTRY[part].reads
        reference = Mahalanobis().fit(labeled[name], data.labeled_y, n_classes=5)
        np.testing.assert_allclose(model.detectors[part].score(labeled[name]), reference.score(labeled[name]),
                                   rtol=1e-5, atol=1e-5)
    # the kNN bank: `knn_bank` labeled images; every part standardised on the other labeled images
    bank = in_bank(64, 20, seed=3)
    features = labeled["stage2"][bank]
    np.testing.assert_allclose(model_bank_of(model), features / np.linalg.norm(features, axis=1, keepdims=True),
                               atol=1e-5)
    np.testing.assert_allclose(model.evidence(data.labeled_x[~bank]).mean(axis=0), 0, atol=1e-4)


def test_seed_metrics_rebuild_the_complete_model(replica):
    data, key = replica
    flags = anomaly.is_anomaly(data)
    assert flags["rep1"].any() and flags["rep2"].any() and not flags["rep2"].all()
    network = tiny_network(seed=1)
    chosen = "features_knn_energy_frame"
    row = anomaly.seed_metrics(network, data, SETTINGS, 0, chosen, flags, None)
    assert set(row) == {"auroc_rep2", "ap_rep2", "fpr95_rep2", "macro_f1_rep2", "kmeans_unlabeled"}
    assert row["kmeans_unlabeled"] is None  # no answer key
    model = anomaly.fit_evidence(network, data, SETTINGS, 0)
    _, scores = anomaly.combination_scores(model, {"rep1": data.rep1_x, "rep2": data.rep2_x})
    assert row["auroc_rep2"] == pytest.approx(metrics.auroc(scores[chosen]["rep2"], flags["rep2"]))
    assert row["fpr95_rep2"] == pytest.approx(metrics.fpr_at_tpr(scores[chosen]["rep2"], flags["rep2"]))
    assert 0 <= row["macro_f1_rep2"] <= 1
    with_key = anomaly.seed_metrics(network, data, SETTINGS, 0, chosen, flags, key)
    assert 0 <= with_key["kmeans_unlabeled"] <= 1 and with_key["auroc_rep2"] == row["auroc_rep2"]


def test_frame_study_compares_the_chosen_score_with_and_without_its_frame(replica):
    data, _ = replica
    flags = anomaly.is_anomaly(data)
    model = anomaly.fit_evidence(tiny_network(seed=2), data, SETTINGS, 0)
    parts, _ = anomaly.combination_scores(model, {"rep1": data.rep1_x, "rep2": data.rep2_x})
    assert anomaly.frame_study(model, "features_every_depth", parts, flags, data, None) is None  # no frame part
    chosen = "features_every_depth_frame"
    clean = data.rep2_x[~flags["rep2"]]
    noise = np.random.default_rng(0).integers(0, 256, (6, 1, 32, 32), dtype=np.uint8)
    check = UnseenSet(np.concatenate([clean, noise]), np.array(["clean"] * len(clean) + ["uniform_noise"] * 6),
                      np.zeros(len(clean) + 6, np.int64), -np.ones((len(clean) + 6, 2), np.int64), 0)
    study = anomaly.frame_study(model, chosen, parts, flags, data, check)
    assert list(study) == ["with", "without"]
    weights = anomaly.combination_weights(chosen)
    assert anomaly.combination_weights(chosen, frame=False)[PARTS.index("frame")] == 0 < weights[PARTS.index("frame")]
    for name, used in (("with", weights), ("without", anomaly.combination_weights(chosen, frame=False))):
        row = study[name]
        rep1, rep2 = parts["rep1"] @ used, parts["rep2"] @ used
        threshold = protocol.fix_threshold({"rep1": rep1}, {"rep1": flags["rep1"]})
        assert row["threshold"] == pytest.approx(threshold)
        assert row["auroc_rep2"] == pytest.approx(metrics.auroc(rep2, flags["rep2"]))
        assert row["flagged_clean_rep2"] == pytest.approx((rep2[~flags["rep2"]] > threshold).mean())
        unpadded = model.evidence(anomaly.unpadded(clean)) @ used
        assert row["flagged_unpadded_rep2"] == pytest.approx((unpadded > threshold).mean())
        assert set(row["unseen_auroc"]) == {"uniform_noise"}
        checked = model.evidence(check.x) @ used
        assert row["unseen_auroc"]["uniform_noise"] == pytest.approx(metrics.auroc(checked, check.is_anomaly))
    assert set(COMBINATIONS[chosen]) - {"frame"} == set(COMBINATIONS["features_every_depth"])
    # the frame part reads the zero border: without it, unpadded articles are flagged (almost) as if padded
    assert study["with"]["flagged_unpadded_rep2"] > study["with"]["flagged_clean_rep2"]
    assert "unseen_auroc" not in anomaly.frame_study(model, chosen, parts, flags, data, None)["with"]


def test_frame_study_table():
    assert tables.frame_study(None) == "The chosen score has no frame part."
    row = {"auroc_rep2": 0.99, "ap_rep2": 0.9, "fpr95_rep2": 0.05, "threshold": 1.0, "flagged_clean_rep2": 0.01,
           "flagged_unpadded_rep2": 0.875}
    text = tables.frame_study({"with": {**row, "unseen_auroc": {"a": 0.97, "b": 0.9}}, "without": row})
    lines = text.splitlines()
    assert len(lines) == 4 and "| with frame" in lines[2] and "| without frame" in lines[3]
    assert "0.900" in lines[2] and "87.5" in lines[2] and "| 1.0 " in lines[2]
    assert lines[3].count("| -") == 1  # no unseen check: a dash


def detection_scores(seed: int = 0):
    """Set 2 stand-ins: flags, a score that separates well (ours) and one that separates less (the baseline's)."""
    rng = np.random.default_rng(seed)
    flags = np.r_[np.ones(30, bool), np.zeros(300, bool)]
    baseline = rng.normal(size=330) + 1.5 * flags
    return flags, baseline + 1.5 * flags + 0.1 * rng.normal(size=330), baseline


def test_baseline_estimates_and_the_paired_comparison_with_ours():
    flags, ours, baseline = detection_scores()
    detection = {"auroc": metrics.auroc, "average_precision": metrics.average_precision,
                 "fpr_at_95_tpr": metrics.fpr_at_tpr}
    estimates = anomaly.detection_estimates(baseline, flags, n_resamples=100, seed=0)
    assert list(estimates) == list(detection)
    versus = anomaly.detection_differences(ours, baseline, flags, 100, 0)
    assert list(versus) == list(detection)
    for name, metric in detection.items():
        assert estimates[name].value == pytest.approx(metric(baseline, flags))
        assert estimates[name].ci == pytest.approx(
            metrics.metric_with_ci(metric, baseline, flags, n_resamples=100, seed=0)["ci"])
        # ours minus the baseline, paired over the same images of set 2
        expected = metrics.paired_detection_difference(metric, ours, baseline, flags, 100, 0)
        assert versus[name].value == pytest.approx(metric(ours, flags) - metric(baseline, flags))
        assert versus[name].ci == pytest.approx(expected["ci"])
    # ours separates better: a higher ROC AUC, a lower FPR at 95 % TPR
    assert versus["auroc"].ci[0] > 0 and versus["fpr_at_95_tpr"].ci[1] < 0


def test_versus_baseline_without_frame_drops_only_the_frame_part(replica):
    data, _ = replica
    flags = anomaly.is_anomaly(data)["rep2"]
    parts, _ = anomaly.combination_scores(anomaly.fit_evidence(tiny_network(seed=2), data, SETTINGS, 0),
                                          {"rep2": data.rep2_x})
    baseline = np.random.default_rng(0).normal(size=len(flags)) + flags
    study = anomaly.versus_baseline_without_frame(parts["rep2"], "features_every_depth_frame", baseline, flags, 50, 0)
    assert list(study) == ["parts", "ours", "versus_baseline"] and study["parts"] == list(FEATURE_PARTS)
    ours = parts["rep2"] @ anomaly.combination_weights("features_every_depth")  # the same parts, no frame
    for name, metric in anomaly.DETECTION.items():
        assert study["ours"][name].value == pytest.approx(metric(ours, flags))
        difference = study["versus_baseline"][name]
        assert difference.value == pytest.approx(metric(ours, flags) - metric(baseline, flags))
        assert difference.ci == pytest.approx(metrics.paired_detection_difference(metric, ours, baseline, flags, 50,
                                                                                  0)["ci"])


def test_versus_baseline_table_gives_every_verdict_with_and_without_the_frame():
    flags, ours, baseline = detection_scores()
    estimates = anomaly.detection_estimates(baseline, flags, 100, 0)
    with_frame = {"ours": anomaly.detection_estimates(ours, flags, 100, 0),
                  "versus_baseline": anomaly.detection_differences(ours, baseline, flags, 100, 0)}
    without_frame = {"ours": estimates, "versus_baseline": anomaly.detection_differences(baseline, baseline, flags,
                                                                                         100, 0)}
    table = anomaly.versus_baseline_table(with_frame, plain(without_frame), estimates)  # records or their JSON
    assert list(table.columns) == ["our score", "metric", "ours", "baseline", "ours − baseline [95 % interval]",
                                   "verdict"]
    assert list(table["our score"]) == ["with frame (deployed)"] * 3 + ["without frame"] * 3
    # ours separates better: a higher ROC AUC and a lower FPR are both "better"; the baseline against itself: no
    # detectable difference
    verdicts = dict(zip(zip(table["our score"], table["metric"]), table["verdict"]))
    assert verdicts[("with frame (deployed)", "ROC AUC")] == verdicts[("with frame (deployed)", "FPR at 95 % TPR")] \
        == "better"
    assert set(table["verdict"][3:]) == {"no detectable difference"}
    assert table["baseline"][0] == f"{metrics.auroc(baseline, flags):.3f}" == table["ours"][3]


def test_fit_on_labels_only_reports_both_fits_and_their_paired_difference(replica):
    data, _ = replica
    flags = anomaly.is_anomaly(data)["rep2"]
    network, chosen = tiny_network(seed=1), "features_knn_energy_frame"
    parts, _ = anomaly.combination_scores(anomaly.fit_evidence(network, data, SETTINGS, 0), {"rep2": data.rep2_x})
    study = anomaly.fit_on_labels_only(network, data, SETTINGS, 0, chosen, parts["rep2"], flags, 50)
    assert list(study) == ["combination", "fit_images", "labeled_and_unlabeled", "labels_only", "difference"]
    assert study["combination"] == chosen and study["fit_images"] == {"labeled_and_unlabeled": 128, "labels_only": 64}
    weights = anomaly.combination_weights(chosen)
    scores = {"labeled_and_unlabeled": parts["rep2"] @ weights,
              "labels_only": anomaly.fit_evidence(network, data, SETTINGS, 0, labels_only=True).evidence(data.rep2_x)
              @ weights}
    assert not np.allclose(scores["labeled_and_unlabeled"], scores["labels_only"])
    for name, metric in anomaly.DETECTION.items():
        for fit, values in scores.items():
            assert study[fit][name].value == pytest.approx(metric(values, flags))
        assert study["difference"][name].value == pytest.approx(study["labeled_and_unlabeled"][name].value
                                                                - study["labels_only"][name].value)
        assert study["difference"][name].ci[0] <= study["difference"][name].ci[1]
    table = anomaly.fit_on_labels_only_table(plain(study))
    assert list(table.columns) == ["metric on set 2", "fitted on 128 labeled + unlabeled", "fitted on 64 labeled",
                                   "difference [95 % interval]", "verdict"]
    assert list(table["metric on set 2"]) == ["ROC AUC", "average precision", "FPR at 95 % TPR"]


def test_verdict_reads_the_interval_in_the_direction_of_the_metric():
    assert tables.verdict({"value": 0.01, "ci": [0.002, 0.02]}) == "better"
    assert tables.verdict({"value": -0.01, "ci": [-0.02, -0.001]}) == "worse"
    assert tables.verdict({"value": 0.01, "ci": [-0.001, 0.02]}) == "no detectable difference"
    assert tables.verdict({"value": 0.0, "ci": [0.0, 0.0]}) == "no detectable difference"
    # the FPR: lower is better, so a negative difference (ours minus the baseline) is better
    assert tables.verdict({"value": -0.01, "ci": [-0.02, -0.001]}, lower_is_better=True) == "better"
    assert tables.verdict({"value": 0.01, "ci": [0.002, 0.02]}, lower_is_better=True) == "worse"
    assert tables.verdict({"value": -0.01, "ci": [-0.02, 0.001]}, lower_is_better=True) == "no detectable difference"


def estimate(value, low, high):
    return {"value": value, "ci": [low, high]}


def test_versus_baseline_table_has_every_headline_number_and_its_verdict():
    accuracy = {"model": {"unlabeled": estimate(0.99, 0.985, 0.995), "rep2_clean": estimate(0.98, 0.97, 0.99)},
                "baseline": {"unlabeled": estimate(0.975, 0.97, 0.98), "rep2_clean": estimate(0.978, 0.97, 0.985)}}
    classification = {"accuracy": accuracy,
                      "gain_over_baseline": {"unlabeled": estimate(0.015, 0.012, 0.018),
                                             "rep2_clean": estimate(0.002, -0.004, 0.008)}}
    ood = {"rep2": {"auroc": estimate(0.99, 0.98, 0.995), "average_precision": estimate(0.9, 0.85, 0.95),
                    "fpr_at_95_tpr": estimate(0.02, 0.01, 0.03)},
           "baseline_rep2": {"auroc": estimate(0.95, 0.93, 0.97), "average_precision": estimate(0.92, 0.88, 0.95),
                             "fpr_at_95_tpr": estimate(0.1, 0.07, 0.13)},
           "versus_baseline_rep2": {"auroc": estimate(0.04, 0.02, 0.06),
                                    "average_precision": estimate(-0.02, -0.04, -0.005),
                                    "fpr_at_95_tpr": estimate(-0.08, -0.11, -0.05)}}
    table = tables.versus_baseline({"03_classification": classification, "04_ood_scoring": ood})
    assert list(table.columns) == ["metric", "ours", "baseline", "ours − baseline", "95 % interval", "verdict"]
    rows = table.set_index("metric")
    assert list(rows.index) == ["accuracy, 26,000 unlabeled (%)", "accuracy, set 2 clean (%)", "ROC AUC, set 2",
                                "average precision, set 2", "FPR at 95 % TPR, set 2"]
    assert tuple(rows.loc["accuracy, 26,000 unlabeled (%)"]) == ("99.00", "97.50", "+1.50", "[+1.20, +1.80]",
                                                                 "better")
    assert rows.loc["accuracy, set 2 clean (%)", "verdict"] == "no detectable difference"
    assert tuple(rows.loc["ROC AUC, set 2"]) == ("0.990", "0.950", "+0.040", "[+0.020, +0.060]", "better")
    assert rows.loc["average precision, set 2", "verdict"] == "worse"
    # the FPR fell: a negative difference, and lower is better
    assert tuple(rows.loc["FPR at 95 % TPR, set 2"]) == ("0.020", "0.100", "-0.080", "[-0.110, -0.050]", "better")


def test_description_study_compares_the_description_with_references_of_equal_dimension(replica):
    data, key = replica
    network, baseline = tiny_network(seed=1), tiny_network(seed=2)
    study = anomaly.description_study(network, baseline, data, key, n_resamples=50, seed=0)
    assert study["images"] == len(data.unlabeled) and study["reference_dim"] == 10
    # the decoder's error: its image from the description against the image, per pixel in [0, 1]
    outputs = batched(network.outputs, data.unlabeled)
    with torch.no_grad():
        decoded = network.decode(torch.as_tensor(outputs["z"])).numpy()
    x = data.unlabeled.astype(np.float32) / 255
    decoder = ((decoded - x) ** 2).reshape(len(x), -1).mean(1)
    mse = plain(study["reconstruction_mse"])
    assert mse["decoder"]["value"] == pytest.approx(decoder.mean(), rel=1e-4)
    assert mse["decoder"]["ci"][0] <= mse["decoder"]["value"] <= mse["decoder"]["ci"][1]
    classes = outputs["logits"].argmax(1)  # the class means of the classifier's predictions, no labels
    assert mse["class_mean"]["value"] == pytest.approx(embedding.class_mean_mse(data.unlabeled, classes).mean())
    assert mse["pixels_pca10"]["value"] == pytest.approx(embedding.pca_reconstruction_mse(data.unlabeled).mean())
    versus = plain(study["reconstruction_versus"])
    assert versus["class_mean"]["value"] == pytest.approx(decoder.mean() - mse["class_mean"]["value"], rel=1e-4)
    # k-means: ours as description_quality gives it, the references at equal dimension, paired differences
    kmeans = plain(study["kmeans"])
    assert kmeans["description"] == plain(anomaly.description_quality(outputs["z"], key, 50, 0))
    features = batched(baseline.outputs, data.unlabeled)["stage2"]
    reference = plain(anomaly.description_quality(embedding.pca_of(features, 10), key, 50, 0))
    assert kmeans["baseline_pca10"] == reference
    assert plain(study["kmeans_versus"])["baseline_pca10"]["value"] == pytest.approx(
        kmeans["description"]["kmeans_accuracy"]["value"] - reference["kmeans_accuracy"]["value"])
    assert set(study["within_class_share"]) == set(anomaly.DESCRIPTIONS)
    assert all(0 <= share <= 1 for share in study["within_class_share"].values())
    table = anomaly.description_study_table(study)
    assert list(table["measure"]).count("k-means accuracy (%)") == 2 and len(table) == 8
    # without the answer key the k-means comparison is absent and the reconstruction stays
    bare = anomaly.description_study(network, baseline, data, None, n_resamples=50, seed=0)
    assert bare["kmeans"] is bare["kmeans_versus"] is bare["within_class_share"] is None
    assert plain(bare["reconstruction_mse"]) == mse
    assert len(anomaly.description_study_table(bare)) == 2


def test_description_study_table_reads_lower_reconstruction_error_as_better():
    def e(value, low, high):
        return {"value": value, "ci": [low, high]}

    study = {"kmeans": None, "reconstruction_mse": {"decoder": e(0.020, 0.019, 0.021),
                                                    "pixels_pca10": e(0.025, 0.024, 0.026),
                                                    "class_mean": e(0.019, 0.018, 0.020)},
             "reconstruction_versus": {"pixels_pca10": e(-0.005, -0.006, -0.004),
                                       "class_mean": e(0.001, 0.0005, 0.0015)}}
    table = anomaly.description_study_table(study)
    assert table["verdict"].tolist() == ["better", "worse"]
    assert table["ours"].tolist() == ["20.00 [19.00, 21.00]"] * 2
    assert table["ours − reference [95 % CI]"].tolist()[0] == "-5.00 [-6.00, -4.00]"
