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
# answers with experiments that are kept apart from the main model: nothing
# trained here feeds notebooks 03 or 04.
#
# **Sources.** Every source pretrains the same encoder (the architecture of the
# in-domain contrastive model of notebook 02), whose encoder and bottleneck are
# then copied into the five-class classifier of notebook 03 and fine-tuned on
# the labels:
#
# | source | data | pretraining task | relation to our data |
# |---|---|---|---|
# | none | — | — (random initialisation) | baseline |
# | in-domain, contrastive (notebook 02) | the unlabeled set | SimCLR, notebook 02's full budget | the same distribution, no labels |
# | in-domain, contrastive (short) | the unlabeled set | SimCLR, a short budget | the same distribution, no labels |
# | related, contrastive (short) | the five *other* Fashion-MNIST classes | SimCLR, the same short budget | same kind of image, disjoint classes, no labels |
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
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown

from lib.experiments import classification as cls
from lib.data import fashion_mnist
from lib.eval import metrics
from lib import plots
from lib.experiments import transfer as tr
from lib.data import ANOMALY, CLASS_NAMES
from lib.nn.finetune import Classifier, FinetuneConfig, array_fingerprint, embed, fit_classifier, predict_logits
from lib.notebook import setup
from lib.eval.ood import ClassGaussians, msp_score
from lib.nn.train import list_checkpoints, load_history, load_trained, pretraining_plan, train

started = time.perf_counter()
ctx = setup(profile, seed, device, workspace, data_path)
data, key, settings = ctx.data, ctx.answer_key, ctx.profile.transfer
checkpoints = lambda name: ctx.ws.checkpoints(ctx.profile.name, name)  # noqa: E731
B = ctx.profile.bootstrap

train_idx, val_idx = cls.stratified_split(data.labeled_y, 0.2, seed)
x_train, y_train = data.labeled_x[train_idx], data.labeled_y[train_idx]
x_val, y_val = data.labeled_x[val_idx], data.labeled_y[val_idx]
clean1 = data.rep1_y != ANOMALY
if key is not None:
    pick = np.sort(np.random.default_rng(seed).choice(len(data.unlabeled), min(settings.eval_images,
                                                                               len(data.unlabeled)), replace=False))
    x_eval, y_eval = data.unlabeled[pick], key["unlabeled_class"][pick]
    eval_name = f"{len(pick):,} unlabeled images (answer key)"
else:
    x_eval, y_eval = data.rep1_x[clean1], data.rep1_y[clean1]
    eval_name = "the clean images of representative set 1"
    print("original data: no answer key, so accuracy is measured on set 1's clean images")
rep1_origin = key["rep1_origin"] if key is not None else None
budgets = [b for b in settings.budgets if b < len(train_idx)] + [len(train_idx)]
print(f"labeled: {len(train_idx)} for training, {len(val_idx)} for validation; budgets {budgets};"
      f" accuracy on {eval_name}")

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
def per_class(x, y, k, n):
    return [x[i] for c in range(k) for i in np.flatnonzero(y == c)[:n]]


fig = plots.image_rows([per_class(data.labeled_x, data.labeled_y, 5, 2), per_class(foreign.x, foreign.y, 5, 2),
                        per_class(digits.x, digits.y, 10, 1)], ["ours", "related", "mismatched"], cell=0.9)
ctx.ws.save_figure(fig, "05_sources")
plt.show()

# %% [markdown]
# ## Pretraining
#
# - **In-domain, contrastive (notebook 02)**: the encoder of notebook 02, loaded
#   from its checkpoint, with notebook 02's full training budget. When notebook 05
#   runs alone, this checkpoint is missing and the row is left out.
# - **In-domain, contrastive (short)** and **related, contrastive (short)**:
#   notebook 02's recipe (architecture, augmentation, temperature, batch size,
#   learning rate) with the same short budget, on the unlabeled images and on as
#   many foreign images. Equal budgets make these two a fair comparison of the
#   *data*; the decoder is left out, since it learns from the detached embedding
#   and never changes the encoder.
# - **Related and mismatched, supervised**: a classifier with the same encoder and
#   cosine head, trained with cross entropy on weakly augmented source images
#   (the optimiser and augmentation of fine-tuning), evaluated on held-out source
#   images (10 % of the foreign pool, 20 % of the digits) to show that the source
#   task was learned.

# %%
nb02_folder = checkpoints("contrastive")
contrastive_model, contrastive_train, recipe_found = tr.contrastive_recipe(
    nb02_folder, pretraining_plan(ctx.profile, seed)["contrastive"], settings.contrastive_epochs)
architecture = contrastive_model  # every source trains this encoder (the decoder plays no part in transfer)
print("architecture of every source:", architecture)
print("contrastive recipe:", "notebook 02's run" if recipe_found else "notebook 02's plan (notebook 02 has not run)",
      contrastive_train)
source_info = {}  # key -> dict for the sources table

if list_checkpoints(nb02_folder):
    in_domain = load_trained(nb02_folder, ctx.device)
    history = load_history(nb02_folder)
    source_info["in_domain"] = {"epochs": len(history), "seconds": sum(h["seconds"] for h in history),
                                "images": len(data.unlabeled)}
else:
    in_domain = None
    print(f"notebook 02's contrastive checkpoint is missing ({nb02_folder}): its row is left out, and the"
          " in-domain comparison rests on the model trained below with the related source's budget")

matched = train(contrastive_model, data.unlabeled, contrastive_train,
                checkpoints(f"transfer_in_domain_contrastive_{array_fingerprint(data.unlabeled)}"), ctx.device,
                progress=False)
source_info["in_domain_matched"] = {"epochs": contrastive_train.epochs, "seconds": matched.seconds,
                                    "images": len(data.unlabeled)}

contrastive_images = foreign.x[: len(data.unlabeled)]
foreign_contrastive = train(
    contrastive_model, contrastive_images, contrastive_train,
    checkpoints(f"transfer_foreign_contrastive_{array_fingerprint(contrastive_images)}"), ctx.device,
    progress=False)
source_info["foreign_contrastive"] = {"epochs": contrastive_train.epochs, "seconds": foreign_contrastive.seconds,
                                      "images": len(contrastive_images)}

source_cfg = FinetuneConfig(steps=settings.source_steps, batch_size=settings.source_batch, seed=seed)
foreign_supervised, source_info["foreign_supervised"] = tr.pretrain_with_holdout(
    architecture, foreign.x, foreign.y, 5, source_cfg,
    checkpoints(f"transfer_foreign_supervised_{array_fingerprint(foreign.x, foreign.y)}"), 0.1, ctx.device)
digits_supervised, source_info["digits"] = tr.pretrain_with_holdout(
    architecture, digits.x, digits.y, 10, source_cfg,
    checkpoints(f"transfer_digits_supervised_{array_fingerprint(digits.x, digits.y)}"), 0.2, ctx.device)

ALL_SOURCES = {  # key -> (name in tables and figures, model whose encoder and bottleneck are copied)
    "scratch": ("none (from scratch)", None),
    "in_domain": ("in-domain, contrastive (notebook 02)", in_domain),
    "in_domain_matched": ("in-domain, contrastive (short)", matched.model),
    "foreign_contrastive": ("related, contrastive (short)", foreign_contrastive.model),
    "foreign_supervised": ("related, supervised", foreign_supervised.model),
    "digits": ("mismatched (digits), supervised", digits_supervised.model),
}
SOURCES = {k: v for k, v in ALL_SOURCES.items() if k == "scratch" or v[1] is not None}
COLORS = dict(zip(ALL_SOURCES, ["#7f7f7f", "#08306b", "#6baed6", "#2ca02c", "#ff7f0e", "#d62728"]))
NAMES = {k: name for k, (name, _) in SOURCES.items()}
pretrained = [k for k in SOURCES if k != "scratch"]

# %% [markdown]
# Before any fine-tuning, how much of our task do the source features already
# carry? A linear head (logistic regression) on each frozen ten-dimensional
# embedding, trained with each label budget, tells; for "none" the encoder is the
# random initialisation that fine-tuning starts from. This is also the cheapest
# way to use a pretrained encoder: as a fixed feature extractor.

# %%
torch.manual_seed(seed)  # the random start of the from-scratch runs (fit_classifier seeds the same way)
init = Classifier(architecture).to(ctx.device).eval()
subsets = {b: cls.label_subset(y_train, b, seed) for b in budgets}
probe_accuracy = {}  # (source, budget) -> accuracy with interval
for k, (name, model) in SOURCES.items():
    frozen = model if model is not None else init
    z_fit, z_test = embed(frozen, x_train), embed(frozen, x_eval)
    for b, subset in subsets.items():
        head = cls.linear_probe(z_fit[subset], y_train[subset], seed)
        probe_accuracy[(k, b)] = metrics.metric_with_ci(metrics.accuracy, y_eval, head.predict(z_test),
                                                        n_resamples=B, seed=seed)

# %%
#| label: tbl-transfer-sources
#| tbl-cap: "The pretraining sources: images used, passes over them (epochs) and pretraining time in this run; accuracy on held-out source images (supervised sources); and accuracy (%) on our five classes, on the evaluation images, of a linear head on the frozen source embedding trained with every label of the training split (95 % bootstrap intervals; 'none' is the random initialisation)."
def source_row(k):
    info = source_info.get(k)
    return {
        "source": NAMES[k],
        "images": f"{info['images']:,}" if info else "—",
        "epochs": f"{info['epochs']:.1f}" if info else "—",
        "pretraining s": f"{info['seconds']:.0f}" if info else "—",
        "held-out source accuracy (%)": f"{100 * info['heldout']:.1f}" if info and "heldout" in info else "—",
        f"frozen + linear head, {budgets[-1]:,} labels (%)": tr.format_ci(probe_accuracy[(k, budgets[-1])]),
    }


Markdown(pd.DataFrame([source_row(k) for k in SOURCES]).to_markdown(index=False))

# %% [markdown]
# ## Fine-tuning with few labels
#
# Every source is fine-tuned end to end at every label budget with the same
# schedule (fixed number of steps, batch of 64, weak augmentation, cosine
# learning rate); pretrained encoders learn at 0.3 times the head's learning
# rate, as in notebook 03, and the from-scratch network at the full rate. The
# label subsets are nested and class-balanced.

# %%
runs = []
for budget, subset in subsets.items():
    xs, ys = x_train[subset], y_train[subset]
    for k, (name, model) in SOURCES.items():
        config = FinetuneConfig(steps=settings.finetune_steps, eval_every=settings.eval_every, seed=seed,
                                backbone_lr_factor=1.0 if model is None else 0.3)
        folder = checkpoints(f"transfer_ft_{k}_{budget}_{tr.weights_fingerprint(model)}_"
                             f"{array_fingerprint(xs, ys)[:6]}")
        result = fit_classifier(config, architecture, xs, ys, x_val, y_val, folder, pretrained=model,
                                device=ctx.device, progress=False)
        net = result.model
        # anomaly scores on set 1: Mahalanobis distance to the nearest class Gaussian, fitted on the
        # embeddings of this run's own labeled training images; and the negative max softmax probability
        gaussians = ClassGaussians().fit(embed(net, xs), ys, n_classes=5)
        rep1_logits = predict_logits(net, data.rep1_x)
        scores = {"mahalanobis": gaussians.mahalanobis(embed(net, data.rep1_x)), "msp": msp_score(rep1_logits)}
        predicted = predict_logits(net, x_eval).argmax(1)
        runs.append({
            "source": k, "labels": budget, "correct": predicted == y_eval,
            "accuracy": metrics.metric_with_ci(metrics.accuracy, y_eval, predicted, n_resamples=B, seed=seed),
            "accuracy_rep1_clean": float((rep1_logits[clean1].argmax(1) == data.rep1_y[clean1]).mean()),
            "val_accuracy": result.history[-1]["val_accuracy"], "seconds": result.seconds, "scores": scores,
            "auroc": {score: tr.auroc_by_origin(values, data.rep1_y, rep1_origin, n_resamples=B, seed=seed)
                      for score, values in scores.items()},
        })
runs = pd.DataFrame(runs)
run_of = {(r.source, r.labels): r for r in runs.itertuples()}

# Paired comparisons with training from scratch on the same evaluation images.
gain = {(k, b): tr.paired_difference(run_of[(k, b)].correct, run_of[("scratch", b)].correct, n_resamples=B,
                                     seed=seed)
        for k in SOURCES if k != "scratch" for b in budgets}
print(runs[["source", "labels", "val_accuracy", "accuracy_rep1_clean", "seconds"]].to_string(index=False))

# %% [markdown]
# ## Results: classification
#
# Left, a linear head on each frozen encoder; middle, the same encoders
# fine-tuned end to end; right, the fine-tuned accuracy minus that of the network
# trained from scratch with the same labels, with paired bootstrap intervals
# (the same images scored by both models), so an interval that does not cross
# zero is a real effect at this sample size.

# %%
#| label: fig-transfer-accuracy
#| fig-cap: "Accuracy on the evaluation images against the number of labeled training images (log scale), per pretraining source, with 95 % bootstrap intervals. Left: linear head on the frozen pretrained encoder. Middle: the encoder fine-tuned end to end (same schedule for every source). Right: fine-tuned accuracy minus training from scratch with the same labels, in percentage points, with 95 % paired intervals; above zero, pretraining helped."
def with_interval(ax, x, results, scale, **style):
    value = np.array([scale * r["value"] for r in results])
    ci = np.array([[scale * c for c in r["ci"]] for r in results])
    ax.errorbar(x, value, yerr=[value - ci[:, 0], ci[:, 1] - value], marker="o", ms=4, capsize=3, **style)


fig, (frozen_ax, tuned_ax, gain_ax) = plt.subplots(1, 3, figsize=(10, 4.2))
for k in SOURCES:
    with_interval(frozen_ax, budgets, [probe_accuracy[(k, b)] for b in budgets], 100, color=COLORS[k],
                  label=NAMES[k])
    with_interval(tuned_ax, budgets, [run_of[(k, b)].accuracy for b in budgets], 100, color=COLORS[k])
for offset, k in zip(np.linspace(-0.05, 0.05, len(pretrained)), pretrained):
    with_interval(gain_ax, np.array(budgets) * 10 ** offset, [gain[(k, b)] for b in budgets], 100, color=COLORS[k])
gain_ax.axhline(0, color="k", lw=0.8)
low = min(100 * probe_accuracy[(k, b)]["ci"][0] for k in SOURCES for b in budgets)
for ax, title in ((frozen_ax, "frozen encoder + linear head"), (tuned_ax, "fine-tuned"),
                  (gain_ax, "fine-tuned minus from scratch")):
    ax.set_xscale("log")
    ax.set_xticks(budgets, [f"{b:,}" for b in budgets], rotation=45)
    ax.minorticks_off()
    ax.set_xlabel("labeled training images (log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
for ax in (frozen_ax, tuned_ax):
    ax.set_ylim(np.floor(low / 5) * 5, 100)
    ax.set_ylabel("accuracy (%)")
gain_ax.set_ylabel("difference (percentage points)")
fig.legend(loc="lower center", ncol=3, fontsize=9, frameon=False)
fig.tight_layout(rect=(0, 0.11, 1, 1))
ctx.ws.save_figure(fig, "05_accuracy")
plt.show()

# %%
#| label: tbl-transfer-accuracy
#| tbl-cap: "Accuracy (%) after fine-tuning, per source and number of labels, with 95 % bootstrap intervals, on the evaluation images (a fixed random sample of the unlabeled set with the answer key; without it, the clean images of representative set 1). Every run has the same schedule."
Markdown(pd.DataFrame([{"source": NAMES[k], **{f"{b:,} labels": tr.format_ci(run_of[(k, b)].accuracy)
                                               for b in budgets}} for k in SOURCES]).to_markdown(index=False))

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
largest = budgets[-1]
kinds = [kind for kind in ("all", "foreign", "corrupted") if kind in run_of[("scratch", largest)].auroc["mahalanobis"]]
auroc_gain = {}  # (source, kind, budget) -> paired AUROC difference from training from scratch
is_anomaly1 = data.rep1_y == ANOMALY
for k in pretrained:
    for b in budgets:
        auroc_gain[(k, "all", b)] = tr.paired_auroc_difference(
            run_of[(k, b)].scores["mahalanobis"], run_of[("scratch", b)].scores["mahalanobis"], is_anomaly1,
            n_resamples=B, seed=seed)
    if rep1_origin is not None:
        for kind in ("foreign", "corrupted"):
            members = (rep1_origin == kind) | ~is_anomaly1
            auroc_gain[(k, kind, largest)] = tr.paired_auroc_difference(
                run_of[(k, largest)].scores["mahalanobis"][members],
                run_of[("scratch", largest)].scores["mahalanobis"][members], is_anomaly1[members],
                n_resamples=B, seed=seed)

# %%
#| label: fig-transfer-ood
#| fig-cap: "Anomaly detection on representative set 1 after each kind of pretraining and fine-tuning; score = Mahalanobis distance to the nearest class Gaussian in the ten-dimensional embedding. Left: ROC AUC for all anomalies against the number of labels (log scale). Right: with all labels of the training split, ROC AUC for foreign articles and corrupted images separately (colours as on the left; 95 % bootstrap intervals)."
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
for k in SOURCES:
    value = np.array([run_of[(k, b)].auroc["mahalanobis"]["all"]["value"] for b in budgets])
    ci = np.array([run_of[(k, b)].auroc["mahalanobis"]["all"]["ci"] for b in budgets])
    left.errorbar(budgets, value, yerr=[value - ci[:, 0], ci[:, 1] - value], marker="o", ms=4, capsize=3,
                  color=COLORS[k], label=NAMES[k])
left.set_xscale("log")
left.set_xticks(budgets, [f"{b:,}" for b in budgets])
left.minorticks_off()
left.set_xlabel("labeled training images (log scale)")
left.set_ylabel("ROC AUC, all anomalies of set 1")
left.grid(alpha=0.3)
left.legend(fontsize=9, loc="lower right")
shown = [kind for kind in kinds if kind != "all"] or ["all"]
for offset, k in zip(np.linspace(-0.3, 0.3, len(SOURCES)), SOURCES):
    with_interval(right, np.arange(len(shown)) + offset,
                  [run_of[(k, largest)].auroc["mahalanobis"][kind] for kind in shown], 1, color=COLORS[k], ls="none")
right.set_xticks(range(len(shown)), [f"{kind} anomalies" for kind in shown])
right.set_xlim(-0.5, len(shown) - 0.5)
right.set_ylabel(f"ROC AUC, set 1 ({largest:,} labels)")
right.grid(alpha=0.3, axis="y")
fig.tight_layout()
ctx.ws.save_figure(fig, "05_ood")
plt.show()

# %%
#| label: tbl-transfer-ood
#| tbl-cap: "ROC AUC on representative set 1 after fine-tuning with every label of the training split: Mahalanobis distance in the ten-dimensional embedding (all anomalies, foreign articles only, corrupted images only) and the negative maximum softmax probability (MSP, all anomalies); 95 % bootstrap intervals. The last column is the change of the foreign-article AUROC relative to training from scratch (paired interval)."
def ood_row(k):
    run = run_of[(k, largest)]
    row = {"source": NAMES[k]}
    for kind in kinds:
        row[f"Mahalanobis, {kind}"] = tr.format_ci(run.auroc["mahalanobis"][kind], scale=1, digits=3)
    row["MSP, all"] = tr.format_ci(run.auroc["msp"]["all"], scale=1, digits=3)
    if rep1_origin is not None:
        change = auroc_gain.get((k, "foreign", largest))
        row["foreign: change vs scratch"] = "—" if change is None else tr.format_ci(change, scale=1, digits=3,
                                                                                     signed=True)
    return row


Markdown(pd.DataFrame([ood_row(k) for k in SOURCES]).to_markdown(index=False))

# %% [markdown]
# ## What this says about transfer learning here
#
# The report's Discussion (`report/_transfer.qmd`) answers the three questions
# with the numbers of this run; the reasoning in short:
#
# 1. **When it helps.** The frozen-encoder curves rank the sources by how close
#    they are to our data; fine-tuning with labels narrows the gaps, so transfer
#    matters most with the fewest labels, and most of all for the anomaly score,
#    whose density is fitted in an embedding that a few labels alone shape
#    poorly. Our own unlabeled images are the closest source there is, which is
#    why the main model pretrains on them; a related source would stand in for
#    them only if they were scarce.
# 2. **How it would be used.** Classification: copy the encoder, fine-tune it more
#    slowly than the new head (or keep it frozen under a linear head when labels
#    are very few). Ten-dimensional description: continue self-supervised
#    training on our data, since a source's bottleneck describes the source's
#    classes. Anomaly detection: fit the density of normal data on our normal
#    images in the transferred embedding; the source never defines "normal".
# 3. **When it is impossible or harmful.** Forbidden here by the assignment; a
#    mismatched source (digits) brings features that fine-tuning must unlearn;
#    a source that contains the anomaly classes changes how visible they are,
#    in a direction that cannot be known without labeled anomalies; a source
#    that contains the test images leaks them (hence the filter); and a source
#    whose invariances contradict ours (inversion, flips, noise) blinds the
#    detector to exactly those corruptions.

# %%
seconds_total = time.perf_counter() - started
small = budgets[0]


def pct(result):
    return f"{100 * result['value']:.1f}"


variables = {
    "n_foreign_candidates": f"{foreign.n_candidates:,}", "n_foreign_excluded": str(foreign.n_excluded),
    "n_foreign_used": f"{len(foreign.x):,}", "n_foreign_supervised": f"{source_info['foreign_supervised']['images']:,}",
    "n_foreign_contrastive": f"{len(contrastive_images):,}", "n_digits": f"{len(digits.x):,}",
    "n_digits_supervised": f"{source_info['digits']['images']:,}",
    "budget_small": f"{small:,}", "budget_large": f"{largest:,}",
    "budgets": ", ".join(f"{b:,}" for b in budgets[:-1]) + f" and {largest:,}",
    "finetune_steps": f"{settings.finetune_steps:,}", "source_steps": f"{settings.source_steps:,}",
    "contrastive_epochs": str(contrastive_train.epochs),
    "in_domain_epochs": str(source_info["in_domain"]["epochs"]) if in_domain is not None else "n/a",
    "in_domain_status": (f"loaded from notebook 02 ({source_info['in_domain']['epochs']} epochs)"
                         if in_domain is not None else "not available (notebook 02 had not run)"),
    "eval_name": eval_name,
    "heldout_foreign": pct({"value": foreign_supervised.heldout_accuracy}),
    "heldout_digits": pct({"value": digits_supervised.heldout_accuracy}),
    "seconds_total": f"{seconds_total:.0f}",
    "n_foreign_rep1": str(int((rep1_origin == "foreign").sum())) if rep1_origin is not None else "n/a",
    "n_corrupted_rep1": str(int((rep1_origin == "corrupted").sum())) if rep1_origin is not None else "n/a",
}
def source_variables(k):
    """Report variables of one source (None when the source is not in this run)."""
    if k not in SOURCES:
        return None
    values = {}
    for label, b in (("small", small), ("large", largest)):
        values[f"probe_{k}_{label}"] = pct(probe_accuracy[(k, b)])
        values[f"acc_{k}_{label}"] = pct(run_of[(k, b)].accuracy)
        values[f"auroc_{k}_all_{label}"] = f"{run_of[(k, b)].auroc['mahalanobis']['all']['value']:.3f}"
        if k != "scratch":
            values[f"gain_{k}_{label}"] = tr.effect_phrase(gain[(k, b)])
            values[f"effect_{k}_{label}"] = tr.effect_word(gain[(k, b)])
            values[f"auroc_gain_{k}_all_{label}"] = tr.effect_phrase(auroc_gain[(k, "all", b)], unit=1, what="AUROC",
                                                                     digits=3)
    for kind in kinds:
        values[f"auroc_{k}_{kind}"] = f"{run_of[(k, largest)].auroc['mahalanobis'][kind]['value']:.3f}"
        if k != "scratch" and kind != "all":
            values[f"auroc_gain_{k}_{kind}"] = tr.effect_phrase(auroc_gain[(k, kind, largest)], unit=1,
                                                                what="AUROC", digits=3)
    values[f"auroc_msp_{k}"] = f"{run_of[(k, largest)].auroc['msp']['all']['value']:.3f}"
    return values


def rank(value_of):
    return tr.ranking({NAMES[k]: value_of(k) for k in SOURCES})


variables["probe_digits_minus_random"] = (
    f"{100 * (probe_accuracy[('digits', largest)]['value'] - probe_accuracy[('scratch', largest)]['value']):+.1f}")
variables["probe_rank_large"] = rank(lambda k: (probe_accuracy[(k, largest)]["value"],
                                                pct(probe_accuracy[(k, largest)])))
variables["probe_rank_small"] = rank(lambda k: (probe_accuracy[(k, small)]["value"], pct(probe_accuracy[(k, small)])))
variables["finetuned_rank_small"] = rank(lambda k: (run_of[(k, small)].accuracy["value"],
                                                    pct(run_of[(k, small)].accuracy)))
variables["finetuned_rank_large"] = rank(lambda k: (run_of[(k, largest)].accuracy["value"],
                                                    pct(run_of[(k, largest)].accuracy)))
variables["auroc_rank_large"] = rank(lambda k: (run_of[(k, largest)].auroc["mahalanobis"]["all"]["value"],
                                                f"{run_of[(k, largest)].auroc['mahalanobis']['all']['value']:.3f}"))
variables["auroc_rank_small"] = rank(lambda k: (run_of[(k, small)].auroc["mahalanobis"]["all"]["value"],
                                                f"{run_of[(k, small)].auroc['mahalanobis']['all']['value']:.3f}"))
template = source_variables("in_domain_matched")
for k in ALL_SOURCES:
    values = source_variables(k)
    if values is None:  # e.g. notebook 02's encoder when notebook 05 runs alone
        values = {name.replace("in_domain_matched", k): "n/a" for name in template}
    variables.update(values)
ctx.ws.update_report_variables("transfer", variables)

ctx.ws.write_results("05_transfer_learning", {
    "profile": ctx.profile.name, "seed": seed, "architecture": architecture.to_dict(),
    "notebook_02_encoder": in_domain is not None, "contrastive_recipe_from_notebook_02": recipe_found,
    "contrastive_train_config": contrastive_train.to_dict(), "evaluated_on": eval_name, "budgets": budgets,
    "settings": {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in vars(settings).items()},
    "leakage_filter": {"foreign_candidates": foreign.n_candidates, "excluded": foreign.n_excluded,
                       "used": len(foreign.x)},
    "sources": {k: {key_: float(v) if isinstance(v, (int, float, np.floating)) else v for key_, v in
                    source_info.get(k, {}).items()}
                | {"frozen_linear_head_accuracy": {str(b): probe_accuracy[(k, b)] for b in budgets}}
                for k in SOURCES},
    "runs": [{"source": r.source, "labels": int(r.labels), "accuracy": r.accuracy,
              "accuracy_rep1_clean": r.accuracy_rep1_clean, "val_accuracy": r.val_accuracy, "seconds": r.seconds,
              "auroc_rep1": r.auroc,
              "gain_vs_scratch": gain.get((r.source, r.labels))} for r in runs.itertuples()],
    "auroc_change_vs_scratch": {f"{k}.{kind}.{b}": v for (k, kind, b), v in auroc_gain.items()},
    "seconds_total": seconds_total,
})
print(f"notebook 05: {seconds_total:.0f} s")
