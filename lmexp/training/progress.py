"""The terminal progress bars: one per phase (train, validation, test), silent in logs.

A bar's description names the job and its place in the sweep (`[2/6] 1-gru-sgd validation`),
set once per job with `labelled`. The training bar shows one speed, the `tok/s` the job logs
(training tokens over training seconds, evaluation excluded), and its ETA leaves evaluation
time out too, so neither disagrees with `metrics.csv`. Log lines go above the bars
(`lines_above_bars`), never through them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

_job_label: ContextVar[str] = ContextVar("lmexp_job_label", default="")
# tqdm's own rate is left out: the postfix carries the one tok/s figure
BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
)
PHASE_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"


@contextlib.contextmanager
def labelled(label: str) -> Iterator[None]:
    """Bars made inside get `label` (the job's name and k/N) before their phase."""
    token = _job_label.set(label)
    try:
        yield
    finally:
        _job_label.reset(token)


def job_label(num: int | None, name: str, sweep_size: int | None) -> str:
    """`[k/N] name` for the k-th job (0-based `num`) of a sweep of N; `name` alone otherwise."""
    if num is None:
        return name
    return f"[{num + 1}/{sweep_size or '?'}] {name}"


def enabled(mode: str) -> bool:
    """`mode` is auto (a bar only on a terminal), on or off."""
    return sys.stderr.isatty() if mode == "auto" else mode == "on"


def make_progress(
    total: int | None, mode: str, phase: str, initial: int = 0, unit: str = "tok"
) -> tqdm:
    """A bar for one phase of the job; `initial` is work done before (a resume): not in its rate."""
    label = _job_label.get()
    return tqdm(
        total=total,
        initial=initial,
        desc=f"{label} {phase}".strip(),
        unit=unit,
        # tokens count in millions (1.2M/5.3M); batches and sequences stay whole numbers:
        # scaled, tqdm writes a count under 1000 as a float (21.0/118)
        unit_scale=unit == "tok",
        disable=not enabled(mode),
        mininterval=0.5,
        dynamic_ncols=True,
        leave=False,
        smoothing=0,  # the average since the start, like the logged figure
        bar_format=BAR_FORMAT if phase == "train" else PHASE_FORMAT,
    )


def pause(bar: tqdm, seconds: float) -> None:
    """Leave `seconds` (another phase's time, e.g. a validation pass) out of the bar's ETA."""
    if not bar.disable:
        bar.start_t += seconds


@contextlib.contextmanager
def lines_above_bars() -> Iterator[None]:
    """Route the console's log handlers through tqdm.write, so lines print above the bars."""
    with logging_redirect_tqdm():
        yield
