"""Learning-rate schedules: the rate of each epoch, a pure function of the epoch index.

Any optimizer takes any schedule (`schedule=constant|decay`); resuming a run only needs the
epoch. The course scaffold of IFT6135 assignment 2 is `decay` with `flat_epochs=14` and
`compounding=true` (what `optim=sgd_schedule` reproduces).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # lmexp.config asks SCHEDULES for the valid names
    from lmexp.config import ScheduleConfig


def _constant(cfg: ScheduleConfig, lr: float, epoch: int) -> float:
    return lr


def _decay(cfg: ScheduleConfig, lr: float, epoch: int) -> float:
    """lr / decay**max(epoch - flat, 0); with `compounding`, the scaffold's form, which
    multiplies the *current* rate by (1/decay)**(epoch - flat) at the start of every epoch, so
    the exponent grows as a triangular number."""
    k = max(epoch - cfg.flat_epochs, 0)
    exponent = k * (k + 1) // 2 if cfg.compounding else k
    return lr / cfg.decay**exponent


SCHEDULES: dict[str, Callable[[ScheduleConfig, float, int], float]] = {
    "constant": _constant,
    "decay": _decay,
}


def lr_at_epoch(cfg: ScheduleConfig, lr: float, epoch: int) -> float:
    """Learning rate used during epoch `epoch` (0-based), starting from `lr`."""
    if cfg.name not in SCHEDULES:
        raise ValueError(f"schedule={cfg.name!r} unknown; choose from {sorted(SCHEDULES)}")
    return SCHEDULES[cfg.name](cfg, lr, epoch)
