"""The architectures: every module of this package is imported here and registers its own.

`build_model` is the one call the trainer makes; nothing outside this package branches on an
architecture's name or class (`registry.py` is the one list of them).
"""

from __future__ import annotations

import importlib
import pkgutil

import torch

from lmexp.models.base import LanguageModel, State
from lmexp.models.registry import (
    ARCHITECTURES,
    Architecture,
    architecture,
    display,
    model_config,
    model_config_from_dict,
    names,
)
from lmexp.models.schema import ArchConfig

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ARCHITECTURES",
    "ArchConfig",
    "Architecture",
    "LanguageModel",
    "State",
    "architecture",
    "build_model",
    "compile_features",
    "display",
    "model_config",
    "model_config_from_dict",
    "names",
]


def build_model(cfg: ArchConfig, vocab_size: int) -> LanguageModel:
    """Instantiate the architecture `cfg.name` for a vocabulary of `vocab_size` tokens."""
    if cfg.name not in ARCHITECTURES:  # a config changed after its own check
        raise ValueError(f"unknown model {cfg.name!r}; choose from {sorted(ARCHITECTURES)}")
    return architecture(cfg.name).build(cfg, vocab_size)


def compile_features(model: LanguageModel) -> LanguageModel:
    """`torch.compile` the model's `features` in place and return the model.

    Compiling the method rather than wrapping the module keeps the state-dict keys (no
    `_orig_mod.` prefix) and the fused loss, which calls `features` and `output` directly.
    """
    model.features = torch.compile(model.features)  # type: ignore[method-assign]
    return model
