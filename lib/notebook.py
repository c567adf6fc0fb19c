"""What every notebook does first: resolve parameters, seed, load data, open the workspace."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from lib.config import Profile, default_profile_name, get_profile
from lib.data import Assignment, load_answer_key, load_assignment
from lib.errors import UserError
from lib.workspace import Workspace


@dataclass
class Context:
    profile: Profile
    seed: int
    device: torch.device
    ws: Workspace
    data: Assignment
    answer_key: dict | None  # evaluation code only; None on the original data

    @property
    def checkpoints(self) -> Path:
        """The folder of this profile's training runs."""
        return self.ws.checkpoints(self.profile.name)

    def save_figure(self, fig, name: str) -> None:
        """Save a matplotlib figure as figures/<name>.png, every text at least 7 pt at print size."""
        from lib.plots import save_figure

        save_figure(fig, self.ws.figures / f"{name}.png")


def pick_device(device: str | None) -> torch.device:
    """The torch device for a `--device` argument: cpu, cuda or cuda:N (None or auto: CUDA when available)."""
    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {device!r}: use cpu, cuda or cuda:N") from None
    if chosen.type not in ("cpu", "cuda"):
        raise UserError(f"unsupported device {device!r}: use cpu, cuda or cuda:N")
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {device!r} asked for, but CUDA is not available here: use --device cpu")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise UserError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return chosen


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _subset(data: Assignment, key: dict | None, n: int | None) -> tuple[Assignment, dict | None]:
    """The first n images of every set (smoke profile); the answer key is cut to match."""
    if n is None:
        return data, key
    cut = replace(data, unlabeled=data.unlabeled[:n], labeled_x=data.labeled_x[:n], labeled_y=data.labeled_y[:n],
                  rep1_x=data.rep1_x[:n], rep1_y=data.rep1_y[:n], rep2_x=data.rep2_x[:n], rep2_y=data.rep2_y[:n])
    if key is not None:
        key = {name: (value[:n] if name.startswith(("unlabeled_", "labeled_", "rep")) else value)
               for name, value in key.items()}
    return cut, key


def setup(profile: str | None = None, seed: int = 0, device: str | None = None,
          workspace: str | None = None, data_path: str | None = None) -> Context:
    torch_device = pick_device(device)
    chosen = get_profile(profile or default_profile_name(torch_device.type))
    if torch_device.type == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    seed_everything(seed)
    data = load_assignment(data_path)
    data, key = _subset(data, load_answer_key(data), chosen.subset)
    ws = Workspace(workspace)
    # every setting of the run, printed here and kept beside the checkpoints it produces
    settings = ws.checkpoints(chosen.name) / "profile.json"
    settings.write_text(json.dumps(chosen.to_dict(), indent=2) + "\n")
    print(f"device {torch_device}, seed {seed}, data {data.source}"
          f" ({'replica with answer key' if key is not None else 'original data: answer-key evaluation skipped'})")
    print(chosen.describe())
    return Context(chosen, seed, torch_device, ws, data, key)
