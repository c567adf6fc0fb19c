"""Every report variable that lib.render.variables writes is read by a page of the report, and every variable a
page reads is written, computed here from the committed results."""

import copy
import json
import re
from pathlib import Path

import pytest

from lib.render import runinfo, variables

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "report"


def read_variables() -> set[str]:
    """Every `{{< var a.b >}}` of index.qmd and the files it includes (recursively)."""
    found, pending, seen = set(), ["index.qmd"], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        text = (REPORT / name).read_text()
        found |= set(re.findall(r"\{\{<\s*var\s+([\w.]+)\s*>\}\}", text))
        pending += re.findall(r"\{\{<\s*include\s+([\w./-]+)\s*>\}\}", text)
    return found


def estimate(value, low, high):
    return {"value": value, "ci": [low, high]}


@pytest.fixture(scope="module")
def results() -> dict:
    return variables.load_results(ROOT / "results")


@pytest.fixture(scope="module")
def written(results) -> dict[str, dict]:
    sections = {name: function(results) for name, function in variables.SECTIONS.items()}
    assert all(values is not None for values in sections.values()), "every section has its results"
    sections["run"] = runinfo.report_variables("cpu", 0, "cpu", {"01_data_exploration": 60.0}, "builtin")
    return sections


def test_every_written_variable_is_read_by_a_page(written):
    keys = {f"{section}.{key}" for section, values in written.items() for key in values}
    unread = sorted(keys - read_variables())
    assert not unread, f"written but read by no page (delete them from lib/render/variables.py): {unread}"


def test_every_read_variable_is_written(written):
    keys = {f"{section}.{key}" for section, values in written.items() for key in values}
    assert not sorted(read_variables() - keys)


def test_every_variable_is_text_without_placeholders(written):
    for section, values in written.items():
        for key, value in values.items():
            assert isinstance(value, str) and "{" not in value and "None" not in value, (section, key, value)


def test_sentences_follow_the_intervals():
    assert variables.fragile({"value": -0.08, "ci": [-0.328, 0.015]})  # the verdict that flipped across machines
    assert not variables.fragile({"value": 0.5, "ci": [0.4, 0.6]})
    assert "mostly repeats" in variables.relation_to_classifier(0.9756, 0.9758)
    assert "does not merely repeat" in variables.relation_to_classifier(0.90, 0.9758)
    curve = [{"seed": s, "epoch": e, "rep1_clean": a} for s in (0, 1) for e, a in ((0, 0.97), (1, 0.96), (2, 0.975))]
    assert variables.curve_course(curve) == ("fell by 1.00 points over the first pass and ended 0.50 points above "
                                             "its start")
    assert variables.curve_course(curve[:2]) is None


def test_the_anomaly_comparisons_read_as_verdicts(results):
    ood = copy.deepcopy(results["04_ood_scoring"])
    ood["versus_baseline_without_frame_rep2"] = {"versus_baseline": {
        "auroc": estimate(0.002, -0.01, 0.014), "average_precision": estimate(-0.05, -0.1, -0.01),
        "fpr_at_95_tpr": estimate(0.0, -0.01, 0.01)}}
    ood["fit_on_labels_only_rep2"] = {"difference": {"auroc": estimate(0.01, 0.004, 0.02)}}
    full = variables.ood_variables({**results, "04_ood_scoring": ood})
    assert full["without_frame_versus_baseline_auroc_phrase"].endswith("no detectable difference)")
    assert "AP by -0.050" in full["without_frame_sentence"] and "worse" in full["without_frame_sentence"]
    assert "better" in full["labels_only_statistics_sentence"]
    ood["fit_on_labels_only_rep2"] = {"difference": {"auroc": estimate(-0.01, -0.02, -0.004)}}
    assert "worse" in variables.ood_variables({**results, "04_ood_scoring": ood})["labels_only_statistics_sentence"]


def test_the_transfer_prediction_sentence_says_when_it_failed():
    nothing = {"foreign_supervised": estimate(-0.008, -0.018, 0.002)}
    assert "does not bear this out" in variables.harm_prediction(nothing, 26)
    assert "26 foreign anomalies" in variables.harm_prediction(nothing, 26)
    hurt = {"foreign_supervised": estimate(-0.05, -0.08, -0.02)}
    assert variables.harm_prediction(hurt, 26).startswith("The measurement bears this out (")
    both = {**nothing, "foreign_contrastive": estimate(-0.05, -0.08, -0.02)}
    assert "held for related, contrastive and failed for related, supervised" in variables.harm_prediction(both, 26)


def test_committed_results_parse(results):
    json.dumps(results)  # plain data


def test_description_sentences_follow_the_paired_intervals(results):
    """Every direction the description's discussion states (beats, carries more than the class, repeats what
    training on the labels gives) is read from the study's paired intervals; "not measured" without the study."""
    bare = variables.description_variables(results)
    if "reconstruction_versus" not in results["04_ood_scoring"]["description"]:
        assert "not measured" in bare["reconstruction_sentence"]
        assert "not measured" in bare["kmeans_versus_baseline_sentence"]
    description = copy.deepcopy(results["04_ood_scoring"]["description"])
    mse = {"decoder": estimate(0.02, 0.019, 0.021), "pixels_pca10": estimate(0.03, 0.029, 0.031),
           "class_mean": estimate(0.04, 0.039, 0.041)}
    description.update({
        "images": 26000, "reconstruction_mse": mse,
        "reconstruction_versus": {"pixels_pca10": estimate(-0.01, -0.011, -0.009),
                                  "class_mean": estimate(-0.02, -0.021, -0.019)},
        "kmeans": {"baseline_pca10": {"kmeans_accuracy": estimate(0.97, 0.968, 0.972)},
                   "pixels_pca10": {"kmeans_accuracy": estimate(0.6, 0.59, 0.61)}},
        "kmeans_versus": {"baseline_pca10": estimate(0.001, -0.002, 0.004)},
        "within_class_share": {"description": 0.1, "baseline_pca10": 0.3, "pixels_pca10": 0.8}})

    def words(study):
        return variables.description_variables({**results, "04_ood_scoring": {**results["04_ood_scoring"],
                                                                             "description": study}})

    better = words(description)
    assert better["reconstruction_sentence"].startswith("From its ten numbers alone the decoder redraws the 26,000")
    assert "The decoder beats PCA-10" in better["reconstruction_sentence"]
    assert "carries more than the class" in better["reconstruction_sentence"]
    assert "beats PCA-10 of the pixels and carries more than the class" in better["beyond_class_phrase"]
    assert "what training on the labels gives" in better["kmeans_versus_baseline_sentence"]
    assert better["kmeans_pca"] == "60.0" and "most of what the description varies by is the class" in \
        better["within_class_sentence"]
    description["reconstruction_versus"] = {"pixels_pca10": estimate(0.01, 0.009, 0.011),
                                            "class_mean": estimate(0.0, -0.001, 0.001)}
    description["kmeans_versus"]["baseline_pca10"] = estimate(0.01, 0.005, 0.015)
    worse = words(description)
    assert "does not beat PCA-10" in worse["reconstruction_sentence"]
    assert "carries no more than the class" in worse["reconstruction_sentence"]
    assert "purer than what a network trained on the same labels gives" in worse["kmeans_versus_baseline_sentence"]
    assert worse["improvement"].startswith("The decoder does not beat PCA-10 of the pixels")
