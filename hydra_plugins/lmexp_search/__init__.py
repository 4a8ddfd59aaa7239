"""lmexp's Optuna search as a Hydra sweeper: `-m sweep=optuna` (hydra/sweeper=lmexp_optuna).

Hydra only instantiates sweepers that live in the `hydra_plugins` namespace; this class is the
thin shell Hydra needs, and the search itself is `lmexp.search.sweep.run_search`. Hydra imports
every `hydra_plugins` module at start-up, so this one imports nothing heavy (no Optuna).
"""

from __future__ import annotations

import sys
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class OptunaSearch(Sweeper):
    """Ask Optuna for `n_jobs` trials at a time and launch them through Hydra's launcher."""

    def __init__(self, **settings: Any) -> None:
        self.settings = OmegaConf.create(settings)
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from lmexp.search.study import StudyStorageError
        from lmexp.search.sweep import run_search

        assert self.config is not None and self.launcher is not None
        try:
            return run_search(
                self.settings, self.config, self.launcher, arguments, self.validate_batch_is_legal
            )
        except StudyStorageError as exc:  # before any trial: one line, a usage error's code
            print(f"lmexp: {exc}", file=sys.stderr)
            sys.exit(2)
