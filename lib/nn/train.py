"""One training loop for every network of the study; the caller supplies the loss.

`training_loop(model, step_loss, schedule, folder, config, ...)` runs
`schedule.steps` optimizer steps; `step_loss(model, step, generator)` returns
(loss, logs) for one step: it draws its batch and any other randomness from
`generator`, which the loop seeds by (seed, step). The three public trainers
are thin wrappers that build the batches and the loss:

- `train` (notebook 02's models, `model.loss(x, views, generator)`): epochs, each
  a permutation of the images seeded by (seed, epoch); one checkpoint per epoch,
  `epoch_NNN.pt` (`epoch_000.pt` is the initialisation), the newest `keep` kept;
- `fit_classifier` and `pretrain_classifier` (lib.nn.finetune): steps, batches
  drawn with replacement; one record and `checkpoint.pt` every `eval_every` steps.

Shared by all of them:
- Randomness: `seeded_generator(seed, index, device, stream)` is the only seeded
  generator; a run resumed from its checkpoint therefore continues exactly as an
  uninterrupted one would, and a CPU rerun reproduces its numbers bit for bit.
- Optimizer (`make_optimizer`): AdamW over parameter blocks, each with a
  learning-rate factor; weights decay, biases and normalisation parameters
  (ndim <= 1) do not.
- Schedule (`lr_at`): linear warm-up then cosine decay, set per step from the
  step number alone (no scheduler state to restore).
- Checkpoints (`save_checkpoint`: written to a temporary file, then renamed):
  weights, optimizer state, history and the run's configuration, which is also
  written beside them as `config.json`. A run resumes from the newest checkpoint
  when its configuration (including a fingerprint of the data) is the same;
  otherwise the folder's checkpoints are deleted and training starts afresh.
- One record and one log line per epoch or evaluation: mean loss and loss
  terms, learning rate, evaluation results, seconds and images per second.
- On CUDA: bfloat16 autocast and channels-last memory layout.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.std import tqdm

from lib.nn.augment import NONE, AugmentConfig, augment, derived_seed, seeded_generator, to_float
from lib.nn.models import ModelConfig, build_model

CHECKPOINT = re.compile(r"epoch_(\d+)\.pt$")
LATEST = "checkpoint.pt"  # the one checkpoint of step-counted runs

StepLoss = Callable[[nn.Module, int, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    min_lr_fraction: float = 0.01  # the cosine decays to this fraction of lr
    augment: AugmentConfig | None = None  # None: the model sees the images as they are
    seed: int = 0
    keep: int | None = 10  # checkpoints kept (the newest); None keeps all

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = None if self.augment is None else self.augment.to_dict()
        return d


@dataclass(frozen=True)
class Schedule:
    """The loop's plan: how many steps, when to record, and the learning rate of every step."""

    steps: int  # optimizer steps in all
    every: int  # steps per record (log line, evaluation, checkpoint): one epoch, or the evaluation interval
    lr: float
    weight_decay: float
    warmup: int  # warm-up steps
    min_lr_fraction: float  # the cosine decays to this fraction of lr
    seed: int
    unit: str = "step"  # "epoch": records count epochs and each gets a checkpoint file epoch_NNN.pt
    keep: int | None = 1  # epoch checkpoints kept (the newest, plus the initialisation); None keeps all


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    folder: Path | None = None
    resumed_from: int = 0  # epoch (or step) of the checkpoint training started from (0: fresh)

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


def lr_at(step: int, total: int, warmup: int, cfg) -> float:
    """Learning rate of `step` of `total`: linear warm-up over `warmup` steps, then cosine decay
    from cfg.lr to cfg.min_lr_fraction * cfg.lr."""
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    floor = cfg.min_lr_fraction
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


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
    (seed, epoch); the images left over by the last full batch wait for the next epoch's permutation."""

    def __init__(self, n: int, batch: int, seed: int, device: torch.device | str = "cpu"):
        self.n, self.batch, self.seed, self.device = n, batch, seed, device
        self.per_epoch = n // batch
        self.epoch, self.order = None, None

    def __call__(self, step: int) -> torch.Tensor:
        epoch, i = divmod(step, self.per_epoch)
        if epoch != self.epoch:
            generator = seeded_generator(self.seed, epoch, stream=1)
            self.epoch, self.order = epoch, torch.randperm(self.n, generator=generator).to(self.device)
        return self.order[i * self.batch:(i + 1) * self.batch]


def array_fingerprint(*arrays: np.ndarray) -> str:
    """Short SHA-1 of arrays' shapes and bytes: the data part of a run's configuration (and of folder names)."""
    digest = hashlib.sha1()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:10]


# --------------------------------------------------------------------------- checkpoints


def list_checkpoints(folder: Path | str) -> list[tuple[int, Path]]:
    """(epoch, path) of every epoch checkpoint in the folder, oldest first."""
    folder = Path(folder)
    found = [(int(m.group(1)), p) for p in folder.glob("epoch_*.pt") if (m := CHECKPOINT.search(p.name))]
    return sorted(found)


def _load(path: Path, device="cpu") -> dict:
    return torch.load(path, map_location=device, weights_only=False)


def saved_config(state: dict) -> dict:
    """The configuration a checkpoint was made with (also for checkpoints older than the shared loop,
    which kept it at the top level, or as "signature")."""
    return state.get("config") or state.get("signature") or state


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temporary file, then rename: an interrupted save never leaves a broken checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _checkpoint_files(folder: Path, unit: str) -> list[Path]:
    if unit == "epoch":
        return [path for _, path in list_checkpoints(folder)]
    return [folder / LATEST] if (folder / LATEST).exists() else []


def load_trained(folder: Path | str, device: torch.device | str = "cpu", epoch: int | None = None) -> torch.nn.Module:
    """Rebuild a model from its checkpoint folder (the last epoch, or `epoch`), in eval mode on `device`."""
    checkpoints = dict(list_checkpoints(folder))
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoints in {folder}: run notebook 02_pretraining first")
    chosen = max(checkpoints) if epoch is None else epoch
    if chosen not in checkpoints:
        raise FileNotFoundError(f"no checkpoint for epoch {chosen} in {folder} (have {sorted(checkpoints)})")
    state = _load(checkpoints[chosen])
    model = build_model(ModelConfig.from_dict(saved_config(state)["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def load_history(folder: Path | str) -> list[dict]:
    """The per-epoch training history stored in the newest checkpoint."""
    checkpoints = list_checkpoints(folder)
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoints in {folder}: run notebook 02_pretraining first")
    return _load(checkpoints[-1][1])["history"]


# --------------------------------------------------------------------------- the loop


def _canonical(config: dict) -> dict:
    return json.loads(json.dumps(config))  # tuples -> lists, as in config.json and in saved checkpoints


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _fields(record: dict, keys: Iterable[str]) -> str:
    return "".join(f", {key.replace('_', ' ')} {record[key]:.4f}" for key in keys)


def training_loop(model: nn.Module, step_loss: StepLoss, schedule: Schedule, folder: Path | str, config: dict, *,
                  blocks: list[tuple[Iterable[nn.Parameter], float]] | None = None,
                  evaluate: Callable[[nn.Module, int], dict[str, float]] | None = None,
                  images_per_step: int, device: torch.device | str = "cpu", log=print,
                  progress: bool = True) -> TrainResult:
    """Train `model` for `schedule.steps` steps of `step_loss`, resuming from `folder`; the model returns in eval mode.

    `step_loss(model, step, generator) -> (loss, logs)`: the loss of optimizer step `step` (0-based; a float
    tensor) and floats to average into the record; `generator` (on `device`) is seeded by (schedule.seed, step).
    `blocks`: (parameters, lr factor) for `make_optimizer` (default: all parameters, factor 1).
    `evaluate(model, steps_done) -> dict` adds fields (e.g. validation accuracy) to each record.
    `config` (JSON-able: configurations and data fingerprints) decides whether saved checkpoints are this run's.
    `images_per_step`: source images per step, for the images/s of each record.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = _canonical(config)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    s, by_epoch = schedule, schedule.unit == "epoch"
    index = (lambda steps: steps // s.every) if by_epoch else (lambda steps: steps)  # a record's epoch or step
    last = index(s.steps)

    model = model.to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(blocks or [(model.parameters(), 1.0)], s.lr, s.weight_decay)
    factors = [group["lr_factor"] for group in optimizer.param_groups]

    def save(steps: int) -> None:
        state = {"config": config, "step": steps, "history": history, "optimizer": optimizer.state_dict(),
                 "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
        if not by_epoch:
            save_checkpoint(folder / LATEST, state)
            return
        save_checkpoint(folder / f"epoch_{index(steps):03d}.pt", state)
        if s.keep is not None:
            for epoch, path in list_checkpoints(folder)[:-s.keep]:
                if epoch != 0:  # the initialisation stays: it is the first point of checkpoint plots
                    path.unlink()

    history: list[dict] = []
    start = 0
    files = _checkpoint_files(folder, s.unit)
    if files:
        state = _load(files[-1], device)
        if state.get("config") == config:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history, start = state["history"], state["step"]
            log(f"{folder.name}: resuming at {s.unit} {index(start)} of {last}" if start < s.steps
                else f"{folder.name}: already trained ({_count(last, s.unit)}), loaded from {files[-1]}")
        else:
            log(f"{folder.name}: checkpoints were made with another configuration: starting afresh")
            for path in files:
                path.unlink()
    if start == 0 and by_epoch:
        save(0)

    sums: dict[str, float] = {}
    evaluated: dict[str, float] = {}
    resumed, count, t0 = len(history), 0, time.perf_counter()
    bar = progress_bar(range(start, s.steps), folder.name, progress)
    for step in bar:
        model.train()
        lr = lr_at(step, s.steps, s.warmup, s)
        for group, factor in zip(optimizer.param_groups, factors):
            group["lr"] = lr * factor
        # layers that draw from torch's global generator (dropout) get a per-step seed too, so a resumed
        # run repeats an uninterrupted one exactly
        torch.manual_seed(derived_seed(s.seed, step, stream=2))
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss, logs = step_loss(model, step, seeded_generator(s.seed, step, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        count += 1
        for key, value in {"loss": loss.item(), **logs}.items():
            sums[key] = sums.get(key, 0.0) + value
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        done = step + 1
        if done % s.every and done < s.steps:
            continue
        evaluated = evaluate(model, done) if evaluate is not None else {}
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        record = {s.unit: index(done), **{k: v / count for k, v in sums.items()}, "lr": lr, **evaluated,
                  "seconds": seconds, "images_per_second": count * images_per_step / seconds}
        history.append(record)
        save(done)
        log(f"{folder.name} {s.unit} {index(done)}/{last}: loss {record['loss']:.4f}{_fields(record, evaluated)}, "
            f"{record['images_per_second']:,.0f} images/s, {seconds:.1f} s")
        sums, count, t0 = {}, 0, time.perf_counter()

    if start < s.steps:
        now = TrainResult(model, history[resumed:])  # the records of this call
        log(f"{folder.name}: {_count(last - index(start), s.unit)} in {now.seconds:.0f} s "
            f"({now.images_per_second:,.0f} images/s){_fields(history[-1], evaluated)}")
    return TrainResult(model.eval(), history, folder, index(start))


# --------------------------------------------------------------------------- notebook 02's models


def train(model_config: ModelConfig, images: np.ndarray | torch.Tensor, cfg: TrainConfig,
          folder: Path | str, device: torch.device | str = "cpu", log=print,
          progress: bool = True) -> TrainResult:
    """Train a fresh model of `model_config` on uint8 images (n, 1, 32, 32), resuming from `folder`.

    Each epoch is a permutation of the images (seeded by (seed, epoch)); the model's
    `loss(x, views, generator)` gives the loss of a batch. Returns the trained model
    (eval mode) and its history. When the folder holds a finished run with the same
    configurations and data, nothing is trained.
    """
    device = torch.device(device)
    images = np.asarray(images)
    data = torch.as_tensor(images).to(device)
    n = len(data)
    batch = min(cfg.batch_size, n)
    per_epoch = n // batch
    augment_cfg = cfg.augment or NONE
    torch.manual_seed(cfg.seed)
    model = build_model(model_config)
    batches = EpochBatches(n, batch, cfg.seed, device)

    def step_loss(model, step, g):
        x = to_float(data[batches(step)])
        if x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return model.loss(x, lambda v: augment(v, augment_cfg, g), g)

    schedule = Schedule(steps=per_epoch * cfg.epochs, every=per_epoch, lr=cfg.lr, weight_decay=cfg.weight_decay,
                        warmup=int(cfg.warmup_epochs * per_epoch), min_lr_fraction=cfg.min_lr_fraction,
                        seed=cfg.seed, unit="epoch", keep=cfg.keep)
    config = {"model_config": model_config.to_dict(), "train_config": cfg.to_dict(),
              "data": array_fingerprint(images)}
    return training_loop(model, step_loss, schedule, folder, config, images_per_step=batch, device=device,
                         log=log, progress=progress)


PRETRAINED = {  # checkpoint folder name -> name in tables and figures
    "fc_ae": "FC autoencoder",
    "conv_ae": "conv autoencoder",
    "conv_ae_bn": "conv autoencoder + BN",
    "vae": "VAE",
    "contrastive": "contrastive",
}


def pretraining_plan(profile, seed: int = 0) -> dict[str, tuple[ModelConfig, TrainConfig]]:
    """Model and training configuration of every model notebook 02 trains, for a run profile."""
    p = profile.pretraining
    w = p.autoencoder_width
    common = dict(batch_size=p.batch, seed=seed, weight_decay=p.weight_decay, warmup_epochs=p.warmup_epochs,
                  min_lr_fraction=p.min_lr_fraction)
    return {
        "fc_ae": (ModelConfig("fc_ae", width=w, latent=p.latent, hidden=p.fc_hidden),  # width: unused by fc_ae
                  TrainConfig(epochs=p.fc_epochs, lr=p.fc_lr, **common)),
        "conv_ae": (ModelConfig("conv_ae", latent=p.latent, width=w, depth=0, batch_norm=False),
                    TrainConfig(epochs=p.autoencoder_epochs, lr=p.autoencoder_lr, keep=None, **common)),
        "conv_ae_bn": (ModelConfig("conv_ae", latent=p.latent, width=w, depth=0, batch_norm=True),
                       TrainConfig(epochs=p.autoencoder_epochs, lr=p.autoencoder_lr, keep=None, **common)),
        "vae": (ModelConfig("vae", latent=p.latent, width=w, depth=0, batch_norm=True, beta=p.vae_beta),
                TrainConfig(epochs=p.vae_epochs, lr=p.vae_lr, **common)),
        "contrastive": (ModelConfig("contrastive", latent=p.latent, width=p.encoder_width, depth=p.encoder_depth,
                                    batch_norm=True, features=p.encoder_features, temperature=p.temperature,
                                    decoder=True, decoder_fraction=p.decoder_fraction),
                        TrainConfig(epochs=p.contrastive_epochs, lr=p.contrastive_lr, augment=p.augment, **common)),
    }
