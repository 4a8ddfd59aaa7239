"""Checkpoints hold plain data only, are written atomically, and refuse code on load."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from lmexp.run.checkpoint import load_checkpoint, save_checkpoint


class _Payload:
    """Unpickling this runs a shell command: what a crafted checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_of_plain_data(tmp_path) -> None:
    payload = {"model": {"w": torch.arange(3.0)}, "step": 7, "rng": [3, [1, 2], None]}
    save_checkpoint(payload, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["step"] == 7 and torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left


def test_a_crafted_pickle_with_a_code_payload_is_refused(tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        pickle.dump({"model": _Payload(str(marker))}, f)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(path)
    assert not marker.exists()


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)
    with pytest.raises(AttributeError, match="Can't pickle"):
        save_checkpoint({"step": 2, "bad": lambda: None}, path)  # fails mid-write
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
