"""Quality of a description: Hungarian matching, k-NN accuracy, k-means and GMM scores with intervals."""

import numpy as np
import pytest

from lib.eval import embedding
from lib.eval.embedding import evaluate_embedding, hungarian_accuracy, hungarian_mapping, knn_accuracy


def test_hungarian_accuracy_ignores_the_names_of_clusters():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 4])
    permuted = np.array([3, 1, 4, 0, 2])[y]
    assert hungarian_accuracy(y, permuted) == 1.0
    assert list(hungarian_mapping(y, permuted)[permuted]) == list(y)


def test_hungarian_accuracy_counts_the_best_matching():
    y = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([1, 1, 0, 0, 0, 0])  # cluster 1 -> class 0 (2 right), cluster 0 -> class 1 (3 right)
    assert hungarian_accuracy(y, pred) == pytest.approx(5 / 6)
    # Merged clusters cannot both match one class.
    assert hungarian_accuracy(y, np.zeros(6, dtype=int)) == pytest.approx(0.5)


def test_separated_clusters_are_recovered():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 10)) * 10
    y = rng.integers(0, 5, 500)
    z = centres[y] + rng.normal(size=(500, 10))
    y_ref = np.arange(5).repeat(10)
    z_ref = centres[y_ref] + rng.normal(size=(50, 10))
    out = evaluate_embedding(z, y, z_ref, y_ref, bootstrap=50).metrics
    assert out["kmeans_accuracy"] == 1.0 and out["gmm_accuracy"] == 1.0
    assert out["kmeans_nmi"] == pytest.approx(1.0) and out["knn_accuracy"] == 1.0
    assert out["silhouette"] > 0.5
    low, high = out["kmeans_accuracy_ci"]
    assert low <= 1.0 <= high
    # Without the answer key the metrics come from the labeled images.
    blind = evaluate_embedding(z, None, z_ref, y_ref).metrics
    assert blind["evaluated_on"].startswith("labeled") and blind["kmeans_accuracy"] == 1.0
    assert knn_accuracy(z_ref, y_ref, z, y) == 1.0


def test_kmeans_interval_brackets_an_imperfect_clustering():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 10)) * 1.5  # overlapping clusters: some images land in the wrong one
    y = rng.integers(0, 5, 1000)
    z = centres[y] + rng.normal(size=(1000, 10))
    out = evaluate_embedding(z, y, z[:50], y[:50], bootstrap=200).metrics
    low, high = out["kmeans_accuracy_ci"]
    assert low < out["kmeans_accuracy"] < high < 1.0 and high - low < 0.1
    low, high = out["kmeans_nmi_ci"]
    assert low < out["kmeans_nmi"] < high


def test_hungarian_mapping_maps_clusters_to_classes():
    # three images of class 0 in cluster 2, one of class 1 in cluster 0, one of class 2 in cluster 1
    y_true, y_pred = np.array([0, 0, 0, 1, 2]), np.array([2, 2, 2, 0, 1])
    mapping = hungarian_mapping(y_true, y_pred)
    assert list(mapping[:3]) == [1, 2, 0]
    assert hungarian_accuracy(y_true, y_pred) == 1.0


def test_knn_uses_its_k():
    # one reference of class 0 right at the evaluated point, five of class 1 a little further away
    z_ref = np.array([[0.0], [1.0], [1.1], [1.2], [1.3], [1.4]])
    y_ref = np.array([0, 1, 1, 1, 1, 1])
    assert knn_accuracy(z_ref, y_ref, np.array([[0.0]]), np.array([0]), k=1) == 1.0
    assert knn_accuracy(z_ref, y_ref, np.array([[0.0]]), np.array([0]), k=5) == 0.0


def test_evaluate_embedding_passes_knn_k():
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(5, 4)) * 10
    y = np.arange(5).repeat(20)
    z = centres[y] + rng.normal(size=(100, 4))
    y_ref = np.array([0, 1, 2, 3, 4, 0, 0, 0, 0, 0])  # class 0 outnumbers the others among the references
    z_ref = centres[y_ref] + rng.normal(size=(10, 4))
    assert evaluate_embedding(z, y, z_ref, y_ref, knn_k=1).metrics["knn_accuracy"] == 1.0
    assert evaluate_embedding(z, y, z_ref, y_ref, knn_k=10).metrics["knn_accuracy"] == pytest.approx(0.2)


def test_pca_embedding_and_nearest_to_centres():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (40, 1, 32, 32), dtype=np.uint8)
    train, other = embedding.pca_embedding(images, images[:5], dim=3)
    assert train.shape == (40, 3) and other.shape == (5, 3) and train.dtype == np.float32
    np.testing.assert_allclose(train[:5], other, rtol=1e-5, atol=1e-5)
    z = np.array([[0.0], [5.0], [0.2], [4.0], [10.0]])
    assert embedding.nearest_to_centres(z, np.array([[0.0], [5.0]]), 2).tolist() == [[0, 2], [1, 3]]


def test_pca_reconstruction_error_is_zero_in_the_subspace_and_falls_with_the_dimension():
    rng = np.random.default_rng(0)
    basis = rng.random((2, 1024))
    images = (rng.random((60, 2)) @ basis * 100).reshape(60, 1, 32, 32)
    assert embedding.pca_reconstruction_mse(images, dim=2).max() < 1e-8  # two directions hold every image
    noisy = rng.integers(0, 256, (50, 1, 32, 32), dtype=np.uint8)
    errors = [embedding.pca_reconstruction_mse(noisy, dim=d, chunk=7).mean() for d in (1, 5, 20)]
    assert errors[0] > errors[1] > errors[2] > 0
    # the per-image error is the squared residual per pixel in [0, 1], from a PCA fitted on the same images
    from sklearn.decomposition import PCA
    x = noisy.reshape(50, -1) / 255.0
    pca = PCA(5, random_state=0).fit(x)
    np.testing.assert_allclose(embedding.pca_reconstruction_mse(noisy, dim=5, chunk=7),
                               ((pca.inverse_transform(pca.transform(x)) - x) ** 2).mean(axis=1), rtol=1e-4)
    assert embedding.pca_of(x, 3).shape == (50, 3)


def test_class_mean_error_replaces_each_image_by_its_class_mean():
    images = np.zeros((4, 1, 32, 32), np.uint8)
    images[1] = 255  # class 0: black and white; class 1: two grey images alike
    images[2:] = 51
    mse = embedding.class_mean_mse(images, np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(mse, [0.25, 0.25, 0, 0])  # half a unit from the class mean on every pixel
    np.testing.assert_allclose(embedding.class_mean_mse(images, np.zeros(4, int)),
                               ((images.reshape(4, -1) / 255 - images.reshape(4, -1).mean(0) / 255) ** 2).mean(1),
                               rtol=1e-5)


def test_within_class_share_is_zero_at_the_class_means_and_one_without_class_structure():
    classes = np.array([0, 0, 1, 1])
    assert embedding.within_class_share(np.array([[0.0], [0.0], [2.0], [2.0]]), classes) == 0
    assert embedding.within_class_share(np.array([[0.0], [2.0], [0.0], [2.0]]), classes) == 1
    assert embedding.within_class_share(np.array([[0.0], [1.0], [4.0], [5.0]]), classes) == pytest.approx(1 / 17)
