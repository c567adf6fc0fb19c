"""Every setting of a run, per profile, in one place.

A profile is a tree of frozen dataclasses, one branch per stage of the study:
`report` (bootstrap, maps), `pretraining` (notebook 02), `classification`,
`baseline` and `model` (notebook 03), `anomaly` (04) and `transfer` (05).
Every trainable thing has its settings here as two dataclasses that the code
uses directly: the network (`*Config`, which `lib.nn.registry.build` turns into
a module and a checkpoint stores beside the weights) and its `Training` recipe
(what the one training loop, `lib.train.loop`, runs). `cpu` is the reference
profile; `smoke` and `gpu` are overrides of it (`override`), so a setting a
profile does not change is the `cpu` value.

`smoke` proves the pipeline works (seconds per notebook, used by the tests),
`cpu` is the default without CUDA (the whole report in under 45 minutes on two
cores), `gpu` the default with CUDA: the model twice as wide, trained longer
(FixMatch over 60 passes) with larger batches and five seeds (`GPU_MODEL`), and
the comparison systems trained longer.
Each notebook prints its profile at the top (`describe`) and the report's
settings table is `settings_table`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any, ClassVar

from lib.errors import UserError

# --------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class AugmentConfig:
    """Random views drawn per sample by `lib.nn.augment.augment`; zero switches a transform off."""

    shift: float = 0.10  # largest translation, as a fraction of the image side
    scale: tuple[float, float] = (0.80, 1.20)  # zoom factor range (>1 enlarges the article)
    aspect: float = 0.15  # largest log aspect-ratio change (x and y zoom differ by up to exp(±aspect))
    rotation: float = 10.0  # largest rotation in degrees
    hflip: float = 0.0  # probability of a horizontal flip: 0, as every shoe in the data points left
    gain: float = 0.35  # multiplicative brightness change in [1 - gain, 1 + gain]
    gamma: float = 0.35  # log-gamma range: x ** exp(U(-gamma, gamma))
    noise: float = 0.04  # largest Gaussian noise standard deviation (intensity units, image in [0, 1])
    erase: float = 0.25  # probability of erasing one rectangle
    erase_size: tuple[float, float] = (0.15, 0.35)  # its side lengths, as fractions of the image side


# Strong views: the contrastive pretraining augmentation (shifts, zoom, rotation, exposure, noise, erasing).
STRONG = AugmentConfig()
# Weak views for classification: label-preserving shifts, zoom, rotation and exposure only.
WEAK = AugmentConfig(shift=0.08, scale=(0.9, 1.1), aspect=0.1, rotation=5.0, gain=0.2, gamma=0.2, noise=0.02,
                     erase=0.0)
NONE = AugmentConfig(shift=0.0, scale=(1.0, 1.0), aspect=0.0, rotation=0.0, hflip=0.0, gain=0.0, gamma=0.0,
                     noise=0.0, erase=0.0)
SHIFT_3 = replace(NONE, shift=3 / 32)  # random translations of up to 3 of the 32 pixels: the plain CNN's views

# --------------------------------------------------------------------------- networks (lib.nn.registry builds them)


@dataclass(frozen=True)
class FCAutoencoderConfig:
    """Fully connected autoencoder: 1024 -> hidden -> latent -> reversed hidden -> 1024."""

    kind: ClassVar[str] = "fc_ae"
    hidden: tuple[int, ...] = (512, 128)
    latent: int = 10


@dataclass(frozen=True)
class ConvAutoencoderConfig:
    """Convolutional autoencoder: strided encoder (channels width, 2 width, 4 width) and its mirror."""

    kind: ClassVar[str] = "conv_ae"
    width: int = 8  # the autoencoders' decoders dominate their cost, so they are narrower than the encoders
    latent: int = 10
    depth: int = 0  # residual blocks after each downsampling
    batch_norm: bool = True


@dataclass(frozen=True)
class VAEConfig:
    kind: ClassVar[str] = "vae"
    width: int = 8
    latent: int = 10
    depth: int = 0
    batch_norm: bool = True
    beta: float = 1.0  # weight of the KL term


@dataclass(frozen=True)
class ContrastiveConfig:
    """SimCLR encoder with a ten-dimensional bottleneck, and a decoder trained on the detached embedding."""

    kind: ClassVar[str] = "contrastive"
    width: int = 16  # channels of the first convolution (x2 per downsampling)
    depth: int = 0
    batch_norm: bool = True
    features: int = 128  # encoder features before the ten-dimensional bottleneck
    latent: int = 10
    temperature: float = 0.5  # NT-Xent temperature
    decoder: bool = True
    decoder_fraction: float = 0.25  # share of each batch the decoder learns from (it is slow)


@dataclass(frozen=True)
class ClassifierConfig:
    """The contrastive encoder with a cosine head over `n_classes` (and optionally a decoder)."""

    kind: ClassVar[str] = "classifier"
    encoder: ContrastiveConfig = ContrastiveConfig(decoder=False)
    n_classes: int = 5
    decoder: bool = False


@dataclass(frozen=True)
class CNNConfig:
    """Six 3x3 convolutions with batch norm and ReLU, the first at full 32x32 resolution, global average pooling;
    heads: the classifier, and optionally the `description_dim`-dimensional description and a decoder."""

    kind: ClassVar[str] = "cnn"
    widths: tuple[int, ...] = (32, 32, 64, 64, 128, 128)
    strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2)
    dropout: float = 0.3
    n_classes: int = 5
    description_dim: int = 0  # 0: no description head
    decoder: bool = False  # a decoder from the description (the gradient stopped at the description)
    decoder_width: int = 32  # channels of the decoder's last layer (4x, 2x, 1x of it from 4x4 to 32x32)


NETWORK_CONFIGS = (FCAutoencoderConfig, ConvAutoencoderConfig, VAEConfig, ContrastiveConfig, ClassifierConfig,
                   CNNConfig)

# --------------------------------------------------------------------------- training recipes


@dataclass(frozen=True)
class Training:
    """What the one training loop runs: AdamW with a linear warm-up and a cosine decay, for `epochs` passes
    over the training images (epoch-shuffled batches) or `steps` optimizer steps (batches drawn with
    replacement; with epoch-shuffled batches, a run of `steps` that ends mid-epoch)."""

    lr: float
    weight_decay: float
    batch: int
    epochs: int | None = None
    steps: int | None = None
    warmup: float = 0.0  # linear warm-up over this share of the steps
    min_lr_fraction: float = 0.0  # the cosine decays to this fraction of lr
    augment: AugmentConfig = NONE
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class Pretrained:
    """A model of notebook 02: trained on the unlabeled images alone."""

    network: Any
    training: Training
    snapshots: bool = False  # keep the weights after every epoch (the checkpoint study and the audit read them)


@dataclass(frozen=True)
class Finetune:
    """Training of the cosine-head classifier (notebooks 03 and 05): labels, with optional FixMatch
    (`unlabeled_ratio` > 0) and an optional decoder (`recon_weight` > 0). Its encoder is always the contrastive
    model's architecture (`pretraining.contrastive.network`), so that a pretrained encoder can be copied in."""

    training: Training
    backbone_lr_factor: float = 1.0  # a pretrained encoder learns slower than its fresh head
    strong: AugmentConfig = STRONG  # FixMatch's strong views (the weak views are training.augment)
    unlabeled_ratio: int = 0  # FixMatch mu: unlabeled images per labeled image in a step
    confidence: float = 0.95  # FixMatch pseudo-label threshold
    unlabeled_weight: float = 1.0
    recon_weight: float = 0.0  # auxiliary reconstruction loss (0: no decoder)
    eval_every: int = 100  # steps between records (validation accuracy, checkpoint)


def _pretraining_recipe(epochs: int, lr: float, warmup: float, augment: AugmentConfig = NONE) -> Training:
    # warm-up of half an epoch: `warmup` is 0.5 / epochs
    return Training(lr=lr, weight_decay=1e-4, batch=256, epochs=epochs, warmup=warmup, min_lr_fraction=0.01,
                    augment=augment)


@dataclass(frozen=True)
class Pretraining:
    """Notebook 02: the models that learn from the unlabeled images."""

    # the comparison models, sized to what they must show: ten epochs (eleven checkpoints) for the autoencoder
    # whose checkpoints are studied, five for the others
    fc_ae: Pretrained = Pretrained(FCAutoencoderConfig(), _pretraining_recipe(5, 1e-3, 0.1))
    # 5e-3 rather than 2e-3: at width 8 the batch-norm autoencoder stalls at twice the error with 2e-3
    conv_ae: Pretrained = Pretrained(ConvAutoencoderConfig(batch_norm=False), _pretraining_recipe(5, 5e-3, 0.1))
    conv_ae_bn: Pretrained = Pretrained(ConvAutoencoderConfig(batch_norm=True), _pretraining_recipe(10, 5e-3, 0.05),
                                        snapshots=True)
    vae: Pretrained = Pretrained(VAEConfig(), _pretraining_recipe(5, 2e-3, 0.1))
    contrastive: Pretrained = Pretrained(ContrastiveConfig(), _pretraining_recipe(15, 2e-3, 1 / 30, STRONG))
    knn_k: int = 10  # k of the k-nearest-neighbour accuracy of a description
    plateau_tolerance: float = 0.005  # checkpoint plot: k-NN accuracy this close to the last epoch's is the plateau


FINETUNE = Finetune(Training(lr=2e-3, weight_decay=5e-4, batch=64, steps=600, min_lr_fraction=0.01, augment=WEAK))


def _steps(finetune: Finetune, steps: int, **changes) -> Finetune:
    return replace(finetune, training=replace(finetune.training, steps=steps), **changes)


@dataclass(frozen=True)
class Classification:
    """Notebook 03's comparison systems: cosine-head classifiers on the contrastive encoder, trained on a
    stratified four-fifths of the labels; the held-out fifth fits the stacking meta-learner."""

    validation_fraction: float = 0.2
    supervised: Finetune = FINETUNE  # from scratch
    contrastive_finetuned: Finetune = replace(FINETUNE, backbone_lr_factor=0.3)
    auxiliary: Finetune = replace(FINETUNE, recon_weight=1.0)
    fixmatch: Finetune = _steps(FINETUNE, 400, backbone_lr_factor=0.3, unlabeled_ratio=2)
    budgets: tuple[int, ...] = (50, 250)  # label budgets of the label-efficiency curve (+ the full split)
    curve_steps: int = 300  # labels-only runs of the curve
    curve_fixmatch_steps: int = 150  # semi-supervised runs of the curve (shorter than the main run)


BASELINE_TRAINING = Training(lr=2e-3, weight_decay=5e-4, batch=128, epochs=30, warmup=0.3, augment=SHIFT_3,
                             label_smoothing=0.1)


@dataclass(frozen=True)
class Baseline:
    """The plain supervised CNN, trained on the 2,000 labels alone: the reference every method must beat."""

    network: CNNConfig = CNNConfig()
    training: Training = BASELINE_TRAINING


# FixMatch's strong views: the weak views' shifts plus rotation, zoom, aspect (a shear-like stretch), exposure, noise
# and one erased 11x11 square per image, all below the replica's corruptions
FIXMATCH_STRONG = AugmentConfig(shift=4 / 32, scale=(0.9, 1.1), aspect=0.15, rotation=15.0, gain=0.4, gamma=0.0,
                                noise=0.05, erase=1.0, erase_size=(11 / 32, 11 / 32))


@dataclass(frozen=True)
class FixMatch:
    """FixMatch (lib.train.runs.fixmatch_cnn), continuing a labels-only network: each step a batch of labels and
    `training.batch` unlabeled images; an exponential moving average (EMA) of the weights labels a weak view
    (`training.augment`) of each unlabeled image, and where its top probability reaches `confidence` the network
    learns that label on a strong view. `training.epochs` counts passes over the unlabeled images."""

    # a peak learning rate half the labels-only one: in a run at 1e-3, accuracy on set 1's clean images fell by
    # about a point over the first pass before FixMatch recovered it
    training: Training = Training(lr=5e-4, weight_decay=5e-4, batch=256, epochs=5, warmup=0.1, augment=SHIFT_3,
                                  label_smoothing=0.1)
    labeled_batch: int = 64
    strong: AugmentConfig = FIXMATCH_STRONG
    # label smoothing 0.1 caps a five-class network's confidence at 0.9 + 0.1 / 5 = 0.92, below FixMatch's usual
    # 0.95, so the threshold sits below that cap
    confidence: float = 0.85
    ema_decay: float = 0.999  # the EMA's decay, ramped up as min(decay, (1 + t) / (10 + t)) over the first steps
    unlabeled_weight: float = 1.0


@dataclass(frozen=True)
class Model:
    """The project's model (lib.experiments.model): the plain CNN's backbone with a classifier, a ten-dimensional
    description and a decoder, trained in two arms with every seed: the 2,000 labels alone, and FixMatch over the
    26,000 unlabeled images continuing each seed's labels-only network; the oracle continues the first seed's
    labels-only network with the true classes of all 28,000 images."""

    network: CNNConfig = CNNConfig(description_dim=10, decoder=True)
    # the plain CNN's recipe trained twice as long: at 30 epochs it was still improving
    labels_only: Training = replace(BASELINE_TRAINING, epochs=60)
    fixmatch: FixMatch = FixMatch()
    oracle: Training = Training(lr=1e-3, weight_decay=5e-4, batch=128, epochs=1, warmup=0.1, augment=SHIFT_3,
                                label_smoothing=0.1)  # passes over all 28,000 images with their true classes
    reconstruction_weight: float = 1.0  # decoder loss (the decoder sees the description with the gradient stopped)
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds of every arm
    curve_images: int = 2_000  # unlabeled images (answer key) of the learning curves; shown, never used for a choice
    curve_every: int = 6  # labels-only epochs between points of its learning curve (FixMatch: every pass)


@dataclass(frozen=True)
class Anomaly:
    """Notebook 04: anomaly scores, fitted on in-distribution training data only."""

    knn_k: int = 10  # kNN distance: k-th nearest unlabeled image
    knn_bank: int = 8192  # our model's kNN part: unlabeled images in its bank (the rest standardise the evidence)
    elbo_samples: int = 8  # VAE negative ELBO: samples of the latent per image
    predict_images: int = 10_000  # images of the timed `predict` run
    unseen_clean: int = 500  # unseen-kind check set (lib.data.unseen): fresh clean images
    unseen_per_kind: int = 100  # ... and anomalies of each kind
    mahalanobis_ridge: float = 1e-6  # every Mahalanobis detector: ridge on its covariance, times its mean variance
    frame_width: int = 2  # the frame part's outer pixels: the replica pads every 28x28 article with 2 zero pixels
    frame_std_floor: float = 1 / 255  # floor of the frame part's standard deviation (0 on clean images): one level


@dataclass(frozen=True)
class Transfer:
    """Notebook 05: every source pretrains the model's network (without its decoder), which is then fine-tuned on
    the labels from the source's backbone: the related source (the foreign classes) contrastively (SimCLR with the
    description as projection) and with its labels, the mismatched source (digits) with its labels."""

    source_images: int | None = 26_000  # foreign images drawn for pretraining (None: the whole filtered pool)
    contrastive: Training = Training(lr=2e-3, weight_decay=1e-4, batch=256, epochs=1, warmup=0.25,
                                     min_lr_fraction=0.01, augment=STRONG)
    temperature: float = 0.5  # NT-Xent temperature of the contrastive source
    # supervised source pretraining (foreign classes, digits), with the labels-only arm's views and smoothing
    source: Training = Training(lr=2e-3, weight_decay=5e-4, batch=128, steps=300, warmup=0.3, augment=SHIFT_3,
                                label_smoothing=0.1)
    source_holdout: float = 0.2  # share of a source held out to measure its pretraining
    foreign_holdout: float = 0.1  # the related (foreign) source's share: its pool is larger than the digits'
    finetune: Training = replace(source, steps=200)  # every fine-tuning run, whatever its source and budget
    budgets: tuple[int, ...] = (50,)  # label budgets; the whole training split is always added
    eval_images: int | None = 5_000  # unlabeled images (answer key) on which accuracy is measured


@dataclass(frozen=True)
class Report:
    bootstrap: int = 1000  # resamples for 95 % bootstrap confidence intervals
    umap_points: int = 4000  # points in UMAP maps (UMAP is the slow part of plotting)
    umap_neighbors: int = 15
    umap_min_dist: float = 0.1
    umap_epochs: int = 200


@dataclass(frozen=True)
class Profile:
    name: str
    subset: int | None = None  # at most this many images per set (smoke only); None = all
    report: Report = field(default_factory=Report)
    pretraining: Pretraining = field(default_factory=Pretraining)
    classification: Classification = field(default_factory=Classification)
    baseline: Baseline = field(default_factory=Baseline)
    model: Model = field(default_factory=Model)
    anomaly: Anomaly = field(default_factory=Anomaly)
    transfer: Transfer = field(default_factory=Transfer)

    @property
    def bootstrap(self) -> int:
        return self.report.bootstrap

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """Every setting, one line per stage (`stage: path=value, ...`), printed at the top of each notebook."""
        lines = [f"profile {self.name}: subset={self.subset}"]
        for stage in STAGES:
            lines.append(f"  {stage}: " + ", ".join(f"{path}={value}" for path, value in
                                                   flatten(getattr(self, stage))))
        return "\n".join(lines)


STAGES = ("report", "pretraining", "classification", "baseline", "model", "anomaly", "transfer")


def flatten(settings, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every leaf setting of a dataclass tree; an augmentation is one leaf."""
    leaves = []
    for item in fields(settings):
        value = getattr(settings, item.name)
        if is_dataclass(value) and not isinstance(value, AugmentConfig):
            leaves += flatten(value, f"{prefix}{item.name}.")
        else:
            leaves.append((prefix + item.name, value))
    return leaves


def override(settings, changes: dict[str, Any]):
    """A copy of a dataclass tree with the settings at dotted paths changed ("model.training.steps": 10)."""
    by_first: dict[str, dict[str, Any]] = {}
    for path, value in changes.items():
        first, _, rest = path.partition(".")
        if first not in {item.name for item in fields(settings)}:
            raise KeyError(f"{type(settings).__name__} has no setting {first!r}")
        by_first.setdefault(first, {})[rest] = value
    updated = {}
    for first, nested in by_first.items():
        updated[first] = nested[""] if "" in nested else override(getattr(settings, first), nested)
    return replace(settings, **updated)


def settings_table(profile: Profile) -> list[dict]:
    """Every setting of a profile, one row per group of settings {group, settings}: the report's hyperparameter
    table. Rows stay short so that the table breaks across pages; an augmentation lists the transforms it uses."""

    def shown(value) -> str:
        if isinstance(value, AugmentConfig):
            used = {key: item for key, item in asdict(value).items()
                    if item not in (0, 0.0, (1.0, 1.0)) and not (key == "erase_size" and value.erase == 0)}
            return "(" + (", ".join(f"{key.replace('_', ' ')} {shown(item)}" for key, item in used.items())
                          or "none") + ")"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, tuple):
            return "(" + ", ".join(shown(item) for item in value) + ")"
        return "none" if value is None else str(value)

    images = "all" if profile.subset is None else f"the first {profile.subset}"
    rows = [{"group": "run", "settings": f"images per set: {images}"}]
    for stage in STAGES:
        groups: dict[str, list[str]] = {}
        for path, value in flatten(getattr(profile, stage)):
            group, _, name = path.rpartition(".")
            groups.setdefault(f"{stage}.{group}" if group else stage, []).append(
                f"{name.replace('_', ' ')} {shown(value)}")
        rows += [{"group": group, "settings": "; ".join(items)} for group, items in groups.items()]
    return rows


def _smoke_pretraining() -> dict[str, Any]:
    """Notebook 02 in seconds: 600 images in batches of 128 (4 steps per epoch), warm-up of half an epoch."""
    changes = {"pretraining.contrastive.network.width": 8}
    for name, epochs in (("fc_ae", 1), ("conv_ae", 2), ("conv_ae_bn", 2), ("vae", 1), ("contrastive", 1)):
        changes.update({f"pretraining.{name}.training.batch": 128, f"pretraining.{name}.training.epochs": epochs,
                        f"pretraining.{name}.training.warmup": 0.5 / epochs})
    return changes


def _finetune_steps(stage: str, names: tuple[str, ...], steps: int, eval_every: int) -> dict[str, Any]:
    return {key: value for name in names for key, value in ((f"{stage}.{name}.training.steps", steps),
                                                            (f"{stage}.{name}.eval_every", eval_every))}


CPU = Profile("cpu")
# the gpu profile scales the model itself: twice the widths, longer labels-only training, FixMatch over 60 passes
# with larger batches (seven unlabeled images per label, as in FixMatch's paper), five seeds
GPU_MODEL = {
    "model.network.widths": (64, 64, 128, 128, 256, 256), "model.network.decoder_width": 64,
    "model.labels_only.epochs": 150, "model.curve_every": 10,
    "model.fixmatch.training.epochs": 60, "model.fixmatch.training.batch": 896, "model.fixmatch.labeled_batch": 128,
    "model.fixmatch.training.lr": 1e-3, "model.fixmatch.training.warmup": 0.02,
    "model.oracle.epochs": 10, "model.oracle.batch": 256, "model.seeds": (0, 1, 2, 3, 4),
}
PROFILES = {
    "smoke": override(CPU, {
        "name": "smoke", "subset": 600, "report.bootstrap": 100, "report.umap_points": 400,
        **_smoke_pretraining(),
        **_finetune_steps("classification", ("supervised", "contrastive_finetuned", "auxiliary", "fixmatch"), 20, 10),
        "classification.budgets": (50,), "classification.curve_steps": 10, "classification.curve_fixmatch_steps": 10,
        "baseline.training.epochs": 2, "model.labels_only.epochs": 2, "model.fixmatch.training.epochs": 1,
        "model.seeds": (0, 1), "model.curve_every": 1, "model.curve_images": 300, "transfer.contrastive.batch": 128,
        "transfer.source_images": 600, "transfer.source.steps": 10, "transfer.source.batch": 64,
        "transfer.finetune.steps": 10, "transfer.budgets": (50,), "transfer.eval_images": 600}),
    "cpu": CPU,
    "gpu": override(CPU, {
        "name": "gpu", "report.bootstrap": 2000, "report.umap_points": 8000,
        **GPU_MODEL,
        **{f"pretraining.{name}.training.{key}": value for name in ("fc_ae", "conv_ae", "conv_ae_bn", "vae")
           for key, value in (("batch", 512), ("epochs", 30), ("warmup", 1 / 60))},
        **{f"pretraining.{name}.network.width": 32 for name in ("conv_ae", "conv_ae_bn", "vae")},
        "pretraining.contrastive.network": ContrastiveConfig(width=32, depth=1),
        "pretraining.contrastive.training.batch": 512, "pretraining.contrastive.training.epochs": 100,
        "pretraining.contrastive.training.warmup": 0.005,
        **_finetune_steps("classification", ("supervised", "contrastive_finetuned", "auxiliary"), 1500, 200),
        **_finetune_steps("classification", ("fixmatch",), 4000, 200),
        "classification.fixmatch.unlabeled_ratio": 7, "classification.budgets": (50, 100, 250, 500, 1000),
        "classification.curve_steps": 1000, "classification.curve_fixmatch_steps": 1500,
        "transfer.source_images": None, "transfer.source.steps": 2_000, "transfer.source.batch": 256,
        "transfer.finetune.steps": 800, "transfer.budgets": (50, 250, 1000), "transfer.eval_images": 26_000}),
}


def default_profile_name(device: str) -> str:
    return "gpu" if device.startswith("cuda") else "cpu"


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
