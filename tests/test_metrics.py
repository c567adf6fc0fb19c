"""Metrics on hand-made cases with known answers, and agreement with scikit-learn."""


import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score, roc_curve

from lib.eval import metrics


def test_perfect_separation():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 1.0])
    anomaly = np.array([0, 0, 0, 1, 1], bool)
    assert metrics.auroc(scores, anomaly) == 1.0
    assert metrics.average_precision(scores, anomaly) == 1.0
    assert metrics.fpr_at_tpr(scores, anomaly) == 0.0


def test_fpr95_is_exactly_one_half():
    # 20 anomalies scored 10..29: catching >= 95 % (19) needs threshold 11; half the normals score 20 >= 11
    anomalies = np.arange(10.0, 30.0)
    normals = np.r_[np.zeros(10), np.full(10, 20.0)]
    scores = np.r_[anomalies, normals]
    anomaly = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    assert metrics.fpr_at_tpr(scores, anomaly) == 0.5


def test_reversed_scores_and_ties():
    anomaly = np.array([1, 1, 0, 0], bool)
    assert metrics.auroc(np.array([0.0, 0.0, 1.0, 1.0]), anomaly) == 0.0
    assert metrics.auroc(np.ones(4), anomaly) == 0.5  # all tied: one half
    assert metrics.fpr_at_tpr(np.ones(4), anomaly) == 1.0


def test_agrees_with_sklearn_on_tied_random_scores():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(30, 200))
        anomaly = rng.random(n) < 0.2
        anomaly[:2] = (True, False)
        scores = np.round(rng.normal(size=n) + anomaly, 1)  # rounding makes ties
        assert metrics.auroc(scores, anomaly) == pytest.approx(roc_auc_score(anomaly, scores), abs=1e-12)
        assert metrics.average_precision(scores, anomaly) == pytest.approx(
            average_precision_score(anomaly, scores), abs=1e-12)
        fpr, tpr, _ = roc_curve(anomaly, scores)
        assert metrics.fpr_at_tpr(scores, anomaly) == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-12)
        y_true, y_pred = rng.integers(0, 6, n), rng.integers(0, 6, n)
        assert metrics.macro_f1(y_true, y_pred, 6) == pytest.approx(
            f1_score(y_true, y_pred, labels=range(6), average="macro", zero_division=0), abs=1e-12)


def test_classification_basics():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    counts = metrics.confusion_matrix(y_true, y_pred, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]  # counts[true, pred]
    assert metrics.per_class_recall(y_true, y_pred, 3).tolist() == [0.5, 1.0, 0.5]


def test_weights_equal_explicit_resampling():
    rng = np.random.default_rng(1)
    scores, anomaly = rng.normal(size=50), rng.random(50) < 0.3
    indices = rng.integers(0, 50, 50)
    counts = np.bincount(indices, minlength=50)
    assert metrics.auroc(scores, anomaly, weights=counts) == pytest.approx(
        metrics.auroc(scores[indices], anomaly[indices]))
    y_true, y_pred = rng.integers(0, 5, 50), rng.integers(0, 5, 50)
    assert metrics.macro_f1(y_true, y_pred, 5, weights=counts) == pytest.approx(
        metrics.macro_f1(y_true[indices], y_pred[indices], 5))


def test_bootstrap_contains_estimate_and_shrinks():
    rng = np.random.default_rng(2)

    def width_and_check(n):
        y_true = rng.integers(0, 5, n)
        y_pred = np.where(rng.random(n) < 0.9, y_true, (y_true + 1) % 5)
        result = metrics.metric_with_ci(metrics.accuracy, y_true, y_pred, n_resamples=300, seed=0)
        low, high = result["ci"]
        assert low <= result["value"] <= high
        return high - low

    assert width_and_check(10_000) < width_and_check(200) / 3


def test_bootstrap_stratifies_ood_metrics():
    rng = np.random.default_rng(3)
    anomaly = np.r_[np.zeros(1000, bool), np.ones(52, bool)]
    scores = rng.normal(size=1052) + 2.5 * anomaly
    low, high = metrics.bootstrap_ci(metrics.auroc, scores, anomaly, n_resamples=1000, seed=0)
    assert low <= metrics.auroc(scores, anomaly) <= high
    # a generic callable takes the per-resample path and gives the same interval for the same seed
    generic = metrics.bootstrap_ci(lambda s, a: metrics.auroc(s, a), scores, anomaly, n_resamples=200, seed=0,
                                   stratify=anomaly)
    assert generic == pytest.approx(metrics.bootstrap_ci(metrics.auroc, scores, anomaly, n_resamples=200, seed=0))


def test_ece_of_calibrated_predictions_is_zero():
    # 10 predictions at confidence 0.8 of which 8 are right; 10 at 0.6 of which 6 are right
    probs = np.r_[np.tile([0.8, 0.2], (10, 1)), np.tile([0.4, 0.6], (10, 1))]
    y_true = np.r_[np.zeros(8), np.ones(2), np.ones(6), np.zeros(4)].astype(int)
    assert metrics.expected_calibration_error(probs, y_true, n_bins=10) == pytest.approx(0.0, abs=1e-12)
    overconfident = np.tile([1.0, 0.0], (20, 1))  # always class 0 at confidence 1, right 12 times in 20
    assert metrics.expected_calibration_error(overconfident, y_true, n_bins=10) == pytest.approx(0.4)
    diagram = metrics.reliability_diagram(probs, y_true, n_bins=10)
    assert diagram["count"].sum() == 20 and diagram["accuracy"][8] == pytest.approx(0.8)


def test_threshold_of_best_f1():
    normal = np.arange(100.0)  # 0..99
    scores = np.r_[normal, [150.0, 160.0, 98.5]]
    anomaly = np.r_[np.zeros(100, bool), np.ones(3, bool)]
    threshold = metrics.threshold_best_f1(scores, anomaly)
    # flagging {160, 150} gives F1 = 4/5; flagging down to 98.5 also flags the normal 99: F1 = 6/7, the best
    assert threshold == pytest.approx((98.5 + 98.0) / 2)
    assert metrics.detection_at_threshold(scores, anomaly, threshold)["f1"] == pytest.approx(6 / 7)
    separable = metrics.threshold_best_f1(np.array([0.0, 1.0, 5.0, 6.0]), np.array([0, 0, 1, 1], bool))
    assert separable == 3.0


def test_end_to_end():
    predictions = metrics.end_to_end_predictions(np.array([0, 1, 4, 2]), np.array([False, True, False, True]))
    assert predictions.tolist() == [0, 5, 4, 5]
    y_true = np.array([0, 5, 4, 2])
    six_class = metrics.end_to_end_predictions(np.array([0, 1, 4, 2]), np.array([0, 1, 0, 0], bool))
    assert metrics.macro_f1(y_true, six_class, n_classes=6) == \
        pytest.approx(f1_score(y_true, [0, 5, 4, 2], labels=range(6), average="macro", zero_division=0))


def test_detection_curves_are_the_curves_the_areas_measure():
    rng = np.random.default_rng(3)
    flags = rng.random(300) < 0.1
    scores = np.round(rng.normal(size=300) + 1.5 * flags, 1)  # rounded: ties between thresholds
    curves = metrics.detection_curves(scores, flags)
    assert np.trapezoid(curves["tpr"], curves["fpr"]) == pytest.approx(metrics.auroc(scores, flags))
    precision, recall, _ = precision_recall_curve(flags, scores)
    np.testing.assert_allclose(curves["precision"], precision[:-1][::-1])
    np.testing.assert_allclose(curves["recall"], recall[:-1][::-1])


# --------------------------------------------------------------------------- paired differences


def test_paired_difference():
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.95
    b = a.copy()
    b[:200] = False  # b is wrong on 200 more items (a few of which a also gets wrong)
    diff = metrics.paired_difference(a, b, n_resamples=500, seed=0)
    assert diff["value"] == pytest.approx(a.mean() - b.mean())
    assert 0 < diff["ci"][0] < diff["value"] < diff["ci"][1]
    reverse = metrics.paired_difference(b, a, n_resamples=500, seed=0)
    assert reverse["value"] == pytest.approx(-diff["value"]) and reverse["ci"][1] < 0
    same = metrics.paired_difference(a, a, n_resamples=200, seed=0)
    assert same["value"] == 0.0 and same["ci"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="same non-zero length"):
        metrics.paired_difference(a, b[:10], n_resamples=10, seed=0)


def test_paired_intervals_are_bootstrap_ci_of_the_difference():
    """Both paired intervals are `bootstrap_ci` of the plain difference (all arrays resampled jointly; the
    AUROC difference within anomalies and normal images): the vectorised metrics change nothing but speed."""
    rng = np.random.default_rng(1)
    a, b = rng.random(300) < 0.8, rng.random(300) < 0.7
    diff = metrics.paired_difference(a, b, n_resamples=200, seed=3)
    plain = metrics.bootstrap_ci(lambda x, y: x.mean() - y.mean(), a.astype(float), b.astype(float),
                                 n_resamples=200, seed=3)
    assert diff["ci"] == pytest.approx(list(plain))
    assert metrics.mean_difference(a, b) == pytest.approx(a.mean() - b.mean())
    is_anomaly = np.r_[np.ones(20, bool), np.zeros(100, bool)]
    s1, s2 = rng.normal(size=120) + is_anomaly, rng.normal(size=120) + 2 * is_anomaly
    diff = metrics.paired_auroc_difference(s1, s2, is_anomaly, n_resamples=100, seed=4)
    plain = metrics.bootstrap_ci(lambda x, y, z: metrics.auroc(x, z) - metrics.auroc(y, z), s1, s2, is_anomaly,
                                 n_resamples=100, seed=4, stratify=is_anomaly)
    assert diff["ci"] == pytest.approx(list(plain))
    assert diff["value"] == pytest.approx(metrics.auroc(s1, is_anomaly) - metrics.auroc(s2, is_anomaly))
    assert metrics.auroc_difference(s1, s2, is_anomaly) == pytest.approx(diff["value"])


def test_paired_auroc_difference():
    rng = np.random.default_rng(0)
    is_anomaly = np.r_[np.ones(30, bool), np.zeros(300, bool)]
    good = rng.normal(size=330) + 3 * is_anomaly
    weak = rng.normal(size=330) + 0.5 * is_anomaly
    diff = metrics.paired_auroc_difference(good, weak, is_anomaly, n_resamples=300, seed=0)
    assert diff["value"] == pytest.approx(roc_auc_score(is_anomaly, good) - roc_auc_score(is_anomaly, weak))
    assert 0 < diff["ci"][0] < diff["value"] < diff["ci"][1]
    assert metrics.paired_auroc_difference(good, good, is_anomaly, n_resamples=50, seed=0)["ci"] == [0.0, 0.0]
    with pytest.raises(ValueError, match="must have the same shape"):
        metrics.paired_auroc_difference(good, weak[:10], is_anomaly, n_resamples=10, seed=0)


DETECTION_METRICS = (metrics.auroc, metrics.average_precision, metrics.fpr_at_tpr)


def test_detection_difference_is_the_difference_of_the_two_metrics():
    rng = np.random.default_rng(2)
    is_anomaly = np.r_[np.ones(25, bool), np.zeros(150, bool)]
    a, b = rng.normal(size=175) + 2 * is_anomaly, rng.normal(size=175) + is_anomaly
    weights = rng.integers(0, 3, size=(4, 175))
    for metric in DETECTION_METRICS:
        difference = metrics.detection_difference(metric)
        assert difference.supports_weights and difference.stratify_by == 2  # resamples keep the anomalies
        assert difference(a, b, is_anomaly) == pytest.approx(metric(a, is_anomaly) - metric(b, is_anomaly))
        # per resample: one difference per row of counts
        np.testing.assert_allclose(difference(a, b, is_anomaly, weights=weights),
                                   [metric(a, is_anomaly, weights=w) - metric(b, is_anomaly, weights=w)
                                    for w in weights])
    # the AUROC difference is the detection difference of `auroc`
    assert metrics.auroc_difference(a, b, is_anomaly) == pytest.approx(
        metrics.detection_difference(metrics.auroc)(a, b, is_anomaly))
    assert metrics.auroc_difference(a, b, is_anomaly) == pytest.approx(
        roc_auc_score(is_anomaly, a) - roc_auc_score(is_anomaly, b))


def test_paired_detection_difference():
    rng = np.random.default_rng(3)
    is_anomaly = np.r_[np.ones(40, bool), np.zeros(400, bool)]
    base = rng.normal(size=440) + 1.5 * is_anomaly
    better = base + 1.0 * is_anomaly + 0.1 * rng.normal(size=440)  # the same items, each anomaly pushed up
    for metric in DETECTION_METRICS:
        diff = metrics.paired_detection_difference(metric, better, base, is_anomaly, n_resamples=300, seed=0)
        assert set(diff) == {"value", "ci"}
        assert diff["value"] == pytest.approx(metric(better, is_anomaly) - metric(base, is_anomaly))
        low, high = diff["ci"]
        assert low <= diff["value"] <= high
        # the paired interval: one resample of the items for both scores, anomalies and normal images apart
        plain = metrics.bootstrap_ci(lambda x, y, z, m=metric: m(x, z) - m(y, z), better, base, is_anomaly,
                                     n_resamples=300, seed=0, stratify=is_anomaly)
        assert diff["ci"] == pytest.approx(list(plain))
        # a score against itself: no difference in any resample
        same = metrics.paired_detection_difference(metric, base, base, is_anomaly, n_resamples=50, seed=0)
        assert same["value"] == 0.0 and same["ci"] == [0.0, 0.0]
    # the better score: higher AUROC and AP, lower FPR at 95 % TPR, each interval clear of zero
    assert metrics.paired_detection_difference(metrics.auroc, better, base, is_anomaly, 300, 0)["ci"][0] > 0
    assert metrics.paired_detection_difference(metrics.average_precision, better, base, is_anomaly, 300, 0)["ci"][0] > 0
    assert metrics.paired_detection_difference(metrics.fpr_at_tpr, better, base, is_anomaly, 300, 0)["ci"][1] < 0
    # pairing: narrower than the difference of two independent resamplings of the items
    paired = metrics.paired_detection_difference(metrics.auroc, better, base, is_anomaly, 300, 0)["ci"]
    unpaired = np.subtract(
        [metrics.auroc(better[i], is_anomaly[i]) for i in _stratified(is_anomaly, 300, seed=1)],
        [metrics.auroc(base[i], is_anomaly[i]) for i in _stratified(is_anomaly, 300, seed=2)])
    low, high = np.quantile(unpaired, [0.025, 0.975])
    assert paired[1] - paired[0] < 0.5 * (high - low)
    # the AUROC case is `paired_auroc_difference`
    assert metrics.paired_auroc_difference(better, base, is_anomaly, n_resamples=300, seed=0) == \
        metrics.paired_detection_difference(metrics.auroc, better, base, is_anomaly, n_resamples=300, seed=0)
    with pytest.raises(ValueError, match="must have the same shape"):
        metrics.paired_detection_difference(metrics.fpr_at_tpr, better, base[:10], is_anomaly, 10, 0)


def _stratified(is_anomaly, n_resamples, seed):
    """Item indices of bootstrap resamples that keep the numbers of anomalies and normal images."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(is_anomaly), np.flatnonzero(~is_anomaly)]
    return [np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups]) for _ in range(n_resamples)]
