"""The plain baseline CNN (DESIGN §5) and the epoch batches it shares with notebook 02's training."""

from dataclasses import replace

import numpy as np
import torch

from lib.config import PROFILES
from lib.nn.augment import seeded_generator
from lib.nn.cnn import PlainCNN, load_plain_cnn, train_plain_cnn
from lib.nn.train import EpochBatches

TINY = replace(PROFILES["cpu"].baseline, widths=(4, 4, 8, 8, 8, 8), epochs=2, batch=16)


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 5
    x = (rng.random((n, 1, 32, 32)) * 40 + 40 * y[:, None, None, None]).astype(np.uint8)
    return x, y


def test_epoch_batches_are_seeded_permutations():
    batches = EpochBatches(10, 4, seed=3)
    epoch0 = torch.cat([batches(0), batches(1)])
    assert len(set(epoch0.tolist())) == 8  # two full batches per epoch, no repeats
    expected = torch.randperm(10, generator=seeded_generator(3, 1, stream=1))[:4]
    assert torch.equal(batches(2), expected)  # step 2 opens epoch 1
    assert torch.equal(EpochBatches(10, 4, seed=3)(2), expected)  # no hidden state: a resumed run agrees


def test_architecture_follows_design():
    model = PlainCNN(5, (32, 32, 64, 64, 128, 128), (1, 2, 1, 2, 1, 2), 0.3)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2] and convs[0].kernel_size == (3, 3)
    pooled = model.stage_features(torch.zeros(2, 1, 32, 32))
    assert [p.shape[1] for p in pooled] == [32, 64, 128] and model(torch.zeros(2, 1, 32, 32)).shape == (2, 5)


class Killed(Exception):
    pass


def kill_after_first_epoch(line: str) -> None:
    if "epoch 1/2" in line:  # logged right after the epoch-1 checkpoint is written
        raise Killed


def test_a_killed_run_resumes_exactly_and_reloads(tmp_path):
    x, y = tiny_data()
    quiet = dict(seed=0, progress=False, log=lambda *a: None)
    straight = train_plain_cnn(x, y, TINY, tmp_path / "a", **quiet)
    try:
        train_plain_cnn(x, y, TINY, tmp_path / "b", seed=0, progress=False, log=kill_after_first_epoch)
    except Killed:
        pass
    resumed = train_plain_cnn(x, y, TINY, tmp_path / "b", **quiet)
    assert resumed.resumed_from == 1
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    images = torch.as_tensor(x[:8]).float() / 255
    with torch.no_grad():
        assert torch.equal(load_plain_cnn(tmp_path / "a")(images), straight.model(images))
