"""`summary.json`: one job's status and headline numbers, rewritten atomically as they change.

It says `running` from the first second, so analysis can tell a crashed job from a finished one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lmexp.atomic import replacing
from lmexp.run import signals
from lmexp.validation import UsageError, first_line


def _plain(value: Any) -> Any:
    # JSON has no inf/nan: write them as strings analysis can parse back with float().
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class UnreadableFile(UsageError, ValueError):
    """A file of a run directory that is not what lmexp wrote there; the message is one line."""


def read_json_file(path: Path) -> Any:
    """A JSON file of a run directory, or UnreadableFile naming it: missing, not UTF-8, not
    JSON, or nested deeper than Python can decode (a crafted file must not crash the reader)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        detail = first_line(exc)
        raise UnreadableFile(
            f"{path} cannot be read as JSON ({type(exc).__name__}: {detail})"
        ) from None


def write_json_atomic(data: dict[str, Any], path: Path) -> None:
    """Replace `path` with `data` as JSON in one `os.replace`."""
    path = Path(path)
    # a signal waits until the file is in place
    try:
        with signals.deferred(), replacing(path, "w", encoding="utf-8") as f:
            json.dump(_plain(data), f, indent=2, sort_keys=False)
            f.write("\n")
    except OSError as exc:  # ENOSPC, EROFS: say which file, and that the old one stays
        raise OSError(
            exc.errno, f"{exc.strerror}: cannot write {path} (the previous one is kept)", str(path)
        ) from exc


class Summary:
    """The fields of `summary.json`, kept in memory and flushed to disk on every `update`."""

    def __init__(self, path: Path, **fields: Any) -> None:
        self.path = Path(path)
        self.fields: dict[str, Any] = {"status": "running", **fields}
        self.flush()

    def update(self, **fields: Any) -> None:
        self.fields.update(fields)
        self.flush()

    def flush(self) -> None:
        write_json_atomic(self.fields, self.path)
