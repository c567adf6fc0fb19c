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
# # 05 Transfer learning, measured
#
# The assignment forbids pretrained models and outside data for the model we
# deliver, and asks instead *when* transfer learning would help, *how* it would be
# used for each task, and *when* it would be impossible or harmful. This notebook
# answers with experiments on the network the project ships (its backbone and
# description; the decoder never changes them and is left out): nothing
# trained here feeds notebooks 03 or 04.
#
# **Sources.** Every source pretrains that network; its backbone and
# description are then copied and the five-class network is fine-tuned on the
# labels:
#
# | source | data | pretraining task | relation to our data |
# |---|---|---|---|
# | none | — | — (random initialisation) | baseline |
# | in-domain, contrastive | the unlabeled set | SimCLR: the model's own pretraining (notebook 03) | the same distribution, no labels |
# | related, contrastive | the five *other* Fashion-MNIST classes | SimCLR, the same recipe and budget | same kind of image, disjoint classes, no labels |
# | related, supervised | the same foreign images | five-way classification | same kind of image, disjoint classes |
# | mismatched, supervised | scikit-learn's 8×8 handwritten digits, upscaled | ten-way classification | another kind of image |
#
# **Protocol.** The labeled set is split as in notebook 03 (80 % training, 20 %
# validation; stratified, same seed). Each source is fine-tuned with several
# label budgets drawn from the training split (class-balanced, nested), all with
# the same schedule; the validation split is monitored during training. Accuracy
# is measured on a fixed random sample of the unlabeled images with the answer
# key (without it, on the clean images of representative set 1), and anomaly
# detection on representative set 1. Representative set 2 stays untouched: it is
# the final test of the main model.
#
# **No leakage.** The representative sets hold foreign Fashion-MNIST images as
# anomalies. Every image of the related source that is pixel-identical (after
# padding) to an image of representative set 1 or 2 is removed before
# pretraining; the filter compares SHA-1 hashes of the images and does not read
# the answer key.

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
from lib.data import fashion_mnist
from lib.experiments import transfer as tr
from lib.notebook import setup
from lib.render import tables

started = time.perf_counter()
ctx = setup(profile, seed, device, workspace, data_path)
data, key, settings = ctx.data, ctx.answer_key, ctx.profile.transfer
B = ctx.profile.bootstrap  # bootstrap resamples of every interval

ev = tr.evaluation(data, key, settings, ctx.profile.classification.validation_fraction, seed)
print(f"labeled: {len(ev.split.y_train)} for training, {len(ev.split.y_val)} for validation;"
      f" budgets {ev.budgets}; accuracy on {tables.transfer_evaluated_on(ev.on_unlabeled, len(ev.y))}")

# %% [markdown]
# ## The source data
#
# The related source is every Fashion-MNIST image of the five foreign classes
# (T-shirt/top, pullover, dress, coat, shirt), padded like the assignment, minus
# the images that also occur in a representative set, then subsampled to the
# profile's budget. The mismatched source is the digits data set that ships
# with scikit-learn: 1,797 digits of 8×8 pixels with grey levels 0–16, upscaled
# bilinearly to 28×28, scaled to 0–255 and padded to 32×32 — small, blurry,
# thick strokes instead of textured garments.

# %%
fm_images, fm_labels = fashion_mnist.load_all()
foreign = tr.foreign_source(fm_images, fm_labels, [data.rep1_x, data.rep2_x], fashion_mnist.CLASS_NAMES,
                            limit=settings.source_images, seed=seed)
digits = tr.digits_source()
print(f"foreign pool: {foreign.n_candidates:,} images of the five foreign classes, {foreign.n_excluded} removed"
      f" because they also appear in representative set 1 or 2, {len(foreign.x):,} used")
print(f"digits: {len(digits.x):,} images")
del fm_images, fm_labels

# %%
#| label: fig-transfer-sources
#| fig-cap: "What each source looks like. Top: our five classes (two labeled images per class). Middle: the related source, the five foreign Fashion-MNIST classes (two per class), the same kind of image as ours. Bottom: the mismatched source, scikit-learn's 8×8 digits (one per digit) upscaled to 28×28 and padded: thick, blurry strokes without texture."
fig = plots.image_rows(*tr.source_examples(data, foreign, digits), cell=0.9)
ctx.save_figure(fig, "05_sources")
plt.show()

# %% [markdown]
# ## Pretraining
#
# - **Related, contrastive**: SimCLR (two augmented views of every image find
#   each other by their description) on as many foreign images as we have
#   unlabeled ones.
# - **Related and mismatched, supervised**: the network trained with label-smoothed
#   cross entropy on shifted source images (the labels-only recipe), evaluated
#   on held-out source images (10 % of the foreign pool, 20 % of the digits) to
#   show that the source task was learned.

# %%
sources = tr.pretrain_sources(ctx, foreign, digits)
print("sources:", {k: info for k, info in sources.info.items()})

# %% [markdown]
# Before any fine-tuning, how much of our task do the source features already
# carry? A linear head (logistic regression) on each frozen ten-dimensional
# description, trained with each label budget, tells; for "none" the network is
# the random initialisation that fine-tuning starts from. This is also the cheapest
# way to use a pretrained encoder: as a fixed feature extractor.

# %%
probe = tr.probe_sources(ctx, sources, ev)

# %%
#| label: tbl-transfer-sources
#| tbl-cap: "The pretraining sources: images used, passes over them (epochs) and pretraining time in this run; accuracy on held-out source images (supervised sources); and accuracy (%) on our five classes, on the evaluation images, of a linear head on the frozen source description trained with every label of the training split (95 % bootstrap intervals; 'none' is the random initialisation)."
Markdown(tables.transfer_sources(list(sources.models), sources.info, probe, ev.budgets).to_markdown(index=False))

# %% [markdown]
# ## Fine-tuning with few labels
#
# Every source is fine-tuned end to end at every label budget with the same
# schedule (a fixed number of steps, the labels-only arm's shifts, label
# smoothing and one-cycle learning rate), starting from the source's backbone
# and description with a fresh classifier. The label subsets are nested and
# class-balanced.

# %%
runs = tr.finetune_grid(ctx, sources, ev)
# paired comparisons with training from scratch on the same evaluation images
gain = tr.accuracy_gains(runs, n_resamples=B, seed=seed)
for run in runs.values():
    print(f"{run.source} with {run.labels} labels: validation {run.val_accuracy:.3f}, set 1 clean "
          f"{run.accuracy_rep1_clean:.3f}, {run.seconds:.0f} s")

# %% [markdown]
# ## Results: classification
#
# Left, a linear head on each frozen description; middle, the same networks
# fine-tuned end to end; right, the fine-tuned accuracy minus that of the network
# trained from scratch with the same labels, with paired bootstrap intervals
# (the same images scored by both models), so an interval that does not cross
# zero is a real effect at this sample size.

# %%
#| label: fig-transfer-accuracy
#| fig-cap: "Accuracy on the evaluation images against the number of labeled training images (log scale), per pretraining source, with 95 % bootstrap intervals. Left: linear head on the frozen pretrained description. Middle: the network fine-tuned end to end (same schedule for every source). Right: fine-tuned accuracy minus training from scratch with the same labels, in percentage points, with 95 % paired intervals; above zero, pretraining helped."
fig = plots.transfer_accuracy(ev.budgets, *tr.accuracy_curves(probe, runs, gain, ev.budgets), tables.SOURCE_NAMES,
                              tables.SOURCE_COLORS)
ctx.save_figure(fig, "05_accuracy")
plt.show()

# %%
#| label: tbl-transfer-accuracy
#| tbl-cap: "Accuracy (%) after fine-tuning, per source and number of labels, with 95 % bootstrap intervals, on the evaluation images (a fixed random sample of the unlabeled set with the answer key; without it, the clean images of representative set 1). Every run has the same schedule."
Markdown(tables.transfer_accuracy({k: run.accuracy for k, run in runs.items()}, ev.budgets).to_markdown(index=False))

# %% [markdown]
# ## Results: anomaly detection under transfer
#
# Does a source that contains the foreign classes make them easier or harder to
# flag? For every fine-tuned network, the anomaly score on representative set 1
# is the squared Mahalanobis distance of an image's ten-dimensional embedding to
# the nearest class Gaussian, the Gaussians (one shared covariance) fitted on the
# embeddings of the run's own labeled training images; the negative maximum
# softmax probability (MSP) is shown for comparison. ROC AUC is reported for all
# anomalies and, with the answer key, separately for the foreign and the
# corrupted ones (each against all normal images of the set). With 26 anomalies
# of each kind in the set, intervals are wide; differences between sources are
# compared with paired intervals below.

# %%
auroc_gain = tr.auroc_gains(runs, ev, n_resamples=B, seed=seed)

# %%
#| label: fig-transfer-ood
#| fig-cap: "Anomaly detection on representative set 1 after each kind of pretraining and fine-tuning; score = Mahalanobis distance to the nearest class Gaussian in the ten-dimensional embedding. Left: ROC AUC for all anomalies against the number of labels (log scale). Right: with all labels of the training split, ROC AUC for foreign articles and corrupted images separately (colours as on the left; 95 % bootstrap intervals)."
fig = plots.transfer_ood(ev.budgets, *tr.ood_curves(runs, ev.budgets), tables.SOURCE_NAMES, tables.SOURCE_COLORS)
ctx.save_figure(fig, "05_ood")
plt.show()

# %%
#| label: tbl-transfer-ood
#| tbl-cap: "ROC AUC on representative set 1 after fine-tuning with every label of the training split: Mahalanobis distance in the ten-dimensional embedding (all anomalies, foreign articles only, corrupted images only) and the negative maximum softmax probability (MSP, all anomalies); 95 % bootstrap intervals. The last column is the change of the foreign-article ROC AUC relative to training from scratch (paired interval)."
Markdown(tables.transfer_ood({k: run.auroc for k, run in runs.items()}, auroc_gain, ev.budgets[-1],
                             with_origin=ev.rep1_origin is not None).to_markdown(index=False))

# %% [markdown]
# ## What this says about transfer learning here
#
# The report's Discussion (`report/_transfer.qmd`) answers the three questions
# with the numbers of this run: which sources changed accuracy and anomaly
# detection measurably, in which direction, at which label budget.

# %%
seconds_total = time.perf_counter() - started
# the report's `transfer` variables are derived from these results (lib/render/variables.py)
ctx.ws.write_results("05_transfer_learning", tr.record(ctx, ev, foreign, digits, sources, probe, runs, gain,
                                                       auroc_gain, seconds_total))
print(f"notebook 05: {seconds_total:.0f} s")
