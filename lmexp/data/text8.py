"""text8 at character level: the course slices of the char-LM report (27 symbols: a-z and space).

`text8-100k.txt` is the first 100,000 characters of Matt Mahoney's text8 (the first 10^8
bytes of an English Wikipedia dump, lower-cased, letters and single spaces only); `text8-dev.txt`
is a 500-character slice of the same text that the course grades on. Both have no line breaks.

Splits: the dev slice is only 500 characters, so choosing checkpoints on it would fit the slice.
`valid` is carved from the end of the training text instead (`data.valid_fraction`, default
10 %), `train` is the rest, and `test` is the dev slice, reported separately (`test_ppl`).
No public host serves these two slices: put them in the data folder, or name a mirror
(`data.mirrors=[<base url>]`); either way they are verified against the digests below.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from lmexp.data import files
from lmexp.data.corpus import Corpus
from lmexp.data.download import DataError
from lmexp.data.registry import CorpusSpec, register
from lmexp.data.schema import DataConfig
from lmexp.data.tokenizers import char_tokens
from lmexp.data.vocab import Vocab

log = logging.getLogger(__name__)

TEXT8 = files.CorpusFiles(
    "text8",
    {
        "train": files.FileSpec(
            "text8-100k.txt",
            "cf4215bfd474fdffa9944796ac527f0e8f0fd3302da25d5e5c211877c1d2ed4a",
            100_000,
        ),
        "dev": files.FileSpec(
            "text8-dev.txt",
            "a00d4377378b1d59b20147c3c70a2becda5907e56b0f5e8ea866879ff03af264",
            500,
        ),
    },
    mirrors=[],
    origin="the course's text8 slices: the first 100,000 characters of Mahoney's text8, and "
    "its 500-character dev slice",
)
WORD_BOUNDARY = " "  # what a character sequence starts after


def check_text8(cfg: DataConfig) -> None:
    """The two slices are in place, or will be downloaded: refused up front otherwise."""
    root = files.resolve_root(cfg.root, cfg.name)
    files.check_files(TEXT8, root, cfg.download, list(cfg.mirrors) or TEXT8.mirrors)


def load_text8(cfg: DataConfig, bpe: Any = None) -> Corpus:
    """Verify the two slices, carve validation from the end of train, encode characters.

    Every character of an evaluated split is predicted: a stream of n tokens gives n - 1
    predictions, so the carved validation split starts one character early (the one before
    the cut, its true context) and the dev slice after the boundary space. With
    `valid_fraction=0` training takes all 100,000 characters, as the report did, and the dev
    slice is the validation split too (then no longer held out from checkpoint selection).
    """
    root = files.resolve_root(cfg.root, cfg.name)
    paths = files.ensure_files(TEXT8, root, cfg.download, list(cfg.mirrors) or TEXT8.mirrors)
    text = {key: _read_utf8(path) for key, path in paths.items()}
    cut = int(len(text["train"]) * (1 - cfg.valid_fraction))
    if cut < 2 or (cfg.valid_fraction > 0 and len(text["train"]) - cut < 1):
        raise DataError(f"data.valid_fraction={cfg.valid_fraction} leaves a split too short")
    dev = char_tokens(WORD_BOUNDARY + text["dev"])  # all 500 characters predicted
    splits = {
        "train": char_tokens(text["train"][:cut]),
        "valid": char_tokens(text["train"][cut - 1 :]) if cut < len(text["train"]) else dev,
        "test": dev,
    }
    vocab = Vocab.build(splits["train"])
    unseen = sorted(set(splits["valid"] + splits["test"]) - set(vocab.itos))
    if unseen:
        raise DataError(f"characters {unseen} of valid/dev never occur in train; not text8")
    ids = {k: torch.tensor(vocab.encode(v), dtype=torch.long) for k, v in splits.items()}
    corpus = Corpus(vocab=vocab, tokenizer="char", start=WORD_BOUNDARY, **ids)
    log.info("loaded text8 from %s: %d symbols, characters %s", root, len(vocab), corpus.counts())
    return corpus


register(
    CorpusSpec(
        "text8",
        load_text8,
        ("char",),
        single_line="text8 is one line of 100,000 characters",
        check=check_text8,
    )
)


def _read_utf8(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from err
