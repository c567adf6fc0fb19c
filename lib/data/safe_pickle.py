"""Loading the assignment pickle without running code from it, and validating it.

A pickle can call any importable function while it loads. The loader below
only resolves the few globals that numpy arrays and plain containers need and
refuses every other one, naming it, before anything runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from lib.errors import DataError

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # protocol-2 pickles store bytes through it
}

# key -> (image count or None, label width or None); None image count: any.
EXPECTED = {
    "unlabeled_data": (None, None),
    "labeled_data": (None, 5),
    "representative_set_1": (None, 6),
    "representative_set_2": (None, 6),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise DataError(f"refused to load pickle global {module}.{name}: "
                        "only numpy arrays and plain containers are allowed")


def load_pickle(path: Path) -> object:
    """Unpickle `path`, allowing only numpy arrays and plain containers."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        with open(path, "rb") as handle:
            return _RestrictedUnpickler(handle).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DataError(f"{path} is not a readable pickle (truncated or damaged?): {error}") from None


def _check_images(name: str, images: object) -> None:
    if not isinstance(images, np.ndarray):
        raise DataError(f"{name}: expected a numpy array, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1:] != (1, 32, 32) or len(images) == 0:
        raise DataError(f"{name}: expected shape (n, 1, 32, 32) with n > 0, got {images.shape}")
    if images.dtype != np.uint8:
        raise DataError(f"{name}: expected dtype uint8, got {images.dtype}")


def _check_labels(name: str, labels: object, count: int, width: int) -> None:
    if not isinstance(labels, np.ndarray):
        raise DataError(f"{name}: expected a numpy array, got {type(labels).__name__}")
    if labels.shape != (count, width):
        raise DataError(f"{name}: expected shape ({count}, {width}), got {labels.shape}")
    if labels.dtype != np.float32:
        raise DataError(f"{name}: expected dtype float32, got {labels.dtype}")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise DataError(f"{name}: one-hot labels must be 0 or 1, found values outside")
    bad_rows = np.flatnonzero(labels.sum(axis=1) != 1)
    if bad_rows.size:
        raise DataError(f"{name}: {bad_rows.size} rows are not one-hot (first: row {bad_rows[0]})")


def validate(data: object) -> dict:
    """Check keys, shapes, dtypes and one-hot labels; raise DataError naming the failed check."""
    if not isinstance(data, dict):
        raise DataError(f"expected a dict at the top of the pickle, got {type(data).__name__}")
    missing = sorted(set(EXPECTED) - set(data))
    extra = sorted(set(data) - set(EXPECTED))
    if missing or extra:
        raise DataError(f"pickle keys do not match the assignment: missing {missing}, unexpected {extra}")
    _check_images("unlabeled_data", data["unlabeled_data"])
    for key, (_, width) in EXPECTED.items():
        if width is None:
            continue
        part = data[key]
        if not isinstance(part, dict) or set(part) != {"data", "labels"}:
            raise DataError(f"{key}: expected a dict with keys 'data' and 'labels'")
        _check_images(f"{key}.data", part["data"])
        _check_labels(f"{key}.labels", part["labels"], len(part["data"]), width)
    return data


def load_assignment_pickle(path: Path) -> dict:
    """Safely load and validate an assignment pickle (original or replica)."""
    return validate(load_pickle(path))
