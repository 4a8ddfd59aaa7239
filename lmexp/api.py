"""The Python entry points: compose a config, train it, without the command line.

    import lmexp

    overrides = ["model=gru", "optim=adam", "trainer.max_epochs=1"]
    cfg = lmexp.compose(overrides)            # a validated TrainConfig; bad values raise here
    summary = lmexp.fit(cfg, "runs/gru_adam", overrides=overrides)
    run = lmexp.load("runs/gru_adam")         # scoring, generation (lmexp/inspect/scoring.py)

`fit` writes the same run directory as `lmexp-train` (with `.hydra/config.yaml`, so the report
reads it like any other) and returns its summary. Registration with Hydra is explicit:
`register()` (both calls do it; so does `lmexp-train`).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from lmexp.config import TrainConfig


def register() -> None:
    """Put lmexp's schemas in Hydra's ConfigStore, its resolvers in OmegaConf and its sweeper
    in Hydra's plugins; idempotent.

    Hydra finds plugins by listing the `hydra_plugins` namespace, which a PEP 660 editable
    install (`pip install -e .`) hides from it (hydra#3252), so the sweeper is named here too.
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.lmexp_search import GridSweeper, OptunaSearch
    from lmexp.config import register_configs
    from lmexp.resolvers import register_resolvers

    register_configs()
    register_resolvers()
    Plugins.instance().register(OptunaSearch)
    Plugins.instance().register(GridSweeper)


def job_config(composed: Any) -> TrainConfig:
    """The validated config of a job from Hydra's composition (with its `hydra` node), as
    inside a job: launcher presets interpolate HydraConfig, so it is set first."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from lmexp.config import to_train_config

    HydraConfig.instance().set_config(composed)
    task = composed.copy()
    with open_dict(task):
        del task["hydra"]
    return to_train_config(task)


def compose(overrides: list[str] | None = None) -> TrainConfig:
    """The validated config `lmexp-train <overrides>` would run (one job; no sweep syntax).

    Raises ValueError (lmexp's checks) or Hydra's errors (an unknown group, key or type).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from lmexp.config import conf_dir

    register()
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
        cfg = hydra_compose("train", overrides=list(overrides or []), return_hydra_config=True)
        return job_config(cfg)


def fit(
    cfg: TrainConfig, out_dir: str | Path, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Train `cfg` into `out_dir` (created) and return its `summary.json` fields.

    `overrides`, if given, are recorded as the job's overrides and its rerun command. The
    same rules as a run from the command line: a directory holding a run is refused unless
    `cfg.resume` (then an unfinished run continues), and a failure is recorded, then raised.
    """
    from lmexp.job.runner import run
    from lmexp.run.record import Launch
    from lmexp.run.resume import read_summary

    register()
    out_dir = Path(out_dir)
    listed = tuple(overrides or ())
    command = " ".join(
        ["python -m lmexp.train", *map(shlex.quote, listed), f"hydra.run.dir={out_dir}"]
    )
    # no Hydra here, so no .hydra/: the record (.lmexp/) is what every reader takes
    run(cfg, out_dir, Launch(command, listed))
    summary = read_summary(out_dir)
    assert summary is not None
    return summary
