"""Collect job directories into one row per job plus each job's learning curve.

Reads only the run-directory contract (README "Outputs"): `.hydra/config.yaml`,
`.hydra/overrides.yaml`, `metrics.csv` and `summary.json`. Running, failed, diverged and
half-written jobs are kept, with their status, never dropped.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from omegaconf import OmegaConf

from lmexp.run import keys
from lmexp.run.liveness import effective_status
from lmexp.run.record import cell_of, pairing_of, read_launch, read_recorded_config
from lmexp.run.rundir import RunDir

log = logging.getLogger(__name__)

# report column -> dotted config key, from lmexp's table of keys (lmexp/run/keys.py). A job's
# config holds its architecture's keys only (each has its own schema), so e.g. a Transformer has
# no emb_size and it never counts as "varying"; a key an older job lacks reads as None.
HYPERPARAMETERS = {key.column: key.path for key in keys.columns()}

# Curve columns the analysis needs; absent ones (an old or truncated header) become NaN.
CURVE_COLUMNS = (
    "epoch", "sequences", "wall_time_s", "train_loss", "train_ppl", "val_loss", "val_ppl",
    "tokens_per_s",
)  # fmt: skip


class NoJobsError(ValueError):
    """None of the given paths holds a job directory."""


# What each row of the tidy curves frame says about its job, besides the metrics.csv columns.
JOB_FACTS = (
    "job_id", "sweep", "job_num", "model", "model_label", "model_rank", "optim", "optim_label",
    "optim_rank", "status",
    *HYPERPARAMETERS, "keep_prob",
)  # fmt: skip


@dataclass
class Collection:
    """`jobs`: one row per job (columns: see `_job_row`); `curves`: job_id -> metrics rows."""

    jobs: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)

    def tidy(self) -> pd.DataFrame:
        """Every evaluation of every job as one long frame: a row per metrics.csv row, with
        its job's identity and hyper-parameters (JOB_FACTS) beside the metrics. One line
        draws a sweep's curves:
        `seaborn.relplot(data=frame, x="epoch", y="val_ppl", hue="model", style="optim",
        kind="line")`."""
        facts = self.jobs.set_index("job_id")
        frames = []
        for job_id, curve in self.curves.items():
            frame = curve.copy()
            job = facts.loc[job_id]
            for column in reversed(JOB_FACTS):
                if column == "job_id":
                    frame.insert(0, column, job_id)
                elif column in job.index and column not in frame.columns:
                    frame.insert(0, column, job[column])
            frames.append(frame[[c for c in JOB_FACTS if c in frame] + list(curve.columns)])
        if not frames:
            return pd.DataFrame(columns=[*JOB_FACTS, *CURVE_COLUMNS])
        return _counts_as_integers(pd.concat(frames, ignore_index=True))


# counts, read as floats with the rest of metrics.csv; the tidy frame gives them back as integers
COUNT_COLUMNS = ("job_num", "step", "tokens", "sequences")


def _counts_as_integers(frame: pd.DataFrame) -> pd.DataFrame:
    """int64 where a count column is complete, pandas' nullable Int64 where a row lacks it (a
    column added to metrics.csv after an old job's rows were written)."""
    for column in COUNT_COLUMNS:
        if column in frame and pd.api.types.is_float_dtype(frame[column]):
            values = frame[column]
            whole = values.dropna()
            if (whole == whole.round()).all():
                frame[column] = values.astype("int64" if values.notna().all() else "Int64")
    return frame


def is_job_dir(path: Path) -> bool:
    """Holds any file a job writes; a sweep dir (multirun.yaml) does not."""
    return RunDir(path).is_job()


def find_job_dirs(paths: Iterable[Path | str]) -> list[Path]:
    """Job directories under `paths` (recursively), each once, in path order.

    Raises FileNotFoundError for a missing path and NoJobsError when there is no job at all, so
    the CLI can fail before doing any work.
    """
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such directory")
    found: dict[Path, None] = {}
    for root in roots:
        for job in _walk(root):
            found.setdefault(job.resolve(), None)
    if not found:
        names = ", ".join(str(r) for r in roots)
        raise NoJobsError(
            f"no job directories under {names} (a job directory holds "
            f"{', '.join(str(p) for p in RunDir('').markers())})"
        )
    return sorted(found)


def _walk(root: Path) -> Iterable[Path]:
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if is_job_dir(here):
            dirnames[:] = []  # a job never holds another job; skip checkpoints etc.
            yield here
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))


def job_ids(dirs: list[Path]) -> dict[Path, str]:
    """`<sweep dir>/<job dir>` names, lengthened with more parents only where two would clash."""
    depth = dict.fromkeys(dirs, 2)
    while True:
        ids = {d: "/".join(d.parts[-depth[d] :]) for d in dirs}
        seen: dict[str, list[Path]] = {}
        for d, name in ids.items():
            seen.setdefault(name, []).append(d)
        clashes = [d for group in seen.values() if len(group) > 1 for d in group]
        if not clashes:
            return ids
        for d in clashes:
            depth[d] += 1


def to_float(value: Any) -> float:
    """JSON/YAML value -> float; `None` and junk become NaN, the strings "inf"/"nan" parse back."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def read_metrics(path: Path) -> pd.DataFrame:
    """`metrics.csv` as floats, dropping rows with the wrong field count or unparsable numbers.

    A job killed while writing leaves a partial last line; it is dropped (with a warning) rather
    than failing the whole analysis.
    """
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=float) for c in CURVE_COLUMNS})
    lines = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8", errors="replace"))))
    header, rows = (lines[0], lines[1:]) if lines else ([], [])
    kept = []
    for number, fields in enumerate(rows, start=2):
        try:
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields, header has {len(header)}")
            # empty: a column added after the row was written (the writer widens old files)
            kept.append([float(x) if x != "" else math.nan for x in fields])
        except ValueError as exc:
            if fields:
                log.warning("%s line %d dropped: %s", path, number, exc)
    frame = pd.DataFrame(kept, columns=header, dtype=float)
    for column in CURVE_COLUMNS:
        if column not in frame:
            frame[column] = math.nan
    key = ["epoch", "step"]  # what two writers of one evaluation both wrote
    if set(key) <= set(frame) and frame[key].duplicated().any():
        # two writers at once (before lmexp locked job directories) wrote evaluations twice:
        # flag it, and keep each step's first row rather than draw the curve twice
        repeated = int(frame[key].duplicated().sum())
        log.warning("%s: %d rows repeat an earlier step; the first of each is kept", path, repeated)
        frame = frame.drop_duplicates(key, keep="first").reset_index(drop=True)
        frame.attrs["duplicate_steps"] = repeated
    return frame


def _read(path: Path, parse: Callable[[str], Any]) -> Any:
    """Parsed file content, or None when absent or unreadable (a warning, never a crash)."""
    if not path.is_file():
        return None
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError is a ValueError
        log.warning("%s unreadable (%s); treated as missing", path, exc)
        return None


def read_summary(path: Path) -> dict[str, Any]:
    """`summary.json` as written (inf/nan still strings: see `to_float`); {} when absent.

    Anything but a JSON object (a list, a number: a file another program wrote) makes the job
    `unknown` with the reason, never a crash of the report.
    """
    data = _read(path, json.loads)
    if data is None:
        return {}
    if not isinstance(data, dict):
        return {"status": "unknown", "error": f"{path} holds a JSON {type(data).__name__}"}
    return data


def read_yaml(path: Path) -> Any:
    """A Hydra `.hydra/*.yaml` file; None when absent or unreadable."""
    return _read(path, yaml.safe_load)


def resolve_interpolations(config: dict[str, Any]) -> dict[str, Any]:
    """Hydra saves a job's config unresolved: `hidden_size: ${model.emb_size}` becomes the
    value it stood for. A value that cannot be resolved here (a resolver of another program)
    leaves the config as it was written."""
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(config), resolve=True)
    except Exception as exc:  # noqa: BLE001 - any resolver error: keep the written values
        log.warning("config interpolations left unresolved: %s", exc)
        return config
    return resolved if isinstance(resolved, dict) else config


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _setting(config: dict[str, Any], key: str, summary: dict[str, Any]) -> Any:
    """The config's value of `key`; None for a `schedule.*` key the job's schedule does not
    read (`schedule_reads` in its summary, from lmexp's registry), which means nothing there.
    A job that recorded no `schedule_reads` (an older lmexp) shows the value as it is."""
    section, _, leaf = key.partition(".")
    reads = summary.get("schedule_reads")
    if section == "schedule" and isinstance(reads, list) and leaf not in reads:
        return None
    return _lookup(config, key)


def _names(config: dict[str, Any], overrides: list[str]) -> tuple[str, str]:
    """Architecture and optimizer: the config's, else the `model=`/`optim=` overrides'."""
    given = dict(o.split("=", 1) for o in overrides if "=" in o)
    names = []
    for group in ("model", "optim"):
        name = _lookup(config, f"{group}.name") or given.get(group)
        names.append(str(name or "unknown"))
    return names[0], names[1]


def _recorded(run: RunDir) -> tuple[dict[str, Any], list[str], float]:
    """The job's config, overrides and number in its sweep, from its record (`.lmexp/`).

    A job of an lmexp that kept no record (or copied without it) falls back on Hydra's files:
    the saved config with its interpolations resolved, the overrides, and Hydra's job number
    in a multirun. Never from the directory's name, which a user may have chosen.
    """
    config, launch = read_recorded_config(run), read_launch(run)
    if config is None:
        config = resolve_interpolations(read_yaml(run.hydra_config) or {})
    if launch is not None:
        num = launch.job_num
        return config, list(launch.overrides), float(num) if num is not None else math.nan
    overrides = [str(o) for o in read_yaml(run.hydra_overrides) or []]
    hydra = (read_yaml(run.hydra_settings) or {}).get("hydra")
    hydra = hydra if isinstance(hydra, dict) else {}
    num = _lookup(hydra, "job.num") if str(hydra.get("mode")) == "MULTIRUN" else None
    return config, overrides, float(num) if isinstance(num, int) else math.nan


def _curve_stats(curve: pd.DataFrame, summary: dict[str, Any]) -> dict[str, float]:
    """Best validation ppl, its epoch and the train ppl then, from the CSV (else the summary)."""
    finite = curve[curve["val_ppl"].map(math.isfinite)]
    if finite.empty:
        best = {
            "best_val_ppl": to_float(summary.get("best_val_ppl")),
            "best_epoch": to_float(summary.get("best_epoch")),
            "train_ppl_at_best": math.nan,
            "time_to_best_s": math.nan,
        }
    else:
        row = finite.loc[finite["val_ppl"].idxmin()]
        best = {
            "best_val_ppl": row["val_ppl"],
            "best_epoch": row["epoch"],
            "train_ppl_at_best": row["train_ppl"],
            "time_to_best_s": row["wall_time_s"],  # training seconds to that evaluation
        }
    if len(curve):
        last = curve.iloc[-1]
        # tokens_per_s is cumulative over the current epoch: the last row is its average.
        final = (last["train_ppl"], last["val_ppl"], last["tokens_per_s"])
    else:
        final = (
            to_float(summary.get("final_train_ppl")),
            to_float(summary.get("final_val_ppl")),
            math.nan,
        )
    names = ("last_train_ppl", "last_val_ppl", "tokens_per_s")
    return {**best, **dict(zip(names, final, strict=True)), "n_points": float(len(curve))}


def _run_facts(
    summary: dict[str, Any], curve: pd.DataFrame, overrides: list[str], job_dir: Path
) -> dict:
    last = curve.iloc[-1] if len(curve) else {}
    wall = to_float(summary.get("wall_time_s"))
    epochs = to_float(summary.get("epochs"))
    command = summary.get("command") or shlex.join(["python", "-m", "lmexp.train", *overrides])
    return {
        # No summary.json (a job writes it in its first second): killed before that, or copied
        # without it. Metrics rows say nothing about whether it still runs, hence "unknown".
        "status": effective_status(summary, job_dir) if summary.get("status") else "unknown",
        "params": to_float(summary.get("params")),
        "test_ppl": to_float(summary.get("test_ppl")),
        # the model the test pass scored: the job writes it only when it is not "best"
        "test_checkpoint": summary.get("test_checkpoint", "best"),
        # trainer.test_whole: the test split read as one sequence (IFT6135's text)
        "test_ppl_whole": to_float(summary.get("test_ppl_whole")),
        "epochs": epochs if math.isfinite(epochs) else to_float(last.get("epoch")),
        "wall_time_s": wall if math.isfinite(wall) else to_float(last.get("wall_time_s")),
        "stop_reason": summary.get("stop_reason"),
        "error_type": summary.get("error_type"),
        "pruned": _pruned_text(summary.get("pruned")),
        "error": summary.get("error"),
        "command": command,
        # when and where it ran, and how busy the machine was: figures.wall_clock_note
        "started_at": summary.get("resumed_at") or summary.get("started_at"),
        "ended_at": summary.get("ended_at"),
        "host": summary.get("host"),
        "cpu_count": to_float(summary.get("cpu_count")),
        "load_1m": max(
            (to_float(summary.get(k)) for k in ("load_1m_start", "load_1m_end")),
            key=lambda v: v if math.isfinite(v) else -math.inf,
        ),
    }


def _pruned_text(decision: Any) -> str | None:
    """A pruned job's decision (`summary.json` "pruned") in words: what it was compared with."""
    if not isinstance(decision, dict):
        return None
    where = (
        f"rung {decision.get('rung')} (evaluation {decision.get('evaluation')})"
        if decision.get("rule") == "asha"
        else f"evaluation {decision.get('evaluation')}"
    )
    value, threshold = to_float(decision.get("value")), to_float(decision.get("threshold"))
    bar = "best 1/η" if decision.get("rule") == "asha" else "median"
    return (
        f"{decision.get('rule')} at {where}: val ppl {value:.1f} worse than the {bar} "
        f"{threshold:.1f} of {decision.get('jobs')} jobs"
    )


def _job_row(job_dir: Path, job_id: str) -> tuple[dict[str, Any], pd.DataFrame]:
    run = RunDir(job_dir)
    config, overrides, job_num = _recorded(run)
    summary = read_summary(run.summary)
    curve = read_metrics(run.metrics)
    model, optim = _names(config, overrides)
    row: dict[str, Any] = {
        "job_id": job_id,
        "sweep": job_dir.parent.name,
        "job_num": job_num,
        "model": model,
        "model_label": summary.get("model_label"),  # the label of lmexp's model registry
        "model_rank": to_float(summary.get("model_rank")),  # its place in tables
        "optim": optim,
        "optim_label": summary.get("optim_label"),  # the same, of the optimizer registry
        "optim_rank": to_float(summary.get("optim_rank")),
        "optim_note": summary.get("optim_note"),  # what the label stands for (a caption's)
    }
    for column, key in HYPERPARAMETERS.items():
        row[column] = _setting(config, key, summary)
    row["keep_prob"] = 1.0 - to_float(row["dropout"])
    # its cell (the jobs it repeats with other seeds), what its seed draws, its code version
    recorded_cell = summary.get("cell_id")
    row["cell"] = recorded_cell if isinstance(recorded_cell, str) else cell_of(config)
    row["pairing"] = pairing_of(config)
    commit = summary.get("git_commit")
    row["git_commit"] = commit if isinstance(commit, str) else None
    row.update(_curve_stats(curve, summary))
    row.update(_run_facts(summary, curve, overrides, Path(job_dir)))
    row["duplicate_steps"] = int(curve.attrs.get("duplicate_steps", 0))
    row.update({"overrides": " ".join(overrides), "job_dir": str(job_dir)})
    return row, curve


def collect(paths: Iterable[Path | str]) -> Collection:
    """Every job under `paths` (sweep dirs, run dirs, or folders of them), one row each."""
    dirs = find_job_dirs(paths)
    ids = job_ids(dirs)
    rows, curves = [], {}
    for job_dir in dirs:
        row, curve = _job_row(job_dir, ids[job_dir])
        rows.append(row)
        curves[row["job_id"]] = curve
    return Collection(_numeric_hyperparameters(_display_facts(pd.DataFrame(rows))), curves)


def curves(paths: Iterable[Path | str]) -> pd.DataFrame:
    """Every job's curve under `paths` as one tidy DataFrame (`Collection.tidy`)."""
    return collect(paths).tidy()


def _display_facts(jobs: pd.DataFrame) -> pd.DataFrame:
    """A job that recorded no label and rank (killed before its first second, or written by an
    older lmexp) takes those of another job of its architecture or optimizer; with none, its
    name, sorted after every ranked one."""
    for name, facts in (("model", ("model_label", "model_rank")), ("optim", _OPTIM_FACTS)):
        for column in facts:
            known = jobs.dropna(subset=[column]).groupby(name)[column].first()
            jobs[column] = jobs[column].fillna(jobs[name].map(known))
        jobs[f"{name}_label"] = jobs[f"{name}_label"].fillna(jobs[name]).astype(str)
        jobs[f"{name}_rank"] = jobs[f"{name}_rank"].astype(float).fillna(math.inf)
    return jobs


_OPTIM_FACTS = ("optim_label", "optim_rank", "optim_note")


def _numeric_hyperparameters(jobs: pd.DataFrame) -> pd.DataFrame:
    """Columns that hold only numbers and nulls become float, so they sort and compare."""
    for column in HYPERPARAMETERS:
        values = jobs[column].dropna()
        if jobs[column].dtype == object and all(_is_number(v) for v in values):
            jobs[column] = pd.to_numeric(jobs[column], errors="coerce").astype(float)
    return jobs


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
