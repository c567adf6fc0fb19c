"""The numbers the report quotes (`{{< var section.key >}}`), derived from results/*.json in one place.

Notebooks write numbers (results/<notebook>.json, keyed by the ids of
`lib.results`, with each protocol decision stored as it was made); the
functions here turn them into the strings the report text shows, with display
names from `lib.render.names`. They read decisions, never remake them. Each is
registered for one section of report/_variables.yml and returns None while the
results it needs do not exist yet (a notebook that has not run). The pipeline
calls `write_report_variables` once all notebooks ran, and `python -m lib
render` before rendering.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from lib.errors import UserError
from lib.render.format import interval, mean_std, pct, signed
from lib.render.names import ARMS, DESCRIPTIONS, SCORES, origin
from lib.render.tables import SOURCE_NAMES, transfer_evaluated_on, verdict
from lib.results import COMBINATIONS, PARTS, flat

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
            ws.update_report_variables(name, values)
            written.append(name)
    return written


def difference_phrase(difference: dict, scale: float = 100.0, unit: str = " points", digits: int = 2,
                      lower_is_better: bool = False) -> str:
    """"+0.21 points (95 % paired CI [+0.10, +0.32]; better)": a paired difference, its interval, and the verdict
    that interval gives."""
    return (f"{signed(scale * difference['value'], digits)}{unit} (95 % paired CI "
            f"{interval(difference['ci'], digits, scale, sign=True)}; {verdict(difference, lower_is_better)})")


# --------------------------------------------------------------------------- sections, one per notebook


@section("classification")
def classification_variables(results: dict) -> dict | None:
    run = results.get("03_classification")
    if run is None:
        return None
    accuracy, choice, reference = run["accuracy"], run["choice"], run["reference_set"]
    chosen, per_seed, gains = choice["chosen"], run["per_seed"], run["gain_vs_labels_only"]

    def value(name, set_name):
        return accuracy.get(name, {}).get(set_name, {}).get("value")

    def ci(name, set_name):
        estimate = accuracy.get(name, {}).get(set_name, {})
        return interval(estimate["ci"], 2, 100) if estimate.get("ci") else "n/a"

    values = {
        "n_seeds": str(len(run["seeds"])), "seeds": ", ".join(map(str, run["seeds"])),
        "chosen": ARMS[chosen], "chosen_uses_unlabeled": "does not use" if chosen == "labels_only" else "uses",
        "teacher_accuracy": pct(run["teacher_accuracy"]),
        "accuracy_unlabeled": pct(value("model", "unlabeled")), "accuracy_unlabeled_ci": ci("model", "unlabeled"),
        "accuracy_rep2_clean": pct(value("model", "rep2_clean")),
        "accuracy_rep2_clean_ci": ci("model", "rep2_clean"),
        "accuracy_oracle": pct(value("oracle", "rep2_clean")), "accuracy_oracle_ci": ci("oracle", "rep2_clean"),
        "accuracy_supervised": pct(value("supervised_cnn", reference)),
        "accuracy_vae": pct(value("vae_probe", reference)),
        "accuracy_contrastive_probe": pct(value("contrastive_probe", reference)),
        "accuracy_baseline_unlabeled": pct(value("baseline", "unlabeled")),
        "accuracy_baseline_rep2_clean": pct(value("baseline", "rep2_clean")),
        "ece": pct(run["ece"]["value"]),
        "n_train": str(run["split"]["train"]), "n_val": str(run["split"]["validation"]),
        "fixmatch_steps": str(run["settings"]["fixmatch_steps"]), "mu": str(run["settings"]["unlabeled_ratio"]),
        "seed_spread_rep1": mean_std(per_seed[chosen]["rep1_clean"], 2, 100),
    }
    for arm, by_set in per_seed.items():
        values.update({f"{arm}_{set_name}": mean_std(seeds, 2, 100) for set_name, seeds in by_set.items()})
        values[f"{arm}_passes_labeled"] = f"{run['passes'][arm]['labeled']:g}"
        values[f"{arm}_passes_unlabeled"] = f"{run['passes'][arm]['unlabeled']:g}"
        for set_name, gain in gains.get(arm, {}).items():
            values[f"{arm}_gain_{set_name}"] = f"{signed(100 * gain['value'], 2)}"
            values[f"{arm}_gain_{set_name}_ci"] = interval(gain["ci"], 2, 100, sign=True)
            values[f"{arm}_gain_{set_name}_verdict"] = verdict(gain)
    values.update({f"labels_only_long_{set_name}": pct(value) for set_name, value in run["labels_only_long"].items()})
    values["long_check_sentence"] = long_check_sentence(run["labels_only_long"], per_seed["labels_only"])
    evidence = choice["evidence"]
    best = max(evidence["gain"], key=evidence["gain"].get)
    spread = max(value for value in (evidence["std"][best], evidence["std"]["labels_only"]) if value is not None)
    values["choice_sentence"] = (
        f"The {ARMS[chosen]} arm beats the labels-only arm on set 1's clean images by "
        f"{100 * evidence['gain'][chosen]:.2f} points, more than the larger seed standard deviation "
        f"({100 * spread:.2f}), so it is the model"
        if chosen != "labels_only" else
        f"No arm that learns from the unlabeled images beats the labels-only arm on set 1's clean images by more "
        f"than the larger seed standard deviation (the closest, the {ARMS[best]} arm, by "
        f"{signed(100 * evidence['gain'][best], 2)} points against {100 * spread:.2f}), so the model is the "
        f"labels-only arm")
    for arm in gains:
        for set_name, gain in gains[arm].items():
            values[f"{arm}_gain_{set_name}_phrase"] = difference_phrase(gain)
    oracle, model = value("oracle", "rep2_clean"), value("model", "rep2_clean")
    values["gap_to_oracle_rep2_clean"] = "n/a" if oracle is None else f"{100 * (oracle - model):.2f}"
    for set_name, gain in run["gain_over_baseline"].items():
        values[f"gain_over_baseline_{set_name}_phrase"] = difference_phrase(gain)
    for set_name, gain in run["gain_over_baseline"].items():
        values[f"gain_over_baseline_{set_name}"] = signed(100 * gain["value"], 2)
        values[f"gain_over_baseline_{set_name}_ci"] = interval(gain["ci"], 2, 100, sign=True)
        values[f"gain_over_baseline_{set_name}_verdict"] = verdict(gain)
    return values


def against_seeds(value: float, seeds: list[float]) -> str:
    """Where one run's value falls against its recipe's seeds: above, below or within their mean ± one standard
    deviation."""
    mean, std = float(np.mean(seeds)), float(np.std(seeds, ddof=1))
    return "above" if value > mean + std else "below" if value < mean - std else "within"


def long_check_sentence(long: dict[str, float], labels_only: dict[str, list[float]]) -> str:
    """The convergence check in words: the labels-only recipe at twice its length (one seed) against its seeds at
    the usual length, on the 26,000 images and on set 1 (the only set that may shape the recipe)."""
    where = {name: against_seeds(long[name], labels_only[name]) for name in ("unlabeled", "rep1_clean")}

    def clause(name, images):
        return (f"{pct(long[name])} % on {images}, {where[name]} the seeds' spread at the usual length "
                f"({mean_std(labels_only[name], 2, 100)} %)")

    on_unlabeled, on_set1 = clause("unlabeled", "the 26,000 images"), clause("rep1_clean", "set 1's clean images")
    sentence = f"Trained twice as long (one seed), the labels-only recipe reaches {on_unlabeled}, and {on_set1}"
    if where["rep1_clean"] != "above":
        sentence += ("; set 1 alone may shape the recipe and shows no gain from the longer training there, so the "
                     "recipe keeps its length")
        if where["unlabeled"] == "above":
            sentence += ", although the 26,000 images suggest that it has not fully converged"
    return sentence


@section("replica")
def replica_variables(results: dict) -> dict | None:
    """How the replica is built (lib.data.replica): classes, draws and corruption kinds, from the builder's code;
    written with the data section's other variables, once notebook 01 has run."""
    from lib.data import fashion_mnist, replica

    if "01_data_exploration" not in results:
        return None
    counts = replica.Counts()
    return {
        "in_distribution_labels": ", ".join(map(str, replica.IN_DISTRIBUTION)),
        "foreign_classes": ", ".join(fashion_mnist.CLASS_NAMES[label] for label in replica.FOREIGN),
        "n_labeled": f"{counts.labeled:,}", "n_unlabeled": f"{counts.unlabeled:,}",
        "clean_per_set": f"{counts.clean_per_set:,}", "corrupted_per_set": str(counts.corrupted_per_set),
        "foreign_per_set": str(counts.foreign_per_set),
        "anomalies_per_set": str(counts.foreign_per_set + counts.corrupted_per_set),
        "images_per_set": f"{counts.clean_per_set + counts.foreign_per_set + counts.corrupted_per_set:,}",
        "corruptions": "; ".join(f"{name.replace('_', ' ')}: {severity}"
                                 for name, (_, severity) in replica.CORRUPTIONS.items()),
    }


@section("model")
def model_variables(results: dict) -> dict | None:
    """The project's model's settings, as the run used them (notebook 03)."""
    run = results.get("03_classification")
    if run is None:
        return None
    settings = run["model_settings"]
    network, labels_only, distilled = settings["network"], settings["labels_only"], settings["distilled"]
    return {"widths": "-".join(map(str, network["widths"])), "dropout": f"{network['dropout']:g}",
            "description_dim": str(network["description_dim"]),
            "labels_only_epochs": str(labels_only["epochs"]), "distilled_epochs": str(distilled["epochs"]),
            "pretraining_epochs": str(settings["pretraining"]["epochs"]), "batch": str(labels_only["batch"]),
            "lr": f"{labels_only['lr']:g}", "weight_decay": f"{labels_only['weight_decay']:g}",
            "shift_pixels": f"{labels_only['augment']['shift'] * 32:g}",
            "label_smoothing": f"{labels_only['label_smoothing']:g}",
            "reconstruction_weight": f"{settings['reconstruction_weight']:g}",
            "temperature": f"{settings['temperature']:g}"}


@section("ood")
def ood_variables(results: dict) -> dict | None:
    run = results.get("04_ood_scoring")
    if run is None:
        return None
    rep2, chosen, evidence = run["rep2"], run["choice"]["chosen"], run["choice"]["evidence"]
    rows = {row["score"]: row for row in run["comparison"]}
    baseline = run["baseline_rep2"]
    worst = min(run["breakdown"], key=lambda row: row["flagged"]) if run["breakdown"] else None
    description = run.get("description")
    best_part = max(PARTS, key=lambda name: (evidence[name]["auroc_rep1"], evidence[name]["ap_rep1"]))
    return {
        "chosen": SCORES[chosen],
        "auroc_rep1": f"{evidence[chosen]['auroc_rep1']:.3f}",
        "auroc_rep2": f"{rep2['auroc']['value']:.3f}", "auroc_rep2_ci": interval(rep2["auroc"]["ci"]),
        "ap_rep2": f"{rep2['average_precision']['value']:.3f}",
        "fpr95_rep2": f"{rep2['fpr_at_95_tpr']['value']:.3f}",
        "threshold": f"{run['threshold']['value']:.4g}",
        "bundle_images_per_second": f"{run['bundle_images_per_second']:,.0f}",
        "precision_rep2": f"{rep2['at_threshold']['precision']:.3f}",
        "recall_rep2": f"{rep2['at_threshold']['recall']:.3f}",
        "macro_f1_rep2": f"{rep2['macro_f1']['value']:.3f}", "macro_f1_rep2_ci": interval(rep2["macro_f1"]["ci"]),
        "auroc_vae_rep2": f"{rows['vae_elbo']['auroc_rep2']:.3f}",
        "auroc_conv_ae_rep2": f"{rows['recon_conv_ae']['auroc_rep2']:.3f}",
        "auroc_baseline_rep2": f"{baseline['auroc']['value']:.3f}",
        "ap_baseline_rep2": f"{baseline['average_precision']['value']:.3f}",
        "worst_origin": origin(worst["origin"]) if worst else "n/a",
        "worst_origin_flagged": f"{100 * worst['flagged']:.0f}" if worst else "n/a",
        "spearman_auc": f"{run['hardness_spearman']['area under the curve']:.2f}",
        "predict_seconds": f"{run['predict_seconds']:.1f}",
        "kmeans_final": pct(description["kmeans_accuracy"]["value"]) if description else "n/a",
        "kmeans_final_ci": interval(description["kmeans_accuracy"]["ci"], 2, 100) if description else "n/a",
        "best_single_part": SCORES[best_part],
        "best_single_part_auroc_rep1": f"{evidence[best_part]['auroc_rep1']:.3f}",
        "auroc_msp_rep2": f"{rows['msp']['auroc_rep2']:.3f}",
        **seed_variables(run["per_seed"]),
        "hardest_origins": " and ".join(f"{origin(row['origin'].removeprefix('foreign: '))} ({row['chosen']:.3f})"
                                        for row in sorted(run["parts_by_origin"] or [], key=lambda r: r["chosen"])[:2])
                           or "n/a",
        **unseen_variables(run.get("unseen_kinds")),
        **{f"versus_baseline_{name}_phrase": difference_phrase(d, 1, "", 3, name == "fpr_at_95_tpr")
           for name, d in run["versus_baseline_rep2"].items()},
        "fpr95_baseline_rep2": f"{baseline['fpr_at_95_tpr']['value']:.3f}",
        "ap_rep2_ci": interval(rep2["average_precision"]["ci"]), "fpr95_rep2_ci": interval(rep2["fpr_at_95_tpr"]["ci"]),
        "n_parts": str(len(run["parts"])), "n_combinations": str(len(evidence)),
        "parts_chosen": ", ".join(SCORES[p] for p in COMBINATIONS[chosen]),
        **frame_variables(run.get("frame")),
    }


def frame_variables(frame: dict | None) -> dict:
    """The chosen score with and without its frame part, on set 2 and on unpadded clean images."""
    if not frame:
        return {"frame_in_score": "does not use"}
    values = {"frame_in_score": "uses"}
    for name, row in frame.items():
        values.update({f"frame_{name}_auroc_rep2": f"{row['auroc_rep2']:.3f}",
                       f"frame_{name}_ap_rep2": f"{row['ap_rep2']:.3f}",
                       f"frame_{name}_flagged_clean": f"{100 * row['flagged_clean_rep2']:.1f}",
                       f"frame_{name}_flagged_unpadded": f"{100 * row['flagged_unpadded_rep2']:.1f}"})
        if "unseen_auroc" in row:
            worst = min(row["unseen_auroc"], key=row["unseen_auroc"].get)
            values[f"frame_{name}_unseen_worst"] = f"{origin(worst)} ({row['unseen_auroc'][worst]:.3f})"
    return values


def seed_variables(per_seed: list[dict]) -> dict:
    """Mean ± standard deviation over seeds of the complete model's numbers (notebook 04)."""
    values = {}
    columns = (("seeds_auroc", "auroc_rep2", 3, 1), ("seeds_ap", "ap_rep2", 3, 1), ("seeds_fpr95", "fpr95_rep2", 3, 1),
               ("seeds_macro_f1", "macro_f1_rep2", 3, 1), ("seeds_kmeans", "kmeans_unlabeled", 2, 100))
    for key, column, digits, scale in columns:
        values[key] = mean_std([row[column] for row in per_seed if row.get(column) is not None], digits, scale)
    values["seeds_count"] = str(len(per_seed))
    return values


def unseen_variables(unseen: dict | None) -> dict:
    """The worst unseen anomaly kind and how much pure noise is flagged."""
    if not unseen:
        return {"unseen_worst_kind": "n/a", "unseen_min_auroc": "n/a", "unseen_noise_flagged": "n/a"}
    worst = min(unseen["kinds"], key=lambda row: row["auroc"])
    noise = next(row for row in unseen["kinds"] if row["kind"] == "uniform_noise")
    below = [row for row in unseen["kinds"] if row["auroc"] < 0.95]
    return {"unseen_worst_kind": origin(worst["kind"]), "unseen_min_auroc": f"{worst['auroc']:.3f}",
            "unseen_noise_flagged": f"{100 * noise['flagged']:.0f}",
            "unseen_clean_flagged": f"{100 * unseen['clean_flagged']:.1f}",
            "unseen_below_target": "; ".join(f"{origin(row['kind'])}: ROC AUC {row['auroc']:.3f}, "
                                             f"{100 * row['flagged']:.0f} % flagged" for row in below) or "none",
            **{f"unseen_{row['kind']}_flagged": f"{100 * row['flagged']:.0f}" for row in unseen["kinds"]},
            **{f"unseen_{row['kind']}_auroc": f"{row['auroc']:.3f}" for row in unseen["kinds"]}}


@section("targets")
def targets_variables(results: dict) -> dict | None:
    from lib.eval.targets import targets_table

    if "summary" not in results or "04_ood_scoring" not in results:
        return None
    table = targets_table(flat(results["summary"]), results["04_ood_scoring"]["predict_seconds"])
    missed = table[table["met"] == "no"]
    return {"met": str(int((table["met"] == "yes").sum())), "total": str(len(table)),
            "missed": "; ".join(missed_by(row.quantity, row["missed by"]) for _, row in missed.iterrows()) or "none"}


def missed_by(quantity: str, shortfall: str) -> str:
    """"accuracy, 26,000 (%) by 0.92", or "... (interval includes 0)" where only the interval misses."""
    return f"{quantity} by {shortfall}" if shortfall[:1].isdigit() else f"{quantity} ({shortfall})"


def error_change(drop_percent: int) -> str:
    """How the reconstruction error moves after the accuracy plateau, as the report's sentence reads it."""
    if drop_percent > 0:
        return f"falls another {drop_percent} %"
    return f"rises by {-drop_percent} %" if drop_percent < 0 else "stays within 0.5 %"


@section("pretraining")
def pretraining_variables(results: dict) -> dict | None:
    from lib.eval.targets import KMEANS_DESCRIPTION

    run = results.get("02_pretraining")
    if run is None:
        return None
    settings, methods, plateau = run["settings"], run["methods"], run["checkpoint_plateau"]
    contrastive = settings["contrastive"]
    values = {
        "batch": str(contrastive["training"]["batch"]), "profile": run["profile"],
        "autoencoder_width": str(settings["conv_ae"]["network"]["width"]),
        "kmeans_target": f"{KMEANS_DESCRIPTION.scale * KMEANS_DESCRIPTION.goal:g}",
        "kmeans_target_verdict": ("reaches" if KMEANS_DESCRIPTION.met(methods["contrastive"]["kmeans_accuracy"])
                                  else "does not reach"),
        "temperature": f"{contrastive['network']['temperature']:g}",
        "encoder_width": str(contrastive["network"]["width"]), "encoder_depth": str(contrastive["network"]["depth"]),
        "n_unlabeled": f"{run['n_unlabeled']:,}", "best_method": DESCRIPTIONS[run["best_description"]["chosen"]],
        "scored_on": run["scored_on"],
        "checkpoint_plateau_epoch": str(plateau["epoch"]),
        "checkpoint_plateau_knn": pct(plateau["knn_accuracy"], 1),
        "checkpoint_last_knn": pct(plateau["last_knn_accuracy"], 1),
        "checkpoint_error_change": error_change(round(100 * plateau["error_drop"])),
        "checkpoint_epoch0_knn": pct(plateau["epoch0_knn_accuracy"], 1),
        "checkpoint_count": str(plateau["count"]),
    }
    for name, model in run["training"].items():
        values.update({f"{name}_params": f"{model['parameters']:,}", f"{name}_epochs": str(model["epochs"]),
                       f"{name}_images_per_second": f"{model['images_per_second']:,.0f}",
                       f"{name}_seconds": f"{model['seconds']:.0f}"})
    for key, m in methods.items():
        values.update({f"{key}_kmeans_accuracy": pct(m["kmeans_accuracy"], 1),
                       f"{key}_kmeans_nmi": f"{m['kmeans_nmi']:.3f}",
                       f"{key}_gmm_accuracy": pct(m["gmm_accuracy"], 1),
                       f"{key}_knn_accuracy": pct(m["knn_accuracy"], 1)})
        if m.get("kmeans_accuracy_ci"):
            values[f"{key}_kmeans_accuracy_ci"] = interval(m["kmeans_accuracy_ci"], 1, 100)
    return values


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


def effect_phrase(difference: dict, unit: float = 100.0, what: str = "points", digits: int = 1) -> str:
    """E.g. "helps (+4.1 points, 95 % CI [+2.0, +6.3])", for a difference of accuracies in [0, 1]."""
    return (f"{effect_word(difference)} ({signed(unit * difference['value'], digits)} {what}, "
            f"95 % CI {interval(difference['ci'], digits, unit, sign=True)})")


def ranking(entries: dict) -> str:
    """"a (91.5) ≥ b (83.8) ≥ c (80.1)": names sorted by value, best first.

    `entries` maps a name to (value to sort by, text to show beside the name).
    """
    ordered = sorted(entries.items(), key=lambda item: -item[1][0])
    return " ≥ ".join(f"{name} ({text})" for name, (_, text) in ordered)


@section("data")
def data_variables(results: dict) -> dict | None:
    """Sizes, anomalies, duplicates and the PCA variance of notebook 01."""
    r = results.get("01_data_exploration")
    if r is None:
        return None
    sizes, anomalies = r["sizes"], r["anomalies"]
    return {
        "n_unlabeled": f"{sizes['unlabeled']:,}",
        "n_labeled": f"{sizes['labeled']:,}",
        "n_rep1": f"{sizes['representative_set_1']:,}",
        "n_rep2": f"{sizes['representative_set_2']:,}",
        "n_anomalies_rep1": str(anomalies["rep1"]),
        "n_anomalies_rep2": str(anomalies["rep2"]),
        "anomaly_percent_rep1": f"{100 * anomalies['rep1'] / sizes['representative_set_1']:.1f}",
        "shared_images": str(r["shared_images_between_sets"]),
        "pca10_variance": f"{100 * r['pca10_variance_explained']:.0f}",
        "source": "replica built from Fashion-MNIST" if r["is_replica"] else "original assignment data",
    }


@section("transfer")
def transfer_variables(results: dict) -> dict | None:
    """Notebook 05: sources, budgets, and per source the frozen-probe and fine-tuned accuracy, the anomaly
    AUROC, their differences from training from scratch in words, and rankings of the sources.

    Keys of a source that did not run (notebook 02's encoder when notebook 05 runs alone) read "n/a".
    """
    r = results.get("05_transfer_learning")
    if r is None:
        return None
    names, budgets = SOURCE_NAMES, r["budgets"]
    sources = {k: r["sources"][k] for k in r["sources_order"] if k in r["sources"]}  # this run's, in table order
    small, large = budgets[0], budgets[-1]
    runs = {(run["source"], run["labels"]): run for run in r["runs"]}
    auroc_gain = r["auroc_change_vs_scratch"]
    anomalies = r.get("rep1_anomalies")
    in_domain = sources.get("in_domain")

    def one(result):  # a fraction with interval -> "91.5"
        return f"{100 * result['value']:.1f}"

    def probe(k, b):
        return sources[k]["frozen_linear_head_accuracy"][str(b)]

    def mahalanobis(k, b, kind="all"):
        return runs[(k, b)]["auroc_rep1"]["mahalanobis"][kind]

    kinds = [kind for kind in ("all", "foreign", "corrupted") if kind in runs[("scratch", large)]["auroc_rep1"]
             ["mahalanobis"]]
    variables = {
        "n_foreign_candidates": f"{r['leakage_filter']['foreign_candidates']:,}",
        "n_foreign_excluded": str(r["leakage_filter"]["excluded"]),
        "n_foreign_used": f"{r['leakage_filter']['used']:,}",
        "n_foreign_supervised": f"{int(sources['foreign_supervised']['images']):,}",
        "n_foreign_contrastive": f"{int(sources['foreign_contrastive']['images']):,}",
        "n_digits": f"{r['source_pools']['digits']:,}",
        "n_digits_supervised": f"{int(sources['digits']['images']):,}",
        "budget_small": f"{small:,}", "budget_large": f"{large:,}",
        "budgets": ", ".join(f"{b:,}" for b in budgets[:-1]) + f" and {large:,}",
        "finetune_steps": f"{r['settings']['finetune']['steps']:,}",
        "source_steps": f"{r['settings']['source']['steps']:,}",
        "contrastive_epochs": str(int(sources["foreign_contrastive"]["epochs"])),
        "in_domain_epochs": str(int(in_domain["epochs"])) if in_domain else "n/a",
        "in_domain_status": (f"{int(in_domain['epochs'])} epochs" if in_domain
                             else "not available: its pretraining had not run"),
        "eval_name": transfer_evaluated_on(r["evaluated_on"]["unlabeled"], r["evaluated_on"]["images"]),
        "heldout_foreign": pct(sources["foreign_supervised"]["heldout"], 1),
        "heldout_digits": pct(sources["digits"]["heldout"], 1),
        "seconds_total": f"{r['seconds_total']:.0f}",
        "n_foreign_rep1": str(anomalies["foreign"]) if anomalies else "n/a",
        "n_corrupted_rep1": str(anomalies["corrupted"]) if anomalies else "n/a",
        "probe_digits_minus_random":
            f"{100 * (probe('digits', large)['value'] - probe('scratch', large)['value']):+.1f}",
    }

    def rank(value_of, text_of):
        return ranking({names[k]: (value_of(k), text_of(value_of(k))) for k in sources})

    percent, three = (lambda v: f"{100 * v:.1f}"), (lambda v: f"{v:.3f}")
    for label, b in (("small", small), ("large", large)):
        variables[f"probe_rank_{label}"] = rank(lambda k, b=b: probe(k, b)["value"], percent)
        variables[f"finetuned_rank_{label}"] = rank(lambda k, b=b: runs[(k, b)]["accuracy"]["value"], percent)
        variables[f"auroc_rank_{label}"] = rank(lambda k, b=b: mahalanobis(k, b)["value"], three)

    def of_source(k):
        values = {}
        for label, b in (("small", small), ("large", large)):
            values[f"probe_{k}_{label}"] = one(probe(k, b))
            values[f"acc_{k}_{label}"] = one(runs[(k, b)]["accuracy"])
            values[f"auroc_{k}_all_{label}"] = three(mahalanobis(k, b)["value"])
            if k != "scratch":
                gain = runs[(k, b)]["gain_vs_scratch"]
                values[f"gain_{k}_{label}"] = effect_phrase(gain)
                values[f"effect_{k}_{label}"] = effect_word(gain)
                values[f"auroc_gain_{k}_all_{label}"] = effect_phrase(auroc_gain[f"{k}.all.{b}"], unit=1,
                                                                      what="AUROC", digits=3)
        for kind in kinds:
            values[f"auroc_{k}_{kind}"] = three(mahalanobis(k, large, kind)["value"])
            if k != "scratch" and kind != "all":
                values[f"auroc_gain_{k}_{kind}"] = effect_phrase(auroc_gain[f"{k}.{kind}.{large}"], unit=1,
                                                                 what="AUROC", digits=3)
        values[f"auroc_msp_{k}"] = three(runs[(k, large)]["auroc_rep1"]["msp"]["all"]["value"])
        return values

    def listed(keys_and_differences, unit=100.0, what="points", digits=1):
        """Per effect word ("helps", "hurts", "makes no measurable difference"): "name (+1.2 points, ...)" items."""
        lists = {}
        for k, difference in keys_and_differences:
            lists.setdefault(effect_word(difference), []).append(
                f"{names[k]} ({effect_phrase(difference, unit, what, digits).split(' (', 1)[1]}")
        return {word: "; ".join(items) for word, items in lists.items()}

    for label, b in (("small", small), ("large", large)):
        found = listed([(k, runs[(k, b)]["gain_vs_scratch"]) for k in sources if k != "scratch"])
        for word, key in (("helps", "helped"), ("hurts", "hurt"), ("makes no measurable difference", "no_effect")):
            variables[f"accuracy_{key}_{label}"] = found.get(word, "none")
    for kind in kinds:
        if kind == "all":
            continue
        found = listed([(k, auroc_gain[f"{k}.{kind}.{large}"]) for k in sources if k != "scratch"], 1, "AUROC", 3)
        for word, key in (("helps", "helped"), ("hurts", "hurt"), ("makes no measurable difference", "no_effect")):
            variables[f"auroc_{kind}_{key}"] = found.get(word, "none")

    template = of_source("foreign_contrastive")
    for k in names:
        variables.update(of_source(k) if k in sources else
                         {name.replace("foreign_contrastive", k): "n/a" for name in template})
    return variables
