"""The one checkpoint format and its one loader.

A checkpoint is a dict `{"kind", "config", "state"}`: the network's kind and
configuration (`lib.nn.registry` rebuilds the module from them) and its weights;
a training run's `checkpoint.pt` adds `"training"`: the run's key (the
configurations, seed and data fingerprint it was made with), the step reached,
the history of records and the optimizer state, so that a killed run resumes.
Snapshots (`snapshot_NNN.pt`, the weights after epoch NNN, 000 = the
initialisation) have the same format without `"training"`. Everything in them is
plain data and tensors, so they load with `torch.load(weights_only=True)`.
Files are written to a temporary name, then renamed: an interrupted save never
leaves a broken checkpoint.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from lib.nn.registry import build, config_from_dict

FILE = "checkpoint.pt"
SNAPSHOT = re.compile(r"snapshot_(\d+)\.pt$")


def canonical(key: dict) -> dict:
    """A run's key as JSON gives it back (tuples become lists), so keys compare equal after a reload."""
    return json.loads(json.dumps(key))


def _write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def _payload(model: nn.Module) -> dict:
    return {"kind": model.config.kind, "config": canonical(asdict(model.config)),
            "state": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def save(folder: Path | str, model: nn.Module, training: dict | None = None) -> Path:
    """Write folder/checkpoint.pt: the model (its `config` names its kind) and, for a run, its training state."""
    path = Path(folder) / FILE
    _write(path, {**_payload(model), **({"training": training} if training is not None else {})})
    return path


def save_snapshot(folder: Path | str, model: nn.Module, epoch: int) -> None:
    _write(Path(folder) / f"snapshot_{epoch:03d}.pt", _payload(model))


def read(path: Path | str) -> dict:
    """The checkpoint dict at `path` (a file, or a folder holding checkpoint.pt), tensors on the CPU."""
    path = Path(path)
    path = path / FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: run the notebook that trains it first")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(path: Path | str, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild the network of a checkpoint (file or folder), with its weights, in eval mode on `device`."""
    saved = read(path)
    model = build(config_from_dict(saved["kind"], saved["config"]))
    model.load_state_dict(saved["state"])
    return model.to(device).eval()


def finished(folder: Path | str) -> dict | None:
    """The checkpoint of a completed run in `folder`, else None."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    saved = read(path)
    training = saved.get("training")
    return saved if training is not None and training["step"] >= training["steps"] else None


def resume_state(folder: Path | str, key: dict) -> dict | None:
    """The checkpoint of an interrupted (or finished) run with this key in `folder`; None when there is none.
    A checkpoint of another run is refused: folders are named by their run's key (`lib.train.cache`)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    saved = read(path)
    if canonical(saved.get("training", {}).get("key")) != canonical(key):
        raise RuntimeError(f"{path} holds another run's checkpoint; move it away or delete its folder")
    return saved


def snapshots(folder: Path | str) -> list[tuple[int, Path]]:
    """(epoch, path) of every snapshot in the folder, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob("snapshot_*.pt") if (m := SNAPSHOT.search(p.name))]
    return sorted(found)
