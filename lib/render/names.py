"""Display names of the ids that results are keyed by (`lib.results`): made here, at render time."""

from __future__ import annotations

from lib.results import PART_REGISTRY

DESCRIPTIONS = {
    "pca": "PCA-10 of pixels",
    "fc_ae": "FC autoencoder",
    "conv_ae": "conv autoencoder",
    "conv_ae_bn": "conv autoencoder + BN",
    "vae": "VAE",
    "contrastive": "contrastive",
}

SYSTEMS = {
    "supervised_cnn": "supervised CNN",
    "autoencoder_probe": "autoencoder + linear head",
    "vae_probe": "VAE + linear head",
    "contrastive_probe": "contrastive + linear head",
    "contrastive_finetuned": "contrastive, fine-tuned",
    "auxiliary": "auxiliary (classification + reconstruction)",
    "contrastive_fixmatch": "contrastive + FixMatch",
    "stacking": "stacking ensemble",
    "baseline": "plain CNN, 2,000 labels (baseline)",
    "oracle": "oracle (answer-key labels)",
    "model": "ours",
}

ARMS = {
    "labels_only": "labels only",
    "fixmatch": "FixMatch",
}

SCORES = {
    "recon_fc_ae": "reconstruction error, fully connected AE",
    "recon_conv_ae": "reconstruction error, convolutional AE",
    "recon_conv_ae_bn": "reconstruction error, convolutional AE + batch norm",
    "vae_elbo": "negative ELBO, VAE",
    "knn_contrastive": "kNN distance, contrastive embedding",
    "msp": "max softmax probability, our classifier",
    "baseline_mahalanobis": "Mahalanobis, plain CNN features (baseline)",
    **{name: part.name for name, part in PART_REGISTRY.items()},
    "features_every_depth": "features, every depth",
    "features_every_depth_frame": "features, every depth + frame",
    "features_knn_energy_frame": "features, kNN, energy + frame",
    "deepest_features_pixels": "deepest features + pixels",
    "every_part": "every part",
}

PART_COLUMNS = {name: part.column for name, part in PART_REGISTRY.items()}


def origin(kind: str) -> str:
    """An anomaly's origin as the answer key names it ("foreign: Coat", "gaussian_noise") for a table."""
    return kind.replace("_", " ")
