"""What a job ran on and with, recorded at each start: the answer to "why do these differ?".

Per session (a first start, each resume), `.lmexp/environment.json` gains one entry: lmexp's
version, the git commit with a dirty flag and the digest of the uncommitted changes (the diff
itself is kept beside it, once per content), every installed package and a digest of the set,
Python, the platform, the CPU model and flags, the GPU, driver, CUDA and cuDNN versions, what
a scheduler allotted (the SLURM job, node, GPUs and GPU share; `allocation`), and the settings
that make runs (non-)deterministic. `lmexp-diff` compares two runs by it.
Each probe has a short timeout and answers None where it cannot: recording never stops a job.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from lmexp.version import __version__

CHECKOUT = Path(__file__).resolve().parents[2]  # where lmexp's own git repository would be


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=CHECKOUT, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout


def code_state() -> tuple[dict[str, Any], str]:
    """{commit, dirty, diff_sha256} of lmexp's checkout (None outside a git checkout), and the
    uncommitted diff against HEAD (tracked files) as text ('' when clean)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None, "diff_sha256": None}, ""
    diff = _git("diff", "HEAD", "--no-color", "--no-ext-diff") or ""
    untracked = (_git("ls-files", "--others", "--exclude-standard") or "").split()
    digest = hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else None
    state = {
        "commit": commit.strip(),
        "dirty": bool(diff or untracked),
        "diff_sha256": digest,
        "untracked": untracked[:50],
    }
    return state, diff


def packages() -> dict[str, str]:
    """Every installed distribution, name -> version, sorted by name."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata.get("Name") or "").lower()
        if name:
            found[name] = dist.version
    return dict(sorted(found.items()))


def packages_digest(installed: dict[str, str]) -> str:
    """One digest of the package set: two runs with equal digests had the same versions."""
    text = "\n".join(f"{name}=={version}" for name, version in installed.items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cpu() -> dict[str, Any]:
    """CPU model and flags (Linux's /proc/cpuinfo; the platform's name elsewhere)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = sorted(value.split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "flags": flags}


def _driver() -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def gpu() -> dict[str, Any]:
    """The CUDA devices, the driver, and the CUDA and cuDNN versions torch was built with."""
    info: dict[str, Any] = {
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "devices": [],
        "driver": None,
    }
    if torch.cuda.is_available():
        info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["driver"] = _driver()
    return info


def determinism() -> dict[str, Any]:
    """The settings that decide whether a rerun repeats a run bit for bit."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"),
    }


# What SLURM gave the session (a GPU, a shard of one, an MPS share), and which job it was, so a
# run can be matched with `sacct` and its speed read against its share of the GPU.
ALLOCATION_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_PARTITION",
    "SLURMD_NODENAME",
    "SLURM_JOB_GPUS",
    "SLURM_SHARDS_ON_NODE",
    "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE",
    "CUDA_VISIBLE_DEVICES",
)


def allocation() -> dict[str, str]:
    """The variables of ALLOCATION_VARIABLES this process has ({} outside a scheduler)."""
    return {name: os.environ[name] for name in ALLOCATION_VARIABLES if name in os.environ}


def environment() -> tuple[dict[str, Any], str]:
    """This session's environment record, and the uncommitted diff it names."""
    installed = packages()
    code, diff = code_state()
    record = {
        "lmexp": __version__,
        "git": code,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": platform.node(),
        "torch": torch.__version__,
        "cpu": cpu(),
        "gpu": gpu(),
        "allocation": allocation(),
        "determinism": determinism(),
        "packages_sha256": packages_digest(installed),
        "packages": installed,
    }
    return record, diff
