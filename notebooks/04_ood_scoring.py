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
# # 04 Anomaly scoring and the complete model
#
# Task 1: flag out-of-distribution images. Every score below is fitted only on
# in-distribution training data (the unlabeled and labeled sets). Representative
# set 1 chooses the score and fixes its threshold (`lib.eval.protocol`);
# representative set 2 is then used once, for the final numbers of the complete model.

# %% tags=["parameters"]
profile = None  # "smoke" | "cpu" | "gpu"; None: the default for the device
seed = 0
device = None  # "cpu" | "cuda"; None: CUDA when available
workspace = None  # folder for figures/, results/, report/, checkpoints/; None: the project
data_path = None  # the original assignment pickle; None: ASSIGNMENT_DATA or the replica

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown

from lib import plots
from lib.bundle import load_final_model, save_final_model
from lib.data.replica import CLASS_NAMES
from lib.eval import metrics, protocol
from lib.eval.targets import targets_table
from lib.experiments import anomaly, audit
from lib.nn.infer import images_per_second
from lib.notebook import setup
from lib.predict import run_model, time_predict
from lib.render import tables
from lib.results import PARTS, plain, summary

ctx = setup(profile, seed, device, workspace, data_path)
data, key = ctx.data, ctx.answer_key
is_anomaly = anomaly.is_anomaly(data)

# %% [markdown]
# ## The evidence and the scores
#
# The project's model (notebook 03's chosen arm) gives eight pieces of
# evidence per image (`lib.results.PART_REGISTRY`): the squared Mahalanobis distance to
# the nearest class mean, $\min_k (f-\mu_k)^\top \Sigma^{-1} (f-\mu_k)$, of
# the pooled features $f$ of each of the backbone's three stages and of the
# ten-dimensional description (class means and shared covariance from the
# labeled images and the unlabeled ones with the network's labels); the cosine
# distance of the last stage's features to their 10th nearest neighbour among
# unlabeled images; the energy of the classifier's logits; the decoder's
# reconstruction error; and the mean intensity of the 2-pixel frame, black in
# every in-distribution image. Each part is standardised by its mean and
# standard deviation on unlabeled images. A score is a sum of standardised
# parts. The other scores are the comparison systems': three autoencoders'
# reconstruction errors, the VAE's negative ELBO, the cosine distance to the
# $k$-th nearest unlabeled image in the contrastive embedding, the plain CNN's
# Mahalanobis distance (the baseline), and the maximum softmax probability of
# our own classifier.

# %%
networks = anomaly.load_networks(ctx)
first_seed = min(networks)
model = anomaly.fit_evidence(networks[first_seed], data, ctx.profile.anomaly, seed)
parts, ours = anomaly.combination_scores(model, {"rep1": data.rep1_x, "rep2": data.rep2_x})
scores = {**ours, **anomaly.reference_scores(ctx, anomaly.load_comparison(ctx), networks[first_seed])}

# %% [markdown]
# ## Choosing the combination on representative set 1
#
# Rule: among the combinations of our evidence (`lib.results.COMBINATIONS`: each
# part alone, the features of every depth, the deepest features with the pixel
# evidence, every part), the one with the highest ROC AUC on representative
# set 1 (ties: average precision). Set 2's columns are the final evaluation of
# every score, computed after the choice and shown for comparison only.

# %%
choice = anomaly.choose_score(scores, is_anomaly)
chosen = choice.chosen
comparison = protocol.score_table(scores, is_anomaly)
print("chosen on set 1:", chosen)

# %%
#| label: tbl-ood-scores
#| tbl-cap: "Anomaly scores, all fitted on in-distribution training data only. Set 1 (validation) chooses among our combinations (the one with the highest ROC AUC, marked); set 2 is the final test, shown for every score after the choice. AP: average precision (anomaly = positive); FPR95: false-positive rate at 95 % true-positive rate."
Markdown(tables.ood_scores(comparison, chosen).to_markdown(index=False, floatfmt=".3f"))

# %% [markdown]
# ## The complete model
#
# One network serves the three tasks: its classifier labels the image, its
# ten-dimensional description places it among the five modes, and the chosen
# sum of evidence says whether it belongs to the data at all. The threshold
# maximises the anomaly F1 on representative set 1. The bundle is exported
# (`torch.export`) into one file for `python -m lib predict`, which needs no
# training code.

# %%
final = anomaly.deploy(model, chosen, ours[chosen]["rep1"], is_anomaly["rep1"])
final_folder = save_final_model(final, ctx.checkpoints / "final", ctx.profile.name, extra={
    "score": chosen, "threshold_rule": protocol.THRESHOLD_RULE,
    "network": ctx.ws.read_results("03_classification")["model_checkpoints"][str(first_seed)]})
print(f"threshold {final.threshold:.4g}; saved to {final_folder}")

# %% [markdown]
# ## Final evaluation on representative set 2
#
# Everything below uses the saved model exactly as `predict` does, on
# representative set 2, once.

# %%
deployed = load_final_model(final_folder)
rep2_logits, rep2_scores, _ = run_model(deployed.module, data.rep2_x)
final_eval = protocol.final_evaluation(rep2_scores, is_anomaly["rep2"], rep2_logits.argmax(1), data.rep2_y,
                                       deployed.threshold, ctx.profile.bootstrap, seed)
rep2_flag = rep2_scores > deployed.threshold

# %%
#| label: tbl-ood-final
#| tbl-cap: "The complete model on representative set 2 (final test, used once), with 95 % bootstrap intervals. Threshold-free metrics, detection at the threshold fixed on set 1, and the six-class end-to-end macro-F1 (five classes + anomaly)."
Markdown(tables.ood_final(final_eval).to_markdown(index=False))

# %%
#| label: fig-ood-curves
#| fig-cap: "Detection on representative set 2 (final test). Left and middle: ROC and precision-recall curves of the complete model's score (thick, black) against the plain CNN's Mahalanobis score (the baseline), the VAE's negative ELBO and the convolutional autoencoder's reconstruction error. Right: recall (teal) and false-positive rate (magenta) of the complete model's score against the threshold, on set 1 (dashed) and set 2 (solid); the dotted line is the threshold fixed on set 1. Where the dashed and solid curves agree, the threshold carries over from set 1 to set 2."
rep1_scores = run_model(deployed.module, data.rep1_x)[1]
fig = plots.detection_curves(
    {f"ours ({tables.score_name(chosen)})": rep2_scores, "plain CNN (baseline)": scores["baseline_mahalanobis"]["rep2"],
     "VAE, negative ELBO": scores["vae_elbo"]["rep2"], "conv. autoencoder": scores["recon_conv_ae"]["rep2"]},
    is_anomaly["rep2"], {"set 1": (rep1_scores, is_anomaly["rep1"]), "set 2": (rep2_scores, is_anomaly["rep2"])},
    deployed.threshold)
ctx.save_figure(fig, "04_detection_curves")
plt.show()

# %%
#| label: fig-ood-end-to-end
#| fig-cap: "End to end on representative set 2. Left: distribution of the chosen anomaly score for clean images (grey) and anomalies (red) (symmetric log axis, linear between -1 and 1), with the threshold fixed on set 1 (dashed). Right: six-class confusion matrix (rows: true, % of the row)."
fig = plots.end_to_end(rep2_scores, is_anomaly["rep2"], deployed.threshold, tables.score_name(chosen),
                       metrics.confusion_matrix(data.rep2_y, final_eval["six_class"], 6), log=True)
ctx.save_figure(fig, "04_end_to_end")
plt.show()

# %% [markdown]
# ## Which anomalies are missed
#
# With the answer key, each anomaly of set 2 has an origin: a foreign class or a
# corruption kind. The table gives, per origin, the fraction caught at the
# threshold and the ROC AUC of that origin against the clean images.

# %%
#| label: tbl-ood-breakdown
#| tbl-cap: "Detection by origin on representative set 2 (answer key): anomalies of each origin, the share flagged at the set-1 threshold, and ROC AUC against all clean images of set 2. Small counts: read the rates as indications."
kind = anomaly.origins(key, "rep2", len(data.rep2_y))
breakdown = anomaly.breakdown_by_origin(rep2_scores, rep2_flag, kind)
Markdown(tables.ood_breakdown(breakdown))

# %% [markdown]
# ## What each part of the evidence catches
#
# The same origins, scored by each part alone, by the chosen combination and by
# the plain CNN's score: the table shows which evidence separates which kind of
# anomaly from the clean images.

# %%
#| label: tbl-ood-parts
#| tbl-cap: "ROC AUC on representative set 2 of each origin of anomaly against all clean images (answer key), for each part of the evidence alone, the chosen combination and the plain CNN's Mahalanobis score (baseline). Stage 1-3: Mahalanobis distance of the pooled features of each stage of the backbone; description: of the ten-dimensional description; reconstruction: the decoder's error; frame: mean intensity of the 2-pixel frame."
parts_table = anomaly.origin_auroc({**{part: ours[part]["rep2"] for part in PARTS}, "chosen": rep2_scores,
                                     "baseline": scores["baseline_mahalanobis"]["rep2"]}, kind)
Markdown(tables.ood_parts(parts_table))

# %%
#| label: fig-ood-gallery
#| fig-cap: "Representative set 2: the ten clean images with the highest anomaly score (top) and the ten anomalies with the lowest (bottom); above each image its score and, for anomalies, their origin. These are the failure modes: a clean image above the threshold is a false alarm, an anomaly below it is missed."
clean_order, anomaly_order = anomaly.failure_cases(rep2_scores, is_anomaly["rep2"])
fig = plots.image_rows([data.rep2_x[clean_order], data.rep2_x[anomaly_order]],
                       ["most anomalous\nclean", "least anomalous\nanomalies"], cell=0.55,
                       titles=[[f"{rep2_scores[i]:.3g}" for i in clean_order],
                               [f"{rep2_scores[i]:.3g}" for i in anomaly_order]],
                       notes=[[""] * len(clean_order), [tables.short_origin(kind, i) for i in anomaly_order]])
ctx.save_figure(fig, "04_gallery")
plt.show()

# %% [markdown]
# ## Anomaly kinds the replica does not contain
#
# Set 1 chose the score and its threshold among the replica's anomaly kinds. A
# check set of other kinds (`lib.data.unseen`: broken-sensor frames, drawn shapes
# and patterns, handwritten digits, blends, upside-down footwear, low contrast)
# and fresh clean images that the replica left unused shows whether the model
# flags what it has never seen. It is evaluated once and chooses nothing.

# %%
#| label: tbl-unseen-kinds
#| tbl-cap: "The deployed model on anomaly kinds absent from the replica and from training (fixed check set, seed 0): ROC AUC of each kind against the fresh clean images, and the share flagged at the threshold fixed on set 1; the last row is the share of clean images flagged."
check = anomaly.unseen_check(data, key, ctx.profile.anomaly)
unseen = anomaly.unseen_kinds(run_model(deployed.module, check.x)[1], check, deployed.threshold) if check else None
Markdown(tables.unseen_kinds(unseen))

# %% [markdown]
# ## The frame part: what the padding tells
#
# The frame-intensity part reads the 2-pixel zero border of the replica's
# images: every in-distribution image has it, most corruptions and all the
# "broken sensor" kinds do not. That is legitimate evidence for data padded the
# same way, and meaningless otherwise. The table shows the chosen score with and
# without that part, each with its own threshold fixed on set 1, and on set 2's
# clean images redrawn without the border (the article zoomed to fill the whole
# frame): with the frame part those are flagged as anomalies.

# %%
#| label: tbl-frame
#| tbl-cap: "The chosen score with and without its frame-intensity part, each with its own threshold fixed on set 1: ROC AUC, average precision and FPR95 on set 2, the worst unseen kind's ROC AUC, and the share of set 2's clean images flagged as they are and redrawn without the zero border (unpadded)."
frame = anomaly.frame_study(final, chosen, parts, is_anomaly, data, check)
Markdown(tables.frame_study(frame))

# %% [markdown]
# ## Against the baseline, with and without the frame part
#
# Because the frame part reads the replica's padding, every verdict against the
# plain CNN's Mahalanobis score is given twice: for the deployed score and for
# the same combination without its frame part. Both are measured on set 2's
# scores only, after every choice was made on set 1.

# %%
#| label: tbl-versus-baseline-frame
#| tbl-cap: "Our anomaly score against the plain CNN's Mahalanobis score (baseline) on representative set 2, as deployed and without its frame-intensity part (which reads the replica's zero padding): ROC AUC, average precision and FPR at 95 % TPR, the difference with its 95 % paired bootstrap interval (the same images resampled for both scores), and the verdict that interval gives (for the FPR, lower is better). Where the verdict holds only with the frame part, the advantage comes from the padding."
baseline_rep2 = anomaly.detection_estimates(scores["baseline_mahalanobis"]["rep2"], is_anomaly["rep2"],
                                            ctx.profile.bootstrap, seed)
versus_baseline = anomaly.detection_differences(rep2_scores, scores["baseline_mahalanobis"]["rep2"],
                                                is_anomaly["rep2"], ctx.profile.bootstrap, seed)
without_frame = anomaly.versus_baseline_without_frame(parts["rep2"], chosen, scores["baseline_mahalanobis"]["rep2"],
                                                      is_anomaly["rep2"], ctx.profile.bootstrap, seed)
Markdown(anomaly.versus_baseline_table({"ours": final_eval, "versus_baseline": versus_baseline}, without_frame,
                                       baseline_rep2).to_markdown(index=False))

# %% [markdown]
# ## What the unlabeled images add to the detectors
#
# The detectors' statistics (the Mahalanobis class means and covariance, the
# kNN bank, the standardisation of every part) are fitted on the labeled and
# the unlabeled images. The same chosen combination, on the same network, with
# every statistic fitted on the labeled images alone (half of them the kNN
# bank, the other half the standardisation) isolates what the unlabeled images
# add. It chooses nothing; both are measured on set 2.

# %%
#| label: tbl-fit-on-labels
#| tbl-cap: "The chosen combination on representative set 2 with its detectors' statistics (Mahalanobis class means and covariance, kNN bank, standardisation) fitted on the labeled and unlabeled images, as deployed, and on the labeled images alone; the same network, nothing chosen with it. The difference (deployed minus labeled only) comes with a 95 % paired bootstrap interval; 'better' means fitting on the unlabeled images helps (for the FPR, lower is better)."
labels_only_fit = anomaly.fit_on_labels_only(networks[first_seed], data, ctx.profile.anomaly, seed, chosen,
                                             parts["rep2"], is_anomaly["rep2"], ctx.profile.bootstrap)
Markdown(anomaly.fit_on_labels_only_table(labels_only_fit).to_markdown(index=False))

# %% [markdown]
# ## Data audit: hardness from training-loss trajectories
#
# The convolutional autoencoder of notebook 02 kept a checkpoint after every
# epoch. The reconstruction error of each image across those checkpoints is its
# loss trajectory; images the autoencoder never learns to reconstruct are
# unlike the bulk of the data. Spearman's rank correlation between each
# hardness measure and the anomaly flag says how well "hard" means "anomalous".

# %%
epochs, trajectories = audit.loss_trajectories(ctx.ws.path(ctx.ws.read_results("02_pretraining")["checkpoints"]["conv_ae_bn"]), np.concatenate(
    [data.rep1_x, data.rep2_x, data.unlabeled]), ctx.device)
n_rep = len(data.rep1_x) + len(data.rep2_x)
measures = audit.hardness(epochs, trajectories)
correlations = audit.rank_correlations(measures.iloc[:n_rep], np.concatenate([is_anomaly["rep1"], is_anomaly["rep2"]]))

# %%
#| label: tbl-hardness
#| tbl-cap: "Per-sample hardness from the convolutional autoencoder's per-epoch reconstruction errors on the representative sets: Spearman rank correlation of each measure with the anomaly flag (1 = anomaly), both sets together."
Markdown(pd.DataFrame({"hardness measure": list(correlations), "Spearman correlation with anomaly flag":
                       list(correlations.values())}).to_markdown(index=False, floatfmt=".3f"))

# %%
#| label: fig-hardest
#| fig-cap: "The twenty hardest unlabeled images by area under the reconstruction-error curve. The unlabeled set is verified clean, so these are unusual in-distribution images, rare high-contrast textures and shapes that a ten-number code cannot reproduce."
hardest = np.argsort(-measures["area under the curve"].to_numpy()[n_rep:])[:20]
fig = plots.image_rows([data.unlabeled[hardest[:10]], data.unlabeled[hardest[10:]]], ["1-10", "11-20"], cell=1.0)
ctx.save_figure(fig, "04_hardest")
plt.show()

# %% [markdown]
# ## `predict` on new images, and the description of the complete model
#
# The command line applies the saved model to unlabeled images saved as a
# `.npy` file, model load included, on the CPU. The deployed embedding's five
# k-means clusters are compared with the true classes of the unlabeled images
# (answer key), as for the pretrained embeddings of notebook 02.

# %%
predict_seconds = time_predict(final_folder, np.resize(data.unlabeled, (ctx.profile.anomaly.predict_images, 1, 32, 32)))
bundle_rate = images_per_second(lambda x: run_model(deployed.module, x), data.unlabeled[:4096])
print(f"the deployed model scores {bundle_rate:,.0f} images/s on two CPU threads")
unlabeled_z = anomaly.network_outputs(networks[first_seed], data.unlabeled)["z"]
description = anomaly.description_quality(unlabeled_z, key, ctx.profile.bootstrap, seed)
print(f"predict on {ctx.profile.anomaly.predict_images:,} images: {predict_seconds:.1f} s; description: {description}")

# %% [markdown]
# ## Over training seeds
#
# The whole complete model (evidence fitted, the chosen combination, its
# threshold on set 1) rebuilt from the network of every seed of notebook 03,
# and measured on set 2 and the unlabeled images without bootstrap: the spread
# that training randomness alone causes.

# %%
#| label: tbl-ood-seeds
#| tbl-cap: "The complete model over training seeds: ROC AUC, average precision and FPR95 on representative set 2, six-class macro-F1 on set 2 and k-means accuracy of the description on the unlabeled images; mean and standard deviation over the seeds."
per_seed = [{"seed": s, **anomaly.seed_metrics(network, data, ctx.profile.anomaly, seed, chosen, is_anomaly, key)}
            for s, network in networks.items()]
Markdown(tables.ood_seeds(per_seed).to_markdown(index=False))

# %% [markdown]
# ## What the ten coordinates mean
#
# Each coordinate's mean over the labeled images of each class, in standard
# deviations of that coordinate over the unlabeled images, and the decoder's
# image at each class mean.

# %%
#| label: fig-description
#| fig-cap: "The ten-dimensional description. Left: mean of each coordinate over the labeled images of each class, in standard deviations of the coordinate over the unlabeled images; every class has its own signature of coordinates. Right: the decoder's image at each class's mean description. The decoded class means are blurred averages: the decoder shows the class, not what varies within it (@tbl-description-study measures that)."
fig = plots.description_meaning(*anomaly.description_meaning(networks[first_seed], data), CLASS_NAMES)
ctx.save_figure(fig, "04_description")
plt.show()

# %% [markdown]
# ## What the description holds beyond the class
#
# The description is trained through a five-class head, so k-means finding
# the classes in it is close to circular. Two measurements go further, each
# against references of the same dimension fitted on the unlabeled images
# without labels (the answer key only evaluates):
#
# - **k-means against the fair reference.** The same five-cluster k-means on
#   PCA-10 of the plain baseline CNN's 128-dimensional pooled features (a
#   network trained on the same labels without our heads) and on PCA-10 of the
#   pixels. Our accuracy minus each reference's comes with a paired interval
#   (the same images), and the share of each description's variance that lies
#   within the classes says how much of it is class and nothing else.
# - **What it holds within a mode.** The decoder draws every unlabeled image
#   from its ten numbers alone. Its mean squared error per pixel (pixels in
#   [0, 1]) is compared with PCA-10 of the pixels (ten numbers chosen to
#   reconstruct) and with each image replaced by the mean image of the class
#   our classifier predicts: the best any reconstruction that knows only the
#   class can do. Below the class means, the ten numbers carry something of
#   the image beyond its class; the decoder learns with the gradient stopped
#   at the description, so its error is what this decoder draws from them, an
#   upper bound on what they hold.

# %%
#| label: tbl-description-study
#| tbl-cap: "What the ten-dimensional description holds, on the unlabeled images, against references of the same dimension fitted without labels. k-means (five clusters, Hungarian matching, answer key): accuracy and NMI of ours and of PCA-10 of the plain CNN's pooled features (the fair reference) and of the pixels; variance within classes: the share of each description's variance left once the class is known. Reconstruction: mean squared error per pixel (pixels in [0, 1]) of the decoder's image from our ten numbers, of PCA-10 of the pixels, and of the mean image of the predicted class (what knowing only the class gives). Brackets: 95 % bootstrap intervals; the difference is paired (the same images); for the reconstruction error lower is better. Read the verdicts: ours against the plain CNN says whether the description separates the classes better than any supervised network's features; the decoder against the class means says whether the ten numbers carry more than the class."
description_study = anomaly.description_study(networks[first_seed], anomaly.load_baseline(ctx), data, key,
                                              ctx.profile.bootstrap, seed)
Markdown(anomaly.description_study_table(description_study).to_markdown(index=False))

# %%
ctx.ws.write_results("04_ood_scoring", plain({
    "choice": choice, "threshold": {"rule": protocol.THRESHOLD_RULE, "value": deployed.threshold},
    "parts": list(PARTS), "network": ctx.ws.read_results("03_classification")["model_checkpoints"][str(first_seed)],
    "comparison": comparison, "rep2": {name: value for name, value in final_eval.items() if name != "six_class"},
    "baseline_rep2": baseline_rep2, "versus_baseline_rep2": versus_baseline,
    "versus_baseline_without_frame_rep2": without_frame, "fit_on_labels_only_rep2": labels_only_fit,
    "parts_by_origin": parts_table, "breakdown": breakdown, "per_seed": per_seed,
    "hardness_spearman": correlations, "predict_seconds": predict_seconds,
    "predict_images": ctx.profile.anomaly.predict_images, "unseen_kinds": unseen,
    "description": description and {**description, **description_study},
    "frame": frame, "bundle_images_per_second": bundle_rate,
}))

# %% [markdown]
# ## Ours against the plain baseline
#
# Every headline number of the deployed model against the plain CNN on the
# same images, with the paired bootstrap interval of the difference: the
# verdict is "better" or "worse" only where the interval excludes zero.

# %%
#| label: tbl-versus-baseline
#| tbl-cap: "Our deployed model against the plain CNN baseline on the same images: accuracy on the 26,000 unlabeled images (answer key) and on set 2's clean images, and anomaly detection on set 2. The difference comes with a 95 % paired bootstrap interval (the same images resampled for both); the verdict reads that interval (for the false-positive rate, lower is better)."
Markdown(tables.versus_baseline(ctx.ws.all_results()).to_markdown(index=False))

# %% [markdown]
# ## Every system in one table
#
# The comparison systems and ours, on the same data in this run:
# the quality of each one's ten-dimensional description (k-means, notebook 02),
# its classification accuracy (notebook 03) and its anomaly detection (this
# notebook), on the unlabeled images and representative set 2.

# %%
#| label: tbl-systems
#| tbl-cap: "All systems on the same data in one run. k-means: accuracy (%) of five k-means clusters of the ten-dimensional description on the unlabeled images (Hungarian matching, answer key); accuracy: classification accuracy (%) on the unlabeled images; ROC AUC: anomaly detection on representative set 2 with the system's own score. A dash: the system does not provide it."
Markdown(tables.systems(ctx.ws.all_results()).to_markdown(index=False))

# %%
#| label: tbl-targets
#| tbl-cap: "The project's targets, set before any run, against this run, with 95 % bootstrap intervals where they apply (paired for the two gains, which must also exclude zero); 'missed by' is the distance to the target in the quantity's unit."
Markdown(targets_table(summary(ctx.ws.all_results()), predict_seconds).to_markdown(index=False))
