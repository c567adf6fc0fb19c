import numpy as np
import pytest

from lib.data import Assignment, fashion_mnist, replica, unseen

SMALL = dict(n_clean=40, n_per_kind=12)


@pytest.fixture(scope="module")
def pool():
    """Fashion-MNIST-like arrays: 1,500 items, 10 classes, article-like images (zero background, bright blob)."""
    rng = np.random.default_rng(5)
    labels = (np.arange(1500) % 10).astype(np.uint8)
    images = rng.integers(0, 256, (1500, 28, 28), dtype=np.uint8)
    images[:, :3] = 0  # asymmetric top-bottom, so an upside-down image differs from its source
    used = rng.choice(np.flatnonzero(np.isin(labels, replica.IN_DISTRIBUTION)), size=400, replace=False)
    return images, labels, np.sort(used)


@pytest.fixture(scope="module")
def built(pool):
    images, labels, used = pool
    return unseen.build_unseen_set(images, labels, used, seed=3, **SMALL)


def test_same_seed_gives_identical_arrays(pool, built):
    images, labels, used = pool
    again = unseen.build_unseen_set(images, labels, used, seed=3, **SMALL)
    for name in ("x", "kind", "clean_class", "fmnist_index"):
        np.testing.assert_array_equal(getattr(built, name), getattr(again, name))
    assert built.digest() == again.digest()
    assert unseen.build_unseen_set(images, labels, used, seed=4, **SMALL).digest() != built.digest()


def test_kinds_do_not_depend_on_each_other(pool, built):
    images, labels, used = pool
    alone = unseen.build_unseen_set(images, labels, used, seed=3, kinds=("geometric_shapes",), **SMALL)
    np.testing.assert_array_equal(alone.x[alone.kind == "geometric_shapes"], built.x[built.kind == "geometric_shapes"])


def test_no_item_comes_from_an_image_the_replica_used(pool, built):
    images, labels, used = pool
    sources = built.fmnist_index[built.fmnist_index >= 0]
    assert not np.isin(sources, used).any()
    assert len(np.unique(sources)) == len(sources)  # clean images and every source are distinct items
    clean = built.kind == "clean"
    assert (built.fmnist_index[clean, 0] >= 0).all()
    np.testing.assert_array_equal(built.x[clean][:, 0, 2:30, 2:30], images[built.fmnist_index[clean, 0]])
    in_dist = np.asarray(replica.IN_DISTRIBUTION)
    np.testing.assert_array_equal(in_dist[built.clean_class[clean]], labels[built.fmnist_index[clean, 0]])
    assert (built.clean_class[~clean] == -1).all()


def test_layout_counts_and_types(built):
    assert built.x.dtype == np.uint8 and built.x.shape == (40 + 12 * len(unseen.KINDS), 1, 32, 32)
    assert built.counts() == {"clean": 40, **{name: 12 for name in unseen.KINDS}}
    assert built.kinds == tuple(unseen.KINDS)
    assert built.is_anomaly.sum() == 12 * len(unseen.KINDS)
    mask = built.pair("upside_down")
    assert mask.sum() == 52 and set(built.kind[mask]) == {"clean", "upside_down"}
    with pytest.raises(KeyError):
        built.pair("gaussian_noise")


@pytest.mark.parametrize("kind", list(unseen.KINDS))
def test_each_kind_is_well_formed_and_differs_from_clean(built, kind):
    spec = unseen.KINDS[kind]
    assert spec.description and callable(spec.make)
    x = built.x[built.kind == kind]
    assert x.dtype == np.uint8 and x.shape == (12, 1, 32, 32)
    clean = built.x[built.kind == "clean"]
    flat_clean = {bytes(image) for image in clean.reshape(len(clean), -1)}
    assert not any(bytes(image) in flat_clean for image in x.reshape(len(x), -1))
    if "zero border" in spec.description:
        inner = np.zeros((32, 32), dtype=bool)
        inner[2:30, 2:30] = True
        assert not x[:, 0][:, ~inner].any()
    else:
        assert "border included" in spec.description


def test_derived_kinds_differ_from_their_sources(pool, built):
    images, _, _ = pool
    for kind in ("upside_down", "low_contrast", "blended_pair"):
        member = built.kind == kind
        sources = replica.pad(images[built.fmnist_index[member, 0]])
        assert (built.x[member] != sources).reshape(member.sum(), -1).any(axis=1).all(), kind
    blends = built.fmnist_index[built.kind == "blended_pair"]
    assert (blends >= 0).all()
    classes = pool[1][blends]
    assert (classes[:, 0] != classes[:, 1]).all()  # the two halves of a blend come from different classes
    footwear = [replica.IN_DISTRIBUTION[c] for c in unseen.FOOTWEAR]
    assert np.isin(pool[1][built.fmnist_index[built.kind == "upside_down", 0]], footwear).all()


def test_uniform_noise_has_a_flat_histogram():
    x = unseen.KINDS["uniform_noise"].make(np.random.default_rng(0), None, None, 100)
    counts = np.bincount(x.ravel(), minlength=256)
    expected = x.size / 256
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 400  # 255 degrees of freedom: mean 255, sd about 23
    assert x.min() == 0 and x.max() == 255


def test_kinds_are_not_replica_anomalies():
    assert not set(unseen.KINDS) & set(replica.CORRUPTIONS)
    foreign = {fashion_mnist.CLASS_NAMES[label].lower() for label in replica.FOREIGN}
    assert not {name.lower() for name in unseen.KINDS} & foreign
    assert len(unseen.KINDS) >= 6 and "uniform_noise" in unseen.KINDS


def test_too_small_a_pool_is_reported(pool):
    images, labels, used = pool
    with pytest.raises(ValueError, match="fresh in-distribution images"):
        unseen.build_unseen_set(images, labels, used, n_clean=400, n_per_kind=10)


def test_load_unseen_set_uses_the_answer_key(fake_fashion_mnist, monkeypatch):
    for split, (image_stem, label_stem, _) in list(fashion_mnist.FILES.items()):  # the fake files are smaller
        monkeypatch.setitem(fashion_mnist.FILES, split, (image_stem, label_stem, 1200 if split == "train" else 300))
    images, labels = fashion_mnist.load_all(fake_fashion_mnist, verify=False)
    small = replica.Counts(labeled=100, unlabeled=300, clean_per_set=50, foreign_per_set=6, corrupted_per_set=6)
    data, key = replica.build(images, labels, seed=1, counts=small)
    assignment = Assignment(unlabeled=data["unlabeled_data"], labeled_x=None, labeled_y=None, rep1_x=None,
                            rep1_y=None, rep2_x=None, rep2_y=None, source=fake_fashion_mnist, is_replica=True)
    assert unseen.load_unseen_set(assignment, None) is None
    made = unseen.load_unseen_set(assignment, key, fmnist_folder=fake_fashion_mnist, verify=False, **SMALL)
    used = unseen.used_indices(key)
    assert len(used) == 100 + 300 + 2 * 62
    assert not np.isin(made.fmnist_index[made.fmnist_index >= 0], used).any()
    broken = dict(key, unlabeled_fmnist_index=key["unlabeled_fmnist_index"] + 1)
    with pytest.raises(Exception, match="do not match"):
        unseen.load_unseen_set(assignment, broken, fmnist_folder=fake_fashion_mnist, verify=False, **SMALL)
