"""Evaluation metrics with 95 % bootstrap confidence intervals (docs/protocol.md).

Conventions
- Classification: class indices 0..k-1; `confusion_matrix` is counts[true, pred]
  (scikit-learn's orientation). Macro-F1 averages the F1 of every class
  0..k-1 (a class never predicted and never present scores 0), exactly like
  `sklearn.metrics.f1_score(labels=range(k), average="macro", zero_division=0)`.
- Anomaly detection: the anomaly is the positive class and scores are "higher =
  more anomalous". AUROC and average precision equal scikit-learn's
  `roc_auc_score` and `average_precision_score` (ties included; the tests check
  this). They are computed here rather than by calling scikit-learn because the
  bootstrap needs thousands of them: every metric below also accepts a matrix
  of per-item resampling counts and evaluates all resamples in one vectorised
  pass (sklearn takes milliseconds per call; pytorch-ood's AUPR interpolates
  differently from average precision when scores tie).
- FPR at 95 % TPR: let t* be the highest score threshold such that the rule
  "anomalous if score >= t*" flags at least 95 % of the anomalies; FPR95 is the
  fraction of normal images with score >= t* (normals tied with the anomaly at
  t* count as false positives).
- Flags at a fixed threshold t are "score > t" (strict), as in `predict`.

Threshold rule of the project: the threshold is fixed on representative set 1
only, as the one that maximises the anomaly F1 there (`threshold_best_f1`); it
sits halfway between the last flagged and the first unflagged score. With
anomalies ~5 % of the data, maximising F1 balances missed anomalies against
false alarms, and it is the quantity the six-class macro-F1 rewards.

Paired differences (`paired_difference`, `paired_auroc_difference`) compare two
models on the same items: the bootstrap resamples the items of both jointly.
"""

from __future__ import annotations

import numpy as np

from lib.data.replica import ANOMALY  # class index of anomalies in the six-class end-to-end labels

# --------------------------------------------------------------------------- weights and bootstrap


def _weighted(stratify_by: int | None = None):
    """Mark a metric that accepts `weights` (n,) or (B, n) resampling counts and returns one value per row.

    `stratify_by` is the index of the positional array the bootstrap stratifies
    on by default (the anomaly labels of OOD metrics), so every resample keeps
    the numbers of anomalies and normal images, and the metric stays defined.
    """

    def mark(function):
        function.supports_weights = True
        function.stratify_by = stratify_by
        return function

    return mark


def _weights(weights, n: int) -> tuple[np.ndarray, bool]:
    """(B, n) float weights, and whether the caller passed a single row (then return a scalar)."""
    if weights is None:
        return np.ones((1, n)), True
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape[-1] != n or weights.ndim > 2:
        raise ValueError(f"weights of shape {weights.shape} do not match {n} items")
    return np.atleast_2d(weights), weights.ndim == 1


def _result(values: np.ndarray, single: bool):
    return float(values[0]) if single else values


def _resample_indices(rng: np.random.Generator, n: int, size: int, strata: list[np.ndarray] | None) -> np.ndarray:
    """(size, n) item indices drawn with replacement, within each stratum when strata are given."""
    if strata is None:
        return rng.integers(0, n, size=(size, n))
    return np.concatenate([members[rng.integers(0, len(members), size=(size, len(members)))]
                           for members in strata], axis=1)


def bootstrap_ci(metric, *arrays, n_resamples: int, seed: int, level: float = 0.95, stratify=None,
                 **metric_kwargs) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric(*arrays, **metric_kwargs)`.

    Items (rows of every array, jointly) are resampled with replacement.
    `stratify`: None uses the metric's default (OOD metrics stratify on their
    anomaly labels, others do not), False turns stratification off, an array of
    group labels resamples within each group. Metrics of this module are
    evaluated on all resamples at once (as resampling counts); any other
    callable is called once per resample.
    """
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError("bootstrap_ci: all arrays must have the same number of items")
    if stratify is None and getattr(metric, "stratify_by", None) is not None:
        stratify = arrays[metric.stratify_by]
    strata = None
    if stratify is not None and stratify is not False:
        groups = np.asarray(stratify)
        strata = [np.flatnonzero(groups == value) for value in np.unique(groups)]
    rng = np.random.default_rng(seed)
    vectorised = getattr(metric, "supports_weights", False)
    chunk = max(1, 4_000_000 // n)  # bounds the (chunk, n) count matrix to a few tens of MB
    values = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        indices = _resample_indices(rng, n, size, strata)
        if vectorised:
            offsets = (indices + n * np.arange(size)[:, None]).ravel()
            counts = np.bincount(offsets, minlength=size * n).reshape(size, n)
            values.append(np.atleast_1d(metric(*arrays, weights=counts, **metric_kwargs)))
        else:
            values.append([metric(*(a[row] for a in arrays), **metric_kwargs) for row in indices])
    values = np.concatenate(values).astype(np.float64)
    alpha = (1 - level) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def metric_with_ci(metric, *arrays, n_resamples: int, seed: int, level: float = 0.95, stratify=None,
                   **metric_kwargs) -> dict:
    """{"value": metric on the data, "ci": [low, high]} (the form results JSON uses)."""
    value = float(metric(*arrays, **metric_kwargs))
    low, high = bootstrap_ci(metric, *arrays, n_resamples=n_resamples, seed=seed, level=level,
                             stratify=stratify, **metric_kwargs)
    return {"value": value, "ci": [low, high]}


# --------------------------------------------------------------------------- classification


@_weighted()
def accuracy(y_true, y_pred, weights=None):
    correct = np.asarray(y_true) == np.asarray(y_pred)
    w, single = _weights(weights, len(correct))
    return _result(w @ correct / w.sum(axis=1), single)


@_weighted()
def confusion_matrix(y_true, y_pred, n_classes: int, weights=None) -> np.ndarray:
    """counts[true, pred] as a (k, k) array, or (B, k, k) for a matrix of weights."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    w, single = _weights(weights, len(y_true))
    cell = np.eye(n_classes * n_classes)[y_true * n_classes + y_pred]  # (n, k*k) one-hot of each item's cell
    counts = (w @ cell).reshape(len(w), n_classes, n_classes)
    return counts[0] if single else counts


def per_class_recall(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Recall of every class (NaN for a class absent from y_true)."""
    counts = confusion_matrix(y_true, y_pred, n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(counts) / counts.sum(axis=1)


@_weighted()
def macro_f1(y_true, y_pred, n_classes: int, weights=None):
    """Unweighted mean of the per-class F1 over classes 0..n_classes-1 (sklearn's macro-F1)."""
    w, single = _weights(weights, len(y_true))
    counts = confusion_matrix(y_true, y_pred, n_classes, weights=w)  # (B, k, k)
    tp = np.diagonal(counts, axis1=1, axis2=2)
    denominator = counts.sum(axis=1) + counts.sum(axis=2)  # predicted + true = 2 tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp, dtype=np.float64), where=denominator > 0)
    return _result(f1.mean(axis=1), single)


def _bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins [b/B, (b+1)/B) of [0, 1]; a confidence of exactly 1 falls in the last bin."""
    return np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)


@_weighted()
def expected_calibration_error(probs, y_true, n_bins: int = 15, weights=None):
    """ECE: sum over equal-width confidence bins of (bin share) * |accuracy - mean confidence|.

    `probs` (n, k) are predicted class probabilities; confidence is their
    maximum and the prediction their argmax.
    """
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    w, single = _weights(weights, len(probs))
    gap = np.eye(n_bins)[_bins(confidence, n_bins)] * (correct - confidence)[:, None]  # (n, bins)
    return _result(np.abs(w @ gap).sum(axis=1) / w.sum(axis=1), single)


def reliability_diagram(probs, y_true, n_bins: int = 15) -> dict:
    """Per equal-width bin: edges, mean confidence, accuracy, count (NaN where a bin is empty)."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    bins = _bins(confidence, n_bins)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, confidence, minlength=n_bins) / count
        bin_accuracy = np.bincount(bins, correct, minlength=n_bins) / count
    return {"edges": np.linspace(0, 1, n_bins + 1), "confidence": mean_confidence,
            "accuracy": bin_accuracy, "count": count}


# --------------------------------------------------------------------------- anomaly detection


def _curve(scores, is_anomaly, weights):
    """Distinct thresholds (descending) and weighted true/false positive counts of "score >= threshold"."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(is_anomaly, dtype=bool)
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {positive.shape} must be 1-D and of the same length")
    if np.isnan(scores).any():
        raise ValueError("anomaly scores contain NaN")
    w, single = _weights(weights, len(scores))
    order = np.argsort(-scores, kind="stable")
    ordered = scores[order]
    ends = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]  # last item of each group of equal scores
    w = w[:, order]
    tps = np.cumsum(w * positive[order], axis=1)[:, ends]
    fps = np.cumsum(w * ~positive[order], axis=1)[:, ends]
    if (tps[:, -1] == 0).any() or (fps[:, -1] == 0).any():
        raise ValueError("anomaly metrics need both anomalies and normal images")
    return ordered[ends], tps, fps, single


def detection_curves(scores, is_anomaly) -> dict[str, np.ndarray]:
    """The ROC and precision-recall curves whose areas `auroc` and `average_precision` measure: `fpr`, `tpr`
    (from (0, 0)), `precision`, `recall`, one point per distinct threshold, highest threshold first."""
    _, tps, fps, _ = _curve(scores, is_anomaly, None)
    tps, fps = tps[0], fps[0]
    return {"fpr": np.r_[0.0, fps / fps[-1]], "tpr": np.r_[0.0, tps / tps[-1]],
            "precision": tps / (tps + fps), "recall": tps / tps[-1]}


@_weighted(stratify_by=1)
def auroc(scores, is_anomaly, weights=None):
    """Area under the ROC curve (ties count one half), = sklearn.metrics.roc_auc_score."""
    _, tps, fps, single = _curve(scores, is_anomaly, weights)
    d_fps = np.diff(fps, axis=1, prepend=0)
    tps_before = np.concatenate([np.zeros((len(tps), 1)), tps[:, :-1]], axis=1)
    area = (d_fps * (tps + tps_before) / 2).sum(axis=1)
    return _result(area / (tps[:, -1] * fps[:, -1]), single)


@_weighted(stratify_by=1)
def average_precision(scores, is_anomaly, weights=None):
    """Sum over thresholds of (recall increase) x precision, = sklearn.metrics.average_precision_score."""
    _, tps, fps, single = _curve(scores, is_anomaly, weights)
    flagged = tps + fps
    precision = np.divide(tps, flagged, out=np.ones_like(tps), where=flagged > 0)
    recall_gain = np.diff(tps, axis=1, prepend=0) / tps[:, -1:]
    return _result((recall_gain * precision).sum(axis=1), single)


@_weighted(stratify_by=1)
def fpr_at_tpr(scores, is_anomaly, tpr: float = 0.95, weights=None):
    """Fraction of normal images scored >= the highest threshold that flags >= `tpr` of the anomalies."""
    _, tps, fps, single = _curve(scores, is_anomaly, weights)
    reached = tps >= tpr * tps[:, -1:] - 1e-9  # tolerance: 0.95 * n is not exact in floating point
    first = reached.argmax(axis=1)
    return _result(fps[np.arange(len(fps)), first] / fps[:, -1], single)


def detection_at_threshold(scores, is_anomaly, threshold: float) -> dict:
    """Precision, recall (= TPR), F1 and FPR of the flags "score > threshold"."""
    flag = np.asarray(scores) > threshold
    positive = np.asarray(is_anomaly, dtype=bool)
    tp, fp, fn = int((flag & positive).sum()), int((flag & ~positive).sum()), int((~flag & positive).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    n_normal = int((~positive).sum())
    return {"precision": precision, "recall": recall, "f1": f1, "fpr": fp / n_normal if n_normal else 0.0,
            "flagged": int(flag.sum())}


def threshold_best_f1(scores, is_anomaly) -> float:
    """The threshold whose flags "score > threshold" maximise the anomaly F1 (highest one among ties).

    Candidates separate consecutive distinct scores; the threshold returned is
    the midpoint between the lowest flagged and the highest unflagged score.
    """
    thresholds, tps, fps, _ = _curve(scores, is_anomaly, None)
    tps, fps = tps[0], fps[0]
    f1 = 2 * tps / (tps + fps + tps[-1])  # 2 tp / (2 tp + fp + fn), with fn = n_anomalies - tp
    best = int(f1.argmax())
    if best == len(thresholds) - 1:  # flag everything: just below the lowest score
        return float(np.nextafter(thresholds[best], -np.inf))
    return float((thresholds[best] + thresholds[best + 1]) / 2)


# --------------------------------------------------------------------------- six classes end to end


def end_to_end_predictions(class_pred, anomaly_flag) -> np.ndarray:
    """Six-class labels: the predicted class 0..4, replaced by 5 (anomaly) where flagged."""
    return np.where(np.asarray(anomaly_flag, dtype=bool), ANOMALY, np.asarray(class_pred)).astype(np.int64)


# --------------------------------------------------------------------------- paired differences


@_weighted()
def mean_difference(a, b, weights=None):
    """mean(a) - mean(b) (e.g. of per-item correctness); with resampling counts, one value per resample."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if weights is None:
        return float(d.mean())
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    return w @ d / w.sum(axis=1)


def detection_difference(metric):
    """metric(a) - metric(b) of two scores of the same items (per resample with `weights`), for a detection metric
    of this module (`auroc`, `average_precision`, `fpr_at_tpr`); resamples keep the number of anomalies."""

    @_weighted(stratify_by=2)
    def difference(scores_a, scores_b, is_anomaly, weights=None):
        return metric(scores_a, is_anomaly, weights=weights) - metric(scores_b, is_anomaly, weights=weights)

    return difference


auroc_difference = detection_difference(auroc)


def verdict(difference: dict, lower_is_better: bool = False) -> str:
    """"better", "worse" or "no detectable difference": where the 95 % interval of ours minus the reference lies."""
    low, high = difference["ci"]
    if lower_is_better:
        low, high = -high, -low
    return "better" if low > 0 else "worse" if high < 0 else "no detectable difference"


def paired_difference(correct_a, correct_b, n_resamples: int, seed: int, level: float = 0.95) -> dict:
    """Difference of two accuracies on the same items, mean(a) - mean(b), with a paired bootstrap interval:
    the items of both arrays are resampled jointly, so the interval reflects only how the two models differ
    on the same images (much narrower than two separate intervals)."""
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need two 1-D arrays of the same non-zero length, got {a.shape} and {b.shape}")
    return metric_with_ci(mean_difference, a, b, n_resamples=n_resamples, seed=seed, level=level)


def paired_detection_difference(metric, scores_a, scores_b, is_anomaly, n_resamples: int, seed: int,
                                level: float = 0.95) -> dict:
    """metric(a) - metric(b) on the same items, with a paired bootstrap interval; anomalies and normal images are
    resampled separately (their numbers stay fixed, as in the metric's own intervals)."""
    a, b = np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)
    positive = np.asarray(is_anomaly, dtype=bool)
    if a.shape != b.shape or a.shape != positive.shape:
        raise ValueError(f"scores {a.shape}, {b.shape} and labels {positive.shape} must have the same shape")
    return metric_with_ci(detection_difference(metric), a, b, positive, n_resamples=n_resamples, seed=seed,
                          level=level)


def paired_auroc_difference(scores_a, scores_b, is_anomaly, n_resamples: int, seed: int, level: float = 0.95) -> dict:
    """AUROC(a) - AUROC(b) on the same items, with a paired bootstrap interval."""
    return paired_detection_difference(auroc, scores_a, scores_b, is_anomaly, n_resamples, seed, level)
