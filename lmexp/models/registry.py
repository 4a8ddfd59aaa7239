"""The architectures lmexp can build: the one list of them.

Each model module registers what it defines (`register`) when `lmexp.models` imports it, and
that package imports every module in it, so a new architecture is one new module plus its
`conf/model/<name>.yaml` and its test. Everything else asks the registry: the config check
(which schema a `model.name` has), `build_model`, the benchmark and the tests; the job records
the display label in the summary, so the analysis needs no list of its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmexp.models.base import LanguageModel
from lmexp.models.schema import ArchConfig
from lmexp.registry import Registry


@dataclass(frozen=True)
class Architecture:
    """One `model=<name>` option: its schema, how to build it, how tables and figures call it."""

    name: str
    label: str  # display name, e.g. "GRU"
    # Where it sits in tables and figures (lower first), and so its colour: explicit and never
    # reused, so a new architecture takes the next free number and moves no other. (Runs
    # recorded before this was explicit recorded their position, which equals it for 0-4.)
    order: int
    schema: type[ArchConfig]
    build: Callable[[Any, int], LanguageModel]  # (its config, vocabulary size) -> model
    torch_layer: type | None = None  # the plain PyTorch module of the same equations, if any
    builtin: bool = True  # False: model=custom, a user's class (not among names())
    # its forward runs under torch.func.vmap, so jobs of it can train as one (launcher=packed)
    packs: bool = True


ARCHITECTURES: Registry[Architecture] = Registry("architecture")
register = ARCHITECTURES.register


def names() -> tuple[str, ...]:
    """Every architecture lmexp defines, in the order tables and figures use (`model=custom`,
    a user's own class, is not one of them)."""
    return tuple(name for name in ARCHITECTURES.names() if ARCHITECTURES[name].builtin)


def display(name: str) -> dict[str, Any]:
    """What the analysis shows of an architecture; the job records it in its summary, so the
    analysis needs neither this registry nor torch. A user's model sorts after lmexp's."""
    arch = architecture(name)
    return {"model_label": arch.label, "model_rank": arch.order}


def architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"model.name={name!r} unknown; choose from {list(names())}") from None


def model_config(name: str, **values: Any) -> ArchConfig:
    """The validated schema of architecture `name` with `values` set (the rest defaults)."""
    return architecture(name).schema(name=name, **values)


def model_config_from_dict(values: dict[str, Any]) -> ArchConfig:
    """A saved `model` section (a checkpoint's or a run's config) as its schema.

    Runs written before each architecture had its own schema saved every model key; the keys
    its architecture never read are dropped here.
    """
    schema = architecture(values["name"]).schema
    known = {f.name for f in dataclasses.fields(schema)}
    return schema(**{k: v for k, v in values.items() if k in known})
