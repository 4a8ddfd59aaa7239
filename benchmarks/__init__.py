"""Benchmarks of lmexp (not part of the installed package): run them from the repository root."""

import csv
from pathlib import Path


def write_rows(rows: list[dict], path: Path) -> None:
    """A benchmark's rows as CSV, one column per key of the first row."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
