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
# # 03 Few-label classification
#
# Task 3: classify the remaining data into the five classes with only the 2,000
# labels, using the unlabeled images, and measure by how much each idea helps.
# Every model below is evaluated on the same images in this run.
#
# **Protocol.** The project's model and the plain baseline train on all 2,000
# labels; set 1's clean images choose the arm of the model
# (`lib.eval.protocol.choose_variant`). The comparison systems train on a
# stratified four-fifths of the labels (`classification.validation_fraction`);
# the held-out fifth fits the stacking meta-learner and chooses nothing else.
# The final numbers are measured on the 26,000 unlabeled images (classes from
# the answer key, read only by evaluation code) and on the clean part of
# representative set 2. The oracle is trained with the answer key's labels: an
# upper bound evaluated on set 2, never a candidate.

# %% tags=["parameters"]
profile = None  # "smoke" | "cpu" | "gpu"; None: the default for the device
seed = 0
device = None  # "cpu" | "cuda"; None: CUDA when available
workspace = None  # folder for figures/, results/, report/, checkpoints/; None: the project
data_path = None  # the original assignment pickle; None: ASSIGNMENT_DATA or the replica

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown

from lib import plots
from lib.config import settings_table
from lib.eval import metrics
from lib.experiments import classification as cls
from lib.experiments import model as ours
from lib.nn.infer import images_per_second
from lib.notebook import setup
from lib.render import tables
from lib.results import plain

ctx = setup(profile, seed, device, workspace, data_path)
data, key, settings = ctx.data, ctx.answer_key, ctx.profile.classification
split = cls.split_labeled(data, settings.validation_fraction, seed)
eval_sets = cls.evaluation_sets(data, key, split)
print(f"labeled: {len(split.y_train)} for training, {len(split.y_val)} for validation; evaluated on {list(eval_sets)}")

# %% [markdown]
# ## The project's model: what the unlabeled images add
#
# One network (`lib.nn.cnn`): six 3x3 convolutions, the first at full 32x32
# resolution, with three heads: the classifier, the ten-dimensional
# description (trained through its own five-class head) and a decoder that
# draws the image from the description with the gradient stopped. It is
# trained in two arms that differ only in what they learn from
# (`lib.experiments.model`), each with every seed:
#
# - **labels only**: the 2,000 labels, the plain CNN's recipe trained twice as
#   long (at 30 epochs it was still improving);
# - **FixMatch**: each seed's labels-only network continued on the 26,000
#   unlabeled images. Every step takes a batch of labels and a larger batch of
#   unlabeled images; an exponential moving average (EMA) of the network's
#   weights labels a weakly augmented view (a shift) of each unlabeled image,
#   and where its confidence reaches the threshold the network learns that
#   label on a strongly augmented view (rotation, zoom, stretch, exposure,
#   noise, an erased square). Label smoothing caps the labels-only network's
#   confidence near 0.92, so the threshold sits below it. The EMA network is
#   the one evaluated and deployed.
#
# Set 1's clean images choose the arm: FixMatch only if its mean over seeds
# beats the labels-only arm by more than the larger seed standard deviation.
# The oracle continues the first labels-only network with the true classes of
# all 28,000 images. Both arms record their accuracy as they train, on set 1's
# clean images and on a fixed sample of the unlabeled images (answer key):
# the curves show whether each arm has converged; they choose nothing.

# %%
rep1_clean = cls.clean_set1(data)
arms = ours.train_arms(ctx, ours.curve_sets(ctx, rep1_clean))
seed_sets = {"rep1_clean": rep1_clean, **{n: v for n, v in eval_sets.items() if n != "validation"}}
predicted = ours.predictions(arms, seed_sets)
per_seed = ours.seed_accuracy(predicted, seed_sets)
choice = ours.choose(per_seed)
gains = ours.gains(predicted, seed_sets, ctx.profile.bootstrap, seed)
curves = ours.learning_curves(arms)
pseudo_labels = ours.pseudo_labels(arms, data.unlabeled, key, ctx.profile.model.fixmatch.confidence)
print(f"chosen on set 1: {choice.chosen}; FixMatch teacher's pseudo-labels on the unlabeled images: {pseudo_labels}")

# %%
#| label: fig-learning-curves
#| fig-cap: "Learning curves of the model's arms, one line per seed: accuracy (%) on set 1's clean images and on a fixed sample of the unlabeled images (answer key) against passes over the labels (left) and over the unlabeled images (right; pass 0 is the labels-only network FixMatch continues). The left axis starts at 90 %; the right one spans only the range of its curves. A flat end means the arm has converged on its schedule."
fig = plots.learning_curves(curves, {"labels_only": "labels only", "fixmatch": "FixMatch"},
                            {"labels_only": "passes over the 2,000 labels", "fixmatch": "passes over the 26,000 unlabeled images"},
                            {"rep1_clean": "set 1, clean", "unlabeled": "unlabeled sample (answer key)"})
ctx.save_figure(fig, "03_learning_curves")
plt.show()

# %%
#| label: fig-network
#| fig-cap: "The project's network. Solid arrows: the forward pass, from the image through the three stages of the backbone (two 3x3 convolutions each, widths and resolutions as labelled) to the pooled features and the three heads (the classifier, the ten-dimensional description with its own five-class head, and the decoder, which sees the description). Dotted: the gradient stopped before the decoder; dashed: the evidence the anomaly score can sum."
fig = plots.model_diagram(ctx.profile.model.network.widths, ctx.profile.model.network.description_dim)
ctx.save_figure(fig, "03_network")
plt.show()

# %%
#| label: tbl-recipes
#| tbl-cap: "The training recipes, one column per run: data, passes over each image (FixMatch: over the unlabeled images), batch (FixMatch: unlabeled images per step), peak learning rate, share of the steps spent warming up, label smoothing, augmented views and targets. FixMatch continues each seed's labels-only network, each step taking a batch of labels and a larger batch of unlabeled images (first row); the oracle continues the first seed's with the true classes of all 28,000 images. Every run uses AdamW with cosine decay and label smoothing 0.1."
Markdown(tables.recipes(ctx.profile).to_markdown(index=False, disable_numparse=True))

# %%
#| label: tbl-model-arms
#| tbl-cap: "The model's two arms, every seed: accuracy (%) as mean ± standard deviation over the seeds on set 1's clean images (which choose the arm), the 26,000 unlabeled images (answer key) and set 2's clean images; Δ 26,000: the difference from the labels-only arm on the 26,000 (seed means, points) with its 95 % paired bootstrap interval; passes over each labeled / unlabeled image in training, counting those of the labels-only network FixMatch continues; training seconds per seed, on this run's machine."
budgets = ours.budgets(arms, ctx.profile.model, len(data.labeled_y), len(data.unlabeled))
Markdown(tables.model_arms(per_seed, plain(gains), choice.chosen, budgets).to_markdown(index=False))

# %% [markdown]
# ## The comparison systems
#
# The systems of related work, sized to what they must show: linear heads on
# the frozen descriptions of notebook 02 (autoencoder, VAE, contrastive), the
# contrastive encoder fine-tuned with a cosine head (without and with FixMatch),
# a network trained from scratch with and without a reconstruction task, a
# stacking ensemble, and the plain CNN baseline on all 2,000 labels.
#
# **Why these losses.** Labels only: cross entropy on weakly augmented images
# (small shifts, zoom, rotation, exposure). FixMatch adds, for a batch of
# $\mu B$ unlabeled images $u$,
# $\frac{1}{\mu B}\sum_u \mathbb{1}[\max p(y\mid\alpha(u)) \ge \tau]\,
# \mathrm{CE}(\hat y(\alpha(u)), p(y\mid\mathcal{A}(u)))$, where $\alpha$ is the weak and
# $\mathcal{A}$ the strong augmentation and $\tau$ the confidence threshold. The
# auxiliary model adds $\lambda\,\lVert \hat x - x\rVert^2$.

# %%
pretrained = cls.load_pretrained(ctx)
trained = cls.train_networks(ctx, split, pretrained["contrastive"])
systems, stacking = cls.catalogue(trained, pretrained, split, len(data.unlabeled), seed)
baseline = cls.train_baseline(ctx)
systems.update(cls.reference_systems(ctx, baseline, arms, choice.chosen))

# %% [markdown]
# ## Results
#
# Every system on the same images. The stacking ensemble reports the
# meta-learner's cross-validated accuracy on the validation split, the only data
# it was trained on; systems trained on all 2,000 labels have no validation
# number. The other columns carry 95 % bootstrap intervals; for our model they
# are the first seed's (the deployed network).

# %%
probabilities, accuracy = cls.evaluate(systems, eval_sets, ctx.profile.bootstrap, seed)
cls.no_validation_number(accuracy, stacking)
rates = {name: images_per_second(system.predict, data.unlabeled[:2048]) for name, system in systems.items()}
versus_baseline = cls.gain_over_baseline(probabilities, eval_sets, ctx.profile.bootstrap, seed)

# %%
#| label: tbl-classification
#| tbl-cap: "Few-label classification, all systems on the same data in one run: accuracy (%) with 95 % bootstrap intervals on the 26,000 unlabeled images (answer key; transductive for the systems that saw them unlabeled in training) and on the clean images of representative set 2 (inductive); labels and unlabeled images used, parameters, CPU time of each system's own prediction function in eager PyTorch (two threads, ms per 1,000 images; not the exported model that notebook 04 times) and training time (s). Ours: the first seed's network of the chosen arm. The comparison systems train on four-fifths of the labels, the model, the baseline and the oracle on all of them. The oracle is an upper bound trained with the answer key, not a candidate."
Markdown(tables.classification(cls.system_info(systems), plain(accuracy), rates, "model").to_markdown(index=False))

# %%
#| label: fig-classification-curves
#| fig-cap: "Training of the fine-tuned comparison networks: validation loss (left) and validation accuracy (right) against optimisation steps, for the networks that start from the contrastive encoder and the ones trained from scratch."
fig = plots.classification_curves({tables.system_name(name): result.history for name, result in trained.items()})
ctx.save_figure(fig, "03_classification_curves")
plt.show()

# %% [markdown]
# ## The chosen model
#
# Its confusion matrix shows which classes it mixes up; its calibration shows
# whether its confidence can be read as a probability.

# %%
#| label: fig-confusion
#| fig-cap: "Confusion matrix of the chosen model (rows: true class, columns: predicted, % of the true class) on the unlabeled images (answer key; without it, on the clean images of representative set 2). The remaining errors are among the footwear classes."
target = cls.reference_set(eval_sets)
y_true, model_probabilities = eval_sets[target][1], probabilities["model"][target]
fig = plots.confusion(metrics.confusion_matrix(y_true, model_probabilities.argmax(1), 5), figsize=(4.6, 3.7))
ctx.save_figure(fig, "03_confusion")
plt.show()

# %%
#| label: fig-calibration
#| fig-cap: "Calibration of the chosen model on the same images. Left: accuracy against mean confidence in 15 equal-width bins (the diagonal is perfect calibration). Right: how many images fall in each bin (log scale); nearly all are in the top bin."
ece = metrics.metric_with_ci(metrics.expected_calibration_error, model_probabilities, y_true,
                             n_resamples=ctx.profile.bootstrap, seed=seed)
fig = plots.calibration(metrics.reliability_diagram(model_probabilities, y_true), ece["value"])
ctx.save_figure(fig, "03_calibration")
plt.show()

# %% [markdown]
# ## Label efficiency
#
# How many labels does each approach need? The comparison network from
# scratch, the fine-tuned contrastive encoder and FixMatch are retrained on
# balanced subsets of the training split with shorter schedules than the main
# runs; the points at the full split are the main runs. Below the full split the
# curves are therefore lower bounds of what each method reaches.

# %%
#| label: fig-label-efficiency
#| fig-cap: "Label efficiency: accuracy on the unlabeled images (answer key; without it, set 2's clean images) against the number of labels used for training (log scale), for the comparison network trained from scratch and the contrastive encoder fine-tuned without and with FixMatch."
curve = cls.label_efficiency(ctx, split, trained, pretrained["contrastive"], eval_sets[target])
fig = plots.label_efficiency(tables.label_efficiency_curve(curve))
ctx.save_figure(fig, "03_label_efficiency")
plt.show()

# %% [markdown]
# ## What the later notebooks use
#
# The complete model (notebook 04) uses the chosen arm's networks (one per
# seed; the first seed's is deployed); its accuracy is the headline number of
# task 3, with the spread over seeds beside it.

# %%
ctx.ws.write_results("03_classification", cls.record(
    ctx, split, systems, accuracy, rates, choice, per_seed, gains, budgets, curves, pseudo_labels, arms, baseline,
    versus_baseline, ece, curve, target))

# %% [markdown]
# ## Every setting of this run
#
# The whole configuration of the run (`lib/config.py`), for the report's
# reproducibility appendix.

# %%
#| label: tbl-settings
#| tbl-cap: "Every setting of the run, read from the one configuration (lib/config.py), stage by stage: each setting's name and value. Augmentations list their strengths: shift as a fraction of the image side, zoom range, log aspect change, rotation in degrees, flip probability, gain and log-gamma ranges, noise standard deviation (intensity in [0, 1]), erasing probability and size range."
Markdown(pd.DataFrame(settings_table(ctx.profile)).to_markdown(index=False, disable_numparse=True))
