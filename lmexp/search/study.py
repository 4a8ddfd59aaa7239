"""The Optuna study of a search: opened or resumed from its storage, its trials kept honest.

A search keeps its study in a store (lmexp/search/storage.py: sqlite by default, a journal
file under SLURM, or a database server), so running the same command again continues it, and
several search processes (on several hosts) can share it. What keeps that record true across
interruptions and concurrent workers:

- The sampler's seed is offset by the number of trials the study already has. A fresh study
  proposes the same trials every time (the configured seed); a resumed one draws new ones
  instead of repeating TPE's random start.
- Each trial records which process runs it (host, pid) and when that process last said it was
  alive (`lmexp_alive_at`, refreshed every HEARTBEAT_EVERY_S by `TrialHeartbeat`). Before each
  trial it asks for, a search fails the `RUNNING` trials whose process is gone: on this host,
  a pid that no longer exists; on any host, no heartbeat for STALE_AFTER_S (the same bounds
  as a job's liveness, lmexp/run/liveness.py). Their values are queued to be tried again
  first. Two searches that find the same orphan race to fail it; only the one whose change
  the store accepts queues the retry, so it is retried once.
- A trial whose batch was interrupted (Ctrl-C, SIGTERM) is marked failed and queued again the
  same way, before the interruption propagates.
- `hydra.sweeper.max_trials` bounds the study, not the invocation: a search stops asking once
  the study's complete, pruned and running trials reach it, so any number of workers share
  one budget. A trial asked for in the same moment as another's last one finds itself past the
  budget (more trials ahead of it than the budget allows) and is filed failed, marked
  `lmexp_over_budget`, without running.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from lmexp.run.liveness import HEARTBEAT_EVERY_S, STALE_AFTER_S
from lmexp.search.storage import (
    StudyStorageError,
    journal_path,
    not_a_journal,
    open_storage,
    shown,
)
from lmexp.validation import first_line

log = logging.getLogger(__name__)

HOST_ATTR, PID_ATTR = "lmexp_host", "lmexp_pid"  # who runs a trial (trial user attributes)
ALIVE_ATTR = "lmexp_alive_at"  # when the process running the trial last said so (unix time)
RETRY_ATTR = "lmexp_retry_of"  # an interrupted trial queued again: the number it retries
INTERRUPTED_ATTR = "lmexp_interrupted"
OVER_BUDGET_ATTR = "lmexp_over_budget"  # asked for past max_trials: failed without running


def open_study(
    name: str,
    storage: str | None,
    direction: str,
    sampler: Callable[..., Any],
    seed: int | None,
) -> Any:
    """Create the study, or load it if `storage` already holds one of that name.

    A storage that cannot be opened (corrupt, truncated, another program's file, a server
    down, a driver missing) is StudyStorageError, one line naming it.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    store = open_storage(storage)
    try:
        study = optuna.create_study(
            study_name=name, storage=store, direction=direction, load_if_exists=True
        )
    except (ValueError, KeyError) as exc:  # a journal's lines are read here, not when opened
        if journal_path(storage or "") is None:
            raise
        raise not_a_journal(str(storage), exc) from None
    except SQLAlchemyError as exc:
        cause = first_line(getattr(exc, "orig", None) or exc)
        raise StudyStorageError(
            f"hydra.sweeper.storage={shown(storage)} cannot be opened as an Optuna study "
            f"({cause}): "
            "it is corrupt, truncated or not a study database. Move it aside to start a new "
            "study, or point hydra.sweeper.storage at the right file"
        ) from None
    if study.direction.name.lower() != direction.lower():
        raise ValueError(
            f"hydra.sweeper.direction={direction} but the study {name!r} in {shown(storage)} "
            f"was created to {study.direction.name.lower()}; keep its direction or choose a "
            "new hydra.sweeper.study_name"
        )
    offset = len(study.trials)
    study.sampler = sampler(seed=None if seed is None else seed + offset)
    return study


def is_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def claim(study: Any, trial: Any) -> None:
    """Record that this process runs the trial (so a later search can tell if it died)."""
    trial.set_user_attr(HOST_ATTR, socket.gethostname())
    trial.set_user_attr(PID_ATTR, os.getpid())
    trial.set_user_attr(ALIVE_ATTR, time.time())


def finished_meanwhile(exc: BaseException) -> bool:
    """Whether the store refused a change because the trial is already finished (another
    search failed it first): Optuna's UpdateFinishedTrialError, or `tell`'s "Cannot tell a
    <state> trial"."""
    from optuna.exceptions import UpdateFinishedTrialError

    if isinstance(exc, UpdateFinishedTrialError):
        return True
    return isinstance(exc, ValueError) and str(exc).startswith("Cannot tell")


def requeue(study: Any, number: int, params: dict[str, Any], running: Any = None) -> bool:
    """Mark a trial that did not finish failed, and queue its values to be tried first.

    `running` (the live `optuna.Trial`, when this process holds it) gets the mark
    `lmexp_interrupted`; the queued trial carries `lmexp_retry_of` = the failed one's number.
    False (nothing queued) when the trial was already finished, by this process or another
    that got there first.
    """
    from optuna.trial import TrialState

    try:
        if running is not None:
            running.set_user_attr(INTERRUPTED_ATTR, True)
        study.tell(number, state=TrialState.FAIL)
    except (ValueError, RuntimeError) as exc:
        if not finished_meanwhile(exc):
            raise
        return False
    study.enqueue_trial(params, user_attrs={RETRY_ATTR: number})
    return True


def _orphaned(trial: Any, host: str, now: float) -> bool:
    """Whether the process that runs a `RUNNING` trial is gone (see the module's docstring)."""
    attrs = trial.user_attrs
    pid, alive_at = attrs.get(PID_ATTR), attrs.get(ALIVE_ATTR)
    if attrs.get(HOST_ATTR) == host and isinstance(pid, int) and not is_alive(pid):
        return True
    return isinstance(alive_at, int | float) and now - alive_at > STALE_AFTER_S


def recover_orphans(study: Any) -> list[int]:
    """Requeue the trials a dead search left `RUNNING`; the numbers of those this call did."""
    from optuna.trial import TrialState

    host, now = socket.gethostname(), time.time()
    orphans = [
        trial.number
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if _orphaned(trial, host, now) and requeue(study, trial.number, trial.params)
    ]
    if orphans:
        log.warning(
            "trials %s were left running by a search that died: marked failed, and their "
            "values are tried again first",
            orphans,
        )
    return orphans


_BUDGET_STATES = ("COMPLETE", "PRUNED", "RUNNING")  # what counts against max_trials


def budget_left(study: Any, max_trials: int | None) -> bool:
    """Whether the study may take another trial under `max_trials` (None: no bound)."""
    if max_trials is None:
        return True
    return _counted(study, before=None) < max_trials


def over_budget(study: Any, trial: Any, max_trials: int | None) -> bool:
    """Whether a trial just asked for came past the budget (another search's took the last
    place first); if so it is filed failed, `lmexp_over_budget`, and must not run."""
    from optuna.trial import TrialState

    if max_trials is None or _counted(study, before=trial.number) < max_trials:
        return False
    trial.set_user_attr(OVER_BUDGET_ATTR, True)
    study.tell(trial, state=TrialState.FAIL)
    return True


def _counted(study: Any, before: int | None) -> int:
    from optuna.trial import TrialState

    states = tuple(TrialState[name] for name in _BUDGET_STATES)
    trials = study.get_trials(deepcopy=False, states=states)
    return sum(1 for t in trials if before is None or t.number < before)


class TrialHeartbeat:
    """Refreshes `lmexp_alive_at` on the trials this process runs, every `every_s` seconds,
    from a thread of its own, so searches on other hosts can tell it is alive. A trial
    another search has meanwhile failed (it took this one for dead) is dropped."""

    def __init__(self, every_s: float = HEARTBEAT_EVERY_S) -> None:
        self.every_s = every_s
        self._trials: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lmexp-trial-heartbeat",
                                        daemon=True)  # fmt: skip

    def hold(self, trial: Any) -> None:
        with self._lock:
            self._trials[trial.number] = trial

    def release(self, trial: Any) -> None:
        with self._lock:
            self._trials.pop(trial.number, None)

    def __enter__(self) -> TrialHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> None:
        with self._lock:
            trials = list(self._trials.values())
        for trial in trials:
            try:
                trial.set_user_attr(ALIVE_ATTR, time.time())
            except Exception as exc:  # finished by another search, or the store unreachable
                log.warning("trial %d: heartbeat not recorded (%s)", trial.number, exc)
                if finished_meanwhile(exc):
                    self.release(trial)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.beat()
