"""The registry of the parts of our evidence (`lib.results.PART_REGISTRY`): one entry per part, and what the code
knows of a part (its detector, the network output it reads, its display names) read from that entry."""

import torch

from lib.detect import KNN, Energy, FrameIntensity, Mahalanobis, ReconstructionError
from lib.detect.parts import DETECTORS
from lib.render import names
from lib.results import COMBINATIONS, FEATURE_PARTS, PART_REGISTRY, PARTS
from tests.test_predict import tiny_model


def test_every_part_is_one_registry_entry():
    assert PARTS == tuple(PART_REGISTRY) == ("stage_1", "stage_2", "stage_3", "description", "knn", "energy",
                                             "reconstruction", "frame")
    assert FEATURE_PARTS == ("stage_1", "stage_2", "stage_3", "description")
    assert COMBINATIONS["every_part"] == PARTS
    # the display names are the registry's
    assert names.PART_COLUMNS == {part: entry.column for part, entry in PART_REGISTRY.items()}
    assert all(names.SCORES[part] == entry.name for part, entry in PART_REGISTRY.items())


def test_each_part_gets_the_detector_and_the_output_its_entry_names():
    model, _ = tiny_model()
    with torch.no_grad():
        readable = {*model.network.outputs(torch.rand(2, 1, 32, 32)), "decoder", "pixels"}
    assert {entry.reads for entry in PART_REGISTRY.values()} <= readable
    assert {entry.detector for entry in PART_REGISTRY.values()} == set(DETECTORS)
    kinds = {"mahalanobis": Mahalanobis, "knn": KNN, "energy": Energy, "reconstruction": ReconstructionError,
             "frame": FrameIntensity}
    assert list(model.detectors) == list(PARTS)
    for part, entry in PART_REGISTRY.items():
        assert type(model.detectors[part]) is kinds[entry.detector], part
