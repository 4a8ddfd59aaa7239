"""Timing whole processes, lmexp's and the peer's in alternation, each in a fresh directory.

Whole processes, because a user waits for the whole process: start-up, data, model, epoch,
test and saving all count. A pair runs both commands back to back, and which goes first
alternates from pair to pair (lmexp-peer, peer-lmexp, ...): this machine's speed drifts
between minutes, and a fixed order would hand the drift to one side. Each run also records the
cores other processes kept busy meanwhile (`CpuLoad` of the speed benchmark), so a pair timed
under someone else's load is flagged rather than trusted.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peer.commands import RUN_DIR, Arch
from benchmarks.peer.phases import Phases, parse_peer, read_lmexp
from benchmarks.speed.measure import REPO, CpuLoad
from benchmarks.speed.rows import LOAD_WARNING

TOOLS = ("lmexp", "peer")
STDERR_TAIL = 3000  # characters of a failed process's stderr shown in the error


class RunError(RuntimeError):
    """A timed process failed; the message holds its command and the tail of its stderr."""


@dataclass
class Run:
    """One timed process."""

    arch: str
    tool: str  # lmexp | peer
    pair: int
    position: int  # 0: ran first in its pair, 1: second
    wall_s: float
    other_load: float | None  # cores busy with other processes' work meanwhile
    phases: Phases

    @property
    def under_load(self) -> bool:
        return self.other_load is not None and self.other_load > LOAD_WARNING

    @property
    def outside_s(self) -> float:
        """Whole minus epoch: start-up, data, model, test pass, saving."""
        return self.wall_s - self.phases.epoch_s


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    cmd: list[str], env: dict[str, str], cwd: Path, timeout_s: float
) -> tuple[float, float | None, subprocess.CompletedProcess]:
    """Wall seconds of `cmd` run to completion, the other processes' load, and its result."""
    load = CpuLoad()
    cpu0 = _children_cpu_s()
    load.start()
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    wall = time.perf_counter() - t0
    others = load.stop(also_ours=_children_cpu_s() - cpu0)
    return wall, others, proc


def check_ok(name: str, cmd: list[str], proc: subprocess.CompletedProcess) -> None:
    """Raise `RunError` with the stderr tail if `proc` failed."""
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "")[-STDERR_TAIL:]
        raise RunError(f"{name} exited {proc.returncode}: {' '.join(cmd)}\n{tail}")


@dataclass(frozen=True)
class Plan:
    """What every run of one benchmark shares: how to build each command, and where."""

    peer: Callable[[Arch, Path], list[str]]  # (arch, run folder) -> the peer's command
    lmexp: Callable[[Arch, Path], list[str]]  # (arch, run folder) -> lmexp's command
    env: dict[str, str]
    timeout_s: float = 3600.0


def run_one(plan: Plan, arch: Arch, tool: str, pair: int, position: int) -> Run:
    """One process of `tool` in a fresh temporary folder, timed and then read."""
    with tempfile.TemporaryDirectory(prefix=f"peer-bench-{arch.name}-{tool}-") as tmp:
        folder = Path(tmp)
        cmd = plan.lmexp(arch, folder) if tool == "lmexp" else plan.peer(arch, folder)
        cwd = REPO if tool == "lmexp" else folder  # lmexp from the repo root, as users run it
        try:
            wall, others, proc = timed(cmd, plan.env, cwd, plan.timeout_s)
        except subprocess.TimeoutExpired as err:
            raise RunError(
                f"{tool} ({arch.name}) ran past {plan.timeout_s:g} s: {' '.join(cmd)}; "
                "raise --timeout or lower --batches"
            ) from err
        check_ok(f"{tool} ({arch.name})", cmd, proc)
        try:
            phases = read_lmexp(folder / RUN_DIR) if tool == "lmexp" else parse_peer(proc.stdout)
        except ValueError as err:
            raise RunError(f"{tool} ({arch.name}): {err}\n{proc.stderr[-STDERR_TAIL:]}") from err
    return Run(arch.name, tool, pair, position, wall, others, phases)


def order(pair: int) -> tuple[str, str]:
    """Which tool goes first in `pair`: lmexp in even pairs, the peer in odd ones."""
    return TOOLS if pair % 2 == 0 else TOOLS[::-1]


def measure(
    plan: Plan, arch: Arch, pairs: int, report: Callable[[Run], None] = lambda run: None
) -> list[Run]:
    """`pairs` pairs of runs of `arch`, alternating which tool goes first."""
    runs = []
    for pair in range(pairs):
        for position, tool in enumerate(order(pair)):
            runs.append(run_one(plan, arch, tool, pair, position))
            report(runs[-1])
    return runs


def child_env(threads: int | None) -> dict[str, str]:
    """This environment, with OMP_NUM_THREADS=threads when given (both programs obey it)."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env
