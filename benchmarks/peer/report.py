"""The benchmark's results: one row per architecture (medians, ratios), printed and as CSV.

The headline is the ratio of medians, peer / lmexp ("x faster": above 1 lmexp finished first),
with the spread of the per-pair ratios beside it: pairs ran back to back, so a pair's ratio
carries less of the machine's drift than either median does. The epoch and outside-the-epoch
columns say whether a difference comes from the training loop or from what surrounds it.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterable
from pathlib import Path

from benchmarks.peer.commands import LR, Arch
from benchmarks.peer.timing import TOOLS, Run
from benchmarks.speed.rows import LOAD_WARNING

DIVERGED_PPL = 1e5  # a validation perplexity above it: the run diverged (lmexp's default ceiling)


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _pair_ratios(runs: list[Run]) -> list[float]:
    walls = {(r.pair, r.tool): r.wall_s for r in runs}
    pairs = sorted({r.pair for r in runs})
    return [walls[p, "peer"] / walls[p, "lmexp"] for p in pairs]


def summarise(arch: Arch, runs: list[Run], windows: int, peer_vocab: int) -> dict:
    """One architecture's row: medians of each tool, their ratio, and where the time went."""
    lm = [r for r in runs if r.tool == "lmexp"]
    peer = [r for r in runs if r.tool == "peer"]
    ratios = _pair_ratios(runs)
    lm_wall, peer_wall = _median(r.wall_s for r in lm), _median(r.wall_s for r in peer)
    loads = [r.other_load for r in runs if r.other_load is not None]
    lm_vocab = lm[0].phases.vocab_size
    notes = arch.notes
    diverged = [
        t for t in TOOLS if any(not r.phases.val_ppl < DIVERGED_PPL for r in runs if r.tool == t)
    ]
    if diverged:  # nan counts too
        who = "both" if len(diverged) == 2 else diverged[0]
        notes += f"; {who} diverged at lr {LR:g} (every step ran: the times hold, the ppl do not)"
    if lm_vocab != peer_vocab:
        notes += f"; vocabularies differ: lmexp {lm_vocab}, peer {peer_vocab}"
    row = {
        "arch": arch.name,
        "pairs": len(ratios),
        "windows": windows,
        "lmexp_median_s": lm_wall,
        "peer_median_s": peer_wall,
        "x_faster": round(peer_wall / lm_wall, 3) if lm_wall and peer_wall else None,
        "pair_ratio_min": round(min(ratios), 3),
        "pair_ratio_max": round(max(ratios), 3),
        "lmexp_epoch_s": _median(r.phases.epoch_s for r in lm),
        "lmexp_outside_s": _median(r.outside_s for r in lm),
        "lmexp_train_s": _median(r.phases.train_s for r in lm),
        "lmexp_eval_s": _median(r.phases.eval_s for r in lm),
        "peer_epoch_s": _median(r.phases.epoch_s for r in peer),
        "peer_outside_s": _median(r.outside_s for r in peer),
        "lmexp_val_ppl": _median(r.phases.val_ppl for r in lm),
        "peer_val_ppl": _median(r.phases.val_ppl for r in peer),
        "lmexp_test_ppl": _median(r.phases.test_ppl for r in lm),
        "peer_test_ppl": _median(r.phases.test_ppl for r in peer),
        "lmexp_vocab": lm_vocab,
        "peer_vocab": peer_vocab,
        "max_other_load": round(max(loads), 2) if loads else None,
        "runs_under_load": sum(r.under_load for r in runs),
    }
    keys = list(dict.fromkeys(k for r in lm for k in r.phases.timings))  # lmexp's order
    for key in keys:  # summary.json "timings", whatever lmexp reports there
        row[f"lmexp_timings_{key}"] = _median(r.phases.timings.get(key) for r in lm)
    if keys:  # what the timings do not cover: interpreter exit, anything not yet timed
        row["lmexp_untimed_s"] = _median(r.wall_s - sum(r.phases.timings.values()) for r in lm)
    row["notes"] = notes
    return row


def _cell(value: object, fmt: str = "{:.2f}") -> str:
    if value is None:
        return "—"
    return fmt.format(value) if isinstance(value, float) else str(value)


def _ppl(value: float | None) -> str:
    return _cell(value, "{:.1f}" if value is None or value < DIVERGED_PPL else "{:.2g}")


def _table_cell(row: dict, key: str) -> str:
    if key == "pair_ratio_min":
        return f"{row['pair_ratio_min']:.2f}–{row['pair_ratio_max']:.2f}"
    if key == "lmexp_val_ppl":
        return f"{_ppl(row['lmexp_val_ppl'])} / {_ppl(row['peer_val_ppl'])}"
    if key == "max_other_load" and row["runs_under_load"]:
        return f"{_cell(row[key])} ({row['runs_under_load']} runs under load)"
    return _cell(row[key])


COLUMNS = [  # (row key, header)
    ("arch", "arch"),
    ("lmexp_median_s", "lmexp s"),
    ("peer_median_s", "peer s"),
    ("x_faster", "× faster"),
    ("pair_ratio_min", "pairs min–max"),
    ("lmexp_epoch_s", "lmexp epoch s"),
    ("lmexp_outside_s", "lmexp outside s"),
    ("peer_epoch_s", "peer epoch s"),
    ("peer_outside_s", "peer outside s"),
    ("lmexp_val_ppl", "val ppl lmexp / peer"),
    ("max_other_load", "other load"),
]


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table, seconds being medians over the pairs."""
    lines = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_table_cell(row, key) for key, _ in COLUMNS) + " |")
    return "\n".join(lines)


def phase_lines(rows: list[dict]) -> list[str]:
    """Per architecture, where lmexp's time went (medians, seconds)."""
    lines = []
    for row in rows:
        parts = [
            f"whole {_cell(row['lmexp_median_s'])}",
            f"train {_cell(row['lmexp_train_s'])}",
            f"validation {_cell(row['lmexp_eval_s'])}",
            f"outside the epoch {_cell(row['lmexp_outside_s'])}",
        ]
        timings = [
            f"{k.removeprefix('lmexp_timings_')} {_cell(v)}"
            for k, v in row.items()
            if k.startswith("lmexp_timings_")
        ]
        if timings:
            timings.append(f"whole − their sum {_cell(row['lmexp_untimed_s'])}")
            parts.append("summary.json timings: " + ", ".join(timings))
        lines.append(f"{row['arch']:>11}: " + "; ".join(parts))
    return lines


def notes(rows: list[dict]) -> list[str]:
    return [f"{row['arch']:>11}: {row['notes']}" for row in rows]


def load_legend() -> str:
    return f"other load: cores other processes kept busy; above {LOAD_WARNING} a run is under load"


def write_csv(path: Path, rows: list[dict]) -> None:
    """`rows` as CSV, with the union of their columns (timings may differ between archs)."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def run_rows(runs: list[Run]) -> list[dict]:
    """One row per timed process, for the `_runs.csv` beside the summary."""
    rows = []
    for r in runs:
        p = r.phases
        row = {
            "arch": r.arch,
            "tool": r.tool,
            "pair": r.pair,
            "position": r.position,
            "wall_s": round(r.wall_s, 3),
            "epoch_s": round(p.epoch_s, 3),
            "outside_s": round(r.outside_s, 3),
            "train_s": p.train_s,
            "eval_s": p.eval_s,
            "val_ppl": p.val_ppl,
            "test_ppl": p.test_ppl,
            "other_load": None if r.other_load is None else round(r.other_load, 3),
            "under_load": r.under_load,
        }
        row.update({f"timings_{k}": v for k, v in p.timings.items()})
        rows.append(row)
    return rows
