"""Every kind of network by the name a checkpoint stores (`kind`): its configuration class and its module.

`build(config)` makes the module of a configuration (`lib.config.*Config`); `config_from_dict(kind, values)`
reads a configuration back from a checkpoint, so `lib.train.checkpoint.load_model` rebuilds any network.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from torch import nn

from lib.config import NETWORK_CONFIGS
from lib.nn.autoencoders import VAE, ConvAutoencoder, FCAutoencoder
from lib.nn.cnn import CNN
from lib.nn.contrastive import Classifier, ContrastiveModel

MODULES: dict[str, type[nn.Module]] = {"fc_ae": FCAutoencoder, "conv_ae": ConvAutoencoder, "vae": VAE,
                                       "contrastive": ContrastiveModel, "classifier": Classifier, "cnn": CNN}
CONFIGS = {config.kind: config for config in NETWORK_CONFIGS}


def build(config) -> nn.Module:
    return MODULES[config.kind](config)


def config_from_dict(kind: str, values: dict):
    """The configuration of `kind` from its JSON form (lists back to tuples, nested configurations rebuilt)."""
    if kind not in CONFIGS:
        raise ValueError(f"unknown network kind {kind!r}: choose one of {', '.join(CONFIGS)}")
    return _from_dict(CONFIGS[kind], values)


def _from_dict(cls, values: dict):
    known = {item.name: item for item in fields(cls)}
    kwargs = {}
    for name, value in values.items():
        if name not in known:
            continue
        default = getattr(cls, name, None)
        if is_dataclass(default):
            value = _from_dict(type(default), value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
