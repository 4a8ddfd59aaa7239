"""Character-level Penn Treebank, derived from the word-level files (so the same download and
digests): every word's characters, `_` between the words of a line (the visible word boundary
of the standard char-PTB release), `<eos>` at each line end (or `<s> ... </s>` around each line
in sentence mode, LING 574 HW7). `<unk>`, the word release's stand-in for a rare word, stays one
symbol rather than five characters nobody wrote.
"""

from __future__ import annotations

import logging
from typing import Any

from lmexp.data.corpus import UNK, Corpus
from lmexp.data.encode import encode_texts
from lmexp.data.ptb import check_ptb, read_ptb
from lmexp.data.registry import CorpusSpec, register
from lmexp.data.schema import DataConfig

log = logging.getLogger(__name__)


def load_ptb_char(cfg: DataConfig, bpe: Any = None) -> Corpus:
    """PTB's verified word files (looked for where data=ptb looks) as characters."""
    root, texts = read_ptb(cfg)
    corpus = encode_texts(texts, tokenizer="ptb_char", mode=cfg.mode, unk=UNK)
    log.info(
        "loaded ptb_char from %s (%s): %d symbols, %s",
        root,
        corpus.mode,
        len(corpus.vocab),
        corpus.counts(),
    )
    return corpus


register(CorpusSpec("ptb_char", load_ptb_char, ("char",), check=check_ptb))
