"""`model=custom`: a user's own `LanguageModel` subclass, named by its import path.

    python -m lmexp.train model=custom model._target_=my_package.lm.MyLM +model.kwargs.k=4

The class is imported when the config is built (a wrong path fails before any data is read)
and constructed as `cls(vocab_size=V, hidden_size=..., num_layers=..., dropout=...,
tie_weights=..., **kwargs)`; everything else (batching, training, checkpoints, resume, the
report) is lmexp's. docs/models.md has a worked example, docs/examples/bigram.py.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from lmexp.models.base import LanguageModel
from lmexp.models.registry import Architecture, register
from lmexp.models.schema import ArchConfig


def import_model_class(path: str) -> type[LanguageModel]:
    """The class at `path` ("package.module.Class"), checked to be a LanguageModel."""
    module_name, _, class_name = str(path).rpartition(".")
    if not module_name:
        raise ValueError(
            f"model._target_={path!r} is not an import path; "
            "set model._target_=package.module.Class"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(
            f"model._target_={path!r}: cannot import {module_name} ({exc}); is it on PYTHONPATH?"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, LanguageModel)):
        raise ValueError(
            f"model._target_={path!r} is not a lmexp.models.LanguageModel subclass; "
            "subclass it (docs/models.md, 'Your own model')"
        )
    return cls


@dataclass
class CustomConfig(ArchConfig):
    """The keys every architecture has, the class to build, and its own keyword arguments."""

    _target_: str = MISSING  # package.module.Class, a LanguageModel subclass
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed on to its constructor

    def check(self) -> None:
        import_model_class(self._target_)


def build_custom(cfg: CustomConfig, vocab_size: int) -> LanguageModel:
    cls = import_model_class(cfg._target_)
    return cls(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        tie_weights=cfg.tie_weights,
        **dict(cfg.kwargs),
    )


register(
    Architecture("custom", "Custom", 9, CustomConfig, build_custom, builtin=False, packs=False)
)
