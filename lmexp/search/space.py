"""An Optuna search space from Hydra's sweep syntax, and a trial's values back as overrides.

The space is written the way Hydra users already write sweeps, in `hydra.sweeper.params` (the
files of conf/sweep/space/) or on the command line, which wins for a key it names:

    choice(16, 32, 64)              -> a categorical parameter
    interval(0.0, 0.7)              -> a float, uniform       (tag(log, ...): log-uniform)
    int(interval(128, 2048))        -> an integer, uniform    (Hydra reads interval() as floats)
    range(1, 4)  range(0, 1, 0.25)  -> an integer or float with a step (Hydra's end is exclusive)
    a plain value                   -> pinned: every trial gets it

Nothing here imports Optuna at module level: Hydra imports the sweeper plugin, and so this
module, at every start of every lmexp process.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
)

from lmexp.validation import UsageError


def override_key(override: Override) -> str:
    """The override's key as written, with its `+`, `++` or `~` (`+model.kwargs.width`)."""
    return override.get_key_element()


_PLAIN = re.compile(r"^[\w.:/+-]+$")  # a string Hydra reads back unquoted as the same string


class SearchSpaceError(UsageError, ValueError):
    """A search-space entry Optuna cannot sample; the message is one line naming it."""


@dataclass
class SearchSpace:
    """What a trial samples (`distributions`, by override key) and what every trial pins."""

    distributions: dict[str, Any] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)  # override lines, as given

    def job_overrides(self, params: Mapping[str, Any]) -> list[str]:
        """The override list of the job that runs a trial with these sampled values."""
        return [*self.fixed, *(f"{key}={format_value(v)}" for key, v in params.items())]


def format_value(value: Any) -> str:
    """A sampled value as Hydra's override grammar reads it back (quoted where it must be)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str) and not _PLAIN.match(value):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"'{escaped}'"
    return str(value)


def search_space(params: Mapping[str, Any], arguments: Iterable[str]) -> SearchSpace:
    """The space of `hydra.sweeper.params`, with the command line's `arguments` on top.

    A command-line sweep (`optim.lr=tag(log, interval(1e-4, 1e-2))`) replaces the configured
    range of that key; a plain value (`model.num_layers=2`) pins it.
    """
    parser = OverridesParser.create()
    configured = parser.parse_overrides([f"{key}={value}" for key, value in params.items()])
    given = parser.parse_overrides(list(arguments))
    named = {_target(o) for o in given}
    space = SearchSpace()
    for override in [*(o for o in configured if _target(o) not in named), *given]:
        if override.is_sweep_override():
            space.distributions[override_key(override)] = distribution(override)
        else:
            space.fixed.append(override.input_line or "")
    return space


def _target(override: Override) -> tuple[str, str | None]:
    """What an override sets, whatever its prefix: `+x=1` and `x=2` name the same key."""
    return override.key_or_group, override.package


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override, or `SearchSpaceError` naming it."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    value = override.value()
    where = f"{override_key(override)}={override.input_line.split('=', 1)[-1]}"
    tags = set(getattr(value, "tags", ()) or ())
    if tags - {"log"}:
        raise SearchSpaceError(
            f"{where}: unknown tag {sorted(tags - {'log'})}; the only tag is log, "
            "e.g. tag(log, interval(1e-5, 1e-2))"
        )
    log = "log" in tags
    if isinstance(value, ChoiceSweep):
        choices = list(value.list)
        if log:
            raise SearchSpaceError(f"{where}: log applies to interval() and range(), not choice()")
        bad = [c for c in choices if c is not None and not isinstance(c, bool | int | float | str)]
        if bad:
            raise SearchSpaceError(
                f"{where}: Optuna chooses among numbers, strings and booleans, not {bad[0]!r}"
            )
        return CategoricalDistribution(choices)
    if isinstance(value, IntervalSweep):
        low, high = value.start, value.end
        if low >= high:
            raise SearchSpaceError(f"{where}: the interval is empty; write interval(low, high)")
        if log and low <= 0:
            raise SearchSpaceError(f"{where}: a log interval needs low > 0 (got {low})")
        if isinstance(low, int) and isinstance(high, int):
            return IntDistribution(low, high, log=log)
        return FloatDistribution(float(low), float(high), log=log)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise SearchSpaceError(f"{where}: the range is empty (its end is exclusive)")
        if log:
            raise SearchSpaceError(
                f"{where}: Optuna has no log scale with a step; use tag(log, interval(...))"
            )
        low, high, step = min(values), max(values), abs(value.step)
        if all(isinstance(v, int) for v in values) and isinstance(step, int):
            return IntDistribution(low, high, step=step)
        if low == high:
            return CategoricalDistribution([low])
        return FloatDistribution(float(low), float(high), step=float(step))
    raise SearchSpaceError(
        f"{where}: Optuna cannot sample this; use choice(), interval(), int(interval()) or range()"
    )
