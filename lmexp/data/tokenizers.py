"""Splitting raw text into tokens the way a corpus was split: words or characters.

A corpus module uses one of these on its files; scoring and generation use the same one (named
in the run directory's corpus.json) on prompts and user text.
"""

from __future__ import annotations

from typing import Any

from lmexp.data.bpe import bpe_pieces, bpe_text
from lmexp.data.corpus import BOS, EOS, EOS_SENTENCE, PAD, UNK

TOKENIZERS = ("word", "char", "ptb_char", "bpe")
WORD_BOUNDARY = "_"  # ptb_char: the visible symbol between two words, as in the char-PTB release


def word_tokens(text: str, close_last_line: bool = True) -> list[str]:
    """Whitespace-split tokens with <eos> closing every line, as the scaffold and Mikolov count.

    `close_last_line=False` leaves a last line without its <eos>: a prompt or continuation
    that stops mid-sentence.
    """
    tokens: list[str] = []
    lines = text.splitlines()
    for k, line in enumerate(lines):
        tokens.extend(line.split())
        if close_last_line or k < len(lines) - 1:
            tokens.append(EOS)
    return tokens


def char_tokens(text: str) -> list[str]:
    """Every character is a token, spaces included; a newline is the character "\\n"."""
    return list(text)


def words_to_chars(tokens: list[str]) -> list[str]:
    """Word tokens -> characters with `_` between the words of a line, as character-level PTB
    writes them; `<eos>` and `<unk>` stay single symbols (sentence end, a rare word)."""
    chars: list[str] = []
    in_line = False
    for token in tokens:
        if token == EOS:
            chars.append(EOS)
            in_line = False
            continue
        if in_line:
            chars.append(WORD_BOUNDARY)
        chars.extend([token] if token == UNK else list(token))
        in_line = True
    return chars


def line_tokens(line: str, tokenizer: str, bpe: Any = None) -> list[str]:
    """The tokens of one line, without any line end: what sentence mode wraps in <s> ... </s>."""
    if tokenizer == "word":
        return line.split()
    if tokenizer == "char":
        return list(line)
    if tokenizer == "ptb_char":
        return words_to_chars(line.split())
    if tokenizer == "bpe":
        if bpe is None:
            raise ValueError("tokenizer=bpe needs the run's trained BPE model (tokenizer.json)")
        return bpe_pieces(bpe, line)
    raise ValueError(f"tokenizer={tokenizer!r} unknown; choose from {list(TOKENIZERS)}")


def split_text(text: str, tokenizer: str, bpe: Any = None, mode: str = "stream") -> list[str]:
    """Raw text as tokens of `tokenizer`, read as the corpus files are read in `mode`.

    Stream mode: words and BPE pieces close every line with <eos>, characters keep the newline
    character. Sentence mode: a line end is `</s> <s>`, the next sentence's start (the first
    `<s>` is the caller's start token). A last line without a newline stays open: a prompt.
    """
    if tokenizer == "char" and mode == "stream":
        return char_tokens(text)
    line_end = [EOS_SENTENCE] if mode == "sentences" else [EOS]
    tokens: list[str] = []
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if k and mode == "sentences":
            tokens.append(BOS)
        tokens.extend(line_tokens(line, tokenizer, bpe))
        if k < len(lines) - 1 or text.endswith("\n"):
            tokens.extend(line_end)
    return tokens


def join_tokens(tokens: list[str], tokenizer: str, bpe: Any = None) -> str:
    """The text of `tokens`, the inverse of `split_text` up to whitespace (words): <eos> and
    </s> are newlines, <s> and padding are dropped, ptb_char's `_` is a space."""
    tokens = [t for t in tokens if t not in (BOS, PAD)]
    if tokenizer == "char" and EOS_SENTENCE not in tokens:
        return "".join(tokens)
    parts: list[str] = []
    line: list[str] = []

    def flush() -> None:
        if tokenizer == "bpe":
            parts.append(bpe_text(bpe, line))
        elif tokenizer == "ptb_char":
            parts.append("".join(" " if t == WORD_BOUNDARY else t for t in line))
        elif tokenizer == "char":
            parts.append("".join(line))
        else:
            parts.append(" ".join(line))
        line.clear()

    for token in tokens:
        if token in (EOS, EOS_SENTENCE):
            flush()
            parts.append("\n")
        else:
            line.append(token)
    flush()
    return "".join(parts)
