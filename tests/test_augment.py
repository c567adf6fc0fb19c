import torch

from lib.nn.augment import NONE, AugmentConfig, augment, seeded_generator


def _batch(n=8):
    x = torch.zeros(n, 1, 32, 32)
    x[:, :, 8:24, 10:22] = torch.linspace(0.2, 1.0, n).view(n, 1, 1, 1)
    return x


def test_shape_range_and_dtype():
    x = _batch()
    y = augment(x, AugmentConfig(hflip=0.5), seeded_generator(0, 0))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_same_seed_same_views_and_other_seed_other_views():
    x = _batch()
    a = augment(x, AugmentConfig(), seeded_generator(3, 0))
    b = augment(x, AugmentConfig(), seeded_generator(3, 0))
    c = augment(x, AugmentConfig(), seeded_generator(4, 0))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_parameters_differ_per_sample():
    x = _batch(1).repeat(16, 1, 1, 1)  # sixteen copies of one image
    y = augment(x, AugmentConfig(), seeded_generator(0, 0))
    flat = y.flatten(1)
    distinct = {tuple(row.tolist()) for row in flat}
    assert len(distinct) == 16


def test_identity_config_leaves_images_unchanged():
    x = _batch()
    assert torch.allclose(augment(x, NONE, seeded_generator(0, 0)), x, atol=1e-5)


def test_flip_mirrors_the_image():
    x = _batch(2)
    x[:, :, 4:8, 0:6] = 1.0  # an asymmetric mark on the left
    only_flip = AugmentConfig(shift=0.0, scale=(1.0, 1.0), aspect=0.0, rotation=0.0, hflip=1.0, gain=0.0,
                              gamma=0.0, noise=0.0, erase=0.0)
    y = augment(x, only_flip, seeded_generator(0, 0))
    assert torch.allclose(y, x.flip(-1), atol=1e-5)


def test_erasing_blanks_a_rectangle():
    x = torch.ones(4, 1, 32, 32)
    only_erase = AugmentConfig(shift=0.0, scale=(1.0, 1.0), aspect=0.0, rotation=0.0, gain=0.0,
                               gamma=0.0, noise=0.0, erase=1.0, erase_size=(0.25, 0.25))
    y = augment(x, only_erase, seeded_generator(0, 0))
    assert all(int((img == 0).sum()) == 8 * 8 for img in y)
