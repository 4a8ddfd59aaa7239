"""The search loop: ask Optuna for a batch of trials, launch them as lmexp jobs, tell the results.

Each batch of `n_jobs` trials goes through the configured Hydra launcher in one call (the same
launchers as a grid: local, joblib, submitit, SLURM), so trials run side by side wherever a
grid's jobs would. TPE's `constant_liar` keeps the trials of one batch apart. A job returns its
best validation perplexity, `+inf` when it failed or diverged before any finite evaluation (so
TPE learns to avoid such values); a job the launcher itself reports as failed is a failed trial.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lmexp.config import repeat_seeds
from lmexp.run.record import next_job_number
from lmexp.run.sweepdir import SweepDir
from lmexp.search.repeats import with_seed
from lmexp.search.space import SearchSpace, search_space
from lmexp.search.study import claim, open_study, recover_orphans, requeue
from lmexp.training.pruning import PRUNED

log = logging.getLogger(__name__)

STATUS_ATTR, JOB_ATTR = "lmexp_status", "lmexp_job_dir"  # what each trial's job recorded
# with seeds=K: each repeat's seed, objective, status and directory, in seed order
SEEDS_ATTR, VALUES_ATTR = "lmexp_seeds", "lmexp_seed_values"
STATUSES_ATTR, JOBS_ATTR = "lmexp_statuses", "lmexp_job_dirs"


def run_search(
    settings: DictConfig,
    config: DictConfig,
    launcher: Any,
    arguments: list[str],
    validate: Any,
) -> Any:
    """Run `settings.n_trials` trials of the study; returns the study.

    `settings` is `hydra.sweeper`, `config` the multirun's config, `validate` the sweeper's
    `validate_batch_is_legal` (composes every job of a batch before it is launched).
    """
    from optuna.trial import TrialState

    space = search_space(settings.get("params") or {}, arguments)
    if not space.distributions:
        log.warning("the search space is empty: every trial runs the same job")
    sampler = settings.get("sampler") or {}
    study = open_study(
        name=str(settings.study_name),
        storage=settings.get("storage"),
        direction=str(settings.direction),
        sampler=_sampler_factory(sampler),
        seed=sampler.get("seed"),
    )
    recover_orphans(study)
    before = len(study.trials)
    log.info(
        "Optuna study %r (%s): %d trials so far; this search adds %d",
        study.study_name,
        settings.get("storage") or "in memory",
        before,
        settings.n_trials,
    )
    sweep = SweepDir(config.hydra.sweep.dir)
    sweep.root.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep.multirun)

    n_trials, batch_size = int(settings.n_trials), max(1, int(settings.n_jobs))
    # seeds=K: a trial is K jobs (its seeds), launched together; it scores their mean
    seeds = repeat_seeds(int(config.seed), int(config.get("seeds") or 1))
    # a relaunch into the same sweep directory (a fixed hydra.sweep.dir) numbers on from its
    # jobs: starting at 0 again would send the retried trial into a finished job's directory
    first, launched = next_job_number(sweep), 0
    while launched < n_trials:
        trials = [
            study.ask(space.distributions) for _ in range(min(batch_size, n_trials - launched))
        ]
        for trial in trials:
            claim(study, trial)
        overrides = [
            with_seed(space.job_overrides(trial.params), seed)
            if len(seeds) > 1
            else space.job_overrides(trial.params)
            for trial in trials
            for seed in seeds
        ]
        try:
            validate(overrides)
            returns = launcher.launch(overrides, initial_job_idx=first + launched * len(seeds))
        except BaseException:  # Ctrl-C, SIGTERM, a launcher error: these trials did not finish
            for trial in trials:  # requeued whole: every seed of it runs again
                requeue(study, trial.number, trial.params, running=trial)
            raise
        for k, trial in enumerate(trials):
            repeats = list(returns[k * len(seeds) : (k + 1) * len(seeds)])
            _tell(study, trial, repeats, seeds, TrialState)
        launched += len(trials)
    write_results(study, sweep.search_results)
    return study


def _sampler_factory(sampler: Any) -> Any:
    """`hydra.sweeper.sampler` (`_target_` + arguments, TPE by default) as a seed -> sampler."""
    from hydra.utils import get_class

    options = OmegaConf.to_container(sampler, resolve=True) if sampler else {}
    target = options.pop("_target_", "optuna.samplers.TPESampler")
    options.pop("seed", None)
    cls = get_class(target)

    def make(seed: int | None) -> Any:
        try:
            return cls(seed=seed, **options)
        except TypeError as exc:
            raise ValueError(
                f"hydra.sweeper.sampler: {target} does not take {sorted(options)} ({exc}); "
                "remove the key with ~hydra.sweeper.sampler.<key>"
            ) from None

    return make


def _tell(study: Any, trial: Any, rets: list[Any], seeds: list[int], states: Any) -> None:
    """Report a trial to the study: its job's result, or with seeds=K the mean of its K jobs'
    (+inf if any of them found none: a seed that fails counts, it is not dropped), with each
    job's status and directory."""
    from hydra.core.utils import JobStatus

    dirs = [_job_dir(ret) for ret in rets]
    statuses = [_job_status(d) if d is not None else None for d in dirs]
    if dirs[0] is not None:
        trial.set_user_attr(JOB_ATTR, str(dirs[0]))
    if statuses[0] is not None:
        trial.set_user_attr(STATUS_ATTR, statuses[0])
    raised = [ret for ret in rets if ret.status != JobStatus.COMPLETED]
    values = [math.nan if ret in raised else float(ret.return_value) for ret in rets]
    if len(rets) > 1:
        trial.set_user_attr(SEEDS_ATTR, seeds)
        trial.set_user_attr(VALUES_ATTR, values)
        trial.set_user_attr(STATUSES_ATTR, statuses)
        trial.set_user_attr(JOBS_ATTR, [str(d) for d in dirs])
    if raised:
        log.warning(
            "trial %d: its job raised (%s); the trial failed",
            trial.number,
            raised[0]._return_value,
        )
        study.tell(trial, state=states.FAIL)
        return
    if PRUNED in statuses:  # stopped early (prune=...): TPE learns it as a pruned trial
        study.tell(trial, state=states.PRUNED)
        return
    value = sum(values) / len(values)
    if math.isnan(value):
        study.tell(trial, state=states.FAIL)
    else:
        study.tell(trial, value)


def _job_dir(ret: Any) -> Path | None:
    try:
        return Path(ret.hydra_cfg.hydra.runtime.output_dir)
    except Exception:  # a launcher that returns no Hydra config with the job
        return None


def _job_status(job_dir: Path) -> str | None:
    from lmexp.run.resume import read_summary

    summary = read_summary(job_dir)
    return None if summary is None else summary.get("status")


def write_results(study: Any, path: Path) -> None:
    """The study's best trial so far (over every invocation), beside the sweep's jobs."""
    from lmexp.atomic import replacing

    try:
        best = study.best_trial
    except ValueError:  # no trial completed yet
        results: dict[str, Any] = {"name": "optuna", "study": study.study_name, "best": None}
    else:
        results = {
            "name": "optuna",
            "study": study.study_name,
            "best_trial": best.number,
            "best_params": best.params,
            "best_value": best.value,
            "trials": len(study.trials),
        }
    with replacing(path, mode="w", encoding="utf-8") as f:
        f.write(OmegaConf.to_yaml(OmegaConf.create(results)))
    log.info("Best trial so far: %s (%s)", results.get("best_params"), path)


__all__ = ["SearchSpace", "run_search", "write_results"]
