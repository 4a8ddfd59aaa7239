"""A sweep's cells: jobs that differ only in their seed, pooled into means, intervals and tests.

A cell is the set of jobs with one `cell` id (recorded by each job: a digest of its validated
config without the seed, lmexp/run/record.py). For each cell and metric: n, mean, standard
deviation and a 95 % interval (analysis.stats); across cells: every pair compared on the chosen
metric, Holm-adjusted, as letters and one sentence. Only completed jobs count in the
statistics; the others (diverged, failed, running, ...) are counted per cell and named, never
dropped silently. `cells(paths)` is the same as a tidy DataFrame.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import stats
from .collect import collect
from .formats import MISSING, Table
from .tables import fmt_num, order_jobs, varying_hyper_columns

# metric column of the jobs frame -> its header; the first two can be compared
METRICS = {
    "test_ppl": "Test PPL",
    "test_ppl_whole": "Test PPL, one sequence",
    "best_val_ppl": "Val PPL",
    "time_to_best_s": "Time to best (s)",
    "tokens_per_s": "Tokens/s",
}
COMPARED = ("test_ppl", "test_ppl_whole", "best_val_ppl")
COUNTED = "completed"  # the status whose values enter a cell's statistics


@dataclass
class CellStudy:
    """The cells of a sweep, compared on one metric."""

    frame: pd.DataFrame  # one row per cell, best first: see `cell_frame`
    pairs: pd.DataFrame  # one row per pair of cells: p, Holm-adjusted p, test, different
    metric: str
    alpha: float
    scale: str
    sentence: str
    notes: list[str] = field(default_factory=list)


def pick_metric(jobs: pd.DataFrame, metric: str = "auto") -> str:
    """`auto`: test perplexity if every completed job has one, else best validation."""
    if metric != "auto":
        if metric not in COMPARED:
            raise ValueError(f"--metric {metric} unknown; choose auto or one of {list(COMPARED)}")
        return metric
    done = jobs[jobs["status"] == COUNTED]
    has_test = len(done) and done["test_ppl"].map(lambda v: math.isfinite(float(v))).all()
    return "test_ppl" if has_test else "best_val_ppl"


def has_repeats(jobs: pd.DataFrame) -> bool:
    """Whether some cell holds jobs of two or more seeds (a sweep with seeds=K)."""
    if "cell" not in jobs or "seed" not in jobs:
        return False
    return bool(jobs.dropna(subset=["seed"]).groupby("cell")["seed"].nunique().gt(1).any())


def cell_frame(
    jobs: pd.DataFrame, level: float = stats.LEVEL, scale: str = "linear"
) -> pd.DataFrame:
    """One row per cell: its identity (model, optimizer, the settings that vary between cells),
    its jobs by status, seeds and code versions, and per metric n, mean, sd, low, high."""
    ordered = order_jobs(jobs)
    varying = [c for c in varying_hyper_columns(ordered) if c.source != "seed"]
    rows = []
    for cell, group in ordered.groupby("cell", sort=False):
        first = group.iloc[0]
        done = group[group["status"] == COUNTED]
        others = group[group["status"] != COUNTED]["status"].value_counts().to_dict()
        again = done["seed"].notna() & done["seed"].duplicated()  # a rerun of one seed
        if again.any():
            others["a seed run again"] = int(again.sum())
            done = done[~again]
        row = {
            "cell": cell,
            "label": _label(first, varying),
            **{k: first[k] for k in ("model", "model_label", "model_rank", "optim")},
            **{k: first[k] for k in ("optim_label", "optim_rank")},
            "job_ids": list(done["job_id"]),  # those the statistics count, table order
            **{c.source: first[c.source] for c in varying},
            "jobs": len(group),
            "not_counted": others,
            "seeds": sorted(int(s) for s in done["seed"].dropna()) if "seed" in done else [],
            "commits": sorted({c for c in group["git_commit"].dropna()}),
            "pairing": first.get("pairing"),
            "first_exp": int(first["exp"]),
        }
        for metric in METRICS:
            values = [float(v) for v in done[metric]]
            summary = stats.interval(values, level, scale if metric in COMPARED else "linear")
            row.update(
                {
                    f"{metric}_n": summary.n,
                    f"{metric}_mean": summary.mean,
                    f"{metric}_sd": summary.sd,
                    f"{metric}_low": summary.low,
                    f"{metric}_high": summary.high,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _label(row: pd.Series, varying: list) -> str:
    parts = [str(row["model_label"]), str(row["optim_label"])]
    parts += [f"{c.header}={c.fmt(row[c.source])}" for c in varying if _given(row[c.source])]
    return " ".join(parts)


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def compare_cells(
    jobs: pd.DataFrame,
    metric: str = "auto",
    alpha: float = stats.ALPHA,
    test: str = "auto",
    scale: str = "linear",
    level: float = stats.LEVEL,
) -> CellStudy:
    """Every cell of `jobs` with its statistics, sorted by the mean of `metric` (lowest first),
    every pair compared (Holm-adjusted at `alpha`), letters, and the sentence that sums it up.

    `test`: welch, paired (pairs that share seeds and what a seed draws), or auto (paired where
    it applies, else Welch)."""
    if test not in stats.TESTS:
        raise ValueError(f"--test {test} unknown; choose from {list(stats.TESTS)}")
    metric = pick_metric(jobs, metric)
    frame = cell_frame(jobs, level, scale)
    frame = frame.sort_values(
        [f"{metric}_mean", "first_exp"], na_position="last", kind="stable"
    ).reset_index(drop=True)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    values = _values(jobs, metric, scale)
    pairs = _pairs(frame, values, test)
    different = {
        frozenset((r.a, r.b)) for r in pairs.itertuples() if r.p_holm < alpha
    }  # NaN compares False: an untested pair is never "different"
    ranked = [c for c in frame["cell"]]
    letters = stats.letters(ranked, different) if len(pairs) else dict.fromkeys(ranked, "")
    frame["group"] = frame["cell"].map(letters)
    study = CellStudy(frame, pairs, metric, alpha, scale, "", _notes(frame, metric))
    study.sentence = sentence(study)
    return study


def _values(jobs: pd.DataFrame, metric: str, scale: str) -> dict[str, dict[int, float]]:
    """cell -> {seed: value} of its completed jobs (log values on the log scale)."""
    out: dict[str, dict[int, float]] = {}
    done = jobs[(jobs["status"] == COUNTED)]
    for row in done.itertuples():
        value = float(getattr(row, metric))
        if not math.isfinite(value) or (scale == "log" and value <= 0):
            continue
        seed = int(row.seed) if _given(row.seed) else -len(out.get(row.cell, {})) - 1
        if seed in out.get(row.cell, {}):
            continue  # a seed run again counts once, as in cell_frame
        out.setdefault(row.cell, {})[seed] = math.log(value) if scale == "log" else value
    return out


def _pairs(frame: pd.DataFrame, values: dict[str, dict[int, float]], test: str) -> pd.DataFrame:
    rows = []
    pairing = dict(zip(frame["cell"], frame["pairing"], strict=True))
    for a, b in itertools.combinations(list(frame["cell"]), 2):
        va, vb = values.get(a, {}), values.get(b, {})
        shared = sorted(set(va) & set(vb))
        pairable = len(shared) >= 2 and pairing[a] == pairing[b] and pairing[a] is not None
        paired = test == "paired" or (test == "auto" and pairable)
        if paired and len(shared) >= 2:
            p = stats.p_value([va[s] for s in shared], [vb[s] for s in shared], paired=True)
            used = "paired t"
        else:
            p = stats.p_value(list(va.values()), list(vb.values()))
            used = "Welch t"
        rows.append({"a": a, "b": b, "test": used, "p": p})
    pairs = pd.DataFrame(rows, columns=["a", "b", "test", "p"])
    pairs["p_holm"] = stats.holm(list(pairs["p"])) if len(pairs) else []
    return pairs


def _notes(frame: pd.DataFrame, metric: str) -> list[str]:
    """What a reader must know to trust the table: unequal n, runs left out, mixed code."""
    notes = []
    counts = frame[f"{metric}_n"]
    if counts.nunique() > 1:
        notes.append(
            f"cells have different numbers of runs (n from {counts.min()} to {counts.max()})"
        )
    for row in frame.itertuples():
        if row.not_counted:
            left = ", ".join(f"{n} {status}" for status, n in sorted(row.not_counted.items()))
            notes.append(f"{row.label}: {left} (not in its statistics)")
        if len(row.commits) > 1:
            notes.append(f"{row.label}: its runs come from {len(row.commits)} code versions")
    return notes


def _name(frame: pd.DataFrame, cell: str) -> str:
    return str(frame.loc[frame["cell"] == cell, "label"].iloc[0])


def sentence(study: CellStudy) -> str:
    """The table in one sentence: the best cell, those not distinguishable from it, the rest."""
    frame, metric = study.frame, METRICS[study.metric]
    counted = frame[frame[f"{study.metric}_n"] > 0]
    if counted.empty:
        return f"No completed run has a {metric}."
    best = counted.iloc[0]
    head = f"{best['label']} has the lowest mean {metric}"
    if best[f"{study.metric}_n"] < 2:
        return head + "; with one run in it, no difference can be tested (run seeds=3 or more)."
    pairs = study.pairs
    with_best = pairs[(pairs["a"] == best["cell"]) | (pairs["b"] == best["cell"])]
    alike, worse, untested = [], [], []
    for row in with_best.itertuples():
        other = row.b if row.a == best["cell"] else row.a
        if math.isnan(row.p_holm):
            untested.append(_name(frame, other))
        elif row.p_holm < study.alpha:
            worse.append((_name(frame, other), row.p_holm))
        else:
            alike.append(_name(frame, other))
    parts = [head]
    if alike:
        parts.append(
            f"{_listed(alike)} {'is' if len(alike) == 1 else 'are'} not distinguishable from it"
        )
    if worse:
        largest = max(p for _, p in worse)
        every = (
            "every other cell is"
            if not alike and not untested
            else f"{_listed([n for n, _ in worse])} {'is' if len(worse) == 1 else 'are'}"
        )
        parts.append(f"{every} worse (p {_p_text(largest)} after Holm, alpha = {study.alpha:g})")
    if untested:
        parts.append(f"{_listed(untested)} could not be tested (fewer than two runs)")
    return "; ".join(parts) + "."


def _be(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _p_text(p: float) -> str:
    for bound in (0.001, 0.01):
        if p < bound:
            return f"< {bound:g}"
    return f"<= {p:.2g}"


def cell_table(study: CellStudy) -> Table:
    """The cells sorted by the mean of the compared metric: `mean ± half-width (n)` per metric
    (`mean [low, high]` on the log scale), with the letters of the comparison."""
    frame, log = study.frame, study.scale == "log"
    varying = [c for c in varying_hyper_columns(_as_jobs(frame)) if c.source in frame]
    metrics = [m for m in METRICS if frame[f"{m}_n"].gt(0).any()]
    headers = ["#", "Model", "Optim", *(c.header for c in varying), "n"]
    headers += [METRICS[m] for m in metrics] + ["Group"]
    cells = []
    for row in frame.itertuples():
        n = getattr(row, f"{study.metric}_n")
        left = sum(row.not_counted.values())
        line = [str(row.rank), str(row.model_label), str(row.optim_label)]
        line += [c.fmt(getattr(row, c.source)) for c in varying]
        line.append(f"{n}" + (f" (+{left} not counted)" if left else ""))
        for m in metrics:
            line.append(_estimate(row, m, log and m in COMPARED))
        line.append(row.group or MISSING)
        cells.append(line)
    compared = METRICS[study.metric]
    best = {(0, headers.index(compared))} if len(frame) and compared in headers else set()
    numeric = [True, False, False, *(c.numeric for c in varying), True]
    numeric += [True] * len(metrics) + [False]
    return Table("cells", _caption(study), headers, cells, best, numeric, frame)


def _estimate(row: object, metric: str, log: bool) -> str:
    n = getattr(row, f"{metric}_n")
    mean, low, high = (getattr(row, f"{metric}_{k}") for k in ("mean", "low", "high"))
    spec = ".0f" if metric == "tokens_per_s" else ".1f"
    if n == 0:
        return MISSING
    if n == 1 or not math.isfinite(low):
        return fmt_num(mean, spec)
    if log:
        return f"{fmt_num(mean, spec)} [{fmt_num(low, spec)}, {fmt_num(high, spec)}]"
    return f"{fmt_num(mean, spec)} ± {fmt_num((high - low) / 2, spec)}"


def _as_jobs(frame: pd.DataFrame) -> pd.DataFrame:
    """The cells frame read as jobs, to find which settings vary between cells."""
    return frame.assign(exp=frame["rank"])


def _caption(study: CellStudy) -> str:
    metric = METRICS[study.metric]
    how = (
        "mean [95 % interval], Student's t on the logarithm (the loss): the mean is geometric"
        if study.scale == "log"
        else "mean ± half-width of the 95 % interval (Student's t)"
    )
    tests = sorted(set(study.pairs["test"])) if len(study.pairs) else []
    return (
        f"Cells (jobs that differ only in their seed), sorted by mean {metric}, each as {how}; "
        f"n: completed runs in the cell (a run that diverged, failed or did not finish is not "
        f"counted, and said so). Group: cells sharing a letter are not distinguishable on "
        f"{metric} at alpha = {study.alpha:g} ({' and '.join(tests) or 'no test'} on every "
        f"pair, Holm-adjusted). {study.sentence}"
        + (" Note: " + "; ".join(study.notes) + "." if study.notes else "")
    )


def pairs_table(study: CellStudy) -> Table:
    """Every pair of cells: the test used, its p-value and Holm's adjustment."""
    names = dict(zip(study.frame["cell"], study.frame["label"], strict=True))
    cells = [
        [
            names[r.a],
            names[r.b],
            r.test,
            fmt_num(r.p, ".3g"),
            fmt_num(r.p_holm, ".3g"),
            "yes" if r.p_holm < study.alpha else "no",
        ]
        for r in study.pairs.itertuples()
    ]
    caption = (
        f"Every pair of cells compared on {METRICS[study.metric]}: the test (Welch's t, or the "
        "paired t where both cells ran the same seeds from the same initial weights and "
        f"batches), its two-sided p-value, Holm's adjustment over all pairs, and whether the "
        f"pair differs at alpha = {study.alpha:g}."
    )
    headers = ["Cell", "Other cell", "Test", "p", "p (Holm)", "Different"]
    return Table(
        "pairs", caption, headers, cells, set(), [False, False, False, True, True, False],
        study.pairs,
    )  # fmt: skip


def cells(
    paths: Iterable[Path | str],
    metric: str = "auto",
    alpha: float = stats.ALPHA,
    test: str = "auto",
    scale: str = "linear",
) -> pd.DataFrame:
    """The cells of the jobs under `paths` as one tidy DataFrame (best first): statistics per
    metric, the comparison's `group` letters; `.attrs` holds the sentence and the pairs."""
    study = compare_cells(collect(paths).jobs, metric, alpha, test, scale)
    frame = study.frame.copy()
    frame.attrs.update(
        {
            "metric": study.metric,
            "sentence": study.sentence,
            "pairs": study.pairs,
            "notes": study.notes,
        }
    )
    return frame
