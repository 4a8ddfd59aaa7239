"""The corpora lmexp can read: the one list of them.

Each corpus module registers itself (`register`) when `lmexp.data` imports it, and that package
imports every module in it, so a new corpus is one new module plus its `conf/data/<name>.yaml`
and its test. The config check (`DataConfig`) and `load_corpus` ask the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CorpusSpec:
    """One `data=<name>` option: how to load it and which tokenizers can read it."""

    name: str
    load: Callable[[Any, Any], Any]  # (DataConfig, a BPE model to reuse or None) -> Corpus
    tokenizers: tuple[str, ...]  # those it can be read with; the first is its default
    single_line: str | None = None  # why data.mode=sentences cannot read it, if it cannot
    # (DataConfig) -> None: what can be refused without reading the corpus (a missing file no
    # download will fetch, a FIFO, an empty file); lmexp-train runs it before Hydra starts
    check: Callable[[Any], None] | None = None


CORPORA: dict[str, CorpusSpec] = {}


def register(spec: CorpusSpec) -> CorpusSpec:
    """Add `spec`; a second corpus of the same name is a programming error."""
    if spec.name in CORPORA:
        raise ValueError(f"corpus {spec.name!r} is registered twice")
    CORPORA[spec.name] = spec
    return spec


def corpus_spec(name: str) -> CorpusSpec:
    try:
        return CORPORA[name]
    except KeyError:
        raise ValueError(f"data.name={name!r} unknown; choose from {sorted(CORPORA)}") from None
