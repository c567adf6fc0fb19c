# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 — Pretraining on the unlabeled images: autoencoders, a VAE and contrastive learning
#
# The 26,000 unlabeled images are the bulk of the data. This notebook learns
# from them alone — no label is used for training — five models that each
# give every image a ten-dimensional description: a fully connected
# autoencoder, a convolutional autoencoder with and without batch
# normalization, a variational autoencoder (VAE) and a contrastive encoder.
# It then measures how well each description separates the five modes, next
# to the floor of principal component analysis (PCA) of the raw pixels.
#
# How the four datasets are used here:
#
# - **unlabeled images** (26,000): the only training data of every model;
# - **labeled images** (2,000): no training; their labels are only the
#   reference of the k-nearest-neighbour evaluation;
# - **representative sets 1 and 2**: not used for any choice here; their
#   embeddings, reconstruction errors and ELBOs are stored for notebook 04;
# - **answer key** (replica only): the true classes of the unlabeled images,
#   read only to score the clusterings.
#
# Later notebooks load the trained models from their checkpoints
# (`lib.training.load_trained`) instead of training them again.

# %% tags=["parameters"]
profile = None  # "smoke" | "cpu" | "gpu"; None: the default for the device
seed = 0
device = None  # "cpu" | "cuda"; None: CUDA when available
workspace = None  # folder for figures/, results/, report/, checkpoints/; None: the project
data_path = None  # the original assignment pickle; None: ASSIGNMENT_DATA or the replica

# %%
from lib.notebook import setup

ctx = setup(profile, seed, device, workspace, data_path)

# %%
import time

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

from lib.nn import models
from lib.nn import train as training
from lib.eval import embedding as rep
from lib.nn.augment import plot_views
from lib.data import CLASS_NAMES
from lib.eval.targets import KMEANS_DESCRIPTION

started = time.perf_counter()
data, key = ctx.data, ctx.answer_key
y_unlabeled = None if key is None else key["unlabeled_class"]
if key is None:
    print("original data without answer key: cluster metrics are scored on the 2,000 labeled images instead")
plan = training.pretraining_plan(ctx.profile, ctx.seed)
NAMES = training.PRETRAINED
print(f"{len(data.unlabeled):,} unlabeled images for training; models: {', '.join(NAMES.values())}")

# %% [markdown]
# ## Augmentation: which changes keep the mode of an image
#
# A contrastive model learns what stays the same when an image is changed, so
# the changes must be ones that keep the class and that the data itself
# contains. The images are centred, upright articles on a black background,
# all photographed the same way:
#
# - **small translations (±10 % of the side), zooms (0.8–1.2×), aspect changes
#   (±15 %) and rotations (±10°)**: articles differ in size, proportions and
#   placement within a class, so these keep the class; larger rotations and
#   vertical flips produce upside-down articles the data never contains;
# - **no horizontal flip**: a mirrored trouser or bag is still a trouser or a
#   bag, and a mirrored shoe is the other shoe of the pair — but every shoe in
#   Fashion-MNIST points left. A flip would teach the encoder to treat a
#   right-pointing shoe, which the data never holds, as normal; for the
#   anomaly detector of notebook 04 we want such an image to look unusual;
# - **intensity**: a per-image gain (±35 %) and gamma (×e^±0.35) mimic
#   exposure and fabric brightness while keeping the background black;
# - **faint Gaussian noise (σ ≤ 0.04) and erasing one small rectangle
#   (probability 25 %, sides 15–35 % of the image)**: robustness to local
#   detail and partial occlusion.
#
# Every change stays well below the corruptions that make anomalies in the
# representative sets (noise of σ = 90 grey levels ≈ 0.35, a 16×16 grey
# block, inverted intensities, strong blur, shuffled patches), so the encoder
# is not trained to ignore them. The augmentations run batched on the
# training device, with per-image random parameters drawn from a seeded
# generator (`lib.augment`). The autoencoders and the VAE train on the images
# as they are, as the classic baselines do.

# %%
#| label: fig-augmented-views
#| fig-cap: "Random augmented views of one labeled image of each class (left: the original). Each row keeps its class: shifts, zooms, small rotations, exposure changes and small erased patches vary the image, while no view is flipped, inverted or turned upside down."
contrastive_augment = plan["contrastive"][1].augment
examples = np.array([np.flatnonzero(data.labeled_y == c)[0] for c in range(len(CLASS_NAMES))])
fig = plot_views(data.labeled_x[examples], contrastive_augment, n_views=8, seed=ctx.seed, row_titles=list(CLASS_NAMES))
ctx.ws.save_figure(fig, "02_augmented_views")

# %% [markdown]
# ## The models
#
# All convolutional models share one encoder design (`lib.models.ConvEncoder`):
# a stride-2 3×3 convolution right at the input (32 → 16 pixels, which keeps
# the CPU profile fast), two more stride-2 stages (→ 8 → 4 pixels) with the
# channels doubling each time, optional residual blocks after each
# downsampling, batch normalization and ReLU, and a linear layer from the
# flattened 4×4 map. Decoders mirror it with transposed convolutions.
#
# - **autoencoders** (conv, with and without batch norm; fully connected
#   1024–512–128–10): a ten-dimensional bottleneck and the mean squared
#   reconstruction error as loss; the reconstruction error is the classic
#   anomaly score;
# - **VAE**: the encoder outputs the mean and log-variance of a Gaussian
#   posterior over ten latent variables; Bernoulli decoder; loss = negative
#   ELBO (reconstruction cross-entropy + KL divergence to the standard
#   normal prior), which is also its anomaly score; the description is the
#   posterior mean;
# - **contrastive** (SimCLR): encoder → 128 features → batch norm, ReLU,
#   linear → ten numbers, normalized to the unit sphere. The NT-Xent loss acts
#   on this ten-dimensional embedding directly, with no projection head after
#   it, so the geometry that k-means later sees is the one the loss shapes;
#   a decoder learns to draw the image from the detached embedding, which
#   makes the modes visible without changing the embedding.
#
# Width and depth are set by the run profile; the autoencoders of the CPU
# profile are narrower than the contrastive encoder because their decoders
# dominate their cost.
#
# The configuration of each model comes from the run profile
# (`lib.training.pretraining_plan`); the parameter counts:

# %%
for name, (model_config, train_config) in plan.items():
    print(f"{NAMES[name]:>24}: {models.count_parameters(models.build_model(model_config)):>9,} parameters,"
          f" {train_config.epochs} epochs, batch {train_config.batch_size}")

# %% [markdown]
# ## Training
#
# One loop trains every model (`lib.training.train`; the model supplies its
# loss): AdamW, a linear warm-up over half an epoch and cosine decay of the
# learning rate, a checkpoint after every epoch (all of them for the
# convolutional autoencoders, whose checkpoints are compared below), and
# resumption from the last checkpoint when a run is interrupted. Shuffling
# and augmentation draw from generators seeded by (seed, epoch), so a resumed
# or repeated CPU run gives the same numbers. On a GPU the loop adds bfloat16
# mixed precision and channels-last memory layout. When a model's folder
# already holds a finished run with the same configuration, it is loaded
# instead of trained again.

# %%
trained = {}
for name, (model_config, train_config) in plan.items():
    folder = ctx.ws.checkpoints(ctx.profile.name, name)
    trained[name] = training.train(model_config, data.unlabeled, train_config, folder, ctx.device)

# %%
#| label: tbl-pretraining-models
#| tbl-cap: "The pretrained models: size, training budget, measured training throughput (median over epochs, in source images per second; the contrastive model processes two augmented views of each) and the last epoch's mean training loss (autoencoders: MSE per pixel; VAE: negative ELBO in nats; contrastive: NT-Xent plus its decoder's MSE)."
training_table = pd.DataFrame([{
    "model": NAMES[name],
    "parameters": f"{models.count_parameters(result.model):,}",
    "epochs": plan[name][1].epochs,
    "batch": plan[name][1].batch_size,
    "images/s": f"{result.images_per_second:,.0f}",
    "training time (s)": f"{result.seconds:.0f}",
    "final loss": f"{result.history[-1]['loss']:.4g}",
} for name, result in trained.items()])
display(Markdown(training_table.to_markdown(index=False)))

# %%
#| label: fig-training-curves
#| fig-cap: "Training loss per epoch (mean over the epoch's batches). Left: mean squared reconstruction error of the three autoencoders (log scale); middle: the VAE's negative ELBO; right: the contrastive model's NT-Xent loss. Every curve falls steeply in the first epochs and flattens as the learning rate decays towards its floor."
histories = {NAMES[n]: r.history for n, r in trained.items()}
fig = training.plot_histories(histories, [
    ("autoencoders", [NAMES["fc_ae"], NAMES["conv_ae"], NAMES["conv_ae_bn"]], "MSE per pixel (intensity in [0, 1])", True),
    ("VAE", [NAMES["vae"]], "negative ELBO (nats per image)", False),
    ("contrastive", [NAMES["contrastive"]], "NT-Xent loss (nats)", False, "nt_xent"),
], figsize=(10, 3.6))
ctx.ws.save_figure(fig, "02_training_curves")

# %% [markdown]
# ## Reconstructions
#
# Unlabeled images 1, 2, 3, 6, 7 and 9 (counting from 0) beside what each
# model draws from its ten numbers. For the contrastive model the drawing
# comes from its decoder on the embedding: the embedding is trained to forget
# everything the augmentations change (position, size, exposure), so the
# decoder can only draw a typical article of the kind it recognises.

# %%
#| label: fig-reconstructions
#| fig-cap: "Unlabeled images 1, 2, 3, 6, 7 and 9 (top row, counted from 0) and what each model draws from its ten-dimensional code. All keep outline, size and brightness and lose texture and thin straps; the contrastive model's decoder, which sees only the embedding, draws a typical article of the recognised kind."
shown = np.array([1, 2, 3, 6, 7, 9])
shown = shown[shown < len(data.unlabeled)]
rows = {"original": data.unlabeled[shown] / 255.0}
for name, result in trained.items():
    rows[NAMES[name]] = models.reconstruct(result.model, data.unlabeled[shown])
fig = rep.plot_image_rows(rows, column_titles=[f"image {i}" for i in shown], figsize=(7.5, 7.0))
ctx.ws.save_figure(fig, "02_reconstructions")

# %% [markdown]
# ## How well the ten numbers describe the five modes
#
# Each description is clustered on the 26,000 unlabeled images by k-means
# with five clusters and by a five-component Gaussian mixture with full
# covariances, and each clustering is scored against the true classes:
# accuracy after the best one-to-one matching of clusters to classes
# (Hungarian algorithm) and normalized mutual information (NMI). The
# k-nearest-neighbour accuracy (k = 10, the 2,000 labeled images as
# reference) shows how pure the neighbourhoods are, and the silhouette how
# compact and separated the k-means clusters are. PCA to ten components of
# the raw pixels is the floor. The interval after each k-means accuracy is a
# 95 % bootstrap interval over the scored images.

# %%
embeddings = {"PCA-10 of pixels": rep.pca_embedding(data.unlabeled, data.labeled_x, seed=ctx.seed)}
for name, result in trained.items():
    embeddings[NAMES[name]] = [models.encode(result.model, images) for images in (data.unlabeled, data.labeled_x)]
evaluations = {method: rep.evaluate_embedding(z, y_unlabeled, z_labeled, data.labeled_y, seed=ctx.seed,
                                              bootstrap=ctx.profile.bootstrap)
               for method, (z, z_labeled) in embeddings.items()}
print(f"scored on: {next(iter(evaluations.values())).metrics['evaluated_on']}")

# %%
#| label: tbl-embedding-comparison
#| tbl-cap: "Ten-dimensional descriptions compared on the same data: clustering of the 26,000 unlabeled images by k-means and by a Gaussian mixture (GMM), scored against the true classes (accuracy after Hungarian matching, NMI), k-NN accuracy with the 2,000 labeled images as reference, and the silhouette of the k-means clusters. Brackets: 95 % bootstrap interval."


def percent(x):
    return f"{100 * x:.1f}"


comparison = pd.DataFrame([{
    "description": method,
    "k-means accuracy (%)": f"{percent(m['kmeans_accuracy'])} [{percent(m['kmeans_accuracy_ci'][0])}, "
                            f"{percent(m['kmeans_accuracy_ci'][1])}]",
    "k-means NMI": f"{m['kmeans_nmi']:.3f}",
    "GMM accuracy (%)": percent(m["gmm_accuracy"]),
    "GMM NMI": f"{m['gmm_nmi']:.3f}",
    "k-NN accuracy (%)": percent(m["knn_accuracy"]),
    "silhouette": f"{m['silhouette']:.2f}",
} for method, m in ((k, e.metrics) for k, e in evaluations.items())])
display(Markdown(comparison.to_markdown(index=False)))

# %%
best = max(evaluations, key=lambda k: evaluations[k].metrics["kmeans_accuracy"])
print(f"best description for k-means: {best}")

# %% [markdown]
# ## Maps of the descriptions
#
# UMAP draws each ten-dimensional description in two dimensions, for a random
# subsample of the unlabeled images, coloured by true class. UMAP keeps
# neighbourhoods, not distances: well separated islands mean the classes do
# not share neighbours, their sizes and the gaps between them mean little.

# %%
import umap  # noqa: E402  (imported here: it takes a while and only this section needs it)

rng = np.random.default_rng(ctx.seed)
subsample = np.sort(rng.choice(len(data.unlabeled), size=min(ctx.profile.report.umap_points, len(data.unlabeled)),
                               replace=False))
colours = (y_unlabeled if y_unlabeled is not None else evaluations[best].kmeans.labels)[subsample]
legend_title = "true class" if y_unlabeled is not None else "k-means cluster (no answer key)"
baseline = NAMES["conv_ae_bn"]
maps = {}
for method, (z, _) in embeddings.items():
    reducer = umap.UMAP(n_neighbors=15, min_dist=0.1, n_epochs=200, random_state=ctx.seed, n_jobs=1)
    maps[method] = reducer.fit_transform(z[subsample])


def map_title(method):
    return f"{method}\nk-means accuracy {percent(evaluations[method].metrics['kmeans_accuracy'])} %"


# %%
#| label: fig-embedding-umap
#| fig-cap: "UMAP of two ten-dimensional descriptions of the same unlabeled images, coloured by true class: the baseline convolutional autoencoder (left) and the description with the best k-means accuracy (right). Both separate trousers and bags; the autoencoder interleaves sandals, sneakers and ankle boots, the contrastive description gives each footwear class mostly its own region, with sandals and sneakers still touching."
fig = rep.plot_embedding_maps({map_title(baseline): maps[baseline], map_title(best): maps[best]},
                              colours, CLASS_NAMES, figsize=(10, 4.6), legend_title=legend_title)
ctx.ws.save_figure(fig, "02_embedding_umap")

# %%
#| label: fig-embedding-umap-all
#| fig-cap: "UMAP of the other descriptions, coloured by true class (same images as the previous figure). Trousers and bags form islands of their own in every map; sandals, sneakers and ankle boots share neighbourhoods."
others = [m for m in embeddings if m not in (baseline, best)]
fig = rep.plot_embedding_maps({map_title(m): maps[m] for m in others}, colours, CLASS_NAMES, ncols=len(others),
                              figsize=(10, 3.4), legend_title=legend_title)
ctx.ws.save_figure(fig, "02_embedding_umap_all")

# %% [markdown]
# ## Reconstruction error is not what the downstream tasks need
#
# Every epoch of the convolutional autoencoder with batch norm left a
# checkpoint (epoch 0 is the random initialisation). For each, the figure
# plots its mean reconstruction error on all unlabeled images against the
# k-NN accuracy of its ten-dimensional code.

# %%
#| label: fig-checkpoint-tradeoff
#| fig-cap: "Checkpoints of the convolutional autoencoder with batch norm (number = epoch, 0 = the random initialisation): mean reconstruction error on all unlabeled images against the k-NN accuracy of its ten-dimensional code (labeled images as reference). Left: all checkpoints; right: zoom on the later ones. After the first epochs the error keeps falling while the accuracy hardly moves."
ae_folder = ctx.ws.checkpoints(ctx.profile.name, "conv_ae_bn")
checkpoint_rows = []
for epoch, _ in training.list_checkpoints(ae_folder):
    ae = training.load_trained(ae_folder, ctx.device, epoch=epoch)
    z, error = models.encode_and_error(ae, data.unlabeled)
    error, z_labeled = error.mean(), models.encode(ae, data.labeled_x)
    if y_unlabeled is not None:
        accuracy = rep.knn_accuracy(z_labeled, data.labeled_y, z, y_unlabeled)
    else:
        accuracy = rep.knn_accuracy(z_labeled[::2], data.labeled_y[::2], z_labeled[1::2], data.labeled_y[1::2])
    checkpoint_rows.append({"epoch": epoch, "reconstruction_mse": float(error), "knn_accuracy": accuracy})
checkpoints = pd.DataFrame(checkpoint_rows)
accuracy_label = ("k-NN accuracy on the unlabeled images (%)" if y_unlabeled is not None
                  else "k-NN accuracy, labeled half vs. half (%)")
fig = rep.plot_checkpoint_tradeoff(checkpoints["reconstruction_mse"].to_numpy(), checkpoints["knn_accuracy"].to_numpy(),
                                   checkpoints["epoch"].tolist(), baseline, accuracy_label)
ctx.ws.save_figure(fig, "02_checkpoint_tradeoff")
display(Markdown(checkpoints.round(4).to_markdown(index=False)))

# %%
final_knn = checkpoints.iloc[-1]
# the first epoch whose accuracy is within half a point of the last one's
plateau = checkpoints[checkpoints["knn_accuracy"] >= final_knn.knn_accuracy - 0.005].iloc[0]
error_drop = 1 - final_knn.reconstruction_mse / plateau.reconstruction_mse
print(f"k-NN accuracy {percent(plateau.knn_accuracy)} % at epoch {int(plateau.epoch)}, "
      f"{percent(final_knn.knn_accuracy)} % at the last epoch {int(final_knn.epoch)}; "
      f"meanwhile the reconstruction error fell another {100 * error_drop:.0f} %")

# %% [markdown]
# Lower reconstruction error does not keep buying a better description: the
# autoencoder spends its later epochs on detail (edges, textures, exact
# position) that the ten numbers must encode to redraw the image, not on what
# tells the modes apart. This is why the contrastive model, which is told
# which changes do not matter, gives the better description.

# %% [markdown]
# ## The five modes made visible
#
# k-means with five clusters on the contrastive embedding; each row shows what
# the decoder draws from the cluster centre (left) and the eight unlabeled
# images nearest to the centre. The clusters are named after the class they
# are matched to.

# %%
#| label: fig-modes
#| fig-cap: "The five modes of the contrastive description: for each k-means cluster (named after the class it is matched to, with its size), the image the decoder draws from the cluster centre (left) and the eight unlabeled images nearest to the centre. The decoded centres are blurred averages of their cluster; the nearest images are typical members of one class."
contrastive = trained["contrastive"].model
z_contrastive = embeddings[NAMES["contrastive"]][0]
evaluation = evaluations[NAMES["contrastive"]]
centres = evaluation.kmeans.centers
order = np.argsort(evaluation.kmeans_classes)
nearest = rep.nearest_to_centres(z_contrastive, centres, 8)
decoded = models.decode(contrastive, centres)
sizes = np.bincount(evaluation.kmeans.labels, minlength=len(centres))
mode_rows = {f"{CLASS_NAMES[evaluation.kmeans_classes[k]]}\n({sizes[k]:,} images)":
             np.concatenate([decoded[k:k + 1], data.unlabeled[nearest[k]] / 255.0]) for k in order}
fig = rep.plot_image_rows(mode_rows, column_titles=["decoded\ncentre"] + [f"nearest\n{i + 1}" for i in range(8)],
                          figsize=(9, 5.8))
ctx.ws.save_figure(fig, "02_modes")

# %% [markdown]
# ## Outputs for later notebooks
#
# Each model's folder gets `outputs.npz`: the ten-dimensional description of
# every set, and for the autoencoders and the VAE their anomaly scores
# (reconstruction error; negative ELBO) on the representative sets. Notebook
# 04 reads them; the models themselves load with
# `lib.training.load_trained(folder)`.

# %%
sets = {"unlabeled": data.unlabeled, "labeled": data.labeled_x, "rep1": data.rep1_x, "rep2": data.rep2_x}
for name, result in trained.items():
    outputs = {f"z_{s}": (embeddings[NAMES[name]][0] if s == "unlabeled" else models.encode(result.model, images))
               for s, images in sets.items()}
    for s in ("rep1", "rep2"):
        if name != "contrastive":
            outputs[f"reconstruction_error_{s}"] = models.reconstruction_error(result.model, sets[s])
        if name == "vae":
            outputs[f"negative_elbo_{s}"] = models.negative_elbo(result.model, sets[s], samples=8, seed=ctx.seed)
    np.savez_compressed(ctx.ws.checkpoints(ctx.profile.name, name) / "outputs.npz", **outputs)
print("saved outputs.npz for", ", ".join(trained))

# %%
ours = evaluations[NAMES["contrastive"]].metrics
results = {
    "profile": ctx.profile.name, "seed": ctx.seed, "device": str(ctx.device),
    "scored_on": ours["evaluated_on"],
    "embedding_dim": 10,
    "methods": {method: {k: v for k, v in e.metrics.items()} for method, e in evaluations.items()},
    "best_kmeans_method": best,
    "training": {name: {"parameters": models.count_parameters(r.model), "epochs": plan[name][1].epochs,
                        "batch_size": plan[name][1].batch_size, "images_per_second": r.images_per_second,
                        "seconds": r.seconds, "history": r.history,
                        "model_config": plan[name][0].to_dict(), "train_config": plan[name][1].to_dict()}
                 for name, r in trained.items()},
    "checkpoints_conv_ae_bn": checkpoint_rows,
    "seconds_notebook_after_setup": time.perf_counter() - started,
}
ctx.ws.write_results("02_pretraining", results)
if y_unlabeled is not None:
    ctx.ws.update_summary({
        "embedding.dim": 10,
        "embedding.kmeans_accuracy.unlabeled": ours["kmeans_accuracy"],
        "embedding.kmeans_accuracy.unlabeled_ci": ours["kmeans_accuracy_ci"],
        "embedding.nmi.unlabeled": ours["kmeans_nmi"],
        "embedding.nmi.unlabeled_ci": ours["kmeans_nmi_ci"],
    })
else:
    print("no answer key: summary keys for the unlabeled images left out")


def model_variables(name):
    r, (mc, tc) = trained[name], plan[name]
    return {f"{name}_params": f"{models.count_parameters(r.model):,}", f"{name}_epochs": str(tc.epochs),
            f"{name}_images_per_second": f"{r.images_per_second:,.0f}", f"{name}_seconds": f"{r.seconds:.0f}"}


variables = {"batch": str(ctx.profile.pretraining.batch), "profile": ctx.profile.name,
             "autoencoder_width": str(ctx.profile.pretraining.autoencoder_width),
             "kmeans_target": f"{KMEANS_DESCRIPTION.scale * KMEANS_DESCRIPTION.goal:g}",
             "kmeans_target_verdict": "reaches" if KMEANS_DESCRIPTION.met(ours["kmeans_accuracy"]) else "does not reach",
             "temperature": f"{plan['contrastive'][0].temperature:g}",
             "encoder_width": str(ctx.profile.pretraining.encoder_width), "encoder_depth": str(ctx.profile.pretraining.encoder_depth),
             "n_unlabeled": f"{len(data.unlabeled):,}", "best_method": best,
             "scored_on": ours["evaluated_on"],
             "checkpoint_plateau_epoch": str(int(plateau.epoch)),
             "checkpoint_plateau_knn": percent(plateau.knn_accuracy),
             "checkpoint_last_knn": percent(final_knn.knn_accuracy),
             "checkpoint_error_drop": f"{100 * error_drop:.0f}",
             "checkpoint_epoch0_knn": percent(checkpoints.iloc[0].knn_accuracy),
             "checkpoint_count": str(len(checkpoints))}
for name in trained:
    variables.update(model_variables(name))
short = {"PCA-10 of pixels": "pca", **{v: k for k, v in NAMES.items()}}
for method, e in evaluations.items():
    m = e.metrics
    variables.update({f"{short[method]}_kmeans_accuracy": percent(m["kmeans_accuracy"]),
                      f"{short[method]}_kmeans_accuracy_ci": f"[{percent(m['kmeans_accuracy_ci'][0])}, "
                                                            f"{percent(m['kmeans_accuracy_ci'][1])}]",
                      f"{short[method]}_kmeans_nmi": f"{m['kmeans_nmi']:.3f}",
                      f"{short[method]}_gmm_accuracy": percent(m["gmm_accuracy"]),
                      f"{short[method]}_knn_accuracy": percent(m["knn_accuracy"])})
ctx.ws.update_report_variables("pretraining", variables)
print(f"k-means target {variables['kmeans_target']} %: the contrastive description {variables['kmeans_target_verdict']} it")
print(f"contrastive description: k-means accuracy {percent(ours['kmeans_accuracy'])} % "
      f"{[round(100 * v, 1) for v in ours['kmeans_accuracy_ci']]}, NMI {ours['kmeans_nmi']:.3f} ({ours['evaluated_on']})")
print(f"notebook time after setup: {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ## Model formulation and training, for the report
#
# **Data use.** Every model here learns from the 26,000 unlabeled images
# alone. The labeled images are only the reference of the k-NN evaluation, the
# answer key only scores the clusterings, and the representative sets are left
# to the anomaly detector of notebook 04.
#
# **Autoencoders.** An encoder $f$ maps an image $x \in [0,1]^{32\times 32}$
# to a code $z = f(x) \in \mathbb{R}^{10}$ and a decoder $g$ maps it back;
# training minimises the mean squared error
# $\mathcal{L}_{\mathrm{AE}} = \frac{1}{1024}\lVert x - \sigma(g(z)) \rVert^2$
# over the unlabeled images, and the per-image error is the anomaly score.
#
# **VAE.** The encoder gives a Gaussian posterior
# $q(z\mid x) = \mathcal{N}(\mu(x), \operatorname{diag}\sigma^2(x))$ over
# ten latent variables, the decoder a Bernoulli likelihood $p(x\mid z)$ per
# pixel, the prior is $\mathcal{N}(0, I)$. Training maximises the evidence
# lower bound; its negative is the loss and the anomaly score,
# $-\mathrm{ELBO}(x) = \mathbb{E}_{q}[-\log p(x\mid z)] + \mathrm{KL}(q(z\mid x)\,\Vert\,\mathcal{N}(0,I))$
# with $\mathrm{KL} = \tfrac12\sum_j (\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)$,
# estimated with one reparameterised sample $z = \mu + \sigma\odot\varepsilon$
# in training and eight for scoring. The description is $\mu(x)$.
#
# **Contrastive model.** Two augmented views of every image in a batch of $n$
# go through the encoder to normalized ten-dimensional embeddings
# $u = h(x)/\lVert h(x)\rVert$. Each of the $2n$ views must recognise its
# partner $p(i)$ among the other $2n-1$ (NT-Xent, temperature $\tau = 0.5$):
# $\ell_i = -\log \frac{\exp(u_i^\top u_{p(i)}/\tau)}{\sum_{k\ne i}\exp(u_i^\top u_k/\tau)}$,
# averaged over the $2n$ views. The loss pulls the views of one image together
# and pushes other images apart, so the embedding keeps what the augmentations
# do not change: the kind of article. The loss acts on the ten-dimensional
# embedding itself (no projection head), so it shapes the geometry that the
# description, the classifier and the anomaly score use. A decoder trained on
# the detached embedding draws what a point of the embedding means.
#
# **Training.** One loop for all models: AdamW (weight decay $10^{-4}$ on
# weights), linear warm-up over half an epoch and cosine decay, a checkpoint
# after every epoch with resumption, generators seeded by (seed, epoch) for
# shuffling and augmentation, bfloat16 and channels-last on a GPU. Budgets and
# measured throughputs are in the table of pretrained models, the quality of
# every description in the comparison table, and whether the contrastive one
# reaches the design target for k-means accuracy in the line printed after
# the results.
