"""Corpora as id streams: pick a corpus by name, get a Corpus, batch it for truncated BPTT.

Each corpus module owns finding, verifying and encoding its files; this package maps names to them.
"""

from __future__ import annotations

from collections.abc import Callable

from lmexp.config import DataConfig
from lmexp.data.batching import batchify, bptt_windows, count_targets, num_windows
from lmexp.data.corpus import Corpus
from lmexp.data.download import DataError
from lmexp.data.ptb import load_ptb
from lmexp.data.ptb_char import load_ptb_char
from lmexp.data.text import load_text
from lmexp.data.text8 import load_text8
from lmexp.data.vocab import Vocab

CORPORA: dict[str, Callable[[DataConfig], Corpus]] = {
    "ptb": load_ptb,
    "ptb_char": load_ptb_char,
    "text": load_text,
    "text8": load_text8,
}


def load_corpus(cfg: DataConfig) -> Corpus:
    """Load the corpus named by `cfg.name` through its registered loader."""
    try:
        loader = CORPORA[cfg.name]
    except KeyError:
        raise ValueError(f"data.name={cfg.name!r} unknown; choose from {sorted(CORPORA)}") from None
    return loader(cfg)


__all__ = [
    "CORPORA",
    "Corpus",
    "DataError",
    "Vocab",
    "batchify",
    "bptt_windows",
    "count_targets",
    "load_corpus",
    "num_windows",
]
