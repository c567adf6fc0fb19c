"""The unseen-kind check set: anomalies the replica does not contain (docs/data.md).

The replica's anomalies are foreign Fashion-MNIST classes and six corruptions of
in-distribution images (`replica.CORRUPTIONS`). A detector tuned on
representative set 1 may have learnt just those. This set asks whether it
flags other kinds of strangeness too. It holds

- fresh clean images: in-distribution Fashion-MNIST items that the replica left
  unused (none is in the labeled, unlabeled or representative sets), padded to
  32x32 exactly as the replica pads them;
- for every kind in `KINDS`, anomalies that are either generated (no image
  source) or made from *other* fresh in-distribution items, so no anomaly
  shares a source with a clean image or with anything a model trained on.

No model trains on it and no choice (score, threshold, hyperparameter) may
use it: it is evaluated once, as the ROC AUC of each kind against the fresh
clean images (`UnseenSet.pair`), plus the share of pure-noise images above the
deployed threshold (docs/protocol.md: "images of pure noise are always flagged").

Border: the replica's images carry two zero pixels on every side. Kinds that
stand for "an image that went through the same 28x28 -> 32x32 pipeline"
(everything drawn or derived from an article) keep that zero border; the two
"broken sensor" kinds (uniform noise, a constant frame) cover the whole 32x32
frame, border included. Each description says which.

Everything is deterministic: the same Fashion-MNIST, used indices and seed give
byte-identical arrays (`UnseenSet.digest`). One permutation of the fresh items
(seeded by `seed`) is dealt out in order: the clean images first, then the
sources of each derived kind in `KINDS` order. Each kind's own randomness comes
from a generator seeded by (seed, CRC-32 of its name), so a generated kind's
images do not depend on which other kinds are built.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from lib.data import fashion_mnist, replica
from lib.data.digits import load_digits, upscale_pad
from lib.errors import DataError

CLEAN = "clean"
SIZE, INNER, BORDER = 32, 28, 2
ALL_CLASSES = tuple(range(len(replica.IN_DISTRIBUTION)))  # class indices 0-4 (assignment order)
FOOTWEAR = tuple(replica.CLASS_NAMES.index(name) for name in ("Sandal", "Sneaker", "Ankle boot"))


class Kind(NamedTuple):
    """One anomaly kind.

    `make(rng, sources, source_class, n)` returns n uint8 images (n, 1, 32, 32).
    `sources` are `per_image * n` fresh in-distribution images (uint8, padded,
    shape (k, 1, 32, 32)) of the classes in `classes`, with their class indices;
    generated kinds (`per_image == 0`) get empty arrays.
    """

    make: Callable[[np.random.Generator, np.ndarray, np.ndarray, int], np.ndarray]
    description: str
    per_image: int = 0
    classes: tuple[int, ...] = ALL_CLASSES


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _inner_canvas(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A black float canvas (n, 28, 28) and its pixel-centre coordinates (row, column)."""
    rows, cols = np.mgrid[0:INNER, 0:INNER].astype(np.float64)
    return np.zeros((n, INNER, INNER)), rows, cols


# --------------------------------------------------------------------------- generated kinds


def _uniform_noise(rng, sources, source_class, n):
    return rng.integers(0, 256, size=(n, 1, SIZE, SIZE), dtype=np.uint8)


def _constant_frame(rng, sources, source_class, n):
    levels = rng.integers(64, 256, size=n, dtype=np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (n, 1, SIZE, SIZE)).copy()


def _handwritten_digits(rng, sources, source_class, n):
    digits, _ = load_digits()
    chosen = rng.choice(len(digits), size=n, replace=n > len(digits))
    return upscale_pad(digits[chosen], max_value=16.0)


def _geometric_shapes(rng, sources, source_class, n):
    canvas, rows, cols = _inner_canvas(n)
    for image in canvas:
        for _ in range(rng.integers(1, 4)):
            shape, level = rng.integers(0, 3), float(rng.integers(128, 256))
            if shape == 0:  # filled disc
                radius = rng.uniform(4.0, 10.0)
                cy, cx = rng.uniform(radius - 2, INNER - radius + 2, size=2)
                mask = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
            elif shape == 1:  # filled axis-aligned rectangle
                height, width = rng.integers(6, 21, size=2)
                top, left = rng.integers(0, INNER - height + 1), rng.integers(0, INNER - width + 1)
                mask = (rows >= top) & (rows < top + height) & (cols >= left) & (cols < left + width)
            else:  # thick straight segment, 14-26 pixels long, through a point near the centre
                cy, cx = rng.uniform(7.0, INNER - 7.0, size=2)
                angle, length, thickness = rng.uniform(0.0, np.pi), rng.uniform(14.0, 26.0), rng.uniform(2.0, 3.5)
                dy, dx = length * np.sin(angle), length * np.cos(angle)
                y0, x0 = cy - dy / 2, cx - dx / 2
                length2 = dy * dy + dx * dx
                t = np.clip(((rows - y0) * dy + (cols - x0) * dx) / length2, 0.0, 1.0)
                mask = (rows - y0 - t * dy) ** 2 + (cols - x0 - t * dx) ** 2 <= (thickness / 2) ** 2 + 0.25
            image[mask] = level
    return replica.pad(_to_uint8(canvas))


def _periodic_pattern(rng, sources, source_class, n):
    canvas, rows, cols = _inner_canvas(n)
    for image in canvas:
        period = int(rng.choice([4, 6, 8, 10]))
        offset = int(rng.integers(0, period))
        on_rows = ((rows + offset) // (period // 2)) % 2 == 0
        if rng.random() < 0.5:  # horizontal stripes
            mask = on_rows
        else:  # checkerboard with square cells of half a period
            mask = on_rows ^ (((cols + offset) // (period // 2)) % 2 == 1)
        image[mask] = float(rng.integers(160, 256))
    return replica.pad(_to_uint8(canvas))


# --------------------------------------------------------------------------- kinds derived from fresh images


def _pairs(source_class: np.ndarray) -> np.ndarray:
    """Split 2n sources into n pairs of different classes: positions (n, 2) into the sources.

    Source i is paired with source n + i (the sources arrive in random order, so
    every class combination occurs); a pair of one class swaps its partner with
    the first other pair where the swap leaves both pairs of different classes.
    """
    n = len(source_class) // 2
    first, partner = source_class[:n], np.arange(n, 2 * n)
    for i in range(n):
        if source_class[partner[i]] != first[i]:
            continue
        fits = (source_class[partner] != first[i]) & (first != source_class[partner[i]])
        if not fits.any():
            raise ValueError("blended_pair: too few source images of a second class")
        j = int(np.flatnonzero(fits)[0])
        partner[i], partner[j] = partner[j], partner[i]
    return np.stack([np.arange(n), partner], axis=1)


def _blended_pair(rng, sources, source_class, n):
    pairs = _pairs(source_class)
    return _to_uint8((sources[pairs[:, 0]].astype(np.float64) + sources[pairs[:, 1]].astype(np.float64)) / 2.0)


def _upside_down(rng, sources, source_class, n):
    return np.ascontiguousarray(sources[:, :, ::-1, :])


def _low_contrast(rng, sources, source_class, n):
    return _to_uint8(sources.astype(np.float64) * (40.0 / 255.0))


# name -> Kind(make, one-line description with its fixed severity, sources per image, source classes)
KINDS: dict[str, Kind] = {
    "uniform_noise": Kind(
        _uniform_noise, "pure noise: every pixel of the 32x32 frame (border included) uniform in 0-255"),
    "constant_frame": Kind(
        _constant_frame, "a blank frame: all 32x32 pixels (border included) one grey level, uniform in 64-255"),
    "handwritten_digits": Kind(
        _handwritten_digits, "scikit-learn's bundled 8x8 handwritten digits, bilinearly upscaled to 28x28, "
        "16 grey levels stretched to 0-255, zero border"),
    "geometric_shapes": Kind(
        _geometric_shapes, "1-3 filled discs (radius 4-10), rectangles (sides 6-20) or lines (length 14-26, "
        "width 2-3.5), grey 128-255 on black 28x28, zero border"),
    "periodic_pattern": Kind(
        _periodic_pattern, "horizontal stripes or a checkerboard, period 4-10 pixels, grey 160-255 on black "
        "28x28, zero border"),
    "blended_pair": Kind(
        _blended_pair, "the 50/50 pixel average of two fresh in-distribution images of different classes, zero border",
        per_image=2),
    "upside_down": Kind(
        _upside_down, "a fresh sandal, sneaker or ankle boot flipped top to bottom (sole up; trousers and bags "
        "are nearly symmetric and are left out), zero border", per_image=1, classes=FOOTWEAR),
    "low_contrast": Kind(
        _low_contrast, "a fresh in-distribution image with intensities scaled by 40/255 (range 0-40), zero border",
        per_image=1),
}


# --------------------------------------------------------------------------- the set


@dataclass(frozen=True, eq=False)
class UnseenSet:
    """The check set: clean images first, then each kind's anomalies in `KINDS` order.

    x: uint8 (n, 1, 32, 32). kind: str (n,), "clean" or a kind name.
    clean_class: int64 (n,), class index 0-4 (assignment order) of clean items, -1 for anomalies.
    fmnist_index: int64 (n, 2), the Fashion-MNIST indices an item comes from (clean: its own;
    derived anomalies: their source, blends: both), -1 where there is none.
    """

    x: np.ndarray
    kind: np.ndarray
    clean_class: np.ndarray
    fmnist_index: np.ndarray
    seed: int

    @property
    def is_anomaly(self) -> np.ndarray:
        return self.kind != CLEAN

    @property
    def kinds(self) -> tuple[str, ...]:
        """The anomaly kinds present, in `KINDS` order."""
        present = set(self.kind.tolist())
        return tuple(name for name in KINDS if name in present)

    def pair(self, kind: str) -> np.ndarray:
        """Boolean mask of the clean images and the anomalies of one kind (for a per-kind ROC AUC)."""
        if kind not in KINDS:
            raise KeyError(f"unknown unseen kind {kind!r}; known: {', '.join(KINDS)}")
        return (self.kind == CLEAN) | (self.kind == kind)

    def digest(self) -> str:
        """SHA-256 of images and kinds (for the results JSON: which check set was evaluated)."""
        h = hashlib.sha256(np.ascontiguousarray(self.x).tobytes())
        h.update("\n".join(self.kind.tolist()).encode())
        return h.hexdigest()

    def counts(self) -> dict[str, int]:
        return {name: int((self.kind == name).sum()) for name in (CLEAN, *self.kinds)}


def fresh_indices(labels: np.ndarray, used_indices: np.ndarray) -> np.ndarray:
    """Sorted indices of in-distribution Fashion-MNIST items that are not in `used_indices`."""
    inside = np.isin(labels, replica.IN_DISTRIBUTION)
    inside[np.asarray(used_indices, dtype=np.int64)] = False
    return np.flatnonzero(inside)


def _kind_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def build_unseen_set(images: np.ndarray, labels: np.ndarray, used_indices: np.ndarray,
                     n_clean: int = 500, n_per_kind: int = 100, seed: int = 0,
                     kinds: tuple[str, ...] | None = None) -> UnseenSet:
    """Build the check set from all Fashion-MNIST items (images (N, 28, 28), labels (N,)).

    `used_indices` are the indices (into the same arrays, train then test as in
    `fashion_mnist.load_all`) of every item the replica used. Clean images and
    the sources of derived kinds are disjoint fresh in-distribution items.
    `kinds` selects a subset of `KINDS` (default: all).
    """
    if images.shape[1:] != (INNER, INNER) or len(images) != len(labels):
        raise ValueError(f"expected images (N, 28, 28) matching labels, got {images.shape} and {labels.shape}")
    names = tuple(KINDS) if kinds is None else tuple(kinds)
    unknown = [name for name in names if name not in KINDS]
    if unknown:
        raise KeyError(f"unknown unseen kinds {unknown}; known: {', '.join(KINDS)}")
    class_of_label = np.full(256, -1, dtype=np.int64)
    class_of_label[list(replica.IN_DISTRIBUTION)] = ALL_CLASSES
    used = np.unique(np.asarray(used_indices, dtype=np.int64))
    order = np.random.default_rng(seed).permutation(fresh_indices(labels, used))
    taken = np.zeros(len(order), dtype=bool)

    def take(count: int, classes: tuple[int, ...], what: str) -> np.ndarray:
        eligible = np.flatnonzero(~taken & np.isin(class_of_label[labels[order]], classes))
        if len(eligible) < count:
            raise ValueError(f"unseen set: {what} needs {count} fresh in-distribution images, "
                             f"{len(eligible)} left (of {len(order)} fresh)")
        chosen = eligible[:count]
        taken[chosen] = True
        return order[chosen]

    clean = take(n_clean, ALL_CLASSES, "the clean part")
    xs = [replica.pad(images[clean])]
    kind_column = [np.full(n_clean, CLEAN)]
    classes = [class_of_label[labels[clean]]]
    index = [np.stack([clean, np.full(n_clean, -1)], axis=1)]
    for name in names:
        spec = KINDS[name]
        sources = take(spec.per_image * n_per_kind, spec.classes, name)
        source_class = class_of_label[labels[sources]]
        made = spec.make(_kind_rng(seed, name), replica.pad(images[sources]), source_class, n_per_kind)
        if made.dtype != np.uint8 or made.shape != (n_per_kind, 1, SIZE, SIZE):
            raise AssertionError(f"kind {name} made {made.dtype} {made.shape}")
        xs.append(made)
        kind_column.append(np.full(n_per_kind, name))
        classes.append(np.full(n_per_kind, -1))
        index.append(_source_columns(sources, source_class, n_per_kind))
    fmnist_index = np.concatenate(index).astype(np.int64)
    assert not np.isin(fmnist_index[fmnist_index >= 0], used).any(), "an unseen-set item comes from a used image"
    return UnseenSet(x=np.concatenate(xs), kind=np.concatenate(kind_column).astype(str),
                     clean_class=np.concatenate(classes).astype(np.int64), fmnist_index=fmnist_index, seed=seed)


def _source_columns(sources: np.ndarray, source_class: np.ndarray, n: int) -> np.ndarray:
    """The (n, 2) Fashion-MNIST indices behind n anomalies made from `sources` (-1: none)."""
    out = np.full((n, 2), -1, dtype=np.int64)
    if len(sources) == n:
        out[:, 0] = sources
    elif len(sources) == 2 * n:  # blended pairs, matched exactly as _blended_pair matches them
        out[:] = sources[_pairs(source_class)]
    return out


def used_indices(answer_key: dict) -> np.ndarray:
    """Every Fashion-MNIST index the replica used (labeled, unlabeled, both representative sets)."""
    names = ("labeled_fmnist_index", "unlabeled_fmnist_index", "rep1_fmnist_index", "rep2_fmnist_index")
    return np.unique(np.concatenate([np.asarray(answer_key[name], dtype=np.int64) for name in names]))


def load_unseen_set(assignment, answer_key: dict | None, fmnist_folder: Path | None = None, verify: bool = True,
                    **kwargs) -> UnseenSet | None:
    """The check set for the replica in `assignment`; None on the original data (no answer key: check skipped).

    Fashion-MNIST is found as the replica finds it (`fashion_mnist.locate`) unless
    `fmnist_folder` is given; `kwargs` go to `build_unseen_set` (n_clean, n_per_kind, seed, kinds).
    """
    if answer_key is None:
        return None
    images, labels = fashion_mnist.load_all(fmnist_folder or fashion_mnist.locate(), verify=verify)
    # The key's indices must address these arrays: their labels must match the key's classes.
    unlabeled = np.asarray(answer_key["unlabeled_fmnist_index"], dtype=np.int64)
    expected = np.asarray(replica.IN_DISTRIBUTION)[answer_key["unlabeled_class"]]
    if len(unlabeled) != len(assignment.unlabeled) or unlabeled.max(initial=-1) >= len(labels) \
            or not np.array_equal(labels[unlabeled], expected):
        raise DataError("the answer key's Fashion-MNIST indices do not match this Fashion-MNIST copy")
    return build_unseen_set(images, labels, used_indices(answer_key), **kwargs)
