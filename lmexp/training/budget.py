"""When a run stops and when it evaluates: budgets and the evaluation cadence within an epoch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lmexp.training.schema import TrainerConfig


@dataclass
class Budget:
    """Stop conditions; the first one reached ends the run."""

    max_steps: int | None
    max_tokens: int | None
    max_seconds: float | None
    # which budget set the step cap (an epoch or sequence budget is counted in steps), so a
    # job that ran its epochs records `max_epochs`, not `max_steps`
    steps_from: str = "max_steps"

    @classmethod
    def from_config(cls, cfg: TrainerConfig, steps_per_epoch: int, batch_size: int = 1) -> Budget:
        """Epoch and sequence budgets become step caps: a step trains one window of each of
        the `batch_size` streams, i.e. `batch_size` sequences."""
        caps: list[tuple[int, str]] = []  # (steps, budget); on a tie the first named wins
        if cfg.max_steps is not None:
            caps.append((cfg.max_steps, "max_steps"))
        if cfg.max_epochs is not None:
            caps.append((max(1, math.ceil(cfg.max_epochs * steps_per_epoch)), "max_epochs"))
        if cfg.max_sequences is not None:
            caps.append((max(1, math.ceil(cfg.max_sequences / batch_size)), "max_sequences"))
        seconds = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
        if not caps:
            return cls(None, cfg.max_tokens, seconds)
        steps, name = min(caps, key=lambda cap: cap[0])
        return cls(steps, cfg.max_tokens, seconds, name)

    def reached(self, step: int, tokens: int, elapsed_s: float) -> str | None:
        """The name of the budget that is used up, or None."""
        if self.max_steps is not None and step >= self.max_steps:
            return self.steps_from
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return "max_tokens"
        if self.max_seconds is not None and elapsed_s >= self.max_seconds:
            return "max_minutes"
        return None


def budget_points(max_steps: int | None, every: float | None) -> set[int]:
    """Global steps at which to evaluate every `every` of a step budget (CMU 10-601 HW7: 10 %).

    Empty without a step cap (a wall-clock budget has no fraction to count in) or without
    `every`; the last step of the budget is among them.
    """
    if max_steps is None or every is None:
        return set()
    n_points = max(1, math.floor(1.0 / every + 1e-9))
    return {max(1, round(k * every * max_steps)) for k in range(1, n_points + 1)} | {max_steps}


def eval_points(steps_per_epoch: int, every: float) -> set[int]:
    """Steps within an epoch (1-based) after which to evaluate; always includes the epoch end."""
    n_points = max(1, math.floor(1.0 / every + 1e-9))
    points = {max(1, round(k * every * steps_per_epoch)) for k in range(1, n_points + 1)}
    return {min(p, steps_per_epoch) for p in points} | {steps_per_epoch}
