"""The Optuna study of a search: opened or resumed from its storage, its trials kept honest.

A search keeps its study in a database (sqlite by default), so running the same command again
continues it. Three things keep that record true across interruptions:

- The sampler's seed is offset by the number of trials the study already has. A fresh study
  proposes the same trials every time (the configured seed); a resumed one draws new ones
  instead of repeating TPE's random start.
- Each trial records which process runs it (host, pid). A trial left `RUNNING` by a sweeper
  that is gone (killed, or its machine rebooted) is marked failed when a later search on the
  same host opens the study, and its values are queued to be tried again first.
- A trial whose batch was interrupted (Ctrl-C, SIGTERM) is marked failed and queued again the
  same way, before the interruption propagates.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from lmexp.validation import UsageError, first_line

log = logging.getLogger(__name__)

HOST_ATTR, PID_ATTR = "lmexp_host", "lmexp_pid"  # who runs a trial (trial user attributes)
RETRY_ATTR = "lmexp_retry_of"  # an interrupted trial queued again: the number it retries
INTERRUPTED_ATTR = "lmexp_interrupted"


class StudyStorageError(UsageError, ValueError):
    """The study's storage cannot be read as an Optuna database."""


def open_study(
    name: str,
    storage: str | None,
    direction: str,
    sampler: Callable[..., Any],
    seed: int | None,
) -> Any:
    """Create the study, or load it if `storage` already holds one of that name.

    A storage that is not a study database (corrupt, truncated, another program's file) is
    StudyStorageError, one line naming it.
    """
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    try:
        study = optuna.create_study(
            study_name=name, storage=storage, direction=direction, load_if_exists=True
        )
    except SQLAlchemyError as exc:
        cause = first_line(getattr(exc, "orig", None) or exc)
        raise StudyStorageError(
            f"hydra.sweeper.storage={storage} cannot be opened as an Optuna study ({cause}): "
            "it is corrupt, truncated or not a study database. Move it aside to start a new "
            "study, or point hydra.sweeper.storage at the right file"
        ) from None
    if study.direction.name.lower() != direction.lower():
        raise ValueError(
            f"hydra.sweeper.direction={direction} but the study {name!r} in {storage} was "
            f"created to {study.direction.name.lower()}; keep its direction or choose a new "
            "hydra.sweeper.study_name"
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


def requeue(study: Any, number: int, params: dict[str, Any], running: Any = None) -> None:
    """Mark a trial that did not finish failed, and queue its values to be tried first.

    `running` (the live `optuna.Trial`, when this process holds it) gets the mark
    `lmexp_interrupted`; the queued trial carries `lmexp_retry_of` = the failed one's number.
    """
    from optuna.trial import TrialState

    if running is not None:
        running.set_user_attr(INTERRUPTED_ATTR, True)
    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(params, user_attrs={RETRY_ATTR: number})


def recover_orphans(study: Any) -> list[int]:
    """Requeue the trials a dead sweeper on this host left `RUNNING`; their numbers."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    orphans = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get(PID_ATTR)
        if trial.user_attrs.get(HOST_ATTR) != host or not isinstance(pid, int) or is_alive(pid):
            continue  # another machine's, or a live sweeper's: not ours to judge
        requeue(study, trial.number, trial.params)
        orphans.append(trial.number)
    if orphans:
        log.warning(
            "trials %s were left running by a sweeper that died: marked failed, and their "
            "values are tried again first",
            orphans,
        )
    return orphans
