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
# Every model below is trained on the same split of the labeled set and
# evaluated on the same images in this run (`lib.experiments.classification`).
#
# **Protocol.** The project's model and the plain baseline train on all 2,000
# labels; set 1's clean images choose between the model's two variants
# (`lib.eval.protocol.choose_variant`). The other comparison systems train on a
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
from lib.data import ANOMALY
from lib.eval import metrics
from lib.experiments import classification as cls
from lib.notebook import setup
from lib.render import tables
from lib.results import plain

ctx = setup(profile, seed, device, workspace, data_path)
data, key, settings = ctx.data, ctx.answer_key, ctx.profile.classification
split = cls.split_labeled(data, settings.validation_fraction, seed)
eval_sets = cls.evaluation_sets(data, key, split)
print(f"labeled: {len(split.y_train)} for training, {len(split.y_val)} for validation; evaluated on {list(eval_sets)}")

# %% [markdown]
# ## The pretrained models of notebook 02
#
# The contrastive encoder (SimCLR on the unlabeled images, ten-dimensional
# embedding), the convolutional autoencoder and the variational autoencoder are
# loaded from their checkpoints; nothing is retrained here.

# %%
pretrained = cls.load_pretrained(ctx)

# %% [markdown]
# ## The models
#
# | model | labels | unlabeled images | idea |
# |---|---|---|---|
# | supervised CNN | training split | none | the same network trained from scratch on the labels, with augmentation |
# | autoencoder + linear head | training split | pretraining | a frozen autoencoder embedding, logistic regression on top |
# | VAE + linear head | training split | pretraining | logistic regression on the VAE's ten-dimensional mean (the public solution's classifier) |
# | contrastive + linear head | training split | pretraining | frozen contrastive embedding, logistic regression |
# | contrastive, fine-tuned | training split | pretraining | the contrastive encoder trained end to end on the labels |
# | auxiliary (multi-task) | training split | reconstruction | classification and reconstruction in one network, from scratch |
# | contrastive + FixMatch | training split | pretraining and fine-tuning | fine-tuned with confident pseudo-labels on the unlabeled images |
# | stacking ensemble | all labels | as its members | logistic regression on the supervised, contrastive and auxiliary models' probabilities |
# | plain CNN (baseline) | all 2,000 | none | six 3x3 convolutions, the first at full resolution, trained on every label (the reference every method must beat) |
# | ours, labels only | all 2,000 | none | the baseline's backbone with classifier, ten-dimensional description and decoder (`lib.nn.cnn`) |
# | ours, self-trained | all 2,000 | pseudo-labels | the same, also trained on the unlabeled images the first labels-only network labels confidently |
# | oracle | all 27,600 | all, labelled by the answer key | upper bound, not a candidate |
#
# **Why these losses.** Labels only: cross entropy on weakly augmented images
# (small shifts, zoom, rotation, exposure), the label-preserving transforms of
# notebook 02. FixMatch adds, for a batch of $\mu B$ unlabeled images $u$,
# $\frac{1}{\mu B}\sum_u \mathbb{1}[\max p(y\mid\alpha(u)) \ge \tau]\,
# \mathrm{CE}(\hat y(\alpha(u)), p(y\mid\mathcal{A}(u)))$, where $\alpha$ is the weak and
# $\mathcal{A}$ the strong augmentation and $\tau$ the confidence threshold: the model
# learns from its own confident predictions, and only where a strongly distorted
# view agrees with them. The auxiliary model adds $\lambda\,\lVert \hat x - x\rVert^2$:
# the reconstruction error of an image in $[0, 1]$ is about 0.01–0.03 per pixel,
# so $\lambda = 1$ makes the two losses of the same order at the start without
# letting reconstruction dominate once classification is learned.

# %%
trained = cls.train_networks(ctx, split, pretrained["contrastive"])
systems, stacking = cls.catalogue(trained, pretrained, split, len(data.unlabeled), seed)
baseline = cls.train_baseline(ctx)
systems.update(cls.baseline_and_oracle(ctx, split, baseline, pretrained["contrastive"]))

# %% [markdown]
# ## The project's model, with and without the unlabeled images
#
# The plain CNN's backbone with three heads (`lib.nn.cnn`): the
# classifier, the ten-dimensional description (trained through its own
# five-class head) and a decoder. Two variants with the same number of steps
# and every seed of `model.seeds`: on the 2,000 labels alone, and self-trained
# on the labels plus the unlabeled images that the first seed's labels-only
# network labels confidently. Set 1's clean images choose between them
# (`lib.eval.protocol.choose_variant`): the self-trained variant only if it
# wins by more than the seed spread.

# %%
model_settings = ctx.profile.model
runs, pseudo = cls.train_model_variants(ctx)
rep1_clean = data.rep1_y != ANOMALY
seed_sets = {"rep1_clean": (data.rep1_x[rep1_clean], data.rep1_y[rep1_clean]),
             **{name: value for name, value in eval_sets.items() if name != "validation"}}
per_seed = cls.seed_accuracy(runs, seed_sets)
choice = cls.choose_variant(per_seed)
first_seed = model_settings.seeds[0]
systems["model_labels_only"] = cls.network_system(runs["model_labels_only"][first_seed], len(data.labeled_y),
                                                  "none", 0)
systems["model_self_trained"] = cls.network_system(runs["model_self_trained"][first_seed], len(data.labeled_y),
                                                   "pseudo-labels", len(pseudo["index"]))
pseudo_accuracy = cls.pseudo_label_accuracy(key, pseudo)
print(f"chosen on set 1: {choice.chosen}; {len(pseudo['index']):,} pseudo-labels, {pseudo_accuracy} correct "
      "(answer key)")

# %%
#| label: fig-network
#| fig-cap: "The project's model. Solid arrows: the forward pass, from the image through the three stages of the backbone (two 3x3 convolutions each, widths and resolutions as labelled) to the pooled features and the three heads (the classifier, the ten-dimensional description with its own five-class head, and the decoder, which sees the description with the gradient stopped). Dashed arrows: the six parts of evidence the anomaly score can sum."
fig = plots.model_diagram(model_settings.network.widths, model_settings.network.description_dim)
ctx.save_figure(fig, "03_network")
plt.show()

# %%
#| label: tbl-model-seeds
#| tbl-cap: "The project's model over training seeds: accuracy (%) as mean ± standard deviation over the seeds, on set 1's clean images (which choose the variant), the unlabeled images (transductive) and set 2's clean images (inductive). Both variants take the same number of optimisation steps."
Markdown(tables.model_seeds(per_seed, choice.chosen).to_markdown(index=False))

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
rates = {name: cls.inference_rate(system.predict, data.unlabeled[:4096]) for name, system in systems.items()}

# %%
#| label: tbl-classification
#| tbl-cap: "Few-label classification, all systems on the same data in one run: accuracy (%) with 95 % bootstrap intervals on the 26,000 unlabeled images (answer key; transductive for the systems that saw them unlabeled in training) and on the clean images of representative set 2 (inductive); labels and unlabeled images used, parameters, CPU inference time (two threads, ms per 1,000 images) and training time (s). Ours: the first seed's network. The oracle is an upper bound trained with the answer key, not a candidate."
Markdown(tables.classification(cls.system_info(systems), plain(accuracy), rates, choice.chosen).to_markdown(index=False))

# %%
#| label: fig-classification-curves
#| fig-cap: "Training of the fine-tuned networks: validation loss (left) and validation accuracy (right) against optimisation steps. Pretrained encoders start far ahead of the network trained from scratch."
fig = plots.classification_curves({tables.system_name(name): result.history for name, result in trained.items()})
ctx.save_figure(fig, "03_classification_curves")
plt.show()

# %% [markdown]
# ## The chosen model
#
# Its confusion matrix shows which classes it mixes up; its calibration shows
# whether its confidence can be read as a probability (which matters because the
# complete model of notebook 04 combines it with an anomaly score).

# %%
#| label: fig-confusion
#| fig-cap: "Confusion matrix of the chosen model (rows: true class, columns: predicted, % of the true class) on the unlabeled images (answer key; without it, on the clean images of representative set 2). The remaining errors are among the footwear classes."
target = cls.reference_set(eval_sets)
y_true, chosen_probabilities = eval_sets[target][1], probabilities[choice.chosen][target]
fig = plots.confusion(metrics.confusion_matrix(y_true, chosen_probabilities.argmax(1), 5), figsize=(4.6, 3.7))
ctx.save_figure(fig, "03_confusion")
plt.show()

# %%
#| label: fig-calibration
#| fig-cap: "Calibration of the chosen model on the same images. Left: accuracy against mean confidence in 15 equal-width bins (the diagonal is perfect calibration). Right: how many images fall in each bin (log scale); nearly all are in the top bin."
ece = metrics.metric_with_ci(metrics.expected_calibration_error, chosen_probabilities, y_true,
                             n_resamples=ctx.profile.bootstrap, seed=seed)
fig = plots.calibration(metrics.reliability_diagram(chosen_probabilities, y_true), ece["value"])
ctx.save_figure(fig, "03_calibration")
plt.show()

# %% [markdown]
# ## Label efficiency
#
# How many labels does each approach need? The supervised CNN, the fine-tuned
# contrastive encoder and FixMatch are retrained on balanced subsets of the
# training split with shorter schedules than the main runs (the full schedules
# at every budget do not fit the time budget of the `cpu` profile); the points at
# the full split are the main runs. Below the full split the curves are
# therefore lower bounds of what each method reaches.

# %%
#| label: fig-label-efficiency
#| fig-cap: "Label efficiency: accuracy on the unlabeled images (answer key; without it, set 2's clean images) against the number of labels used for training (log scale), for the network trained from scratch and the contrastive encoder fine-tuned without and with FixMatch; the gap between the curves is what pretraining on the unlabeled images adds at each label budget."
curve = cls.label_efficiency(ctx, split, trained, pretrained["contrastive"], eval_sets[target])
fig = plots.label_efficiency(tables.label_efficiency_curve(curve))
ctx.save_figure(fig, "03_label_efficiency")
plt.show()

# %% [markdown]
# ## What the later notebooks use
#
# The complete model (notebook 04) uses the chosen variant's networks (one per
# seed; the first seed's is deployed); its accuracy is the headline number of
# task 3, with the spread over seeds beside it.

# %%
ctx.ws.write_results("03_classification", cls.record(ctx, split, systems, accuracy, rates, choice, per_seed, runs,
                                                     baseline, pseudo, pseudo_accuracy, ece, curve, target))

# %% [markdown]
# ## Every setting of this run
#
# The whole configuration of the run (`lib/config.py`), for the report's
# reproducibility appendix.

# %%
#| label: tbl-settings
#| tbl-cap: "Every setting of the run, read from the one configuration (lib/config.py), stage by stage: each setting's name and value. Augmentations list their strengths: shift as a fraction of the image side, zoom range, log aspect change, rotation in degrees, flip probability, gain and log-gamma ranges, noise standard deviation (intensity in [0, 1]), erasing probability and size range."
Markdown(pd.DataFrame(settings_table(ctx.profile)).to_markdown(index=False))
