"""Run profiles: how much data, model and training a run uses (DESIGN §4).

`smoke` proves the pipeline works (seconds per notebook, used by the tests),
`cpu` is the default without CUDA (whole report under 45 minutes on two
cores), `gpu` the default with CUDA (larger models, longer training, more seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

from lib.errors import UserError


@dataclass(frozen=True)
class Profile:
    name: str
    subset: int | None  # at most this many images per set (smoke only); None = all
    umap_points: int  # points in UMAP maps (UMAP is the slow part of plotting)
    bootstrap: int  # resamples for 95 % bootstrap confidence intervals
    seeds: tuple[int, ...]  # training seeds where a notebook repeats runs
    # Notebook 02 (pretraining on the unlabeled images)
    encoder_width: int = 16  # contrastive encoder: channels of the first convolution (x2 per downsampling)
    encoder_depth: int = 0  # contrastive encoder: residual blocks after each downsampling
    autoencoder_width: int = 8  # convolutional autoencoders and VAE (their decoders dominate the cost)
    pretrain_batch: int = 256
    contrastive_epochs: int = 30
    autoencoder_epochs: int = 10  # each convolutional autoencoder (one checkpoint per epoch is plotted)
    vae_epochs: int = 10
    fc_epochs: int = 10


PROFILES = {
    "smoke": Profile("smoke", subset=600, umap_points=400, bootstrap=100, seeds=(0,),
                     encoder_width=8, autoencoder_width=8, pretrain_batch=128, contrastive_epochs=1,
                     autoencoder_epochs=2, vae_epochs=1, fc_epochs=1),
    "cpu": Profile("cpu", subset=None, umap_points=4000, bootstrap=1000, seeds=(0,)),
    "gpu": Profile("gpu", subset=None, umap_points=8000, bootstrap=2000, seeds=(0, 1, 2),
                   encoder_width=32, encoder_depth=1, autoencoder_width=32, pretrain_batch=512,
                   contrastive_epochs=100, autoencoder_epochs=30, vae_epochs=30, fc_epochs=30),
}


def default_profile_name(device: str) -> str:
    return "gpu" if device.startswith("cuda") else "cpu"


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise UserError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
