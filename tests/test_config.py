"""The one configuration surface: every profile complete, every setting printed."""

from dataclasses import FrozenInstanceError, fields, is_dataclass

import pytest

from lib.config import (
    CPU,
    NETWORK_CONFIGS,
    PROFILES,
    STAGES,
    WEAK,
    AugmentConfig,
    Profile,
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
                 "transfer.finetune.training.steps"):
        values = [dict(flatten(p))[path] for p in (smoke, cpu, gpu)]
        assert values[0] < values[1] < values[2], (path, values)
    assert len(gpu.model.seeds) >= 3


def test_override_changes_the_named_settings_only():
    changed = override(CPU, {"model.training.steps": 7, "baseline.network.dropout": 0.0, "name": "x"})
    assert changed.name == "x" and changed.model.training.steps == 7 and changed.baseline.network.dropout == 0.0
    before, after = dict(flatten(CPU)), dict(flatten(changed))
    assert {path for path in before if before[path] != after[path]} == {
        "name", "model.training.steps", "baseline.network.dropout"}
    assert CPU.model.training.steps == 450  # the original is untouched
    with pytest.raises(KeyError, match="no setting 'stepz'"):
        override(CPU, {"model.training.stepz": 1})
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


def test_every_network_configuration_names_its_kind():
    kinds = [config.kind for config in NETWORK_CONFIGS]
    assert len(set(kinds)) == len(kinds) == 6
    for config in NETWORK_CONFIGS:
        assert "kind" not in {f.name for f in fields(config)}  # a ClassVar: not a setting, not in asdict


def test_settings_table_has_one_row_per_stage_with_every_setting():
    profile = PROFILES["cpu"]
    rows = {row["stage"]: row["settings"] for row in settings_table(profile)}
    assert list(rows) == ["run", *STAGES] and len(rows) == 8
    for stage in STAGES:
        for path, _ in flatten(getattr(profile, stage)):
            assert path.replace("_", " ") + " " in rows[stage], (stage, path)
    assert "(shift 0.08, scale (0.9, 1.1)" in rows["classification"]  # the weak augmentation's strengths
    assert profile.classification.supervised.training.augment == WEAK
