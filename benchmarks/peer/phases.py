"""Where each process's time went, from what it leaves: lmexp's job directory, the peer's stdout.

A whole process is start-up (interpreter, imports), data, the model, one epoch (training and
validation), the test pass and saving. Both programs time their epoch themselves: the peer
prints `| end of epoch 1 | time: Xs |` (training + validation), lmexp writes `train_time_s`
and `eval_time_s` per evaluation to metrics.csv. Whole minus epoch is then what each spends
around the epoch, which is where two programs with the same step time can still differ.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lmexp.run.rundir import RunDir

_PEER_EPOCH = re.compile(
    r"\| end of epoch\s+\d+ \| time:\s*([\d.]+)s \| valid loss\s+\S+ \| valid ppl\s+(\S+)"
)
_PEER_TEST = re.compile(r"\| End of training \| test loss\s+\S+ \| test ppl\s+(\S+)")


@dataclass
class Phases:
    """One process's epoch seconds and perplexities; lmexp's also its job's own timings."""

    epoch_s: float
    val_ppl: float
    test_ppl: float | None
    train_s: float | None = None  # lmexp: training time of the epoch (metrics.csv)
    eval_s: float | None = None  # lmexp: validation time, all evaluations (metrics.csv)
    vocab_size: int | None = None
    timings: dict[str, float] = field(default_factory=dict)  # summary.json "timings", if any


def parse_peer(stdout: str) -> Phases:
    """The peer's epoch seconds and perplexities from its stdout (its main.py's print lines)."""
    epochs = _PEER_EPOCH.findall(stdout)
    test = _PEER_TEST.search(stdout)
    if not epochs or test is None:
        tail = stdout.strip().splitlines()[-3:]
        raise ValueError(f"peer stdout has no end-of-epoch or test line (it ended: {tail})")
    return Phases(
        epoch_s=sum(float(seconds) for seconds, _ in epochs),
        val_ppl=float(epochs[-1][1]),
        test_ppl=float(test.group(1)),
    )


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _numeric(entries: object) -> dict[str, float]:
    if not isinstance(entries, dict):
        return {}
    found = {k: _float(v) for k, v in entries.items() if not isinstance(v, bool)}
    return {k: v for k, v in found.items() if v is not None}


def read_lmexp(run_dir: Path) -> Phases:
    """lmexp's epoch seconds, perplexities and phase timings from its job directory."""
    run = RunDir(run_dir)
    try:
        summary = json.loads(run.summary.read_text(encoding="utf-8"))
        with run.metrics.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, ValueError) as err:
        raise ValueError(f"lmexp left no readable summary/metrics in {run_dir} ({err})") from err
    status = summary.get("status")
    if status == "diverged":
        raise ValueError(
            f"lmexp stopped early in {run_dir}: its loss went non-finite after "
            f"{summary.get('steps')} steps, so it did less work than the peer and the times "
            "would not compare; leave this architecture out of --archs"
        )
    if status != "completed" or not rows:
        raise ValueError(f"lmexp run in {run_dir} ended {status!r}, not completed")
    last = rows[-1]
    train_s = _float(last.get("train_time_s")) or 0.0  # this epoch's training so far
    eval_s = sum(_float(r.get("eval_time_s")) or 0.0 for r in rows)
    return Phases(
        epoch_s=train_s + eval_s,
        val_ppl=_float(last.get("val_ppl")) or float("nan"),
        test_ppl=_float(summary.get("test_ppl")),
        train_s=train_s,
        eval_s=eval_s,
        vocab_size=summary.get("vocab_size"),
        timings=_numeric(summary.get("timings", {})),
    )
