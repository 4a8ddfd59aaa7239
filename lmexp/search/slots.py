"""Jobs launched one at a time into a fixed number of slots, each as soon as one frees.

Hydra's launchers take a batch and return when all of it has ended. To start a job the moment
another ends (a pruned one, early), each job is its own launch, made from a thread of this
process, `slots` at a time; that is sound for launchers that run each job in a process of its
own (joblib's workers, submitit's jobs). Hydra's in-process basic launcher runs them one after
another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any


def out_of_process(launcher: Any) -> bool:
    """Whether the launcher runs each job in a process of its own (joblib, submitit), so that
    several launches may be in flight at once from threads of this one."""
    # by module too: submitit's launchers are named LocalLauncher and SlurmLauncher
    kind = type(launcher)
    name = f"{kind.__module__}.{kind.__name__}".lower()
    return "joblib" in name or "submitit" in name or "slurm" in name


def slots_of(launcher: Any, cap: int | None) -> int:
    """How many jobs may run at once: `cap` (a sweeper's max_batch_size) if set, else the
    launcher's own workers (joblib's n_jobs; -1 means every core), else one."""
    if not out_of_process(launcher):
        return 1
    if cap:
        return max(1, int(cap))
    n_jobs = getattr(getattr(launcher, "joblib", None), "get", lambda *_: None)("n_jobs")
    if isinstance(n_jobs, int) and n_jobs != 0:
        return n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return 1


def launch_each(
    launcher: Any,
    launches: Iterator[tuple[Any, int, list[list[str]]]],
    slots: int,
    on_done: Callable[[Any, Any], None],
    on_abort: Callable[[list[Any]], None] = lambda keys: None,
) -> None:
    """Make each launch of `launches`, `(key, first job number, the jobs' overrides)`, alone,
    `slots` at a time; `on_done(key, returns)` sees each one's returns as it ends. `launches`
    is read lazily: a search asks for its next trial only when a slot is free. On an exception
    (a signal, a launcher error), `on_abort` gets the keys still in flight; the pool then waits
    for their launches (their jobs record themselves) and the exception propagates."""
    pending = iter(launches)
    running: dict[Any, Any] = {}
    width = max(1, slots)
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="lmexp-slot") as pool:
        try:
            more = True
            while more or running:
                while more and len(running) < width:
                    item = next(pending, None)
                    if item is None:
                        more = False
                        break
                    key, num, jobs = item
                    running[pool.submit(launcher.launch, jobs, initial_job_idx=num)] = key
                if running:
                    done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for future in done:
                        on_done(running.pop(future), future.result())
        except BaseException:
            on_abort(list(running.values()))
            raise
