import gzip
import struct

import numpy as np
import pytest

from lib import data
from lib.data import fashion_mnist


def write_idx(path, array, compress=True):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


@pytest.fixture
def fake_fashion_mnist(tmp_path):
    """A folder of IDX files with Fashion-MNIST's layout and random content (10 classes, 28x28)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "fmnist"
    folder.mkdir()
    for split, (image_stem, label_stem, _) in fashion_mnist.FILES.items():
        n = 1200 if split == "train" else 300
        write_idx(folder / f"{image_stem}.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{label_stem}.gz", np.arange(n, dtype=np.uint8) % 10)
    return folder


@pytest.fixture(scope="session")
def replica_assignment(tmp_path_factory):
    """The replica built from the installed Fashion-MNIST into a temporary folder (a fresh clone has no data
    folder, and the tests leave the user's own untouched)."""
    pickle_path = data.ensure_replica(tmp_path_factory.mktemp("replica"), seed=0, log=lambda message: None)
    return data.load_assignment(pickle_path)
