"""Character-level Penn Treebank, derived from the word-level files (so the same download and
digests): every word's characters, `_` between the words of a line (the visible word boundary
of the standard char-PTB release), `<eos>` at each line end. `<unk>`, the word release's stand-in
for a rare word, stays one symbol rather than five characters nobody wrote.
"""

from __future__ import annotations

import logging

import torch

from lmexp.config import DataConfig
from lmexp.data import files
from lmexp.data.corpus import EOS, UNK, Corpus
from lmexp.data.ptb import DEFAULT_MIRRORS, ensure_files, read_tokens
from lmexp.data.tokenizers import words_to_chars
from lmexp.data.vocab import Vocab

log = logging.getLogger(__name__)


def load_ptb_char(cfg: DataConfig) -> Corpus:
    """PTB's verified word files (looked for where data=ptb looks) as character streams."""
    root = files.resolve_root(cfg.root, "ptb")
    paths = ensure_files(root, cfg.download, list(cfg.mirrors) or DEFAULT_MIRRORS)
    chars = {split: words_to_chars(read_tokens(path)) for split, path in paths.items()}
    vocab = Vocab.build(chars["train"], unk=UNK)
    ids = {k: torch.tensor(vocab.encode(v), dtype=torch.long) for k, v in chars.items()}
    corpus = Corpus(vocab=vocab, tokenizer="ptb_char", start=EOS, **ids)
    log.info("loaded ptb_char from %s: %d symbols, %s", root, len(vocab), corpus.counts())
    return corpus
