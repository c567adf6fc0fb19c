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
# evaluated on the same images in this run.
#
# **Protocol.** The labeled set is split once, stratified, into 80 % for training
# and 20 % for validation. The validation split chooses the best model and the
# stacking meta-learner; nothing else does. The final numbers are measured on the
# 26,000 unlabeled images (classes from the answer key, read only here, by
# evaluation code) and on the clean part of representative set 2. The oracle is
# trained with the answer key's labels: it is an upper bound, never a candidate.

# %% tags=["parameters"]
profile = None  # "smoke" | "cpu" | "gpu"; None: the default for the device
seed = 0
device = None  # "cpu" | "cuda"; None: CUDA when available
workspace = None  # folder for figures/, results/, report/, checkpoints/; None: the project
data_path = None  # the original assignment pickle; None: ASSIGNMENT_DATA or the replica

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown

from lib.experiments import classification as cls
from lib.eval import metrics
from lib.data import ANOMALY, CLASS_NAMES
from lib.nn.finetune import FinetuneConfig, embed, fit_classifier, predict_logits
from lib.nn.models import count_parameters, encode
from lib.notebook import setup
from lib.nn.train import load_trained

ctx = setup(profile, seed, device, workspace, data_path)
data, key, settings = ctx.data, ctx.answer_key, ctx.profile.classification
checkpoints = lambda name: ctx.ws.checkpoints(ctx.profile.name, name)  # noqa: E731

train_idx, val_idx = cls.stratified_split(data.labeled_y, 0.2, seed)
x_train, y_train = data.labeled_x[train_idx], data.labeled_y[train_idx]
x_val, y_val = data.labeled_x[val_idx], data.labeled_y[val_idx]
clean2 = data.rep2_y != ANOMALY
eval_sets = {"validation": (x_val, y_val), "rep2_clean": (data.rep2_x[clean2], data.rep2_y[clean2])}
if key is not None:
    eval_sets["unlabeled"] = (data.unlabeled, key["unlabeled_class"])
else:
    print("original data: no answer key, so accuracy on the unlabeled images is skipped")
print(f"labeled: {len(train_idx)} for training, {len(val_idx)} for validation")

# %% [markdown]
# ## The pretrained models of notebook 02
#
# The contrastive encoder (SimCLR on the unlabeled images, ten-dimensional
# embedding), the convolutional autoencoder and the variational autoencoder are
# loaded from their checkpoints; nothing is retrained here.

# %%
contrastive = load_trained(checkpoints("contrastive"), ctx.device)
autoencoder = load_trained(checkpoints("conv_ae"), ctx.device)
vae = load_trained(checkpoints("vae"), ctx.device)
architecture = contrastive.config
print("contrastive model:", architecture)

# %% [markdown]
# ## The models
#
# | model | labels | unlabeled images | idea |
# |---|---|---|---|
# | supervised CNN | 1,600 | none | the same network trained from scratch on the labels, with augmentation |
# | autoencoder + linear head | 1,600 | pretraining | a frozen autoencoder embedding, logistic regression on top |
# | VAE + linear head | 1,600 | pretraining | the published solution: logistic regression on the VAE's ten-dimensional mean |
# | contrastive + linear head | 1,600 | pretraining | frozen contrastive embedding, logistic regression |
# | contrastive, fine-tuned | 1,600 | pretraining | the contrastive encoder trained end to end on the labels |
# | auxiliary (multi-task) | 1,600 | reconstruction | classification and reconstruction in one network, from scratch |
# | contrastive + FixMatch | 1,600 | pretraining and fine-tuning | fine-tuned with confident pseudo-labels on the unlabeled images |
# | stacking ensemble | 1,600 + 400 | as its members | logistic regression on the supervised, contrastive and auxiliary models' probabilities |
# | oracle | all 27,600 | all, labelled by the answer key | upper bound, not a candidate |
#
# **Why these losses.** Labels only: cross entropy on weakly augmented images
# (small shifts, zoom, rotation, exposure), the label-preserving transforms of
# notebook 02. FixMatch adds, for a batch of $\mu B$ unlabeled images $u$,
# $\frac{1}{\mu B}\sum_u \mathbb{1}[\max p(y\mid\alpha(u)) \ge \tau]\,
# \mathrm{CE}(\hat y(\alpha(u)), p(y\mid\mathcal{A}(u)))$, where $\alpha$ is the weak and
# $\mathcal{A}$ the strong augmentation and $\tau = 0.95$: the model learns from its own
# confident predictions, and only where a strongly distorted view agrees with them.
# This uses the cluster structure of the unlabeled data (the decision boundary
# is pushed into low-density regions) that pretraining has already made visible.
# The auxiliary model adds $\lambda\,\lVert \hat x - x\rVert^2$ with $\lambda = 1$:
# the reconstruction error of an image in $[0, 1]$ is about 0.01–0.03 per pixel,
# so this weight makes the two losses of the same order at the start without
# letting reconstruction dominate once classification is learned.

# %%
trained = {}


def run(name, config, pretrained=None, x=x_train, y=y_train, unlabeled=None):
    result = fit_classifier(config, architecture, x, y, x_val, y_val, checkpoints(name), unlabeled=unlabeled,
                            pretrained=pretrained, device=ctx.device)
    trained[name] = result
    return result


base = FinetuneConfig(steps=settings.supervised_steps, eval_every=settings.eval_every, seed=seed)
supervised = run("clf_supervised", base)
finetuned = run("clf_contrastive_finetuned", replace(base, backbone_lr_factor=0.3),
                pretrained=contrastive)
auxiliary = run("clf_auxiliary", replace(base, recon_weight=1.0), unlabeled=data.unlabeled)
fixmatch_config = replace(base, steps=settings.fixmatch_steps, backbone_lr_factor=0.3,
                          unlabeled_ratio=settings.unlabeled_ratio)
fixmatch = run("clf_contrastive_fixmatch", fixmatch_config, pretrained=contrastive, unlabeled=data.unlabeled)

# %% [markdown]
# Linear heads on frozen embeddings (autoencoder, VAE, contrastive) are fitted by
# logistic regression on the standardised ten-dimensional codes of the training split.

# %%
def probe(model):
    head = cls.linear_probe(encode(model, x_train), y_train, seed)
    return lambda images: head.predict_proba(encode(model, images))


def network(result):
    return lambda images: cls.softmax(predict_logits(result.model, images))


n_labels, pretraining = len(train_idx), f"{len(data.unlabeled):,} (pretraining)"
FOLDERS = {"supervised CNN": "clf_supervised", "contrastive, fine-tuned": "clf_contrastive_finetuned",
           "auxiliary (classification + reconstruction)": "clf_auxiliary",
           "contrastive + FixMatch": "clf_contrastive_fixmatch"}
catalogue = {  # name -> (predict probabilities, labels used, unlabeled images used, parameters, training seconds)
    "supervised CNN": (network(supervised), n_labels, "none", count_parameters(supervised.model), supervised.seconds),
    "autoencoder + linear head": (probe(autoencoder), n_labels, pretraining, count_parameters(autoencoder), None),
    "VAE + linear head (published solution)": (probe(vae), n_labels, pretraining, count_parameters(vae), None),
    "contrastive + linear head": (probe(contrastive), n_labels, pretraining, count_parameters(contrastive), None),
    "contrastive, fine-tuned": (network(finetuned), n_labels, pretraining, count_parameters(finetuned.model),
                                finetuned.seconds),
    "auxiliary (classification + reconstruction)": (network(auxiliary), n_labels, f"{len(data.unlabeled):,}",
                                                    count_parameters(auxiliary.model), auxiliary.seconds),
    "contrastive + FixMatch": (network(fixmatch), n_labels, f"{len(data.unlabeled):,} (pretraining, pseudo-labels)",
                               count_parameters(fixmatch.model), fixmatch.seconds),
}
members = ["supervised CNN", "contrastive + linear head", "auxiliary (classification + reconstruction)"]
stacking = cls.Stacking.fit([catalogue[m][0](x_val) for m in members], y_val, seed)
catalogue["stacking ensemble"] = (
    lambda images: stacking.predict_proba([catalogue[m][0](images) for m in members]),
    n_labels + len(val_idx), "as its members", sum(catalogue[m][3] for m in members),
    sum(catalogue[m][4] or 0 for m in members))

# %% [markdown]
# The oracle: the same architecture, initialised from the contrastive encoder,
# trained with every label (the labeled set and the unlabeled set labelled by the
# answer key). It shows what the architecture can do with full supervision.

# %%
ORACLE = "oracle (answer-key labels)"
if key is not None:
    oracle = run("clf_oracle", replace(base, steps=settings.oracle_steps, batch_size=128,
                                                  backbone_lr_factor=0.3),
                 pretrained=contrastive, x=np.concatenate([x_train, data.unlabeled]),
                 y=np.concatenate([y_train, key["unlabeled_class"]]))
    catalogue[ORACLE] = (network(oracle), n_labels + len(data.unlabeled), "all, with true labels",
                         count_parameters(oracle.model), oracle.seconds)

# %% [markdown]
# ## Results
#
# Validation accuracy (400 held-out labeled images) chooses the best model; for
# the stacking ensemble it is the meta-learner's cross-validated accuracy on the
# validation split, the only data it was trained on. The other columns are
# measured once, after the choice, with 95 % bootstrap intervals.

# %%
probabilities = {name: {s: entry[0](x) for s, (x, _) in eval_sets.items()} for name, entry in catalogue.items()}
accuracy = {name: {s: metrics.metric_with_ci(metrics.accuracy, y, probabilities[name][s].argmax(1),
                                             n_resamples=ctx.profile.bootstrap, seed=seed)
                   for s, (_, y) in eval_sets.items()} for name in catalogue}
accuracy["stacking ensemble"]["validation"] = {"value": stacking.cv_accuracy, "ci": None}
validation = {name: accuracy[name]["validation"]["value"] for name in catalogue if name != ORACLE}
best_name = max(validation, key=validation.get)
print("chosen on validation:", best_name)
rates = {name: cls.inference_rate(entry[0], data.unlabeled[:4096]) for name, entry in catalogue.items()}

# %%
#| label: tbl-classification
#| tbl-cap: "Few-label classification, all models on the same data in one run: accuracy (%) on the validation split (a fifth of the labeled images; it chooses the model), and with 95 % bootstrap intervals on the 26,000 unlabeled images (answer key) and the clean images of representative set 2; labels and unlabeled images used, parameters, CPU inference time (two threads) and training time. The oracle is an upper bound trained with the answer key, not a candidate."
def cell(result, interval=True):
    if result["ci"] is None:
        return f"{100 * result['value']:.1f} (CV)"
    if not interval:
        return f"{100 * result['value']:.1f}"
    low, high = result["ci"]
    return f"{100 * result['value']:.2f} [{100 * low:.1f}, {100 * high:.1f}]"


table = pd.DataFrame([{
    "model": name + (" (chosen)" if name == best_name else ""),
    **{column: cell(accuracy[name][s], interval=s != "validation") for s, column in
       (("validation", "validation"), ("unlabeled", "unlabeled 26,000"), ("rep2_clean", "set 2 clean"))
       if s in eval_sets},
    "labels": f"{entry[1]:,}", "unlabeled used": entry[2], "parameters": f"{entry[3]:,}",
    "ms / 1k images": f"{1e6 / rates[name]:.0f}", "training s": "-" if entry[4] is None else f"{entry[4]:.0f}",
} for name, entry in catalogue.items()])
Markdown(table.to_markdown(index=False))

# %%
#| label: fig-classification-curves
#| fig-cap: "Training of the fine-tuned networks: validation loss (left) and validation accuracy (right) against optimisation steps. Pretrained encoders start far ahead of the network trained from scratch."
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
for name, result in trained.items():
    steps = [h["step"] for h in result.history]
    left.plot(steps, [h["val_loss"] for h in result.history], marker="o", ms=3, label=name.removeprefix("clf_"))
    right.plot(steps, [100 * h["val_accuracy"] for h in result.history], marker="o", ms=3)
left.set_xlabel("optimisation step"); left.set_ylabel("validation cross entropy (nats)"); left.set_yscale("log")
right.set_xlabel("optimisation step"); right.set_ylabel("validation accuracy (%)")
right.set_ylim(max(50, right.get_ylim()[0]), 100)
left.legend(fontsize=8)
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
y_true = eval_sets[target][1]
counts = metrics.confusion_matrix(y_true, probabilities[best_name][target].argmax(1), 5)
share = 100 * counts / counts.sum(axis=1, keepdims=True)
fig, ax = plt.subplots(figsize=(5.8, 4.6))
sns.heatmap(share, annot=True, fmt=".1f", cmap="Blues", xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, ax=ax,
            cbar_kws={"label": "% of true class"}, vmin=0, vmax=100)
ax.set_xlabel("predicted class"); ax.set_ylabel("true class")
ctx.ws.save_figure(fig, "03_confusion")
plt.show()

# %%
#| label: fig-calibration
#| fig-cap: "Calibration of the chosen model on the same images. Left: accuracy against mean confidence in 15 equal-width bins (the diagonal is perfect calibration). Right: how many images fall in each bin (log scale); nearly all are in the top bin."
probs = probabilities[best_name][target]
ece = metrics.metric_with_ci(metrics.expected_calibration_error, probs, y_true, n_resamples=ctx.profile.bootstrap,
                             seed=seed)
diagram = metrics.reliability_diagram(probs, y_true)
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
centres = (diagram["edges"][:-1] + diagram["edges"][1:]) / 2
filled = diagram["count"] > 0
left.bar(centres[filled], diagram["accuracy"][filled], width=1 / len(centres), edgecolor="k", alpha=0.7,
         label="accuracy")
left.plot([0, 1], [0, 1], "k--", label="perfect calibration")
left.set_xlabel("confidence (max probability)"); left.set_ylabel("accuracy"); left.legend(fontsize=8)
left.set_title(f"expected calibration error {100 * ece['value']:.2f} %")
right.bar(centres, diagram["count"], width=1 / len(centres), edgecolor="k")
right.set_yscale("log"); right.set_xlabel("confidence (max probability)"); right.set_ylabel("images (log scale)")
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
budgets = [b for b in settings.budgets if b < len(train_idx)] + [len(train_idx)]
curve_base = replace(base, steps=settings.curve_steps)
curve_methods = {
    "supervised CNN": (curve_base, None, None),
    "contrastive, fine-tuned": (replace(curve_base, backbone_lr_factor=0.3), contrastive, None),
    "contrastive + FixMatch (short)": (replace(fixmatch_config, steps=settings.curve_fixmatch_steps),
                                       contrastive, data.unlabeled),
}
x_eval, y_eval = eval_sets[target]
curve = []
for budget in budgets:
    subset = cls.label_subset(y_train, budget, seed)
    for number, (method, (config, init, unlabeled)) in enumerate(curve_methods.items()):
        if budget == len(train_idx) and method in FOLDERS:
            result = trained[FOLDERS[method]]  # the main run already trained this one
        else:
            result = fit_classifier(config, architecture, x_train[subset], y_train[subset], x_val, y_val,
                                    checkpoints(f"curve_{number}_{budget}"), unlabeled=unlabeled, pretrained=init,
                                    device=ctx.device, progress=False)
        curve.append({"labels": budget, "method": method,
                      "accuracy": 100 * metrics.accuracy(y_eval, predict_logits(result.model, x_eval).argmax(1))})
curve = pd.DataFrame(curve)

# %%
#| label: fig-label-efficiency
#| fig-cap: "Label efficiency: accuracy on the unlabeled images (answer key; without it, set 2's clean images) against the number of labels used for training (log scale). Pretraining on the unlabeled images replaces most of the labels."
fig, ax = plt.subplots(figsize=(7, 3.8))
sns.lineplot(data=curve, x="labels", y="accuracy", hue="method", marker="o", ax=ax)
ax.set_xscale("log"); ax.set_xlabel("labeled training images (log scale)"); ax.set_ylabel("accuracy (%)")
ax.set_xticks(budgets, [str(b) for b in budgets]); ax.minorticks_off()
ctx.ws.save_figure(fig, "03_label_efficiency")
plt.show()

# %% [markdown]
# ## What the later notebooks use
#
# The complete model (notebook 04) needs one network: the chosen model if it is
# one, otherwise (a linear probe or the ensemble) the network with the best
# validation accuracy. Its accuracy is the headline number of task 3; notebook
# 04 reads its folder from `results/03_classification.json`.

# %%
networks = {name: validation[name] for name in FOLDERS}
final_network = best_name if best_name in FOLDERS else max(networks, key=networks.get)


def value(name, set_name):
    result = accuracy[name].get(set_name)
    return None if result is None else result["value"]


summary = {"inference.images_per_second_cpu": rates[final_network]}
for set_name in ("unlabeled", "rep2_clean"):
    if set_name in eval_sets:
        summary[f"classification.accuracy.{set_name}"] = accuracy[final_network][set_name]["value"]
        summary[f"classification.accuracy.{set_name}_ci"] = accuracy[final_network][set_name]["ci"]
if key is not None:
    summary["classification.accuracy.oracle_unlabeled"] = accuracy[ORACLE]["unlabeled"]["value"]
    summary["classification.accuracy.oracle_unlabeled_ci"] = accuracy[ORACLE]["unlabeled"]["ci"]
ctx.ws.update_summary(summary)
ctx.ws.write_results("03_classification", {
    "chosen_model": best_name, "final_network": final_network,
    "final_network_checkpoint": FOLDERS[final_network],  # folder name under checkpoints/<profile>/
    "split": {"train": len(train_idx), "validation": len(val_idx), "seed": seed},
    "accuracy": accuracy, "images_per_second_cpu": rates, "ece": ece,
    "label_efficiency": curve.to_dict(orient="records"),
})


def pct(x):
    return "n/a" if x is None else f"{100 * x:.2f}"


reference = target  # the set the headline comparisons quote
ctx.ws.update_report_variables("classification", {
    "chosen": best_name, "final_network": final_network,
    "accuracy_unlabeled": pct(value(final_network, "unlabeled")),
    "accuracy_rep2_clean": pct(value(final_network, "rep2_clean")),
    "accuracy_chosen_unlabeled": pct(value(best_name, "unlabeled")),
    "accuracy_oracle": pct(value(ORACLE, "unlabeled")) if key is not None else "n/a",
    "accuracy_supervised": pct(value("supervised CNN", reference)),
    "accuracy_vae": pct(value("VAE + linear head (published solution)", reference)),
    "accuracy_contrastive_probe": pct(value("contrastive + linear head", reference)),
    "ece": f"{100 * ece['value']:.2f}", "images_per_second": f"{rates[final_network]:,.0f}",
    "n_train": str(len(train_idx)), "n_val": str(len(val_idx)),
    "fixmatch_steps": str(settings.fixmatch_steps), "mu": str(settings.unlabeled_ratio),
})
table
