"""data=text: a user's own train/valid/test files as words or characters."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmexp.data import DataError, load_corpus
from lmexp.data.schema import DataConfig


def _write(root: Path, train: str, valid: str, test: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (root / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def test_word_tokenizer_closes_lines_and_maps_unseen_words_to_unk(tmp_path: Path) -> None:
    root = _write(tmp_path / "c", "a b a\nc a\n", "a d\n", "b\n")
    corpus = load_corpus(DataConfig(name="text", root=str(root), tokenizer="word"))
    assert corpus.tokenizer == "word" and corpus.start == "<eos>"
    assert corpus.vocab.decode(corpus.train.tolist()) == ["a", "b", "a", "<eos>", "c", "a", "<eos>"]
    assert corpus.vocab.decode(corpus.valid.tolist()) == ["a", "<unk>", "<eos>"]


def test_char_tokenizer_keeps_every_character(tmp_path: Path) -> None:
    root = _write(tmp_path / "c", "ab a\nba\n", "ab\n", "é\n")
    corpus = load_corpus(DataConfig(name="text", root=str(root), tokenizer="char"))
    assert corpus.tokenizer == "char" and corpus.start == "\n"
    assert "".join(corpus.vocab.decode(corpus.train.tolist())) == "ab a\nba\n"
    assert corpus.vocab.decode(corpus.test.tolist()) == ["<unk>", "\n"]


def test_missing_root_or_file_says_what_to_put_where(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs data.root"):
        load_corpus(DataConfig(name="text"))
    root = _write(tmp_path / "c", "a\n", "a\n", "a\n")
    (root / "test.txt").unlink()
    with pytest.raises(DataError, match=r"data=text needs test.txt in .*put train.txt"):
        load_corpus(DataConfig(name="text", root=str(root)))
