"""`python -m lib predict`: apply the deployed model to new images and write a CSV (README "Other ways in").

INPUT is a `.npy` array of uint8 images, (n, 28, 28), (n, 1, 28, 28),
(n, 32, 32) or (n, 1, 32, 32) (28x28 are padded with 2 zero pixels per side,
like the assignment's data), or a pickle of the assignment's structure (a dict
of sets, each an image array or a dict with a 'data' array), read by the
restricted loader of lib/safe_pickle.py. The CSV has one row per image:
`set` (pickles only), `index` (within its set), `class`, `class_name`,
`anomaly_score`, `anomaly_flag` (1 if score > the validated threshold) and the
embedding `z0..z9`.

Input is checked before the model (and torch) is loaded, so mistakes are
reported at once, as one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lib.data.safe_pickle import load_pickle
from lib.errors import DataError, UserError
from lib.workspace import PROJECT_ROOT

NPY_MAGIC = b"\x93NUMPY"
SHAPES = "(n, 28, 28), (n, 1, 28, 28), (n, 32, 32) or (n, 1, 32, 32)"
FALLBACK_PROFILES = ("cpu", "gpu", "smoke")
BATCH_SIZE = 256  # bounds memory (a kNN score holds a batch x bank similarity matrix); fastest on two CPU cores


def as_images(array, name: str) -> np.ndarray:
    """Check an input array and return it as uint8 (n, 1, 32, 32); DataError naming `name` otherwise."""
    if not isinstance(array, np.ndarray):
        raise DataError(f"{name}: expected a numpy array of images, got {type(array).__name__}")
    if array.dtype != np.uint8:
        nan = np.issubdtype(array.dtype, np.floating) and bool(np.isnan(array).any())
        found = "float values including NaN" if nan else f"dtype {array.dtype}"
        raise DataError(f"{name}: found {found}; uint8 images with values 0-255 expected")
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or array.shape[1:] not in ((28, 28), (32, 32)):
        raise DataError(f"{name}: shape {array.shape} is not supported; expected {SHAPES}")
    if len(array) == 0:
        raise DataError(f"{name}: contains no images")
    if array.shape[1] == 28:  # two zero pixels per side, as lib.replica.pad (not imported: scipy loads slowly)
        array = np.pad(array, ((0, 0), (2, 2), (2, 2)))
    return np.ascontiguousarray(array[:, None])


def read_images(path: Path) -> list[tuple[str | None, np.ndarray]]:
    """[(set name or None for a .npy, uint8 images (n, 1, 32, 32))] from INPUT."""
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    with open(path, "rb") as handle:
        is_npy = handle.read(len(NPY_MAGIC)) == NPY_MAGIC
    if is_npy:
        try:
            array = np.load(path, allow_pickle=False)  # never run code from the file
        except ValueError as error:
            if "allow_pickle" in str(error):
                raise DataError(f"{path} holds Python objects, not uint8 images") from None
            raise DataError(f"{path} is not a readable .npy file: {error}") from None
        except (OSError, EOFError) as error:
            raise DataError(f"{path} is not a readable .npy file: {error}") from None
        return [(None, as_images(array, str(path)))]
    if path.suffix == ".npy":
        raise DataError(f"{path} is not a .npy file (no NumPy header): damaged, or saved another way?")
    data = load_pickle(path)  # restricted: refuses anything but numpy arrays and plain containers
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected a .npy array or a pickled dict of sets like the assignment's")
    sets = []
    for name, part in data.items():
        images = part.get("data") if isinstance(part, dict) else part
        sets.append((str(name), as_images(images, f"{path}: {name}")))
    return sets


def default_model_folder(root: Path = PROJECT_ROOT) -> Path:
    """checkpoints/<profile>/final of the last full run (results/summary.json), else of cpu, gpu, smoke."""
    profiles = list(FALLBACK_PROFILES)
    summary = root / "results" / "summary.json"
    if summary.is_file():
        try:
            profiles.insert(0, str(json.loads(summary.read_text())["profile"]))
        except (ValueError, KeyError, TypeError):
            pass  # a summary without a profile: fall back to the fixed order
    for profile in profiles:
        folder = root / "checkpoints" / profile / "final"
        if folder.is_dir():
            return folder
    raise UserError(f"no trained model in {root / 'checkpoints'}/{{cpu,gpu,smoke}}/final: "
                    "run `make report` first, or pass --model FOLDER")


def check_output(out: Path, inputs: Path) -> None:
    if out.resolve() == inputs.resolve() or (out.exists() and inputs.exists() and os.path.samefile(out, inputs)):
        raise UserError(f"--out {out} is the input file; choose another path (INPUT is never overwritten)")
    if not out.parent.is_dir():
        raise UserError(f"the folder of --out ({out.parent}) does not exist")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as predictions.csv")


def run_model(module, images: np.ndarray, batch_size: int = BATCH_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits, anomaly scores, embeddings) of uint8 images by the deployed model, in batches on the CPU."""
    from lib.nn.infer import batched

    return batched(module, images, "cpu", batch_size, scale=False)


def time_predict(model_folder: Path, images: np.ndarray) -> float:
    """Seconds `python -m lib predict` takes in a fresh process on `images` saved as .npy, model load included."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as folder:
        images_path, out_path = Path(folder) / "images.npy", Path(folder) / "predictions.csv"
        np.save(images_path, images)
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, "-m", "lib", "predict", str(images_path), "--out", str(out_path),
                                    "--model", str(model_folder)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            raise RuntimeError(f"predict failed: {completed.stderr.strip()}")
        if len(pd.read_csv(out_path)) != len(images):
            raise RuntimeError("predict wrote the wrong number of rows")
    return seconds


def predict_file(inputs: Path | str, out: Path | str, model_folder: Path | str | None = None,
                 threads: int | None = None) -> dict:
    """Write the predictions CSV for INPUT; return counts and timing (model load included).

    `threads`: CPU threads for inference (default: PyTorch's, one per core). On cores
    shared with other jobs, 1 can be much faster: threads of one operation wait for each other.
    """
    started = time.perf_counter()
    inputs, out = Path(inputs), Path(out)
    folder = Path(model_folder) if model_folder else default_model_folder()
    check_output(out, inputs)
    sets = read_images(inputs)
    # imported only now: input errors are reported without waiting for torch to load
    import pandas as pd
    import torch

    from lib.bundle import load_final_model

    if threads:
        torch.set_num_threads(threads)
    model = load_final_model(folder)
    tables = []
    for name, images in sets:
        logits, score, z = run_model(model.module, images)
        predicted = logits.argmax(axis=1)
        table = pd.DataFrame({"index": np.arange(len(images)), "class": predicted,
                              "class_name": np.asarray(model.class_names)[predicted], "anomaly_score": score,
                              "anomaly_flag": (score > model.threshold).astype(np.int64)})
        table[[f"z{i}" for i in range(z.shape[1])]] = z
        if name is not None:
            table.insert(0, "set", name)
        tables.append(table)
    result = pd.concat(tables, ignore_index=True)
    result.to_csv(out, index=False, float_format="%.6g")
    seconds = time.perf_counter() - started
    return {"rows": len(result), "flagged": int(result["anomaly_flag"].sum()), "model": str(folder),
            "seconds": seconds, "images_per_second": len(result) / seconds}
