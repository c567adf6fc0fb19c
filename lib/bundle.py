"""The deployed model: encoder, classifier and anomaly score in one TorchScript file.

`FinalModel.forward(x)` takes uint8 images (n, 1, 32, 32) and returns
`(logits (n, 5), anomaly_score (n,), embedding (n, d))`. Inputs are scaled to
[0, 1] (x / 255), the input every encoder of lib/nn/models.py is trained on.

Classifier: `head(embedding)` logits, or, with `head=None`, the log-posterior
of the class-conditional Gaussians (linear discriminant analysis).

Anomaly score (`score_name`): one component, or several joined by "+", from
- "mahalanobis": squared Mahalanobis distance to the nearest class mean with
  the shared precision matrix (= lib.eval.ood.ClassGaussians.mahalanobis);
- "knn": cosine distance to the k-th nearest of `knn_bank` embeddings
  (= lib.eval.ood.KNNDistance);
- "energy", "msp": from the logits (= lib.eval.ood.energy_score, msp_score).
A single component is used as it is; several are combined like
lib.eval.ood.combine_scores(how="mean"): each standardised by `score_stats`
{name: (mean, std)} from in-distribution training images (lib.eval.ood.score_stats),
then averaged. The threshold applies to this final score.

`save_final_model` traces and freezes the model (TorchScript) into `model.pt`, writes
`model.json` (threshold, class names, score name, embedding size, input
format, profile); `load_final_model` needs neither training code nor this class.

Typical use (notebook 04):

    gaussians = ClassGaussians().fit(z_labeled, y_labeled, z_unlabeled=z_unlabeled)
    model = FinalModel(encoder, head, gaussians.means_, gaussians.precision_)
    _, scores_rep1, _ = lib.predict.run_model(model, rep1_x)  # the bundle's own scores
    model.threshold = lib.eval.metrics.fit_threshold(scores_rep1, rep1_y == 5)
    save_final_model(model, ws.checkpoints(profile, "final"), profile,
                     extra={"threshold_selection": "best F1 on representative set 1"})
"""

from __future__ import annotations

import copy
import json
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lib.data.replica import CLASS_NAMES
from lib.errors import DataError
from lib.eval.ood import knn_cosine_distance

MODEL_FILE = "model.pt"
META_FILE = "model.json"
FORMAT_VERSION = 1
SCORE_COMPONENTS = ("mahalanobis", "knn", "energy", "msp")


def _tensor(values) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))


class FinalModel(nn.Module):
    def __init__(self, encoder: nn.Module, head: nn.Module | None, class_means, shared_precision,
                 threshold: float = math.nan, score_name: str = "mahalanobis", class_log_priors=None,
                 knn_bank=None, knn_k: int = 10, score_stats: dict | None = None,
                 class_names: tuple[str, ...] = CLASS_NAMES):
        super().__init__()
        self.encoder, self.head = encoder, head
        self.components = score_name.split("+")
        unknown = [name for name in self.components if name not in SCORE_COMPONENTS]
        if unknown:
            raise ValueError(f"unknown score components {unknown}: choose from {SCORE_COMPONENTS}")
        if "knn" in self.components and knn_bank is None:
            raise ValueError("the 'knn' score needs knn_bank (the unlabeled embeddings)")
        if len(self.components) > 1 and not score_stats:
            raise ValueError("a combined score needs score_stats {name: (mean, std)} from training data")
        self.score_name, self.threshold, self.class_names, self.knn_k = score_name, float(threshold), \
            tuple(class_names), knn_k
        means = _tensor(class_means)
        self.register_buffer("class_means", means)
        self.register_buffer("shared_precision", _tensor(shared_precision))
        priors = np.full(len(means), -math.log(len(means))) if class_log_priors is None else class_log_priors
        self.register_buffer("class_log_priors", _tensor(priors))
        bank = torch.zeros(0, means.shape[1]) if knn_bank is None else _tensor(knn_bank)
        self.register_buffer("knn_bank", nn.functional.normalize(bank, dim=1))
        # one (mean, std) per component; a single component stays in its raw units
        stats = [score_stats[name] if len(self.components) > 1 else (0.0, 1.0) for name in self.components]
        self.register_buffer("score_mean", _tensor([mean for mean, _ in stats]))
        self.register_buffer("score_std", _tensor([std for _, std in stats]))

    @property
    def embedding_dim(self) -> int:
        return int(self.class_means.shape[1])

    def forward(self, x: torch.Tensor):
        z = self.encoder(x.float() / 255.0)
        diff = z[:, None, :] - self.class_means[None]
        squared = torch.einsum("ncd,de,nce->nc", diff, self.shared_precision, diff)
        logits = self.head(z) if self.head is not None else torch.log_softmax(
            -0.5 * squared + self.class_log_priors, dim=1)
        parts = []
        for name in self.components:  # fixed at construction: tracing keeps only the chosen components
            if name == "mahalanobis":
                parts.append(squared.min(dim=1).values)
            elif name == "knn":
                parts.append(knn_cosine_distance(self.knn_bank, z, self.knn_k))
            elif name == "energy":
                parts.append(-torch.logsumexp(logits, dim=1))
            else:
                parts.append(-torch.softmax(logits, dim=1).max(dim=1).values)
        score = ((torch.stack(parts, dim=1) - self.score_mean) / self.score_std).mean(dim=1)
        return logits, score, z


@dataclass(frozen=True)
class LoadedModel:
    """A deployed model: the TorchScript module and its metadata (model.json)."""

    module: torch.jit.ScriptModule
    metadata: dict

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    @property
    def class_names(self) -> list[str]:
        return list(self.metadata["class_names"])


@contextmanager
def _quiet_jit():
    """TorchScript is deprecated in recent PyTorch (a FutureWarning) but still the fastest format to load."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*")
        yield


def save_final_model(model: FinalModel, folder: Path | str, profile: str, extra: dict | None = None) -> Path:
    """Trace `model` on CPU into folder/model.pt and write folder/model.json; return the folder."""
    if not math.isfinite(model.threshold):
        raise ValueError("set model.threshold (fixed on representative set 1) before saving")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).cpu().eval()  # the caller's model may live on the GPU and keep training
    examples = torch.randint(0, 256, (7, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with _quiet_jit(), torch.no_grad():
        # freezing folds batch norm into the convolutions and inlines the weights (~15 % faster on CPU)
        traced = torch.jit.freeze(torch.jit.trace(model, examples[:4], check_trace=False))
        # traced on 4 images, checked on 3 others: a graph tied to the batch size or to data-dependent
        # branches would differ (cheaper than trace's own check_trace, which takes seconds)
        for got, expected in zip(traced(examples[4:]), model(examples[4:])):
            if got.shape != expected.shape or not torch.allclose(got, expected, rtol=1e-4, atol=1e-4):
                raise ValueError("the traced model differs from the model: does its encoder branch on data?")
        traced.save(str(folder / MODEL_FILE))
    metadata = {
        "format_version": FORMAT_VERSION,
        "threshold": model.threshold,
        "anomaly_flag": "anomaly_score > threshold",
        "score_name": model.score_name,
        "class_names": list(model.class_names),
        "embedding_dim": model.embedding_dim,
        "input": {"dtype": "uint8", "shape": [1, 32, 32], "scaling": "x / 255"},
        "outputs": ["logits (n, 5)", "anomaly_score (n,)", f"embedding (n, {model.embedding_dim})"],
        "profile": profile,
        "torch_version": torch.__version__,
        **(extra or {}),
    }
    (folder / META_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return folder


def load_final_model(folder: Path | str) -> LoadedModel:
    """Load a saved model on CPU; a missing or damaged file raises DataError in one line."""
    folder = Path(folder)
    model_path, meta_path = folder / MODEL_FILE, folder / META_FILE
    for path in (model_path, meta_path):
        if not path.is_file():
            raise DataError(f"{path} does not exist: not a saved model folder")
    try:
        metadata = json.loads(meta_path.read_text())
        threshold = float(metadata["threshold"])
        names = metadata["class_names"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise DataError(f"{meta_path} is damaged: {type(error).__name__}: {error}") from None
    if not math.isfinite(threshold) or not isinstance(names, list) or len(names) != len(CLASS_NAMES):
        raise DataError(f"{meta_path} is damaged: needs a finite threshold and {len(CLASS_NAMES)} class names")
    try:
        with _quiet_jit():
            module = torch.jit.load(str(model_path), map_location="cpu").eval()
            # CPU-specific rewrites (oneDNN convolutions): ~10 % faster, so done at load rather than at save
            module = torch.jit.optimize_for_inference(module)
    except (RuntimeError, ValueError, OSError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"{model_path} is not a readable TorchScript model: {first_line}") from None
    return LoadedModel(module, metadata)
