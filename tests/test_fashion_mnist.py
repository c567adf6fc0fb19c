import numpy as np
import pytest

from lib.data import fashion_mnist
from lib.errors import DataError
from tests.conftest import write_idx


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_roundtrip(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.gz" if compress else "a")
    write_idx(path, array, compress=compress)
    np.testing.assert_array_equal(fashion_mnist.read_idx(path), array)


def test_read_idx_rejects_truncated_file(tmp_path):
    path = tmp_path / "a"
    write_idx(path, np.zeros((5, 28, 28), np.uint8), compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        fashion_mnist.read_idx(path)


def test_read_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataError, match="not an IDX file"):
        fashion_mnist.read_idx(path)


def test_load_split_checks_shape_and_checksum(fake_fashion_mnist):
    # The fake files have the wrong number of images for Fashion-MNIST.
    with pytest.raises(DataError, match="expected \\(60000, 28, 28\\)"):
        fashion_mnist.load_split(fake_fashion_mnist, "train")


def test_explicit_folder_must_hold_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(DataError, match="FASHION_MNIST_DIR"):
        fashion_mnist.locate()


@pytest.mark.skipif(not fashion_mnist.SYSTEM_DIR.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_matches_checksums():
    images, labels = fashion_mnist.load_all(fashion_mnist.SYSTEM_DIR)
    assert images.shape == (70_000, 28, 28) and np.bincount(labels).tolist() == [7000] * 10
