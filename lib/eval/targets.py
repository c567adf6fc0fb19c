"""The numbers to reach (docs/protocol.md, "Targets"), as keys of results/summary.json, and how to judge them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Target:
    label: str
    summary_key: str  # dotted key in results/summary.json
    sense: str  # ">=", "<=" or ">" (strictly)
    goal: float
    scale: float = 1  # shown value = scale * value (100 for percentages)
    interval_above_zero: bool = False  # the 95 % interval (a paired difference) must exclude zero as well
    digits: str = ".3f"  # format of the shown value

    def point_met(self, value: float) -> bool:
        return {">=": value >= self.goal, "<=": value <= self.goal, ">": value > self.goal}[self.sense]

    def met(self, value: float, ci: list[float] | None = None) -> bool:
        return self.point_met(value) and (not self.interval_above_zero or (ci is not None and ci[0] > 0))

    def shown_goal(self) -> str:
        goal = f"{self.sense.replace('>=', '≥').replace('<=', '≤')} {self.scale * self.goal:g}"
        return goal + ", CI > 0" if self.interval_above_zero else goal

    def shortfall(self, value: float, ci: list[float] | None) -> str:
        """How far a missed target is from the goal, in shown units ("" when met)."""
        if self.met(value, ci):
            return ""
        if self.point_met(value):
            return "no interval" if ci is None else "interval includes 0"
        return format(abs(self.scale * (self.goal - value)), self.digits.lstrip("+"))  # a distance: no sign

    def shown(self, value: float, ci: list[float] | None = None) -> str:
        """The value (and its interval) as the table shows it."""
        text = format(self.scale * value, self.digits)
        if ci:
            text += f" [{format(self.scale * ci[0], self.digits)}, {format(self.scale * ci[1], self.digits)}]"
        return text


KMEANS_DESCRIPTION = Target("k-means on the description (%)", "embedding.kmeans_accuracy.unlabeled", ">=", 0.98,
                            100, digits=".2f")
TARGETS = (
    Target("accuracy, 26,000 (%)", "classification.accuracy.unlabeled", ">=", 0.985, 100, digits=".2f"),
    Target("accuracy, set 2 clean (%)", "classification.accuracy.rep2_clean", ">=", 0.985, 100, digits=".2f"),
    Target("over the baseline, 26,000 (points)", "classification.gain_over_baseline.unlabeled", ">", 0.0, 100,
           interval_above_zero=True, digits="+.2f"),
    Target("from unlabeled images, 26,000 (points)", "classification.gain_from_unlabeled.unlabeled", ">=", 0.005,
           100, interval_above_zero=True, digits="+.2f"),
    Target("ROC AUC, set 2", "ood.auroc.rep2", ">=", 0.995),
    Target("average precision, set 2", "ood.average_precision.rep2", ">=", 0.95),
    Target("FPR at 95 % TPR, set 2", "ood.fpr_at_95_tpr.rep2", "<=", 0.02),
    Target("six-class macro-F1, set 2", "end_to_end.macro_f1.rep2", ">=", 0.97),
    Target("ROC AUC, worst unseen kind", "ood.unseen_kinds.min_auroc", ">=", 0.95),
    Target("pure noise flagged (%)", "ood.unseen_kinds.noise_flagged", ">=", 1.0, 100, digits=".0f"),
    KMEANS_DESCRIPTION,
    Target("deployed model, images/s", "inference.images_per_second_cpu", ">=", 5000, digits=",.0f"),
)
PREDICT_SECONDS = 10  # `predict` on 10,000 images, model load included


def targets_table(summary: dict, predict_seconds: float | None) -> pd.DataFrame:
    """Each target with this run's value (and 95 % interval), whether it is met and by how much it is missed;
    targets whose number the run did not produce are left out. `summary`: dotted keys (`lib.results.summary`)."""
    rows = []
    for target in TARGETS:
        value, ci = summary.get(target.summary_key), summary.get(target.summary_key + "_ci")
        if value is None:
            continue
        rows.append({"quantity": target.label, "target": target.shown_goal(), "this run": target.shown(value, ci),
                     "met": "yes" if target.met(value, ci) else "no", "missed by": target.shortfall(value, ci)})
    if predict_seconds is not None:
        met = predict_seconds < PREDICT_SECONDS
        rows.append({"quantity": "predict, 10,000 images (s)", "target": f"< {PREDICT_SECONDS}",
                     "this run": f"{predict_seconds:.1f}", "met": "yes" if met else "no",
                     "missed by": "" if met else f"{predict_seconds - PREDICT_SECONDS:.1f}"})
    return pd.DataFrame(rows)
