"""The one configuration surface: every profile complete, every setting printed."""

from dataclasses import FrozenInstanceError, fields, is_dataclass, replace

import pytest

from lib.config import (
    CPU,
    NETWORK_CONFIGS,
    PROFILES,
    STAGES,
    STRONG,
    WEAK,
    AugmentConfig,
    CNNConfig,
    Profile,
    Training,
    flatten,
    get_profile,
    override,
    settings_table,
)
from lib.errors import UserError


def test_describe_prints_every_setting_of_every_stage():
    for profile in PROFILES.values():
        text = profile.describe()
        lines = {line.split(":")[0].strip(): line for line in text.splitlines()[1:]}
        assert set(lines) == set(STAGES) == {field.name for field in fields(Profile)} - {"name", "subset"}
        for stage in STAGES:
            leaves = flatten(getattr(profile, stage))
            assert leaves, stage
            for path, value in leaves:
                assert f"{path}={value}" in lines[stage], (profile.name, stage, path)


def test_flatten_reaches_every_leaf_and_keeps_an_augmentation_whole():
    leaves = dict(flatten(CPU.baseline))
    assert leaves["network.widths"] == (32, 32, 64, 64, 128, 128) and leaves["training.lr"] == 2e-3
    assert isinstance(leaves["training.augment"], AugmentConfig)  # one leaf, not ten
    assert not any(is_dataclass(value) and not isinstance(value, AugmentConfig) for _, value in leaves.items())
    assert len(dict(flatten(CPU.classification))) == len(flatten(CPU.classification))  # paths are unique


def test_smoke_is_smaller_than_cpu_and_gpu_larger():
    smoke, cpu, gpu = (PROFILES[name] for name in ("smoke", "cpu", "gpu"))
    assert smoke.subset and cpu.subset is None and gpu.subset is None
    for path in ("pretraining.contrastive.training.epochs", "classification.fixmatch.training.steps",
                 "transfer.finetune.steps", "transfer.source.steps"):
        values = [dict(flatten(p))[path] for p in (smoke, cpu, gpu)]
        assert values[0] < values[1] < values[2], (path, values)
    assert len(gpu.model.seeds) >= 5


def test_the_gpu_profile_scales_the_model_itself():
    cpu, gpu = PROFILES["cpu"].model, PROFILES["gpu"].model
    assert all(g == 2 * c for g, c in zip(gpu.network.widths, cpu.network.widths, strict=True))
    assert gpu.fixmatch.training.epochs >= 50 and gpu.labels_only.epochs > cpu.labels_only.epochs
    assert gpu.fixmatch.training.batch > cpu.fixmatch.training.batch
    assert gpu.fixmatch.labeled_batch > cpu.fixmatch.labeled_batch


def test_override_changes_the_named_settings_only():
    changed = override(CPU, {"model.oracle.epochs": 7, "baseline.network.dropout": 0.0, "name": "x"})
    assert changed.name == "x" and changed.model.oracle.epochs == 7 and changed.baseline.network.dropout == 0.0
    before, after = dict(flatten(CPU)), dict(flatten(changed))
    assert {path for path in before if before[path] != after[path]} == {
        "name", "model.oracle.epochs", "baseline.network.dropout"}
    assert CPU.model.oracle.epochs == 1  # the original is untouched
    with pytest.raises(KeyError, match="no setting 'epochz'"):
        override(CPU, {"model.oracle.epochz": 1})
    # a setting the smoke profile does not change is the cpu value
    smoke = PROFILES["smoke"]
    assert smoke.anomaly == CPU.anomaly and smoke.model.network == CPU.model.network


def test_profiles_are_frozen_and_named():
    for name, profile in PROFILES.items():
        assert isinstance(profile, Profile) and profile.name == name
        with pytest.raises(FrozenInstanceError):
            profile.classification.supervised.training.lr = 1.0  # frozen: a run cannot change its settings midway
    with pytest.raises(UserError, match="unknown profile 'huge'"):
        get_profile("huge")


def test_dead_settings_are_gone():
    assert "seeds" not in {f.name for f in fields(Profile)}
    assert "posterior_refit" not in {f.name for f in fields(type(CPU.anomaly))}
    assert "oracle" not in {f.name for f in fields(type(CPU.classification))}  # the model's arms train the oracle
    assert {"training", "pseudo_confidence"}.isdisjoint(f.name for f in fields(type(CPU.model)))
    assert {"distilled", "pretraining", "long_epochs"}.isdisjoint(f.name for f in fields(type(CPU.model)))


def test_the_model_arms_and_the_transfer_study_use_plain_training_recipes():
    model = CPU.model
    assert {f.name for f in fields(type(model))} == {"network", "labels_only", "fixmatch", "oracle",
                                                     "reconstruction_weight", "seeds", "curve_images", "curve_every"}
    for recipe in (model.labels_only, model.fixmatch.training, model.oracle, CPU.transfer.source,
                   CPU.transfer.finetune, CPU.transfer.contrastive):
        assert isinstance(recipe, Training)
    # the plain CNN's recipe, longer
    assert model.labels_only == replace(CPU.baseline.training, epochs=model.labels_only.epochs)
    assert model.labels_only.epochs > CPU.baseline.training.epochs
    assert model.network == CNNConfig(description_dim=10, decoder=True) and len(model.seeds) >= 3
    assert CPU.transfer.finetune == replace(CPU.transfer.source, steps=200)
    assert 0 < CPU.anomaly.knn_bank and CPU.anomaly.knn_k < CPU.anomaly.knn_bank
    # FixMatch keeps the labels-only arm's smoothing, so its threshold sits below the smoothed confidence cap
    smoothing = model.fixmatch.training.label_smoothing
    assert smoothing == model.labels_only.label_smoothing
    assert model.fixmatch.confidence < 1 - smoothing + smoothing / 5
    smoke = PROFILES["smoke"].model  # every arm shorter in the smoke profile
    assert smoke.labels_only.epochs < model.labels_only.epochs
    assert smoke.fixmatch.training.epochs < model.fixmatch.training.epochs


def test_notebook_02_trains_each_model_as_long_as_it_must_show():
    """Five epochs for the comparison models, ten with every snapshot for the autoencoder whose checkpoints are
    studied (and audited), fifteen for the contrastive model."""
    pretraining = CPU.pretraining
    epochs = {name: getattr(pretraining, name).training.epochs
              for name in ("fc_ae", "conv_ae", "conv_ae_bn", "vae", "contrastive")}
    assert epochs == {"fc_ae": 5, "conv_ae": 5, "conv_ae_bn": 10, "vae": 5, "contrastive": 15}
    assert [name for name in epochs if getattr(pretraining, name).snapshots] == ["conv_ae_bn"]
    assert pretraining.contrastive.training.augment == STRONG
    for name in epochs:  # a warm-up of half an epoch, whatever the number of epochs
        training = getattr(pretraining, name).training
        assert training.warmup * training.epochs == pytest.approx(0.5), name


def test_every_network_configuration_names_its_kind():
    kinds = [config.kind for config in NETWORK_CONFIGS]
    assert len(set(kinds)) == len(kinds) == 6
    for config in NETWORK_CONFIGS:
        assert "kind" not in {f.name for f in fields(config)}  # a ClassVar: not a setting, not in asdict


def test_settings_table_has_one_row_per_group_with_every_setting():
    profile = PROFILES["cpu"]
    rows = {row["group"]: row["settings"] for row in settings_table(profile)}
    assert list(rows)[0] == "run" and {group.split(".")[0] for group in rows} == {"run", *STAGES}
    for stage in STAGES:
        for path, _ in flatten(getattr(profile, stage)):
            group, _, name = path.rpartition(".")
            row = rows[f"{stage}.{group}" if group else stage]
            assert row.startswith(name.replace("_", " ") + " ") or "; " + name.replace("_", " ") + " " in row, path
    assert max(len(row) for row in rows.values()) < 400  # short rows: the table breaks across pages
    # the weak augmentation lists the transforms it uses, erasing (off) left out; floats without float noise
    assert "augment (shift 0.08, scale (0.9, 1.1), aspect 0.1, rotation 5, gain 0.2, gamma 0.2, noise 0.02)" in rows[
        "classification.supervised.training"]
    assert "warmup 0.03333" in rows["pretraining.contrastive.training"]
    assert rows["run"] == "images per set: all" and rows["pretraining.conv_ae_bn"] == "snapshots yes"
    assert "images per set: the first 600" in settings_table(PROFILES["smoke"])[0]["settings"]
    assert profile.classification.supervised.training.augment == WEAK
