"""What a run was: machine, versions, profile and timings, for the report's reproducibility section."""

from __future__ import annotations

import os
import platform

import torch

from lib.config import get_profile


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"one {torch.cuda.get_device_name(0)} GPU with {os.cpu_count()} CPU cores"
    return f"{os.cpu_count()} CPU cores ({cpu_model()}), no GPU"


def library_versions(names=("numpy", "scikit-learn", "umap-learn", "papermill", "jupytext")) -> str:
    """'numpy 2.1.3, scikit-learn 1.5.2, ...': the installed versions of the libraries results depend on."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return ", ".join(f"{name} {installed(name)}" for name in names)


def report_variables(profile: str, seed: int, device: str, seconds: dict[str, float], renderer: str) -> dict:
    return {
        "profile": profile,
        "bootstrap": f"{get_profile(profile).bootstrap:,}",
        "seed": str(seed),
        "device_description": device_description(device),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "libraries": library_versions(),
        "renderer": renderer,
        "seconds_per_notebook": "; ".join(f"{name} {value:.0f} s" for name, value in seconds.items()),
        "seconds_notebooks": f"{sum(seconds.values()):.0f}",
        "minutes_notebooks": f"{sum(seconds.values()) / 60:.0f}",
    }
