"""Where a job's wall time goes, by phase: the `timings` of `summary.json`.

A whole run is start-up (interpreter, imports, Hydra), data, building the model, training,
evaluation, checkpoint writes and the final test pass. The per-evaluation rows already split
training from validation; these totals add what happens around them, so a run that is slower
end to end than its step rate predicts says where the difference went.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_first_job = True  # start-up is the process's, so only the first job of a process reports it


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc), or None where that cannot be read."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


class Phases:
    """Wall seconds per named phase of one job session, summed over repeated entries."""

    def __init__(self) -> None:
        global _first_job
        self.seconds: dict[str, float] = {}
        self._opened = time.monotonic()
        if _first_job:
            age = process_age_s()
            if age is not None:
                self.seconds["startup_s"] = age  # interpreter + imports + config, before the job
            _first_job = False

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.add(name, time.monotonic() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def total_s(self) -> float:
        """Seconds from the start of this job's session to now: for a process's first job from
        the process's own start (interpreter, imports, Hydra), then data, vocabulary, model
        build, training, evaluation, checkpoints and the test pass; the end-to-end figure
        (COMP541's "total time"), where `wall_time_s` starts once training does."""
        return self.seconds.get("startup_s", 0.0) + time.monotonic() - self._opened

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}
