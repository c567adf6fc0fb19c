"""The numbers to reach (docs/protocol.md, "Targets"), as keys of results/summary.json, and how to judge them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Target:
    label: str
    summary_key: str  # dotted key in results/summary.json
    sense: str  # ">=" or "<="
    goal: float
    scale: float = 1  # shown value = scale * value (100 for percentages)

    def met(self, value: float) -> bool:
        return value >= self.goal if self.sense == ">=" else value <= self.goal

    def shown_goal(self) -> str:
        return f"{self.sense.replace('>=', '≥').replace('<=', '≤')} {self.scale * self.goal:g}"


KMEANS_DESCRIPTION = Target("k-means accuracy of the description", "embedding.kmeans_accuracy.unlabeled",
                            ">=", 0.98, 100)
TARGETS = (
    Target("accuracy, 26,000 unlabeled images", "classification.accuracy.unlabeled", ">=", 0.985, 100),
    Target("accuracy, clean part of set 2", "classification.accuracy.rep2_clean", ">=", 0.985, 100),
    Target("ROC AUC, set 2", "ood.auroc.rep2", ">=", 0.995),
    Target("average precision, set 2", "ood.average_precision.rep2", ">=", 0.95),
    Target("FPR at 95 % TPR, set 2", "ood.fpr_at_95_tpr.rep2", "<=", 0.02),
    Target("six-class macro-F1, set 2", "end_to_end.macro_f1.rep2", ">=", 0.97),
    Target("ROC AUC, worst unseen anomaly kind", "ood.unseen_kinds.min_auroc", ">=", 0.95),
    Target("pure uniform noise flagged (%)", "ood.unseen_kinds.noise_flagged", ">=", 1.0, 100),
    KMEANS_DESCRIPTION,
    Target("inference, images/s on the CPU", "inference.images_per_second_cpu", ">=", 5000),
)
ORACLE_GAP_POINTS = 0.5  # classification within this many points of the oracle
PREDICT_SECONDS = 10  # `predict` on 10,000 images, model load included


def targets_table(summary: dict, predict_seconds: float | None) -> pd.DataFrame:
    """Each target with this run's value (and 95 % interval) and whether the point estimate meets it;
    targets whose number the run did not produce are left out. `summary`: dotted keys (`lib.results.summary`)."""
    dotted = dict.get
    rows = []
    for target in TARGETS:
        value, ci = dotted(summary, target.summary_key), dotted(summary, target.summary_key + "_ci")
        if value is None:
            continue
        shown = f"{target.scale * value:,.3g}" if value < 1000 else f"{value:,.0f}"
        if ci:
            shown += f" [{target.scale * ci[0]:.3g}, {target.scale * ci[1]:.3g}]"
        rows.append({"quantity": target.label, "target": target.shown_goal(), "this run": shown,
                     "met": "yes" if target.met(value) else "no"})
    oracle, ours = (dotted(summary, f"classification.accuracy.{key}") for key in ("oracle_rep2_clean", "rep2_clean"))
    if oracle is not None and ours is not None:
        gap = 100 * (oracle - ours)
        rows.append({"quantity": "gap to the oracle, clean set 2 (points)", "target": f"≤ {ORACLE_GAP_POINTS}",
                     "this run": f"{gap:.2f}", "met": "yes" if gap <= ORACLE_GAP_POINTS else "no"})
    for label, key in (("accuracy above the plain baseline, clean set 2", "classification.accuracy.rep2_clean"),
                       ("ROC AUC above the plain baseline, set 2", "ood.auroc.rep2"),
                       ("average precision above the plain baseline, set 2", "ood.average_precision.rep2")):
        # the baseline's keys: baseline.accuracy.*, baseline.ood.*
        ours, baseline = dotted(summary, key), dotted(summary, "baseline." + key.removeprefix("classification."))
        if ours is not None and baseline is not None:
            scale = 100 if "accuracy" in key else 1
            rows.append({"quantity": label, "target": f"> {scale * baseline:.3g}", "this run": f"{scale * ours:.3g}",
                         "met": "yes" if ours > baseline else "no"})
    if predict_seconds is not None:
        rows.append({"quantity": "predict, 10,000 images (s)", "target": f"< {PREDICT_SECONDS}",
                     "this run": f"{predict_seconds:.1f}", "met": "yes" if predict_seconds < PREDICT_SECONDS else "no"})
    return pd.DataFrame(rows)
