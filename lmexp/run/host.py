"""How busy the machine was while a job ran, so a reader of its wall-clock times can tell the
machine's load from the model's speed (analysis.figures notes it under wall-clock panels).

The 1-minute load average counts runnable threads, this job's own included: on a machine of
C cores, a value well above C means the job's threads waited for a core. Imports neither torch
nor Hydra.
"""

from __future__ import annotations

import os
from typing import Any


def load_average() -> float | None:
    """The host's 1-minute load average; None where the OS keeps none (Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def at_start() -> dict[str, Any]:
    """What the summary records about the machine when the job starts."""
    return {"cpu_count": os.cpu_count(), "load_1m_start": load_average()}


def at_end() -> dict[str, Any]:
    """What the summary records about the machine when the job ends, however it ends."""
    return {"load_1m_end": load_average()}
