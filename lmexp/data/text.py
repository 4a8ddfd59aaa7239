"""Any corpus of your own: `<root>/train.txt`, `valid.txt`, `test.txt`, as words or characters.

    python -m lmexp.train data=text data.root=/path/to/corpus data.tokenizer=char

The files are UTF-8 text read as one stream per split. `data.tokenizer=word` splits on
whitespace and closes every line with `<eos>` (as PTB); `char` makes every character a token,
the newline included. The vocabulary comes from train only, with `<unk>` for what valid, test or
a prompt holds that train does not. There are no digests to check and nothing to download:
the files are yours.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from lmexp.config import DataConfig
from lmexp.data.corpus import EOS, UNK, Corpus
from lmexp.data.download import DataError
from lmexp.data.tokenizers import char_tokens, word_tokens
from lmexp.data.vocab import Vocab

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
LINE_END = "\n"  # what a character sequence starts after


def _read(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"data=text needs {path.name} in {path.parent}: put train.txt, valid.txt and "
            "test.txt (UTF-8 text) there, or point data.root at the folder that holds them"
        ) from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from err
    if not text.strip():
        raise DataError(f"{path} is empty")
    return text


def load_text(cfg: DataConfig) -> Corpus:
    """Read the three files, split them with `data.tokenizer`, build the vocabulary on train."""
    if not cfg.root:
        raise DataError("data=text needs data.root=<folder with train.txt, valid.txt, test.txt>")
    root = Path(cfg.root).expanduser()
    texts = {split: _read(root / f"{split}.txt") for split in SPLITS}
    if cfg.tokenizer == "word":
        tokens = {split: word_tokens(text) for split, text in texts.items()}
        start = EOS
    else:
        tokens = {split: char_tokens(text) for split, text in texts.items()}
        start = LINE_END if LINE_END in tokens["train"] else " "
    vocab = Vocab.build([*tokens["train"], start], unk=UNK)
    ids = {k: torch.tensor(vocab.encode(v), dtype=torch.long) for k, v in tokens.items()}
    corpus = Corpus(vocab=vocab, tokenizer=cfg.tokenizer, start=start, **ids)
    unknown = {k: int((v == vocab.stoi[UNK]).sum()) for k, v in ids.items() if k != "train"}
    log.info(
        "loaded text corpus from %s (%s): vocab %d, tokens %s, <unk> in valid/test %s",
        root,
        cfg.tokenizer,
        len(vocab),
        corpus.counts(),
        unknown,
    )
    return corpus
