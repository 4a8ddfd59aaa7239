"""The search loop: ask Optuna for trials, launch them as lmexp jobs, tell the results.

`n_jobs` trials are in flight at once. With a launcher whose jobs run in processes of their own
(joblib, submitit), each trial is its own launch from a thread of this process, and a trial
that ends (a pruned one early: prune=) is told at once and its slot goes to the next trial: no
batch barrier. Under the in-process local launcher, `n_jobs` trials form a batch. TPE's
`constant_liar` keeps trials in flight apart. A job returns its best validation perplexity,
`+inf` when it failed or diverged before any finite evaluation (so TPE learns to avoid such
values); a job the launcher itself reports as failed is a failed trial; a pruned job's trial
is told PRUNED.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lmexp.config import repeat_seeds
from lmexp.run.record import next_job_number, take_job_numbers
from lmexp.run.sweepdir import SweepDir
from lmexp.search.naming import name_jobs_by_what_varies
from lmexp.search.repeats import with_seed
from lmexp.search.slots import launch_each, out_of_process
from lmexp.search.space import SearchSpace, search_space
from lmexp.search.storage import shown
from lmexp.search.study import (
    TrialHeartbeat,
    budget_left,
    claim,
    finished_meanwhile,
    open_study,
    over_budget,
    recover_orphans,
    requeue,
)
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

    space = search_space(settings.get("params") or {}, arguments)
    if not space.distributions:
        log.warning("the search space is empty: every trial runs the same job")
    # a trial's directory shows its sampled values (and seed, with seeds=K)
    varying = [*space.distributions, *(["seed"] if int(config.get("seeds") or 1) > 1 else [])]
    name_jobs_by_what_varies(config, arguments, varying)
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
    max_trials = settings.get("max_trials")
    log.info(
        "Optuna study %r (%s): %d trials so far; this search adds %d%s",
        study.study_name,
        shown(settings.get("storage")),
        before,
        settings.n_trials,
        "" if max_trials is None else f", while the study has fewer than {max_trials}",
    )
    sweep = SweepDir(config.hydra.sweep.dir)
    sweep.root.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep.multirun)

    n_trials, batch_size = int(settings.n_trials), max(1, int(settings.n_jobs))
    # seeds=K: a trial is K jobs (its seeds), launched together; it scores their mean
    seeds = repeat_seeds(int(config.seed), int(config.get("seeds") or 1))
    with TrialHeartbeat() as heartbeat:
        ask = _Asker(study, space, seeds, validate, sweep, max_trials, heartbeat)
        if batch_size > 1 and out_of_process(launcher):
            _search_async(ask, launcher, n_trials, batch_size)
        else:
            _search_in_batches(ask, launcher, n_trials, batch_size)
    write_results(study, sweep.search_results)
    return study


class _Asker:
    """Asks the study for trials (while its budget lasts) and turns each into its jobs'
    overrides (one per seed); hands out the sweep's job numbers; tells the results."""

    def __init__(
        self,
        study: Any,
        space: SearchSpace,
        seeds: list[int],
        validate: Any,
        sweep: SweepDir,
        max_trials: int | None,
        heartbeat: TrialHeartbeat,
    ) -> None:
        self.study, self.space, self.seeds, self.validate = study, space, seeds, validate
        self.sweep, self.max_trials, self.heartbeat = sweep, max_trials, heartbeat
        # a relaunch into the same sweep directory (a fixed hydra.sweep.dir) numbers on from its
        # jobs: starting at 0 again would send the retried trial into a finished job's directory
        self.next_num = next_job_number(sweep)

    def __call__(self) -> tuple[Any, list[list[str]]] | None:
        """The next trial and its jobs; None once the study has max_trials trials."""
        recover_orphans(self.study)  # another search of this study may have died meanwhile
        while budget_left(self.study, self.max_trials):
            trial = self.study.ask(self.space.distributions)
            if over_budget(self.study, trial, self.max_trials):
                continue  # its place went to another search's trial: ask again (or stop)
            claim(self.study, trial)
            self.heartbeat.hold(trial)
            plain = self.space.job_overrides(trial.params)
            jobs = [with_seed(plain, s) for s in self.seeds] if len(self.seeds) > 1 else [plain]
            return trial, jobs
        log.info("the study has %s trials (hydra.sweeper.max_trials): done", self.max_trials)
        return None

    def numbers(self, count: int) -> int:
        """The first of `count` consecutive job numbers no other search of this sweep has."""
        first = take_job_numbers(self.sweep, count, start=self.next_num)
        self.next_num = first + count
        return first

    def tell(self, trial: Any, returns: Any) -> None:
        from optuna.trial import TrialState

        self.heartbeat.release(trial)
        try:
            _tell(self.study, trial, list(returns), self.seeds, TrialState)
        except (ValueError, RuntimeError) as exc:
            if not finished_meanwhile(exc):
                raise
            # another search took this one for dead (no heartbeat for STALE_AFTER_S) and
            # queued its values again; the job's own record stays in its directory
            log.warning("trial %d was failed by another search meanwhile: %s", trial.number, exc)

    def requeue(self, trials: list[Any]) -> None:
        """These trials did not finish (a signal, a launcher error): each is queued again,
        whole (every seed of it runs again)."""
        for trial in trials:
            self.heartbeat.release(trial)
            requeue(self.study, trial.number, trial.params, running=trial)


def _search_in_batches(ask: _Asker, launcher: Any, n_trials: int, batch_size: int) -> None:
    """`batch_size` trials at a time through one launch; the batch waits for its slowest."""
    launched = 0
    while launched < n_trials:
        asked = []
        for _ in range(min(batch_size, n_trials - launched)):
            got = ask()
            if got is None:
                n_trials = launched + len(asked)  # the study's budget is spent: last batch
                break
            asked.append(got)
        if not asked:
            return
        overrides = [job for _, jobs in asked for job in jobs]
        try:
            ask.validate(overrides)
            returns = launcher.launch(overrides, initial_job_idx=ask.numbers(len(overrides)))
        except BaseException:  # Ctrl-C, SIGTERM, a launcher error: these trials did not finish
            ask.requeue([trial for trial, _ in asked])
            raise
        at = 0
        for trial, jobs in asked:
            ask.tell(trial, returns[at : at + len(jobs)])
            at += len(jobs)
        launched += len(asked)


def _search_async(ask: _Asker, launcher: Any, n_trials: int, slots: int) -> None:
    """`slots` trials in flight, each its own launch; when one ends (a pruned trial early),
    its result is told and the next trial starts in its slot at once: no batch barrier."""

    def trials() -> Any:
        for _ in range(n_trials):
            got = ask()
            if got is None:
                return
            trial, jobs = got
            ask.validate(jobs)
            yield trial, ask.numbers(len(jobs)), jobs

    launch_each(launcher, trials(), slots, ask.tell, ask.requeue)


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
