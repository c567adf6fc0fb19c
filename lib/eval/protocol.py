"""The evaluation protocol (docs/protocol.md) as functions: every choice is made on the labeled validation split
or on representative set 1; representative set 2 only ever reaches `final_evaluation`.

- `choose_variant`: the project's model with or without the unlabeled images: the more complex variant only
  when it beats the simpler one on set 1's clean images by more than the seed spread;
- `choose_score`: the deployable anomaly score with the highest ROC AUC on set 1 (ties: average precision);
- `fix_threshold`: the threshold of best anomaly F1 on set 1 (`lib.eval.metrics.threshold_best_f1`);
- `final_evaluation`: the deployed model's numbers on set 2, with bootstrap intervals.

The functions take whole tables (every set's numbers side by side, as the
notebooks hold them) and pick the columns they may use, so a test can hand them
a set 2 with scrambled labels and check that no choice moves. Each choice comes
back as a `lib.results.Decision` with its rule and the numbers it read.
"""

from __future__ import annotations

import numpy as np

from lib.eval import metrics
from lib.results import Decision

CHOICE_SET = "rep1"  # representative set 1: every choice
CHOICE_CLEAN = "rep1_clean"  # its clean images: the choice between the model's variants
VARIANT_RULE = ("the richer variant with the highest mean accuracy over seeds on set 1's clean images, if that mean "
                "exceeds the simpler variant's by more than the larger of the two seed standard deviations; else the "
                "simpler variant")
SCORE_RULE = "the highest ROC AUC on set 1 (ties: average precision, then listing order)"
THRESHOLD_RULE = "the best anomaly F1 on set 1"


def choose_variant(per_seed: dict[str, dict[str, list[float]]], simpler: str,
                   richer: str | list[str]) -> Decision:
    """Among the `richer` variants (one name or several), those whose mean accuracy over seeds on set 1's clean
    images exceeds `simpler`'s by more than the larger of the two seed standard deviations; of them the one with
    the highest mean (ties: listing order); if none, `simpler`. With one seed there is no spread to beat, so the
    simpler variant stays.

    `per_seed[variant][set]`: one accuracy per seed; sets other than set 1's clean images are never read.
    """
    candidates = [richer] if isinstance(richer, str) else list(richer)
    simple = np.asarray(per_seed[simpler][CHOICE_CLEAN], dtype=float)
    evidence = {"mean": {simpler: float(simple.mean())}, "std": {simpler: _std(simple)}, "gain": {},
                "seeds": {simpler: len(simple)}}
    eligible = []
    for name in candidates:
        rich = np.asarray(per_seed[name][CHOICE_CLEAN], dtype=float)
        gain = float(rich.mean() - simple.mean())
        evidence["mean"][name], evidence["std"][name] = float(rich.mean()), _std(rich)
        evidence["gain"][name], evidence["seeds"][name] = gain, len(rich)
        if min(len(simple), len(rich)) >= 2 and gain > max(simple.std(ddof=1), rich.std(ddof=1)):
            eligible.append(name)
    chosen = max(eligible, key=lambda name: (evidence["mean"][name], -candidates.index(name)), default=simpler)
    return Decision(VARIANT_RULE, chosen, evidence)


def _std(values: np.ndarray) -> float | None:
    return float(values.std(ddof=1)) if len(values) >= 2 else None


def score_table(scores: dict[str, dict[str, np.ndarray]], is_anomaly: dict[str, np.ndarray]) -> list[dict]:
    """One row per score: ROC AUC, average precision and FPR at 95 % TPR on every set that has labels."""
    rows = []
    for name, by_set in scores.items():
        row = {"score": name}
        for set_name, flags in is_anomaly.items():
            if set_name in by_set:
                row[f"auroc_{set_name}"] = metrics.auroc(by_set[set_name], flags)
                row[f"ap_{set_name}"] = metrics.average_precision(by_set[set_name], flags)
                row[f"fpr95_{set_name}"] = metrics.fpr_at_tpr(by_set[set_name], flags)
        rows.append(row)
    return rows


def choose_score(scores: dict[str, dict[str, np.ndarray]], is_anomaly: dict[str, np.ndarray],
                 candidates: list[str]) -> Decision:
    """The candidate score with the highest ROC AUC on set 1 (ties: average precision, then listing order)."""
    flags = is_anomaly[CHOICE_SET]
    ranked = {name: (metrics.auroc(scores[name][CHOICE_SET], flags),
                     metrics.average_precision(scores[name][CHOICE_SET], flags), -candidates.index(name))
              for name in candidates}
    return Decision(SCORE_RULE, max(ranked, key=ranked.get),
                    {name: {"auroc_rep1": auroc, "ap_rep1": ap} for name, (auroc, ap, _) in ranked.items()})


def fix_threshold(scores: dict[str, np.ndarray], is_anomaly: dict[str, np.ndarray]) -> float:
    """The deployed score's threshold, fixed on set 1 (best anomaly F1); `scores`/`is_anomaly` by set name."""
    return metrics.threshold_best_f1(scores[CHOICE_SET], is_anomaly[CHOICE_SET])


def final_evaluation(scores, is_anomaly, class_pred, y_true, threshold: float, n_resamples: int,
                     seed: int) -> dict:
    """The deployed model on the test set (set 2), once: threshold-free detection metrics, detection at the
    set-1 threshold and the six-class end-to-end macro-F1, each with a 95 % bootstrap interval."""
    boot = dict(n_resamples=n_resamples, seed=seed)
    flag = np.asarray(scores) > threshold
    six_class = metrics.end_to_end_predictions(class_pred, flag)
    result = {name: metrics.metric_with_ci(function, scores, is_anomaly, **boot) for name, function in
              (("auroc", metrics.auroc), ("average_precision", metrics.average_precision),
               ("fpr_at_95_tpr", metrics.fpr_at_tpr))}
    result["at_threshold"] = metrics.detection_at_threshold(scores, is_anomaly, threshold)
    result["at_threshold_ci"] = {
        name: metrics.bootstrap_ci(lambda s, a, n=name: metrics.detection_at_threshold(s, a, threshold)[n],
                                   scores, is_anomaly, stratify=is_anomaly, **boot)
        for name in ("precision", "recall", "f1")}
    result["macro_f1"] = metrics.metric_with_ci(metrics.macro_f1, y_true, six_class, n_classes=6, **boot)
    result["per_class_recall"] = metrics.per_class_recall(y_true, six_class, 6).tolist()
    result["six_class"] = six_class
    return result
