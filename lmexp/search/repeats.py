"""A cell's repeats: the seed axis `seeds=K` adds to a grid, and the seeds of a trial.

`seeds=K` makes each cell of a sweep K jobs with the seeds `repeat_seeds(seed, K)`: a grid gets
them as one more axis (`seed=a,b,c`), in the place of a `seed=` override if the command has
one, so Hydra numbers the jobs as pre-flight does; an Optuna trial runs K jobs (sweep.py).
"""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser

from lmexp.config import repeat_seeds

SEED = "seed"


class RepeatsConflict(ValueError):
    """`seeds=K` beside a `seed=a,b` sweep: two ways of repeating the cells at once."""


def seed_axis(arguments: list[str], seed: int, seeds: int) -> list[str]:
    """`arguments` with the seed axis of `seeds` repeats; unchanged for `seeds=1`."""
    if seeds <= 1:
        return list(arguments)
    parsed = OverridesParser.create().parse_overrides(list(arguments))
    axis = f"{SEED}={','.join(map(str, repeat_seeds(seed, seeds)))}"
    out, placed = [], False
    for override, text in zip(parsed, arguments, strict=True):
        if override.get_key_element().lstrip("+~") != SEED:
            out.append(text)
            continue
        if override.is_sweep_override():
            raise RepeatsConflict(
                f"{text} and seeds={seeds} both repeat the cells over seeds; give one of them "
                f"(seeds={seeds} with seed=<n> runs the seeds n to n+{seeds - 1})"
            )
        if not placed:
            out.append(axis)
            placed = True
    if not placed:
        out.append(axis)
    return out


def with_seed(overrides: list[str], seed: int) -> list[str]:
    """One repeat's job: `overrides` without their `seed=` and with this one."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    kept = [
        text
        for override, text in zip(parsed, overrides, strict=True)
        if override.get_key_element().lstrip("+~") != SEED
    ]
    return [*kept, f"{SEED}={seed}"]
