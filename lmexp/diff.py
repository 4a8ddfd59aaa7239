"""`lmexp-diff A B`: what differs between two runs, or two sweeps: config, environment, code.

For two job directories: every config key whose validated value differs, then the environment
of their last sessions (versions, hardware, determinism settings), the installed packages that
differ, and the code (commit, uncommitted changes). For two sweeps: their commands, the config
keys each sweep holds constant, and the environment and code of their first jobs. It reads only
the record files (`.lmexp/`), imports neither torch nor Hydra, and exits like diff(1): 0 when
nothing differs, 1 when something does, 2 for a path that is neither a run nor a sweep.

    lmexp-diff outputs/multirun/A/0-gru-sgd outputs/multirun/B/0-gru-sgd
    lmexp-diff outputs/multirun/A outputs/multirun/B
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lmexp.run.record import flatten, read_recorded_config
from lmexp.run.rundir import RunDir
from lmexp.run.summary import UnreadableFile, read_json_file
from lmexp.run.sweepdir import SweepDir
from lmexp.validation import USAGE_EXIT
from lmexp.version import add_version_flag

PROG = "lmexp-diff"
MISSING = "(none)"
# environment fields that differ between any two sessions and say nothing about the result
# (a scheduler's allocation names its job id; the GPU itself is compared under `gpu`)
NOT_COMPARED = ("started_at", "packages", "git", "allocation")


def _show(value: Any) -> str:
    return MISSING if value is None else str(value)


def _changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """`key: a -> b` for each key whose value differs (a key one side lacks included)."""
    return [
        f"  {key}: {_show(a.get(key))} -> {_show(b.get(key))}"
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]


def last_environment(run: RunDir) -> dict[str, Any]:
    """The environment of the run's latest session ({} for a run from before the record)."""
    try:
        sessions = read_json_file(run.environment).get("sessions") or []
    except (UnreadableFile, OSError, AttributeError):
        return {}
    return sessions[-1] if sessions else {}


def _environment_lines(a: RunDir, b: RunDir) -> list[str]:
    env_a, env_b = last_environment(a), last_environment(b)
    if not env_a or not env_b:
        side = a if not env_a else b
        return ["environment", f"  not recorded for {side.root} (a run from before lmexp kept it)"]
    lines = []
    shown = {k: v for k, v in env_a.items() if k not in NOT_COMPARED}
    other = {k: v for k, v in env_b.items() if k not in NOT_COMPARED}
    changed = _changes(flatten(shown), flatten(other))
    if changed:
        lines += ["environment", *changed]
    packages = _changes(env_a.get("packages") or {}, env_b.get("packages") or {})
    if packages:
        lines += [f"packages ({len(packages)} differ)", *packages]
    code = _changes(flatten(env_a.get("git") or {}), flatten(env_b.get("git") or {}))
    if code:
        lines += ["code", *code]
        for run, env in ((a, env_a), (b, env_b)):
            digest = (env.get("git") or {}).get("diff_sha256")
            if digest:
                lines.append(f"  uncommitted changes of {run.root.name}: {run.code_diff(digest)}")
    return lines


def diff_runs(a: Path, b: Path) -> list[str]:
    """The differences of two job directories, in sections; [] when there is none."""
    run_a, run_b = RunDir(a), RunDir(b)
    config_a = flatten(read_recorded_config(run_a) or {})
    config_b = flatten(read_recorded_config(run_b) or {})
    lines = []
    changed = _changes(config_a, config_b)
    if changed:
        lines += ["config", *changed]
    return lines + _environment_lines(run_a, run_b)


def _constant_keys(sweep: SweepDir) -> dict[str, Any]:
    """The config keys every job of the sweep has with one value, and that value."""
    configs = [flatten(read_recorded_config(job) or {}) for job in sweep.jobs()]
    if not configs:
        return {}
    first = configs[0]
    return {k: v for k, v in first.items() if all(c.get(k) == v for c in configs[1:])}


def diff_sweeps(a: Path, b: Path) -> list[str]:
    """The differences of two sweeps: command, constant config, first jobs' environment."""
    sweep_a, sweep_b = SweepDir(a), SweepDir(b)
    lines = []
    command_a, command_b = sweep_a.task_overrides() or [], sweep_b.task_overrides() or []
    if command_a != command_b:
        lines += [
            "command",
            f"  only in {a.name}: {' '.join(o for o in command_a if o not in command_b) or '-'}",
            f"  only in {b.name}: {' '.join(o for o in command_b if o not in command_a) or '-'}",
        ]
    constant_a, constant_b = _constant_keys(sweep_a), _constant_keys(sweep_b)
    shared = set(constant_a) & set(constant_b)
    changed = _changes({k: constant_a[k] for k in shared}, {k: constant_b[k] for k in shared})
    if changed:
        lines += ["config (the keys each sweep holds constant)", *changed]
    jobs_a, jobs_b = sweep_a.jobs(), sweep_b.jobs()
    if jobs_a and jobs_b:
        lines += _environment_lines(jobs_a[0], jobs_b[0])
    return lines


def _kind(path: Path) -> str | None:
    if RunDir(path).is_job():
        return "run"
    if SweepDir(path).multirun.is_file() or SweepDir(path).jobs():
        return "sweep"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="What differs between two runs, or two sweeps: config, environment "
        "(versions, hardware, determinism), packages and code. Exit 0: nothing; 1: some.",
    )
    parser.add_argument("a", type=Path, help="a job directory or a sweep directory")
    parser.add_argument("b", type=Path, help="another of the same kind")
    add_version_flag(parser)
    args = parser.parse_args(argv)
    kinds = (_kind(args.a), _kind(args.b))
    if None in kinds or kinds[0] != kinds[1]:
        bad = args.a if kinds[0] is None else args.b
        problem = (
            f"{bad} is neither a job directory nor a sweep directory"
            if None in kinds
            else f"{args.a} is a {kinds[0]} and {args.b} a {kinds[1]}"
        )
        print(f"{PROG}: error: {problem}; give two job directories or two sweeps", file=sys.stderr)
        return USAGE_EXIT
    lines = diff_runs(args.a, args.b) if kinds[0] == "run" else diff_sweeps(args.a, args.b)
    print("\n".join(lines) if lines else "no differences")
    return 1 if lines else 0


def cli() -> None:
    """The `lmexp-diff` command."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
