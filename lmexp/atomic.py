"""Replacing a file in one step, with the permissions a plain `open()` would have given it.

Every file lmexp rewrites (summary.json, checkpoints, the truncated metrics.csv, the record,
downloads) goes to a temporary file beside the target and is moved over it with `os.replace`:
a crash leaves the old file or the new one, never half of either. `tempfile.mkstemp` creates
its file 0600 whatever the umask, which left labmates on shared storage unable to read results
or load checkpoints; `replacing` gives the file the mode `open()` would (0666 less the umask)
before the move. Leftovers of killed writers end in `.tmp` (`.part` for downloads), named after
their target with a leading dot, so `remove_leftovers` can find them.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_umask_lock = threading.Lock()


def default_mode() -> int:
    """0666 less this process's umask: what `open(path, "w")` creates a file with."""
    with _umask_lock:  # reading the umask means setting it: keep other threads out
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def replacing(
    path: str | Path, mode: str = "wb", suffix: str = ".tmp", **open_kwargs
) -> Iterator[IO]:
    """Write the new content of `path` to the yielded file; it replaces `path` when the block
    ends without an exception (after an fsync), and is removed otherwise."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_leftovers(folder: str | Path, suffixes: tuple[str, ...] = (".tmp",)) -> list[Path]:
    """Delete the temporary files killed writers left in `folder` (not recursive); returns them.

    Only call it where no other process can be writing (a job holding its directory's lock).
    """
    removed = []
    for candidate in Path(folder).glob(".*"):
        if candidate.is_file() and candidate.name.endswith(suffixes):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed
