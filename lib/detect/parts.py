"""The detector of every part of our evidence (`lib.results.PART_REGISTRY`), made by its kind with the profile's
settings (`lib.config.Anomaly`) and fitted on in-distribution network outputs; `lib.bundle.FinalModel` holds them
by part id."""

from __future__ import annotations

import numpy as np

from lib.data.replica import CLASS_NAMES
from lib.detect.base import Detector
from lib.detect.knn import KNN
from lib.detect.logits import Energy
from lib.detect.mahalanobis import Mahalanobis
from lib.detect.pixels import FrameIntensity, ReconstructionError
from lib.results import PART_REGISTRY

DETECTORS = {  # kind (`Part.detector`) -> an unfitted detector, given the profile's `anomaly` settings
    "mahalanobis": lambda settings: Mahalanobis(reg=settings.mahalanobis_ridge),
    "knn": lambda settings: KNN(k=settings.knn_k),
    "energy": lambda settings: Energy(),
    "reconstruction": lambda settings: ReconstructionError(),
    "frame": lambda settings: FrameIntensity(width=settings.frame_width),
}


def fit_detectors(outputs: dict[str, np.ndarray], classes: np.ndarray, bank: dict[str, np.ndarray],
                  settings) -> dict[str, Detector]:
    """Every part's detector, by part id: the Mahalanobis parts fitted on the network's outputs `outputs` of
    in-distribution images of classes `classes`, the kNN part's bank the outputs `bank` of other in-distribution
    images; the others fit nothing. `settings`: the profile's `anomaly`."""
    detectors = {}
    for name, part in PART_REGISTRY.items():
        detector = DETECTORS[part.detector](settings)
        if part.detector == "mahalanobis":
            detector.fit(outputs[part.reads], classes, n_classes=len(CLASS_NAMES))
        elif part.detector == "knn":
            detector.fit(bank[part.reads])
        detectors[name] = detector
    return detectors
