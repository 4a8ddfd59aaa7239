"""Tokenizers (word, char, ptb_char, BPE): round trips, BPE trained on train only and reused
from the run directory, sentence-mode corpora, and the config rules for tokenizer and mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmexp.data import load_corpus, save_corpus_tokenizer
from lmexp.data.bpe import bpe_pieces, bpe_text, load_bpe, train_bpe
from lmexp.data.schema import DataConfig
from lmexp.data.tokenizers import join_tokens, split_text
from lmexp.run.rundir import RunDir

TEXT = "the cat sat on the mat\nthe dog sat\n"
TRAIN = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 20


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(TRAIN, 300, ["<eos>", "<pad>", "<s>", "</s>"])


@pytest.mark.parametrize("mode", ["stream", "sentences"])
@pytest.mark.parametrize("tokenizer", ["word", "char", "ptb_char", "bpe"])
def test_every_tokenizer_round_trips_in_every_mode(tokenizer, mode, bpe) -> None:
    tokens = split_text(TEXT, tokenizer, bpe, mode)
    assert join_tokens(tokens, tokenizer, bpe) == TEXT


def test_what_the_tokens_are() -> None:
    assert split_text("a b\nc", "word") == ["a", "b", "<eos>", "c"]
    sentences = ["a", "b", "</s>", "<s>", "c", "</s>"]
    assert split_text("a b\nc\n", "word", mode="sentences") == sentences
    assert split_text("ab c\n", "ptb_char") == ["a", "b", "_", "c", "<eos>"]
    assert split_text("ab\n", "char") == ["a", "b", "\n"]


def test_bpe_is_exact_on_unseen_text_and_keeps_special_tokens_whole(bpe) -> None:
    text = "Zebra  <s>naïve\tquokka</s> 42\n"
    pieces = bpe_pieces(bpe, text)
    assert "<s>" in pieces and "</s>" in pieces
    assert bpe_text(bpe, pieces) == text  # byte-level: nothing is unknown, spaces kept
    assert "Ġcat" in pieces_of(bpe, " cat") and len(bpe_pieces(bpe, " cat sat")) == 2


def pieces_of(bpe, text: str) -> list[str]:
    return bpe_pieces(bpe, text)


def test_bpe_training_is_deterministic_and_sized() -> None:
    first = train_bpe(TRAIN, 270, ["<eos>"])
    again = train_bpe(TRAIN, 270, ["<eos>"])
    assert first.get_vocab() == again.get_vocab() and first.get_vocab_size() == 270
    # a size the text cannot fill stops when no pair is left to merge
    assert train_bpe(TRAIN, 5000, ["<eos>"]).get_vocab_size() < 300
    with pytest.raises(ValueError, match="data.vocab_size=200 leaves no room for merges"):
        train_bpe(TRAIN, 200, ["<eos>"])


def _write(root: Path, train: str, valid: str, test: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (("train", train), ("valid", valid), ("test", test)):
        (root / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def test_bpe_corpus_learns_merges_from_train_only_and_reuses_the_saved_model(tmp_path) -> None:
    valid = "zyzzyva zyzzyva zyzzyva\n" * 50  # frequent in valid, absent from train
    root = _write(tmp_path / "c", "\n".join(TRAIN) + "\n", valid, "the cat\n")
    cfg = DataConfig(name="text", root=str(root), tokenizer="bpe", vocab_size=270)
    corpus = load_corpus(cfg)
    assert corpus.tokenizer == "bpe" and len(corpus.vocab) == 270
    assert "Ġzyzzyva" not in corpus.vocab and "Ġcat" in corpus.vocab
    text = join_tokens(corpus.vocab.decode(corpus.valid.tolist()), "bpe", corpus.bpe)
    assert text == valid
    # a run directory's tokenizer.json is reused, even when the train text has changed since
    run = tmp_path / "run"
    run.mkdir()
    save_corpus_tokenizer(corpus, RunDir(run).tokenizer)
    (root / "train.txt").write_text("entirely different words here\n" * 30, encoding="utf-8")
    reused = load_corpus(cfg, tokenizer_file=RunDir(run).tokenizer)
    assert reused.vocab.itos == corpus.vocab.itos
    assert load_bpe(RunDir(run).tokenizer).get_vocab() == corpus.bpe.get_vocab()


@pytest.mark.parametrize("tokenizer", ["word", "char", "bpe"])
def test_sentence_mode_wraps_each_nonempty_line(tokenizer, tmp_path) -> None:
    root = _write(tmp_path / "c", "\n".join(TRAIN) + "\n\n", "a cat\n\nthe dog\n", "a log\n")
    cfg = DataConfig(
        name="text", root=str(root), tokenizer=tokenizer, mode="sentences", vocab_size=300
    )
    corpus = load_corpus(cfg)
    assert corpus.mode == "sentences" and corpus.start == "<s>" and "<pad>" in corpus.vocab
    valid = corpus.vocab.decode(corpus.valid.tolist())
    assert valid.count("<s>") == valid.count("</s>") == 2  # the empty line is no sentence
    assert valid[0] == "<s>" and valid[-1] == "</s>"
    assert join_tokens(valid, tokenizer, corpus.bpe) == "a cat\nthe dog\n"


def test_ptb_as_bpe_sentences(data_dir) -> None:
    cfg = DataConfig(
        name="ptb", root=str(data_dir / "ptb"), tokenizer="bpe", mode="sentences", vocab_size=500
    )
    corpus = load_corpus(cfg)
    assert len(corpus.vocab) == 500
    first = corpus.vocab.decode(corpus.test[:60].tolist())
    line = (data_dir / "ptb" / "ptb.test.txt").read_text().splitlines()[0]
    end = first.index("</s>")
    assert first[0] == "<s>" and bpe_text(corpus.bpe, first[1:end]) == " ".join(line.split())


def test_config_refuses_tokenizers_and_modes_a_corpus_cannot_take() -> None:
    with pytest.raises(ValueError, match=r"data.tokenizer='sentencepiece' is not available"):
        DataConfig(name="text", tokenizer="sentencepiece")
    with pytest.raises(ValueError, match=r"not available for data=ptb; choose from \['word'"):
        DataConfig(name="ptb", tokenizer="char")
    with pytest.raises(ValueError, match="text8 is one line"):
        DataConfig(name="text8", mode="sentences")
    with pytest.raises(ValueError, match="data.mode='lines' unknown"):
        DataConfig(name="ptb", mode="lines")
    assert DataConfig(name="ptb_char", tokenizer="char", mode="sentences").mode == "sentences"
