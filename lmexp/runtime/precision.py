"""Numeric precision of a job's forward passes: fp32, or bf16 autocast (CPU AMX, CUDA tensor cores).

bf16 autocast runs matmuls (the softmax projection is about half of a step) in bfloat16 while
weights, optimizer state, the loss and its reduction stay fp32, so no loss scaling is needed.
It only pays on hardware with native bf16 arithmetic; elsewhere it is refused before any work.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import torch

from lmexp.validation import InputError

log = logging.getLogger(__name__)

# x86 feature flags (Linux /proc/cpuinfo) of native bf16 matmuls: AVX512-BF16 and AMX.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_bf16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The native-bf16 flags this CPU reports, or None where /proc/cpuinfo does not exist."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split()) & set(NATIVE_BF16_FLAGS)
    return set()


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse bf16 where the hardware has no native bf16, before any data is loaded.

    On such a CPU, bf16 matmuls are emulated (measured here: about 1 GFLOP/s against 150 in
    fp32) and oneDNN has no bf16 LSTM, so a bf16 run would be slower or would fail mid-way.
    """
    if precision != "bf16":
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError(
            f"precision=bf16 but {torch.cuda.get_device_name(device)} has no bf16 support; "
            "use precision=fp32"
        )
    flags = cpu_bf16_flags() if device.type == "cpu" else None
    if flags is not None and "amx_bf16" not in flags and flags:
        # AVX512-BF16 alone pays on some CPUs and not on others: a 2048² bf16 matmul measured
        # 4.3x the fp32 rate on an AMD EPYC (Zen 4) and half of it on an Intel Xeon.
        log.info(
            "precision=bf16 on a CPU with AVX512-BF16 but no AMX: bf16 matmuls run natively; "
            "whether they beat fp32 depends on the CPU (python -m benchmarks.speed measures it)"
        )
    if flags == set():
        raise InputError(
            "precision=bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX); this one has "
            "neither, so bf16 matmuls would be emulated, far slower than fp32. Use "
            "precision=fp32 here, or bf16 on a GPU (device=cuda)"
        )


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context a forward pass (and its loss) runs in for `precision`."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
