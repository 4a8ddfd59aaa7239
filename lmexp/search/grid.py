"""A pruned grid's launch order: every job of Hydra's grid, numbered as Hydra numbers it, run
in a seeded shuffled order, each started as soon as a slot frees.

An asynchronous early-stopping rule judges a job against those that reached its evaluation
before it, so the order matters: a grid written from its worst cells to its best (learning
rates in increasing order) lets every job look best so far, and nothing is stopped. Asynchronous
successive halving assumes configurations in random order (random search); lmexp's grid gives
it that, from the sweep's seed. Job numbers and directories stay Hydra's.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from lmexp.search.slots import launch_each, slots_of


def sweep_shuffled(basic: Any, arguments: list[str], seed: int) -> list[list[Any]]:
    """What Hydra's basic sweeper `basic` does with `arguments` (all of its grid, each job
    checked before it is launched, `multirun.yaml` written), in the order `seed` shuffles."""
    parser = OverridesParser.create(config_loader=basic.hydra_context.config_loader)
    overrides = parser.parse_overrides([*basic._parse_config(), *arguments])
    (jobs,) = basic.split_arguments(overrides, None)
    sweep_dir = Path(str(basic.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(basic.config, sweep_dir / "multirun.yaml")
    order = list(range(len(jobs)))
    random.Random(seed).shuffle(order)
    results: list[Any] = [None] * len(jobs)

    def launches() -> Any:
        for num in order:
            basic.validate_batch_is_legal([jobs[num]])
            yield num, num, [jobs[num]]

    def done(num: int, returns: Any) -> None:
        (ret,) = returns
        _ = ret.return_value  # as Hydra's basic sweeper: a job that raised stops the sweep
        results[num] = ret

    launch_each(basic.launcher, launches(), slots_of(basic.launcher, basic.max_batch_size), done)
    return [results]
