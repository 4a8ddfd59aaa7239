"""Splitting raw text into tokens the way a corpus was split: words or characters.

A corpus module uses one of these on its files; scoring and generation use the same one (named
in the run directory's corpus.json) on prompts and user text.
"""

from __future__ import annotations

from lmexp.data.corpus import EOS, UNK

TOKENIZERS = ("word", "char", "ptb_char")
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


def split_text(text: str, tokenizer: str) -> list[str]:
    """Raw text as tokens of `tokenizer`; a trailing newline closes the last line (word)."""
    if tokenizer == "word":
        return word_tokens(text, close_last_line=text.endswith("\n"))
    if tokenizer == "char":
        return char_tokens(text)
    if tokenizer == "ptb_char":
        return words_to_chars(word_tokens(text, close_last_line=text.endswith("\n")))
    raise ValueError(f"tokenizer={tokenizer!r} unknown; choose from {list(TOKENIZERS)}")
