"""Subword tokens: a byte-level BPE (Hugging Face `tokenizers`) trained on a corpus's train split.

Byte-level, as GPT-2's: every text is first written as bytes, so no input is ever unknown and
decoding gives back the exact text (spaces, newlines and `<unk>` strings included). A piece
that starts a word carries the space before it, shown as `Ġ` ("Ġthe"). The special tokens a
corpus mode needs (`<eos>`, or `<s>`, `</s>`, `<pad>`) are matched whole and never merged.

The model is trained on train only, so valid and test are split as unseen text is, and it is
saved as `tokenizer.json` in the run directory: scoring, generation and a resumed run read that
file instead of training again, so ids never change under a checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

log = logging.getLogger(__name__)


def train_bpe(lines: Iterable[str], vocab_size: int, specials: Sequence[str]) -> Tokenizer:
    """Learn merges on `lines` until `vocab_size` types (256 bytes + specials + merges), or
    fewer when no pair of pieces is left to merge (a tiny text).

    Deterministic for the same lines and settings, so every job of a sweep gets the same ids.
    """
    floor = 256 + len(specials)
    if vocab_size <= floor:
        raise ValueError(
            f"data.vocab_size={vocab_size} leaves no room for merges: a byte-level BPE starts "
            f"with 256 bytes and {len(specials)} special tokens; set data.vocab_size > {floor}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(lines, trainer)
    return tokenizer


def load_bpe(path: str | Path) -> Tokenizer:
    """A tokenizer saved by `save_bpe` (or any `tokenizers` JSON file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no BPE tokenizer at {path}: a run trained with data.tokenizer=bpe writes "
            "its tokenizer into its run directory"
        )
    return Tokenizer.from_file(str(path))


def save_bpe(tokenizer: Tokenizer, path: str | Path) -> None:
    """Write the tokenizer as JSON, readable by `tokenizers` without lmexp."""
    tokenizer.save(str(path))


def bpe_itos(tokenizer: Tokenizer) -> list[str]:
    """The pieces in id order: the vocabulary lmexp's `Vocab` holds for a BPE corpus."""
    by_id = {i: piece for piece, i in tokenizer.get_vocab(with_added_tokens=True).items()}
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError("the BPE tokenizer's ids are not 0..V-1 without gaps")
    return [by_id[i] for i in range(len(by_id))]


def bpe_pieces(tokenizer: Tokenizer, text: str) -> list[str]:
    """`text` as BPE pieces (strings of the vocabulary), special tokens kept whole."""
    return tokenizer.encode(text, add_special_tokens=False).tokens


def bpe_text(tokenizer: Tokenizer, pieces: Iterable[str]) -> str:
    """The text of `pieces`: the exact inverse of `bpe_pieces` (special tokens written out)."""
    ids = []
    for piece in pieces:
        i = tokenizer.token_to_id(piece)
        if i is None:
            raise KeyError(f"{piece!r} is not a piece of this BPE tokenizer")
        ids.append(i)
    return tokenizer.decode(ids, skip_special_tokens=False)
