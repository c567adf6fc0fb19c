"""The one training loop of every network: `train_loop(model, step_loss, schedule, ...)`.

The caller supplies `step_loss(model, step, generator) -> (loss, logs)`: it draws
its batch and every other random number from `generator`, which the loop seeds
by (seed, step), and layers that draw from torch's global generator (dropout)
get a per-step seed too. So a run resumed from its checkpoint continues exactly
as an uninterrupted one would, and a CPU rerun reproduces its numbers bit for bit.

- Optimizer (`make_optimizer`): AdamW over parameter blocks, each with a
  learning-rate factor; weights decay, biases and normalisation parameters
  (ndim <= 1) do not.
- Schedule (`lr_at`): linear warm-up, then cosine decay to `min_lr_fraction`,
  set per step from the step number alone (no scheduler state to restore).
- Every `schedule.every` steps and at the end: a record (mean loss and logs,
  learning rate, `evaluate`'s fields, seconds, images per second), one log line
  and a checkpoint (`lib.train.checkpoint`), plus a snapshot of the weights when
  `snapshots` is set.
- With an `EMA` (`lib.train.ema`, FixMatch's teacher): updated after every step; it is what `evaluate` sees,
  what the checkpoint's weights hold and what the run returns, the trained network's weights riding along in
  the training state for resumption.
- On CUDA: bfloat16 autocast and channels-last memory layout (channels-last on request elsewhere).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.std import tqdm

from lib.config import Training
from lib.nn.augment import derived_seed, seeded_generator
from lib.train import checkpoint
from lib.train.ema import EMA

StepLoss = Callable[[nn.Module, int, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class Schedule:
    """The loop's plan: how many steps, when to record, and the learning rate of every step."""

    steps: int
    every: int  # steps per record (log line, evaluation, checkpoint)
    steps_per_epoch: float  # for the records' epoch numbers
    lr: float
    weight_decay: float
    warmup: int  # warm-up steps
    min_lr_fraction: float
    seed: int

    @classmethod
    def of(cls, training: Training, n_images: int, seed: int, every: int | None = None) -> Schedule:
        """The schedule of a recipe on `n_images` images: `training.epochs` passes of `n_images // batch` steps
        (a record per epoch), or `training.steps` steps (a record every `every`)."""
        batch = min(training.batch, n_images)
        per_epoch = n_images // batch  # epoch-shuffled batches: the images left over wait for the next epoch
        by_epoch = training.epochs is not None
        steps = per_epoch * training.epochs if by_epoch else training.steps
        return cls(steps=steps, every=every or (per_epoch if by_epoch else max(1, steps // 10)),
                   steps_per_epoch=per_epoch if by_epoch else n_images / batch, lr=training.lr,
                   weight_decay=training.weight_decay,
                   warmup=int(training.warmup * steps), min_lr_fraction=training.min_lr_fraction, seed=seed)


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    folder: Path | None = None

    @property
    def images_per_second(self) -> float:
        """Median training throughput over the records (source images per second)."""
        rates = [h["images_per_second"] for h in self.history if h.get("images_per_second")]
        return float(np.median(rates)) if rates else float("nan")

    @property
    def seconds(self) -> float:
        return float(sum(h["seconds"] for h in self.history))


def progress_bar(iterable, desc: str, enabled: bool = True) -> tqdm:
    """A tqdm bar, off when not `enabled` or when TQDM_DISABLE is set: the batch pipeline sets it,
    so its log shows the one line per record that the training loop prints, not carriage returns."""
    return tqdm(iterable, desc=desc, leave=False, mininterval=2.0,
                disable=not enabled or bool(os.environ.get("TQDM_DISABLE")))


def lr_at(step: int, schedule: Schedule) -> float:
    """Learning rate of `step`: linear warm-up over `schedule.warmup` steps, then cosine decay from
    `schedule.lr` to `schedule.min_lr_fraction * schedule.lr` at the last step."""
    s = schedule
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    floor = s.min_lr_fraction
    return s.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def make_optimizer(blocks: Iterable[tuple[Iterable[nn.Parameter], float]], lr: float,
                   weight_decay: float) -> torch.optim.AdamW:
    """AdamW over parameter blocks, each (parameters, learning-rate factor). Every block becomes two groups:
    weights (ndim > 1) with `weight_decay`, biases and normalisation parameters (ndim <= 1) without.
    Each group carries its "lr_factor"; the loop sets its lr to lr_at(...) * lr_factor at every step."""
    groups = []
    for params, factor in blocks:
        params = list(params)
        for decay, chosen in ((weight_decay, [p for p in params if p.ndim > 1]),
                              (0.0, [p for p in params if p.ndim <= 1])):
            if chosen:
                groups.append({"params": chosen, "weight_decay": decay, "lr_factor": factor})
    return torch.optim.AdamW(groups, lr=lr)


class EpochBatches:
    """Indices of optimizer step `step`'s batch when every epoch is a fresh permutation of n items, seeded by
    (seed, epoch, stream); the images left over by the last full batch wait for the next epoch's permutation."""

    def __init__(self, n: int, batch: int, seed: int, device: torch.device | str = "cpu", stream: int = 1):
        self.n, self.batch, self.seed, self.device, self.stream = n, min(batch, n), seed, device, stream
        self.per_epoch = n // self.batch
        self.epoch, self.order = None, None

    def __call__(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self.epoch:
            generator = seeded_generator(self.seed, epoch, stream=self.stream)
            self.epoch, self.order = epoch, torch.randperm(self.n, generator=generator).to(self.device)
        return self.order[i * self.batch:(i + 1) * self.batch]


def train_loop(model: nn.Module, step_loss: StepLoss, schedule: Schedule, folder: Path | str, key: dict, *,
               blocks: list[tuple[Iterable[nn.Parameter], float]] | None = None,
               evaluate: Callable[[nn.Module, int], dict[str, float]] | None = None, images_per_step: int,
               snapshots: bool = False, channels_last: bool = False, ema: EMA | None = None,
               device: torch.device | str = "cpu", log=print, progress: bool = True) -> TrainResult:
    """Train `model` for `schedule.steps` steps of `step_loss`, resuming from `folder`; the model returns in eval
    mode. `key` (JSON-able: configurations, seed, data fingerprint) identifies the run: a checkpoint of another
    run in `folder` is refused. `blocks`: (parameters, lr factor) for `make_optimizer` (default: all, factor 1).
    `evaluate(model, steps_done) -> dict` adds fields to each record; `images_per_step` is for images/s.
    The model is kept in channels-last layout on CUDA, and everywhere with `channels_last` (the CNN family's
    convolutions run faster so on CPUs too; `step_loss` then passes channels-last batches). `ema`: an average of
    `model`'s weights kept by the loop (`step_loss` may read `ema.model`); the run returns the average."""
    s, device, folder, key = schedule, torch.device(device), Path(folder), checkpoint.canonical(key)
    layout = torch.channels_last if device.type == "cuda" or channels_last else torch.contiguous_format
    model = model.to(device, memory_format=layout)
    if ema is not None:
        ema.model.to(device, memory_format=layout)
    deployed = model if ema is None else ema.model
    optimizer = make_optimizer(blocks or [(model.parameters(), 1.0)], s.lr, s.weight_decay)
    history, start = [], 0
    saved = checkpoint.resume_state(folder, key)
    if saved is not None:
        model.load_state_dict(saved["state"] if ema is None else saved["training"]["network"])
        if ema is not None:
            ema.load_state_dict(saved["state"])
        optimizer.load_state_dict(saved["training"]["optimizer"])
        history, start = saved["training"]["history"], saved["training"]["step"]
        log(f"{folder.name}: resuming at step {start} of {s.steps}")
    elif snapshots:
        checkpoint.save_snapshot(folder, model, 0)  # the initialisation: the first point of checkpoint studies

    def save(steps: int) -> None:
        training = {"key": key, "step": steps, "steps": s.steps, "history": history,
                    "optimizer": optimizer.state_dict()}
        if ema is not None:
            training["network"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        checkpoint.save(folder, deployed, training=training)
        if snapshots:
            checkpoint.save_snapshot(folder, model, round(steps / s.steps_per_epoch))

    sums, count, t0 = {}, 0, time.perf_counter()
    for step in progress_bar(range(start, s.steps), folder.name, progress):
        model.train()
        lr = lr_at(step, s)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_factor"]
        torch.manual_seed(derived_seed(s.seed, step, stream=2))  # dropout's draws, repeated on resume
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, logs = step_loss(model, step, seeded_generator(s.seed, step, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update(model, step)
        count += 1
        for name, value in {"loss": loss.item(), **logs}.items():
            sums[name] = sums.get(name, 0.0) + value
        done = step + 1
        if done % s.every and done < s.steps:
            continue
        evaluated = evaluate(deployed, done) if evaluate is not None else {}
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        history.append({"step": done, "epoch": done / s.steps_per_epoch, **{k: v / count for k, v in sums.items()},
                        "lr": lr, **evaluated, "seconds": seconds,
                        "images_per_second": count * images_per_step / seconds})
        save(done)
        log(f"{folder.name} step {done}/{s.steps}: loss {history[-1]['loss']:.4f}"
            + "".join(f", {name.replace('_', ' ')} {value:.4f}" for name, value in evaluated.items())
            + f", {history[-1]['images_per_second']:,.0f} images/s, {seconds:.1f} s")
        sums, count, t0 = {}, 0, time.perf_counter()
    # back to the default layout: a trained network then computes exactly as one reloaded from its checkpoint
    return TrainResult(deployed.to(memory_format=torch.contiguous_format).eval(), history, folder)
