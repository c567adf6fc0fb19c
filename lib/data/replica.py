"""The replica of `assignment_4_data.pickle`, built from Fashion-MNIST (docs/data.md).

Five Fashion-MNIST classes are in distribution; the other five are the foreign
pool. Every image is padded from 28x28 to 32x32. Each representative set gets
1,000 clean images and 52 anomalies (class index 5): 26 foreign images and 26
corrupted in-distribution images, the corruption kinds taken in turn from
`CORRUPTIONS`. The same seed gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from lib.data import fashion_mnist

# Label order of the assignment: index i is Fashion-MNIST label IN_DISTRIBUTION[i].
IN_DISTRIBUTION = (1, 5, 7, 8, 9)
CLASS_NAMES = tuple(fashion_mnist.CLASS_NAMES[label] for label in IN_DISTRIBUTION)
FOREIGN = (0, 2, 3, 4, 6)
ANOMALY = 5  # class index of anomalies in the representative sets


@dataclass(frozen=True)
class Counts:
    labeled: int = 2_000
    unlabeled: int = 26_000
    clean_per_set: int = 1_000
    foreign_per_set: int = 26
    corrupted_per_set: int = 26


def _gaussian_noise(image, rng):
    return image + rng.normal(0.0, 90.0, image.shape)


def _occluding_block(image, rng):
    out = image.copy()
    top, left = rng.integers(0, 32 - 16 + 1, size=2)
    out[top : top + 16, left : left + 16] = 128.0
    return out


def _shuffled_patches(image, rng):
    patches = image.reshape(4, 8, 4, 8).transpose(0, 2, 1, 3).reshape(16, 8, 8)
    patches = patches[rng.permutation(16)]
    return patches.reshape(4, 4, 8, 8).transpose(0, 2, 1, 3).reshape(32, 32)


def _inverted(image, rng):
    return 255.0 - image


def _salt_and_pepper(image, rng):
    out = image.copy()
    hit = rng.random(image.shape) < 0.25
    out[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0.0, 255.0)
    return out


def _strong_blur(image, rng):
    return gaussian_filter(image, sigma=2.5)


# name -> (function on a float 32x32 image in [0, 255], documented severity)
CORRUPTIONS = {
    "gaussian_noise": (_gaussian_noise, "additive Gaussian noise, standard deviation 90 grey levels"),
    "occluding_block": (_occluding_block, "a 16x16 mid-grey (128) block at a random position"),
    "shuffled_patches": (_shuffled_patches, "the 16 patches of 8x8 pixels randomly permuted"),
    "inverted": (_inverted, "intensities inverted (255 - x), padding included"),
    "salt_and_pepper": (_salt_and_pepper, "25 % of pixels set to 0 or 255 with equal probability"),
    "strong_blur": (_strong_blur, "Gaussian blur with standard deviation 2.5 pixels"),
}


def pad(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) -> (n, 1, 32, 32) with two zero pixels on every side."""
    return np.pad(images, ((0, 0), (2, 2), (2, 2)))[:, None]


def corrupt(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Apply one corruption to a (1, 32, 32) uint8 image."""
    function, _ = CORRUPTIONS[kind]
    out = function(image[0].astype(np.float64), rng)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)[None]


def one_hot(classes: np.ndarray, width: int) -> np.ndarray:
    return np.eye(width, dtype=np.float32)[classes]


def build(images: np.ndarray, labels: np.ndarray, seed: int = 0, counts: Counts = Counts()):
    """Build (data, answer_key) from Fashion-MNIST images (n, 28, 28) and labels (n,).

    `data` has exactly the original pickle's structure; `answer_key` holds what
    only evaluation may read. Indices in the key refer to `images`.
    """
    rng = np.random.default_rng(seed)
    class_of_label = {label: index for index, label in enumerate(IN_DISTRIBUTION)}
    inside = rng.permutation(np.flatnonzero(np.isin(labels, IN_DISTRIBUTION)))
    foreign = rng.permutation(np.flatnonzero(np.isin(labels, FOREIGN)))
    per_set = counts.clean_per_set + counts.corrupted_per_set
    needed = counts.labeled + counts.unlabeled + 2 * per_set
    if needed > len(inside) or 2 * counts.foreign_per_set > len(foreign):
        raise ValueError(f"pool too small: need {needed} in-distribution images, have {len(inside)}")

    def classes(indices):
        return np.array([class_of_label[int(label)] for label in labels[indices]], dtype=np.int64)

    cursor = 0

    def take(n):
        nonlocal cursor
        chosen = inside[cursor : cursor + n]
        cursor += n
        return chosen

    labeled, unlabeled = take(counts.labeled), take(counts.unlabeled)
    data = {
        "unlabeled_data": pad(images[unlabeled]),
        "labeled_data": {"data": pad(images[labeled]), "labels": one_hot(classes(labeled), 5)},
    }
    key = {
        "class_names": np.array(CLASS_NAMES),
        "unlabeled_class": classes(unlabeled),
        "unlabeled_fmnist_index": unlabeled,
        "labeled_fmnist_index": labeled,
    }
    kinds = list(CORRUPTIONS)
    for set_number in (1, 2):
        clean, damaged = take(counts.clean_per_set), take(counts.corrupted_per_set)
        strangers = foreign[(set_number - 1) * counts.foreign_per_set : set_number * counts.foreign_per_set]
        damage = [kinds[i % len(kinds)] for i in range(len(damaged))]
        x = np.concatenate([
            pad(images[clean]),
            pad(images[strangers]),
            np.stack([corrupt(pad(images[i : i + 1])[0], kind, rng) for i, kind in zip(damaged, damage)]),
        ])
        y = np.concatenate([classes(clean), np.full(len(strangers) + len(damaged), ANOMALY)])
        origin = ["in_distribution"] * len(clean) + ["foreign"] * len(strangers) + ["corrupted"] * len(damaged)
        detail = ([CLASS_NAMES[c] for c in classes(clean)]
                  + [fashion_mnist.CLASS_NAMES[labels[i]] for i in strangers] + damage)
        source_class = np.concatenate([classes(clean), np.full(len(strangers), -1), classes(damaged)])
        order = rng.permutation(len(x))
        name = f"representative_set_{set_number}"
        data[name] = {"data": x[order], "labels": one_hot(y[order], 6)}
        key[f"rep{set_number}_origin"] = np.array(origin)[order]
        key[f"rep{set_number}_detail"] = np.array(detail)[order]
        key[f"rep{set_number}_source_class"] = source_class[order]
        key[f"rep{set_number}_fmnist_index"] = np.concatenate([clean, strangers, damaged])[order]
    return data, key


def write(data: dict, key: dict, pickle_path: Path, key_path: Path) -> str:
    """Write the pickle (protocol 4) and the answer key (.npz, no pickled objects); return the pickle's SHA-256."""
    pickle_path.parent.mkdir(parents=True, exist_ok=True)
    payload = pickle.dumps(data, protocol=4)
    _atomic_write(pickle_path, payload)
    _atomic_write(key_path, _npz_bytes(key))
    return hashlib.sha256(payload).hexdigest()


def _npz_bytes(arrays: dict) -> bytes:
    """An .npz archive with fixed timestamps (np.savez stamps the current time, so rebuilds would differ)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _atomic_write(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(path)
