# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 Data exploration
#
# What the four datasets contain, how they differ, and how each will be used.
# Every table and figure below is embedded in the report by its cell label.

# %% tags=["parameters"]
profile = None  # "smoke" | "cpu" | "gpu"; None: the default for the device
seed = 0
device = None  # "cpu" | "cuda"; None: CUDA when available
workspace = None  # folder for figures/, results/, report/, checkpoints/; None: the project
data_path = None  # the original assignment pickle; None: ASSIGNMENT_DATA or the replica

# %%
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown

from lib import plots
from lib.data import ANOMALY, CLASS_NAMES
from lib.experiments import exploration
from lib.notebook import setup

ctx = setup(profile, seed, device, workspace, data_path)
data, key = ctx.data, ctx.answer_key

# %% [markdown]
# ## Sizes and class balance
#
# The labeled set and the representative sets carry labels; the unlabeled set's
# classes come from the replica's answer key and are used only to describe and
# evaluate, never to train.

# %%
#| label: tbl-class-balance
#| tbl-cap: "Images per class in each dataset. Anomalies (class index 5) occur only in the representative sets; the unlabeled column comes from the answer key and is used for evaluation only."
balance = exploration.class_balance(data, key)
Markdown(balance.to_markdown(index=False))

# %%
#| label: tbl-dataset-use
#| tbl-cap: "How each dataset is used: what it trains and what it chooses (the evaluation protocol; the answer key is read only by evaluation code)."
Markdown(exploration.DATASET_USE.to_markdown(index=False))

# %% [markdown]
# ## What the classes look like
#
# Trousers and bags are visually distinct; the three kinds of footwear (sandal,
# sneaker, ankle boot) share their outline and differ in height and texture,
# so these are the classes a model will confuse. Every article is centred and
# upright, and every shoe points left: translations of a few pixels and small
# scale changes keep an image inside the distribution, large rotations or
# vertical flips do not.

# %%
#| label: fig-class-grid
#| fig-cap: "Ten labeled images per class (rows). The three footwear classes share shape and orientation (all point left); trousers and bags are distinct."
fig = plots.image_rows(exploration.class_examples(data, per_class=10), list(CLASS_NAMES))
ctx.save_figure(fig, "01_class_grid")
plt.show()

# %%
#| label: fig-class-mean-std
#| fig-cap: "Per-class mean (top) and standard deviation (bottom) of the labeled images, grey levels 0-255. Compare the silhouettes (top) and where the images vary (bottom)."
fig = plots.class_mean_std(data.labeled_x, data.labeled_y, CLASS_NAMES)
ctx.save_figure(fig, "01_class_mean_std")
plt.show()

# %% [markdown]
# ## The anomalies
#
# Representative set 1 contains the anomalies we may study (set 2 is the final
# test). With the answer key we can see their two origins: foreign articles
# (the other five Fashion-MNIST classes, mostly upper-body clothing) and
# corrupted in-distribution images, six kinds of damage.

# %%
#| label: fig-anomaly-kinds
#| fig-cap: "Anomalies of representative set 1, one column per origin: foreign Fashion-MNIST classes and the six corruption kinds. Foreign clothes are upright and centred like normal data, so only their shape sets them apart; the corruptions change texture and intensity."
fig = plots.image_columns(*exploration.anomaly_rows(data, key, per_row=3))
ctx.save_figure(fig, "01_anomaly_kinds")
plt.show()

# %% [markdown]
# ## Pixel statistics
#
# Normal images are mostly background: about half of the pixels are exactly
# zero (the 2-pixel padding alone is 23 % of the image). Intensity statistics
# already separate some corruptions (inversion, noise) from normal data.

# %%
#| label: tbl-pixel-stats
#| tbl-cap: "Pixel statistics per dataset (grey levels 0-255). The sets are drawn from one pool, so their statistics agree; the representative sets differ slightly because of their anomalies."
stats = exploration.pixel_statistics(data)
Markdown(stats.to_markdown(index=False, floatfmt=".1f"))

# %%
#| label: fig-pixel-histograms
#| fig-cap: "Left: distribution of grey levels, normal images of representative set 1 against its anomalies (log scale). Right: ink per image (sum of grey levels / 255) per class in the labeled set."
is_anomaly = data.rep1_y == ANOMALY
ink = exploration.ink_per_image(data.labeled_x)
fig = plots.pixel_histograms(data.rep1_x[~is_anomaly], data.rep1_x[is_anomaly], ink,
                             np.array(CLASS_NAMES)[data.labeled_y], CLASS_NAMES)
ctx.save_figure(fig, "01_pixel_histograms")
plt.show()

# %% [markdown]
# ## A 2-D map of raw pixels
#
# PCA and UMAP on raw pixels show how far unsupervised structure goes before
# any learning: a sample of the unlabeled images coloured by their true class
# (answer key; evaluation only) with the anomalies of representative set 1 on top.

# %%
#| label: fig-pixel-maps
#| fig-cap: "Raw pixels mapped to 2-D by PCA (left) and UMAP (right): unlabeled images coloured by true class, anomalies of representative set 1 as crosses. Trousers and bags separate already; the footwear classes overlap, and many anomalies fall inside the normal clusters, so raw pixels alone will not do."
# as many principal components as the learned description has dimensions
maps = exploration.pixel_maps(data, key, ctx.profile.report, n_components=ctx.profile.model.network.description_dim, seed=seed)
fig = plots.pixel_maps(maps.pca, maps.umap, maps.groups, maps.names, highlight=ANOMALY)
ctx.save_figure(fig, "01_pixel_maps")
plt.show()

# %% [markdown]
# ## Exact duplicates across sets
#
# The sets are drawn from Fashion-MNIST without sharing an index; Fashion-MNIST
# itself holds a few pixel-identical images, which this check would reveal as
# overlap (a leak between training and test data).

# %%
#| label: tbl-duplicates
#| tbl-cap: "Pixel-identical images (SHA-1 of the bytes) shared between two sets, or repeated within one set (diagonal)."
duplicates = exploration.exact_duplicates(data)
Markdown(duplicates.to_markdown(index=False))

# %%
results = exploration.summary(data, duplicates, maps.pca_variance, is_replica=data.is_replica)
ctx.ws.write_results("01_data_exploration", results)  # the report's `data` variables are read from here
print(results)
