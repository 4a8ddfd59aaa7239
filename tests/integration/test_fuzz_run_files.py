"""Seeded fuzz of every file of a run directory: the readers fail in one line or not at all.

Each case mutates one file of a copy of a trained run (random bytes, a truncation, a JSON value
swapped for another type, a CSV field garbled, a pickle's bytes flipped), then opens the run
the ways a user does: the report's reader (`analysis.collect`, which must never fail on a bad
job: it shows it), and scoring (`lmexp.load`, behind evaluate, generate and internals), which
may refuse the run with a one-line ValueError or OSError, and nothing else. No case may run
code or change a file of another run. Bounded: a fixed seed and count, about a minute.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

import lmexp
from analysis.collect import collect

pytestmark = [pytest.mark.slow, pytest.mark.faults]

CASES = 200
FILES = (
    "summary.json",
    "metrics.csv",
    "vocab.json",
    "corpus.json",
    ".lmexp/config.json",
    ".lmexp/launch.json",
    "checkpoints/best.pt",
)
ODD_VALUES = (None, 0, -1, 1e308, "x" * 300, [], {}, [[[]]], True, "inf", "../../etc")


def _mutate(path: Path, rng: random.Random) -> str:
    data = path.read_bytes()
    how = rng.choice(("bytes", "truncate", "json", "csv", "empty"))
    if how == "json" and path.suffix == ".json":
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if isinstance(value, dict) and value:
            key = rng.choice(sorted(value))
            value[key] = rng.choice(ODD_VALUES)
        elif isinstance(value, list) and value:
            value[rng.randrange(len(value))] = rng.choice(ODD_VALUES)
        else:
            value = rng.choice(ODD_VALUES)
        path.write_text(json.dumps(value))
    elif how == "csv" and path.suffix == ".csv":
        lines = data.decode("utf-8", "replace").splitlines(keepends=True)
        k = rng.randrange(len(lines))
        fields = lines[k].rstrip("\r\n").split(",")
        fields[rng.randrange(len(fields))] = rng.choice(("", "nan", "abc", "1e999", '"', "-0"))
        lines[k] = ",".join(fields) + "\r\n"
        path.write_text("".join(lines))
    elif how == "truncate":
        path.write_bytes(data[: rng.randrange(len(data) + 1)])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            if buf:
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        path.write_bytes(bytes(buf))
    return how


def test_mutated_run_files_are_refused_in_one_line_or_read(trained_runs, tmp_path) -> None:
    rng = random.Random(20261204)
    other = trained_runs["rnn"]  # another run: no case may touch it
    untouched = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    refused = read = 0
    for case in range(CASES):
        run = Path(shutil.copytree(trained_runs["gru"], tmp_path / f"case{case}" / "0-gru-adam"))
        name = rng.choice(FILES)
        how = _mutate(run / name, rng)
        where = f"case {case}: {how} {name}"
        jobs = collect([run.parent]).jobs  # the report shows every job, whatever its files
        assert len(jobs) == 1, where
        try:
            lm = lmexp.load(run)
        except (ValueError, OSError) as exc:
            message = str(exc)
            assert message and "\n" not in message.strip(), f"{where}: {message[:500]}"
            refused += 1
        else:
            assert lm.next_log_probs("the").shape[0] == len(lm.vocab), where
            read += 1
        shutil.rmtree(run.parent)
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == untouched
    assert refused > 0 and read > 0  # both paths were exercised
