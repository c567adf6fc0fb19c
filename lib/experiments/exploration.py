"""Descriptive statistics of the four datasets (notebook 01)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

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


def class_examples(data: Assignment, per_class: int) -> list[np.ndarray]:
    """The first `per_class` labeled images of every class, one array per class."""
    return [data.labeled_x[data.labeled_y == c][:per_class] for c in range(len(CLASS_NAMES))]


def anomaly_rows(data: Assignment, answer_key: dict | None, per_row: int) -> tuple[list[np.ndarray], list[str]]:
    """Anomalies of representative set 1, one group per origin, and the groups' names.

    With the answer key: the foreign articles, then every corruption kind (sorted);
    without it, the anomalies in their order, `per_row` at a time (at most four rows).
    """
    n = len(data.rep1_y)
    if answer_key is None:
        anomalies = np.flatnonzero(data.rep1_y == ANOMALY)
        rows = [data.rep1_x[anomalies[i: i + per_row]] for i in range(0, min(len(anomalies), 4 * per_row), per_row)]
        return rows, ["anomalies"] * len(rows)
    detail, origin = answer_key["rep1_detail"][:n], answer_key["rep1_origin"][:n]
    kinds = sorted(set(detail[origin == "corrupted"]))
    rows = [data.rep1_x[origin == "foreign"][:per_row]] + [data.rep1_x[detail == kind][:per_row] for kind in kinds]
    return rows, ["foreign"] + [kind.replace("_", " ") for kind in kinds]


def ink_per_image(images: np.ndarray) -> np.ndarray:
    """Sum of grey levels / 255 of every image (the area an article covers, in full-white pixels)."""
    return images.reshape(len(images), -1).sum(axis=1) / 255


@dataclass(frozen=True)
class PixelMaps:
    """Raw pixels in 2-D: a sample of the unlabeled images and the anomalies of set 1 (last)."""

    pca: np.ndarray  # (n, 2) first two principal components (PCA fitted on every unlabeled image)
    umap: np.ndarray  # (n, 2)
    groups: np.ndarray  # true class (answer key; -1 without it), ANOMALY for the anomalies of set 1
    names: list[str]  # group names, indexed by group
    pca_variance: float  # share of the pixel variance the fitted principal components explain


def pixel_maps(data: Assignment, answer_key: dict | None, settings, n_components: int, seed: int) -> PixelMaps:
    """PCA (`n_components`, fitted on all unlabeled images) and UMAP of raw pixels, for a random sample of
    `settings.umap_points` unlabeled images plus every anomaly of representative set 1.

    `settings` is the profile's `report` (umap_points, umap_neighbors, umap_min_dist, umap_epochs).
    """
    from sklearn.decomposition import PCA
    from umap import UMAP

    anomalies = np.flatnonzero(data.rep1_y == ANOMALY)
    n = min(settings.umap_points, len(data.unlabeled))
    sample = np.random.default_rng(seed).choice(len(data.unlabeled), n, replace=False)
    classes = answer_key["unlabeled_class"][sample] if answer_key is not None else np.full(n, -1)
    pixels = np.concatenate([data.unlabeled[sample], data.rep1_x[anomalies]]).reshape(n + len(anomalies), -1) / 255.0
    groups = np.concatenate([classes, np.full(len(anomalies), ANOMALY)])
    pca = PCA(n_components=n_components, random_state=seed).fit(data.unlabeled.reshape(len(data.unlabeled), -1)
                                                                  / 255.0)
    umap_xy = UMAP(n_neighbors=settings.umap_neighbors, min_dist=settings.umap_min_dist,
                   n_epochs=settings.umap_epochs, random_state=seed).fit_transform(pixels)
    return PixelMaps(pca.transform(pixels)[:, :2], umap_xy, groups, list(CLASS_NAMES) + ["anomaly (set 1)"],
                     float(pca.explained_variance_ratio_.sum()))


def summary(data: Assignment, duplicates: pd.DataFrame, pca_variance: float, is_replica: bool) -> dict:
    """The numbers of notebook 01 for results/01_data_exploration.json (the report's `data` variables)."""
    between = duplicates["first set"] != duplicates["second set"]
    return {
        "sizes": {name: int(len(images)) for name, images in images_by_set(data).items()},
        "anomalies": {"rep1": int((data.rep1_y == ANOMALY).sum()), "rep2": int((data.rep2_y == ANOMALY).sum())},
        "shared_images_between_sets": int(duplicates.loc[between, "shared images"].sum()),
        "repeated_images_within_sets": int(duplicates.loc[~between, "shared images"].sum()),
        "pca10_variance_explained": float(pca_variance),
        "is_replica": bool(is_replica),
    }


DATASET_USE = pd.DataFrame([
    ("unlabeled", "26,000, no labels", "FixMatch (pseudo-labels), the comparison systems' pretraining, "
     "statistics of normal data", "none"),
    ("labeled", "2,000, 5 classes", "classifier, description, decoder; class statistics",
     "a fifth held out chooses among the comparison systems"),
    ("set 1", "1,052, 52 anomalies", "none", "the model's arm (clean images), the anomaly score, its threshold"),
    ("set 2", "1,052, 52 anomalies", "none", "none: the final test, used once"),
], columns=["set", "images", "trains", "chooses"])
