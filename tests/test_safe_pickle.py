import os
import pickle

import numpy as np
import pytest

from lib.data.safe_pickle import load_assignment_pickle, validate
from lib.errors import DataError


def valid_data(n=4):
    def one_hot(k, width):
        return np.eye(width, dtype=np.float32)[np.arange(k) % width]

    images = lambda k: np.zeros((k, 1, 32, 32), np.uint8)  # noqa: E731
    return {
        "unlabeled_data": images(n),
        "labeled_data": {"data": images(n), "labels": one_hot(n, 5)},
        "representative_set_1": {"data": images(n), "labels": one_hot(n, 6)},
        "representative_set_2": {"data": images(n), "labels": one_hot(n, 6)},
    }


def dump(tmp_path, obj, protocol=4):
    path = tmp_path / "data.pickle"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


class CreatesFile:
    """A payload that would create a file when unpickled by an unrestricted loader."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("protocol", [2, 4])
def test_valid_pickle_loads(tmp_path, protocol):
    loaded = load_assignment_pickle(dump(tmp_path, valid_data(), protocol))
    assert loaded["labeled_data"]["labels"].shape == (4, 5)


def test_malicious_pickle_is_refused_before_it_runs(tmp_path):
    target = tmp_path / "pwned"
    data = valid_data()
    data["unlabeled_data"] = CreatesFile(target)
    with pytest.raises(DataError, match=r"refused to load pickle global (posix|os|nt)\.system"):
        load_assignment_pickle(dump(tmp_path, data))
    assert not target.exists()


def test_truncated_pickle(tmp_path):
    path = dump(tmp_path, valid_data())
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(DataError, match="truncated or damaged"):
        load_assignment_pickle(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_assignment_pickle(tmp_path / "nope.pickle")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("labeled_data"), "missing \\['labeled_data'\\]"),
    (lambda d: d.__setitem__("extra", 1), "unexpected \\['extra'\\]"),
    (lambda d: d.__setitem__("unlabeled_data", np.zeros((4, 32, 32), np.uint8)), "unlabeled_data: expected shape"),
    (lambda d: d.__setitem__("unlabeled_data", np.zeros((4, 1, 32, 32), np.float32)), "expected dtype uint8"),
    (lambda d: d["labeled_data"].__setitem__("labels", np.zeros((4, 5), np.float32)), "not one-hot"),
    (lambda d: d["labeled_data"].__setitem__("labels", np.full((4, 5), 0.2, np.float32)), "must be 0 or 1"),
    (lambda d: d["representative_set_1"].__setitem__("labels", np.eye(5, dtype=np.float32)[:4]),
     "representative_set_1.labels: expected shape \\(4, 6\\)"),
    (lambda d: d["representative_set_2"].__setitem__("labels", np.eye(6, dtype=np.float64)[:4]), "dtype float32"),
    (lambda d: d["labeled_data"].__setitem__("data", [1, 2]), "expected a numpy array"),
])
def test_validation_names_the_failed_check(mutate, message):
    data = valid_data()
    mutate(data)
    with pytest.raises(DataError, match=message):
        validate(data)
