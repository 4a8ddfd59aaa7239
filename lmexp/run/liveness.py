"""Who is writing a job directory: one writer per directory, and dead writers told from live ones.

A SIGKILLed job (out of memory, `kill -9`, a node lost) cannot record anything: its summary
says `running` for ever. So a job records which process it is (pid, host, and the process's
start time, which a reused pid does not share), and a reader on the same host checks that
process: gone means `killed`. Imports neither torch nor Hydra (the analysis uses it).

A job also holds an advisory lock on `RunDir.lock` for its whole life (`filelock`, flock on
POSIX): two resumes of one run at once would both train and write every evaluation row twice.
The kernel drops the lock when the holder dies, so a killed job never blocks its resume.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from lmexp.run.rundir import RunDir
from lmexp.validation import UsageError


class JobDirLocked(UsageError, RuntimeError):
    """Another live process is writing this job directory."""


def _start_ticks(pid: int) -> int | None:
    """The start time of process `pid` in clock ticks since boot (Linux), or None."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def this_process() -> dict[str, Any]:
    """What a summary records so that a reader can tell whether the job is still alive."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "pid_start": _start_ticks(os.getpid()),
    }


def alive(summary: dict[str, Any]) -> bool | None:
    """Whether the process a summary names still runs; None where that cannot be checked
    (another host, no pid recorded, no /proc)."""
    pid, host = summary.get("pid"), summary.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    started, now = summary.get("pid_start"), _start_ticks(pid)
    # a different start time: the pid was reused by a later process
    return started is None or now is None or now == started


def effective_status(summary: dict[str, Any]) -> str:
    """The summary's status, except `killed` for a `running` job whose process is gone."""
    status = str(summary.get("status", "unknown"))
    if status == "running" and alive(summary) is False:
        return "killed"
    return status


def _holder(run: RunDir) -> str:
    try:
        summary = json.loads(run.summary.read_text(encoding="utf-8"))
        return f"pid {summary.get('pid')} on {summary.get('host')}"
    except (OSError, ValueError, AttributeError):
        return "another process"


@contextmanager
def writer_lock(run: RunDir) -> Iterator[None]:
    """Hold the job directory's lock for the block; refuse at once if someone holds it.

    A directory this process cannot write (read-only, another user's) takes no lock: nothing
    in it can change, and what the block then tries to write fails on its own, naming the
    file, unless the block only reads (a finished job skipped under `resume=true`).
    """
    if run.root.is_dir() and not os.access(run.root, os.W_OK):
        yield
        return
    run.record.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run.lock), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise JobDirLocked(
            f"{run.root} is being written by {_holder(run)} (lock {run.lock}); wait for it to "
            "end, or stop it, before resuming this run"
        ) from None
    try:
        yield
    finally:
        lock.release()
