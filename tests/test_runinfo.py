from importlib.metadata import version

from lib.render.runinfo import library_versions, report_variables


def test_library_versions_names_each_library_and_a_missing_one():
    text = library_versions(("numpy", "surely-not-a-package-xyz"))
    assert text == f"numpy {version('numpy')}, surely-not-a-package-xyz not installed"


def test_report_variables_sum_the_notebook_times():
    out = report_variables("smoke", 3, "cpu", {"01_a": 1.4, "02_b": 2.4}, "builtin")
    assert out["seconds_notebooks"] == "4" and out["seconds_per_notebook"] == "01_a 1 s; 02_b 2 s"
    assert out["seed"] == "3" and "numpy" in out["libraries"] and out["device_description"].endswith("no GPU")
