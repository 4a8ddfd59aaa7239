"""Who is writing a job directory: one writer per directory, and dead writers told from live ones.

A SIGKILLed job (out of memory, `kill -9`, a node lost) cannot record anything: its summary
says `running` for ever. So a job records which process it is (pid, host, and the process's
start time, which a reused pid does not share), and a reader on the same host checks that
process: gone means `killed`. Imports neither torch nor Hydra (the analysis uses it).

A reader on another host (a login node, another compute node of a cluster sharing the run
directories) cannot see the process. So a running job also refreshes a heartbeat file in its
record every `HEARTBEAT_EVERY_S` seconds, from a thread of its own; a reader elsewhere calls a
`running` job whose heartbeat is older than `STALE_AFTER_S` `killed`. The bound allows four
missed beats (a stalled filesystem, clocks a minute apart) before a live job is misjudged.

A job also holds an advisory lock on `RunDir.lock` for its whole life (`filelock`, flock on
POSIX): two resumes of one run at once would both train and write every evaluation row twice.
The kernel drops the lock when the holder dies, so a killed job never blocks its resume.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from lmexp.atomic import replacing
from lmexp.run.rundir import RunDir
from lmexp.validation import UsageError

log = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 30.0  # a running job refreshes its heartbeat this often
STALE_AFTER_S = 120.0  # a reader on another host calls a silent `running` job killed after this


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


class Heartbeat:
    """Refreshes `path` every `every_s` seconds while the block runs: the job's pid, host and
    the time, replaced atomically (a reader never sees half of it). A write that fails (a full
    or vanished filesystem) is logged and the job goes on: liveness is a reader's aid."""

    def __init__(self, path: Path, every_s: float = HEARTBEAT_EVERY_S) -> None:
        self.path, self.every_s = Path(path), every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lmexp-heartbeat", daemon=True)

    def beat(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with replacing(self.path, "w", encoding="utf-8") as f:
                json.dump({**this_process(), "time": time.time()}, f)
        except OSError as exc:
            log.warning("could not refresh the heartbeat %s: %s", self.path, exc)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.beat()

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _heartbeat_alive(summary: dict[str, Any], root: Path) -> bool | None:
    """From another host: whether the job's heartbeat (same pid and host as the summary) is
    fresher than STALE_AFTER_S by this host's clock; None without one (an older job)."""
    path = RunDir(root).heartbeat
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
        age = time.time() - path.stat().st_mtime
    except (OSError, ValueError):
        return None
    if not isinstance(beat, dict):
        return None
    if (beat.get("pid"), beat.get("host")) != (summary.get("pid"), summary.get("host")):
        return None  # an earlier session's beat: this one has not written yet
    return age <= STALE_AFTER_S


def alive(summary: dict[str, Any], root: Path | None = None) -> bool | None:
    """Whether the process a summary names still runs: on its own host by its pid, elsewhere by
    the heartbeat in the job directory `root`; None where neither can tell (no pid recorded,
    no /proc, no heartbeat)."""
    pid, host = summary.get("pid"), summary.get("host")
    if not isinstance(pid, int):
        return None
    if host != socket.gethostname():
        return _heartbeat_alive(summary, Path(root)) if root is not None else None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    started, now = summary.get("pid_start"), _start_ticks(pid)
    # a different start time: the pid was reused by a later process
    return started is None or now is None or now == started


def effective_status(summary: dict[str, Any], root: Path | None = None) -> str:
    """The summary's status, except `killed` for a `running` job whose process is gone (or,
    seen from another host, whose heartbeat in job directory `root` has gone stale)."""
    status = str(summary.get("status", "unknown"))
    if status == "running" and alive(summary, root) is False:
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
