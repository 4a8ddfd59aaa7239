"""Atomic checkpoint files holding only state dicts and plain data.

Writes go to a temporary file in the same folder and are moved into place with `os.replace`, so a
crash never leaves a truncated `best.pt`/`last.pt`; reads use `weights_only=True`, so a crafted
pickle cannot run code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write `payload` (state dicts, tensors, numbers, strings) to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; refuses anything but plain data."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)
