"""The terminal progress bar: tokens/s and ETA on a TTY, silent in logs and batch jobs."""

from __future__ import annotations

import sys

from tqdm import tqdm


def make_progress(total: int | None, mode: str, desc: str) -> tqdm:
    """A tqdm bar over training tokens (its rate is tokens/s); `mode` is auto (only on a
    terminal), on or off."""
    disable = not sys.stderr.isatty() if mode == "auto" else mode == "off"
    return tqdm(
        total=total,
        desc=desc,
        unit="tok",
        unit_scale=True,
        disable=disable,
        mininterval=0.5,
        dynamic_ncols=True,
        leave=False,
    )
