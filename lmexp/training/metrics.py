"""Perplexity and the per-evaluation `metrics.csv` writer (its columns: `trainer.METRICS`).

Perplexity is exp(total NLL / number of predicted tokens) over a whole split: token-weighted,
never a mean of per-batch values, so an uneven last window counts for exactly its tokens.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from lmexp.atomic import replacing


def perplexity(nll_sum: float, n_tokens: int) -> float:
    """exp of the mean NLL per predicted token; +inf when it overflows or the loss is not finite."""
    if n_tokens <= 0:
        raise ValueError("perplexity needs at least one predicted token")
    mean = nll_sum / n_tokens
    if not math.isfinite(mean) or mean > 700.0:  # exp(709) is the float64 limit
        return math.inf
    return math.exp(mean)


class MetricsWriter:
    """Appends one row per evaluation point to a CSV file and flushes it at once.

    A job killed mid-run keeps every row written before the kill; the header is written only when
    the file is new, so a resumed job appends to the same file. A file written before a column
    was added is first rewritten under the new header (its rows with that column empty), so
    every row has the header's field count.
    """

    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.columns = columns
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        fieldnames, self._text = (
            (list(columns), "") if is_new else _widen_header(self.path, columns)
        )
        # restval: a column the file kept from an older lmexp, which this one no longer writes
        self._line = io.StringIO()
        self._writer = csv.DictWriter(
            self._line, fieldnames=fieldnames, restval="", extrasaction="raise"
        )
        self._file = self.path.open("a", newline="", encoding="utf-8")
        if is_new:
            self._writer.writeheader()
            self._append()

    @property
    def text(self) -> str:
        """The file as this writer wrote it (and found it): what a checkpoint keeps of it, so a
        resume restores its rows exactly, whatever happened to the file since."""
        return self._text

    def write(self, row: dict[str, float | int]) -> None:
        missing = set(self.columns) - set(row)
        if missing:
            raise KeyError(f"metrics row lacks columns {sorted(missing)}")
        self._writer.writerow({k: _format(v) for k, v in row.items()})
        self._append()

    def _append(self) -> None:
        line = self._line.getvalue()
        self._line.seek(0)
        self._line.truncate()
        try:
            self._file.write(line)
            self._file.flush()
        except OSError as exc:  # ENOSPC, EROFS: say which file, and that earlier rows stay
            raise OSError(
                exc.errno,
                f"{exc.strerror}: cannot append to {self.path} (earlier rows kept)",
                str(self.path),
            ) from exc
        self._text += line

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _widen_header(path: Path, columns: tuple[str, ...]) -> tuple[list[str], str]:
    """The header `path` keeps and its text: its own header plus any of `columns` it lacks
    (rewritten in one step, earlier rows given empty values there). The file's own order stays,
    for its old rows. The file is read once."""
    with path.open(newline="", encoding="utf-8") as f:
        text = f.read()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = rows[0] if rows else []
    added = [c for c in columns if c not in header]
    if not added:
        return header, text
    wider = [*header, *added]
    buffer = io.StringIO(newline="")
    out = csv.writer(buffer)
    out.writerow(wider)
    # a malformed row stays as it was: read as before (dropped by the analysis), not lost here
    for row in rows[1:]:
        out.writerow(row + [""] * len(added) if len(row) == len(header) else row)
    with replacing(path, "w", newline="", encoding="utf-8") as f:
        f.write(buffer.getvalue())
    return wider, buffer.getvalue()


def _format(value: float | int) -> str:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)
