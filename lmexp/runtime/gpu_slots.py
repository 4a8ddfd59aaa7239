"""At most `jobs_per_gpu` concurrent jobs on each GPU of one machine, through lock files.

Jobs running side by side (joblib workers, submitit_local processes, two sweeps) each hold an
exclusive `flock` on one slot file of the GPU index k they train on: `<lock_dir>/gpu<k>.lock`
for its first slot, `gpu<k>.<j>.lock` for the j-th. Slots are handed out breadth-first (every
GPU's first slot, then every GPU's second), so jobs spread over the GPUs before they share one.
The kernel drops the lock when the holder closes the file or dies, so a killed job never leaves
a slot taken. It does not pick devices by load or memory, and does not set
CUDA_VISIBLE_DEVICES.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def default_lock_dir() -> Path:
    """A per-user folder for this machine's slots, keyed by the GPUs this process can see.

    Jobs that see different `CUDA_VISIBLE_DEVICES` number the GPUs differently (SLURM gives
    each job its own), so their slots must not share files.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "all").replace(",", "_") or "none"
    return Path(tempfile.gettempdir()) / f"lmexp-gpu-slots-{os.getuid()}" / visible


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on `path`, or None if someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # not inherited by exec'd children
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


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
            fd = _try_lock(lock_dir / name)
            if fd is None:
                continue
            try:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a human
                log.info("claimed GPU %d (lock %s)", k, lock_dir / name)
                yield k
            finally:
                os.close(fd)  # closing the last descriptor releases the lock
            return
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(
                f"all {n_gpus * per_gpu} GPU slots in {lock_dir} stayed taken for {timeout_s} s"
            )
        if not waiting_logged:
            log.info("all %d GPU slots are taken by other jobs; waiting", n_gpus * per_gpu)
            waiting_logged = True
        time.sleep(poll_s)
