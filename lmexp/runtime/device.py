"""Device choice and per-job seeding: the only place that asks what hardware exists."""

from __future__ import annotations

import platform
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from lmexp.runtime.gpu_slots import claim_gpu, default_lock_dir
from lmexp.validation import InputError


def mps_available() -> bool:
    """Apple-silicon GPU (Metal) usable by this torch; False where torch has no MPS backend."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA, else Apple's MPS, else CPU; an impossible request fails early."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    device = torch.device(name)
    if device.type == "mps" and not mps_available():
        raise InputError(
            "device='mps' but this torch has no usable MPS backend (macOS 12.3+ on Apple "
            "silicon); use device=auto or cpu"
        )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device={name!r} but CUDA is not available here; use device=auto or cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise InputError(
            f"device={name!r} but only {count} CUDA device(s) exist here; use device=auto or "
            f"cuda:0 to cuda:{count - 1}"
        )
    return device


def needs_slot(name: str, n_gpus: int, jobs_per_gpu: int) -> bool:
    """Whether a job must hold a GPU slot: to pick a GPU among several, or to cap sharing.

    `auto` with several GPUs picks one no other job holds; `jobs_per_gpu` > 1 caps how many
    jobs share each GPU, even a single one. An explicit device (`cuda:1`, `cpu`) is never
    locked: the caller chose.
    """
    if name != "auto" or n_gpus == 0:
        return False
    return n_gpus >= 2 or jobs_per_gpu > 1


@contextmanager
def job_device(
    name: str, lock_dir: Path | None = None, jobs_per_gpu: int = 1
) -> Iterator[tuple[torch.device, int | None]]:
    """The device one job trains on, and its GPU, held for the body of the `with` block.

    Where `needs_slot`, the job claims one of the `jobs_per_gpu` slots of a GPU (`gpu_slots`),
    so parallel workers spread out instead of all landing on `cuda:0`, and no GPU runs more
    than `jobs_per_gpu` of them; the slot is given back when the block ends or the process
    dies. Otherwise nothing is locked.
    """
    n_gpus = torch.cuda.device_count() if name == "auto" and torch.cuda.is_available() else 0
    if not needs_slot(name, n_gpus, jobs_per_gpu):
        yield resolve_device(name), None
        return
    with claim_gpu(lock_dir or default_lock_dir(), n_gpus, per_gpu=jobs_per_gpu) as gpu:
        assert gpu is not None
        torch.cuda.set_device(gpu)  # library calls that use "the current device" follow it
        yield torch.device("cuda", gpu), gpu


def device_name(device: torch.device) -> str:
    """The hardware's own name (GPU model, or the CPU's), for the record of a run."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple GPU (MPS, {platform.machine()})"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices).

    Jobs of a sweep may share one process (Hydra's basic launcher), so each job reseeds here.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if mps_available():
        torch.mps.manual_seed(seed)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a clock read after it measures compute, not launch time."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def rng_state(stream: torch.Generator | None = None) -> dict:
    """Every RNG state a job draws from, as plain data a weights-only checkpoint can hold.

    `stream`: a packed job's own generator (lmexp/pack/lockstep.py), saved in place of the
    process's generator of its device, which the pack's other jobs share; a resume restores it
    into the process's, from where the job takes its stream again."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(mt), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "mps": torch.mps.get_rng_state() if mps_available() else None,
    }
    if stream is not None and stream.device.type == "cpu":
        state["torch"] = stream.get_state()
    elif stream is not None and stream.device.type == "cuda":
        index = stream.device.index if stream.device.index is not None else 0
        state["cuda"][index] = stream.get_state()
    return state


def process_stream(device: torch.device) -> torch.Generator | None:
    """A generator of `device` in the state the process's generator of that device has now:
    a packed job's own dropout stream (lmexp/pack/lockstep.py), which `rng_state(stream)` saves.
    None on a device without separate generators here (MPS: the process's)."""
    if device.type == "cpu":
        state = torch.get_rng_state()
    elif device.type == "cuda":
        state = torch.cuda.get_rng_state(device)
    else:
        return None
    generator = torch.Generator(device=device)
    generator.set_state(state)
    return generator


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` captured, so dropout masks continue exactly after a resume."""
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if state.get("mps") is not None and mps_available():  # absent in checkpoints before MPS
        torch.mps.set_rng_state(state["mps"].cpu())
