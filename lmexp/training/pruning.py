"""Early stopping of a sweep's hopeless jobs (`prune=median|asha`), decided from its records.

After each evaluation a job of a sweep asks: given every job of its sweep directory so far
(their `metrics.csv` rows, the one record every job writes as it goes), should it stop? The
rule is Optuna's own (`MedianPruner`, `SuccessiveHalvingPruner`, i.e. asynchronous successive
halving); lmexp only builds the in-memory study the rule reads, from the records: each other
job is a trial whose intermediate values are its validation perplexities by evaluation count
(1, 2, ...), with the rungs it has reached. Each job judges itself, so a stopped job frees its
slot at once under any launcher, and a decision needs no sweeper process: it survives a
crashed sweeper. Every decision is written to the job's `.lmexp/pruning.json` before it is
acted on, and replayed when a resumed job reaches that evaluation again, so a resume can
neither escape a decision nor get a different one.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from lmexp.atomic import replacing
from lmexp.run.rundir import RunDir
from lmexp.run.sweepdir import SweepDir
from lmexp.validation import check_choices, require_positive

PRUNERS = ("none", "median", "asha")
PRUNED = "pruned"  # the stop reason, and the job's status


@dataclass
class PruneConfig:
    """Which rule stops a sweep's jobs early, and its settings (docs/sweeps.md)."""

    name: str = "none"  # none | median | asha
    # median: a job is stopped when its best validation perplexity so far is worse than the
    # median of the other jobs' at the same evaluation
    warmup: int = 1  # median: the first `warmup` evaluations of a job are never judged
    min_jobs: int = 3  # median: other jobs that must have reached an evaluation to judge there
    # asha: rungs at evaluation min_resource * reduction_factor ** (min_early_stopping_rate + k);
    # at each rung a job goes on only if it is in the best 1/reduction_factor of the jobs that
    # have reached that rung so far
    # the first rung at the 2nd evaluation: at the 1st, SGD's early transient misranks a
    # grid's best cells (benchmarks/pruning.py, docs/sweeps.md)
    min_resource: int = 2
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"name": PRUNERS}

    def __post_init__(self) -> None:
        check_choices("prune", self, self.CHOICES)
        require_positive(
            "prune", warmup=self.warmup, min_jobs=self.min_jobs, min_resource=self.min_resource
        )
        if self.reduction_factor < 2:
            raise ValueError(
                f"prune.reduction_factor={self.reduction_factor} must be at least 2 (the share "
                "of jobs a rung keeps is 1/reduction_factor); set prune.reduction_factor=3"
            )
        if self.min_early_stopping_rate < 0:
            raise ValueError(
                f"prune.min_early_stopping_rate={self.min_early_stopping_rate} must be >= 0"
            )


def _pruner(cfg: PruneConfig) -> Any:
    import optuna

    if cfg.name == "median":
        # Optuna's steps are evaluation counts here (1, 2, ...): evaluations 1..warmup are exempt
        return optuna.pruners.MedianPruner(
            n_startup_trials=1, n_warmup_steps=cfg.warmup + 1, n_min_trials=cfg.min_jobs
        )
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=cfg.min_resource,
        reduction_factor=cfg.reduction_factor,
        min_early_stopping_rate=cfg.min_early_stopping_rate,
    )


def read_values(path: Path) -> list[float]:
    """The validation perplexities of a `metrics.csv`, in order; a non-finite or unreadable
    value is +inf (a diverged evaluation is the worst there is)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or "val_ppl" not in rows[0]:
        return []
    column = rows[0].index("val_ppl")
    values = []
    for row in rows[1:]:
        if len(row) != len(rows[0]):
            continue  # a half-written last line
        try:
            value = float(row[column])
        except ValueError:
            value = math.inf
        values.append(value if math.isfinite(value) else math.inf)
    return values


class Judge:
    """Decides, at each evaluation of one job of a sweep, whether it goes on."""

    def __init__(self, cfg: PruneConfig, run: RunDir, sweep: SweepDir) -> None:
        self.cfg, self.run, self.sweep = cfg, run, sweep
        self.decisions: dict[int, dict[str, Any]] = {
            int(d["evaluation"]): d for d in _read_decisions(run.pruning)
        }
        self.pruned: dict[str, Any] | None = None  # the decision that stopped the job

    def __call__(self, val_ppl: float) -> str | None:
        """After the job's evaluation of validation perplexity `val_ppl` (not yet in its
        metrics.csv): PRUNED to stop the job, None to go on."""
        own = [*read_values(self.run.metrics), val_ppl if math.isfinite(val_ppl) else math.inf]
        evaluation = len(own)
        decision = self.decisions.get(evaluation)
        if decision is None:  # a resumed job replays what it decided here before
            decision = self._decide(own)
            if decision is None:
                return None
            self.decisions[evaluation] = decision
            _write_decisions(self.run.pruning, list(self.decisions.values()))
        if decision["decision"] == PRUNED:
            self.pruned = decision
            return PRUNED
        return None

    def _decide(self, own: list[float]) -> dict[str, Any] | None:
        """Optuna's verdict on this job against the others' records, with what it compared."""
        import optuna
        from optuna.trial import TrialState, create_trial

        others = [
            values
            for job in self.sweep.jobs()
            if job.root.resolve() != self.run.root.resolve()
            and (values := read_values(job.metrics))
        ]
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="minimize")
        for values in others:
            study.add_trial(
                create_trial(
                    state=TrialState.COMPLETE,  # what it has reached counts, finished or not
                    value=min(values),
                    intermediate_values=dict(enumerate(values, start=1)),
                    system_attrs=self._rungs(values),
                )
            )
        evaluation = len(own)
        earlier = self._rungs(own[:-1])
        study.add_trial(
            create_trial(
                state=TrialState.RUNNING,
                intermediate_values=dict(enumerate(own, start=1)),
                system_attrs=earlier,
            )
        )
        trial = study.get_trials(deepcopy=False)[-1]
        stop = _pruner(self.cfg).prune(study, trial)
        compared = self._comparison(own, others, len(earlier))
        if compared is None:
            return None  # nothing was judged at this evaluation (warm-up, between rungs)
        return {"evaluation": evaluation, "decision": PRUNED if stop else "continue", **compared}

    def _rung_step(self, rung: int) -> int:
        cfg = self.cfg
        return cfg.min_resource * cfg.reduction_factor ** (cfg.min_early_stopping_rate + rung)

    def _rungs(self, values: list[float]) -> dict[str, float]:
        """The rungs a job with these evaluations has reached, as Optuna's ASHA records them."""
        if self.cfg.name != "asha":
            return {}
        rungs, rung = {}, 0
        while self._rung_step(rung) <= len(values):
            rungs[f"completed_rung_{rung}"] = values[self._rung_step(rung) - 1]
            rung += 1
        return rungs

    def _comparison(
        self, own: list[float], others: list[list[float]], rung: int
    ) -> dict[str, Any] | None:
        """What the rule compared at this evaluation: the job's value, the threshold it had to
        beat and how many jobs it was compared with; None where the rule did not judge."""
        import numpy as np

        evaluation, cfg = len(own), self.cfg
        if cfg.name == "median":
            at = [v[evaluation - 1] for v in others if len(v) >= evaluation]
            if evaluation <= cfg.warmup or len(at) < cfg.min_jobs:
                return None
            return {
                "rule": "median",
                "value": min(own),
                "threshold": float(np.percentile(at, 50)),
                "jobs": len(at),
            }
        if evaluation != self._rung_step(rung):
            return None
        key = f"completed_rung_{rung}"
        competing = sorted([r[key] for r in map(self._rungs, others) if key in r] + [own[-1]])
        keep = max(len(competing) // cfg.reduction_factor, 1)
        return {
            "rule": "asha",
            "rung": rung,
            "value": own[-1],
            "threshold": competing[keep - 1],
            "jobs": len(competing),
        }


def _read_decisions(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(data, list):
        return []
    return [d for d in data if isinstance(d, dict) and isinstance(d.get("evaluation"), int)]


def _write_decisions(path: Path, decisions: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, "w", encoding="utf-8") as f:
        json.dump(sorted(decisions, key=lambda d: d["evaluation"]), f, indent=1)
        f.write("\n")
