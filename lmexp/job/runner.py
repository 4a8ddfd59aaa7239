"""One training job, from a validated `TrainConfig` to a finished run directory.

`run` builds data, model and optimizer, resumes or skips per `resume.plan_job_dir`, and trains;
`run_guarded` is the job boundary a sweep calls: every exception is recorded in the summary
and the job's log, and the sweep goes on. Hydra stays in `train.py`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import platform
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from lmexp.atomic import remove_leftovers
from lmexp.config import TrainConfig
from lmexp.data import Corpus, load_corpus, make_batches, save_corpus_tokenizer
from lmexp.job.provenance import record_environment
from lmexp.job.writer import RunFiles, vocab_digest
from lmexp.loggers import Trackers
from lmexp.models import build_model, compile_features
from lmexp.models import display as model_display
from lmexp.models.base import LanguageModel
from lmexp.pack import lockstep
from lmexp.run import host, signals
from lmexp.run.checkpoint import RESUMES_FROM, load_checkpoint, load_state
from lmexp.run.liveness import Heartbeat, JobDirLocked, this_process, writer_lock
from lmexp.run.record import (
    ConfigChanged,
    Launch,
    cell_of,
    check_relaunch,
    read_launch,
    read_recorded_config,
    restore_hydra,
    save_record,
)
from lmexp.run.resume import (
    JobDirInUse,
    JobDirPlan,
    check_compatible,
    check_vocab,
    epoch_end_val_ppl,
    plan_job_dir,
    read_summary,
    restore_metrics,
)
from lmexp.run.rundir import RunDir
from lmexp.run.summary import Summary, write_json_atomic
from lmexp.run.sweepdir import SweepDir
from lmexp.run.timings import Phases
from lmexp.runtime import allocator
from lmexp.runtime.device import device_name, job_device, seed_everything, set_rng_state
from lmexp.runtime.precision import check_precision
from lmexp.training import optim, schedules
from lmexp.training.evaluation import evaluate
from lmexp.training.graph import graph_wanted
from lmexp.training.metrics import perplexity
from lmexp.training.optim import build_optimizer
from lmexp.training.progress import lines_above_bars, make_progress
from lmexp.training.pruning import PRUNED, Judge
from lmexp.training.schedules import lr_at_epoch
from lmexp.training.trainer import FitState, Trainer
from lmexp.validation import usage_line

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _objective(best: float | None) -> float:
    """What a sweeper sees: a finite perplexity or +inf, never NaN. Optuna files a NaN as a
    failed trial, which TPE ignores; +inf is a result it learns to steer away from."""
    return best if best is not None and math.isfinite(best) else math.inf


def _test_of_best(
    model: LanguageModel, corpus: Corpus, cfg: TrainConfig, out_dir: Path, device: torch.device
) -> tuple[float | None, float | None]:
    """Test perplexity of the checkpoint chosen on validation (or, with `trainer.
    test_checkpoint=last`, of the model as training left it, which `model` holds), computed
    once, at the end, and with `trainer.test_whole` the same read as one sequence (None
    otherwise)."""
    if cfg.trainer.test_checkpoint != "last":
        best = RunDir(out_dir).best
        if not best.exists():
            return None, None
        load_state(model, load_checkpoint(best, map_location=device), "model", best)
    ppl = _test_pass(model, corpus, cfg.data, cfg, device, "test")
    whole = None
    if cfg.trainer.test_whole and corpus.mode == "stream":  # sentences: each is whole already
        one = dataclasses.replace(cfg.data, eval_batch_size=1)
        whole = _test_pass(model, corpus, one, cfg, device, "test (one sequence)")
    return ppl, whole


def _test_pass(
    model: LanguageModel,
    corpus: Corpus,
    data: Any,
    cfg: TrainConfig,
    device: torch.device,
    phase: str,
) -> float:
    test = make_batches(corpus.test, corpus, data, train=False, device=device)
    with make_progress(len(test), cfg.trainer.progress, phase, unit="batch") as bar:
        nll, count = evaluate(model, test, precision=cfg.precision, on_batch=bar.update)
    return perplexity(nll, count)


def _resume(
    trainer: Trainer,
    model: LanguageModel,
    optimizer: torch.optim.Optimizer,
    payload: dict[str, Any],
    plan: JobDirPlan,
) -> None:
    """Put model, optimizer, loop position and RNGs back where `last.pt` left them."""
    assert plan.checkpoint is not None
    load_state(model, payload, "model", plan.checkpoint)
    load_state(optimizer, payload, "optimizer", plan.checkpoint)
    snapshot = payload["trainer"]
    if plan.budget_changes:  # resume=force with new budgets: a finished run trains on to them
        snapshot = {**snapshot, "fit": {**snapshot["fit"], "stop_reason": None}}
    trainer.restore(snapshot)
    set_rng_state(payload["rng"])
    step = payload["trainer"]["fit"]["step"]
    log.info("resuming from %s at epoch %s, step %d", plan.checkpoint, payload["epoch"], step)


def _fit(
    cfg: TrainConfig, out_dir: Path, summary: Summary, plan: JobDirPlan, trackers: Trackers
) -> tuple[FitState, float | None]:
    payload = None
    if plan.action == "resume":
        assert plan.checkpoint is not None
        payload = load_checkpoint(plan.checkpoint, needs=RESUMES_FROM)
        check_compatible(payload["config"], dataclasses.asdict(cfg), plan.checkpoint)
    start_step = payload["trainer"]["fit"]["step"] if payload is not None else 0
    config = dataclasses.asdict(cfg)
    trackers.start(cfg.logger, RunDir(out_dir), config, summary.fields, start_step, summary.update)
    member = lockstep.current()
    if member is not None:  # a pack's job: the launcher holds the pack's device
        summary.update(packed_with=member.packed_with)
        return _fit_on(cfg, out_dir, summary, plan, payload, member.device, trackers)
    with job_device(cfg.device, jobs_per_gpu=cfg.jobs_per_gpu) as (device, gpu_slot):
        if gpu_slot is not None:
            summary.update(gpu_slot=gpu_slot)
        return _fit_on(cfg, out_dir, summary, plan, payload, device, trackers)


def _fit_on(
    cfg: TrainConfig,
    out_dir: Path,
    summary: Summary,
    plan: JobDirPlan,
    payload: dict[str, Any] | None,
    device: torch.device,
    trackers: Trackers,
) -> tuple[FitState, float | None]:
    """Load data, build model and optimizer on `device`, resume if `payload`, and train."""
    check_precision(cfg.precision, device)
    member = lockstep.current()  # None: a job alone
    graph = member is None and graph_wanted(cfg.cuda_graph, device, cfg.data.mode, cfg.compile)
    allocator.configure(cfg.cpu_allocator)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":  # jobs of one process (basic launcher) each report their own peak
        torch.cuda.reset_peak_memory_stats(device)
    seed_everything(cfg.seed)
    phases = Phases()
    run = RunDir(out_dir)
    with phases.phase("data_s"):
        corpus = load_corpus(cfg.data, tokenizer_file=run.tokenizer)  # a resume reuses its BPE
        if payload is not None:
            check_vocab(payload.get("vocab_sha256"), vocab_digest(corpus.vocab), plan.checkpoint)
            step, saved = payload["trainer"]["fit"]["step"], payload.get("metrics_csv")
            note = restore_metrics(run.metrics, saved, step, plan.checkpoint)
            if note is not None:
                log.warning("%s", note)
        corpus.vocab.to_json(run.vocab)
        save_corpus_tokenizer(corpus, run.tokenizer)
        info = {"name": cfg.data.name, "tokenizer": corpus.tokenizer, "start": corpus.start}
        # how scoring and generation split and start text
        write_json_atomic({**info, "mode": corpus.mode}, run.corpus)
    with phases.phase("build_s"):
        model = build_model(cfg.model, len(corpus.vocab)).to(device)
        optimizer = build_optimizer(model.parameters(), cfg.optim, capturable=graph)
        train = make_batches(
            corpus.train, corpus, cfg.data, train=True, seed=cfg.seed, device=device
        )
        valid = make_batches(corpus.valid, corpus, cfg.data, train=False, device=device)
    log.info("output dir %s", out_dir)
    log.info(
        "device %s (%d CPU threads), vocab %d, %s parameters%s",
        device,
        torch.get_num_threads(),
        len(corpus.vocab),
        f"{model.num_params():,}",
        ", training step replayed from a CUDA graph" if graph else "",
    )
    summary.update(
        device=str(device),
        device_name=device_name(device),
        params=model.num_params(),
        vocab_size=len(corpus.vocab),
        data_tokens=corpus.counts(),
    )
    files = RunFiles(out_dir, model, optimizer, summary, cfg, corpus.vocab, phases, trackers)
    judge = _judge(cfg, run, summary)
    if cfg.compile:
        compile_features(model)
    trainer = Trainer(
        model,
        optimizer,
        lambda e: lr_at_epoch(cfg.schedule, cfg.optim.lr, e, epoch_end_val_ppl(run.metrics)),
        train,
        valid,
        None,
        cfg.trainer,
        files.on_eval,
        files.on_checkpoint,
        files.on_step,
        precision=cfg.precision,
        cuda_graph=graph,
        judge=judge,
        step=None
        if member is None
        else member.stepper(model, optimizer, cfg.trainer.clip_norm, cfg.trainer.loss_average),
    )
    if payload is not None:
        _resume(trainer, model, optimizer, payload, plan)
    try:
        with phases.phase("fit_s"):
            state = trainer.fit()
    finally:
        files.close()
        summary.update(**_device_report(trainer, device), timings=_timings(phases))
    stopped = state.stop_reason in ("diverged", PRUNED)  # no test pass: it will not be ranked
    if judge is not None and judge.pruned is not None:
        summary.update(pruned=judge.pruned)  # the rule, the rung and what it compared
    with phases.phase("test_s"):
        test_ppl, whole = (
            (None, None) if stopped else _test_of_best(model, corpus, cfg, out_dir, device)
        )
    if test_ppl is not None and cfg.trainer.test_checkpoint != "best":
        summary.update(test_checkpoint=cfg.trainer.test_checkpoint)  # not the usual best.pt
    if whole is not None:  # the IFT6135 text's protocol, beside the streams' figure
        summary.update(test_ppl_whole=whole)
        log.info("test ppl %.2f as one sequence (%.2f in streams)", whole, test_ppl or math.nan)
    earlier = float(summary.fields.get("total_time_s") or 0.0)  # a resumed job's other sessions
    summary.update(timings=_timings(phases), total_time_s=round(earlier + phases.total_s(), 3))
    return state, test_ppl


def _judge(cfg: TrainConfig, run: RunDir, summary: Summary) -> Judge | None:
    """The early-stopping judge of a job of a sweep (`prune=median|asha`): it compares the job
    with the others of its sweep directory. A single run has none to compare with."""
    if cfg.prune.name == "none":
        return None
    launch = read_launch(run)
    if launch is None or launch.job_num is None:
        log.warning(
            "prune=%s judges the jobs of a sweep (-m): this single run is never stopped",
            cfg.prune.name,
        )
        return None
    return Judge(cfg.prune, run, SweepDir(run.root.parent))


def _timings(phases: Phases) -> dict[str, float]:
    """The phase totals; `train_s` is the fit's time left after evaluation and checkpoints."""
    seconds = phases.rounded()
    fit = seconds.pop("fit_s", None)
    if fit is not None:
        other = seconds.get("eval_s", 0.0) + seconds.get("checkpoint_s", 0.0)
        seconds["train_s"] = round(max(0.0, fit - other), 3)
    return seconds


def _device_report(trainer: Trainer, device: torch.device) -> dict[str, Any]:
    """What the summary says about how the job used its device."""
    report: dict[str, Any] = {}
    if trainer.graphed is not None:
        graphed = trainer.graphed
        report["cuda_graph"] = "eager (capture failed)" if graphed.failed else "captured"
        report["cuda_graph_captures"] = graphed.captures
    if device.type == "cuda":
        report["peak_gpu_mem_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return report


def _open_summary(out_dir: Path, plan: JobDirPlan, cfg: TrainConfig, command: str) -> Summary:
    fields: dict[str, Any] = {
        "command": command,
        # the analysis labels, orders and styles jobs by these: it holds no list of names
        **model_display(cfg.model.name),
        **optim.display(cfg.optim.name),
        **schedules.display(cfg.schedule.name),
        "seed": cfg.seed,
        "cell_id": cell_of(dataclasses.asdict(cfg)),  # the jobs it repeats differ in the seed
        "device": cfg.device,
        "started_at": _now(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        **host.at_start(),  # with at_end: the machine's load, beside the job's wall-clock time
        "best_val_ppl": None,
        "best_epoch": None,
        "final_train_ppl": None,
        "final_val_ppl": None,
        "test_ppl": None,
        "params": None,
        "wall_time_s": 0.0,
    }
    process = this_process()  # a reader tells a killed job from a live one by these
    if plan.action == "resume" and plan.summary:
        earlier = {k: v for k, v in plan.summary.items() if k not in ("error", "traceback")}
        fields = {
            **fields,
            **earlier,
            "resumed": int(plan.summary.get("resumed", 0)) + 1,
            "resumed_at": _now(),
        }
        fields.pop("error_type", None)
        if plan.summary.get("status") == "preempted":  # requeued by the cluster: count them
            fields["preemptions"] = int(plan.summary.get("preemptions", 0)) + 1
        if plan.budget_changes:  # resume=force: say which budgets this session ran to
            changes = list(earlier.get("budget_changes", []))
            changes.append({k: list(v) for k, v in plan.budget_changes.items()})
            fields["budget_changes"] = changes
    fields.pop("status", None)
    fields.pop("signal", None)
    return Summary(RunDir(out_dir).summary, **{**fields, **process})  # this session's process


@contextmanager
def _not_into(out_dir: Path) -> Iterator[None]:
    """Log to the console only: not to a log file inside `out_dir` (Hydra's `train.log`)."""
    inside = [
        handler
        for handler in logging.getLogger().handlers
        if isinstance(handler, logging.FileHandler)
        and Path(handler.baseFilename).resolve().is_relative_to(out_dir.resolve())
    ]
    for handler in inside:
        handler.addFilter(_silent)
    try:
        yield
    finally:
        for handler in inside:
            handler.removeFilter(_silent)


def _silent(record: logging.LogRecord) -> bool:
    return False


def run(cfg: TrainConfig, out_dir: Path, launch: Launch | str) -> float:
    """Train one job into `out_dir` and return its best validation perplexity (+inf if none).

    `launch` is how it was started (a plain string: its rerun command alone); the first start
    records it beside the config.

    With `cfg.resume`, a finished job is skipped and an unfinished one continues from its last
    checkpoint; without it, a directory that already holds a run is refused. A relaunch first
    puts the first launch's Hydra files back (`record.py`) and is refused if it asks for other
    settings; `resume=force` may change the budgets, and continues a finished run to them.
    Errors are recorded in `summary.json` and raised.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rundir = RunDir(out_dir)
    restore_hydra(rundir)  # whatever this launch does next, the record stays the first launch's
    with writer_lock(rundir), signals.handling(), lines_above_bars():
        return _run_locked(cfg, rundir, Launch(launch) if isinstance(launch, str) else launch)


def _run_locked(cfg: TrainConfig, rundir: RunDir, launch: Launch) -> float:
    """`run`, holding the job directory's lock and the signal handlers."""
    out_dir = rundir.root
    for folder in (out_dir, rundir.checkpoints, rundir.record):  # killed writers' temp files
        for leftover in remove_leftovers(folder):
            log.info("removed %s, left by a killed write", leftover)
    plan = plan_job_dir(out_dir, bool(cfg.resume))
    current = dataclasses.asdict(cfg)
    if plan.summary is not None:  # a relaunch into a run: only budgets may change, with force
        plan.budget_changes = check_relaunch(
            read_recorded_config(rundir), current, force=cfg.resume == "force"
        )
        if plan.action == "skip" and plan.budget_changes and rundir.last.exists():
            plan = JobDirPlan("resume", plan.summary, rundir.last, plan.budget_changes)
    if plan.summary is None:  # the first start: the record is written once, now
        save_record(rundir, current, launch)
    if plan.action == "skip":
        assert plan.summary is not None
        with _not_into(out_dir):  # a skipped job's directory stays byte for byte as it was
            log.info("%s: already %s, skipped (resume=true)", out_dir, plan.summary.get("status"))
        best = plan.summary.get("best_val_ppl")
        return _objective(float(best) if best is not None else None)
    started = time.monotonic()
    summary = _open_summary(out_dir, plan, cfg, launch.command)
    summary.update(**record_environment(rundir))  # versions, code, packages, hardware
    trackers = Trackers()  # told how the job ended, whichever way it ends
    try:
        with Heartbeat(rundir.heartbeat):  # for readers on other hosts (run/liveness.py)
            return _run_tracked(cfg, rundir, plan, summary, trackers, started)
    finally:
        trackers.finish(summary.fields)


def _run_tracked(
    cfg: TrainConfig,
    rundir: RunDir,
    plan: JobDirPlan,
    summary: Summary,
    trackers: Trackers,
    started: float,
) -> float:
    """Train, then record how the job ended in its summary (and raise if it did not finish)."""
    try:
        state, test_ppl = _fit(cfg, rundir.root, summary, plan, trackers)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, or preemption (signals.py)
        name = exc.signal_name if isinstance(exc, signals.JobInterrupted) else "SIGINT"
        preempted = isinstance(exc, signals.JobPreempted)  # last.pt is this very step
        summary.update(
            status="preempted" if preempted else "interrupted",
            signal=name,
            ended_at=_now(),
            **host.at_end(),
            session_time_s=round(time.monotonic() - started, 3),
        )
        raise
    except Exception as exc:
        try:
            summary.update(
                status="failed",
                **failure_fields(exc),
                ended_at=_now(),
                **host.at_end(),
                session_time_s=round(time.monotonic() - started, 3),
            )
        except OSError as unwritable:  # the disk that failed the job may refuse its record too
            log.warning("could not record the failure in %s: %s", summary.path, unwritable)
        raise
    status = {"diverged": "diverged", PRUNED: PRUNED}.get(state.stop_reason or "", "completed")
    wall = state.last_row["wall_time_s"] if state.last_row else state.elapsed_s
    summary.update(
        status=status,
        best_val_ppl=state.best_val_ppl,
        best_epoch=state.best_epoch,
        test_ppl=test_ppl,
        stop_reason=state.stop_reason,
        ended_at=_now(),
        **host.at_end(),
        wall_time_s=wall,
    )
    log.info(
        "%s: best val ppl %.2f at epoch %s, test ppl %s",
        status,
        state.best_val_ppl,
        state.best_epoch,
        "n/a" if test_ppl is None else f"{test_ppl:.2f}",
    )
    return _objective(state.best_val_ppl)


def failure_fields(exc: BaseException) -> dict[str, Any]:
    """How `summary.json` records a failure: input the user can fix as its one line (and
    `usage_error`), a fault of lmexp with its traceback."""
    line = usage_line(exc)
    if line is not None:
        return {"error_type": type(exc).__name__, "error": line, "usage_error": True}
    return {
        "error_type": type(exc).__name__,
        "error": str(exc),
        "traceback": traceback.format_exc(),
    }


def run_guarded(
    make_config: Callable[[], TrainConfig], out_dir: Path, launch: Launch, reraise: bool
) -> float:
    """The job boundary: validate, run, and turn any failure into a record plus `+inf`.

    A failure is written to `summary.json` (status, error type, message, traceback) and, with
    its traceback, to the job's log, which Hydra 1.3 leaves empty. In a sweep (`reraise=False`)
    the job then returns +inf so the other jobs run on; a single run re-raises so the command
    exits non-zero. Nothing here calls `sys.exit`: that would end the whole sweep.
    """
    out_dir = Path(out_dir)
    try:
        cfg = make_config()
    except Exception as exc:
        log.error("invalid config: %s", usage_line(exc) or exc)
        restore_hydra(RunDir(out_dir))  # Hydra rewrote them for this refused launch
        if read_summary(out_dir) is None:  # never clobber an earlier run's record
            fields = {"status": "failed", "command": launch.command, **failure_fields(exc)}
            write_json_atomic({**fields, "ended_at": _now()}, RunDir(out_dir).summary)
        if reraise:
            raise
        return math.inf
    try:
        return run(cfg, out_dir, launch)
    except (JobDirInUse, ConfigChanged, JobDirLocked):
        raise  # a misdirected command, not a job result: nothing is touched, train.py says so
    except Exception as exc:
        line = usage_line(exc)
        if line is not None:  # the cause and its fix; a traceback would only bury them
            log.error("job failed: %s", line)
        else:
            log.exception("job failed: %s: %s", type(exc).__name__, exc)
        if reraise:
            raise
        return math.inf
