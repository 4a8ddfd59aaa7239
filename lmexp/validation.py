"""Config checks shared by every schema: one wording for every "bad value" error.

And how bad input reaches the user: `UsageError` (input the user can fix, said in one line),
`usage_line` (the one line for any such failure, a full disk or a read-only folder included),
and `first_line`, how every one-line error quotes the exception beneath it.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

USAGE_EXIT = 2  # what every lmexp command exits with for input it refuses (as argparse does)


class UsageError(Exception):
    """Input the user can fix (a value, a file, a device, a directory), not a fault of lmexp.

    The message is one line naming the cause and the fix: commands print it without a
    traceback and exit with USAGE_EXIT, and a job records it as its error. A mixin: the
    concrete classes also derive from the builtin their callers catch (ValueError, ...).
    """


class InputError(UsageError, ValueError):
    """A value this input or this host cannot honour: a batch larger than the corpus, a GPU
    that is not there. Valid as config, so found where the data or the device is known."""


MIN_FREE_BYTES = 16 * 2**20  # less than this left on a disk: the first checkpoint fails
NAME_MAX = 255  # bytes in one path component, on Linux and macOS file systems
PATH_MAX = 4096


def check_writable_dir(path: Path, name: str, hint: str = "") -> None:
    """Refuse, before any work, a folder `path` (the value of option `name`) that cannot be
    created and written: a name too long, a file in the way, a read-only or foreign place,
    a disk with less than MIN_FREE_BYTES free. `hint` follows the cause."""
    path = Path(os.path.abspath(path))
    long = [part for part in path.parts if len(os.fsencode(part)) > NAME_MAX]
    if long or len(os.fsencode(str(path))) > PATH_MAX:
        what = (
            f"its folder name {long[0][:24]}... has {len(os.fsencode(long[0]))} bytes"
            if long
            else f"the path has {len(os.fsencode(str(path)))} bytes"
        )
        raise InputError(
            f"{name} is too long: {what}, and file systems take {NAME_MAX} a name, {PATH_MAX} "
            f"in all; choose a shorter {name}"
        )
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(
            f"{name}={path}: {existing} is a file, not a folder; choose another {name}"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"{name}={path}: {existing} is not writable here (read-only, or owned by another "
            f"user){hint}; choose a writable {name}"
        )
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise InputError(
            f"{name}={path}: only {free // 1024} KiB free on that disk; free space, or choose "
            f"another {name}"
        )


# errno -> what the user can do about a file operation that failed with it
_OS_FIXES = {
    errno.ENOSPC: "free space on that disk, or write the run elsewhere (hydra.run.dir=..., "
    "hydra.sweep.dir=...)",
    errno.EDQUOT: "free space within your quota, or write the run elsewhere (hydra.run.dir=...)",
    errno.EROFS: "that file system is read-only; write the run elsewhere (hydra.run.dir=..., "
    "hydra.sweep.dir=...)",
    errno.EACCES: "give this user access to it, or use another path",
    errno.EPERM: "give this user access to it, or use another path",
    errno.ENAMETOOLONG: "shorten the path (hydra.run.dir, hydra.sweep.dir or the job's name)",
    errno.ENOTDIR: "a part of the path is a file, not a folder; use another path",
    errno.EISDIR: "it is a folder where a file was expected; use another path",
}


def usage_line(exc: BaseException) -> str | None:
    """The one line to show for a failure the user can fix, or None for a fault of lmexp.

    A `UsageError`'s message; for a file operation refused by the system (disk full,
    read-only, no permission, a name too long) its reason, the file and the fix; for memory
    exhausted, what to shrink.
    """
    if isinstance(exc, UsageError):  # lmexp's own words, the fix at the end: never cut
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in _OS_FIXES:
        reason = exc.strerror or errno.errorcode[exc.errno]
        named = exc.filename and str(exc.filename) not in reason
        where = f" ({exc.filename})" if named else ""
        return f"{reason}{where}: {_OS_FIXES[exc.errno]}"
    if isinstance(exc, MemoryError):
        detail = f" ({first_line(exc)})" if str(exc).strip() else ""
        return (
            f"out of memory{detail}: lower data.batch_size or the model's size, use a smaller "
            "corpus, or run on a machine with more memory"
        )
    return None


def require_positive(section: str, **values: float | int | None) -> None:
    """Refuse a value <= 0 or NaN, naming the key and how to set it; None means "not set".

    inf passes (a budget of inf is no budget); `require_finite` refuses it too.
    """
    prefix = f"{section}." if section else ""
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"{prefix}{key}=nan is not a number; set {prefix}{key}=<n > 0>")
        if value <= 0:
            raise ValueError(f"{prefix}{key}={value} must be positive; set {prefix}{key}=<n > 0>")


def require_finite(section: str, **values: float | int | None) -> None:
    """Refuse NaN and ±inf, naming the key; None means "not set"."""
    prefix = f"{section}." if section else ""
    for key, value in values.items():
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{prefix}{key}={value} must be a finite number")


def require_choice(key: str, value: object, choices: Iterable[object]) -> None:
    """Refuse a value outside `choices`, listing them."""
    allowed = list(choices)
    if value not in allowed:
        raise ValueError(f"{key}={value!r} unknown; choose from {allowed}")


def check_choices(section: str, obj: object, choices: dict[str, Iterable[object]]) -> None:
    """Refuse any field of `obj` named in `choices` whose value is not among its choices."""
    prefix = f"{section}." if section else ""
    for key, allowed in choices.items():
        require_choice(f"{prefix}{key}", getattr(obj, key), allowed)


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first line of `exc`'s message, at most 200 characters: what a one-line error quotes
    of a library's (often multi-line) exception. Without a message: `default`, else its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else (default or type(exc).__name__)
