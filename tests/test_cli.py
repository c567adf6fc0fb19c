"""The command line turns bad input into one clear line and a non-zero exit."""

import os
import pickle
import subprocess
import sys

import pytest

from lib.workspace import PROJECT_ROOT
from tests.test_safe_pickle import CreatesFile, valid_data


def run_cli(*args, env=None):
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "lib", *args], capture_output=True, text=True,
                          cwd=PROJECT_ROOT, env=environment, timeout=120)


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], result.stderr


def test_missing_fashion_mnist(tmp_path):
    result = run_cli("data", env={"FASHION_MNIST_DIR": str(tmp_path / "empty"), "LIB_DATA_DIR": str(tmp_path)})
    assert_one_line_error(result, "FASHION_MNIST_DIR")


def test_truncated_pickle(tmp_path):
    path = tmp_path / "a.pickle"
    path.write_bytes(pickle.dumps(valid_data(), protocol=4)[:-40])
    assert_one_line_error(run_cli("data", "--data", str(path)), "truncated or damaged")


def test_wrong_shapes(tmp_path):
    data = valid_data()
    data["representative_set_2"]["data"] = data["representative_set_2"]["data"][:, :, :28, :28]
    path = tmp_path / "a.pickle"
    path.write_bytes(pickle.dumps(data, protocol=4))
    assert_one_line_error(run_cli("data", "--data", str(path)), "representative_set_2.data: expected shape")


def test_malicious_pickle(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "a.pickle"
    path.write_bytes(pickle.dumps({"unlabeled_data": CreatesFile(target)}, protocol=4))
    assert_one_line_error(run_cli("data", "--data", str(path)), "refused to load pickle global")
    assert not target.exists()


def test_valid_original_is_accepted(tmp_path):
    path = tmp_path / "a.pickle"
    path.write_bytes(pickle.dumps(valid_data(), protocol=4))
    result = run_cli("data", "--data", str(path))
    assert result.returncode == 0 and "valid" in result.stdout


# Arguments are checked before any data or model work: with no Fashion-MNIST and no
# replica anywhere, a bad argument is still what the one line names.
NO_DATA = {"FASHION_MNIST_DIR": "/nonexistent/fashion-mnist", "LIB_DATA_DIR": "/nonexistent/data"}


@pytest.mark.parametrize("args, fragment", [
    (("run", "--only", "99_nope", "--no-render"), "unknown notebook(s) 99_nope"),
    (("run", "--profile", "huge"), "invalid choice: 'huge'"),
    (("run", "--device", "tpu"), "unknown device 'tpu'"),
    (("run", "--device", "cuda:7"), "cuda:7"),
    (("run", "--seed", "x"), "invalid int value: 'x'"),
    (("render", "--report-dir", "/nonexistent/report"), "/nonexistent/report is no report folder"),
    (("predict",), "the following arguments are required"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
])
def test_bad_arguments(args, fragment):
    assert_one_line_error(run_cli(*args, env=NO_DATA), fragment)


def test_report_folder_without_quarto_project(tmp_path):
    (tmp_path / "index.qmd").write_text("# a report\n")
    assert_one_line_error(run_cli("render", "--report-dir", str(tmp_path)), "_quarto.yml is missing")
