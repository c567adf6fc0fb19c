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
import seaborn as sns
from IPython.display import Markdown
from sklearn.decomposition import PCA
from umap import UMAP

from lib.experiments import exploration
from lib import plots
from lib.data import ANOMALY, CLASS_NAMES
from lib.notebook import setup

ctx = setup(profile, seed, device, workspace, data_path)
data, key = ctx.data, ctx.answer_key
rng = np.random.default_rng(seed)

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
#| tbl-cap: "How each dataset is used for training and for validation (the evaluation protocol)."
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
rows = [data.labeled_x[data.labeled_y == c][:10] for c in range(5)]
fig = plots.image_rows(rows, list(CLASS_NAMES))
ctx.ws.save_figure(fig, "01_class_grid")
plt.show()

# %%
#| label: fig-class-mean-std
#| fig-cap: "Per-class mean (top) and standard deviation (bottom) of the labeled images, grey levels 0-255. The classes differ mostly in silhouette; the spread concentrates at the outline, where sizes vary."
fig, axes = plt.subplots(2, 5, figsize=(10, 4.2))
for c, name in enumerate(CLASS_NAMES):
    images = data.labeled_x[data.labeled_y == c][:, 0].astype(np.float32)
    for row, (image, what, top) in enumerate(((images.mean(0), "mean", 255), (images.std(0), "std", 128))):
        shown = axes[row, c].imshow(image, cmap="magma", vmin=0, vmax=top)
        axes[row, c].set_xticks([]); axes[row, c].set_yticks([])
        axes[row, c].set_title(f"{name} {what}", fontsize=9)
        if c == 4:
            fig.colorbar(shown, ax=axes[row, :], fraction=0.02, pad=0.02, label="grey level")
ctx.ws.save_figure(fig, "01_class_mean_std")
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
#| fig-cap: "Anomalies of representative set 1, one row per origin: foreign Fashion-MNIST classes and the six corruption kinds. Foreign clothes are upright and centred like normal data, so only their shape gives them away; corruptions change texture and intensity statistics."
anomalies = np.flatnonzero(data.rep1_y == ANOMALY)
if key is not None:
    detail = key["rep1_detail"][: len(data.rep1_y)]
    origin = key["rep1_origin"][: len(data.rep1_y)]
    kinds = ["foreign"] + sorted(set(detail[origin == "corrupted"]))
    rows = [data.rep1_x[origin == "foreign"][:6]] + [data.rep1_x[detail == kind][:6] for kind in kinds[1:]]
    labels = [kind.replace("_", " ") for kind in kinds]
else:
    rows = [data.rep1_x[anomalies[i : i + 6]] for i in range(0, min(len(anomalies), 24), 6)]
    labels = ["anomalies"] * len(rows)
fig = plots.image_rows(rows, labels)
ctx.ws.save_figure(fig, "01_anomaly_kinds")
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
#| fig-cap: "Left: distribution of grey levels, normal images of representative set 1 against its anomalies (log scale). Right: ink per image (sum of grey levels / 255) per class in the labeled set; bags and ankle boots carry the most ink, sandals the least."
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
normal = data.rep1_x[data.rep1_y != ANOMALY].ravel()
odd = data.rep1_x[data.rep1_y == ANOMALY].ravel()
bins = np.arange(0, 257, 8)
left.hist(normal, bins=bins, density=True, alpha=0.6, label="normal")
left.hist(odd, bins=bins, density=True, alpha=0.6, label="anomalies")
left.set_yscale("log"); left.set_xlabel("grey level (0-255)"); left.set_ylabel("density (log)"); left.legend()
ink = data.labeled_x.reshape(len(data.labeled_x), -1).sum(1) / 255
sns.boxplot(x=np.array(CLASS_NAMES)[data.labeled_y], y=ink, ax=right, order=list(CLASS_NAMES), fliersize=2)
right.set_xlabel("class"); right.set_ylabel("ink per image (sum / 255)")
ctx.ws.save_figure(fig, "01_pixel_histograms")
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
n = min(ctx.profile.report.umap_points, len(data.unlabeled))
sample = rng.choice(len(data.unlabeled), n, replace=False)
classes = key["unlabeled_class"][sample] if key is not None else np.full(n, -1)
pixels = np.concatenate([data.unlabeled[sample], data.rep1_x[anomalies]]).reshape(n + len(anomalies), -1) / 255.0
groups = np.concatenate([classes, np.full(len(anomalies), ANOMALY)])
names = list(CLASS_NAMES) + ["anomaly (set 1)"]
pca = PCA(n_components=10, random_state=seed).fit(data.unlabeled.reshape(len(data.unlabeled), -1) / 255.0)
umap_xy = UMAP(n_neighbors=15, min_dist=0.1, random_state=seed).fit_transform(pixels)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.4))
plots.scatter_2d(left, pca.transform(pixels)[:, :2], groups, names, "PCA of raw pixels", "PC 1", "PC 2", ANOMALY)
plots.scatter_2d(right, umap_xy, groups, names, "UMAP of raw pixels", "UMAP 1", "UMAP 2", ANOMALY)
right.get_legend().remove()
ctx.ws.save_figure(fig, "01_pixel_maps")
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
results = {
    "sizes": {name: int(len(images)) for name, images in exploration.images_by_set(data).items()},
    "anomalies": {"rep1": int((data.rep1_y == ANOMALY).sum()), "rep2": int((data.rep2_y == ANOMALY).sum())},
    "shared_images_between_sets": int(duplicates.query("`first set` != `second set`")["shared images"].sum()),
    "repeated_images_within_sets": int(duplicates.query("`first set` == `second set`")["shared images"].sum()),
    "pca10_variance_explained": float(pca.explained_variance_ratio_.sum()),
    "is_replica": key is not None,
}
ctx.ws.write_results("01_data_exploration", results)
ctx.ws.update_report_variables("data", {
    "n_unlabeled": f"{results['sizes']['unlabeled']:,}",
    "n_labeled": f"{results['sizes']['labeled']:,}",
    "n_rep1": f"{results['sizes']['representative_set_1']:,}",
    "n_rep2": f"{results['sizes']['representative_set_2']:,}",
    "n_anomalies_rep1": str(results["anomalies"]["rep1"]),
    "n_anomalies_rep2": str(results["anomalies"]["rep2"]),
    "anomaly_percent_rep1": f"{100 * results['anomalies']['rep1'] / results['sizes']['representative_set_1']:.1f}",
    "shared_images": str(results["shared_images_between_sets"]),
    "pca10_variance": f"{100 * results['pca10_variance_explained']:.0f}",
    "source": "replica built from Fashion-MNIST" if key is not None else "original assignment data",
})
results
