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
# **Protocol.** The labeled set is split once, stratified, into training and
# validation parts (`classification.validation_fraction`). The validation split
# chooses the model (`lib.eval.protocol.choose_classifier`) and fits the stacking
# meta-learner; nothing else does. The final numbers are measured on the 26,000
# unlabeled images (classes from the answer key, read only by evaluation code)
# and on the clean part of representative set 2. The oracle is trained with the
# answer key's labels: an upper bound evaluated on set 2, never a candidate.

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
from lib.eval import metrics, protocol
from lib.experiments import classification as cls
from lib.experiments.names import BASELINE, ORACLE, STACKING, SUPERVISED
from lib.nn.train import load_trained
from lib.notebook import setup

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
pretrained = {name: load_trained(ctx.ws.checkpoints(ctx.profile.name, name), ctx.device)
              for name in ("contrastive", "conv_ae", "vae")}
architecture = pretrained["contrastive"].config

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
trained = cls.train_networks(ctx, split, pretrained["contrastive"], architecture)
systems, stacking = cls.catalogue(trained, pretrained, split, len(data.unlabeled), seed)
systems[BASELINE] = cls.baseline_system(cls.train_baseline(ctx), len(data.labeled_y))
if key is not None:
    oracle = cls.train_oracle(ctx, split, pretrained["contrastive"], architecture)
    systems[ORACLE] = cls.System(cls.network_probabilities(oracle), len(split.y_train) + len(data.unlabeled),
                                     "all, with true labels", systems[SUPERVISED].parameters, oracle.seconds)

# %% [markdown]
# ## Results
#
# Validation accuracy chooses the best network; the stacking ensemble reports
# the meta-learner's cross-validated accuracy on the validation split, the only
# data it was trained on. The other columns are measured once, after the choice,
# with 95 % bootstrap intervals.

# %%
probabilities, accuracy = cls.evaluate(systems, eval_sets, ctx.profile.bootstrap, seed)
accuracy[STACKING]["validation"] = {"value": stacking.cv_accuracy, "ci": None}
accuracy[BASELINE]["validation"] = {"value": None, "ci": None}  # trained on it: no validation number
chosen = protocol.choose_classifier(accuracy, list(cls.NETWORKS))
rates = {name: cls.inference_rate(system.predict, data.unlabeled[:4096]) for name, system in systems.items()}
print("chosen on validation:", chosen)

# %%
#| label: tbl-classification
#| tbl-cap: "Few-label classification, all models on the same data in one run: accuracy (%) on the validation split (a fifth of the labeled images; it chooses among the networks), and with 95 % bootstrap intervals on the 26,000 unlabeled images (answer key; seen unlabeled in training, so transductive) and the clean images of representative set 2 (inductive); labels and unlabeled images used, parameters, CPU inference time (two threads) and training time. The oracle is an upper bound trained with the answer key, not a candidate."
Markdown(cls.comparison_table(systems, accuracy, rates, chosen).to_markdown(index=False))

# %%
#| label: fig-classification-curves
#| fig-cap: "Training of the fine-tuned networks: validation loss (left) and validation accuracy (right) against optimisation steps. Pretrained encoders start far ahead of the network trained from scratch."
fig = plots.classification_curves({name: result.history for name, result in trained.items()})
ctx.ws.save_figure(fig, "03_classification_curves")
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
target = "unlabeled" if "unlabeled" in eval_sets else "rep2_clean"
y_true, chosen_probabilities = eval_sets[target][1], probabilities[chosen][target]
fig = plots.confusion(metrics.confusion_matrix(y_true, chosen_probabilities.argmax(1), 5))
ctx.ws.save_figure(fig, "03_confusion")
plt.show()

# %%
#| label: fig-calibration
#| fig-cap: "Calibration of the chosen model on the same images. Left: accuracy against mean confidence in 15 equal-width bins (the diagonal is perfect calibration). Right: how many images fall in each bin (log scale); nearly all are in the top bin."
ece = metrics.metric_with_ci(metrics.expected_calibration_error, chosen_probabilities, y_true,
                             n_resamples=ctx.profile.bootstrap, seed=seed)
fig = plots.calibration(metrics.reliability_diagram(chosen_probabilities, y_true), ece["value"])
ctx.ws.save_figure(fig, "03_calibration")
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
#| fig-cap: "Label efficiency: accuracy on the unlabeled images (answer key; without it, set 2's clean images) against the number of labels used for training (log scale). Pretraining on the unlabeled images replaces most of the labels."
curve = cls.label_efficiency(ctx, split, trained, pretrained["contrastive"], architecture, eval_sets[target])
fig = plots.label_efficiency(curve)
ctx.ws.save_figure(fig, "03_label_efficiency")
plt.show()

# %% [markdown]
# ## What the later notebooks use
#
# The complete model (notebook 04) uses the chosen network; its accuracy is the
# headline number of task 3. Notebook 04 reads its folder from
# `results/03_classification.json`.

# %%
summary = {"inference.images_per_second_cpu": rates[chosen]}
for set_name in ("unlabeled", "rep2_clean"):
    if set_name in eval_sets:
        summary[f"classification.accuracy.{set_name}"] = accuracy[chosen][set_name]["value"]
        summary[f"classification.accuracy.{set_name}_ci"] = accuracy[chosen][set_name]["ci"]
for set_name in ("unlabeled", "rep2_clean"):
    if set_name in eval_sets:
        summary[f"baseline.accuracy.{set_name}"] = accuracy[BASELINE][set_name]["value"]
        summary[f"baseline.accuracy.{set_name}_ci"] = accuracy[BASELINE][set_name]["ci"]
if key is not None:
    summary["classification.accuracy.oracle_rep2_clean"] = accuracy[ORACLE]["rep2_clean"]["value"]
    summary["classification.accuracy.oracle_rep2_clean_ci"] = accuracy[ORACLE]["rep2_clean"]["ci"]
ctx.ws.update_summary(summary)
ctx.ws.write_results("03_classification", {
    "chosen_model": chosen, "final_network": chosen, "final_network_checkpoint": cls.NETWORKS[chosen],
    "split": {"train": len(split.y_train), "validation": len(split.y_val), "seed": seed},
    "settings": {"fixmatch_steps": settings.fixmatch_steps, "unlabeled_ratio": settings.unlabeled_ratio,
                 "batch": settings.batch},
    "reference_set": target, "accuracy": accuracy, "images_per_second_cpu": rates, "ece": ece,
    "label_efficiency": curve.to_dict(orient="records"),
})

# %% [markdown]
# ## Every setting of this run
#
# The whole configuration of the run (`lib/config.py`), for the report's
# reproducibility appendix.

# %%
#| label: tbl-settings
#| tbl-cap: "Every setting of the run, read from the one configuration (lib/config.py), stage by stage: each setting's name and value. Augmentations list their strengths: shift as a fraction of the image side, zoom range, log aspect change, rotation in degrees, flip probability, gain and log-gamma ranges, noise standard deviation (intensity in [0, 1]), erasing probability and size range."
Markdown(pd.DataFrame(settings_table(ctx.profile)).to_markdown(index=False))
