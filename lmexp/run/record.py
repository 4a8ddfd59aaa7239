"""The record of a job's settings, written once, so no later launch can relabel its results.

Hydra rewrites `<job>/.hydra/config.yaml`, `hydra.yaml` and `overrides.yaml` before the job
function runs, on every launch into that directory, including a launch lmexp then refuses
(`JobDirInUse`) or skips (a finished job under `resume=true`). Without a copy, the report would
show the old results under the new command's settings: a GRU/Adam run relabelled Transformer,
SGD. So a job's first start copies Hydra's three files to `RunDir.record` together with the
validated config (`config.json`), and every later launch puts the copies back, byte for byte,
before it does anything else. It also compares its own config with the recorded one: only
budgets (with `resume=force`) and settings of where and how fast it runs may change.

The sweep directory's `multirun.yaml` gets the same care: Hydra's basic sweeper rewrites it at
every launch, so a relaunch keeps the first launch's copy (`hold_sweep_record`) and, when it
ends, files its own under `.lmexp/relaunches/` and puts the first back (`restore_sweep_record`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lmexp.atomic import replacing
from lmexp.run import keys
from lmexp.run.rundir import HYDRA_FILES, RunDir
from lmexp.run.summary import UnreadableFile, read_json_file
from lmexp.run.sweepdir import SweepDir
from lmexp.validation import UsageError

log = logging.getLogger(__name__)


class ConfigChanged(UsageError, ValueError):
    """A relaunch into a job directory asks for settings other than the recorded ones."""


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a.b": value} for a nested dict {"a": {"b": value}} (tuples as lists)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = list(value) if isinstance(value, tuple) else value
    return flat


def config_changes(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple]:
    """{dotted key: (recorded, current)} for every key whose value differs, execution keys
    (where and how fast the job runs: run/keys.py) excepted; a key only one side has counts as
    a change from or to None."""
    old, new = flatten(recorded), flatten(current)
    return {
        key: (old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if keys.role(key) != keys.EXECUTION and old.get(key) != new.get(key)
    }


def cell_of(config: dict[str, Any]) -> str:
    """The cell a job belongs to, from its validated config: a digest of the keys that tell
    cells apart (`keys.in_cell`: not the seed, not where or how fast it runs). Jobs differing
    only in their seed share it, whatever their directories are called."""
    return _digest(config, keys.in_cell)


def pairing_of(config: dict[str, Any]) -> str:
    """What a seed draws in this job (`keys.draws_with_seed`), as a digest: two cells with the
    same one start from the same weights and batches under each seed, so they pair by seed."""
    return _digest(config, keys.draws_with_seed)


def _digest(config: dict[str, Any], kept: Any) -> str:
    chosen = {k: v for k, v in sorted(flatten(config).items()) if kept(k)}
    text = json.dumps(chosen, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_relaunch(recorded: dict[str, Any] | None, current: dict[str, Any], force: bool) -> dict:
    """Refuse a relaunch whose settings differ from the record; return the budget changes.

    With `force`, budgets may differ (returned, so the summary can say so); nothing else may.
    """
    if recorded is None:
        return {}
    changes = config_changes(recorded, current)
    budgets = {k: v for k, v in changes.items() if keys.role(k) == keys.BUDGET}
    others = {k: v for k, v in changes.items() if k not in budgets}
    if others or (budgets and not force):
        listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changes.items())
        hint = (
            "resume=force continues it with new budgets (only trainer.max_*)"
            if budgets and not others
            else "write the new run elsewhere: hydra.run.dir=... / hydra.sweep.dir=..."
        )
        raise ConfigChanged(
            f"this job directory's run was launched with other settings ({listed}); "
            f"relaunch with the recorded ones to resume it, or {hint}"
        )
    return budgets


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with replacing(dst) as f:
        f.write(src.read_bytes())


@dataclass(frozen=True)
class Launch:
    """How a job was started: what reruns it, what it was given, where it sits in its sweep.

    Recorded once, beside the config, so every reader (the report, the end-of-sweep table)
    takes a job's number and overrides from it rather than from its directory's name.
    """

    command: str  # the shell command that reruns this job alone
    overrides: tuple[str, ...] = ()  # the command line's overrides of this job
    job_num: int | None = None  # its number in its sweep (Hydra's job.num); None: a single run


def _write_json(path: Path, data: Any) -> None:
    with replacing(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, default=str)
        f.write("\n")


def save_record(run: RunDir, config: dict[str, Any], launch: Launch) -> bool:
    """At a job's first start: copy Hydra's files, write the launch, then `config` (whose file
    marks a complete record). False if a record exists."""
    if run.recorded_config.exists():
        return False
    run.record.mkdir(parents=True, exist_ok=True)
    for name in HYDRA_FILES:
        if (run.hydra_dir / name).is_file():
            _copy_atomic(run.hydra_dir / name, run.recorded_hydra(name))
    _write_json(run.recorded_launch, {**asdict(launch), "overrides": list(launch.overrides)})
    _write_json(run.recorded_config, config)
    return True


def restore_hydra(run: RunDir) -> bool:
    """Put the recorded copies of Hydra's files back, byte for byte; False without a record."""
    restored = False
    for name in HYDRA_FILES:
        saved = run.recorded_hydra(name)
        if saved.is_file():
            current = run.hydra_dir / name
            if not current.is_file() or current.read_bytes() != saved.read_bytes():
                _copy_atomic(saved, current)
            restored = True
    return restored


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = read_json_file(path)
    except UnreadableFile:  # missing, or not what lmexp wrote: no record
        return None
    return data if isinstance(data, dict) else None


def read_recorded_config(run: RunDir) -> dict[str, Any] | None:
    """The config the job was first launched with, or None (a run from before the record)."""
    return _read_json(run.recorded_config)


def read_launch(run: RunDir) -> Launch | None:
    """How the job was first launched, or None (a run from before lmexp recorded it)."""
    data = _read_json(run.recorded_launch)
    if data is None or not isinstance(data.get("command"), str):
        return None
    num = data.get("job_num")
    overrides = data.get("overrides")
    return Launch(
        data["command"],
        tuple(map(str, overrides)) if isinstance(overrides, list) else (),
        num if isinstance(num, int) and not isinstance(num, bool) else None,
    )


def next_job_number(sweep: SweepDir) -> int:
    """The number a new job of `sweep` takes: one more than any of its jobs has (by its record;
    a job without one counts by position), so a relaunch numbers on instead of reusing a
    finished job's directory."""
    jobs = sweep.jobs()
    numbers = [launch.job_num for job in jobs if (launch := read_launch(job)) is not None]
    return max([n for n in numbers if n is not None] + [len(jobs) - 1]) + 1


def take_job_numbers(sweep: SweepDir, count: int, start: int = 0) -> int:
    """Take `count` consecutive job numbers of `sweep` for this process; the first of them.

    Several search processes may launch into one sweep directory at once (workers of one
    study given the same hydra.sweep.dir). Each number is taken by creating
    `.lmexp/job_numbers/<n>/`: mkdir is atomic, on NFS too, so no two processes get one number
    and no job lands in another's directory. Numbers start at `start` (pass
    `next_job_number(sweep)`: past the jobs already there); one another process took is
    skipped, and a block broken by one is left as a gap.
    """
    sweep.job_numbers.mkdir(parents=True, exist_ok=True)
    first = start
    while True:
        for offset in range(count):
            try:
                (sweep.job_numbers / str(first + offset)).mkdir()
            except FileExistsError:
                first += offset + 1
                break
        else:
            return first


def hold_sweep_record(sweep: SweepDir) -> None:
    """At a sweep's launch, before Hydra writes `multirun.yaml`: keep the first launch's copy."""
    current, first = sweep.multirun, sweep.recorded_multirun
    if current.is_file() and not first.exists():
        _copy_atomic(current, first)


def restore_sweep_record(sweep: SweepDir, stamp: str) -> Path | None:
    """At a relaunch's end: file its `multirun.yaml` as `.lmexp/relaunches/<stamp>.yaml` and
    put the first launch's back. Returns where the relaunch's went (None: a first launch)."""
    current, first = sweep.multirun, sweep.recorded_multirun
    if not first.is_file() or not current.is_file():
        return None
    if current.read_bytes() == first.read_bytes():
        return None
    filed = sweep.relaunch(stamp)
    _copy_atomic(current, filed)
    _copy_atomic(first, current)
    return filed
