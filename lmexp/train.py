"""Hydra entry point: compose the config, run one job at the job boundary, return its objective.

    python -m lmexp.train -m model=rnn,gru,transformer optim=sgd,adam

Returns the best validation perplexity (+inf for a failed job) so a sweeper (the Optuna
search, lmexp/search/) can minimise it.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path

if __name__ == "__main__":  # python -m lmexp.train: a Ctrl-C during the imports below is quiet
    from lmexp.run.signals import stop_while_starting

    signal.signal(signal.SIGINT, stop_while_starting)

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lmexp.api import register
from lmexp.atomic import replacing
from lmexp.callbacks import (
    SWEEP_SIZE_ENV,
    end_of_launch,
    launched_sweep_dir,
    report_sweep,
    sweep_statuses,
)
from lmexp.config import conf_dir, to_train_config
from lmexp.help import complete, respond_to_completion
from lmexp.job.runner import run_guarded
from lmexp.preflight import InvalidConfig, check_command
from lmexp.run.record import Launch
from lmexp.run.rundir import HYDRA_FILES, RunDir
from lmexp.run.signals import JobInterrupted, forwarding, ignore_while_stopping
from lmexp.training.progress import job_label, labelled
from lmexp.validation import USAGE_EXIT, UsageError, usage_line
from lmexp.version import version_line

CONF_DIR = str(conf_dir())


def reproduce_command(overrides: list[str]) -> str:
    """The shell command that reruns this job alone, from Hydra's task overrides."""
    return " ".join(["python -m lmexp.train", *(shlex.quote(o) for o in overrides)])


def _label(hydra_cfg: DictConfig) -> str:
    """The bars' prefix: `[k/N] <job dir>` in a sweep, nothing for a single run."""
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return ""
    size = os.environ.get(SWEEP_SIZE_ENV)
    name = Path(hydra_cfg.runtime.output_dir).name
    return job_label(int(hydra_cfg.job.num), name, int(size) if size else None)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float:
    register()  # in a launcher's worker too, which unpickles this function, not cli()
    hydra_cfg = HydraConfig.get()
    with labelled(_label(hydra_cfg)):
        overrides = tuple(map(str, hydra_cfg.overrides.task))
        multirun = hydra_cfg.mode == RunMode.MULTIRUN
        write_hydra_files(RunDir(Path(hydra_cfg.runtime.output_dir)), cfg)
        launch = Launch(
            reproduce_command(list(overrides)),
            overrides,
            int(hydra_cfg.job.num) if multirun else None,
        )
        try:
            return run_guarded(
                lambda: to_train_config(cfg),  # every check runs here, before any data is read
                Path(hydra_cfg.runtime.output_dir),
                launch,
                reraise=not multirun,  # a sweep goes on; a single run fails
            )
        except Exception as exc:
            line = usage_line(exc)
            if line is None:
                raise  # a fault of lmexp: Hydra prints its traceback
            if multirun:  # the sweep stops here: Hydra prints a compact error in one line
                raise JobRefused(line) from None
            print(f"lmexp: {line}", file=sys.stderr)
            sys.exit(USAGE_EXIT)


class JobRefused(CompactHydraException):
    """A sweep's job refused its input (a run directory in use, a changed config): Hydra
    prints a CompactHydraException as its message alone, and `cli` exits with USAGE_EXIT.

    Created again when unpickled from a launcher's worker, so the launching process knows.
    """

    raised = False

    def __init__(self, line: str) -> None:
        super().__init__(f"lmexp: {line}")
        JobRefused.raised = True


def write_hydra_files(run: RunDir, cfg: DictConfig) -> None:
    """`.hydra/config.yaml`, `hydra.yaml` and `overrides.yaml` as Hydra writes them, at the
    job's first start only (conf/train.yaml sets `hydra.output_subdir: null`): a relaunch into
    the directory leaves them, and a read-only finished job, as they are."""
    if run.hydra_dir.exists() or run.summary.exists() or run.record.exists():
        return
    if HydraConfig.get().output_subdir is not None:
        return  # the user asked Hydra to write them (hydra.output_subdir=...): it has
    hydra_node = HydraConfig.instance().cfg
    run.hydra_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "config.yaml": cfg,
        "hydra.yaml": hydra_node,
        "overrides.yaml": hydra_node.hydra.overrides.task,
    }
    assert set(files) == set(HYDRA_FILES)
    for name, node in files.items():
        with replacing(run.hydra_dir / name, "w", encoding="utf-8") as f:
            f.write(OmegaConf.to_yaml(node))


def _interrupted(exc: KeyboardInterrupt) -> int:
    """A signal during a run (Ctrl-C, SIGTERM, SIGUSR1/2): one line and the statuses, no traceback.

    The job that was running has already recorded itself `interrupted` or `preempted` (job.py);
    returns the shell's exit code for the signal (128 + its number: 130 for SIGINT).
    """
    name = exc.signal_name if isinstance(exc, JobInterrupted) else "SIGINT"
    lines = [f"lmexp: stopped by {name}; rerun the same command with resume=true to continue"]
    sweep_dir = launched_sweep_dir()  # set in the launching process, whatever the launcher
    if sweep_dir is not None:
        end_of_launch(sweep_dir)
        statuses = sweep_statuses(sweep_dir)
        if statuses:
            lines += [f"sweep {sweep_dir}:", *report_sweep(sweep_dir, statuses)]
    print("\n".join(lines), file=sys.stderr)
    return 128 + signal.Signals[name].value


def _settled(pids: set[int]) -> bool:
    """No job of these worker processes is still recorded `running` (see signals.forwarding)."""
    sweep_dir = launched_sweep_dir()
    if sweep_dir is None:
        return True
    jobs = sweep_statuses(sweep_dir).values()
    return not any(job.get("status") == "running" and job.get("pid") in pids for job in jobs)


def _preflight(argv: list[str]) -> None:
    """Refuse, in one line and before Hydra writes anything, a command with a bad value."""
    from hydra._internal.utils import get_args_parser

    args, _ = get_args_parser().parse_known_args(argv)
    if any((args.help, args.hydra_help, args.cfg, args.info, args.shell_completion)) or any(
        (args.config_dir, args.config_name, args.config_path, args.experimental_rerun)
    ):
        return  # nothing is launched, or a config other than lmexp's is composed
    multirun = bool(args.multirun) or "hydra.mode=MULTIRUN" in args.overrides
    try:
        check_command(CONF_DIR, "train", list(args.overrides), multirun)
    except InvalidConfig as exc:
        print(f"lmexp: invalid config: {exc}", file=sys.stderr)
        sys.exit(USAGE_EXIT)
    except UsageError as exc:  # this host cannot run it: a device, a corpus, a folder
        print(f"lmexp: {usage_line(exc)}", file=sys.stderr)
        sys.exit(USAGE_EXIT)


def _complete(argv: list[str]) -> None:
    """`-sc query=<shell>` (the hook `-sc install=bash` installs): answer for choice keys.

    Hydra completes groups, keys and a key's current value; for a choice key (precision=,
    model.impl=, ...) this lists its values (lmexp/help.py) and exits. (`lmexp-train` answers
    most queries before this, from a cache: lmexp/completion.py.)
    """
    respond_to_completion(argv, complete)


def cli() -> None:
    """The `lmexp-train` command: `python -m lmexp.train` under its own name."""
    if "--version" in sys.argv[1:]:  # lmexp's, not Hydra's own `--version`
        print(version_line("lmexp-train"))
        sys.exit(0)
    register()  # before Hydra composes: `base_train` and `schema/model/*` are lmexp's
    _complete(sys.argv[1:])
    _preflight(sys.argv[1:])
    try:
        with forwarding(_settled):  # a signal to this process reaches the jobs it launched
            main()
    except SystemExit as exc:
        if exc.code == 1 and JobRefused.raised:  # Hydra's exit for the error it printed
            sys.exit(USAGE_EXIT)
        raise
    except KeyboardInterrupt as exc:
        ignore_while_stopping()  # a second signal now would cut the report of the first short
        sys.exit(_interrupted(exc))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)  # imported: Ctrl-C as usual again
    cli()
