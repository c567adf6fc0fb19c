"""What the notebooks record: ids, typed records, and the headline summary built from them in one place.

Every system, score and description has a snake_case id (`PRETRAINED`,
`SYSTEMS`, `SCORES`, `PARTS`); results/<notebook>.json are keyed by these ids,
and `lib.render` turns them into display names. A number with a 95 % bootstrap
interval is an `Estimate`; every choice of the protocol is a `Decision` stored
with its rule and the evidence it was made on, so the report reads the choice
instead of recomputing it. `summary` builds the keys of results/summary.json
(dotted paths, README "What comes out") from the notebooks' results: a notebook
that has not run leaves its keys out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# notebook 02: the descriptions learned from the unlabeled images (PCA of the pixels is the floor)
PRETRAINED = ("fc_ae", "conv_ae", "conv_ae_bn", "vae", "contrastive")
DESCRIPTIONS = ("pca", *PRETRAINED)

# notebook 03: the classifiers ("model": the project's deployed network) and the arms of the project's model
SYSTEMS = ("supervised_cnn", "contrastive_finetuned", "auxiliary", "contrastive_fixmatch", "autoencoder_probe",
           "vae_probe", "contrastive_probe", "stacking", "baseline", "oracle", "model")
MODEL_ARMS = ("labels_only", "fixmatch")
UNLABELED_ARM = "fixmatch"  # the arm whose gain over labels only measures what the unlabeled images add


# notebook 04: the anomaly scores; the parts of our evidence and their combinations that set 1 chooses among
@dataclass(frozen=True)
class Part:
    """A part of our anomaly evidence: the network output it reads (a backbone stage's pooled features `stage0`..,
    the description `z`, the classifier's `logits`, the `decoder`'s image of the description, the `pixels`), its
    detector (a kind of `lib.detect.parts.DETECTORS`) and its display names, in text and as a table column."""

    reads: str
    detector: str
    name: str
    column: str


PART_REGISTRY = {  # every part of our evidence, one entry each
    "stage_1": Part("stage0", "mahalanobis", "stage 1 features", "stage 1"),
    "stage_2": Part("stage1", "mahalanobis", "stage 2 features", "stage 2"),
    "stage_3": Part("stage2", "mahalanobis", "stage 3 features", "stage 3"),
    "description": Part("z", "mahalanobis", "description", "descr."),
    "knn": Part("stage2", "knn", "kNN distance", "kNN"),
    "energy": Part("logits", "energy", "energy", "energy"),
    "reconstruction": Part("decoder", "reconstruction", "reconstruction error", "recon."),
    "frame": Part("pixels", "frame", "frame intensity", "frame"),
}
PARTS = tuple(PART_REGISTRY)
FEATURE_PARTS = tuple(name for name, part in PART_REGISTRY.items() if part.detector == "mahalanobis")
COMBINATIONS = {
    **{part: (part,) for part in PARTS},
    "features_every_depth": FEATURE_PARTS,
    "features_every_depth_frame": (*FEATURE_PARTS, "frame"),
    "features_knn_energy_frame": (*FEATURE_PARTS, "knn", "energy", "frame"),
    "deepest_features_pixels": ("stage_3", "reconstruction", "frame"),
    "every_part": PARTS,
}
REFERENCE_SCORES = ("recon_fc_ae", "recon_conv_ae", "recon_conv_ae_bn", "vae_elbo", "knn_contrastive", "msp",
                    "baseline_mahalanobis")


@dataclass
class Estimate:
    """A number measured on a set, with its 95 % bootstrap interval (None where none applies)."""

    value: float | None
    ci: list[float] | None = None


@dataclass
class Decision:
    """A choice of the protocol: the rule (declared before the run), what it chose, and the numbers it read."""

    rule: str
    chosen: str
    evidence: dict = field(default_factory=dict)


def plain(value: Any) -> Any:
    """JSON-ready copy: records to dicts, numpy to Python numbers, tuples to lists, keys to strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- results/summary.json


def _estimate(summary: dict, key: str, estimate: dict | None) -> None:
    if estimate is not None and estimate.get("value") is not None:
        summary[key] = estimate["value"]
        if estimate.get("ci") is not None:
            summary[key + "_ci"] = estimate["ci"]


def _mean_std(summary: dict, key: str, values: list[float | None]) -> None:
    values = [v for v in values if v is not None]
    if len(values) >= 2:
        summary[f"seeds.{key}_mean"] = float(np.mean(values))
        summary[f"seeds.{key}_std"] = float(np.std(values, ddof=1))


def summary(results: dict[str, dict]) -> dict[str, Any]:
    """The headline numbers (dotted keys) from the results of the notebooks that have run
    (`results[notebook stem]`)."""
    out: dict[str, Any] = {}
    classification = results.get("03_classification")
    if classification is not None:
        chosen, accuracy = classification["choice"]["chosen"], classification["accuracy"]
        for set_name in ("unlabeled", "rep2_clean"):
            if set_name in accuracy["model"]:
                _estimate(out, f"classification.accuracy.{set_name}", accuracy["model"][set_name])
                _estimate(out, f"baseline.accuracy.{set_name}", accuracy["baseline"][set_name])
                _estimate(out, f"classification.gain_over_baseline.{set_name}",
                          classification["gain_over_baseline"][set_name])
                _estimate(out, f"classification.gain_from_unlabeled.{set_name}",
                          classification["gain_vs_labels_only"][UNLABELED_ARM][set_name])
                _mean_std(out, f"classification.accuracy.{set_name}", classification["per_seed"][chosen][set_name])
        out["classification.gain_from_unlabeled.arm"] = UNLABELED_ARM
        if "oracle" in accuracy:
            _estimate(out, "classification.accuracy.oracle_rep2_clean", accuracy["oracle"]["rep2_clean"])
    ood = results.get("04_ood_scoring")
    if ood is not None:
        out["inference.images_per_second_cpu"] = ood["bundle_images_per_second"]
        rep2 = ood["rep2"]
        for name in ("auroc", "average_precision", "fpr_at_95_tpr"):
            _estimate(out, f"ood.{name}.rep2", rep2[name])
        out["ood.threshold"] = ood["threshold"]["value"]
        _estimate(out, "end_to_end.macro_f1.rep2", rep2["macro_f1"])
        for name in ("auroc", "average_precision"):
            _estimate(out, f"baseline.ood.{name}.rep2", ood["baseline_rep2"][name])
        if ood.get("unseen_kinds"):
            rows = ood["unseen_kinds"]["kinds"]
            out["ood.unseen_kinds.min_auroc"] = min(row["auroc"] for row in rows)
            out["ood.unseen_kinds.noise_flagged"] = next(r["flagged"] for r in rows if r["kind"] == "uniform_noise")
        if ood.get("description"):
            out["embedding.dim"] = ood["description"]["dim"]
            _estimate(out, "embedding.kmeans_accuracy.unlabeled", ood["description"]["kmeans_accuracy"])
            _estimate(out, "embedding.nmi.unlabeled", ood["description"]["nmi"])
        per_seed = ood["per_seed"]
        for key, column in SEED_KEYS.items():
            _mean_std(out, key, [row[column] for row in per_seed])
    return out


# summary key (under seeds.) -> column of notebook 04's per-seed table of the complete model
SEED_KEYS = {"ood.auroc.rep2": "auroc_rep2", "ood.average_precision.rep2": "ap_rep2",
             "ood.fpr_at_95_tpr.rep2": "fpr95_rep2", "end_to_end.macro_f1.rep2": "macro_f1_rep2",
             "embedding.kmeans_accuracy.unlabeled": "kmeans_unlabeled"}


def flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"a.b": value} from {"a": {"b": value}} (results/summary.json is stored nested)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out
