"""Character-level PTB derived from the word files: `_` between words, <eos>, <unk> whole."""

from __future__ import annotations

from lmexp.data import load_corpus
from lmexp.data.ptb import read_tokens
from lmexp.data.schema import DataConfig
from lmexp.data.tokenizers import split_text, words_to_chars
from tests.conftest import require_data_dir


def test_words_become_characters_with_visible_boundaries_by_hand() -> None:
    tokens = ["no", "it", "<eos>", "<unk>", "a", "<eos>"]
    assert words_to_chars(tokens) == list("no_it") + ["<eos>", "<unk>", "_", "a", "<eos>"]
    assert split_text("the cat", "ptb_char") == list("the_cat")


def test_ptb_char_is_the_word_files_spelled_out() -> None:
    root = require_data_dir() / "ptb"
    corpus = load_corpus(DataConfig(name="ptb_char", root=str(root)))
    assert corpus.tokenizer == "ptb_char" and corpus.start == "<eos>"
    words = read_tokens(root / "ptb.valid.txt")
    assert corpus.vocab.decode(corpus.valid.tolist()) == words_to_chars(words)
    # Every character of a word, a boundary between words, one <eos> per line:
    lines = words.count("<eos>")
    letters = sum(len(w) for w in words if w not in ("<eos>", "<unk>")) + words.count("<unk>")
    boundaries = len(words) - lines - lines  # words per line minus one, summed over lines
    assert corpus.counts()["valid"] == letters + boundaries + lines
    assert "_" in corpus.vocab and "<unk>" in corpus.vocab and len(corpus.vocab) < 60
