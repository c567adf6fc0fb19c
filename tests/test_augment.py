import torch

from lib.config import NONE, SHIFT_3, STRONG, WEAK, AugmentConfig
from lib.nn.augment import augment, derived_seed, seeded_generator, to_float


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


def test_presets_switch_the_right_transforms_on():
    assert NONE == AugmentConfig(shift=0.0, scale=(1.0, 1.0), aspect=0.0, rotation=0.0, hflip=0.0, gain=0.0,
                                 gamma=0.0, noise=0.0, erase=0.0)
    assert STRONG == AugmentConfig() and STRONG.erase > 0 and WEAK.erase == 0.0 and 0 < WEAK.noise < STRONG.noise
    assert SHIFT_3.shift == 3 / 32 and {**SHIFT_3.__dict__, "shift": 0.0} == NONE.__dict__


def test_shift_3_moves_the_article_by_at_most_three_pixels():
    x = torch.zeros(64, 1, 32, 32)
    x[:, :, 12:20, 12:20] = 1.0  # a square well inside the frame: no pixel leaves it
    y = augment(x, SHIFT_3, seeded_generator(0, 0))
    grid = torch.arange(32.0)

    def centre(images):
        mass = images.sum((1, 2, 3))
        return ((images.sum((1, 2)) * grid).sum(-1) / mass, (images.sum((1, 3)) * grid).sum(-1) / mass)

    (cx0, cy0), (cx1, cy1) = centre(x), centre(y)
    moves = torch.stack([cx1 - cx0, cy1 - cy0])
    assert moves.abs().max() <= 3.0 + 1e-4 and moves.abs().max() > 1.5  # up to three pixels, and used
    assert torch.allclose(y.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=1e-4)  # a pure translation keeps the mass


def test_to_float_scales_uint8_and_keeps_floats():
    images = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    assert torch.allclose(to_float(images), torch.tensor([0.0, 0.2, 1.0]).view(1, 1, 1, 3))
    floats = torch.rand(2, 1, 4, 4)
    assert torch.equal(to_float(floats), floats)


def test_derived_seeds_are_the_generators_seeds():
    assert derived_seed(0, 3) == derived_seed(0, 3) != derived_seed(0, 3, stream=1)
    g = torch.Generator()
    g.manual_seed(derived_seed(5, 2, 1))
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=seeded_generator(5, 2, stream=1)))
