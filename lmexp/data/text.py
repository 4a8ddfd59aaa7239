"""Any corpus of your own: `<root>/train.txt`, `valid.txt`, `test.txt`, as words, characters
or subwords.

    python -m lmexp.train data=text data.root=/path/to/corpus data.tokenizer=char
    python -m lmexp.train data=text data.root=/path/to/corpus data.tokenizer=bpe data.mode=sentences

The files are UTF-8 text. `data.tokenizer=word` splits on whitespace and closes every line with
`<eos>` (as PTB); `char` makes every character a token, the newline included; `bpe` trains a
byte-level BPE of `data.vocab_size` pieces on train.txt (bpe.py). `data.mode=sentences` makes
each non-empty line one sequence `<s> ... </s>` instead (encode.py). The vocabulary comes from
train only, with `<unk>` for what valid, test or a prompt holds that train does not (BPE has
no unknowns). There are no digests to check and nothing to download: the files are yours.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lmexp.data.corpus import UNK, Corpus
from lmexp.data.download import DataError
from lmexp.data.encode import SPLITS, encode_configured
from lmexp.data.files import regular_file
from lmexp.data.registry import CorpusSpec, register
from lmexp.data.schema import DataConfig
from lmexp.validation import InputError

log = logging.getLogger(__name__)


def _missing(path: Path) -> DataError:
    return DataError(
        f"data=text needs {path.name} in {path.parent}: put train.txt, valid.txt and "
        "test.txt (UTF-8 text) there, or point data.root at the folder that holds them"
    )


def _root(cfg: DataConfig) -> Path:
    if not cfg.root:
        raise DataError("data=text needs data.root=<folder with train.txt, valid.txt, test.txt>")
    root = Path(cfg.root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(
            f"data.root={cfg.root} is a file, not a folder; point data.root at the folder that "
            "holds train.txt, valid.txt and test.txt"
        )
    return root


def check_text(cfg: DataConfig) -> None:
    """What can be refused without reading the files: one missing, not a file (a FIFO would
    block the reader), empty, or too small for the batch size in stream mode."""
    root = _root(cfg)
    for split in SPLITS:
        path = root / f"{split}.txt"
        if not regular_file(path):
            raise _missing(path)
        size = path.stat().st_size
        if size == 0:
            raise DataError(f"{path} is empty")
        # a token takes a byte at least (a line's <eos> its newline; one more if the last
        # line has none), and batchify needs two tokens a row
        own = split != "train" and cfg.eval_batch_size is not None
        streams = cfg.eval_batch_size if own else cfg.batch_size
        if cfg.mode == "stream" and size + 1 < 2 * streams:
            fix = (
                "lower data.eval_batch_size"
                if own
                else "lower data.batch_size"
                if split == "train"
                else "lower data.batch_size, or set data.eval_batch_size for valid and test"
            )
            raise InputError(
                f"{path} has {size} bytes, at most {size + 1} tokens: too short for {streams} "
                f"streams of 2 tokens at least; {fix}"
            )


def _read(path: Path) -> str:
    if not regular_file(path):
        raise _missing(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from err
    if not text.strip():
        raise DataError(f"{path} is empty")
    return text


def load_text(cfg: DataConfig, bpe: Any = None) -> Corpus:
    """Read the three files, split them with `data.tokenizer`, build the vocabulary on train."""
    root = _root(cfg)
    texts = {split: _read(root / f"{split}.txt") for split in SPLITS}
    corpus = encode_configured(texts, cfg, bpe)
    unknown = {}
    if UNK in corpus.vocab:
        unk_id = corpus.vocab.stoi[UNK]
        unknown = {k: int((getattr(corpus, k) == unk_id).sum()) for k in ("valid", "test")}
    log.info(
        "loaded text corpus from %s (%s, %s): vocab %d, tokens %s, <unk> in valid/test %s",
        root,
        corpus.tokenizer,
        corpus.mode,
        len(corpus.vocab),
        corpus.counts(),
        unknown,
    )
    return corpus


register(CorpusSpec("text", load_text, ("word", "char", "bpe"), check=check_text))
