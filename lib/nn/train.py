"""One training loop for every model (the model supplies its loss), with resumable checkpoints.

- Data: the uint8 images live on the training device; each epoch shuffles
  them with a generator seeded by (seed, epoch), and augmentations and the
  VAE's sampling draw from a device generator seeded the same way. A resumed
  run therefore continues exactly as an uninterrupted one would, and a CPU
  rerun reproduces its numbers.
- Schedule: AdamW, linear warm-up then cosine decay, set per step from the
  step number alone (no scheduler state to restore).
- On CUDA: bfloat16 autocast and channels-last memory layout.
- Checkpoints: `epoch_000.pt` (the initialisation) and one per epoch, each
  holding the model and training configurations, weights, optimizer state and
  history; `keep` limits how many are kept (None: all). A folder whose
  checkpoints were made with other configurations is cleared before training.
- Logged per epoch: mean loss and the model's loss terms, learning rate,
  seconds and images per second (source images, not augmented views).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.std import tqdm

from lib.nn.augment import NONE, AugmentConfig, augment
from lib.nn.models import ModelConfig, build_model

CHECKPOINT = re.compile(r"epoch_(\d+)\.pt$")


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


@dataclass
class TrainResult:
    model: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    folder: Path | None = None
    resumed_from: int = 0  # epoch of the checkpoint training started from (0: fresh)

    @property
    def images_per_second(self) -> float:
        """Median training throughput over the epochs trained (source images per second)."""
        rates = [h["images_per_second"] for h in self.history if h.get("images_per_second")]
        return float(np.median(rates)) if rates else float("nan")

    @property
    def seconds(self) -> float:
        return float(sum(h["seconds"] for h in self.history))


def progress_bar(iterable, desc: str, enabled: bool = True) -> tqdm:
    """A tqdm bar, off when not `enabled` or when TQDM_DISABLE is set: the batch pipeline sets it,
    so its log shows the one line per epoch that the training loops print, not carriage returns."""
    return tqdm(iterable, desc=desc, leave=False, mininterval=2.0,
                disable=not enabled or bool(os.environ.get("TQDM_DISABLE")))


def _seed_for(seed: int, epoch: int) -> int:
    return 1_000_003 * seed + 7_919 * epoch + 17


def lr_at(step: int, total: int, warmup: int, cfg: TrainConfig) -> float:
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    floor = cfg.min_lr_fraction
    return cfg.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def list_checkpoints(folder: Path | str) -> list[tuple[int, Path]]:
    """(epoch, path) of every checkpoint in the folder, oldest first."""
    folder = Path(folder)
    found = [(int(m.group(1)), p) for p in folder.glob("epoch_*.pt") if (m := CHECKPOINT.search(p.name))]
    return sorted(found)


def _load(path: Path, device="cpu") -> dict:
    return torch.load(path, map_location=device, weights_only=False)


def load_trained(folder: Path | str, device: torch.device | str = "cpu", epoch: int | None = None) -> torch.nn.Module:
    """Rebuild a model from its checkpoint folder (the last epoch, or `epoch`), in eval mode on `device`."""
    checkpoints = dict(list_checkpoints(folder))
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoints in {folder}: run notebook 02_pretraining first")
    chosen = max(checkpoints) if epoch is None else epoch
    if chosen not in checkpoints:
        raise FileNotFoundError(f"no checkpoint for epoch {chosen} in {folder} (have {sorted(checkpoints)})")
    state = _load(checkpoints[chosen])
    model = build_model(ModelConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def load_history(folder: Path | str) -> list[dict]:
    """The per-epoch training history stored in the newest checkpoint."""
    checkpoints = list_checkpoints(folder)
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoints in {folder}: run notebook 02_pretraining first")
    return _load(checkpoints[-1][1])["history"]


def _save(folder: Path, epoch: int, model, optimizer, model_config: ModelConfig, cfg: TrainConfig,
          history: list[dict], keep: int | None) -> None:
    state = {"epoch": epoch, "model_config": model_config.to_dict(), "train_config": cfg.to_dict(),
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": optimizer.state_dict(), "history": history}
    tmp = folder / f"epoch_{epoch:03d}.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(folder / f"epoch_{epoch:03d}.pt")
    if keep is not None:
        for old_epoch, path in list_checkpoints(folder)[:-keep]:
            if old_epoch != 0:  # the initialisation stays: it is the first point of checkpoint plots
                path.unlink()


def train(model_config: ModelConfig, images: np.ndarray | torch.Tensor, cfg: TrainConfig,
          folder: Path | str, device: torch.device | str = "cpu", log=print,
          progress: bool = True) -> TrainResult:
    """Train a fresh model of `model_config` on uint8 images (n, 1, 32, 32), resuming from `folder`.

    Returns the trained model (eval mode) and its history. When the folder holds a
    finished run with the same configurations, nothing is trained.
    """
    device = torch.device(device)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cuda = device.type == "cuda"
    (folder / "config.json").write_text(json.dumps(
        {"model_config": model_config.to_dict(), "train_config": cfg.to_dict()}, indent=2) + "\n")

    torch.manual_seed(_seed_for(cfg.seed, 0))
    model = build_model(model_config).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)

    history: list[dict] = []
    start = 0
    checkpoints = list_checkpoints(folder)
    if checkpoints:
        state = _load(checkpoints[-1][1], device)
        if state["model_config"] == model_config.to_dict() and state["train_config"] == cfg.to_dict():
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            history, start = state["history"], state["epoch"]
            log(f"{folder.name}: resuming after epoch {start} of {cfg.epochs}" if start < cfg.epochs
                else f"{folder.name}: already trained ({start} epochs), loaded from {checkpoints[-1][1]}")
        else:
            log(f"{folder.name}: checkpoints were made with another configuration: starting afresh")
            for _, path in checkpoints:
                path.unlink()
    if start == 0:
        _save(folder, 0, model, optimizer, model_config, cfg, history, cfg.keep)

    data = torch.as_tensor(np.asarray(images)).to(device)
    n = len(data)
    batch = min(cfg.batch_size, n)
    steps_per_epoch = n // batch
    total, warmup = steps_per_epoch * cfg.epochs, int(cfg.warmup_epochs * steps_per_epoch)
    augment_cfg = cfg.augment or NONE

    for epoch in range(start + 1, cfg.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_seed_for(cfg.seed, epoch))).to(device)
        g = torch.Generator(device=device)
        g.manual_seed(_seed_for(cfg.seed, epoch) + 1)

        def views(x, g=g):
            return augment(x, augment_cfg, g)

        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = progress_bar(range(steps_per_epoch), f"{folder.name} {epoch}/{cfg.epochs}", progress)
        for i in bar:
            step = (epoch - 1) * steps_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg)
            x = data[order[i * batch:(i + 1) * batch]].float().div_(255.0)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss, logs = model.loss(x, views, g)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sums["loss"] = sums.get("loss", 0.0) + loss.item()
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value
            if i % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        record = {"epoch": epoch, **{k: v / steps_per_epoch for k, v in sums.items()},
                  "lr": optimizer.param_groups[0]["lr"], "seconds": seconds,
                  "images_per_second": steps_per_epoch * batch / seconds}
        history.append(record)
        _save(folder, epoch, model, optimizer, model_config, cfg, history, cfg.keep)
        log(f"{folder.name} epoch {epoch}/{cfg.epochs}: loss {record['loss']:.4f}, "
            f"{record['images_per_second']:,.0f} images/s, {seconds:.1f} s")

    return TrainResult(model.eval(), history, folder, start)


def plot_histories(histories: dict[str, list[dict]], panels: list[tuple], figsize=(10, 3.6)):
    """Training curves: one panel per (title, model names, y label, log scale[, history key]); x = epoch.

    The history key defaults to "loss" (the total training loss).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    for ax, (title, names, ylabel, log, *rest) in zip(axes[0], panels):
        key = rest[0] if rest else "loss"
        for name in names:
            h = histories[name]
            ax.plot([r["epoch"] for r in h], [r[key] for r in h], "o-", ms=3, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.tick_params(labelsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(names) > 1:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the models of notebook 02

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
        "fc_ae": (ModelConfig("fc_ae", latent=p.latent, hidden=p.fc_hidden),
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
