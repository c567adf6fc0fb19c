"""Few-label classification: a classifier on the ten-dimensional embedding, trained with labels and,
optionally, the unlabeled images (notebook 03).

The classifier is the contrastive model's encoder and bottleneck followed by a
cosine head: logits = s * cos(z, w_k). Classes are then directions in the same
normalised ten-dimensional space that pretraining shaped, so the embedding stays
the data's description and the class-conditional Gaussians of notebook 04 sit on it.

One loop serves every variant:
- labels only (`unlabeled_ratio` = 0): cross entropy on weakly augmented labeled images;
- semi-supervised (`unlabeled_ratio` = mu > 0): FixMatch (Sohn et al., 2020): each step
  also draws mu * batch unlabeled images, pseudo-labels a weak view where the model is
  confident (max probability >= `confidence`) and trains a strong view to predict it;
- auxiliary (`recon_weight` > 0): a decoder reconstructs the images from the embedding,
  a second task that keeps the embedding informative about the whole image.

Training is `lib.nn.train.training_loop` (shared with notebook 02's models): batches
are drawn with replacement from generators seeded by (seed, step), so a run resumed
from its checkpoint continues exactly as an uninterrupted one; `pretrain_classifier`
(supervised pretraining on a source, notebook 05) uses the same loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lib.nn.augment import STRONG, WEAK, AugmentConfig, augment, to_float
from lib.nn.models import ConvDecoder, ConvEncoder, ModelConfig, apply_batched
from lib.nn.train import LATEST, Schedule, array_fingerprint, saved_config, training_loop


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int
    batch_size: int = 64
    lr: float = 2e-3
    backbone_lr_factor: float = 1.0  # pretrained encoders learn slower than the fresh head (e.g. 0.3)
    weight_decay: float = 5e-4
    warmup_epochs: float = 0.0  # in steps / 100, for lr_at (see TrainConfig semantics)
    min_lr_fraction: float = 0.01
    weak: AugmentConfig = WEAK
    strong: AugmentConfig = STRONG
    unlabeled_ratio: int = 0  # mu: unlabeled images per labeled image in a step (0: labels only)
    confidence: float = 0.95  # FixMatch pseudo-label threshold
    unlabeled_weight: float = 1.0
    recon_weight: float = 0.0  # auxiliary reconstruction loss weight (0: no decoder)
    label_smoothing: float = 0.0
    eval_every: int = 50
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class Normalize(nn.Module):
    def forward(self, x):
        return F.normalize(x.float(), dim=1)


class CosineHead(nn.Module):
    """logits = s * cos(z, w_k): classes are directions in the normalised embedding."""

    def __init__(self, n_classes: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, dim) * 0.1)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(10.0))))

    def forward(self, z):
        return self.log_scale.exp() * z @ F.normalize(self.weight, dim=1).t()


class Classifier(nn.Module):
    """Encoder -> ten-dimensional embedding -> cosine head over five classes (+ optional decoder)."""

    def __init__(self, config: ModelConfig, n_classes: int = 5, decoder: bool = False):
        super().__init__()
        c = config
        self.config = config
        self.encoder = ConvEncoder(c.width, c.depth, c.batch_norm, c.features)
        self.bottleneck = nn.Sequential(nn.BatchNorm1d(c.features) if c.batch_norm else nn.Identity(),
                                        nn.ReLU(inplace=True), nn.Linear(c.features, c.latent))
        self.head = CosineHead(n_classes, c.latent)
        self.decoder = ConvDecoder(c.width, 0, c.batch_norm, c.latent) if decoder else None

    def embed(self, x):
        """The normalised ten-dimensional embedding (same space as the contrastive model's)."""
        return F.normalize(self.bottleneck(self.encoder(x)).float(), dim=1)

    def forward(self, x):
        return self.head(self.embed(x))

    def embedder(self) -> nn.Module:
        """The image -> embedding part as one module (for the deployed model)."""
        return nn.Sequential(self.encoder, self.bottleneck, Normalize()).eval()

    def load_pretrained(self, pretrained: nn.Module) -> None:
        """Copy encoder and bottleneck weights from a trained contrastive model."""
        self.encoder.load_state_dict(pretrained.encoder.state_dict())
        self.bottleneck.load_state_dict(pretrained.bottleneck.state_dict())

    @torch.no_grad()
    def init_prototypes(self, images, labels) -> None:
        """Point each class weight at its class's mean embedding, so training starts from the
        nearest-class-mean classifier of the pretrained embedding instead of a random head."""
        z = torch.as_tensor(apply_batched(self.embed, images, self.head.weight.device))
        y = torch.as_tensor(np.asarray(labels))
        for c in range(len(self.head.weight)):
            if (y == c).any():
                self.head.weight[c] = F.normalize(z[y == c].mean(0), dim=0)


@dataclass
class FitResult:
    model: Classifier
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0


@dataclass
class PretrainResult:
    model: Classifier
    seconds: float
    images_per_second: float
    heldout_accuracy: float | None  # accuracy on the source's held-out images (None without them)


def fixmatch_loss(weak_logits: torch.Tensor, strong_logits: torch.Tensor, confidence: float):
    """FixMatch's unlabeled loss and mask: cross entropy of the strong view against the weak view's
    pseudo-label, counted only where the weak view's top probability reaches `confidence`;
    averaged over all unlabeled images (so few confident images give a small loss)."""
    probs = weak_logits.detach().softmax(1)
    top, pseudo = probs.max(1)
    mask = (top >= confidence).float()
    return (F.cross_entropy(strong_logits, pseudo, reduction="none") * mask).mean(), mask


def _draw(images: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """`size` indices into `images`, drawn with replacement."""
    return torch.randint(len(images), (size,), generator=g, device=images.device)


@torch.no_grad()
def evaluate(model: Classifier, images, labels, batch_size: int = 1024) -> tuple[float, float]:
    """(mean cross entropy, accuracy) of the model on uint8 images with class labels."""
    logits = torch.as_tensor(predict_logits(model, images, batch_size))
    y = torch.as_tensor(np.asarray(labels))
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def predict_logits(model: Classifier, images, batch_size: int = 1024) -> np.ndarray:
    model.eval()
    return apply_batched(model, images, next(model.parameters()).device, batch_size)


def embed(model: Classifier, images, batch_size: int = 1024) -> np.ndarray:
    model.eval()
    return apply_batched(model.embed, images, next(model.parameters()).device, batch_size)


def load_classifier(folder: Path | str, device: torch.device | str = "cpu") -> Classifier:
    """Rebuild a trained Classifier (fine-tuned, or a pretrained source) from its folder (eval mode)."""
    checkpoint = Path(folder) / LATEST
    if not checkpoint.exists():
        raise FileNotFoundError(f"no classifier checkpoint in {folder}: run notebook 03_classification first")
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    config = saved_config(state)
    model = Classifier(ModelConfig.from_dict(config["model_config"]), n_classes=config.get("n_classes", 5),
                       decoder=config["finetune_config"]["recon_weight"] > 0)
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def _schedule(cfg: FinetuneConfig) -> Schedule:
    return Schedule(steps=cfg.steps, every=cfg.eval_every, lr=cfg.lr, weight_decay=cfg.weight_decay,
                    warmup=int(cfg.warmup_epochs * 100), min_lr_fraction=cfg.min_lr_fraction, seed=cfg.seed)


def _supervised_loss(model: Classifier, images: torch.Tensor, labels: torch.Tensor, cfg: FinetuneConfig,
                     g: torch.Generator):
    """Cross entropy on weak views of `cfg.batch_size` labeled images drawn with replacement:
    (loss, weak views, logs)."""
    index = _draw(images, cfg.batch_size, g)
    x, y = augment(to_float(images[index]), cfg.weak, g), labels[index]
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
    return loss, x, {"supervised": loss.item(), "train_accuracy": (logits.argmax(1) == y).float().mean().item()}


def fit_classifier(cfg: FinetuneConfig, model_config: ModelConfig, train_x, train_y, val_x, val_y,
                   folder: Path | str, unlabeled=None, pretrained: nn.Module | None = None,
                   device: torch.device | str = "cpu", log=print, progress: bool = True) -> FitResult:
    """Train a Classifier (from `pretrained` or from scratch); resume from `folder` when possible.

    `train_x`/`val_x` are uint8 images (n, 1, 32, 32) with class labels; `unlabeled` is used
    only when cfg.unlabeled_ratio > 0 (FixMatch) or cfg.recon_weight > 0 (auxiliary task).
    A record (validation loss and accuracy) and a checkpoint every cfg.eval_every steps.
    """
    device = torch.device(device)
    uses_unlabeled = cfg.unlabeled_ratio > 0 or cfg.recon_weight > 0
    if uses_unlabeled and unlabeled is None:
        raise ValueError("this configuration needs the unlabeled images")
    torch.manual_seed(cfg.seed)
    model = Classifier(model_config, decoder=cfg.recon_weight > 0).to(device)
    if pretrained is not None:
        model.load_pretrained(pretrained)
        model.eval()
        model.init_prototypes(train_x, train_y)

    tx = torch.as_tensor(np.asarray(train_x)).to(device)
    ty = torch.as_tensor(np.asarray(train_y)).to(device)
    tu = torch.as_tensor(np.asarray(unlabeled)).to(device) if uses_unlabeled else None
    n_unlabeled = cfg.batch_size * max(cfg.unlabeled_ratio, 1) if uses_unlabeled else 0

    def step_loss(model, step, g):
        loss, x, logs = _supervised_loss(model, tx, ty, cfg, g)
        if uses_unlabeled:
            u = to_float(tu[_draw(tu, n_unlabeled, g)])
            if cfg.unlabeled_ratio > 0:
                with torch.no_grad():
                    weak_logits = model(augment(u, cfg.weak, g))
                unsup, mask = fixmatch_loss(weak_logits, model(augment(u, cfg.strong, g)), cfg.confidence)
                loss = loss + cfg.unlabeled_weight * unsup
                logs.update(unsupervised=unsup.item(), confident_fraction=mask.mean().item())
            if cfg.recon_weight > 0:
                images = torch.cat([x, u[: cfg.batch_size]])
                recon = torch.sigmoid(model.decoder(model.embed(images)))
                mse = (recon.float() - images).pow(2).mean()
                loss = loss + cfg.recon_weight * mse
                logs["reconstruction"] = mse.item()
        return loss, logs

    def validate(model, steps):
        val_loss, val_accuracy = evaluate(model, val_x, val_y)
        return {"val_loss": val_loss, "val_accuracy": val_accuracy}

    data = [train_x, train_y, val_x, val_y] + ([unlabeled] if uses_unlabeled else [])
    config = {"finetune_config": cfg.to_dict(), "model_config": model_config.to_dict(), "n_classes": 5,
              "pretrained": pretrained is not None, "data": array_fingerprint(*data)}
    backbone = [*model.encoder.parameters(), *model.bottleneck.parameters()]
    rest = [p for p in model.parameters() if all(p is not q for q in backbone)]
    result = training_loop(model, step_loss, _schedule(cfg), folder, config,
                           blocks=[(backbone, cfg.backbone_lr_factor), (rest, 1.0)], evaluate=validate,
                           images_per_step=cfg.batch_size + n_unlabeled, device=device, log=log, progress=progress)
    return FitResult(result.model, result.history, result.seconds, result.images_per_second)


def pretrain_classifier(model_config: ModelConfig, x: np.ndarray, y: np.ndarray, n_classes: int,
                        cfg: FinetuneConfig, folder: Path | str, heldout: tuple[np.ndarray, np.ndarray] | None = None,
                        device: torch.device | str = "cpu", log=print) -> PretrainResult:
    """Supervised pretraining on a source: a `n_classes`-way Classifier, cross entropy on weak views.

    Same loop, optimiser, schedule and augmentation as fine-tuning (`cfg`: steps,
    batch size, learning rate, `weak` views, a checkpoint every `eval_every` steps
    in `folder/checkpoint.pt`); a rerun with the same configuration and data resumes
    or loads it. The accuracy on `heldout` is measured once, at the end.
    """
    if int(np.max(y)) >= n_classes:
        raise ValueError(f"labels go up to {int(np.max(y))} but the source has {n_classes} classes")
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    model = Classifier(model_config, n_classes=n_classes)
    tx, ty = torch.as_tensor(np.asarray(x)).to(device), torch.as_tensor(np.asarray(y)).to(device)

    def step_loss(model, step, g):
        loss, _, logs = _supervised_loss(model, tx, ty, cfg, g)
        return loss, logs

    def heldout_accuracy(model, steps):
        if heldout is None or steps < cfg.steps:
            return {}
        return {"heldout_accuracy": float((predict_logits(model, heldout[0]).argmax(1) == np.asarray(heldout[1]))
                                          .mean())}

    data = [x, y] + (list(heldout) if heldout is not None else [])
    config = {"finetune_config": cfg.to_dict(), "model_config": model_config.to_dict(), "n_classes": n_classes,
              "data": array_fingerprint(*data)}
    result = training_loop(model, step_loss, _schedule(cfg), folder, config, evaluate=heldout_accuracy,
                           images_per_step=cfg.batch_size, device=device, log=log)
    return PretrainResult(result.model, result.seconds, result.images_per_second,
                          result.history[-1].get("heldout_accuracy"))
