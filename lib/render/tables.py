"""The notebooks' tables, figure labels and printed sentences, made from results at render time (display names
from `lib.render.names`, numbers through `lib.render.format`)."""

from __future__ import annotations

import pandas as pd

from lib.eval.metrics import verdict
from lib.eval.targets import KMEANS_DESCRIPTION, TARGETS
from lib.render.format import interval, mean_std, pct, signed, with_ci
from lib.render.names import ARMS, DESCRIPTIONS, PART_COLUMNS, SCORES, SYSTEMS, origin
from lib.results import COMBINATIONS

# --------------------------------------------------------------------------- notebook 02


def description_name(name: str) -> str:
    return DESCRIPTIONS.get(name, name)


CURVE_PANELS = [  # training-curve panels: (title, models, y label, log scale[, history key])
    ("autoencoders", [DESCRIPTIONS["fc_ae"], DESCRIPTIONS["conv_ae"], DESCRIPTIONS["conv_ae_bn"]],
     "MSE per pixel (intensity in [0, 1])", True),
    ("VAE", [DESCRIPTIONS["vae"]], "negative ELBO (nats per image)", False),
    ("contrastive", [DESCRIPTIONS["contrastive"]], "NT-Xent loss (nats)", False, "nt_xent"),
]


def pretraining_models(training: dict) -> pd.DataFrame:
    """Size, budget, throughput and final loss of every pretrained model (`training`: results' "training")."""
    return pd.DataFrame([{
        "model": DESCRIPTIONS[name],
        "parameters": f"{run['parameters']:,}",
        "epochs": run["epochs"],
        "batch": run["batch_size"],
        "images/s": f"{run['images_per_second']:,.0f}",
        "training time (s)": f"{run['seconds']:.0f}",
        "final loss": f"{run['history'][-1]['loss']:.4g}",
    } for name, run in training.items()])


def descriptions(methods: dict) -> pd.DataFrame:
    """Clustering (k-means, GMM), k-NN accuracy and silhouette of every description (results' "methods")."""
    rows = []
    for method, m in methods.items():
        ci = m.get("kmeans_accuracy_ci")
        rows.append({
            "description": DESCRIPTIONS[method],
            "k-means accuracy (%)": pct(m["kmeans_accuracy"], 1) + (f" [{pct(ci[0], 1)}, {pct(ci[1], 1)}]"
                                                                     if ci else ""),
            "k-means NMI": f"{m['kmeans_nmi']:.3f}",
            "GMM accuracy (%)": pct(m["gmm_accuracy"], 1),
            "GMM NMI": f"{m['gmm_nmi']:.3f}",
            "k-NN accuracy (%)": pct(m["knn_accuracy"], 1),
            "silhouette": f"{m['silhouette']:.2f}",
        })
    return pd.DataFrame(rows)


def map_title(method: str, metrics: dict) -> str:
    return f"{DESCRIPTIONS[method]}\nk-means accuracy {pct(metrics['kmeans_accuracy'], 1)} %"


def map_legend(answer_key: bool) -> str:
    return "true class" if answer_key else "k-means cluster (no answer key)"


def knn_label(answer_key: bool) -> str:
    return "k-NN accuracy on the unlabeled images (%)" if answer_key else "k-NN accuracy, labeled half vs. half (%)"


def plateau_sentence(plateau: dict) -> str:
    return (f"k-NN accuracy {pct(plateau['knn_accuracy'], 1)} % at epoch {plateau['epoch']}, "
            f"{pct(plateau['last_knn_accuracy'], 1)} % at the last epoch {plateau['last_epoch']}; "
            f"meanwhile the reconstruction error fell another {100 * plateau['error_drop']:.0f} %")


def description_target_sentence(results: dict) -> str:
    """Whether the contrastive description reaches the k-means target, and its numbers."""
    ours = results["methods"]["contrastive"]
    verdict = "reaches" if KMEANS_DESCRIPTION.met(ours["kmeans_accuracy"]) else "does not reach"
    ci = ours.get("kmeans_accuracy_ci") or []
    return (f"k-means target {KMEANS_DESCRIPTION.scale * KMEANS_DESCRIPTION.goal:g} %: the contrastive description "
            f"{verdict} it\ncontrastive description: k-means accuracy {pct(ours['kmeans_accuracy'], 1)} % "
            f"{[round(100 * v, 1) for v in ci]}, NMI {ours['kmeans_nmi']:.3f} ({ours['evaluated_on']})")


# --------------------------------------------------------------------------- notebook 03


def system_name(name: str) -> str:
    return SYSTEMS[name]


def augmentation(config) -> str:
    """An augmentation in a few words, e.g. "shifts ≤ 3 px, zoom 0.9-1.1, rotation ≤ 8°, exposure"."""
    parts = [f"shifts ≤ {32 * config.shift:.3g} px"] if config.shift else []
    if config.scale != (1.0, 1.0):
        parts.append(f"zoom {config.scale[0]:g}-{config.scale[1]:g}")
    if config.rotation:
        parts.append(f"rotation ≤ {config.rotation:g}°")
    if config.gain or config.gamma:
        parts.append("exposure")
    if config.noise:
        parts.append("noise")
    if config.erase:
        parts.append("erasing")
    return ", ".join(parts) or "none"


def recipes(profile) -> pd.DataFrame:
    """The training recipes of the model's arms and of the baseline, one column per run (a narrow table): data,
    passes, batch, learning rate, warm-up, label smoothing, views, targets."""
    model, base, fixmatch = profile.model, profile.baseline.training, profile.model.fixmatch
    runs = {"labels only": ("2,000 labels", model.labels_only, "labels"),
            "FixMatch": (f"{fixmatch.labeled_batch} labels + {fixmatch.training.batch} unlabeled per step",
                         fixmatch.training, f"labels; EMA pseudo-labels ≥ {fixmatch.confidence:g}"),
            "oracle": ("28,000, true labels", model.oracle, "labels"),
            "plain baseline": ("2,000 labels", base, "labels")}
    settings = {"data": lambda data, training, targets: data,
                "passes": lambda data, training, targets: f"{training.epochs:g}",
                "batch": lambda data, training, targets: str(training.batch),
                "peak learning rate": lambda data, training, targets: f"{training.lr:g}",
                "warm-up": lambda data, training, targets: f"{100 * training.warmup:.0f} % of steps",
                "label smoothing": lambda data, training, targets: f"{training.label_smoothing:g}",
                "views": lambda data, training, targets: augmentation(training.augment),
                "targets": lambda data, training, targets: targets}
    return pd.DataFrame([{"setting": name, **{run: cell(*recipe) for run, recipe in runs.items()}}
                         for name, cell in settings.items()])


SEED_SETS = {"rep1_clean": "set 1 clean", "unlabeled": "26,000", "rep2_clean": "set 2 clean"}


def model_arms(per_seed: dict, gains: dict, chosen: str, budgets: dict) -> pd.DataFrame:
    """The model's arms: accuracy (%) as mean ± standard deviation over seeds per set, the gain over the
    labels-only arm on the 26,000 images (points, paired interval), the passes over each labeled / unlabeled
    image and the training seconds per seed."""
    rows = []
    for arm, by_set in per_seed.items():
        gain = gains.get(arm, {}).get("unlabeled")
        rows.append({"arm": ARMS[arm] + (" (chosen)" if arm == chosen else ""),
                     "seeds": len(by_set["rep1_clean"]),
                     **{title: mean_std(by_set[name], 2, 100) for name, title in SEED_SETS.items() if name in by_set},
                     "Δ 26,000": "-" if gain is None else signed(100 * gain["value"], 2),
                     "95 % CI": "-" if gain is None else interval(gain["ci"], 2, 100, sign=True),
                     "passes": f"{budgets[arm]['labeled']:.0f} / {budgets[arm]['unlabeled']:g}",
                     "s / seed": f"{budgets[arm]['seconds']:.0f}"})
    return pd.DataFrame(rows)


def unlabeled_used(system: dict) -> str:
    """"none", "26,000", "26,000 (pretraining)", ...: how many unlabeled images a system used, and how."""
    use = system["unlabeled_used"]
    if use in ("none", "as its members"):
        return use
    return f"{system['unlabeled_images']:,}" + ("" if use == "all" else f" ({use})")


def classification(systems: dict, accuracy: dict, rates: dict[str, float], chosen: str) -> pd.DataFrame:
    """The classification table: accuracy per set, what each system used, size and speed."""
    columns = (("unlabeled", "unlabeled 26,000"), ("rep2_clean", "set 2 clean"))

    def cell(result):
        if result["value"] is None:
            return "-"
        low, high = result["ci"]
        return f"{100 * result['value']:.2f} [{100 * low:.1f}, {100 * high:.1f}]"

    return pd.DataFrame([{
        "model": SYSTEMS[name] + (" (chosen)" if name == chosen else ""),
        **{title: cell(accuracy[name][s]) for s, title in columns if s in accuracy[name]},
        "labels": f"{system['labels']:,}", "unlabeled used": unlabeled_used(system),
        "parameters": f"{system['parameters']:,}", "ms": f"{1e6 / rates[name]:.0f}",
        "train s": "-" if system["seconds"] is None else f"{system['seconds']:.0f}",
    } for name, system in systems.items()])


def label_efficiency_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """The label-efficiency curve with display names (FixMatch's shorter schedule marked "(short)")."""
    return curve.assign(method=[SYSTEMS[m] + (" (short)" if short else "")
                                for m, short in zip(curve["method"], curve["short"])]).drop(columns="short")


# --------------------------------------------------------------------------- notebook 04

NO_ANSWER_KEY = "The original data has no answer key: {} is skipped."


def score_name(name: str) -> str:
    return SCORES[name]


def ood_scores(comparison: list[dict], chosen: str) -> pd.DataFrame:
    """Every anomaly score on sets 1 and 2 (set 1 chooses among ours; set 2 shown after the choice)."""
    table = pd.DataFrame(comparison)
    return pd.DataFrame({
        "score": [SCORES[s] + (" (chosen)" if s == chosen else "") for s in table["score"]],
        "source": ["ours" if s in COMBINATIONS else "reference" for s in table["score"]],
        "ROC AUC set 1": table["auroc_rep1"], "AP set 1": table["ap_rep1"], "FPR95 set 1": table["fpr95_rep1"],
        "ROC AUC set 2": table["auroc_rep2"], "AP set 2": table["ap_rep2"]})


def ood_final(final: dict) -> pd.DataFrame:
    """The complete model on set 2 with intervals, and the targets."""
    goal = {t.summary_key: t.shown_goal() for t in TARGETS}

    def shown(r):
        return f"{r['value']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"

    return pd.DataFrame([
        ("ROC AUC", shown(final["auroc"]), goal["ood.auroc.rep2"]),
        ("average precision", shown(final["average_precision"]), goal["ood.average_precision.rep2"]),
        ("false-positive rate at 95 % true-positive rate", shown(final["fpr_at_95_tpr"]),
         goal["ood.fpr_at_95_tpr.rep2"]),
        *[(f"{name} at the set-1 threshold", shown({"value": final["at_threshold"][name],
                                                    "ci": final["at_threshold_ci"][name]}), "")
          for name in ("precision", "recall", "f1")],
        ("six-class macro-F1 (end to end)", shown(final["macro_f1"]), goal["end_to_end.macro_f1.rep2"]),
    ], columns=["metric on set 2", "value [95 % interval]", "target"])


def ood_breakdown(rows: list[dict] | None) -> str:
    """Markdown: per origin, anomalies, share flagged and ROC AUC (or why it is skipped)."""
    if rows is None:
        return NO_ANSWER_KEY.format("the breakdown by origin")
    table = pd.DataFrame([{"origin": origin(r["origin"]), "anomalies": r["anomalies"],
                           "flagged (%)": 100 * r["flagged"], "ROC AUC vs clean": r["auroc"]} for r in rows])
    return table.to_markdown(index=False, floatfmt=("", "", ".0f", ".3f"))


def ood_parts(rows: list[dict] | None) -> str:
    """Markdown: per origin, the ROC AUC of each part, the chosen combination and the baseline."""
    if rows is None:
        return NO_ANSWER_KEY.format("the breakdown by origin")
    columns = {**PART_COLUMNS, "chosen": "chosen", "baseline": "baseline"}
    table = pd.DataFrame([{"origin": origin(r["origin"].removeprefix("foreign: ")), "n": r["n"],
                           **{title: r[key] for key, title in columns.items()}} for r in rows])
    return table.to_markdown(index=False, floatfmt=".3f")


SHORT_ORIGINS = {"gaussian_noise": "noise", "occluding_block": "block", "shuffled_patches": "shuffled",
                 "inverted": "inverted", "salt_and_pepper": "salt+pep.", "strong_blur": "blur",
                 "T-shirt/top": "T-shirt"}


def short_origin(kind, index: int) -> str:
    """An anomaly's origin in a word, for image notes ("" without the answer key)."""
    if kind is None:
        return ""
    name = kind[index].removeprefix("foreign: ")
    return SHORT_ORIGINS.get(name, name)


def unseen_kinds(unseen: dict | None) -> str:
    """Markdown: per unseen kind, ROC AUC against fresh clean images and the share flagged."""
    if unseen is None:
        return NO_ANSWER_KEY.format("the unseen-kind check")
    rows = [{"kind": origin(r["kind"]), "images": r["images"], "ROC AUC vs clean": f"{r['auroc']:.3f}",
             "flagged (%)": 100 * r["flagged"]} for r in unseen["kinds"]]
    rows.append({"kind": "clean (false alarms)", "images": unseen["clean_images"], "ROC AUC vs clean": "-",
                 "flagged (%)": 100 * unseen["clean_flagged"]})
    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=("", "", "", ".0f"))


def frame_study(frame: dict | None) -> str:
    """Markdown: the chosen score with and without its frame part."""
    if frame is None:
        return "The chosen score has no frame part."
    rows = []
    for name, row in frame.items():
        rows.append({"score": f"{name} frame", "ROC AUC": f"{row['auroc_rep2']:.3f}",
                     "AP": f"{row['ap_rep2']:.3f}", "FPR95": f"{row['fpr95_rep2']:.3f}",
                     "worst unseen": (f"{min(row['unseen_auroc'].values()):.3f}" if "unseen_auroc" in row else "-"),
                     "flagged (%)": f"{100 * row['flagged_clean_rep2']:.1f}",
                     "flagged unpadded (%)": f"{100 * row['flagged_unpadded_rep2']:.1f}"})
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)


SEED_COLUMNS = {"auroc_rep2": "ROC AUC set 2", "ap_rep2": "AP set 2", "fpr95_rep2": "FPR95 set 2",
                "macro_f1_rep2": "macro-F1 set 2", "kmeans_unlabeled": "k-means unlabeled"}


def ood_seeds(per_seed: list[dict]) -> pd.DataFrame:
    """Mean and standard deviation over seeds of the complete model's numbers."""
    table = pd.DataFrame(per_seed)
    return pd.DataFrame([{"metric": title, "seeds": int(table[key].notna().sum()),
                          "mean": f"{table[key].mean():.4f}", "std": f"{table[key].std(ddof=1):.4f}"}
                         for key, title in SEED_COLUMNS.items() if table[key].notna().any()])


HEADLINE = (  # (name, notebook, ours, baseline, difference, scale, digits, lower is better)
    ("accuracy, 26,000 unlabeled (%)", "03_classification", ("accuracy", "model", "unlabeled"),
     ("accuracy", "baseline", "unlabeled"), ("gain_over_baseline", "unlabeled"), 100, 2, False),
    ("accuracy, set 2 clean (%)", "03_classification", ("accuracy", "model", "rep2_clean"),
     ("accuracy", "baseline", "rep2_clean"), ("gain_over_baseline", "rep2_clean"), 100, 2, False),
    ("ROC AUC, set 2", "04_ood_scoring", ("rep2", "auroc"), ("baseline_rep2", "auroc"),
     ("versus_baseline_rep2", "auroc"), 1, 3, False),
    ("average precision, set 2", "04_ood_scoring", ("rep2", "average_precision"),
     ("baseline_rep2", "average_precision"), ("versus_baseline_rep2", "average_precision"), 1, 3, False),
    ("FPR at 95 % TPR, set 2", "04_ood_scoring", ("rep2", "fpr_at_95_tpr"), ("baseline_rep2", "fpr_at_95_tpr"),
     ("versus_baseline_rep2", "fpr_at_95_tpr"), 1, 3, True),
)


def _at(tree: dict, path: tuple):
    for key in path:
        tree = tree[key]
    return tree


def versus_baseline(results: dict[str, dict]) -> pd.DataFrame:
    """Every headline number of ours against the plain baseline on the same images: both values, the paired
    difference with its 95 % bootstrap interval, and the verdict that interval gives."""
    rows = []
    for name, notebook, ours, theirs, difference, scale, digits, lower in HEADLINE:
        run = results[notebook]
        d = _at(run, difference)
        rows.append({"metric": name, "ours": f"{scale * _at(run, ours)['value']:.{digits}f}",
                     "baseline": f"{scale * _at(run, theirs)['value']:.{digits}f}",
                     "ours − baseline": signed(scale * d["value"], digits),
                     "95 % interval": interval(d["ci"], digits, scale, sign=True),
                     "verdict": verdict(d, lower)})
    return pd.DataFrame(rows)


def systems(results: dict[str, dict]) -> pd.DataFrame:
    """Every system in one table: k-means accuracy of its description, classification accuracy on the unlabeled
    images, and ROC AUC on set 2 with its own score ("-": the system does not provide it)."""
    methods, classification, ood = (results["02_pretraining"]["methods"], results["03_classification"],
                                    results["04_ood_scoring"])
    accuracy, auroc = classification["accuracy"], {row["score"]: row["auroc_rep2"] for row in ood["comparison"]}

    def kmeans(name):
        return methods.get(name, {}).get("kmeans_accuracy")

    def unlabeled(name):
        return accuracy.get(name, {}).get("unlabeled", {}).get("value")

    chosen, score = classification["choice"]["chosen"], ood["choice"]["chosen"]
    description = ood.get("description")
    # k-means on PCA-10 of the baseline's pooled features (notebook 04's description study)
    baseline_kmeans = description["kmeans"]["baseline_pca10"]["kmeans_accuracy"]["value"] if description else None
    rows = [
        ("PCA-10 of pixels + k-means", kmeans("pca"), None, None),
        ("FC autoencoder (reconstruction error)", kmeans("fc_ae"), None, auroc["recon_fc_ae"]),
        ("conv autoencoder + linear head", kmeans("conv_ae"), unlabeled("autoencoder_probe"), auroc["recon_conv_ae"]),
        ("conv autoencoder + BN", kmeans("conv_ae_bn"), None, auroc["recon_conv_ae_bn"]),
        (SYSTEMS["vae_probe"], kmeans("vae"), unlabeled("vae_probe"), auroc["vae_elbo"]),
        ("contrastive (frozen) + linear head", kmeans("contrastive"), unlabeled("contrastive_probe"),
         auroc["knn_contrastive"]),
        (SYSTEMS["supervised_cnn"], None, unlabeled("supervised_cnn"), None),
        (SYSTEMS["auxiliary"], None, unlabeled("auxiliary"), None),
        (SYSTEMS["stacking"], None, unlabeled("stacking"), None),
        (SYSTEMS["baseline"], baseline_kmeans, unlabeled("baseline"), auroc["baseline_mahalanobis"]),
        (f"ours: {ARMS[chosen]}, {SCORES[score]}", description and description["kmeans_accuracy"]["value"],
         unlabeled("model"), ood["rep2"]["auroc"]["value"]),
    ]
    def percent_or_dash(value):
        return "-" if value is None else pct(value)

    return pd.DataFrame([{"system": name, "k-means (%)": percent_or_dash(k), "accuracy (%)": percent_or_dash(a),
                          "ROC AUC set 2": "-" if u is None else f"{u:.3f}"} for name, k, a, u in rows])


# --------------------------------------------------------------------------- notebook 05

SOURCE_NAMES = {  # source id -> name in tables, figures and the report (this order everywhere)
    "scratch": "none (from scratch)",
    "foreign_contrastive": "related, contrastive",
    "foreign_supervised": "related, supervised",
    "digits": "mismatched (digits), supervised",
}
SOURCE_COLORS = dict(zip(SOURCE_NAMES, ["#7f7f7f", "#2ca02c", "#ff7f0e", "#d62728"]))


def transfer_evaluated_on(on_unlabeled: bool, images: int) -> str:
    return f"{images:,} unlabeled images (answer key)" if on_unlabeled else "the clean images of representative set 1"


def transfer_sources(keys: list[str], info: dict, probe: dict, budgets: list[int]) -> pd.DataFrame:
    """Images, epochs and time of each source's pretraining, held-out source accuracy, and the frozen
    embedding's linear-head accuracy with every label of the training split."""
    rows = []
    for k in keys:
        source = info.get(k)
        rows.append({
            "source": SOURCE_NAMES[k],
            "images": f"{source['images']:,}" if source else "—",
            "epochs": f"{source['epochs']:.1f}" if source else "—",
            "pretraining s": f"{source['seconds']:.0f}" if source else "—",
            "held-out source accuracy (%)": f"{100 * source['heldout']:.1f}" if source and "heldout" in source
            else "—",
            f"frozen + linear head, {budgets[-1]:,} labels (%)": with_ci(probe[(k, budgets[-1])]),
        })
    return pd.DataFrame(rows)


def transfer_accuracy(accuracy: dict, budgets: list[int]) -> pd.DataFrame:
    """Fine-tuned accuracy (%) with interval per source (rows) and label budget (columns);
    `accuracy[(source, budget)]`: an estimate."""
    keys = [k for k in SOURCE_NAMES if (k, budgets[0]) in accuracy]
    return pd.DataFrame([{"source": SOURCE_NAMES[k], **{f"{b:,} labels": with_ci(accuracy[(k, b)]) for b in budgets}}
                         for k in keys])


def transfer_ood(auroc: dict, auroc_gain: dict, budget: int, with_origin: bool) -> pd.DataFrame:
    """ROC AUC on set 1 at `budget` per source: Mahalanobis per anomaly kind, MSP, and (with the answer key)
    the change of the foreign-article ROC AUC relative to training from scratch; `auroc[(source, budget)]`:
    score -> kind -> estimate."""
    kinds = [kind for kind in ("all", "foreign", "corrupted") if kind in auroc[("scratch", budget)]["mahalanobis"]]
    rows = []
    for k in [k for k in SOURCE_NAMES if (k, budget) in auroc]:
        run = auroc[(k, budget)]
        row = {"source": SOURCE_NAMES[k]}
        for kind in kinds:
            row[f"Mahalanobis, {kind}"] = with_ci(run["mahalanobis"][kind], scale=1, digits=3)
        row["MSP, all"] = with_ci(run["msp"]["all"], scale=1, digits=3)
        if with_origin:
            change = auroc_gain.get((k, "foreign", budget))
            row["foreign: change vs scratch"] = "—" if change is None else with_ci(change, scale=1, digits=3,
                                                                                   sign=True)
        rows.append(row)
    return pd.DataFrame(rows)
