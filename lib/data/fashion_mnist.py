"""Reading Fashion-MNIST from IDX files, wherever it is, and checking its content.

Search order (docs/data.md): the folder in `FASHION_MNIST_DIR`; the project's
data/fashion-mnist folder; /usr/share/datasets/fashion-mnist (Debian package
`dataset-fashion-mnist`); a torchvision download when the network allows.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from lib.errors import DataError
from lib.workspace import data_dir

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
# SHA-256 of the decoded arrays (images then labels, C order), so the check
# holds whatever the files' compression or origin.
SHA256 = {
    "train": "16d82e2b505296aa2b78bd5ea0992634f30419a4c97def7c907d154a35ac6157",
    "test": "9f1ec356a747bfe4ebab3cfb722d3694c9ca737e2570f6f90cf31d7b6fd689d4",
}
_IDX_DTYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip-compressed or raw) into an array of its shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise DataError(f"{path}: unsupported IDX element type 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) if shape else 0
    body = np.frombuffer(raw, dtype=_IDX_DTYPES[type_code], offset=min(header_end, len(raw)))
    if len(raw) < header_end or body.size != expected:
        raise DataError(f"{path} is truncated or padded: header says {shape}, found {body.size} values")
    return body.reshape(shape)


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _has_all_files(folder: Path) -> bool:
    return all(_find_file(folder, stem) for images, labels, _ in FILES.values() for stem in (images, labels))


def locate() -> Path:
    """The first folder in the search order that holds all four IDX files."""
    explicit = os.environ.get("FASHION_MNIST_DIR")
    if explicit:
        # A folder the user names must be right: silently using another copy would hide the mistake.
        if not _has_all_files(Path(explicit)):
            raise DataError(f"FASHION_MNIST_DIR={explicit} does not hold the four Fashion-MNIST IDX files")
        return Path(explicit)
    own = data_dir() / "fashion-mnist"
    for folder in (own, SYSTEM_DIR):
        if _has_all_files(folder):
            return folder
    if _download(own):
        return own
    raise DataError(
        "Fashion-MNIST not found: set FASHION_MNIST_DIR, or install the Debian package "
        "dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist)"
    )


def _download(folder: Path) -> bool:
    """Try torchvision's download (needs network); True if the files arrived."""
    try:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(folder / "_torchvision"), train=True, download=True)
        FashionMNIST(str(folder / "_torchvision"), train=False, download=True)
    except Exception:  # no network, no torchvision: the caller reports "not found"
        return False
    raw = folder / "_torchvision" / "FashionMNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    for path in raw.glob("*-ubyte.gz"):
        path.replace(folder / path.name)
    return _has_all_files(folder)


def decoded_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels).tobytes())
    return digest.hexdigest()


def load_split(folder: Path, split: str, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (n, 28, 28) and labels uint8 (n,) of one split, checked."""
    image_stem, label_stem, count = FILES[split]
    images = read_idx(_find_file(folder, image_stem) or folder / image_stem)
    labels = read_idx(_find_file(folder, label_stem) or folder / label_stem)
    if images.shape != (count, 28, 28) or labels.shape != (count,):
        raise DataError(f"Fashion-MNIST {split} split has shapes {images.shape} and {labels.shape}, "
                        f"expected ({count}, 28, 28) and ({count},)")
    if labels.max() > 9:
        raise DataError(f"Fashion-MNIST {split} labels go up to {labels.max()}, expected 0..9")
    if verify and decoded_sha256(images, labels) != SHA256[split]:
        raise DataError(f"Fashion-MNIST {split} split in {folder} does not match the known checksum")
    return images, labels


def load_all(folder: Path | None = None, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images (train then test, so index i >= 60,000 is test image i - 60,000)."""
    folder = folder or locate()
    train_x, train_y = load_split(folder, "train", verify)
    test_x, test_y = load_split(folder, "test", verify)
    return np.concatenate([train_x, test_x]), np.concatenate([train_y, test_y])
