"""The one configuration surface: every profile complete, every setting printed."""

from dataclasses import fields

import pytest

from lib.config import PROFILES, Profile, get_profile
from lib.errors import UserError


def test_describe_prints_every_setting_of_every_stage():
    for profile in PROFILES.values():
        text = profile.describe()
        lines = {line.split(":")[0].strip(): line for line in text.splitlines()[1:]}
        for stage in ("report", "pretraining", "classification", "baseline", "anomaly", "transfer"):
            for setting in fields(getattr(profile, stage)):
                value = getattr(getattr(profile, stage), setting.name)
                shown = value.to_dict() if hasattr(value, "to_dict") else value
                assert f"{setting.name}={shown}" in lines[stage], (profile.name, stage, setting.name)


def test_smoke_is_smaller_than_cpu_and_gpu_larger():
    smoke, cpu, gpu = (PROFILES[name] for name in ("smoke", "cpu", "gpu"))
    assert smoke.subset and cpu.subset is None and gpu.subset is None
    for stage, budget in (("pretraining", "contrastive_epochs"), ("classification", "fixmatch_steps"),
                          ("transfer", "finetune_steps")):
        values = [getattr(getattr(p, stage), budget) for p in (smoke, cpu, gpu)]
        assert values == sorted(values) and values[0] < values[1] < values[2], (stage, budget, values)
    assert len(gpu.seeds) >= 3


def test_profiles_are_frozen_and_named():
    for name, profile in PROFILES.items():
        assert isinstance(profile, Profile) and profile.name == name
        with pytest.raises(AttributeError):
            profile.classification.lr = 1.0  # frozen: a run cannot change its settings midway
    with pytest.raises(UserError, match="unknown profile 'huge'"):
        get_profile("huge")


def test_settings_table_has_one_row_per_stage_with_every_setting():
    from lib.config import settings_table

    profile = PROFILES["cpu"]
    rows = {row["stage"]: row["settings"] for row in settings_table(profile)}
    assert list(rows)[0] == "run" and len(rows) == 8
    for setting in fields(profile.classification):
        assert setting.name.replace("_", " ") + " " in rows["classification"]
    assert "(shift 0.08, scale (0.9, 1.1)" in rows["classification"]  # the weak augmentation's strengths
    for setting in fields(profile.model):
        assert setting.name.replace("_", " ") + " " in rows["model"]
