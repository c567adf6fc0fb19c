"""Every setting of a run, per profile, in one place (DESIGN §4).

`smoke` proves the pipeline works (seconds per notebook, used by the tests),
`cpu` is the default without CUDA (whole report under 45 minutes on two
cores), `gpu` the default with CUDA (larger models, longer training, more seeds).

A profile is a tree of frozen dataclasses, one branch per stage: `report`
(bootstrap, maps), `pretraining` (notebook 02), `classification` (03),
`baseline` and `model` (03: the plain CNN and the project's model), `anomaly`
(04) and `transfer` (05); the augmentations are part of it. Each
notebook prints its profile at the top (`describe`), each checkpoint folder
stores the configuration it was trained with, and the report's hyperparameter
table is read from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from lib.errors import UserError
from lib.nn.augment import STRONG, WEAK, AugmentConfig


@dataclass(frozen=True)
class Report:
    bootstrap: int = 1000  # resamples for 95 % bootstrap confidence intervals
    umap_points: int = 4000  # points in UMAP maps (UMAP is the slow part of plotting)
    umap_neighbors: int = 15
    umap_min_dist: float = 0.1
    umap_epochs: int = 200


@dataclass(frozen=True)
class Pretraining:
    """Notebook 02: the models that learn from the unlabeled images."""

    batch: int = 256
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    min_lr_fraction: float = 0.01  # the cosine schedule decays to this fraction of the learning rate
    latent: int = 10  # size of every model's description
    fc_hidden: tuple[int, ...] = (512, 128)
    fc_epochs: int = 10
    fc_lr: float = 1e-3
    autoencoder_width: int = 8  # convolutional autoencoders and VAE (their decoders dominate the cost)
    autoencoder_epochs: int = 10  # each convolutional autoencoder (one checkpoint per epoch is plotted)
    # 5e-3 rather than 2e-3: at width 8 the batch-norm autoencoder stalls at twice the error with 2e-3
    autoencoder_lr: float = 5e-3
    vae_epochs: int = 10
    vae_lr: float = 2e-3
    vae_beta: float = 1.0
    encoder_width: int = 16  # contrastive encoder: channels of the first convolution (x2 per downsampling)
    encoder_depth: int = 0  # contrastive encoder: residual blocks after each downsampling
    encoder_features: int = 128  # contrastive encoder features before the ten-dimensional bottleneck
    contrastive_epochs: int = 30
    contrastive_lr: float = 2e-3
    temperature: float = 0.5  # NT-Xent temperature
    decoder_fraction: float = 0.25  # share of each batch the contrastive model's decoder learns from
    augment: AugmentConfig = STRONG
    knn_k: int = 10  # k of the k-nearest-neighbour accuracy of a description
    plateau_tolerance: float = 0.005  # checkpoint plot: k-NN accuracy this close to the last epoch's is the plateau


@dataclass(frozen=True)
class Classification:
    """Notebook 03: few-label classifiers (steps of the fine-tuning loop)."""

    validation_fraction: float = 0.2  # of the labeled set, stratified; it chooses the model
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    backbone_lr_factor: float = 0.3  # a pretrained encoder learns slower than its fresh head
    supervised_steps: int = 600  # labels only: supervised CNN, fine-tuned contrastive, auxiliary
    recon_weight: float = 1.0  # auxiliary model: weight of the reconstruction loss
    fixmatch_steps: int = 800
    unlabeled_ratio: int = 2  # FixMatch mu: unlabeled images per labeled image in a step
    confidence: float = 0.95  # FixMatch pseudo-label threshold
    oracle_steps: int = 1000
    oracle_batch: int = 128
    budgets: tuple[int, ...] = (50, 250, 1000)  # label budgets of the label-efficiency curve (+ the full split)
    curve_steps: int = 300  # labels-only runs of the curve
    curve_fixmatch_steps: int = 150  # semi-supervised runs of the curve (shorter than the main run)
    eval_every: int = 100
    weak: AugmentConfig = WEAK
    strong: AugmentConfig = STRONG


@dataclass(frozen=True)
class Baseline:
    """The plain supervised CNN of DESIGN §5, trained on the 2,000 labels alone (notebook 03)."""

    widths: tuple[int, ...] = (32, 32, 64, 64, 128, 128)  # six 3x3 convolutions with batch norm and ReLU
    strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2)  # the first at full 32x32 resolution
    dropout: float = 0.3
    epochs: int = 30
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.3  # one-cycle: linear warm-up over this share of the steps, then cosine decay
    min_lr_fraction: float = 0.0
    shift_pixels: int = 3  # random translations of up to this many pixels
    label_smoothing: float = 0.1


@dataclass(frozen=True)
class Model:
    """The project's model (notebooks 03 and 04, lib.nn.multihead): the plain CNN's backbone with a classifier,
    a ten-dimensional description and a decoder; supervised and self-trained variants with the same budget."""

    widths: tuple[int, ...] = (32, 32, 64, 64, 128, 128)
    strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2)
    dropout: float = 0.3
    description_dim: int = 10
    steps: int = 450  # optimizer steps of every training run, supervised and self-trained alike (the same budget)
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.3  # one-cycle: linear warm-up over this share of the steps, then cosine decay to 0
    shift_pixels: int = 3  # random translations of up to this many pixels
    hflip: float = 0.0  # flip probability: 0, as every shoe in the data points left
    label_smoothing: float = 0.1
    reconstruction_weight: float = 1.0  # decoder loss (the decoder sees the description with the gradient stopped)
    pseudo_confidence: float = 0.8  # self-training: unlabeled images whose teacher softmax maximum reaches this
    seeds: tuple[int, ...] = (0, 1, 2)  # seeds of both variants; the teacher is the first seed's labels-only run


@dataclass(frozen=True)
class Anomaly:
    """Notebook 04: anomaly scores, fitted on in-distribution training data only."""

    knn_k: int = 10  # kNN distance: k-th nearest unlabeled image
    elbo_samples: int = 8  # VAE negative ELBO: samples of the latent per image
    posterior_refit: float = 0.99  # class Gaussians: unlabeled images above this posterior refit the means
    predict_images: int = 10_000  # images of the timed `predict` run
    unseen_clean: int = 500  # unseen-kind check set (lib.data.unseen): fresh clean images
    unseen_per_kind: int = 100  # ... and anomalies of each kind


@dataclass(frozen=True)
class Transfer:
    """Notebook 05: budgets of the transfer-learning study (architecture and recipe are notebook 02's)."""

    source_images: int | None = 26_000  # foreign images drawn for pretraining (None: the whole filtered pool)
    source_steps: int = 300  # supervised pretraining steps (foreign classes, digits)
    source_batch: int = 128
    source_holdout: float = 0.2  # share of a source held out to measure its pretraining
    foreign_holdout: float = 0.1  # the related (foreign) source's share: its pool is larger than the digits'
    contrastive_epochs: int = 2  # short contrastive pretraining, on the foreign pool and on the unlabeled set
    finetune_steps: int = 250  # every fine-tuning run, whatever its source and label budget
    budgets: tuple[int, ...] = (50, 250)  # label budgets; the whole training split is always added
    eval_images: int | None = 5_000  # unlabeled images (answer key) on which accuracy is measured
    eval_every: int = 50


@dataclass(frozen=True)
class Profile:
    name: str
    subset: int | None = None  # at most this many images per set (smoke only); None = all
    seeds: tuple[int, ...] = (0,)  # training seeds where a notebook repeats runs
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
        """Every setting, one line per stage (`stage: name=value, ...`), printed at the top of each notebook."""
        lines = [f"profile {self.name}: subset={self.subset}, seeds={self.seeds}"]
        for stage, values in self.to_dict().items():
            if isinstance(values, dict):
                lines.append(f"  {stage}: " + ", ".join(f"{key}={value}" for key, value in values.items()))
        return "\n".join(lines)


def settings_table(profile: Profile) -> list[dict]:
    """Every setting of a profile, one row per stage {stage, settings}: the report's hyperparameter table."""
    rows = [{"stage": "run", "settings": f"subset {profile.subset}; seeds {', '.join(map(str, profile.seeds))}"}]
    for stage, values in profile.to_dict().items():
        if not isinstance(values, dict):
            continue
        shown = []
        for name, value in values.items():
            if isinstance(value, dict):  # an augmentation: its strengths in brackets
                value = "(" + ", ".join(f"{key.replace('_', ' ')} {item}" for key, item in value.items()) + ")"
            shown.append(f"{name.replace('_', ' ')} {value}")
        rows.append({"stage": stage, "settings": "; ".join(shown)})
    return rows


CPU = Profile("cpu")
PROFILES = {
    "smoke": replace(
        CPU, name="smoke", subset=600,
        report=Report(bootstrap=100, umap_points=400),
        pretraining=replace(CPU.pretraining, encoder_width=8, batch=128, contrastive_epochs=1, autoencoder_epochs=2,
                            vae_epochs=1, fc_epochs=1),
        classification=replace(CPU.classification, supervised_steps=20, fixmatch_steps=20, oracle_steps=20,
                               budgets=(50,), curve_steps=10, curve_fixmatch_steps=10, eval_every=10),
        baseline=replace(CPU.baseline, epochs=2),
        model=replace(CPU.model, steps=10, seeds=(0, 1)),
        transfer=Transfer(source_images=600, source_steps=10, source_batch=64, contrastive_epochs=1, finetune_steps=10,
                          budgets=(50,), eval_images=600, eval_every=10)),
    "cpu": CPU,
    "gpu": replace(
        CPU, name="gpu", seeds=(0, 1, 2),
        report=Report(bootstrap=2000, umap_points=8000),
        pretraining=replace(CPU.pretraining, encoder_width=32, encoder_depth=1, autoencoder_width=32, batch=512,
                            contrastive_epochs=100, autoencoder_epochs=30, vae_epochs=30, fc_epochs=30),
        classification=replace(CPU.classification, supervised_steps=1500, fixmatch_steps=4000, unlabeled_ratio=7,
                               oracle_steps=4000, budgets=(50, 100, 250, 500, 1000), curve_steps=1000,
                               curve_fixmatch_steps=1500, eval_every=200),
        transfer=Transfer(source_images=None, source_steps=2_000, source_batch=256, contrastive_epochs=15,
                          finetune_steps=800, budgets=(50, 250, 1000), eval_images=26_000, eval_every=200)),
}


def default_profile_name(device: str) -> str:
    return "gpu" if device.startswith("cuda") else "cpu"


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
