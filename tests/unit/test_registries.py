"""Architectures, optimizers and schedules: registered with explicit, stable, unshared ranks.

A job records each one's label and rank in summary.json, and the report orders, colours and
dashes by them; a rank that were a position would shift when an entry is inserted, and old
runs would keep the stale one.
"""

from __future__ import annotations

import dataclasses

import pytest

from lmexp import models
from lmexp.models.registry import ARCHITECTURES
from lmexp.models.registry import register as register_architecture
from lmexp.training import optim, schedules


def _all_displays() -> dict[str, dict]:
    shown = {f"model:{n}": models.display(n) for n in ARCHITECTURES}
    shown |= {f"optim:{n}": optim.display(n) for n in optim.OPTIMIZERS}
    return shown | {f"schedule:{n}": schedules.display(n) for n in schedules.SCHEDULES}


def test_the_recorded_ranks_are_the_registries_own_numbers() -> None:
    # the numbers runs have recorded so far: a new entry takes a new one, never one of these
    five = ("rnn", "gru", "lstm", "transformer", "rnn_attn")
    assert [models.display(n)["model_rank"] for n in five] == [0, 1, 2, 3, 4]
    assert [optim.display(n)["optim_rank"] for n in ("sgd", "sgd_schedule", "adam")] == [0, 1, 2]
    assert optim.names()[:3] == ("sgd", "sgd_schedule", "adam")
    assert optim.display("sgd_schedule")["optim_label"] == "SGD-LR-SC"
    assert "optim_note" in optim.display("sgd_schedule")
    assert "optim_note" not in optim.display("sgd")
    assert schedules.display("constant")["schedule_reads"] == ()
    assert "decay" in schedules.display("decay")["schedule_reads"]


def test_a_new_entry_moves_no_other_and_cannot_take_a_rank_in_use() -> None:
    before = _all_displays()
    sgd = optim.OPTIMIZERS["sgd"]
    added = [
        optim.register(dataclasses.replace(sgd, name="momentum", label="Momentum", order=99)),
        register_architecture(dataclasses.replace(ARCHITECTURES["gru"], name="gru2", order=99)),
    ]
    try:
        assert {k: v for k, v in _all_displays().items() if k in before} == before
        assert optim.names()[-1] == "momentum"
        with pytest.raises(ValueError, match="takes order 0 of 'sgd'"):
            optim.register(dataclasses.replace(sgd, name="other", order=0))
        with pytest.raises(ValueError, match="takes order 1 of 'gru'"):
            register_architecture(dataclasses.replace(ARCHITECTURES["gru"], name="gru3"))
        constant = schedules.SCHEDULES["constant"]
        with pytest.raises(ValueError, match="takes order 0 of 'constant'"):
            schedules.register(dataclasses.replace(constant, name="flat"))
    finally:
        del optim.OPTIMIZERS[added[0].name], ARCHITECTURES[added[1].name]
