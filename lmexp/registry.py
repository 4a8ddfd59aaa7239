"""A registry: the one list of the options of a config group, each with an explicit order.

Architectures, optimizers and schedules each keep one (`lmexp/models/registry.py`,
`lmexp/training/optim.py`, `lmexp/training/schedules.py`). An entry's `order` is its place in
tables and figures and picks its colour or line style; jobs record it, so it is explicit and
never shared: a new entry takes a free number and moves no other.
"""

from __future__ import annotations

from typing import Protocol, TypeVar


class Entry(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def order(self) -> int: ...


E = TypeVar("E", bound=Entry)


class Registry(dict[str, E]):
    """name -> entry, filled by `register` as the modules that define the entries import."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind  # what an entry is, for the errors: "optimizer"

    def register(self, entry: E) -> E:
        """Add `entry`; a second one of the same name or order is a programming error."""
        if entry.name in self:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        taken = {e.order: e.name for e in self.values()}
        if entry.order in taken:  # its place, colour or line style would be another's
            raise ValueError(
                f"{self.kind} {entry.name!r} takes order {entry.order} of {taken[entry.order]!r}"
            )
        self[entry.name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        """Every entry's name, in the order tables and figures use."""
        return tuple(sorted(self, key=lambda name: self[name].order))
