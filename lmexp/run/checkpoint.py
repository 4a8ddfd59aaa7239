"""Atomic checkpoint files holding only state dicts and plain data.

Writes go to a temporary file in the same folder and are moved into place with `os.replace`, so a
crash never leaves a truncated `best.pt`/`last.pt`; reads use `weights_only=True`, so a crafted
pickle cannot run code.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import torch

from lmexp.atomic import replacing
from lmexp.run import signals


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, or not a checkpoint."""


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write `payload` (state dicts, tensors, numbers, strings) to `path` atomically.

    torch.save serialises into memory first and the bytes are written by Python: torch's zip
    writer would report a full disk as `enforce fail at inline_container.cc`, Python's write
    says ENOSPC (or EROFS), and the error here names the file and what was kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Ctrl-C or SIGTERM inside torch.save would come out of its zip writer as a RuntimeError,
    # and inside the write leave it half done: they wait until the file is in place (signals.py)
    try:
        with signals.deferred():
            buffer = io.BytesIO()
            torch.save(payload, buffer)
            with replacing(path) as f:
                f.write(buffer.getbuffer())
    except OSError as exc:
        kept = f"the previous {path.name} is kept" if path.exists() else f"no {path.name} yet"
        raise OSError(
            exc.errno, f"{exc.strerror}: cannot write checkpoint {path} ({kept})", str(path)
        ) from exc


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; refuses anything but plain data."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise  # a crafted pickle: refused, and torch's message says why
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({str(exc).splitlines()[0]}): it is truncated or "
            f"not a checkpoint. Delete it to start the job over (rm {path}), or use "
            "checkpoints/best.pt if that is the one you need"
        ) from exc
