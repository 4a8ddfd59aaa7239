"""Hydra entry point: compose the config, validate it, run one job, return its objective.

    python -m lmexp.train -m model=rnn,gru,transformer optim=sgd,adam

The only module that imports Hydra. Returns the best validation perplexity so a sweeper (e.g.
Optuna) can minimise it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lmexp.config import register_configs, to_train_config
from lmexp.job import run

register_configs()

# conf/ sits at the repository root, next to this package (an editable install keeps it there).
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def reproduce_command(overrides: list[str]) -> str:
    """The shell command that reruns this job alone, from Hydra's task overrides."""
    return " ".join(["python -m lmexp.train", *(shlex.quote(o) for o in overrides)])


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    config = to_train_config(cfg)  # builds the dataclasses: every check runs before any work
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    return run(config, out_dir, reproduce_command(list(hydra_cfg.overrides.task)))


if __name__ == "__main__":
    main()
