"""Anomaly detectors behind one API: `fit(in-distribution inputs) -> self`, then `score(inputs) -> scores`
("higher = more anomalous"), fitted on in-distribution training data only; representative set 1 chooses
among them and fixes the threshold (`lib.eval.protocol`).

- `Mahalanobis`: squared distance to the nearest class mean under a shared covariance (features + labels);
- `KNN`: cosine distance to the k-th nearest training feature vector;
- `MaxSoftmax`, `Energy`: from classifier logits;
- `ReconstructionError`: an image against its reconstruction; `FrameIntensity`: mean of the image border;
- `StandardizedSum`: a weighted sum of other detectors' scores, each standardised on in-distribution data;
- `parts`: the detector of every part of our evidence (`lib.results.PART_REGISTRY`), made by its kind and fitted.

The torch detectors are modules (`Detector`): their fitted statistics are buffers, so the deployed model
(`lib.bundle`) exports the very objects the analyses use.
"""

from lib.detect.base import Detector
from lib.detect.combination import StandardizedSum
from lib.detect.knn import KNN
from lib.detect.logits import Energy, MaxSoftmax
from lib.detect.mahalanobis import Mahalanobis
from lib.detect.pixels import FrameIntensity, ReconstructionError

__all__ = ["Detector", "Energy", "FrameIntensity", "KNN", "Mahalanobis", "MaxSoftmax", "ReconstructionError",
           "StandardizedSum"]
