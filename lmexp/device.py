"""Device choice and per-job seeding: the only place that asks what hardware exists."""

from __future__ import annotations

import random

import numpy as np
import torch


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; an impossible CUDA request fails early."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r} but CUDA is not available here; use device=auto or cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device={name!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
        )
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices).

    Jobs of a sweep may share one process (Hydra's basic launcher), so each job reseeds here.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so a clock read after it measures compute, not launch time."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
