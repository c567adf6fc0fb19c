"""How well a ten-dimensional description recovers the five modes (numbers only; figures: lib.plots).

Metrics (scikit-learn and scipy throughout):
- k-means with five clusters and a five-component Gaussian mixture fitted on
  the unlabeled images, scored against the true classes (answer key) by
  accuracy after the best one-to-one matching of clusters to classes
  (Hungarian algorithm, `scipy.optimize.linear_sum_assignment`) and by
  normalized mutual information (NMI);
- k-nearest-neighbour accuracy with the 2,000 labeled images as reference
  (k = `knn_k`, set by the profile: `ctx.profile.pretraining.knn_k`);
- the silhouette of the k-means partition (on a subsample: it is quadratic).
Bootstrap intervals resample the evaluated images with the fitted partition
held fixed (they show the evaluation's sampling error, not the training's).

Without the answer key (the original data) the clusters are still fitted on
the unlabeled images but scored on the 2,000 labeled ones, and k-NN accuracy
is cross-validated on the labeled images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from .metrics import accuracy, bootstrap_ci, confusion_matrix


def hungarian_mapping(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """mapping[cluster] = the class matched to it by the best one-to-one assignment."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = int(max(y_true.max(), y_pred.max()) + 1)
    # rows: clusters, columns: classes (confusion_matrix is counts[true, pred])
    rows, cols = linear_sum_assignment(-confusion_matrix(y_true, y_pred, k).T)
    mapping = np.arange(k)
    mapping[rows] = cols
    return mapping


def hungarian_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy of a clustering after matching clusters to classes one to one (1.0 for any relabelling)."""
    mapping = hungarian_mapping(y_true, y_pred)
    return float(np.mean(mapping[np.asarray(y_pred)] == np.asarray(y_true)))


@dataclass
class Clustering:
    labels: np.ndarray  # cluster of every fitted point
    centers: np.ndarray  # (k, dim): k-means centres or mixture means
    model: object  # the fitted scikit-learn estimator (has .predict)


def kmeans(z: np.ndarray, k: int = 5, seed: int = 0) -> Clustering:
    km = KMeans(k, n_init=10, random_state=seed).fit(z)
    return Clustering(km.labels_, km.cluster_centers_, km)


def gmm(z: np.ndarray, k: int = 5, seed: int = 0) -> Clustering:
    mixture = GaussianMixture(k, covariance_type="full", n_init=2, random_state=seed, reg_covar=1e-5).fit(z)
    return Clustering(mixture.predict(z), mixture.means_, mixture)


def knn_accuracy(z_ref: np.ndarray, y_ref: np.ndarray, z_eval: np.ndarray, y_eval: np.ndarray,
                 k: int = 10) -> float:
    """Accuracy of a k-nearest-neighbour vote among reference points (Euclidean distance)."""
    clf = KNeighborsClassifier(n_neighbors=min(k, len(z_ref))).fit(z_ref, y_ref)
    return float(np.mean(clf.predict(z_eval) == y_eval))


def pca_embedding(train_images: np.ndarray, *others: np.ndarray, dim: int = 10, seed: int = 0) -> list[np.ndarray]:
    """PCA-`dim` of raw pixels (in [0, 1]) fitted on `train_images`, applied to it and to `others`."""
    def flat(a):
        return np.asarray(a, dtype=np.float32).reshape(len(a), -1) / 255.0
    pca = PCA(dim, random_state=seed).fit(flat(train_images))
    return [pca.transform(flat(a)).astype(np.float32) for a in (train_images, *others)]


@dataclass
class EmbeddingEvaluation:
    metrics: dict  # numbers for the table and the results JSON
    kmeans: Clustering
    gmm: Clustering
    kmeans_classes: np.ndarray  # class matched to each k-means cluster (Hungarian)


def evaluate_embedding(z_unlabeled: np.ndarray, y_unlabeled: np.ndarray | None, z_labeled: np.ndarray,
                       y_labeled: np.ndarray, seed: int = 0, silhouette_points: int = 5000,
                       bootstrap: int = 0, knn_k: int = 10) -> EmbeddingEvaluation:
    """Cluster the unlabeled description and score it (see the module docstring)."""
    km, mix = kmeans(z_unlabeled, seed=seed), gmm(z_unlabeled, seed=seed)
    rng = np.random.default_rng(seed)
    sub = rng.choice(len(z_unlabeled), size=min(silhouette_points, len(z_unlabeled)), replace=False)
    metrics = {"silhouette": float(silhouette_score(z_unlabeled[sub], km.labels[sub]))}
    if y_unlabeled is not None:
        y_eval, y_km, y_gmm = np.asarray(y_unlabeled), km.labels, mix.labels
        metrics["knn_accuracy"] = knn_accuracy(z_labeled, y_labeled, z_unlabeled, y_eval, k=knn_k)
        metrics["evaluated_on"] = "unlabeled (answer key)"
    else:
        y_eval, y_km, y_gmm = np.asarray(y_labeled), km.model.predict(z_labeled), mix.model.predict(z_labeled)
        knn = KNeighborsClassifier(n_neighbors=knn_k)
        metrics["knn_accuracy"] = float(np.mean(cross_val_predict(knn, z_labeled, y_eval, cv=5) == y_eval))
        metrics["evaluated_on"] = "labeled (5-fold cross-validated k-NN)"
    mapping = hungarian_mapping(y_eval, y_km)
    metrics.update({
        "kmeans_accuracy": accuracy(y_eval, mapping[y_km]),
        "kmeans_nmi": float(normalized_mutual_info_score(y_eval, y_km)),
        "gmm_accuracy": hungarian_accuracy(y_eval, y_gmm),
        "gmm_nmi": float(normalized_mutual_info_score(y_eval, y_gmm)),
    })
    if bootstrap:
        metrics["kmeans_accuracy_ci"] = list(bootstrap_ci(accuracy, y_eval, mapping[y_km], n_resamples=bootstrap,
                                                          seed=seed))
        # NMI is not vectorised over resamples: at most 200 of them keep this to seconds
        metrics["kmeans_nmi_ci"] = list(bootstrap_ci(normalized_mutual_info_score, y_eval, y_km,
                                                     n_resamples=min(bootstrap, 200), seed=seed))
    return EmbeddingEvaluation(metrics, km, mix, mapping[: len(km.centers)])


def nearest_to_centres(z: np.ndarray, centres: np.ndarray, count: int) -> np.ndarray:
    """(k, count) indices of the points nearest to each centre."""
    d = ((z[None, :, :] - centres[:, None, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1)[:, :count]


# --------------------------------------------------------------------------- what a description holds within a mode


def flat_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 images (n, 1, 32, 32) as float32 rows of pixels in [0, 1] (n, 1024)."""
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0


def pca_of(features: np.ndarray, dim: int = 10, seed: int = 0) -> np.ndarray:
    """The first `dim` principal components of `features` (n, d), fitted on those same rows (unsupervised: the
    reference descriptions at equal dimension, e.g. PCA-10 of a network's pooled features)."""
    return PCA(dim, random_state=seed).fit_transform(np.asarray(features, dtype=np.float32)).astype(np.float32)


def pca_reconstruction_mse(images: np.ndarray, dim: int = 10, seed: int = 0, chunk: int = 4096) -> np.ndarray:
    """Per image, the mean squared error per pixel (pixels in [0, 1]) of its reconstruction from PCA-`dim` of the
    pixels, fitted on the same images (no labels)."""
    x = flat_pixels(images)
    pca = PCA(dim, random_state=seed).fit(x)
    return np.concatenate([((pca.inverse_transform(pca.transform(part)) - part) ** 2).mean(axis=1)
                           for part in np.array_split(x, max(1, -(-len(x) // chunk)))]).astype(np.float64)


def class_mean_mse(images: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per image, the mean squared error per pixel (pixels in [0, 1]) when it is replaced by the mean image of its
    class among the same images: the best any reconstruction that knows only the class can do (in squared
    error)."""
    x, classes = flat_pixels(images), np.asarray(classes)
    out = np.empty(len(x), dtype=np.float64)
    for c in np.unique(classes):
        members = classes == c
        out[members] = ((x[members] - x[members].mean(axis=0)) ** 2).mean(axis=1)
    return out


def within_class_share(z: np.ndarray, classes: np.ndarray) -> float:
    """Share of a description's variance that lies within the classes: the trace of the within-class covariance
    over the trace of the total covariance (0: every point sits at its class mean; about 1: the classes do not
    shift the mean)."""
    z, classes = np.asarray(z, dtype=np.float64), np.asarray(classes)
    centred = z - z.mean(axis=0)
    within = sum(((z[classes == c] - z[classes == c].mean(axis=0)) ** 2).sum() for c in np.unique(classes))
    return float(within / (centred ** 2).sum())
