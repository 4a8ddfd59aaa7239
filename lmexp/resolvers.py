"""OmegaConf resolvers for config values that depend on the machine a sweep runs on.

`${lmexp.parallel_jobs:<jobs_per_gpu>}` and `${lmexp.threads_per_job:<n_jobs>}` size the
launcher presets in `conf/launcher/`; `${lmexp.study_storage:<path>,<launcher>}` places an
Optuna study's store (`conf/sweep/`): an sqlite database, or a journal file under SLURM.
`${lmexp.slurm_gpus:..}` and `${lmexp.slurm_gres:..}` turn `jobs_per_gpu` into a SLURM job's
request: a whole GPU, or a shard or MPS share of one (`conf/launcher/slurm*.yaml`). They
read the machine (CPU affinity, visible GPUs, the file system), never a job's config.
`${lmexp.help_groups:}` and `${lmexp.help_choices:<model>}` fill the `--help` text
(lmexp/help.py). `${lmexp.job_dir:...}` names a sweep's job directories by what varies
(lmexp/run/jobname.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

from lmexp.run.jobname import job_dir_name


def cpu_cores() -> int:
    """CPU cores this process may run on (respects taskset/cgroup affinity where the OS has it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def gpu_count() -> int:
    """CUDA devices visible to this process (0 without CUDA). Creates no CUDA context."""
    import torch  # here, not at import time: composing a config should not need torch loaded

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parallel_jobs(jobs_per_gpu: int | None = None) -> int:
    """Jobs to run at once: `jobs_per_gpu` per visible GPU, else half the CPU cores (at least 1).

    Half, not all: each job's torch then gets two threads, and the launching process, data
    loading and evaluation keep some headroom.
    """
    gpus = gpu_count()
    per_gpu = max(1, int(jobs_per_gpu or 1))
    return gpus * per_gpu if gpus > 0 else max(1, cpu_cores() // 2)


def effective_jobs(n_jobs: int | None) -> int:
    """Concurrent jobs that joblib's `n_jobs` means: -1 = every core, -2 = all but one, ..."""
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(1, cpu_cores() + 1 + n_jobs)
    return n_jobs


def threads_per_job(n_jobs: int | None = None) -> int:
    """torch CPU threads for one of `n_jobs` concurrent jobs, so together they fill the cores once.

    Without an argument, `n_jobs` is `parallel_jobs()`.
    """
    jobs = parallel_jobs() if n_jobs is None else effective_jobs(int(n_jobs))
    return max(1, cpu_cores() // jobs)


def sqlite_url(path: str) -> str:
    """`sqlite:///<absolute path>` for a database file, creating its folder (sqlite will not).

    Absolute, so the study is the same file whichever process opens it.
    """
    db = Path(path).expanduser().resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


JOURNAL_SCHEME = "journal://"  # hydra.sweeper.storage=journal:///abs/path: an Optuna journal file


def journal_url(path: str) -> str:
    """`journal:///<absolute path>`: an Optuna journal file (lmexp/search/storage.py opens it)."""
    journal = Path(path).expanduser().resolve()
    journal.parent.mkdir(parents=True, exist_ok=True)
    return f"{JOURNAL_SCHEME}{journal}"


SLURM_LAUNCHER = "SlurmLauncher"  # the class name of hydra-submitit-launcher's SLURM launcher


def is_slurm_launcher(target: object) -> bool:
    """Whether a Hydra launcher's `_target_` is hydra-submitit-launcher's SLURM launcher."""
    return str(target).rsplit(".", 1)[-1] == SLURM_LAUNCHER


def study_storage(stem: str, launcher: str = "") -> str:
    """The default store of a search's study: `<stem>.journal` when its jobs go to SLURM
    (`launcher` is the Hydra launcher's `_target_`), else the sqlite database `<stem>.db`.

    Why: sqlite locks break on the network filesystems clusters share (optuna#815, #6036), and
    search processes on several login nodes may share a study; a journal file needs only
    atomic appends and a lock file. On one machine sqlite stays: a study's existing `.db`
    keeps resuming.
    """
    if is_slurm_launcher(launcher):
        return journal_url(f"{stem}.journal")
    return sqlite_url(f"{stem}.db")


GPU_SHARES = ("shard", "mps")  # how SLURM splits one GPU among jobs (its GRES of that name)
MPS_PER_GPU = 100  # SLURM's convention: a GPU's mps GRES count is 100, a percentage


def slurm_gpus(jobs_per_gpu: int | None) -> int | None:
    """`hydra.launcher.gpus_per_node` of a SLURM job: a whole GPU, unless it shares one."""
    return 1 if int(jobs_per_gpu or 1) <= 1 else None


def slurm_gres(jobs_per_gpu: int | None, share: str = "shard") -> str | None:
    """`hydra.launcher.gres` of a SLURM job: null for a whole GPU (`gpus_per_node`), else its
    share of one GPU among `jobs_per_gpu`: one shard (the cluster configures `jobs_per_gpu`
    shards per GPU) or, with `share=mps`, 100/jobs_per_gpu of its MPS percentage."""
    per_gpu = int(jobs_per_gpu or 1)
    if per_gpu <= 1:
        return None
    if share == "shard":
        return "shard:1"
    if share == "mps":
        if per_gpu > MPS_PER_GPU:
            raise ValueError(
                f"jobs_per_gpu={per_gpu} under MPS leaves less than 1% of a GPU per job; "
                f"use at most {MPS_PER_GPU}"
            )
        return f"mps:{MPS_PER_GPU // per_gpu}"
    raise ValueError(f"unknown GPU share {share!r}: choose one of {', '.join(GPU_SHARES)}")


def help_groups() -> str:
    """`${lmexp.help_groups:}` in the --help template: the user-facing config groups."""
    from lmexp.help import groups_text

    return groups_text()


def help_choices(model_name: str | None = None) -> str:
    """`${lmexp.help_choices:${model.name}}`: the choice keys of a job of that architecture."""
    from lmexp.help import choices_text

    return choices_text(model_name)


def register_resolvers() -> None:
    """Register the `lmexp.*` resolvers above; safe to call again."""
    OmegaConf.register_new_resolver("lmexp.help_groups", help_groups, replace=True)
    OmegaConf.register_new_resolver("lmexp.help_choices", help_choices, replace=True)
    OmegaConf.register_new_resolver("lmexp.parallel_jobs", parallel_jobs, replace=True)
    OmegaConf.register_new_resolver("lmexp.threads_per_job", threads_per_job, replace=True)
    OmegaConf.register_new_resolver("lmexp.sqlite_url", sqlite_url, replace=True)
    OmegaConf.register_new_resolver("lmexp.study_storage", study_storage, replace=True)
    OmegaConf.register_new_resolver("lmexp.slurm_gpus", slurm_gpus, replace=True)
    OmegaConf.register_new_resolver("lmexp.slurm_gres", slurm_gres, replace=True)
    OmegaConf.register_new_resolver("lmexp.job_dir", job_dir_name, replace=True)
