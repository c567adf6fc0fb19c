"""environment.yml (conda) and pyproject.toml (pip) list the same packages with the same bounds."""

import re

import tomllib
import yaml

from lib.workspace import PROJECT_ROOT


def normalise(requirement: str) -> str:
    return re.sub(r"\s+", "", requirement).lower().replace("_", "-")


def test_environment_matches_pyproject():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    pip_side = {normalise(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        pip_side |= {normalise(r) for r in extra}
    conda = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))
    conda_side = {normalise(r) for r in pip_section if not r.startswith("-e")}
    assert conda_side == pip_side, (f"only in environment.yml: {conda_side - pip_side}; "
                                    f"only in pyproject: {pip_side - conda_side}")
