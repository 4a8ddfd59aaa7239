"""text8 at character level: the slices, the carved validation split, and what errors say."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lmexp.data import DataError, load_corpus
from lmexp.data.schema import DataConfig
from lmexp.data.tokenizers import split_text
from tests.conftest import require_data_dir


@pytest.fixture
def text8_dir() -> Path:
    path = require_data_dir() / "text8"
    if not (path / "text8-100k.txt").is_file():
        pytest.fail(f"text8 slices not found in {path}")
    return path


def test_splits_vocabulary_and_tokenizer(text8_dir: Path) -> None:
    corpus = load_corpus(DataConfig(name="text8", root=str(text8_dir), valid_fraction=0.1))
    assert len(corpus.vocab) == 27 and set(corpus.vocab.itos) == set(" abcdefghijklmnopqrstuvwxyz")
    # every evaluated character is predicted: valid starts at its true context, the character
    # before the cut; dev after the boundary space: 10,000 and 500 predictions
    assert corpus.counts() == {"train": 90_000, "valid": 10_001, "test": 501}
    assert corpus.tokenizer == "char" and corpus.start == " "
    head = (text8_dir / "text8-100k.txt").read_text()[:20]
    assert corpus.vocab.decode(corpus.train[:20].tolist()) == list(head)
    tail = (text8_dir / "text8-100k.txt").read_text()[89_999:90_020]
    assert "".join(corpus.vocab.decode(corpus.valid[:21].tolist())) == tail
    dev = (text8_dir / "text8-dev.txt").read_text()
    assert "".join(corpus.vocab.decode(corpus.test.tolist())) == " " + dev


def test_valid_fraction_0_trains_on_all_100k_and_validates_on_the_dev_slice(text8_dir) -> None:
    corpus = load_corpus(DataConfig(name="text8", root=str(text8_dir), valid_fraction=0.0))
    assert corpus.counts() == {"train": 100_000, "valid": 501, "test": 501}
    assert corpus.valid.tolist() == corpus.test.tolist()


def test_all_500_dev_characters_are_scored(text8_dir) -> None:
    from lmexp.models import build_model, model_config_from_dict
    from lmexp.training.evaluation import evaluate

    corpus = load_corpus(DataConfig(name="text8", root=str(text8_dir)))
    cfg = model_config_from_dict({"name": "lstm", "emb_size": 4, "hidden_size": 4})
    _, count = evaluate(build_model(cfg, len(corpus.vocab)), corpus.test[None, :], 100)
    assert count == 500


def test_a_corrupt_slice_fails_its_checksum_and_a_missing_one_says_where_it_goes(
    text8_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(text8_dir / "text8-100k.txt", tmp_path / "text8-100k.txt")
    (tmp_path / "text8-dev.txt").write_text("not the dev slice")
    with pytest.raises(DataError, match="text8-dev.txt failed its checksum"):
        load_corpus(DataConfig(name="text8", root=str(tmp_path)))
    (tmp_path / "text8-dev.txt").unlink()
    with pytest.raises(DataError, match=r"missing text8-dev.txt .*no mirror is known for text8"):
        load_corpus(DataConfig(name="text8", root=str(tmp_path)))


def test_char_and_word_splitting() -> None:
    assert split_text("ab c", "char") == ["a", "b", " ", "c"]
    assert split_text("a b\nc", "word") == ["a", "b", "<eos>", "c"]
    assert split_text("a b\n", "word") == ["a", "b", "<eos>"]
    with pytest.raises(ValueError, match="choose from"):
        split_text("x", "sentencepiece")


def test_valid_fraction_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match=r"valid_fraction=1.5 must be in \[0, 1\)"):
        DataConfig(name="text8", valid_fraction=1.5)
