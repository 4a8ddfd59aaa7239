"""How lmexp's console tables write a duration: the end-of-sweep table and `lmexp-status`."""

from __future__ import annotations

import math
from typing import Any


def duration(seconds: Any) -> str:
    """`4m 53s`, or `1h 02m` from an hour; `-` for a missing or non-finite value."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(value):
        return "-"
    minutes, secs = divmod(int(round(value)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
