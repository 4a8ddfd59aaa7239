"""lmexp's sweepers for Hydra: its grid (the default, hydra/sweeper=lmexp_grid) and its Optuna
search (`-m sweep=optuna`, hydra/sweeper=lmexp_optuna).

Hydra only instantiates sweepers that live in the `hydra_plugins` namespace; these classes are
the thin shells Hydra needs: the grid is Hydra's basic sweeper with the seed axis of `seeds=K`
(`lmexp.search.repeats`), the search is `lmexp.search.sweep.run_search`. Hydra imports every
`hydra_plugins` module at start-up, so this one imports nothing heavy (no Optuna).
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


class GridSweeper(Sweeper):
    """Hydra's basic sweeper (the grid of the command's sweep overrides, in Hydra's order and
    numbering), whose cells each run `seeds` times: `seeds=3` adds the axis `seed=s,s+1,s+2`.
    With `prune=`, its jobs run in a seeded shuffled order (lmexp.search.grid).

    It holds a basic sweeper rather than deriving from it: Hydra's plugin scan re-executes the
    module that defines BasicSweeper, and a subclass of the class it replaced would fail its
    `super()` call (the scan does not see this module under an editable install)."""

    def __init__(self, max_batch_size: int | None = None, params: Any = None) -> None:
        self.max_batch_size, self.params = max_batch_size, params
        self.config: DictConfig | None = None
        self.basic: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        self.config = config
        self.basic = BasicSweeper(max_batch_size=self.max_batch_size, params=self.params)
        self.basic.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from lmexp.search.grid import sweep_shuffled
        from lmexp.search.naming import name_jobs_by_what_varies
        from lmexp.search.repeats import seed_axis

        assert self.config is not None and self.basic is not None
        seeds = int(self.config.get("seeds") or 1)
        grid = seed_axis(list(arguments), int(self.config.seed), seeds)
        name_jobs_by_what_varies(self.config, grid)  # 0-rnn-adam-seed=1, not 0-rnn-adam
        if str((self.config.get("prune") or {}).get("name", "none")) == "none":
            return self.basic.sweep(grid)
        # early stopping judges a job against those before it: a seeded random order
        return sweep_shuffled(self.basic, grid, int(self.config.seed))
