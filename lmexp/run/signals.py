"""Signals end a job at a safe point, never inside a checkpoint write, and say so in its record.

Ctrl-C raises KeyboardInterrupt wherever the interpreter is. Inside `torch.save` that lands in
the zip writer, which turns it into a RuntimeError: the job was then recorded `failed` and the
sweep went on to the next job. SIGTERM, what `timeout`, `docker stop`, `scancel` and
preemption send, killed the process without a word, leaving `running` in its summary for ever.
While a job runs, both signals (and SIGHUP, a closed terminal) raise `JobInterrupted` (a
KeyboardInterrupt naming the signal), once per job, and `deferred()` holds one back until the
block it guards (an atomic checkpoint write) is done. `forwarding()` covers the launching
process, whose joblib workers would otherwise never hear of a signal sent to it alone.

SIGUSR1 and SIGUSR2 are what a cluster sends before it preempts or times out a job (SLURM's
`--signal`, submitit's SIGUSR2). They only raise a flag: the trainer sees it after the step in
flight, saves `last.pt` and raises `JobPreempted`; on the way out `handling()` passes the
signal on to whoever listened before lmexp (submitit requeues the job, which resumes from that
checkpoint), so only the current step is lost instead of everything since the last checkpoint.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

# SIGHUP: the terminal closed (not on Windows); nohup's SIG_IGN is left alone
HANDLED = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))
# not on Windows; SUBMITIT_PREEMPT_SIGNAL may pick either
PREEMPTION = tuple(getattr(signal, n) for n in ("SIGUSR1", "SIGUSR2") if hasattr(signal, n))


class JobInterrupted(KeyboardInterrupt):
    """The job was asked to stop by a signal; `signal_name` says which."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class JobPreempted(JobInterrupted):
    """The job saved its position on a preemption signal and stops so it can be requeued."""


_depth = 0  # nesting of deferred() blocks
_pending: list[str] = []  # signals that arrived inside one
_preemption: list[str] = []  # a preemption signal that came and has not been acted on
_installed = False


_raised: list[str] = []  # the signal already raised in this job: one is enough


def _handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if _raised:  # a second Ctrl-C, or the one the launcher forwards: the job is stopping
        return  # (raising again could land before the job has recorded the first)
    if _depth > 0:
        if name not in _pending:
            _pending.append(name)
        return
    _raised.append(name)
    raise JobInterrupted(name)


def _preemption_handler(signum: int, frame: FrameType | None) -> None:
    if not _preemption:
        _preemption.append(signal.Signals(signum).name)


def hold_while_starting() -> None:
    """In a job process that submitit started: keep a preemption signal that comes before any
    handler is in, instead of dying of it (SIGUSR2's default action).

    submitit installs its handlers only after it has unpickled the job, which imports lmexp,
    Hydra and torch: seconds in which SLURM's preemption signal (or a time-limit signal sent
    early) killed the job ("srun: ... User defined signal 2", never requeued). Called from
    `import lmexp` there (lmexp/__init__.py), this covers all of that but Python's and
    submitit's own imports. The signal is noted as one during the job would be
    (`preemption_requested`), so the job saves at its first step and submitit requeues it.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for s in PREEMPTION:
        if signal.getsignal(s) is signal.SIG_DFL:
            signal.signal(s, _preemption_handler)


def preemption_requested() -> str | None:
    """The preemption signal that came during this job, if any (cheap: read once a step)."""
    return _preemption[0] if _preemption else None


def stop_while_starting(signum: int = signal.SIGINT, frame: FrameType | None = None) -> None:
    """Exit at once, quietly, on a Ctrl-C while the command imports torch and Hydra: nothing
    has been written yet, and an interrupted import of a C extension (numpy, torch) must not be
    finished or retried on the way out (lmexp/entry.py; `python -m lmexp.train`)."""
    os.write(2, b"lmexp: stopped by SIGINT while starting; nothing was run\n")
    os._exit(128 + int(signum))


def ignore_while_stopping() -> None:
    """The process is stopping after a signal (SIGINT, SIGTERM, SIGHUP): ignore further ones
    until it exits, so a second SIGTERM (a supervisor's, `docker stop`'s) cannot kill it by the
    default action halfway through recording and reporting the first."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in HANDLED:
        signal.signal(s, signal.SIG_IGN)


@contextmanager
def handling() -> Iterator[None]:
    """Install the handlers for the body of the block (main thread only; elsewhere a no-op).

    A `JobPreempted` leaving the block hands its signal to the handler lmexp replaced, once
    lmexp's are removed: submitit's requeues the job and exits; with none, it propagates and
    the command exits as for any signal.
    """
    global _installed
    if threading.current_thread() is not threading.main_thread() or _installed:
        yield
        return
    previous = {s: signal.getsignal(s) for s in (*HANDLED, *PREEMPTION)}
    for s in HANDLED:
        if s == signal.SIGINT or previous[s] is not signal.SIG_IGN:  # nohup: SIGHUP ignored
            signal.signal(s, _handler)
    for s in PREEMPTION:
        if previous[s] is not signal.SIG_IGN:  # whoever ignores it wants no preemption
            signal.signal(s, _preemption_handler)
    _installed = True

    def restore() -> None:
        global _installed
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
        _installed = False
        _pending.clear()
        _preemption.clear()
        _raised.clear()

    try:
        yield
    except JobPreempted as exc:
        restore()
        onward = previous[signal.Signals[exc.signal_name]]
        if callable(onward):  # as the signal itself would have called it
            onward(signal.Signals[exc.signal_name].value, None)
        raise
    finally:
        if _installed:
            restore()


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back until the block is done, then raise the first that came."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
    if _depth == 0 and _pending:
        name = _pending[0]
        _pending.clear()
        _raised.append(name)
        raise JobInterrupted(name)


FORWARD_WAIT_S = 30.0  # at most this long the launcher waits for its workers' records


def _forwarder(settled: Callable[[set[int]], bool]) -> Callable[[int, FrameType | None], None]:
    def forward(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if _raised:
            return
        workers = [w for w in multiprocessing.active_children() if w.pid is not None]
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signum)
        pids = {w.pid for w in workers}
        deadline = time.monotonic() + FORWARD_WAIT_S
        while workers and time.monotonic() < deadline and not settled(pids):
            time.sleep(0.05)
        _raised.append(name)
        raise JobInterrupted(name)

    return forward


@contextmanager
def forwarding(settled: Callable[[set[int]], bool]) -> Iterator[None]:
    """Around a whole launch (the `lmexp-train` command): signals reach the jobs it started.

    The job processes it started (joblib's workers) get the signal too, and the launch stops
    once `settled(their pids)` says none of their jobs is still recorded `running`. Without
    this a SIGTERM to the launcher alone (`kill`, `docker stop`) left its workers training as
    orphans, and joblib's abort would have SIGKILLed them before they recorded anything.
    Inside a job of this process, `handling()` takes over for the job's duration.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    forward = _forwarder(settled)
    for s in HANDLED:
        if s == signal.SIGINT or previous[s] is not signal.SIG_IGN:
            signal.signal(s, forward)
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
        _raised.clear()
