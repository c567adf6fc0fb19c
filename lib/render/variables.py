"""The numbers the report quotes (`{{< var section.key >}}`), derived from results/*.json in one place.

Notebooks write numbers (results/<notebook>.json, keyed by the ids of
`lib.results`, with each protocol decision stored as it was made); the
functions here turn them into the strings the report text shows, with display
names from `lib.render.names`. They read decisions, never remake them. Each is
registered for one section of report/_variables.yml and returns None while the
results it needs do not exist yet (a notebook that has not run). The pipeline
calls `write_report_variables` once all notebooks ran, and `python -m lib
render` before rendering.

Every variable written here is read by a page of the report (report/index.qmd and the files it includes);
tests/test_report_variables.py fails when one is not, so a number the text stopped quoting is deleted here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from lib.errors import UserError
from lib.render.format import interval, mean_std, pct, signed
from lib.render.names import ARMS, SCORES, origin
from lib.render.tables import SOURCE_NAMES, transfer_evaluated_on, verdict
from lib.results import COMBINATIONS

SECTIONS: dict[str, Callable[[dict], dict | None]] = {}


def section(name: str):
    """Register `function(results) -> dict | None` as the producer of report variables `name.*`."""

    def register(function):
        SECTIONS[name] = function
        return function

    return register


def load_results(results_dir) -> dict[str, dict]:
    """Every results/*.json by file stem (e.g. "03_classification", "summary")."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(results_dir.glob("*.json"))}


def write_report_variables(ws) -> list[str]:
    """Recompute every section whose results exist; return the sections written."""
    results = load_results(ws.results)
    written = []
    for name, function in SECTIONS.items():
        try:
            values = function(results)
        except (KeyError, TypeError) as error:
            raise UserError(f"report variables '{name}': the results in {ws.results} lack {error}; they were "
                            f"written by another version of the notebooks: rerun them") from None
        if values is not None:
            ws.update_report_variables(name, values, set(SECTIONS) | {"run"})  # run: written by the pipeline
            written.append(name)
    return written


def difference_phrase(difference: dict, scale: float = 100.0, unit: str = " points", digits: int = 2,
                      lower_is_better: bool = False) -> str:
    """"+0.21 points (95 % paired CI [+0.10, +0.32]; better)": a paired difference, its interval, and the verdict
    that interval gives."""
    return (f"{signed(scale * difference['value'], digits)}{unit} (95 % paired CI "
            f"{interval(difference['ci'], digits, scale, sign=True)}; {verdict(difference, lower_is_better)})")



# --------------------------------------------------------------------------- sections


@section("data")
def data_variables(results: dict) -> dict | None:
    """Sizes and anomaly counts of notebook 01."""
    r = results.get("01_data_exploration")
    if r is None:
        return None
    sizes, anomalies = r["sizes"], r["anomalies"]
    return {
        "n_unlabeled": f"{sizes['unlabeled']:,}",
        "n_labeled": f"{sizes['labeled']:,}",
        "n_anomalies_rep2": str(anomalies["rep2"]),
        "one_anomaly_recall": f"{100 / anomalies['rep2']:.1f}",
    }


@section("replica")
def replica_variables(results: dict) -> dict | None:
    """How the replica is built (lib.data.replica): classes, draws and corruption kinds, from the builder's code;
    written once notebook 01 has run."""
    from lib.data import fashion_mnist, replica

    if "01_data_exploration" not in results:
        return None
    counts = replica.Counts()
    return {
        "foreign_classes": ", ".join(fashion_mnist.CLASS_NAMES[label] for label in replica.FOREIGN),
        "n_labeled": f"{counts.labeled:,}", "n_unlabeled": f"{counts.unlabeled:,}",
        "clean_per_set": f"{counts.clean_per_set:,}", "corrupted_per_set": str(counts.corrupted_per_set),
        "foreign_per_set": str(counts.foreign_per_set),
        "images_per_set": f"{counts.clean_per_set + counts.foreign_per_set + counts.corrupted_per_set:,}",
        "corruptions": "; ".join(f"{name.replace('_', ' ')}: {severity}"
                                 for name, (_, severity) in replica.CORRUPTIONS.items()),
    }


@section("model")
def model_variables(results: dict) -> dict | None:
    """The project's model's settings, as the run used them (notebook 03's "model_settings")."""
    run = results.get("03_classification")
    if run is None:
        return None
    settings = run["model_settings"]
    network, labels_only, fixmatch = settings["network"], settings["labels_only"], settings["fixmatch"]
    smoothing = labels_only["label_smoothing"]
    classes = network.get("n_classes", 5)
    decoder = network["decoder_width"]
    return {"widths": "-".join(map(str, network["widths"])), "dropout": f"{network['dropout']:g}",
            "decoder_channels": f"{4 * decoder}, {2 * decoder} and {decoder}",
            "labels_only_epochs": f"{labels_only['epochs']:g}", "batch": str(labels_only["batch"]),
            "lr": f"{labels_only['lr']:g}", "weight_decay": f"{labels_only['weight_decay']:g}",
            "shift_pixels": f"{labels_only['augment']['shift'] * 32:g}",
            "label_smoothing": f"{smoothing:g}",
            "confidence_cap": f"{1 - smoothing + smoothing / classes:.2f}",
            "reconstruction_weight": f"{settings['reconstruction_weight']:g}",
            "fixmatch_epochs": f"{fixmatch['training']['epochs']:g}",
            "fixmatch_lr": f"{fixmatch['training']['lr']:g}",
            "fixmatch_labeled_batch": str(fixmatch["labeled_batch"]),
            "fixmatch_unlabeled_batch": str(fixmatch["training"]["batch"]),
            "fixmatch_confidence": f"{fixmatch['confidence']:g}",
            "fixmatch_ema_decay": f"{fixmatch['ema_decay']:g}",
            "fixmatch_unlabeled_weight": f"{fixmatch['unlabeled_weight']:g}",
            "oracle_epochs": f"{settings['oracle']['epochs']:g}"}


def choice_sentence(choice: dict) -> str:
    """The arm choice in words, from the decision's evidence (gain of FixMatch over labels only on set 1, and the
    seed standard deviations it was weighed against)."""
    evidence, chosen = choice["evidence"], choice["chosen"]
    arm = "fixmatch" if "fixmatch" in evidence["gain"] else max(evidence["gain"], key=evidence["gain"].get)
    spread = max(value for value in (evidence["std"].get(arm), evidence["std"].get("labels_only"))
                 if value is not None)
    gain = 100 * evidence["gain"][arm]
    if chosen != "labels_only":
        return (f"On set 1's clean images the {ARMS[chosen]} arm beats the labels-only arm by {gain:.2f} points, "
                f"more than the larger seed standard deviation ({100 * spread:.2f}), so it is the model")
    return (f"On set 1's clean images the {ARMS[arm]} arm differs from the labels-only arm by {signed(gain, 2)} "
            f"points, not more than the larger seed standard deviation ({100 * spread:.2f}), so the model is the "
            f"labels-only arm")


@section("classification")
def classification_variables(results: dict) -> dict | None:
    run = results.get("03_classification")
    if run is None:
        return None
    accuracy, choice = run["accuracy"], run["choice"]
    gains, passes = run["gain_vs_labels_only"]["fixmatch"], run["passes"]

    def value(name, set_name):
        return accuracy.get(name, {}).get(set_name, {}).get("value")

    def ci(name, set_name):
        estimate = accuracy.get(name, {}).get(set_name, {})
        return interval(estimate["ci"], 2, 100) if estimate.get("ci") else "n/a"

    pseudo = run.get("pseudo_labels") or {}
    values = {
        "n_seeds": str(len(run["seeds"])),
        "approach": ("trained on the labels and then continued with FixMatch on the unlabeled images, which set 1 "
                     "chose over labels-only training"
                     if choice["chosen"] == "fixmatch" else
                     "trained on the labels alone: continued with FixMatch on the unlabeled images, it did not beat "
                     "labels-only training on set 1 by more than the seed spread, so set 1 kept the labels-only "
                     "network"),
        "accuracy_unlabeled": pct(value("model", "unlabeled")), "accuracy_unlabeled_ci": ci("model", "unlabeled"),
        "accuracy_rep2_clean": pct(value("model", "rep2_clean")),
        "accuracy_rep2_clean_ci": ci("model", "rep2_clean"),
        "accuracy_oracle": pct(value("oracle", "rep2_clean")), "accuracy_oracle_ci": ci("oracle", "rep2_clean"),
        "ece": pct(run["ece"]["value"], 1),
        "n_train": f"{run['split']['train']:,}",
        "model_images_per_second": f"{run['images_per_second_cpu']['model']:,.0f}",
        "pseudo_confident": pct(pseudo.get("confident_fraction"), 1),
        "pseudo_accuracy": pct(pseudo.get("accuracy"), 1),
        "fixmatch_seconds": f"{passes['fixmatch']['seconds']:.0f}",
        "labels_only_seconds": f"{passes['labels_only']['seconds']:.0f}",
        "choice_sentence": choice_sentence(choice),
        "gain_over_baseline_unlabeled_phrase": difference_phrase(run["gain_over_baseline"]["unlabeled"]),
    }
    for set_name in ("unlabeled", "rep2_clean"):
        values[f"fixmatch_gain_{set_name}_phrase"] = difference_phrase(gains[set_name])
    return values


@section("ood")
def ood_variables(results: dict) -> dict | None:
    from lib.config import get_profile

    run = results.get("04_ood_scoring")
    if run is None:
        return None
    rep2, chosen, evidence = run["rep2"], run["choice"]["chosen"], run["choice"]["evidence"]
    worst = min(run["breakdown"], key=lambda row: row["flagged"]) if run["breakdown"] else None
    profile = results.get("02_pretraining", {}).get("profile") or results.get("summary", {}).get("profile", "cpu")
    anomaly = get_profile(profile).anomaly
    return {
        "chosen": SCORES[chosen],
        "parts_chosen": ", ".join(SCORES[p] for p in COMBINATIONS[chosen]),
        "n_combinations": str(len(evidence)),
        "knn_k": str(anomaly.knn_k), "knn_bank": f"{anomaly.knn_bank:,}",
        "auroc_rep2": f"{rep2['auroc']['value']:.3f}", "auroc_rep2_ci": interval(rep2["auroc"]["ci"]),
        "ap_rep2": f"{rep2['average_precision']['value']:.3f}", "ap_rep2_ci": interval(rep2["average_precision"]["ci"]),
        "fpr95_rep2": f"{rep2['fpr_at_95_tpr']['value']:.3f}", "fpr95_rep2_ci": interval(rep2["fpr_at_95_tpr"]["ci"]),
        "precision_rep2": f"{rep2['at_threshold']['precision']:.3f}",
        "recall_rep2": f"{rep2['at_threshold']['recall']:.3f}",
        "macro_f1_rep2": f"{rep2['macro_f1']['value']:.3f}", "macro_f1_rep2_ci": interval(rep2["macro_f1"]["ci"]),
        "bundle_images_per_second": f"{run['bundle_images_per_second']:,.0f}",
        "predict_seconds": f"{run['predict_seconds']:.1f}",
        "worst_origin": origin(worst["origin"]) if worst else "n/a",
        "worst_origin_flagged": f"{100 * worst['flagged']:.0f}" if worst else "n/a",
        "versus_baseline_auroc_phrase": difference_phrase(run["versus_baseline_rep2"]["auroc"], 1, "", 3),
        **seed_variables(run["per_seed"]),
        **unseen_variables(run.get("unseen_kinds")),
        **frame_variables(run.get("frame"), run["versus_baseline_without_frame_rep2"]["versus_baseline"]),
        "labels_only_statistics_sentence": labels_only_statistics_sentence(
            run["fit_on_labels_only_rep2"]["difference"]),
    }


def labels_only_statistics_sentence(difference: dict) -> str:
    """The detectors fitted with the unlabeled images too against fitted on the labeled images alone (ROC AUC on
    set 2, paired): what the unlabeled images add to detection."""
    return ("Fitted with the unlabeled images as well as the labeled ones, against the labeled images alone, the "
            f"detectors' ROC AUC on set 2 changes by {difference_phrase(difference['auroc'], 1, '', 3)}")


def frame_variables(frame: dict | None, without_versus_baseline: dict) -> dict:
    """The chosen score with and without its frame part, on set 2 and on unpadded clean images, and the score
    without the frame part against the baseline (paired)."""
    values = {"frame_in_score": "uses" if frame else "does not use"}
    for name in ("with", "without"):
        row = (frame or {}).get(name)
        values.update({f"frame_{name}_auroc_rep2": f"{row['auroc_rep2']:.3f}" if row else "n/a",
                       f"frame_{name}_ap_rep2": f"{row['ap_rep2']:.3f}" if row else "n/a",
                       f"frame_{name}_flagged_unpadded": f"{100 * row['flagged_unpadded_rep2']:.1f}" if row
                       else "n/a"})
    auroc, ap = without_versus_baseline["auroc"], without_versus_baseline["average_precision"]
    values["without_frame_versus_baseline_auroc_phrase"] = difference_phrase(auroc, 1, "", 3)
    values["without_frame_sentence"] = (
        f"Without the frame part, against the baseline, ROC AUC differs by {difference_phrase(auroc, 1, '', 3)} "
        f"and AP by {difference_phrase(ap, 1, '', 3)}: a verdict that rests on the frame part holds only for data "
        "padded like the replica")
    return values


def seed_variables(per_seed: list[dict]) -> dict:
    """Mean ± standard deviation over seeds of the complete model's numbers (notebook 04)."""
    def column(name):
        return [row[name] for row in per_seed if row.get(name) is not None]

    return {"seeds_count": str(len(per_seed)), "seeds_auroc": mean_std(column("auroc_rep2"), 3),
            "seeds_kmeans": mean_std(column("kmeans_unlabeled"), 2, 100)}


def unseen_variables(unseen: dict | None) -> dict:
    """The worst unseen anomaly kind, how much pure noise is flagged, and the kinds below ROC AUC 0.95."""
    if not unseen:
        return {"unseen_count": "n/a", "unseen_worst_kind": "n/a", "unseen_min_auroc": "n/a",
                "unseen_noise_flagged": "n/a", "unseen_below_sentence": "The unseen-kind check did not run"}
    worst = min(unseen["kinds"], key=lambda row: row["auroc"])
    noise = next(row for row in unseen["kinds"] if row["kind"] == "uniform_noise")
    below = [row for row in unseen["kinds"] if row["auroc"] < 0.95]
    listed = "; ".join(f"{origin(row['kind'])} (ROC AUC {row['auroc']:.3f}, {100 * row['flagged']:.0f} % flagged)"
                       for row in below)
    return {"unseen_count": str(len(unseen["kinds"])), "unseen_worst_kind": origin(worst["kind"]),
            "unseen_min_auroc": f"{worst['auroc']:.3f}",
            "unseen_noise_flagged": f"{100 * noise['flagged']:.0f}",
            "unseen_below_sentence": (f"Kinds with ROC AUC below 0.95: {listed}" if below
                                      else "Every unseen kind reaches ROC AUC 0.95 or more")}


@section("description")
def description_variables(results: dict) -> dict | None:
    """The description's k-means accuracy against the classifier's accuracy on the same images (how far it repeats
    the classifier), against PCA-10 of the plain CNN's features (the fair reference) and of the pixels, and what
    its ten numbers hold within a class (notebook 04's description study: reconstruction against PCA-10 of the
    pixels and the class means). Every direction is read from the paired intervals; "not measured" while the
    results lack the study."""
    ood, classification = results.get("04_ood_scoring"), results.get("03_classification")
    if ood is None or classification is None or not ood.get("description"):
        return None
    description = ood["description"]
    kmeans = description["kmeans_accuracy"]
    classifier = classification["accuracy"]["model"].get("unlabeled", {}).get("value")
    pixels = ((description.get("kmeans") or {}).get("pixels_pca10") or {}).get("kmeans_accuracy", {}).get("value")
    if pixels is None:  # the study predates this run's results: notebook 02's PCA-10 of the pixels
        pixels = results.get("02_pretraining", {}).get("methods", {}).get("pca", {}).get("kmeans_accuracy")
    return {"kmeans": pct(kmeans["value"]), "kmeans_ci": interval(kmeans["ci"], 2, 100),
            "relation": relation_to_classifier(kmeans["value"], classifier), "kmeans_pca": pct(pixels, 1),
            "kmeans_versus_baseline_sentence": kmeans_versus_baseline_sentence(description),
            "within_class_sentence": within_class_sentence(description.get("within_class_share")),
            "reconstruction_sentence": reconstruction_sentence(description),
            "beyond_class_phrase": beyond_class_phrase(description.get("reconstruction_versus")),
            "improvement": description_improvement(description.get("reconstruction_versus"))}


def kmeans_versus_baseline_sentence(description: dict) -> str:
    """k-means on the description against k-means on PCA-10 of the plain CNN's pooled features (paired accuracy
    difference): whether the description separates the classes better than any network trained on the labels."""
    versus, kmeans = description.get("kmeans_versus"), description.get("kmeans")
    if not versus or not kmeans:
        return ("The fair reference, k-means on PCA-10 of the plain CNN's pooled features, was not measured in "
                "this run")
    difference, reference = versus["baseline_pca10"], kmeans["baseline_pca10"]["kmeans_accuracy"]
    consequence = {
        "better": "so the description's modes are purer than what a network trained on the same labels gives at the "
                  "same dimension",
        "worse": "so a network trained on the same labels, its features reduced to ten numbers, separates the "
                 "classes better than the description",
        "no detectable difference": "so a network trained on the same labels, its features reduced to ten numbers, "
                                    "separates the classes as well: the description's k-means accuracy is what "
                                    "training on the labels gives, not something the description adds"}
    return (f"The fair reference, k-means on PCA-10 of the plain CNN's pooled features, reaches "
            f"{pct(reference['value'])} % {interval(reference['ci'], 2, 100)}; the description differs from it by "
            f"{difference_phrase(difference)}, {consequence[verdict(difference)]}")


def within_class_sentence(share: dict | None) -> str:
    """The share of each description's variance that lies within the classes, and what it says."""
    if not share:
        return "How much of the description's variance lies within the classes was not measured in this run"
    ours = share["description"]
    return (f"{pct(ours, 1)} % of the description's variance lies within the classes, against "
            f"{pct(share['baseline_pca10'], 1)} % for PCA-10 of the plain CNN's features and "
            f"{pct(share['pixels_pca10'], 1)} % for PCA-10 of the pixels: "
            + ("most of what the description varies by is the class" if ours < 0.5 else
               "most of the description's variance lies within the classes"))


MSE_SCALE, MSE_UNIT = 1000.0, " ×10⁻³"  # mean squared errors per pixel are quoted in thousandths


def _mse(estimate: dict) -> str:
    return f"{MSE_SCALE * estimate['value']:.2f}{MSE_UNIT} {interval(estimate['ci'], 2, MSE_SCALE)}"


def _mse_difference(difference: dict) -> str:
    return difference_phrase(difference, MSE_SCALE, MSE_UNIT, 2, lower_is_better=True)


VERSUS_PIXELS = {"better": "The decoder beats PCA-10 of the pixels: its error is lower by {}",
                 "worse": "The decoder does not beat PCA-10 of the pixels: its error is higher by {}",
                 "no detectable difference": "The decoder and PCA-10 of the pixels cannot be told apart ({})"}
VERSUS_CLASS = {"better": "its error is below the class means' by {}, so the description carries more than the "
                          "class: something of how each image differs from its class's average",
                "worse": "its error is above even the class means' by {}, so the decoder draws less from the ten "
                         "numbers than the class alone gives, and this measurement shows nothing of the description "
                         "beyond the class",
                "no detectable difference": "its error cannot be told from the class means' ({}), so the "
                                            "description carries no more than the class, as far as the decoder can "
                                            "draw it"}


def reconstruction_sentence(description: dict) -> str:
    """The decoder's reconstruction error from the ten numbers against PCA-10 of the pixels and the mean image of
    the predicted class, with paired verdicts (lower is better)."""
    mse, versus = description.get("reconstruction_mse"), description.get("reconstruction_versus")
    if not mse or not versus:
        return "What the ten numbers hold within a class was not measured in this run"
    pixels, classes = versus["pixels_pca10"], versus["class_mean"]
    return (f"From its ten numbers alone the decoder redraws the {description['images']:,} unlabeled images with a "
            f"mean squared error per pixel of {_mse(mse['decoder'])}, against {_mse(mse['pixels_pca10'])} for "
            f"PCA-10 of the pixels and {_mse(mse['class_mean'])} for the mean image of the predicted class. "
            + VERSUS_PIXELS[verdict(pixels, True)].format(_mse_difference(pixels)) + "; "
            + VERSUS_CLASS[verdict(classes, True)].format(_mse_difference(classes)))


def beyond_class_phrase(versus: dict | None) -> str:
    """The reconstruction verdicts in a few words, for the conclusion."""
    if not versus:
        return "and what it holds within a class was not measured"
    pixels, classes = verdict(versus["pixels_pca10"], True), verdict(versus["class_mean"], True)
    return ("and drawn from its ten numbers the decoder "
            + {"better": "beats", "worse": "does not beat", "no detectable difference": "matches"}[pixels]
            + " PCA-10 of the pixels and "
            + {"better": "carries more than the class",
               "worse": "holds less than the class means",
               "no detectable difference": "carries no more than the class"}[classes])


def description_improvement(versus: dict | None) -> str:
    """The improvement step for the description, from what the reconstruction study measured."""
    step = ("train the description with a within-class objective, for example a contrastive term on the "
            "unlabeled images added to the class head, so that its ten numbers hold what varies within a class")
    if not versus:
        return ("Measure what the ten numbers hold within a class (reconstruction against PCA-10 of the pixels and "
                "against the class means), and " + step)
    pixels, classes = verdict(versus["pixels_pca10"], True), verdict(versus["class_mean"], True)
    found = ("the decoder " + {"better": "beats", "worse": "does not beat",
                               "no detectable difference": "does no better than"}[pixels]
             + " PCA-10 of the pixels and "
             + {"better": "carries more than the class means", "worse": "draws less than the class means",
                "no detectable difference": "carries no more than the class means"}[classes])
    return f"{found[:1].upper()}{found[1:]}: {step}"


REPEATS_WITHIN = 1.0  # points: k-means this close to the classifier's accuracy repeats the classifier


def relation_to_classifier(kmeans: float, classifier: float | None) -> str:
    """How the description's k-means accuracy relates to the classifier's accuracy on the same images, in words."""
    if classifier is None:
        return "not compared with the classifier (no answer key)"
    difference = 100 * (kmeans - classifier)
    if abs(difference) <= REPEATS_WITHIN:
        return (f"within {abs(difference):.2f} points of the classifier's own accuracy on the same images "
                f"({pct(classifier)} %), so the description mostly repeats the classifier")
    return (f"{abs(difference):.2f} points {'below' if difference < 0 else 'above'} the classifier's own accuracy on "
            f"the same images ({pct(classifier)} %), so the description does not merely repeat the classifier")


FRAGILE_SHARE = 0.15  # a verdict whose interval ends this close to zero (share of its width) may flip elsewhere


def fragile(difference: dict) -> bool:
    """Whether the interval's end nearest zero lies within FRAGILE_SHARE of the interval's width from zero: close
    enough for the shift measured between two processors to flip its verdict."""
    low, high = difference["ci"]
    return min(abs(low), abs(high)) <= FRAGILE_SHARE * (high - low)


@section("validity")
def validity_variables(results: dict) -> dict | None:
    """The verdicts of this run that sit close enough to zero to depend on the machine."""
    classification, ood = results.get("03_classification"), results.get("04_ood_scoring")
    if classification is None or ood is None:
        return None
    comparisons = [
        ("accuracy on the 26,000 against the baseline", classification["gain_over_baseline"]["unlabeled"], False),
        ("accuracy on set 2's clean images against the baseline", classification["gain_over_baseline"]["rep2_clean"],
         False),
        ("FixMatch against labels only on the 26,000", classification["gain_vs_labels_only"]["fixmatch"]["unlabeled"],
         False),
        ("FixMatch against labels only on set 2's clean images",
         classification["gain_vs_labels_only"]["fixmatch"]["rep2_clean"], False),
        ("ROC AUC against the baseline", ood["versus_baseline_rep2"]["auroc"], False),
        ("AP against the baseline", ood["versus_baseline_rep2"]["average_precision"], False),
        ("FPR95 against the baseline", ood["versus_baseline_rep2"]["fpr_at_95_tpr"], True),
    ]
    without = ood["versus_baseline_without_frame_rep2"]["versus_baseline"]
    comparisons += [(f"{name} without the frame part against the baseline", without[key], key == "fpr_at_95_tpr")
                    for name, key in (("ROC AUC", "auroc"), ("AP", "average_precision"), ("FPR95", "fpr_at_95_tpr"))]
    close = [f"{name} ({verdict(d, lower)}, {interval(d['ci'], 3, sign=True)})"
             for name, d, lower in comparisons if fragile(d)]
    return {"fragile_share": f"{100 * FRAGILE_SHARE:.0f} %", "fragile_verdicts": "; ".join(close) or "none"}


@section("improvements")
def improvement_variables(results: dict) -> dict | None:
    """The future-improvement steps whose reason is a measured shortfall, stated with its numbers."""
    classification, ood = results.get("03_classification"), results.get("04_ood_scoring")
    if classification is None or ood is None:
        return None
    gains = classification["gain_vs_labels_only"]["fixmatch"]
    oracle = classification["accuracy"].get("oracle", {}).get("rep2_clean", {}).get("value")
    model = classification["accuracy"]["model"]["rep2_clean"]["value"]
    pseudo = classification.get("pseudo_labels") or {}
    passes = classification.get("passes", {}).get("fixmatch", {}).get("unlabeled")
    course = curve_course(classification.get("curves", {}).get("fixmatch", []))
    steps = []
    if course is not None:
        steps.append(f"On set 1 its accuracy {course} (@fig-learning-curves): a ramp-up of the unlabeled loss's "
                     "weight over the first passes, a milder strong view and more passes (the GPU configuration "
                     "below) are the first steps to measure")
    if pseudo.get("confident_fraction") is not None:
        steps.append(f"At the end {pct(pseudo['confident_fraction'], 1)} % of the unlabeled images pass the "
                     f"pseudo-label threshold, and {pct(pseudo['accuracy'], 1)} % of those labels are right: "
                     "a threshold that adapts per class (FlexMatch-style) or soft pseudo-labels would let more of "
                     "the unlabeled images teach")
    classification_text = (f"over {passes:g} passes, FixMatch changes accuracy by "
                           f"{difference_phrase(gains['unlabeled'])} on the 26,000 unlabeled images and by "
                           f"{difference_phrase(gains['rep2_clean'])} on set 2's clean images")
    if oracle is not None:
        classification_text += f"; the oracle is {100 * (oracle - model):.2f} points above the deployed network there"
    classification_text = ". ".join([classification_text[:1].upper() + classification_text[1:], *steps]) + "."
    worst = min(ood["breakdown"], key=lambda row: row["flagged"]) if ood["breakdown"] else None
    unseen = ood.get("unseen_kinds")
    weakest = min(unseen["kinds"], key=lambda row: row["auroc"]) if unseen else None
    frame = ood.get("frame") or {}
    detection = []
    if worst:
        detection.append(f"the origin flagged least often is {origin(worst['origin'])} "
                         f"({100 * worst['flagged']:.0f} % flagged)")
    if weakest:
        detection.append(f"the weakest unseen kind, {origin(weakest['kind'])}, reaches ROC AUC {weakest['auroc']:.3f}")
    if "with" in frame and "without" in frame:
        detection.append(f"dropping the frame part moves AP on set 2 from {frame['with']['ap_rep2']:.3f} to "
                         f"{frame['without']['ap_rep2']:.3f}")
    detection_text = ("; ".join(detection) + ". Parts that do not read the padding and look at local texture "
                      "(Mahalanobis distances of first-stage feature maps per location rather than pooled, or a "
                      "patch-level kNN distance), and detectors refitted on the FixMatch network's confident "
                      "pseudo-labels, are candidates that set 1 can choose among like the present parts.")
    return {"classification": classification_text, "detection": detection_text[:1].upper() + detection_text[1:],
            "scale": scale_sentence()}


def scale_sentence() -> str:
    """What the gpu profile changes in the model, read from lib.config, for the improvements list."""
    from lib.config import get_profile

    cpu, gpu = get_profile("cpu").model, get_profile("gpu").model
    return (f"A configuration for one GPU widens the network from {cpu.network.widths[-1]} to {gpu.network.widths[-1]} "
            f"channels in its last stage, trains the labels-only arm for {gpu.labels_only.epochs} passes instead of "
            f"{cpu.labels_only.epochs} and FixMatch for {gpu.fixmatch.training.epochs} passes instead of "
            f"{cpu.fixmatch.training.epochs}, with {gpu.fixmatch.training.batch} unlabeled images per step instead "
            f"of {cpu.fixmatch.training.batch}, over {len(gpu.seeds)} seeds instead of {len(cpu.seeds)}")


def curve_course(curves: list[dict]) -> str | None:
    """"fell by 0.63 points over the first pass and ended 0.47 points below its start": the seed-mean accuracy
    on set 1's clean images of a learning curve that starts at epoch 0, after its first record and at its end
    (None with fewer than two records after the start)."""
    by_epoch: dict[float, list[float]] = {}
    for row in curves:
        if row.get("rep1_clean") is not None:
            by_epoch.setdefault(row["epoch"], []).append(row["rep1_clean"])
    epochs = sorted(by_epoch)
    if len(epochs) < 3:
        return None
    mean = {e: 100 * sum(v) / len(v) for e, v in by_epoch.items()}
    first, end = mean[epochs[1]] - mean[epochs[0]], mean[epochs[-1]] - mean[epochs[0]]
    moved = f"rose by {first:.2f}" if first > 0 else f"fell by {-first:.2f}"
    ended = (f"{abs(end):.2f} points {'above' if end > 0 else 'below'} its start" if round(end, 2) != 0
             else "where it started")
    return f"{moved} points over the first pass and ended {ended}"


@section("pretraining")
def pretraining_variables(results: dict) -> dict | None:
    """Notebook 02: the contrastive comparison model's temperature and the checkpoint study."""
    run = results.get("02_pretraining")
    if run is None:
        return None
    plateau = run["checkpoint_plateau"]
    return {
        "temperature": f"{run['settings']['contrastive']['network']['temperature']:g}",
        "checkpoint_plateau_epoch": str(plateau["epoch"]),
        "checkpoint_plateau_knn": pct(plateau["knn_accuracy"], 1),
        "checkpoint_last_knn": pct(plateau["last_knn_accuracy"], 1),
        "checkpoint_error_change": error_change(round(100 * plateau["error_drop"])),
        "checkpoint_count": str(plateau["count"]),
    }


def error_change(drop_percent: int) -> str:
    """How the reconstruction error moves after the accuracy plateau, as the report's sentence reads it."""
    if drop_percent > 0:
        return f"falls another {drop_percent} %"
    return f"rises by {-drop_percent} %" if drop_percent < 0 else "stays within 0.5 %"


# --------------------------------------------------------------------------- words for differences (notebook 05)


def effect_word(difference: dict) -> str:
    """"helps" / "hurts" when the interval of a difference {"value", "ci"} excludes zero, else
    "makes no measurable difference"."""
    low, high = difference["ci"]
    if low > 0:
        return "helps"
    if high < 0:
        return "hurts"
    return "makes no measurable difference"


def effect_phrase(difference: dict, unit: float = 100.0, what: str = "points", digits: int = 2) -> str:
    """E.g. "helps (+4.1 points, 95 % CI [+2.0, +6.3])", for a difference of accuracies in [0, 1]."""
    return (f"{effect_word(difference)} ({signed(unit * difference['value'], digits)} {what}, "
            f"95 % CI {interval(difference['ci'], digits, unit, sign=True)})")


def ranking(entries: dict) -> str:
    """"a (91.5) ≥ b (83.8) ≥ c (80.1)": names sorted by value, best first.

    `entries` maps a name to (value to sort by, text to show beside the name).
    """
    ordered = sorted(entries.items(), key=lambda item: -item[1][0])
    return " ≥ ".join(f"{name} ({text})" for name, (_, text) in ordered)


HARM_SOURCES = ("foreign_supervised", "foreign_contrastive")  # the sources that hold the anomaly classes


@section("transfer")
def transfer_variables(results: dict) -> dict | None:
    """Notebook 05: sources, budgets, the frozen-probe ranking, the effects of every source on accuracy and on the
    foreign-article ROC AUC in words, the test of the "harmful by construction" prediction and one sentence for
    the conclusion."""
    r = results.get("05_transfer_learning")
    if r is None:
        return None
    names, budgets = SOURCE_NAMES, r["budgets"]
    sources = [k for k in r["sources_order"] if k in r["sources"] and k in names]  # this run's, in table order
    small, large = budgets[0], budgets[-1]
    runs = {(run["source"], run["labels"]): run for run in r["runs"]}
    auroc_gain = r["auroc_change_vs_scratch"]
    anomalies = r.get("rep1_anomalies")
    probe = {k: r["sources"][k]["frozen_linear_head_accuracy"][str(large)]["value"] for k in sources}
    variables = {
        "n_foreign_candidates": f"{r['leakage_filter']['foreign_candidates']:,}",
        "n_foreign_excluded": str(r["leakage_filter"]["excluded"]),
        "n_digits": f"{r['source_pools']['digits']:,}",
        "budget_small": f"{small:,}", "budget_large": f"{large:,}",
        "budgets": ", ".join(f"{b:,}" for b in budgets[:-1]) + f" and {large:,}",
        "finetune_steps": f"{r['settings']['finetune']['steps']:,}",
        "acc_scratch_large": pct(runs[("scratch", large)]["accuracy"]["value"], 1),
        "eval_name": transfer_evaluated_on(r["evaluated_on"]["unlabeled"], r["evaluated_on"]["images"]),
        "probe_rank_large": ranking({names[k]: (probe[k], f"{100 * probe[k]:.1f}") for k in sources}),
    }

    def listed(keys_and_differences, unit=100.0, what="points", digits=2):
        """Per effect word ("helps", "hurts", "makes no measurable difference"): "name (+1.2 points, ...)" items."""
        lists = {}
        for k, difference in keys_and_differences:
            lists.setdefault(effect_word(difference), []).append(
                f"{names[k]} ({effect_phrase(difference, unit, what, digits).split(' (', 1)[1]}")
        return {word: "; ".join(items) for word, items in lists.items()}

    words = (("helps", "helped"), ("hurts", "hurt"), ("makes no measurable difference", "no_effect"))
    found = {}
    for label, b in (("small", small), ("large", large)):
        found[label] = listed([(k, runs[(k, b)]["gain_vs_scratch"]) for k in sources if k != "scratch"])
        for word, key in words:
            variables[f"accuracy_{key}_{label}"] = found[label].get(word, "none")
    foreign = {k: auroc_gain[f"{k}.foreign.{large}"] for k in sources if k != "scratch"
               and f"{k}.foreign.{large}" in auroc_gain}
    found_auroc = listed(foreign.items(), 1, "ROC AUC", 3)
    for word, key in words:
        variables[f"auroc_foreign_{key}"] = found_auroc.get(word, "none")

    variables["digits_versus_related_sentence"] = digits_versus_related(
        {k: runs[(k, small)]["gain_vs_scratch"] for k in ("digits", "foreign_supervised") if (k, small) in runs},
        small)
    variables["harm_prediction_sentence"] = harm_prediction(
        {k: foreign[k] for k in HARM_SOURCES if k in foreign}, anomalies["foreign"] if anomalies else None)
    helped_small, helped_large = found["small"].get("helps"), found["large"].get("helps")
    variables["conclusion_sentence"] = (
        f"with {small:,} labels "
        + (f"the sources that raised accuracy measurably were {plain_names(helped_small)}" if helped_small
           else "no source raised accuracy measurably")
        + f", and with {large:,} labels "
        + (f"{plain_names(helped_large)} did" if helped_large else "none did"))
    return variables


def plain_names(items: str) -> str:
    """The source names of a listed(...) string, without their numbers."""
    return " and ".join(item.split(" (", 1)[0] for item in items.split("; "))


def digits_versus_related(gains: dict, budget: int) -> str:
    """The mismatched (digits) and the related supervised source at the smallest budget, side by side, and what this
    study can and cannot say about why they differ."""
    if len(gains) < 2:
        return ""
    digits, related = gains["digits"], gains["foreign_supervised"]
    if effect_word(digits) == effect_word(related):
        plural = {"helps": "help", "hurts": "hurt"}.get(effect_word(digits), "make no measurable difference")
        numbers = [effect_phrase(d).removeprefix(effect_word(d) + " ") for d in (digits, related)]
        return (f"With {budget:,} labels the digits {numbers[0]} and the related supervised source {numbers[1]} "
                f"both {plural}.")
    return (f"With {budget:,} labels the digits source {effect_phrase(digits)} while the related supervised source "
            f"{effect_phrase(related)}. This study does not measure why; one explanation it cannot exclude is that "
            "features learned to tell the foreign classes apart are tuned to clothing shapes that are not our "
            "classes, while stroke features of digits are generic edge detectors; with one seed per source the "
            "difference may also be chance.")


def harm_prediction(changes: dict, n_foreign: int | None) -> str:
    """Whether the sources holding the anomaly classes lowered the foreign-article ROC AUC as predicted, and how
    much the few foreign anomalies of set 1 allow to see."""
    if not changes:
        return "It was not measured in this run."
    hurt = [k for k, d in changes.items() if effect_word(d) == "hurts"]
    effects = "; ".join(f"{SOURCE_NAMES[k]}: {effect_phrase(d, 1, 'ROC AUC', 3)}" for k, d in changes.items())
    widest = max(d["ci"][1] - d["ci"][0] for d in changes.values())
    power = (f" With only {n_foreign} foreign anomalies in set 1, an interval is up to {widest:.3f} wide, so a "
             "smaller harm would go unseen." if n_foreign else "")
    if len(hurt) == len(changes):
        return f"The measurement bears this out ({effects}).{power}"
    if not hurt:
        return f"The measurement does not bear this out ({effects}): the prediction failed.{power}"
    held = ", ".join(SOURCE_NAMES[k] for k in hurt)
    failed = ", ".join(SOURCE_NAMES[k] for k in changes if k not in hurt)
    return (f"The measurement bears this out only in part ({effects}): the prediction held for {held} and "
            f"failed for {failed}.{power}")
