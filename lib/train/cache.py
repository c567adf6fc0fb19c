"""Train or load: every training run has a folder named after its key (the configurations, seed and data it
was made with), so a finished run is loaded instead of retrained, a killed one resumes, and a run with other
settings or data gets a folder of its own instead of overwriting one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lib.train import checkpoint
from lib.train.loop import TrainResult


def array_fingerprint(*arrays: np.ndarray) -> str:
    """Short SHA-1 of arrays' shapes and bytes: the data part of a run's key."""
    digest = hashlib.sha1()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:10]


def key_fingerprint(key: dict) -> str:
    return hashlib.sha1(json.dumps(checkpoint.canonical(key), sort_keys=True).encode()).hexdigest()[:10]


def run_folder(root: Path | str, name: str, key: dict) -> Path:
    """root/<name>-<fingerprint of key>: the one folder of this run."""
    return Path(root) / f"{name}-{key_fingerprint(key)}"


def trained(folder: Path, key: dict, train: Callable[[], TrainResult], device: torch.device | str = "cpu",
            log=print) -> TrainResult:
    """The finished run of `key` in `folder` (loaded), or `train()` (which resumes an interrupted run there);
    a checkpoint of another run in `folder` is refused."""
    checkpoint.resume_state(folder, key)
    saved = checkpoint.finished(folder)
    if saved is None:
        return train()
    log(f"{folder.name}: already trained, loaded")
    return TrainResult(checkpoint.load_model(folder / checkpoint.FILE, device), saved["training"]["history"], folder)
