"""The fixed visual vocabulary shared by tables and figures: display names, order, colour, dash.

An architecture's display name and place come from its job (`model_label`, `model_rank` in
summary.json, written from lmexp's model registry), and its colour from its place, so it keeps
its colour in every figure whatever subset of jobs a figure shows; an optimizer keeps its line
style the same way, by name.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

OPTIM_ORDER = ("sgd", "sgd_schedule", "adam")

OPTIM_NAMES = {"sgd": "SGD", "sgd_schedule": "SGD-LR-SC", "adam": "Adam"}

# Colour-blind-safe (Okabe & Ito's palette, in an order that keeps the first five far apart:
# seaborn's "colorblind" gave GRU and Transformer, ranks 1 and 3, two near-identical oranges).
# The architecture of rank k takes the k-th: RNN blue, GRU orange, LSTM green, Transformer
# reddish purple, RNN+Attn black.
ARCH_PALETTE = (
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#000000",
    "#56b4e9", "#d55e00", "#f0e442", "#999999",
)  # fmt: skip

OPTIM_DASHES = {"sgd": "-", "sgd_schedule": "--", "adam": "-."}
_SPARE_DASHES = (":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))

# Markers tell apart jobs that share architecture and optimizer (e.g. an lr sweep); they are
# chosen by experiment number so a job keeps its marker across figures.
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")


def _stable_pick(name: str, choices: tuple) -> object:
    """A choice that depends only on `name` (crc32, not `hash`, which is salted per process)."""
    return choices[zlib.crc32(name.encode("utf-8")) % len(choices)]


def arch_color(row: Any) -> str:
    """The colour of a job's architecture, by its rank; without one (a job that recorded none)
    the same colour for the same name every time."""
    rank_of = row.get("model_rank")
    if isinstance(rank_of, int | float) and math.isfinite(rank_of):
        return ARCH_PALETTE[int(rank_of) % len(ARCH_PALETTE)]
    return str(_stable_pick(str(row["model"]), ARCH_PALETTE))


def optim_dash(name: str) -> str | tuple:
    """The optimizer's matplotlib line style."""
    return OPTIM_DASHES.get(name) or _stable_pick(name, _SPARE_DASHES)  # type: ignore[return-value]


def job_marker(experiment: int) -> str:
    """The marker of experiment number `experiment` (1-based)."""
    return MARKERS[(experiment - 1) % len(MARKERS)]


def arch_labels(jobs: Any) -> dict[str, str]:
    """Architecture name -> display name (`transformer` -> `Transformer`), from the jobs."""
    return {str(r["model"]): str(r["model_label"]) for _, r in jobs.iterrows()}


def arch_order(jobs: Any) -> list[str]:
    """The jobs' architectures in registry order (unranked ones last, alphabetically)."""
    ranks = {str(r["model"]): float(r["model_rank"]) for _, r in jobs.iterrows()}
    return sorted(ranks, key=lambda m: (ranks[m], m))


def optim_name(name: str) -> str:
    """Display name of an optimizer (`sgd_schedule` -> `SGD-LR-SC`, IFT6135 A2's label)."""
    return OPTIM_NAMES.get(name, str(name))


def rank(name: str, order: tuple[str, ...]) -> tuple[int, str]:
    """Sort key: names in `order` first in that order, then any other name alphabetically."""
    return (order.index(name), "") if name in order else (len(order), str(name))
