"""PTB on the real files: sizes the literature reports, root resolution, checksum failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from lmexp.data import Corpus, DataError, load_corpus
from lmexp.data.files import resolve_root
from lmexp.data.ptb import PTB_FILES, ensure_files, read_tokens
from lmexp.data.schema import DataConfig
from tests.conftest import require_data_dir


def _real_ptb_dir() -> Path:
    """The shared PTB copy (see tests/conftest.py)."""
    return require_data_dir() / "ptb"


@pytest.fixture(scope="module")
def ptb_dir() -> Path:
    return _real_ptb_dir()


@pytest.fixture(scope="module")
def corpus(ptb_dir: Path) -> Corpus:
    return load_corpus(DataConfig(root=str(ptb_dir), download=False))


@pytest.fixture
def ptb_copy(ptb_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the real files, to damage."""
    for name, *_ in PTB_FILES.values():
        shutil.copyfile(ptb_dir / name, tmp_path / name)
    return tmp_path


def test_vocab_has_exactly_10000_types(corpus: Corpus) -> None:
    assert len(corpus.vocab) == 10_000
    assert corpus.vocab.itos[:3] == ["the", "<unk>", "<eos>"]  # (-count, word) order


def test_token_counts_include_eos(corpus: Corpus) -> None:
    assert corpus.counts() == {"train": 929_589, "valid": 73_760, "test": 82_430}


def test_splits_are_long_id_streams(corpus: Corpus) -> None:
    assert corpus.vocab.decode(corpus.train[:3]) == ["aer", "banknote", "berlitz"]
    for split in (corpus.train, corpus.valid, corpus.test):
        assert split.dtype == torch.long and split.dim() == 1
        assert int(split.min()) >= 0 and int(split.max()) < len(corpus.vocab)


def test_resolve_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LMEXP_DATA_DIR", raising=False)
    assert resolve_root(None) == tmp_path / "data" / "ptb"
    monkeypatch.setenv("LMEXP_DATA_DIR", str(tmp_path / "shared"))
    assert resolve_root(None, "text8") == tmp_path / "shared" / "text8"
    assert resolve_root(str(tmp_path / "mine")) == tmp_path / "mine"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_root("~/corpora") == tmp_path / "corpora"


def test_corrupt_file_fails_its_checksum(ptb_copy: Path) -> None:
    path = ptb_copy / "ptb.valid.txt"
    data = bytearray(path.read_bytes())
    data[1000] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="ptb.valid.txt") as info:
        ensure_files(ptb_copy, download=False, mirrors=[])
    message = str(info.value)
    assert "corrupt" in message and PTB_FILES["valid"].sha256 in message and "Delete" in message


def test_empty_file_is_reported(ptb_copy: Path) -> None:
    (ptb_copy / "ptb.test.txt").write_bytes(b"")
    with pytest.raises(DataError, match=r"ptb\.test\.txt.*empty"):
        ensure_files(ptb_copy, download=False, mirrors=[])
    with pytest.raises(DataError, match="empty"):
        read_tokens(ptb_copy / "ptb.test.txt")


def test_non_utf8_file_is_reported(ptb_copy: Path) -> None:
    (ptb_copy / "ptb.train.txt").write_bytes(b" caf\xe9 au lait \n")
    with pytest.raises(DataError, match=r"ptb\.train\.txt.*not UTF-8"):
        ensure_files(ptb_copy, download=False, mirrors=[])
    with pytest.raises(DataError, match="not UTF-8"):
        read_tokens(ptb_copy / "ptb.train.txt")


def test_missing_files_without_download_say_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        ensure_files(tmp_path, download=False, mirrors=[])
    message = str(info.value)
    for name, *_ in PTB_FILES.values():
        assert name in message
    assert str(tmp_path) in message and "LMEXP_DATA_DIR" in message and "data.root" in message


def test_read_tokens_closes_every_line_with_eos(tmp_path: Path) -> None:
    path = tmp_path / "tiny.txt"
    path.write_text(" a b \n\n c", encoding="utf-8")
    assert read_tokens(path) == ["a", "b", "<eos>", "<eos>", "c", "<eos>"]


def test_unknown_corpus_name_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"choose from \['ptb', 'ptb_char', 'text', 'text8'\]"):
        load_corpus(DataConfig(name="wikitext"))
