"""The final numbers of a job that every tracker reports, from its summary."""

from __future__ import annotations

import math
from typing import Any

# summary.json fields, in the order trackers list them
FINAL_FIELDS = (
    "best_val_ppl",
    "test_ppl",
    "final_train_ppl",
    "final_val_ppl",
    "best_epoch",
    "epochs",
    "wall_time_s",
    "total_time_s",
)


def final_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The FINAL_FIELDS the summary has as numbers (inf, written as "inf", included)."""
    out: dict[str, float] = {}
    for key in FINAL_FIELDS:
        value = summary.get(key)
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not math.isnan(number):
            out[key] = number
    return out
