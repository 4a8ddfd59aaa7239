"""Learning-rate schedules: the one list of them, and the `schedule` group's schema.

The rate of each epoch is a pure function of the epoch index and of the validation perplexities
measured at the ends of the epochs before it (which only `plateau` reads), so any optimizer takes
any schedule (`schedule=constant|decay|plateau`) and resuming a run only needs the epoch and its
metrics.csv, which a checkpoint restores. The course
scaffold of IFT6135 assignment 2 is `decay` with `flat_epochs=14` and `compounding=true` (what
`optim=sgd_schedule` reproduces). Each schedule is registered like an optimizer (optim.py):
its rate function, label and stable order key, which the job records in its summary.json.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lmexp.registry import Registry
from lmexp.validation import require_choice, require_finite, require_positive


@dataclass
class ScheduleConfig:
    """How the learning rate moves from epoch to epoch; any optimizer takes any schedule."""

    name: str = "constant"  # one of SCHEDULES: constant | decay | plateau
    # decay: lr is divided by this after each epoch; plateau: after each epoch whose validation
    # perplexity is not below the best before it (pytorch/examples' word LM: 4)
    decay: float = 1.15
    flat_epochs: int = 0  # decay: the last epoch (from 0) at the initial lr; decay from the next
    compounding: bool = False  # decay: the course scaffold's lr *= (1/decay)**(epoch - flat)

    def __post_init__(self) -> None:
        require_choice("schedule", self.name, names())
        require_finite("schedule", decay=self.decay)
        require_positive("schedule", decay=self.decay)
        if self.flat_epochs < 0:
            raise ValueError(f"schedule.flat_epochs={self.flat_epochs} must be >= 0")


@dataclass(frozen=True)
class ScheduleSpec:
    """One `schedule=<name>` option: the rate of each epoch, and how tables show it."""

    name: str
    label: str  # display name, e.g. "decay"
    order: int  # where it sits in tables (lower first): explicit and never reused
    # (its config, initial lr, epoch, validation perplexity at the end of each earlier epoch) -> lr
    rate: Callable[[ScheduleConfig, float, int, Sequence[float]], float]
    reads: tuple[str, ...] = ()  # the keys of ScheduleConfig it uses (the others mean nothing)


SCHEDULES: Registry[ScheduleSpec] = Registry("schedule")
register = SCHEDULES.register
names = SCHEDULES.names


def display(name: str) -> dict[str, Any]:
    """What the analysis shows of a schedule; the job records it in its summary.json."""
    spec = SCHEDULES[name]
    return {"schedule_label": spec.label, "schedule_rank": spec.order, "schedule_reads": spec.reads}


def _constant(cfg: ScheduleConfig, lr: float, epoch: int, history: Sequence[float]) -> float:
    return lr


def _decay(cfg: ScheduleConfig, lr: float, epoch: int, history: Sequence[float]) -> float:
    """lr / decay**max(epoch - flat, 0); with `compounding`, the scaffold's form, which
    multiplies the *current* rate by (1/decay)**(epoch - flat) at the start of every epoch, so
    the exponent grows as a triangular number."""
    k = max(epoch - cfg.flat_epochs, 0)
    exponent = k * (k + 1) // 2 if cfg.compounding else k
    return lr / cfg.decay**exponent


def _plateau(cfg: ScheduleConfig, lr: float, epoch: int, history: Sequence[float]) -> float:
    """lr / decay**k, k the earlier epochs whose end-of-epoch validation perplexity was not
    below the best before it: pytorch/examples' word language model (`lr /= 4.0`)."""
    best, misses = math.inf, 0
    for ppl in history[:epoch]:
        if ppl < best:
            best = ppl
        else:
            misses += 1
    return lr / cfg.decay**misses


register(ScheduleSpec("constant", "constant", 0, _constant))
register(ScheduleSpec("decay", "decay", 1, _decay, ("decay", "flat_epochs", "compounding")))
register(ScheduleSpec("plateau", "plateau", 2, _plateau, ("decay",)))


def lr_at_epoch(cfg: ScheduleConfig, lr: float, epoch: int, history: Sequence[float] = ()) -> float:
    """Learning rate used during epoch `epoch` (0-based), starting from `lr`; `history` holds
    the validation perplexity measured at the end of each earlier epoch (0, 1, ...)."""
    if cfg.name not in SCHEDULES:
        raise ValueError(f"schedule={cfg.name!r} unknown; choose from {list(names())}")
    return SCHEDULES[cfg.name].rate(cfg, lr, epoch, history)
