"""From the text of each split to a Corpus: lines of tokens, joined as `data.mode` says.

    stream     one contiguous text, each line closed by <eos> (characters keep the newline
               character): PTB's convention, batched into truncated-BPTT windows
    sentences  each non-empty line is one sequence `<s> ... </s>` (LING 574 HW7), batched as padded
               rows with a loss mask; `<pad>` joins the vocabulary but is never a target

The vocabulary comes from train only. With `tokenizer=bpe` it is the BPE model's pieces,
trained on the train lines with the special tokens the mode needs (or reused: `bpe`).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from lmexp.data.bpe import bpe_itos, train_bpe
from lmexp.data.corpus import BOS, EOS, EOS_SENTENCE, MODES, PAD, UNK, Corpus
from lmexp.data.schema import DataConfig
from lmexp.data.tokenizers import line_tokens, split_text
from lmexp.data.vocab import Vocab

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


def mode_specials(mode: str) -> list[str]:
    """Tokens the mode adds around lines (what a BPE model must keep whole)."""
    return [EOS] if mode == "stream" else [PAD, BOS, EOS_SENTENCE]


def join_lines(text: str, tokenizer: str, mode: str, bpe: Any = None) -> list[str]:
    """All tokens of one split's text in `mode` (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"data.mode={mode!r} unknown; choose from {list(MODES)}")
    if mode == "stream":  # as a prompt is split, but a corpus file's last line is closed too
        closed = text if text.endswith("\n") or tokenizer == "char" else text + "\n"
        return split_text(closed, tokenizer, bpe)
    tokens: list[str] = []
    for line in text.splitlines():
        pieces = line_tokens(line, tokenizer, bpe)
        if pieces:
            tokens += [BOS, *pieces, EOS_SENTENCE]
    return tokens


def stream_start(texts: dict[str, str], tokenizer: str, mode: str) -> str:
    """The token a sequence begins after: <s>, <eos>, or for a character stream a newline (or
    a space when the text has no lines)."""
    if mode == "sentences":
        return BOS
    if tokenizer != "char":
        return EOS
    return "\n" if "\n" in texts["train"] else " "


def encode_texts(
    texts: dict[str, str],
    *,
    tokenizer: str,
    mode: str,
    unk: str | None,
    vocab_size: int = 2000,
    bpe: Any = None,
) -> Corpus:
    """Tokenize `texts` (split -> text), build the train vocabulary, encode every split.

    Args:
        tokenizer: word | char | ptb_char | bpe.
        unk: the type unseen tokens of valid/test (and prompts) map to; None refuses them.
        vocab_size: types of a BPE model trained here.
        bpe: a trained BPE model to reuse (a resumed or scored run's tokenizer.json).
    """
    if tokenizer == "bpe" and bpe is None:
        lines = texts["train"].splitlines()
        bpe = train_bpe(lines, vocab_size, mode_specials(mode))
        log.info("trained a byte-level BPE of %d pieces on %d train lines", vocab_size, len(lines))
    tokens = {split: join_lines(texts[split], tokenizer, mode, bpe) for split in SPLITS}
    start = stream_start(texts, tokenizer, mode)
    if tokenizer == "bpe":
        vocab = Vocab(bpe_itos(bpe))  # byte-level: every text is covered, nothing is unknown
    else:
        seen = set(tokens["train"])
        extra = [t for t in [*mode_specials(mode), start] if t not in seen]
        vocab = Vocab.build([*tokens["train"], *extra], unk=unk)
    ids = {k: torch.tensor(vocab.encode(v), dtype=torch.long) for k, v in tokens.items()}
    return Corpus(vocab=vocab, tokenizer=tokenizer, start=start, mode=mode, bpe=bpe, **ids)


def encode_configured(texts: dict[str, str], cfg: DataConfig, bpe: Any = None) -> Corpus:
    """`encode_texts` with the tokenizer (default: words), mode and BPE size of `cfg`; words
    outside the train vocabulary (valid, test, prompts) become <unk>."""
    return encode_texts(
        texts,
        tokenizer=cfg.tokenizer or "word",
        mode=cfg.mode,
        unk=UNK,
        vocab_size=cfg.vocab_size,
        bpe=bpe,
    )
