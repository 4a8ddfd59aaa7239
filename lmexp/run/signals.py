"""SIGINT and SIGTERM end a job as `interrupted` at a safe point, never inside a checkpoint write.

Ctrl-C raises KeyboardInterrupt wherever the interpreter is. Inside `torch.save` that lands in
the zip writer, which turns it into a RuntimeError: the job was then recorded `failed` and the
sweep went on to the next job. SIGTERM, what `timeout`, `docker stop`, `scancel` and
preemption send, killed the process without a word, leaving `running` in its summary for ever.
While a job runs, both signals raise `JobInterrupted` (a KeyboardInterrupt naming the signal),
and `deferred()` holds one back until the block it guards (an atomic checkpoint write) is done.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class JobInterrupted(KeyboardInterrupt):
    """The job was asked to stop by a signal; `signal_name` says which."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


_depth = 0  # nesting of deferred() blocks
_pending: list[str] = []  # signals that arrived inside one
_installed = False


def _handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    if _depth > 0:
        if name not in _pending:
            _pending.append(name)
        return
    raise JobInterrupted(name)


@contextmanager
def handling() -> Iterator[None]:
    """Install the handlers for the body of the block (main thread only; elsewhere a no-op)."""
    global _installed
    if threading.current_thread() is not threading.main_thread() or _installed:
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    for s in HANDLED:
        signal.signal(s, _handler)
    _installed = True
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
        _installed = False
        _pending.clear()


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
        raise JobInterrupted(name)
