"""Where a search keeps its study, and what lets several searches share one: the stores, the
job numbers of a shared sweep directory, the study-wide budget and the trials' heartbeats.

Real stores (sqlite, Optuna's journal file); the PostgreSQL server is started by
tests/integration/test_shared_study.py.
"""

from __future__ import annotations

import multiprocessing
import socket
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from lmexp.run.record import take_job_numbers
from lmexp.run.sweepdir import SweepDir
from lmexp.search.storage import StudyStorageError, open_storage, shown
from lmexp.search.study import (
    ALIVE_ATTR,
    HOST_ATTR,
    OVER_BUDGET_ATTR,
    PID_ATTR,
    RETRY_ATTR,
    TrialHeartbeat,
    budget_left,
    claim,
    open_study,
    over_budget,
    recover_orphans,
    requeue,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {"x": FloatDistribution(0.0, 1.0)}


def _tpe(seed):
    return optuna.samplers.TPESampler(seed=seed)


def test_a_journal_study_resumes_from_its_file(tmp_path) -> None:
    storage = f"journal://{tmp_path}/deep/study.journal"  # its folder is created
    study = open_study("s", storage, "minimize", _tpe, seed=1)
    trial = study.ask(SPACE)
    study.tell(trial, 0.5)
    again = open_study("s", storage, "minimize", _tpe, seed=1)
    assert [t.value for t in again.trials] == [0.5]
    assert (tmp_path / "deep" / "study.journal").is_file()


def test_a_file_that_is_not_a_journal_is_one_line_naming_it(tmp_path) -> None:
    path = tmp_path / "study.journal"
    path.write_text("this is not an Optuna journal\n")
    with pytest.raises(StudyStorageError, match="cannot be read as an Optuna journal") as caught:
        open_study("s", f"journal://{path}", "minimize", _tpe, seed=1)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("storage", "says"),
    [
        ("outputs/study.db", "is not a storage URL"),
        ("mysql+pymysql://me:secret@localhost/db", "needs the database driver 'pymysql'"),
        ("nosuchdialect://localhost/db", "is not a database URL SQLAlchemy can read"),
        # nothing listens on port 1: the server is down
        ("postgresql://me:secret@127.0.0.1:1/db", "check that the server is up"),
    ],
)
def test_a_store_that_cannot_be_opened_is_one_line_without_its_password(storage, says) -> None:
    with pytest.raises(StudyStorageError, match=says) as caught:
        open_storage(storage)
    message = str(caught.value)
    assert "\n" not in message and "secret" not in message


def test_a_url_is_shown_without_its_password() -> None:
    assert shown("postgresql://me:secret@db:5432/s") == "postgresql://me:***@db:5432/s"
    assert shown("journal:///a/b.journal") == "journal:///a/b.journal"
    assert shown(None) == "in memory"


def test_a_trial_silent_longer_than_the_bound_is_recovered_on_any_host(tmp_path) -> None:
    study = open_study("s", f"journal://{tmp_path}/s.journal", "minimize", _tpe, seed=1)
    stale, fresh, old = study.ask(SPACE), study.ask(SPACE), study.ask(SPACE)
    for trial, silent_s in ((stale, 200), (fresh, 10)):
        trial.set_user_attr(HOST_ATTR, "another-machine")  # its pid cannot be checked here
        trial.set_user_attr(PID_ATTR, 1)
        trial.set_user_attr(ALIVE_ATTR, time.time() - silent_s)
    old.set_user_attr(HOST_ATTR, "another-machine")  # an older search: no heartbeat, left alone
    assert recover_orphans(study) == [stale.number]
    states = {t.number: t.state for t in study.trials}
    assert states[stale.number] == TrialState.FAIL
    assert states[fresh.number] == states[old.number] == TrialState.RUNNING
    retry = study.get_trials(states=(TrialState.WAITING,))
    assert [t.user_attrs[RETRY_ATTR] for t in retry] == [stale.number]


def test_an_orphan_two_searches_find_is_retried_once(tmp_path) -> None:
    storage = f"journal://{tmp_path}/s.journal"
    first = open_study("s", storage, "minimize", _tpe, seed=1)
    second = open_study("s", storage, "minimize", _tpe, seed=1)  # another process's view
    orphan = first.ask(SPACE)
    assert requeue(first, orphan.number, orphan.params) is True
    # the second search read it as running a moment before: its fail is refused, no retry
    assert requeue(second, orphan.number, orphan.params) is False
    assert len(second.get_trials(states=(TrialState.WAITING,))) == 1


def test_the_budget_is_the_studys_and_a_trial_past_it_does_not_run(tmp_path) -> None:
    study = open_study("s", f"journal://{tmp_path}/s.journal", "minimize", _tpe, seed=1)
    for value in (1.0, 2.0):
        trial = study.ask(SPACE)
        study.tell(trial, value)
    failed = study.ask(SPACE)
    study.tell(failed, state=TrialState.FAIL)  # a failed trial does not count: it is retried
    assert budget_left(study, 3) and budget_left(study, None)
    # two searches ask at once for the last place: the earlier trial has it
    mine, theirs = study.ask(SPACE), study.ask(SPACE)
    assert not budget_left(study, 3)
    assert over_budget(study, mine, 3) is False
    assert over_budget(study, theirs, 3) is True
    filed = study.trials[theirs.number]
    assert filed.state == TrialState.FAIL and filed.user_attrs[OVER_BUDGET_ATTR] is True
    assert study.trials[mine.number].state == TrialState.RUNNING


def test_the_heartbeat_refreshes_the_trials_this_process_runs(tmp_path) -> None:
    study = open_study("s", f"journal://{tmp_path}/s.journal", "minimize", _tpe, seed=1)
    held, let_go = study.ask(SPACE), study.ask(SPACE)
    claim(study, held)
    claim(study, let_go)
    claimed = {t.number: t.user_attrs[ALIVE_ATTR] for t in study.trials}
    assert study.trials[0].user_attrs[HOST_ATTR] == socket.gethostname()
    with TrialHeartbeat(every_s=0.05) as beat:
        beat.hold(held)
        beat.hold(let_go)
        beat.release(let_go)
        deadline = time.monotonic() + 10
        while study.trials[held.number].user_attrs[ALIVE_ATTR] == claimed[held.number]:
            assert time.monotonic() < deadline, "no heartbeat in 10 s"
            time.sleep(0.05)
        study.tell(held, 1.0)  # finished: the heartbeat drops it and goes on
        time.sleep(0.2)
    assert study.trials[let_go.number].user_attrs[ALIVE_ATTR] == claimed[let_go.number]


def _take(root: str, count: int, times: int, queue) -> None:
    queue.put([take_job_numbers(SweepDir(root), count) for _ in range(times)])


def test_searches_sharing_a_sweep_directory_never_take_one_job_number_twice(tmp_path) -> None:
    sweep = SweepDir(tmp_path)
    assert take_job_numbers(sweep, 1, start=3) == 3
    assert take_job_numbers(sweep, 2, start=2) == 4  # 2 is free but 3 is taken: a block is whole
    # four processes at once, each taking ten blocks of two numbers
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_take, args=(str(tmp_path), 2, 10, queue)) for _ in "abcd"]
    for worker in workers:
        worker.start()
    firsts = [n for _ in workers for n in queue.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
    taken = [n + k for n in firsts for k in range(2)]
    assert len(taken) == len(set(taken)) == 80
    assert not {2, 3, 4, 5} & set(taken)
