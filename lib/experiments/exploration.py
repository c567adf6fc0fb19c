"""Descriptive statistics of the four datasets (notebook 01)."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import numpy as np
import pandas as pd

from lib.data import ANOMALY, CLASS_NAMES, Assignment

SET_NAMES = ("unlabeled", "labeled", "representative_set_1", "representative_set_2")


def images_by_set(data: Assignment) -> dict[str, np.ndarray]:
    return dict(zip(SET_NAMES, (data.unlabeled, data.labeled_x, data.rep1_x, data.rep2_x)))


def class_balance(data: Assignment, answer_key: dict | None) -> pd.DataFrame:
    """Images per class and set; the unlabeled column needs the answer key (else left empty)."""
    names = list(CLASS_NAMES) + ["anomaly"]
    columns = {
        "labeled": np.bincount(data.labeled_y, minlength=6),
        "representative_set_1": np.bincount(data.rep1_y, minlength=6),
        "representative_set_2": np.bincount(data.rep2_y, minlength=6),
    }
    if answer_key is not None:
        columns = {"unlabeled (answer key)": np.bincount(answer_key["unlabeled_class"], minlength=6), **columns}
    table = pd.DataFrame(columns, index=names)
    table.loc["total"] = table.sum()
    return table.rename_axis("class").reset_index()


def pixel_statistics(data: Assignment) -> pd.DataFrame:
    """Per set: mean and standard deviation of pixel values, fraction of zero pixels, mean ink per image."""
    rows = []
    for name, images in images_by_set(data).items():
        values = images.astype(np.float32)
        rows.append({
            "set": name, "images": len(images),
            "pixel mean": values.mean(), "pixel std": values.std(),
            "zero pixels (%)": 100 * (images == 0).mean(),
            "ink per image (mean of sums / 255)": values.sum(axis=(1, 2, 3)).mean() / 255,
        })
    return pd.DataFrame(rows)


def exact_duplicates(data: Assignment) -> pd.DataFrame:
    """Pairs of sets that share a pixel-identical image (by SHA-1 of the bytes), with counts.

    The sets are drawn from Fashion-MNIST without sharing an index, but Fashion-MNIST itself
    contains some pixel-identical images, so a small number can appear in two sets.
    """
    seen = defaultdict(set)
    for name, images in images_by_set(data).items():
        for image in images:
            seen[hashlib.sha1(image.tobytes()).hexdigest()].add(name)
    within = {name: len(images) - len({hashlib.sha1(i.tobytes()).hexdigest() for i in images})
              for name, images in images_by_set(data).items()}
    rows = []
    for i, first in enumerate(SET_NAMES):
        for second in SET_NAMES[i:]:
            if first == second:
                count = within[first]
            else:
                count = sum(1 for sets in seen.values() if first in sets and second in sets)
            rows.append({"first set": first, "second set": second, "shared images": count})
    return pd.DataFrame(rows)


def rep_set_groups(labels: np.ndarray, answer_key: dict | None, set_number: int) -> tuple[np.ndarray, list[str]]:
    """Group index and names for colouring a representative set: five classes, then anomaly kinds."""
    if answer_key is None:
        return labels, list(CLASS_NAMES) + ["anomaly"]
    origin = answer_key[f"rep{set_number}_origin"][: len(labels)]
    groups = labels.copy()
    groups[origin == "foreign"] = ANOMALY
    groups[origin == "corrupted"] = ANOMALY + 1
    return groups, list(CLASS_NAMES) + ["foreign", "corrupted"]


DATASET_USE = pd.DataFrame([
    ("unlabeled_data", "26,000 images, no labels, verified clean",
     "self-supervised pretraining (contrastive, autoencoders); fitting the density of normal data; "
     "pseudo-labels in semi-supervised fine-tuning", "never for a choice"),
    ("labeled_data", "2,000 images, 5 classes",
     "supervised fine-tuning; class-conditional statistics of the embedding",
     "model selection by a held-out part of it (cross-validation where cheap)"),
    ("representative_set_1", "1,052 images, ~5 % anomalies",
     "not trained on", "choosing the anomaly score, fixing its threshold"),
    ("representative_set_2", "1,052 images, ~5 % anomalies",
     "not trained on", "final test, touched once, never for a choice"),
], columns=["dataset", "content", "training", "validation"])
