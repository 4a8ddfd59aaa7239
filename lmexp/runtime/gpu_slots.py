"""At most `jobs_per_gpu` concurrent jobs on each GPU of one machine, through lock files.

Jobs running side by side (joblib workers, submitit_local processes, two sweeps) each hold an
exclusive lock on one slot file of the GPU index k they train on (`filelock`: `flock` on Linux
and macOS, `msvcrt.locking` on Windows): `<lock_dir>/gpu<k>.lock`
for its first slot, `gpu<k>.<j>.lock` for the j-th. Slots are handed out breadth-first (every
GPU's first slot, then every GPU's second), so jobs spread over the GPUs before they share one.
The OS drops the lock when the holder closes the file or dies, so a killed job never leaves a
slot taken. It does not pick devices by load or memory, and does not set
CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import getpass
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)


def default_lock_dir() -> Path:
    """A per-user folder for this machine's slots, keyed by the GPUs this process can see.

    Jobs that see different `CUDA_VISIBLE_DEVICES` number the GPUs differently (SLURM gives
    each job its own), so their slots must not share files.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all").replace(",", "_") or "none"
    return Path(tempfile.gettempdir()) / f"lmexp-gpu-slots-{_user()}" / visible


def _user() -> str:
    """Whose slots: the uid where there is one (POSIX), else the login name (Windows)."""
    if hasattr(os, "getuid"):
        return str(os.getuid())
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


def _try_lock(path: Path) -> FileLock | None:
    """A held exclusive lock on `path`, or None if another holder has it.

    A lock object of its own per attempt (not filelock's per-path singleton or thread-local
    one), so two claims in one process also get different slots.
    """
    lock = FileLock(path, mode=0o666, thread_local=False, is_singleton=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def slot_files(n_gpus: int, per_gpu: int) -> list[tuple[int, str]]:
    """(GPU index, lock file name) of every slot, in the order they are tried."""
    return [
        (k, f"gpu{k}.lock" if j == 0 else f"gpu{k}.{j}.lock")
        for j in range(per_gpu)
        for k in range(n_gpus)
    ]


@contextmanager
def claim_gpu(
    lock_dir: Path,
    n_gpus: int,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
    per_gpu: int = 1,
) -> Iterator[int | None]:
    """Hold a free slot of one of `n_gpus` GPUs for the body of the `with` block; yield its GPU.

    Tries every slot without blocking, then polls every `poll_s` seconds until one frees up
    (or raises `TimeoutError` after `timeout_s`). Yields None when `n_gpus` is 0: nothing to
    share. Locks are per open file, so two claims in one process also get different slots.

    Args:
        lock_dir: folder of the lock files; every job that shares the GPUs must use the same.
        n_gpus: number of GPUs to share (e.g. `torch.cuda.device_count()`).
        poll_s: seconds between attempts while every slot is taken.
        timeout_s: give up after this many seconds of waiting; None waits for ever.
        per_gpu: slots per GPU (`jobs_per_gpu`): how many jobs may share one GPU at once.
    """
    if n_gpus <= 0:
        yield None
        return
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waiting_logged = False
    while True:
        for k, name in slot_files(n_gpus, per_gpu):
            lock = _try_lock(lock_dir / name)
            if lock is None:
                continue
            try:
                log.info("claimed GPU %d (lock %s, pid %d)", k, lock_dir / name, os.getpid())
                yield k
            finally:
                lock.release()
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"all {n_gpus * per_gpu} GPU slots in {lock_dir} stayed taken for {timeout_s} s"
            )
        if not waiting_logged:
            log.info("all %d GPU slots are taken by other jobs; waiting", n_gpus * per_gpu)
            waiting_logged = True
        time.sleep(poll_s)
