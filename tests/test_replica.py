import hashlib

import numpy as np
import pytest

from lib import data
from lib.data import replica
from lib.data.safe_pickle import load_assignment_pickle

SMALL = replica.Counts(labeled=100, unlabeled=300, clean_per_set=50, foreign_per_set=6, corrupted_per_set=6)


@pytest.fixture
def fake_pool():
    rng = np.random.default_rng(1)
    labels = np.arange(1500) % 10
    return rng.integers(0, 256, (1500, 28, 28), dtype=np.uint8), labels


def test_replica_follows_the_specification(fake_pool):
    images, labels = fake_pool
    built, key = replica.build(images, labels, seed=3, counts=SMALL)
    assert built["unlabeled_data"].shape == (300, 1, 32, 32) and built["unlabeled_data"].dtype == np.uint8
    assert built["labeled_data"]["labels"].shape == (100, 5)
    # padding: two zero pixels on every side, the 28x28 image inside
    assert not built["unlabeled_data"][:, :, :2].any() and not built["unlabeled_data"][:, :, :, -2:].any()
    np.testing.assert_array_equal(built["unlabeled_data"][0, 0, 2:30, 2:30], images[key["unlabeled_fmnist_index"][0]])
    # class order: index i is Fashion-MNIST label IN_DISTRIBUTION[i]
    assert (labels[key["unlabeled_fmnist_index"]] == np.array(replica.IN_DISTRIBUTION)[key["unlabeled_class"]]).all()
    for n in (1, 2):
        part = built[f"representative_set_{n}"]
        assert part["data"].shape == (62, 1, 32, 32) and part["labels"].shape == (62, 6)
        classes = part["labels"].argmax(1)
        origin = key[f"rep{n}_origin"]
        assert (classes == replica.ANOMALY).sum() == 12
        assert ((classes == replica.ANOMALY) == (origin != "in_distribution")).all()
        assert np.isin(labels[key[f"rep{n}_fmnist_index"][origin == "foreign"]], replica.FOREIGN).all()
        kinds = key[f"rep{n}_detail"][origin == "corrupted"]
        assert set(kinds) == set(replica.CORRUPTIONS)
    # no index is used twice across sets
    used = np.concatenate([key["labeled_fmnist_index"], key["unlabeled_fmnist_index"],
                           key["rep1_fmnist_index"], key["rep2_fmnist_index"]])
    assert len(np.unique(used)) == len(used)


def test_replica_is_byte_identical_per_seed(fake_pool, tmp_path):
    images, labels = fake_pool

    def digest(seed, folder):
        built, key = replica.build(images, labels, seed=seed, counts=SMALL)
        replica.write(built, key, folder / "a.pickle", folder / "key.npz")
        return [hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("a.pickle", "key.npz")]

    (tmp_path / "x").mkdir(), (tmp_path / "y").mkdir(), (tmp_path / "z").mkdir()
    assert digest(7, tmp_path / "x") == digest(7, tmp_path / "y")
    assert digest(7, tmp_path / "x") != digest(8, tmp_path / "z")


@pytest.mark.parametrize("kind", sorted(replica.CORRUPTIONS))
def test_each_corruption_changes_the_image(kind):
    image = np.zeros((1, 32, 32), np.uint8)
    image[0, 8:24, 10:22] = 200
    out = replica.corrupt(image, kind, np.random.default_rng(0))
    assert out.shape == image.shape and out.dtype == np.uint8 and (out != image).any()


def test_ensure_replica_builds_once_and_rebuilds_when_modified(fake_pool, tmp_path, monkeypatch):
    images, labels = fake_pool
    monkeypatch.setattr("lib.data.fashion_mnist.locate", lambda: tmp_path)
    monkeypatch.setattr("lib.data.fashion_mnist.load_all", lambda folder: (images, labels))
    monkeypatch.setattr(replica.build, "__defaults__", (0, SMALL))
    messages = []
    path = data.ensure_replica(tmp_path, seed=0, log=messages.append)
    assert load_assignment_pickle(path)["labeled_data"]["data"].shape == (100, 1, 32, 32)
    data.ensure_replica(tmp_path, seed=0, log=messages.append)
    assert messages[-1].startswith("replica up to date")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one changed pixel: still a valid pickle, but not the one built
    path.write_bytes(bytes(raw))
    data.ensure_replica(tmp_path, seed=0, log=messages.append)
    assert any("rebuilding" in message for message in messages)
