"""lmexp's packed launcher for Hydra (`launcher=packed`, hydra/launcher=lmexp_packed).

Hydra only instantiates launchers that live in the `hydra_plugins` namespace; this is the thin
shell it needs around `lmexp.pack.launcher`. Hydra imports every `hydra_plugins` module at
start-up, so this one imports nothing heavy (no torch) until a launch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class PackedLauncher(Launcher):
    """Trains a batch's same-shape jobs up to `pack` at a time as one model, in this process."""

    def __init__(self, pack: int = 4) -> None:
        self.pack = int(pack)
        self.run: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from lmexp.pack.launcher import PackedRun

        self.run = PackedRun(hydra_context, task_function, config)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.run is not None
        return self.run.launch(job_overrides, initial_job_idx, self.pack)
