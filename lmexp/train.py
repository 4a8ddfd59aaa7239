"""Hydra entry point: compose the config, run one job at the job boundary, return its objective.

    python -m lmexp.train -m model=rnn,gru,transformer optim=sgd,adam

With `lmexp/callbacks.py`, the only module that imports Hydra. Returns the best validation
perplexity (+inf for a failed job) so a sweeper (e.g. Optuna) can minimise it.
"""

from __future__ import annotations

import shlex
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lmexp.callbacks import end_of_launch, summary_lines, sweep_statuses
from lmexp.config import conf_dir, register_configs, to_train_config
from lmexp.resolvers import register_resolvers
from lmexp.run.job import run_guarded
from lmexp.run.signals import JobInterrupted

register_configs()
register_resolvers()

CONF_DIR = str(conf_dir())


def reproduce_command(overrides: list[str]) -> str:
    """The shell command that reruns this job alone, from Hydra's task overrides."""
    return " ".join(["python -m lmexp.train", *(shlex.quote(o) for o in overrides)])


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    return run_guarded(
        lambda: to_train_config(cfg),  # every check runs here, before any data is read
        Path(hydra_cfg.runtime.output_dir),
        reproduce_command(list(hydra_cfg.overrides.task)),
        reraise=hydra_cfg.mode != RunMode.MULTIRUN,  # a sweep goes on; a single run fails loudly
    )


def _interrupted(exc: KeyboardInterrupt) -> int:
    """A signal during a run (Ctrl-C, SIGTERM, SIGUSR1/2): one line and the statuses, no traceback.

    The job that was running has already recorded itself `interrupted` or `preempted` (job.py);
    returns the shell's exit code for the signal (128 + its number: 130 for SIGINT).
    """
    name = exc.signal_name if isinstance(exc, JobInterrupted) else "SIGINT"
    lines = [f"lmexp: stopped by {name}; rerun the same command with resume=true to continue"]
    try:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            sweep_dir = Path(hydra_cfg.sweep.dir)
            end_of_launch(sweep_dir)
            statuses = sweep_statuses(sweep_dir)
            if statuses:
                lines += [f"sweep {sweep_dir}:", *summary_lines(statuses)]
    except ValueError:  # no Hydra config yet: stopped while composing
        pass
    print("\n".join(lines), file=sys.stderr)
    return 128 + signal.Signals[name].value


def cli() -> None:
    """The `lmexp-train` command: `python -m lmexp.train` under its own name."""
    try:
        main()
    except KeyboardInterrupt as exc:
        sys.exit(_interrupted(exc))


if __name__ == "__main__":
    cli()
