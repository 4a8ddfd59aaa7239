"""Splitting raw text into tokens the way a corpus was split: words or characters.

A corpus module uses one of these on its files; scoring and generation use the same one (named
in the run directory's corpus.json) on prompts and user text.
"""

from __future__ import annotations

from lmexp.data.corpus import EOS

TOKENIZERS = ("word", "char")


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


def split_text(text: str, tokenizer: str) -> list[str]:
    """Raw text as tokens of `tokenizer`; a trailing newline closes the last line (word)."""
    if tokenizer == "word":
        return word_tokens(text, close_last_line=text.endswith("\n"))
    if tokenizer == "char":
        return char_tokens(text)
    raise ValueError(f"tokenizer={tokenizer!r} unknown; choose from {list(TOKENIZERS)}")
