"""The one training loop (lib.train.loop), the one checkpoint format (lib.train.checkpoint) and the train-or-load
cache (lib.train.cache), through notebook 02's runs (lib.train.runs.pretrain)."""

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from lib.config import (
    SHIFT_3,
    STRONG,
    ClassifierConfig,
    CNNConfig,
    ContrastiveConfig,
    ConvAutoencoderConfig,
    FCAutoencoderConfig,
    Pretrained,
    Training,
    VAEConfig,
)
from lib.nn.augment import seeded_generator
from lib.nn.infer import batched
from lib.nn.registry import build
from lib.train import checkpoint
from lib.train.cache import array_fingerprint, run_folder, trained
from lib.train.loop import Schedule, TrainResult, lr_at, make_optimizer, train_loop
from lib.train.runs import pretrain

IMAGES = np.random.default_rng(0).integers(0, 256, (64, 1, 32, 32), dtype=np.uint8)
QUIET = dict(log=lambda message: None, progress=False)
CONTRASTIVE = ContrastiveConfig(width=4, features=8, decoder=False)
# 64 images in batches of 32: two steps per epoch, a record and a checkpoint after each epoch
TWO_EPOCHS = Training(lr=2e-3, weight_decay=1e-4, batch=32, epochs=2, warmup=0.25, min_lr_fraction=0.01)


class Killed(Exception):
    pass


def die_after_records(records: int, messages: list | None = None):
    """A `log` that kills the run at its `records`-th record line: the loop writes the checkpoint first."""
    seen = []

    def log(message):
        if messages is not None:
            messages.append(message)
        if " step " in message:
            seen.append(message)
            if len(seen) == records:
                raise Killed

    return log


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert list(wa) == list(wb)
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


def untimed(history):
    return [{k: v for k, v in h.items() if k not in ("seconds", "images_per_second")} for h in history]


@pytest.mark.parametrize("network", [CONTRASTIVE, VAEConfig(width=4)], ids=["contrastive", "vae"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, network):
    spec = Pretrained(network, TWO_EPOCHS if network.kind == "vae" else replace(TWO_EPOCHS, augment=STRONG))
    straight = pretrain(spec, IMAGES, tmp_path / "straight", "run", seed=0, **QUIET)

    # The same run killed after epoch 1 (its checkpoint written), then started again.
    with pytest.raises(Killed):
        pretrain(spec, IMAGES, tmp_path / "interrupted", "run", seed=0, log=die_after_records(1), progress=False)
    (interrupted,) = list((tmp_path / "interrupted").iterdir())
    assert checkpoint.finished(interrupted) is None and checkpoint.read(interrupted)["training"]["step"] == 2
    messages = []
    resumed = pretrain(spec, IMAGES, tmp_path / "interrupted", "run", seed=0, log=messages.append, progress=False)
    assert resumed.folder == interrupted and messages[0] == f"{interrupted.name}: resuming at step 2 of 4"

    assert_same_weights(straight.model, resumed.model)
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    assert untimed(straight.history) == untimed(resumed.history)


def test_snapshots_history_and_reload(tmp_path):
    config = ConvAutoencoderConfig(width=4)
    three = Training(lr=2e-3, weight_decay=1e-4, batch=32, epochs=3)
    result = pretrain(Pretrained(config, three, snapshots=True), IMAGES, tmp_path, "ae", seed=0, **QUIET)
    # One snapshot per epoch, and snapshot_000 is the initialisation.
    saved = checkpoint.snapshots(result.folder)
    assert [epoch for epoch, _ in saved] == [0, 1, 2, 3]
    torch.manual_seed(0)  # what the run seeded before building its network
    initial = build(config)
    assert_same_weights(checkpoint.load_model(saved[0][1]), initial)
    assert_same_weights(checkpoint.load_model(saved[-1][1]), result.model)
    # Records carry both the step and the epoch.
    assert [(h["step"], h["epoch"]) for h in result.history] == [(2, 1.0), (4, 2.0), (6, 3.0)]
    assert all(h["images_per_second"] > 0 and h["lr"] > 0 for h in result.history)
    assert result.images_per_second > 0 and result.seconds > 0
    assert checkpoint.read(result.folder)["training"]["history"] == result.history
    reloaded = checkpoint.load_model(result.folder)
    np.testing.assert_array_equal(batched(reloaded.embed, IMAGES[:8]), batched(result.model.embed, IMAGES[:8]))

    # A finished run is loaded, not retrained.
    messages = []
    again = pretrain(Pretrained(config, three, snapshots=True), IMAGES, tmp_path, "ae", seed=0,
                     log=messages.append, progress=False)
    assert messages == [f"{result.folder.name}: already trained, loaded"]
    assert again.folder == result.folder and again.history == result.history
    assert_same_weights(again.model, result.model)


def test_trained_calls_the_training_only_when_the_run_is_not_finished(tmp_path):
    config = FCAutoencoderConfig(hidden=(8,))
    result = pretrain(Pretrained(config, Training(lr=1e-3, weight_decay=0.0, batch=32, epochs=1)), IMAGES,
                      tmp_path, "fc", seed=0, **QUIET)

    def never():
        raise AssertionError("a finished run must not be retrained")

    key = checkpoint.read(result.folder)["training"]["key"]
    loaded = trained(result.folder, key, never, log=lambda m: None)
    assert isinstance(loaded, TrainResult) and loaded.folder == result.folder
    assert_same_weights(loaded.model, result.model)
    assert trained(tmp_path / "empty", key, lambda: "trained") == "trained"


def test_other_data_or_settings_get_another_folder(tmp_path):
    config, one = ConvAutoencoderConfig(width=4), Training(lr=2e-3, weight_decay=1e-4, batch=32, epochs=1)
    first = pretrain(Pretrained(config, one), IMAGES, tmp_path, "ae", seed=0, **QUIET)
    others = [
        pretrain(Pretrained(config, one), IMAGES[::-1].copy(), tmp_path, "ae", seed=0, **QUIET),  # other data
        pretrain(Pretrained(config, replace(one, lr=1e-3)), IMAGES, tmp_path, "ae", seed=0,
                 **QUIET),  # other training
        pretrain(Pretrained(ConvAutoencoderConfig(width=4, batch_norm=False), one), IMAGES, tmp_path, "ae", seed=0,
                 **QUIET),  # other network
        pretrain(Pretrained(config, one), IMAGES, tmp_path, "ae", seed=1, **QUIET),  # other seed
    ]
    folders = {first.folder, *(o.folder for o in others)}
    assert len(folders) == 5 and all(f.parent == tmp_path and f.name.startswith("ae-") for f in folders)
    # every run is kept: none overwrote another
    assert all(checkpoint.finished(f) is not None for f in folders)
    assert checkpoint.read(others[0].folder)["training"]["key"]["data"] == array_fingerprint(IMAGES[::-1])
    assert checkpoint.read(first.folder)["training"]["key"]["data"] == array_fingerprint(IMAGES)


def test_run_folders_and_fingerprints():
    key = {"network": {"widths": (4, 8)}, "seed": 0}
    assert run_folder("root", "x", key) == run_folder("root", "x", {"seed": 0, "network": {"widths": [4, 8]}})
    assert run_folder("root", "x", key) != run_folder("root", "x", {**key, "seed": 1})
    assert run_folder("root", "x", key).parent.name == "root"
    a = np.arange(6, dtype=np.uint8)
    assert array_fingerprint(a) == array_fingerprint(a.copy())
    assert len({array_fingerprint(a), array_fingerprint(a.reshape(2, 3)), array_fingerprint(a.astype(np.int64)),
                array_fingerprint(a[::-1])}) == 4


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    """An interrupted checkpoint of another run in a run's folder is neither resumed nor deleted."""
    config = ConvAutoencoderConfig(width=4)
    spec = Pretrained(config, TWO_EPOCHS)
    with pytest.raises(Killed):
        pretrain(spec, IMAGES, tmp_path / "a", "ae", seed=0, log=die_after_records(1), progress=False)
    (other,) = list((tmp_path / "a").iterdir())
    mine = pretrain(spec, IMAGES, tmp_path / "b", "ae", seed=1, **QUIET).folder
    shutil.rmtree(mine)
    shutil.copytree(other, mine)  # seed 0's interrupted checkpoint where seed 1's run belongs
    before = checkpoint.read(mine)
    with pytest.raises(RuntimeError, match="another run's checkpoint"):
        pretrain(spec, IMAGES, tmp_path / "b", "ae", seed=1, **QUIET)
    after = checkpoint.read(mine)
    assert after["training"]["key"] == before["training"]["key"] and after["training"]["key"]["seed"] == 0

    # the loop itself refuses it too
    key = checkpoint.read(mine)["training"]["key"]
    with pytest.raises(RuntimeError, match="another run's checkpoint"):
        checkpoint.resume_state(mine, {**key, "seed": 1})
    assert checkpoint.resume_state(mine, key)["training"]["step"] == 2
    assert checkpoint.resume_state(tmp_path / "nothing", key) is None
    model = build(config)
    with pytest.raises(RuntimeError, match="another run's checkpoint"):
        train_loop(model, lambda m, s, g: (m.embed(torch.rand(2, 1, 32, 32)).sum(), {}),
                   Schedule.of(TWO_EPOCHS, 64, 1), mine, {**key, "seed": 1}, images_per_step=2, **QUIET)


def test_a_finished_checkpoint_of_another_run_is_refused_too(tmp_path):
    """A finished run of other settings in a run's folder must not be loaded as if it were that run."""
    config = ConvAutoencoderConfig(width=4)
    one = Training(lr=2e-3, weight_decay=1e-4, batch=32, epochs=1)
    other = pretrain(Pretrained(config, one), IMAGES, tmp_path / "a", "ae", seed=0, **QUIET).folder
    mine = pretrain(Pretrained(config, one), IMAGES, tmp_path / "b", "ae", seed=1, **QUIET).folder
    shutil.rmtree(mine)
    shutil.copytree(other, mine)  # seed 0's finished run where seed 1's run belongs
    with pytest.raises(RuntimeError, match="another run's checkpoint"):
        pretrain(Pretrained(config, one), IMAGES, tmp_path / "b", "ae", seed=1, **QUIET)


SMALL = [
    FCAutoencoderConfig(hidden=(16,)),
    ConvAutoencoderConfig(width=4, depth=1, batch_norm=False),
    VAEConfig(width=4, beta=0.5),
    ContrastiveConfig(width=4, features=8),
    ClassifierConfig(encoder=ContrastiveConfig(width=4, features=8, decoder=False), n_classes=3, decoder=True),
    CNNConfig(widths=(4, 4, 8, 8, 8, 8), dropout=0.1, description_dim=10, decoder=True),
]


@pytest.mark.parametrize("config", SMALL, ids=[config.kind for config in SMALL])
def test_load_model_rebuilds_every_kind_from_the_one_format(tmp_path, config):
    torch.manual_seed(0)
    model = build(config)
    for module in model.modules():  # non-default running statistics, so that buffers are compared too
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_()
    path = checkpoint.save(tmp_path, model)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain data and tensors only
    assert set(raw) == {"kind", "config", "state"} and raw["kind"] == config.kind
    loaded = checkpoint.load_model(tmp_path)
    assert type(loaded) is type(model) and loaded.config == config and not loaded.training
    assert_same_weights(loaded, model)
    images = IMAGES[:4]
    fn = (lambda m: m.outputs) if config.kind == "cnn" else (lambda m: m if config.kind == "classifier" else m.embed)
    a, b = batched(fn(model), images), batched(fn(loaded), images)
    for x, y in zip(*(v.values() if isinstance(v, dict) else [v] for v in (a, b))):
        np.testing.assert_array_equal(x, y)
    # a file path works as well as its folder; a missing checkpoint says so
    assert_same_weights(checkpoint.load_model(path), model)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoint.load_model(tmp_path / "missing")


def test_a_training_checkpoint_loads_with_weights_only(tmp_path):
    result = pretrain(Pretrained(CONTRASTIVE, TWO_EPOCHS, snapshots=True), IMAGES, tmp_path, "c", seed=0, **QUIET)
    for path in [result.folder / checkpoint.FILE, *(p for _, p in checkpoint.snapshots(result.folder))]:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        assert saved["kind"] == "contrastive"
    training = checkpoint.read(result.folder)["training"]
    assert set(training) == {"key", "step", "steps", "history", "optimizer"} and training["step"] == 4
    assert not list(result.folder.glob("*.tmp"))  # written under a temporary name, then renamed


def test_schedule_warms_up_then_decays():
    recipe = Training(lr=1.0, weight_decay=0.0, batch=8, steps=100, warmup=0.1, min_lr_fraction=0.0)
    schedule = Schedule.of(recipe, n_images=64, seed=0)
    assert (schedule.steps, schedule.warmup, schedule.every) == (100, 10, 10)
    rates = [lr_at(step, schedule) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:])) and rates[-1] < 0.01
    floor = Schedule.of(replace(recipe, min_lr_fraction=0.1), 64, 0)
    assert lr_at(100, floor) == pytest.approx(0.1) and min(lr_at(s, floor) for s in range(10, 100)) > 0.1


def test_schedule_of_epochs_and_of_steps():
    by_epoch = Schedule.of(Training(lr=1.0, weight_decay=0.1, batch=32, epochs=3, warmup=0.5), 100, seed=4)
    # 100 // 32 = 3 steps per epoch (the 4 images left over wait for the next permutation)
    assert (by_epoch.steps, by_epoch.every, by_epoch.steps_per_epoch, by_epoch.warmup) == (9, 3, 3, 4)
    assert (by_epoch.weight_decay, by_epoch.seed) == (0.1, 4)
    by_step = Schedule.of(Training(lr=1.0, weight_decay=0.0, batch=32, steps=50), 100, seed=0, every=7)
    assert (by_step.steps, by_step.every, by_step.steps_per_epoch) == (50, 7, 100 / 32)
    assert Schedule.of(Training(lr=1.0, weight_decay=0.0, batch=256, epochs=1), 64, seed=0).steps == 1


def test_two_runs_with_the_same_seed_are_identical_and_another_seed_differs(tmp_path):
    spec = Pretrained(CONTRASTIVE, replace(TWO_EPOCHS, epochs=1, augment=STRONG))
    a = pretrain(spec, IMAGES, tmp_path / "a", "c", seed=0, **QUIET)
    b = pretrain(spec, IMAGES, tmp_path / "b", "c", seed=0, **QUIET)
    c = pretrain(spec, IMAGES, tmp_path / "c", "c", seed=1, **QUIET)
    assert_same_weights(a.model, b.model)
    assert untimed(a.history) == untimed(b.history)
    wa, wc = weights(a.model), weights(c.model)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_weights_decay_but_biases_and_normalisation_do_not():
    model = build(ContrastiveConfig(width=4, features=8))
    backbone = list(model.encoder.parameters())
    rest = [p for p in model.parameters() if all(p is not q for q in backbone)]
    optimizer = make_optimizer([(backbone, 0.3), (rest, 1.0)], lr=1e-3, weight_decay=0.05)
    groups = optimizer.param_groups
    assert [(g["lr_factor"], g["weight_decay"]) for g in groups] == [(0.3, 0.05), (0.3, 0.0), (1.0, 0.05), (1.0, 0.0)]
    for group in groups:
        assert all((p.ndim > 1) == (group["weight_decay"] > 0) for p in group["params"])
    assert all(any(p is q for q in groups[0]["params"] + groups[1]["params"]) for p in backbone)
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == len(list(model.parameters())) == len({id(p) for p in grouped})
    norms = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    assert norms and all(p.ndim == 1 for m in norms for p in m.parameters())  # so none of them decays


def test_the_loop_sets_each_groups_learning_rate_from_the_schedule(tmp_path):
    model = torch.nn.Linear(3, 1)
    model.config = FCAutoencoderConfig()  # only for the checkpoint's kind; the weights are not reloaded here
    schedule = Schedule.of(Training(lr=0.1, weight_decay=0.5, batch=4, steps=5, warmup=0.4), 4, seed=0)
    seen = []

    def step_loss(m, step, g):
        seen.append(step)
        return m(torch.ones(1, 3)).sum(), {"term": 1.0}

    blocks = [([model.weight], 0.5), ([model.bias], 1.0)]
    result = train_loop(model, step_loss, schedule, tmp_path, {"test": 1}, blocks=blocks, images_per_step=4,
                        evaluate=lambda m, steps: {"steps_seen": float(steps)}, **QUIET)
    assert seen == [0, 1, 2, 3, 4] and [h["step"] for h in result.history] == [1, 2, 3, 4, 5]
    assert [h["lr"] for h in result.history] == [lr_at(s, schedule) for s in range(5)]
    assert all(h["term"] == 1.0 and h["steps_seen"] == h["step"] for h in result.history)
    groups = checkpoint.read(tmp_path)["training"]["optimizer"]["param_groups"]
    assert [(g["lr_factor"], g["weight_decay"]) for g in groups] == [(0.5, 0.5), (1.0, 0.0)]
    assert groups[0]["lr"] == pytest.approx(0.5 * lr_at(4, schedule)) and groups[1]["lr"] == lr_at(4, schedule)


def test_generators_differ_by_seed_index_and_stream():
    def draw(*args):
        return torch.rand(4, generator=seeded_generator(*args)).tolist()

    assert draw(0, 3) == draw(0, 3)
    assert len({tuple(draw(*a)) for a in [(0, 3), (1, 3), (0, 4), (0, 3, "cpu", 1)]}) == 4


# --------------------------------------------------------------------------- FixMatch: the loop with an EMA


def fixmatch_run(root, fixmatch, network, **kwargs):
    from lib.train.runs import fixmatch_cnn

    torch.manual_seed(0)
    init = build(network).eval()
    labels = np.random.default_rng(1).integers(0, 5, len(IMAGES))
    return fixmatch_cnn(network, fixmatch, IMAGES, labels, IMAGES[::-1].copy(), root, "fixmatch", 0, 1.0, init,
                        **kwargs)


@pytest.fixture
def tiny_fixmatch():
    from lib.config import FixMatch

    # 64 unlabeled images in batches of 32 (two steps per pass), 16 labels a step, a threshold every view passes
    return FixMatch(training=replace(TWO_EPOCHS, augment=SHIFT_3, label_smoothing=0.1), labeled_batch=16,
                    confidence=0.0), CNNConfig(widths=(4, 4, 8, 8, 8, 8), description_dim=10, decoder=True)


def test_fixmatch_resumes_exactly_and_returns_the_ema_network(tmp_path, tiny_fixmatch):
    fixmatch, network = tiny_fixmatch
    straight = fixmatch_run(tmp_path / "straight", fixmatch, network, **QUIET)
    with pytest.raises(Killed):
        fixmatch_run(tmp_path / "interrupted", fixmatch, network, log=die_after_records(1), progress=False)
    resumed = fixmatch_run(tmp_path / "interrupted", fixmatch, network, **QUIET)
    assert_same_weights(straight.model, resumed.model)
    assert untimed(straight.history) == untimed(resumed.history)
    assert all(h["confident_fraction"] == 1.0 and h["unlabeled"] > 0 for h in straight.history)
    # the returned network is the average, not the last weights: the checkpoint keeps both
    saved = checkpoint.read(straight.folder)
    assert_same_weights(straight.model, checkpoint.load_model(straight.folder))
    assert any(not torch.equal(saved["state"][k], saved["training"]["network"][k]) for k in saved["state"])


def test_the_ema_follows_the_network_at_first_then_averages():
    from lib.train.ema import EMA

    net = torch.nn.Linear(2, 1)
    ema = EMA(net, decay=0.999)
    with torch.no_grad():
        net.weight.fill_(1.0)
    start = ema.model.weight.clone()
    ema.update(net, 0)  # decay min(0.999, 1 / 10): nearly the network
    torch.testing.assert_close(ema.model.weight, 0.1 * start + 0.9 * net.weight)
    before = ema.model.weight.clone()
    with torch.no_grad():
        net.weight.fill_(2.0)
    ema.update(net, 10_000)  # decay 0.999
    torch.testing.assert_close(ema.model.weight, 0.999 * before + 0.001 * net.weight)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_the_gpu_profiles_model_settings_run_at_tiny_size_on_the_cpu(tmp_path):
    """The gpu profile's model (its network, labels-only recipe and FixMatch settings) shrunk to a few steps:
    every setting reaches the runs."""
    from lib.config import PROFILES
    from lib.train.runs import fixmatch_cnn, train_cnn

    model = PROFILES["gpu"].model
    labels = np.random.default_rng(1).integers(0, 5, len(IMAGES))
    labels_only = train_cnn(model.network, replace(model.labels_only, epochs=1, batch=32), IMAGES, labels, tmp_path,
                            "labels_only", 0, model.reconstruction_weight, **QUIET)
    fixmatch = replace(model.fixmatch, training=replace(model.fixmatch.training, epochs=1, batch=32), labeled_batch=16)
    result = fixmatch_cnn(model.network, fixmatch, IMAGES, labels, IMAGES, tmp_path, "fixmatch", 0,
                          model.reconstruction_weight, labels_only.model, **QUIET)
    assert result.model.config.widths == (64, 64, 128, 128, 256, 256)
    assert result.model.decoder is not None and result.model.config.decoder_width == 64
    key = checkpoint.read(result.folder)["training"]["key"]
    assert key["settings"]["training"]["lr"] == model.fixmatch.training.lr
    assert key["settings"]["confidence"] == model.fixmatch.confidence
