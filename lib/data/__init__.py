"""The four datasets of the assignment, ready for training and evaluation.

`ensure_replica` builds the replica once and verifies it on every later call;
`load_assignment` reads the original pickle when the user points at it
(`ASSIGNMENT_DATA` or an explicit path) and the replica otherwise;
`load_answer_key` is for evaluation code only and returns None for the original.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lib.data import fashion_mnist, replica
from lib.data.safe_pickle import load_assignment_pickle
from lib.errors import DataError
from lib.workspace import data_dir

CLASS_NAMES = replica.CLASS_NAMES
ANOMALY = replica.ANOMALY
PICKLE_NAME = "assignment_4_data.pickle"
KEY_NAME = "answer_key.npz"
MANIFEST_NAME = "replica_manifest.json"


@dataclass(frozen=True)
class Assignment:
    """Images are uint8 (n, 1, 32, 32); labels are class indices (0-4, and 5 = anomaly)."""

    unlabeled: np.ndarray
    labeled_x: np.ndarray
    labeled_y: np.ndarray
    rep1_x: np.ndarray
    rep1_y: np.ndarray
    rep2_x: np.ndarray
    rep2_y: np.ndarray
    source: Path
    is_replica: bool


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def replica_paths(folder: Path | None = None) -> tuple[Path, Path, Path]:
    folder = folder or data_dir()
    return folder / PICKLE_NAME, folder / KEY_NAME, folder / MANIFEST_NAME


def ensure_replica(folder: Path | None = None, seed: int = 0, log=print) -> Path:
    """Build the replica unless a valid one for `seed` is already there; return the pickle path."""
    pickle_path, key_path, manifest_path = replica_paths(folder)
    if manifest_path.exists() and pickle_path.exists() and key_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("seed") == seed and manifest.get("pickle_sha256") == _sha256(pickle_path) \
                and manifest.get("answer_key_sha256") == _sha256(key_path):
            load_assignment_pickle(pickle_path)
            log(f"replica up to date: {pickle_path}")
            return pickle_path
        log("replica present but stale or modified: rebuilding")
    source = fashion_mnist.locate()
    log(f"building replica from Fashion-MNIST in {source} (seed {seed})")
    images, labels = fashion_mnist.load_all(source)
    data, key = replica.build(images, labels, seed=seed)
    pickle_sha = replica.write(data, key, pickle_path, key_path)
    load_assignment_pickle(pickle_path)
    manifest_path.write_text(json.dumps({
        "seed": seed, "pickle_sha256": pickle_sha, "answer_key_sha256": _sha256(key_path),
        "fashion_mnist_sha256": fashion_mnist.SHA256,
        "corruptions": {name: text for name, (_, text) in replica.CORRUPTIONS.items()},
    }, indent=2) + "\n")
    log(f"wrote {pickle_path} and {key_path}")
    return pickle_path


def resolve_data_path(path: Path | str | None = None) -> Path:
    """The explicit path, else `ASSIGNMENT_DATA`, else the replica in the data folder."""
    chosen = path or os.environ.get("ASSIGNMENT_DATA")
    if chosen:
        return Path(chosen)
    return replica_paths()[0]


def load_assignment(path: Path | str | None = None) -> Assignment:
    path = resolve_data_path(path)
    if not path.exists() and path == replica_paths()[0]:
        raise DataError(f"{path} does not exist: build it with `python -m lib data`")
    raw = load_assignment_pickle(path)

    def classes(one_hot):
        return one_hot.argmax(axis=1).astype(np.int64)

    return Assignment(
        unlabeled=raw["unlabeled_data"],
        labeled_x=raw["labeled_data"]["data"], labeled_y=classes(raw["labeled_data"]["labels"]),
        rep1_x=raw["representative_set_1"]["data"], rep1_y=classes(raw["representative_set_1"]["labels"]),
        rep2_x=raw["representative_set_2"]["data"], rep2_y=classes(raw["representative_set_2"]["labels"]),
        source=path, is_replica=(path.parent / KEY_NAME).exists(),
    )


def load_answer_key(assignment: Assignment) -> dict | None:
    """The replica's answer key (for evaluation code only); None when running on the original data."""
    key_path = assignment.source.parent / KEY_NAME
    if not key_path.exists():
        return None
    with np.load(key_path, allow_pickle=False) as archive:
        key = {name: archive[name] for name in archive.files}
    if len(key["unlabeled_class"]) != len(assignment.unlabeled):
        raise DataError(f"{key_path} does not belong to {assignment.source} (sizes differ)")
    return key
