"""`launcher=packed`: a sweep's jobs of one shape, trained up to `pack` at a time as one model.

Hydra hands a launcher a batch of jobs (their overrides). This one composes and validates each
job's config, groups the jobs whose configs differ only in packable keys (`run/keys.py`: the
seed, the optimizer's and the schedule's settings, the trainer's budgets and clipping, dropout)
and runs each group of up to `pack` jobs in this process at once: every job in its own thread
through Hydra's own `run_job`, so its run directory, log and return value are a job's like any
other, and its training steps through one `Pack` (lockstep.py). A job that cannot pack runs
alone, as under Hydra's basic launcher, and the launcher says why in one line.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from lmexp.config import TrainConfig, to_train_config
from lmexp.models.registry import architecture
from lmexp.pack.lockstep import Member, Pack, join
from lmexp.pack.step import SDPA_DROPOUT
from lmexp.run import keys, signals
from lmexp.runtime.device import job_device

log = logging.getLogger(__name__)

JOB_DIR_KEY, JOB_SUBDIR_KEY = "hydra.sweep.dir", "hydra.sweep.subdir"


@dataclass
class PlannedJob:
    """One job of the batch, composed, with what decides whom it may pack with."""

    index: int  # Hydra's job number
    overrides: list[str]
    config: DictConfig  # the sweep config, Hydra's node included
    output_dir: Path
    key: str | None  # the values every member of its pack shares; None: it runs alone
    reason: str | None = None  # why it runs alone


def unpackable_reason(cfg: TrainConfig) -> str | None:
    """Why jobs of this config cannot train packed, in one line; None if they can."""
    if not architecture(cfg.model.name).packs:
        return f"model={cfg.model.name} does not run batched over jobs (its layers do not vmap)"
    if getattr(cfg.model, "impl", None) == "fused":
        return (
            "model.impl=fused runs nn.RNN/GRU/LSTM (cuDNN/oneDNN), which cannot batch over "
            "jobs; use model.impl=scratch to pack"
        )
    if getattr(cfg.model, "attn_impl", None) == "sdpa" and cfg.model.dropout > 0:
        return SDPA_DROPOUT
    if cfg.data.mode != "stream":
        return "data.mode=sentences: padded batches differ in shape from job to job"
    if cfg.precision != "fp32":
        return f"precision={cfg.precision}: packs train in fp32 only"
    if cfg.compile:
        return "compile=true: a compiled model does not batch over jobs"
    return None


def pack_key(cfg: TrainConfig) -> str:
    """What must agree for two jobs to pack: every value of a key that is not packable."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                walk(value, f"{prefix}{name}.")
        else:
            flat[prefix[:-1]] = node

    walk(dataclasses.asdict(cfg), "")
    shared = {k: v for k, v in flat.items() if not keys.packable(k)}
    return json.dumps(shared, sort_keys=True, default=str)


def plan(
    hydra_context: HydraContext,
    config: DictConfig,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
) -> list[PlannedJob]:
    """Compose and validate every job of the batch (no data is read)."""
    jobs = []
    launcher_hydra = HydraConfig.instance().cfg
    try:
        for offset, overrides in enumerate(job_overrides):
            index = initial_job_idx + offset
            sweep_config = hydra_context.config_loader.load_sweep_config(config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = index
                sweep_config.hydra.job.num = index
            HydraConfig.instance().set_config(sweep_config)
            output_dir = Path(str(OmegaConf.select(sweep_config, JOB_DIR_KEY))) / str(
                OmegaConf.select(sweep_config, JOB_SUBDIR_KEY)
            )
            with read_write(sweep_config.hydra.runtime), open_dict(sweep_config.hydra.runtime):
                sweep_config.hydra.runtime.output_dir = os.path.abspath(output_dir)
            job = PlannedJob(index, list(overrides), sweep_config, output_dir.absolute(), None)
            task_cfg = copy.deepcopy(sweep_config)
            with read_write(task_cfg), open_dict(task_cfg):
                del task_cfg["hydra"]
            try:
                train_cfg = to_train_config(task_cfg)
            except Exception:  # noqa: BLE001 - the job itself records its config's fault
                job.reason = "its config is invalid (the job records why)"
            else:
                job.reason = unpackable_reason(train_cfg)
                if job.reason is None:
                    job.key = pack_key(train_cfg)
            jobs.append(job)
    finally:
        if launcher_hydra is not None:
            HydraConfig.instance().cfg = launcher_hydra
    return jobs


def group(jobs: Sequence[PlannedJob], size: int) -> list[list[PlannedJob]]:
    """Packs of up to `size` jobs sharing a key, in the order of their first job; a job with
    no partner is a group of one, and says why."""
    by_key: dict[str, list[PlannedJob]] = {}
    groups: list[list[PlannedJob]] = []
    for job in jobs:
        if job.key is None:
            groups.append([job])
            continue
        current = by_key.get(job.key)
        if current is None or len(current) >= size:
            current = by_key[job.key] = []
            groups.append(current)
        current.append(job)
    for members in groups:
        if len(members) == 1 and members[0].reason is None:
            members[0].reason = (
                "no other job of the batch builds the same model on the same data"
                if size > 1
                else "pack=1"
            )
    return groups


class PackedRun:
    """Runs a batch's groups: a pack in threads of this process, a job alone as Hydra would."""

    def __init__(
        self, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, size: int
    ) -> list[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        jobs = plan(self.hydra_context, self.config, job_overrides, initial_job_idx)
        groups = group(jobs, max(1, size))
        packs = [g for g in groups if len(g) > 1]
        log.info(
            "Launching %d jobs: %d in %d packs (pack=%d), %d alone",
            len(jobs),
            sum(len(g) for g in packs),
            len(packs),
            size,
            len(jobs) - sum(len(g) for g in packs),
        )
        returns: dict[int, JobReturn] = {}
        for members in groups:
            names = ", ".join(f"#{j.index}" for j in members)
            for job in members:
                line = " ".join(filter_overrides(job.overrides))
                log.info("\t#%d : %s", job.index, line)
            if len(members) == 1:
                job = members[0]
                log.info("\t#%d alone: %s", job.index, job.reason)
                returns[job.index] = self._alone(job)
            else:
                log.info("\tpack of %d: %s", len(members), names)
                returns.update(self._pack(members))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [returns[job.index] for job in jobs]

    def _alone(self, job: PlannedJob) -> JobReturn:
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=job.config,
            job_dir_key=JOB_DIR_KEY,
            job_subdir_key=JOB_SUBDIR_KEY,
        )

    def _pack(self, members: list[PlannedJob]) -> dict[int, JobReturn]:
        """Train the members as one pack; a signal stops every member at its next step."""
        pack = Pack(len(members))
        returns: dict[int, JobReturn] = {}
        raised: dict[int, BaseException] = {}
        names = [f"lmexp-pack-{job.index}" for job in members]
        handlers = _member_logs(members, names)
        first = members[0].config
        with job_device(str(first.device), jobs_per_gpu=int(first.jobs_per_gpu)) as (device, _):

            def body(k: int) -> None:
                others = [str(j.output_dir) for i, j in enumerate(members) if i != k]
                join(Member(pack, k, others, device))
                try:
                    returns[members[k].index] = run_job(
                        hydra_context=self.hydra_context,
                        task_function=self.task_function,
                        config=members[k].config,
                        job_dir_key=JOB_DIR_KEY,
                        job_subdir_key=JOB_SUBDIR_KEY,
                        configure_logging=False,  # _member_logs: one train.log per member
                    )
                except BaseException as exc:  # a signal: the main thread raises it after
                    raised[k] = exc
                finally:
                    pack.leave(k, raised.get(k))  # a signal that reached k alone stops all

            threads = [
                threading.Thread(target=body, args=(k,), name=n) for k, n in enumerate(names)
            ]
            try:
                with signals.handling():
                    try:
                        for k, thread in enumerate(threads):
                            thread.start()
                            # one at a time until its first step: no two jobs start at once
                            while not pack.ready[k].wait(0.1):
                                pass
                            if not pack.training(k):
                                thread.join()  # ended before training: wholly, before the next
                        for thread in threads:
                            while thread.is_alive():
                                thread.join(0.1)
                    except KeyboardInterrupt as exc:
                        pack.stop(getattr(exc, "signal_name", "SIGINT"))
                        for thread in threads:
                            while thread.is_alive():
                                thread.join(0.1)
                        raise
                    preempted = [e for e in raised.values() if isinstance(e, signals.JobPreempted)]
                    if preempted:  # handling() passes it on (submitit requeues the pack)
                        raise preempted[0]
                    interrupted = [e for e in raised.values() if isinstance(e, KeyboardInterrupt)]
                    if interrupted:
                        raise interrupted[0]
                    if raised:
                        raise next(iter(raised.values()))
            finally:
                for handler in handlers:
                    logging.getLogger().removeHandler(handler)
                    handler.close()
        return returns


class _OnlyThread(logging.Filter):
    def __init__(self, thread_name: str) -> None:
        super().__init__()
        self.thread_name = thread_name

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName == self.thread_name


def _member_logs(
    members: Sequence[PlannedJob], thread_names: Sequence[str]
) -> list[logging.Handler]:
    """Hydra's job logging for a pack: the console as for any job, and each member's file
    handlers (its train.log) receiving that member's thread's records only."""
    first = members[0].config
    configure_log(first.hydra.job_logging, first.hydra.verbose)
    root = logging.getLogger()
    templates = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    for template in templates:
        root.removeHandler(template)
        template.close()
    added: list[logging.Handler] = []
    for job, thread_name in zip(members, thread_names, strict=True):
        for template in templates:
            filename = OmegaConf.select(
                job.config, f"hydra.job_logging.handlers.{template.name}.filename"
            )
            handler = logging.FileHandler(
                str(filename), mode=template.mode, encoding=template.encoding, delay=True
            )
            handler.setFormatter(template.formatter)
            handler.setLevel(template.level)
            handler.addFilter(_OnlyThread(thread_name))
            root.addHandler(handler)
            added.append(handler)
    return added
