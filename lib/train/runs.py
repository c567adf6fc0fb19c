"""One function per kind of training run: it builds the network from its configuration (`lib.config`), draws
batches, picks the loss (`lib.train.objectives`), and hands both to the one loop (`lib.train.loop`), in a folder
named after the run's key (`lib.train.cache`): a finished run is loaded, a killed one resumes.

- `pretrain`: notebook 02's models on unlabeled images, epochs of shuffled batches;
- `train_cnn`: the CNN family (the plain baseline and the project's model) on labeled images;
- `fixmatch_cnn`: a trained network of the CNN family continued by FixMatch on the unlabeled images;
- `finetune`: the cosine-head classifier on the contrastive encoder (labels, optional FixMatch and decoder),
  from scratch or from a pretrained encoder; also the supervised pretraining of the transfer study's sources.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lib.config import ClassifierConfig, CNNConfig, ContrastiveConfig, Finetune, FixMatch, Pretrained, Training
from lib.nn.augment import augment, to_float
from lib.nn.contrastive import Classifier
from lib.nn.infer import batched
from lib.nn.registry import build
from lib.train import objectives
from lib.train.cache import array_fingerprint, run_folder, trained
from lib.train.ema import EMA
from lib.train.loop import EpochBatches, Schedule, TrainResult, train_loop

CHANNELS_LAST = torch.channels_last  # the CNN family trains in this layout on every device (faster on CPUs too)


def _key(network, training: Training, seed: int, *arrays: np.ndarray, **extra) -> dict:
    return {"kind": network.kind, "network": asdict(network), "training": asdict(training), "seed": seed,
            "data": array_fingerprint(*arrays), **extra}


def _on(device, *arrays) -> list[torch.Tensor]:
    return [torch.as_tensor(np.asarray(a)).to(device) for a in arrays]


def pretrain(spec: Pretrained, images: np.ndarray, root: Path | str, name: str, seed: int,
             device: torch.device | str = "cpu", log=print, progress: bool = True) -> TrainResult:
    """Train (or load) a notebook 02 model on uint8 images (n, 1, 32, 32): each epoch a permutation of the images
    seeded by (seed, epoch); autoencoders learn to reconstruct, the VAE maximises the ELBO, the contrastive model
    matches two augmented views of every image."""
    device, training = torch.device(device), spec.training
    key = _key(spec.network, training, seed, images)
    folder = run_folder(root, name, key)

    def fit() -> TrainResult:
        (data,) = _on(device, images)
        torch.manual_seed(seed)
        model = build(spec.network)
        batches = EpochBatches(len(data), training.batch, seed, device)
        kind = spec.network.kind

        def step_loss(model, step, g):
            x = to_float(data[batches(step)])
            if x.is_cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            if kind == "vae":
                return objectives.negative_elbo(model, x, g)
            if kind == "contrastive":
                return objectives.contrastive(model, x, lambda v: augment(v, training.augment, g))
            return objectives.reconstruction(model, x)

        return train_loop(model, step_loss, Schedule.of(training, len(data), seed), folder, key,
                          images_per_step=batches.batch, snapshots=spec.snapshots, device=device, log=log,
                          progress=progress)

    return trained(folder, key, fit, device, log)


def weights_fingerprint(model: torch.nn.Module | None) -> str:
    """Short SHA-1 of a model's weights ("none" for None): the starting point in a run's key."""
    if model is None:
        return "none"
    return array_fingerprint(*[t.detach().cpu().numpy() for t in model.state_dict().values()])


def train_cnn(network: CNNConfig, training: Training, x: np.ndarray, y: np.ndarray, root: Path | str, name: str,
              seed: int, reconstruction_weight: float = 0.0, init: torch.nn.Module | None = None, evaluate=None,
              every_epochs: int = 1, device: torch.device | str = "cpu", log=print,
              progress: bool = True) -> TrainResult:
    """Train (or load) a network of the CNN family on uint8 images `x` with targets `y`: class labels (n,), or
    class probabilities (n, classes) (distillation: a teacher's soft targets). Epoch-shuffled batches,
    `training.augment` views, label smoothing, AdamW with a one-cycle schedule. `init`: a trained network of the
    family whose backbone and description weights the run starts from (its classifier head starts fresh).
    `evaluate`: fields added to the record made every `every_epochs` epochs (`lib.train.loop.train_loop`)."""
    device = torch.device(device)
    key = _key(network, training, seed, x, y, reconstruction_weight=reconstruction_weight,
               init=weights_fingerprint(init))
    folder = run_folder(root, name, key)

    def fit() -> TrainResult:
        images, labels = _on(device, x, y)
        torch.manual_seed(seed)
        model = build(network)
        if init is not None:
            start = {k: v for k, v in init.state_dict().items() if k.startswith(("stages.", "describe."))}
            model.load_state_dict(start, strict=False)
        batches = EpochBatches(len(images), training.batch, seed, device)

        def step_loss(model, step, g):
            index = batches(step)
            views = augment(to_float(images[index]), training.augment, g).contiguous(memory_format=CHANNELS_LAST)
            return objectives.cnn(model, views, labels[index], training.label_smoothing, reconstruction_weight)

        every = every_epochs * batches.per_epoch if training.epochs is not None else None
        schedule = Schedule.of(training, len(images), seed, every=every)
        return train_loop(model, step_loss, schedule, folder, key, evaluate=evaluate, images_per_step=batches.batch,
                          channels_last=True, device=device, log=log, progress=progress)

    return trained(folder, key, fit, device, log)


def fixmatch_cnn(network: CNNConfig, settings: FixMatch, x: np.ndarray, y: np.ndarray, unlabeled: np.ndarray,
                 root: Path | str, name: str, seed: int, reconstruction_weight: float, init: torch.nn.Module,
                 evaluate=None, device: torch.device | str = "cpu", log=print, progress: bool = True) -> TrainResult:
    """Train (or load) FixMatch on a network of the CNN family, continuing the trained network `init` (every head):
    epochs of shuffled unlabeled batches, each step with an epoch-shuffled batch of labels. The EMA of the weights
    labels a weak view of each unlabeled image; the loss is `objectives.cnn_fixmatch`. The run returns the EMA
    network; `evaluate` (fields added to each record, once per pass) sees it too."""
    device, training = torch.device(device), settings.training
    key = _key(network, training, seed, x, y, unlabeled, settings=asdict(settings),
               reconstruction_weight=reconstruction_weight, init=weights_fingerprint(init))
    folder = run_folder(root, name, key)

    def fit() -> TrainResult:
        images, labels, pool = _on(device, x, y, unlabeled)
        model = build(network)
        model.load_state_dict(init.state_dict())
        ema = EMA(model, settings.ema_decay)
        labeled_batches = EpochBatches(len(images), settings.labeled_batch, seed, device)
        unlabeled_batches = EpochBatches(len(pool), training.batch, seed, device, stream=3)

        def step_loss(model, step, g):
            index = labeled_batches(step)
            views = augment(to_float(images[index]), training.augment, g).contiguous(memory_format=CHANNELS_LAST)
            u = to_float(pool[unlabeled_batches(step)])
            with torch.no_grad():
                weak_logits = ema.model(augment(u, training.augment, g).contiguous(memory_format=CHANNELS_LAST))
            strong = augment(u, settings.strong, g).contiguous(memory_format=CHANNELS_LAST)
            return objectives.cnn_fixmatch(model, views, labels[index], strong, weak_logits, settings.confidence,
                                           training.label_smoothing, reconstruction_weight, settings.unlabeled_weight)

        return train_loop(model, step_loss, Schedule.of(training, len(pool), seed), folder, key, evaluate=evaluate,
                          images_per_step=labeled_batches.batch + unlabeled_batches.batch, channels_last=True,
                          ema=ema, device=device, log=log, progress=progress)

    return trained(folder, key, fit, device, log)


def contrastive_cnn(network: CNNConfig, training: Training, images: np.ndarray, root: Path | str, name: str,
                    seed: int, temperature: float, device: torch.device | str = "cpu", log=print,
                    progress: bool = True) -> TrainResult:
    """Contrastive pretraining (SimCLR) of a CNN of the family on unlabeled uint8 images: NT-Xent on the
    description of two `training.augment` views of every image (the description is the projection), epochs of
    shuffled batches. Its backbone is then the starting point of `train_cnn(..., init=...)`."""
    device = torch.device(device)
    key = _key(network, training, seed, images, objective="nt_xent", temperature=temperature)
    folder = run_folder(root, name, key)

    def fit() -> TrainResult:
        (data,) = _on(device, images)
        torch.manual_seed(seed)
        model = build(network)
        batches = EpochBatches(len(data), training.batch, seed, device)

        def step_loss(model, step, g):
            return objectives.cnn_contrastive(
                model, to_float(data[batches(step)]),
                lambda v: augment(v, training.augment, g).contiguous(memory_format=CHANNELS_LAST), temperature)

        return train_loop(model, step_loss, Schedule.of(training, len(data), seed), folder, key,
                          images_per_step=batches.batch, channels_last=True, device=device, log=log,
                          progress=progress)

    return trained(folder, key, fit, device, log)


def _draw(images: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """`size` indices into `images`, drawn with replacement."""
    return torch.randint(len(images), (size,), generator=g, device=images.device)


def validation(x: np.ndarray, y: np.ndarray):
    """An `evaluate` for the loop: mean cross entropy and accuracy on (x, y) at every record."""

    def evaluate(model, steps):
        logits = torch.as_tensor(batched(model, x))
        labels = torch.as_tensor(np.asarray(y))
        return {"val_loss": F.cross_entropy(logits, labels).item(),
                "val_accuracy": (logits.argmax(1) == labels).float().mean().item()}

    return evaluate


def finetune(settings: Finetune, encoder: ContrastiveConfig, x: np.ndarray, y: np.ndarray, root: Path | str,
             name: str, seed: int, n_classes: int = 5, unlabeled: np.ndarray | None = None,
             pretrained: torch.nn.Module | None = None, evaluate=None, device: torch.device | str = "cpu", log=print,
             progress: bool = True) -> TrainResult:
    """Train (or load) a cosine-head classifier with `encoder`'s architecture on uint8 images `x`, labels `y`.

    Each step draws `batch` labeled images with replacement and trains on weak views (`training.augment`);
    with `unlabeled_ratio` = mu > 0 it also draws mu * batch unlabeled images and adds FixMatch's loss, with
    `recon_weight` > 0 a decoder reconstructs the labeled and `batch` unlabeled images from the embedding.
    `pretrained`: a contrastive model (or classifier) whose encoder is copied in, and the head starts at the class
    means of its embedding; the encoder then learns at `backbone_lr_factor` times the rate. `evaluate`: fields
    added to every record (`validation(x_val, y_val)`).
    """
    device, training = torch.device(device), settings.training
    if int(np.max(y)) >= n_classes:
        raise ValueError(f"labels go up to {int(np.max(y))} but the classifier has {n_classes} classes")
    uses_unlabeled = settings.unlabeled_ratio > 0 or settings.recon_weight > 0
    if uses_unlabeled and unlabeled is None:
        raise ValueError("this configuration needs the unlabeled images")
    network = ClassifierConfig(encoder=replace(encoder, decoder=False), n_classes=n_classes,
                               decoder=settings.recon_weight > 0)
    data = [x, y] + ([unlabeled] if uses_unlabeled else [])
    start = "scratch" if pretrained is None else array_fingerprint(
        *[t.detach().cpu().numpy() for t in pretrained.encoder.state_dict().values()])
    key = _key(network, training, seed, *data, settings=asdict(settings), start=start)
    folder = run_folder(root, name, key)

    def fit() -> TrainResult:
        torch.manual_seed(seed)
        model = Classifier(network).to(device)
        if pretrained is not None:
            model.load_encoder(pretrained)
            model.init_prototypes(torch.as_tensor(batched(model.embed, x, device)), torch.as_tensor(np.asarray(y)))
        tx, ty = _on(device, x, y)
        (tu,) = _on(device, unlabeled) if uses_unlabeled else (None,)
        n_unlabeled = training.batch * max(settings.unlabeled_ratio, 1) if uses_unlabeled else 0

        def step_loss(model, step, g):
            index = _draw(tx, training.batch, g)
            views, labels = augment(to_float(tx[index]), training.augment, g), ty[index]
            logits = model(views)
            loss = F.cross_entropy(logits, labels, label_smoothing=training.label_smoothing)
            logs = {"supervised": loss.item(), "train_accuracy": (logits.argmax(1) == labels).float().mean().item()}
            if uses_unlabeled:
                u = to_float(tu[_draw(tu, n_unlabeled, g)])
                if settings.unlabeled_ratio > 0:
                    with torch.no_grad():
                        weak_logits = model(augment(u, training.augment, g))
                    unsup, mask = objectives.fixmatch(weak_logits, model(augment(u, settings.strong, g)),
                                                      settings.confidence)
                    loss = loss + settings.unlabeled_weight * unsup
                    logs.update(unsupervised=unsup.item(), confident_fraction=mask.mean().item())
                if settings.recon_weight > 0:
                    images = torch.cat([views, u[: training.batch]])
                    recon = torch.sigmoid(model.decoder(model.embed(images)))
                    mse = (recon.float() - images).pow(2).mean()
                    loss = loss + settings.recon_weight * mse
                    logs["reconstruction"] = mse.item()
            return loss, logs

        encoder_params = list(model.encoder.parameters())
        rest = [p for p in model.parameters() if all(p is not q for q in encoder_params)]
        factor = settings.backbone_lr_factor if pretrained is not None else 1.0
        return train_loop(model, step_loss, Schedule.of(training, len(x), seed, every=settings.eval_every), folder,
                          key, blocks=[(encoder_params, factor), (rest, 1.0)], evaluate=evaluate,
                          images_per_step=training.batch + n_unlabeled, device=device, log=log, progress=progress)

    return trained(folder, key, fit, device, log)
