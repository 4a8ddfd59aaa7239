"""Vocab: build order, encode/decode, unknown tokens, JSON round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmexp.data import Vocab


def test_build_orders_by_count_then_word() -> None:
    vocab = Vocab.build(["b", "a", "c", "a", "b", "a", "d", "c"])
    # a:3, b:2, c:2, d:1 -> ties (b, c) broken alphabetically
    assert vocab.itos == ["a", "b", "c", "d"]
    assert vocab.stoi == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert len(vocab) == 4


def test_encode_decode_round_trip() -> None:
    tokens = ["the", "cat", "sat", "on", "the", "mat"]
    vocab = Vocab.build(tokens)
    ids = vocab.encode(tokens)
    assert ids[0] == ids[4] == vocab.stoi["the"] == 0
    assert vocab.decode(ids) == tokens
    assert vocab.decode(torch.tensor(ids)) == tokens


def test_unknown_token_raises_key_error_naming_it() -> None:
    vocab = Vocab.build(["a", "b"])
    with pytest.raises(KeyError, match="'zebra'"):
        vocab.encode(["a", "zebra"])


def test_unknown_token_maps_to_unk() -> None:
    vocab = Vocab.build(["a", "<unk>", "a"], unk="<unk>")
    assert vocab.encode(["a", "zebra", "<unk>"]) == [0, 1, 1]


def test_unseen_unk_gets_the_last_id() -> None:
    vocab = Vocab.build(["a", "b"], unk="<unk>")
    assert vocab.itos[-1] == "<unk>"
    assert vocab.encode(["?"]) == [len(vocab) - 1]


def test_unk_must_be_in_vocab_and_types_unique() -> None:
    with pytest.raises(ValueError, match="unk"):
        Vocab(["a"], unk="<unk>")
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(["a", "a"])


def test_decode_rejects_out_of_range_ids() -> None:
    vocab = Vocab(["a", "b"])
    with pytest.raises(IndexError):
        vocab.decode([2])
    with pytest.raises(IndexError):
        vocab.decode([-1])


def test_json_round_trip(tmp_path: Path) -> None:
    vocab = Vocab.build(["z", "y", "y", "x", "é", "<unk>"], unk="<unk>")
    path = tmp_path / "vocab.json"
    vocab.to_json(path)
    assert json.loads(path.read_text(encoding="utf-8")) == vocab.itos
    loaded = Vocab.from_json(path, unk="<unk>")
    assert loaded.itos == vocab.itos
    assert loaded.stoi == vocab.stoi
    assert loaded.encode(["never-seen"]) == vocab.encode(["never-seen"])


def test_from_json_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    path.write_text(json.dumps({"itos": ["a"]}), encoding="utf-8")
    with pytest.raises(ValueError, match="list of strings"):
        Vocab.from_json(path)
