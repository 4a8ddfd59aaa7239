"""Hand-built job directories in the real run-directory layout, for the analysis tests.

Files are written with lmexp's own writers (`MetricsWriter`, `write_json_atomic`) so the tests
read exactly the bytes a real job leaves, including `"inf"` strings in summary.json.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import yaml

from lmexp.models import ARCHITECTURES, display
from lmexp.run.summary import write_json_atomic
from lmexp.training import optim as optimizers
from lmexp.training import schedules
from lmexp.training.metrics import MetricsWriter
from lmexp.training.trainer import COLUMNS

# The shape of a real `.hydra/config.yaml` (copied from a finished job).
BASE_CONFIG: dict[str, Any] = {
    "data": {"name": "ptb", "root": None, "download": True, "mirrors": [], "batch_size": 20,
             "seq_len": 35, "eval_batch_size": None},
    "model": {"name": "rnn", "emb_size": 200, "hidden_size": 200, "num_layers": 2,
              "dropout": 0.0, "nonlinearity": "tanh", "num_heads": 1, "ff_size": 2048,
              "max_len": 512, "tie_weights": False},
    "optim": {"name": "sgd", "lr": 5.0, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0},
    "schedule": {"name": "constant", "decay": 1.15, "flat_epochs": 0, "compounding": False},
    "trainer": {"max_epochs": 1, "max_steps": None, "max_tokens": None, "max_sequences": None,
                "max_minutes": None, "clip_norm": 0.25, "eval_every": 0.25,
                "eval_every_budget": None, "progress": "auto"},
    "seed": 1111,
    "device": "auto",
    "threads": None,
}  # fmt: skip


def curve(val_ppls: list[float], train_factor: float = 1.3, seconds_per_point: float = 10.0):
    """Metrics rows, one per validation perplexity, at quarter epochs."""
    rows = []
    for i, val in enumerate(val_ppls, start=1):
        train = val * train_factor
        finite = [v for v in val_ppls[:i] if math.isfinite(v)]
        rows.append(
            {
                "epoch": i * 0.25,
                "step": i * 100,
                "tokens": i * 70000,
                "sequences": i * 2000,
                "wall_time_s": i * seconds_per_point,
                "epoch_time_s": i * seconds_per_point,
                "lr": 5.0,
                "train_loss": math.log(train) if math.isfinite(train) else train,
                "train_ppl": train,
                "val_loss": math.log(val) if math.isfinite(val) else val,
                "val_ppl": val,
                "best_val_ppl": min(finite) if finite else math.inf,
                "tokens_per_s": 7000.0 + i,
                "train_time_s": i * 9.0,
                "eval_time_s": 1.0,
            }
        )
    return rows


def write_job(
    sweep: Path,
    name: str,
    *,
    model: dict[str, Any] | None = None,
    optim: dict[str, Any] | None = None,
    rows: list[dict[str, float]] | None = None,
    summary: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """A job dir `sweep/name`; `summary=None` leaves summary.json out, `rows=None` the CSV."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    config = copy.deepcopy(BASE_CONFIG)
    config["model"].update(model or {})
    if config["model"]["name"] in ARCHITECTURES:  # a real job saves its architecture's keys only
        defaults = dataclasses.asdict(ARCHITECTURES[config["model"]["name"]].schema())
        config["model"] = {key: (model or {}).get(key, value) for key, value in defaults.items()}
    config["optim"].update(optim or {})
    if config["optim"]["name"] == "sgd_schedule":  # conf/optim/sgd_schedule.yaml's schedule
        config["schedule"]["name"] = "decay"
    for key, value in (extra or {}).items():
        section, _, leaf = key.rpartition(".")
        (config[section] if section else config)[leaf] = value
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    given = overrides or [f"model={config['model']['name']}", f"optim={config['optim']['name']}"]
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(given))
    number = name.split("-", 1)[0]  # Hydra's own record of the job's number in its sweep
    if number.isdigit():
        hydra = {"hydra": {"mode": "MULTIRUN", "job": {"num": int(number)}}}
        (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    if rows is not None:
        with MetricsWriter(job / "metrics.csv", COLUMNS) as writer:
            for row in rows:
                # a column the trainer has and these tests do not set: not recorded
                writer.write({**dict.fromkeys(COLUMNS, math.nan), **row})
    if summary is not None:  # a real job records its architecture's, optimizer's and schedule's
        name, opt, sched = (config[g]["name"] for g in ("model", "optim", "schedule"))
        shown = display(name) if name in ARCHITECTURES else {}
        shown |= optimizers.display(opt) if opt in optimizers.OPTIMIZERS else {}
        shown |= schedules.display(sched) if sched in schedules.SCHEDULES else {}
        write_json_atomic({**shown, **summary}, job / "summary.json")
    return job


def completed_summary(rows: list[dict[str, float]], **fields: Any) -> dict[str, Any]:
    """The summary.json a completed job with these metrics rows would leave."""
    best = min(rows, key=lambda r: r["val_ppl"])
    return {
        "status": "completed",
        "command": "python -m lmexp.train",
        "seed": 1111,
        "best_val_ppl": best["val_ppl"],
        "best_epoch": best["epoch"],
        "final_train_ppl": rows[-1]["train_ppl"],
        "final_val_ppl": rows[-1]["val_ppl"],
        "test_ppl": best["val_ppl"] * 0.95,
        "params": 4170400,
        "wall_time_s": rows[-1]["wall_time_s"] + 2.0,
        "epochs": rows[-1]["epoch"],
        "stop_reason": "max_epochs",
        **fields,
    }


def job(sweep: Path, num: int, arch: str, opt: str, vals: list[float], **kw: Any) -> Path:
    """A completed job `<num>-<arch>-<opt>` with validation curve `vals`."""
    rows = curve(vals)
    command = f"python -m lmexp.train model={arch} optim={opt}"
    summary = completed_summary(rows, command=command, **kw.pop("summary_fields", {}))
    return write_job(
        sweep,
        f"{num}-{arch}-{opt}",
        model={"name": arch, **kw.pop("model", {})},
        optim={"name": opt, **kw.pop("optim", {})},
        rows=rows,
        summary=summary,
        **kw,
    )


def study_job(
    sweep: Path,
    num: int,
    vals: list[float],
    *,
    max_sequences: int | None,
    extra: dict[str, Any] | None = None,
    seconds_per_point: float = 10.0,
    status: str = "completed",
) -> Path:
    """A CMU 10-601 HW7 job `<num>-rnn_attn-adam`: validation ppls `vals` at evenly spaced points.

    With a budget the points sit at k/len(vals) of `max_sequences` (the last one at the budget),
    without one 2000 sequences apart. train_loss = ln(1.3 val), val_loss = ln(val), wall time
    k * seconds_per_point; `extra` sets dotted config keys (e.g. "data.batch_size").
    """
    rows = curve(vals, seconds_per_point=seconds_per_point)
    spacing = max_sequences / len(vals) if max_sequences else 2000
    for k, row in enumerate(rows, start=1):
        row["sequences"] = round(k * spacing)
    command = "python -m lmexp.train model=rnn_attn optim=adam"
    summary = completed_summary(rows, command=command, status=status, stop_reason="max_steps")
    return write_job(
        sweep,
        f"{num}-rnn_attn-adam",
        model={"name": "rnn_attn"},
        optim={"name": "adam", "lr": 0.001},
        rows=rows,
        summary=summary,
        extra={"trainer.max_sequences": max_sequences, **(extra or {})},
    )


def mixed_sweep(root: Path, name: str = "sweep") -> Path:
    """Nine jobs: every architecture and optimizer, plus failed, diverged, running, truncated.

    Best finite validation ppl per architecture: rnn 150 (2-rnn-adam), gru 120 (4-gru-adam),
    lstm 110 (5-lstm-sgd), transformer 100 (7-transformer-adam); 6-transformer-sgd diverged.
    """
    sweep = root / name
    job(sweep, 0, "rnn", "sgd", [400, 300, 250, 260])
    job(sweep, 1, "rnn", "sgd_schedule", [380, 290, 240, 200])
    job(sweep, 2, "rnn", "adam", [300, 200, 150, 170])
    job(sweep, 3, "gru", "sgd", [350, 250, 200, 180])
    job(sweep, 4, "gru", "adam", [280, 160, 120, 125])
    truncated = job(sweep, 5, "lstm", "sgd", [260, 150, 110])
    with (truncated / "metrics.csv").open("a") as f:
        f.write("1.0,400,280000,41.2,41.2,5.0,4.6")  # killed mid-line: no newline, 7 fields
    diverged_rows = curve([500.0, math.inf])
    write_job(
        sweep,
        "6-transformer-sgd",
        model={"name": "transformer", "num_heads": 4, "ff_size": 800},
        rows=diverged_rows,
        summary={
            **completed_summary(diverged_rows[:1]),
            "status": "diverged",
            "final_val_ppl": math.inf,
            "test_ppl": None,
            "stop_reason": "diverged",
            "command": "python -m lmexp.train model=transformer optim=sgd",
        },
    )
    job(sweep, 7, "transformer", "adam", [250, 140, 100], model={"num_heads": 4, "ff_size": 800})
    write_job(
        sweep,
        "8-lstm-adam",
        model={"name": "lstm"},
        optim={"name": "adam"},
        rows=[],
        summary={
            "status": "failed",
            "error_type": "RuntimeError",
            "error": "CUDA out of memory",
            "best_val_ppl": "inf",
            "command": "python -m lmexp.train model=lstm optim=adam",
        },
    )
    write_job(sweep, "9-gru-sgd", model={"name": "gru"}, rows=curve([390, 310]))  # no summary
    return sweep
