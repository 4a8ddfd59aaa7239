"""The fixed visual vocabulary shared by tables and figures: display names, order, colour, dash.

Every mapping is keyed by name, never by position, so an architecture keeps its colour and an
optimizer its line style in every figure whatever subset of jobs a figure shows.
"""

from __future__ import annotations

import zlib

ARCH_ORDER = ("rnn", "gru", "lstm", "transformer", "rnn_attn")
OPTIM_ORDER = ("sgd", "sgd_schedule", "adam")

ARCH_NAMES = {
    "rnn": "RNN",
    "gru": "GRU",
    "lstm": "LSTM",
    "transformer": "Transformer",
    "rnn_attn": "RNN+Attn",
}
OPTIM_NAMES = {"sgd": "SGD", "sgd_schedule": "SGD-LR-SC", "adam": "Adam"}

# Colour-blind-safe (seaborn "colorblind"), one per architecture.
ARCH_COLORS = {
    "rnn": "#0173b2",
    "gru": "#de8f05",
    "lstm": "#029e73",
    "transformer": "#d55e00",
    "rnn_attn": "#cc78bc",
}
_SPARE_COLORS = ("#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9")

OPTIM_DASHES = {"sgd": "-", "sgd_schedule": "--", "adam": "-."}
_SPARE_DASHES = (":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)))

# Markers tell apart jobs that share architecture and optimizer (e.g. an lr sweep); they are
# chosen by experiment number so a job keeps its marker across figures.
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")


def _stable_pick(name: str, choices: tuple) -> object:
    """A choice that depends only on `name` (crc32, not `hash`, which is salted per process)."""
    return choices[zlib.crc32(name.encode("utf-8")) % len(choices)]


def arch_color(name: str) -> str:
    """The architecture's colour; an unknown name still gets the same one every time."""
    return ARCH_COLORS.get(name) or str(_stable_pick(name, _SPARE_COLORS))


def optim_dash(name: str) -> str | tuple:
    """The optimizer's matplotlib line style."""
    return OPTIM_DASHES.get(name) or _stable_pick(name, _SPARE_DASHES)  # type: ignore[return-value]


def job_marker(experiment: int) -> str:
    """The marker of experiment number `experiment` (1-based)."""
    return MARKERS[(experiment - 1) % len(MARKERS)]


def arch_name(name: str) -> str:
    """Display name of an architecture (`transformer` -> `Transformer`)."""
    return ARCH_NAMES.get(name, str(name))


def optim_name(name: str) -> str:
    """Display name of an optimizer (`sgd_schedule` -> `SGD-LR-SC`, the seed's label)."""
    return OPTIM_NAMES.get(name, str(name))


def rank(name: str, order: tuple[str, ...]) -> tuple[int, str]:
    """Sort key: names in `order` first in that order, then any other name alphabetically."""
    return (order.index(name), "") if name in order else (len(order), str(name))
