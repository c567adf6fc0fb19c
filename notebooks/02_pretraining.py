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
# - **representative sets 1 and 2**: not used here; notebook 04 scores them
#   with the models trained here;
# - **answer key** (replica only): the true classes of the unlabeled images,
#   read only to score the clusterings.
#
# Later notebooks load the trained models from the checkpoint folders this
# notebook records (`lib.train.checkpoint.load_model`) instead of training them
# again. Training and scoring live in `lib.experiments.pretraining`, the tables
# in `lib.render.tables`, the drawing in `lib.plots`.

# %% tags=["parameters"]
profile = None  # "smoke" | "cpu" | "gpu"; None: the default for the device
seed = 0
device = None  # "cpu" | "cuda"; None: CUDA when available
workspace = None  # folder for figures/, results/, report/, checkpoints/; None: the project
data_path = None  # the original assignment pickle; None: ASSIGNMENT_DATA or the replica

# %%
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown

from lib import plots
from lib.data import CLASS_NAMES
from lib.experiments import pretraining as pre
from lib.notebook import setup
from lib.render import tables

ctx = setup(profile, seed, device, workspace, data_path)
started = time.perf_counter()
data, y_unlabeled = ctx.data, pre.unlabeled_classes(ctx.answer_key)
if y_unlabeled is None:
    print("original data without answer key: cluster metrics are scored on the 2,000 labeled images instead")
print(f"{len(data.unlabeled):,} unlabeled images for training; parameters: {pre.parameter_counts(ctx.profile)}")

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
# generator (`lib.nn.augment`). The autoencoders and the VAE train on the images
# as they are, as the classic baselines do.

# %%
#| label: fig-augmented-views
#| fig-cap: "Random augmented views of one labeled image of each class (left: the original). Each row keeps its class: shifts, zooms, small rotations, exposure changes and small erased patches vary the image, while no view is flipped, inverted or turned upside down."
fig = plots.plot_views(pre.augmentation_examples(data), ctx.profile.pretraining.contrastive.training.augment,
                       n_views=pre.VIEWS, seed=ctx.seed, row_titles=list(CLASS_NAMES))
ctx.save_figure(fig, "02_augmented_views")
plt.show()

# %% [markdown]
# ## The models
#
# All convolutional models share one encoder design (`lib.nn.blocks.ConvEncoder`):
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
# Width and depth are set by the run profile (`lib.config.Pretraining`); the
# autoencoders of the CPU profile are narrower than the contrastive encoder
# because their decoders dominate their cost.

# %% [markdown]
# ## Training
#
# One loop trains every model (`lib.train.runs.pretrain`; the losses are in
# `lib.train.objectives`): AdamW, a linear warm-up over half an epoch and cosine decay of the
# learning rate, a checkpoint after every epoch (all of them for the
# convolutional autoencoders, whose checkpoints are compared below), and
# resumption from the last checkpoint when a run is interrupted. Shuffling
# and augmentation draw from generators seeded by (seed, epoch), so a resumed
# or repeated CPU run gives the same numbers. On a GPU the loop adds bfloat16
# mixed precision and channels-last memory layout. When a model's folder
# already holds a finished run with the same configuration, it is loaded
# instead of trained again.

# %%
trained = pre.train_all(ctx)

# %%
#| label: tbl-pretraining-models
#| tbl-cap: "The pretrained models: size, training budget, measured training throughput (median over epochs, in source images per second; the contrastive model processes two augmented views of each) and the last epoch's mean training loss (autoencoders: MSE per pixel; VAE: negative ELBO in nats; contrastive: NT-Xent plus its decoder's MSE)."
Markdown(tables.pretraining_models(pre.training_summary(trained, ctx.profile.pretraining)).to_markdown(index=False))

# %%
#| label: fig-training-curves
#| fig-cap: "Training loss per epoch (mean over the epoch's batches). Left: mean squared reconstruction error of the three autoencoders (log scale); middle: the VAE's negative ELBO; right: the contrastive model's NT-Xent loss."
fig = plots.plot_histories({tables.description_name(name): result.history for name, result in trained.items()},
                           tables.CURVE_PANELS)
ctx.save_figure(fig, "02_training_curves")
plt.show()

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
#| fig-cap: "Unlabeled images 1, 2, 3, 6, 7 and 9 (top row, counted from 0) and what each model draws from its ten-dimensional code. The contrastive model draws through its decoder, which sees only the embedding."
rows = pre.reconstructions(trained, data.unlabeled)
fig = plots.plot_image_rows({tables.description_name(name): images for name, images in rows.items()},
                            column_titles=[f"image {i}" for i in pre.SHOWN_IMAGES], figsize=(5.2, 4.6))
ctx.save_figure(fig, "02_reconstructions")
plt.show()

# %% [markdown]
# ## How well the ten numbers describe the five modes
#
# Each description is clustered on the 26,000 unlabeled images by k-means
# with five clusters and by a five-component Gaussian mixture with full
# covariances, and each clustering is scored against the true classes:
# accuracy after the best one-to-one matching of clusters to classes
# (Hungarian algorithm) and normalized mutual information (NMI). The
# k-nearest-neighbour accuracy (k = `knn_k` of the profile, 10; the 2,000
# labeled images as reference) shows how pure the neighbourhoods are, and the silhouette how
# compact and separated the k-means clusters are. PCA to ten components of
# the raw pixels is the floor. The interval after each k-means accuracy is a
# 95 % bootstrap interval over the scored images.

# %%
embeddings = pre.embed_all(trained, data, ctx.seed)
evaluations = pre.evaluate_all(embeddings, y_unlabeled, data.labeled_y, ctx.seed, ctx.profile.bootstrap,
                               ctx.profile.pretraining.knn_k)
print(f"scored on: {next(iter(evaluations.values())).metrics['evaluated_on']}")

# %%
#| label: tbl-embedding-comparison
#| tbl-cap: "Ten-dimensional descriptions compared on the same data: clustering of the 26,000 unlabeled images by k-means and by a Gaussian mixture (GMM), scored against the true classes (accuracy after Hungarian matching, NMI), k-NN accuracy with the 2,000 labeled images as reference, and the silhouette of the k-means clusters. Brackets: 95 % bootstrap interval."
Markdown(tables.descriptions({m: e.metrics for m, e in evaluations.items()}).to_markdown(index=False))

# %%
best = pre.best_description(evaluations)
print(f"best description for k-means: {best.chosen}")

# %% [markdown]
# ## Maps of the descriptions
#
# UMAP draws each ten-dimensional description in two dimensions, for a random
# subsample of the unlabeled images, coloured by true class. UMAP keeps
# neighbourhoods, not distances: well separated islands mean the classes do
# not share neighbours, their sizes and the gaps between them mean little.

# %%
maps = pre.umap_maps(embeddings, evaluations, best.chosen, y_unlabeled, ctx.profile.report, ctx.seed)

# %%
#| label: fig-embedding-umap
#| fig-cap: "UMAP of two ten-dimensional descriptions of the same unlabeled images, coloured by true class: the baseline convolutional autoencoder (left) and the description with the best k-means accuracy (right). Islands of one colour are classes the description keeps apart; mixed regions are classes it confuses."
pair = [pre.BASELINE, best.chosen]
fig = plots.plot_embedding_maps({tables.map_title(m, evaluations[m].metrics): maps.maps[m] for m in pair}, maps.colours,
                                CLASS_NAMES, figsize=(6.2, 3.4), legend_title=tables.map_legend(maps.answer_key))
ctx.save_figure(fig, "02_embedding_umap")
plt.show()

# %%
#| label: fig-embedding-umap-all
#| fig-cap: "UMAP of the other descriptions, coloured by true class (same images as the previous figure)."
others = [m for m in maps.maps if m not in pair]
fig = plots.plot_embedding_maps({tables.map_title(m, evaluations[m].metrics): maps.maps[m] for m in others}, maps.colours,
                                CLASS_NAMES, ncols=len(others), figsize=(6.2, 2.7),
                                legend_title=tables.map_legend(maps.answer_key))
ctx.save_figure(fig, "02_embedding_umap_all")
plt.show()

# %% [markdown]
# ## Reconstruction error and what the downstream tasks need
#
# Every epoch of the convolutional autoencoder with batch norm left a
# checkpoint (epoch 0 is the random initialisation). For each, the figure
# plots its mean reconstruction error on all unlabeled images against the
# k-NN accuracy of its ten-dimensional code.

# %%
#| label: fig-checkpoint-tradeoff
#| fig-cap: "Checkpoints of the convolutional autoencoder with batch norm (number = epoch, 0 = the random initialisation): mean reconstruction error on all unlabeled images against the k-NN accuracy of its ten-dimensional code (labeled images as reference). Left: all checkpoints; right: zoom on the later ones."
checkpoints = pre.checkpoint_tradeoff(trained[pre.BASELINE].folder, data, y_unlabeled, ctx.device,
                                      ctx.profile.pretraining.knn_k)
fig = plots.plot_checkpoint_tradeoff(checkpoints["reconstruction_mse"].to_numpy(),
                                     checkpoints["knn_accuracy"].to_numpy(), checkpoints["epoch"].tolist(),
                                     tables.description_name(pre.BASELINE), tables.knn_label(y_unlabeled is not None))
ctx.save_figure(fig, "02_checkpoint_tradeoff")
plt.show()
Markdown(checkpoints.round(4).to_markdown(index=False))

# %%
plateau = pre.checkpoint_plateau(checkpoints, ctx.profile.pretraining.plateau_tolerance)
print(tables.plateau_sentence(plateau))

# %% [markdown]
# ## The five modes made visible
#
# k-means with five clusters on the contrastive embedding; each row shows what
# the decoder draws from the cluster centre (left) and the eight unlabeled
# images nearest to the centre. The clusters are named after the class they
# are matched to.

# %%
#| label: fig-modes
#| fig-cap: "The five modes of the contrastive description: for each k-means cluster (named after the class it is matched to, with its size), the image the decoder draws from the cluster centre (left) and the eight unlabeled images nearest to the centre."
modes = pre.mode_rows(trained["contrastive"].model, evaluations["contrastive"], embeddings["contrastive"][0],
                      data.unlabeled)
fig = plots.plot_image_rows({f"{name}\n({size:,} images)": images for name, size, images in modes},
                            column_titles=["decoded\ncentre"] + [f"nearest\n{i + 1}" for i in range(pre.NEAREST)],
                            figsize=(6.2, 3.9))
ctx.save_figure(fig, "02_modes")
plt.show()

# %% [markdown]
# ## Numbers for later notebooks and the report
#
# Everything measured here goes to `results/02_pretraining.json`, with each
# model's checkpoint folder: notebook 04 compares the descriptions in its table
# of systems, later notebooks load the models from those folders
# (`lib.train.checkpoint.load_model`), and `lib.render.variables` makes the
# report's numbers from it.

# %%
results = pre.record(ctx, trained, evaluations, best, checkpoints, plateau, time.perf_counter() - started)
ctx.ws.write_results("02_pretraining", results)
print(tables.description_target_sentence(results))
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
