"""The fixed visual vocabulary shared by tables and figures: display names, order, colour, dash.

An architecture's and an optimizer's display name and place come from its job (`model_label`,
`model_rank`, `optim_label`, `optim_rank` in summary.json, written from lmexp's registries), so
the analysis names none of them. Colour follows the architecture's rank and line style the
optimizer's: each keeps its look in every figure, whatever subset of jobs a figure shows, and
a rank is explicit in its registry, so a new entry moves no other's. A job that recorded no
rank (an older lmexp) gets a look picked from its name, the same every time.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

# Colour-blind-safe (Okabe & Ito's palette, in an order that keeps the first five far apart:
# seaborn's "colorblind" gave GRU and Transformer, ranks 1 and 3, two near-identical oranges).
# The architecture of rank k takes the k-th: RNN blue, GRU orange, LSTM green, Transformer
# reddish purple, RNN+Attn black.
ARCH_PALETTE = (
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#000000",
    "#56b4e9", "#d55e00", "#f0e442", "#999999",
)  # fmt: skip

# The optimizer of rank k takes the k-th: rank 0 solid, 1 dashed, 2 dash-dotted, ...
DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))

# Markers tell apart jobs that share architecture and optimizer (e.g. an lr sweep); they are
# chosen by experiment number so a job keeps its marker across figures.
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")


def _stable_pick(name: str, choices: tuple) -> object:
    """A choice that depends only on `name` (crc32, not `hash`, which is salted per process)."""
    return choices[zlib.crc32(name.encode("utf-8")) % len(choices)]


def _by_rank(row: Any, prefix: str, choices: tuple) -> Any:
    """`choices[rank]` of the job's `<prefix>_rank`; without one, a pick by its name."""
    rank_of = row.get(f"{prefix}_rank")
    if isinstance(rank_of, int | float) and math.isfinite(rank_of):
        return choices[int(rank_of) % len(choices)]
    return _stable_pick(str(row[prefix]), choices)


def arch_color(row: Any) -> str:
    """The colour of a job's architecture, by its rank."""
    return str(_by_rank(row, "model", ARCH_PALETTE))


def optim_dash(row: Any) -> str | tuple:
    """The matplotlib line style of a job's optimizer, by its rank."""
    return _by_rank(row, "optim", DASHES)  # type: ignore[no-any-return]


def job_marker(experiment: int) -> str:
    """The marker of experiment number `experiment` (1-based)."""
    return MARKERS[(experiment - 1) % len(MARKERS)]


def labels(jobs: Any, prefix: str) -> dict[str, str]:
    """Name -> display name of the jobs' architectures (`prefix="model"`: `transformer` ->
    `Transformer`) or optimizers (`"optim"`), as each job recorded them."""
    return {str(r[prefix]): str(r[f"{prefix}_label"]) for _, r in jobs.iterrows()}


def order(jobs: Any, prefix: str) -> list[str]:
    """The jobs' architectures or optimizers in registry order (unranked last, by name)."""
    ranks = {str(r[prefix]): float(r[f"{prefix}_rank"]) for _, r in jobs.iterrows()}
    return sorted(ranks, key=lambda m: (ranks[m], m))


def arch_labels(jobs: Any) -> dict[str, str]:
    return labels(jobs, "model")


def arch_order(jobs: Any) -> list[str]:
    return order(jobs, "model")
