"""The numbers to reach (DESIGN §6), as keys of results/summary.json, and how to judge them."""

from __future__ import annotations

from dataclasses import dataclass


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
                            ">=", 0.97, 100)
TARGETS = (
    Target("accuracy, 26,000 unlabeled images", "classification.accuracy.unlabeled", ">=", 0.985, 100),
    Target("accuracy, clean part of set 2", "classification.accuracy.rep2_clean", ">=", 0.985, 100),
    Target("ROC AUC, set 2", "ood.auroc.rep2", ">=", 0.995),
    Target("average precision, set 2", "ood.average_precision.rep2", ">=", 0.95),
    Target("FPR at 95 % TPR, set 2", "ood.fpr_at_95_tpr.rep2", "<=", 0.02),
    Target("six-class macro-F1, set 2", "end_to_end.macro_f1.rep2", ">=", 0.97),
    KMEANS_DESCRIPTION,
    Target("inference, images/s on the CPU", "inference.images_per_second_cpu", ">=", 5000),
)
ORACLE_GAP_POINTS = 0.5  # classification within this many points of the oracle
PREDICT_SECONDS = 10  # `predict` on 10,000 images, model load included
