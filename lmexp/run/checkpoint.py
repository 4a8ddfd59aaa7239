"""Atomic checkpoint files holding only state dicts and plain data.

Writes go to a temporary file in the same folder and are moved into place with `os.replace`, so a
crash never leaves a truncated `best.pt`/`last.pt`; reads use `weights_only=True`, so a crafted
pickle cannot run code.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from lmexp.atomic import replacing
from lmexp.run import signals
from lmexp.validation import UsageError, first_line


class CheckpointError(UsageError, ValueError):
    """A checkpoint file that cannot be read: truncated, or not a checkpoint."""


class CheckpointRefused(CheckpointError, pickle.UnpicklingError):
    """A pickle of more than plain data (weights_only refused it): nothing in it ran."""


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


# What a last.pt holds for a resume (a best.pt has the model and config only: it scores)
RESUMES_FROM = ("model", "config", "optimizer", "trainer", "rng")


def load_checkpoint(
    path: Path, map_location: str | torch.device = "cpu", needs: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, holding at least the keys `needs`.

    Refuses anything but plain data (a crafted pickle runs nothing), and says in one line
    (CheckpointError) what is wrong with a file that is truncated, not a checkpoint, or a
    checkpoint of the other kind (best.pt copied over last.pt).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch's warnings about a foreign pickle: said below
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # weights_only: a pickle of more than plain data
        raise CheckpointRefused(
            f"checkpoint {path} is refused: it holds more than tensors and plain data, which "
            "lmexp never writes (torch: Weights only load failed); nothing in it was run"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a file torch cannot read, whichever way it fails
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: "
            f"{first_line(exc, 'no detail')}): it "
            f"is truncated or not a checkpoint. Delete it to start the job over (rm {path}), "
            "or use checkpoints/best.pt if that is the one you need"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"checkpoint {path} holds a {type(payload).__name__}, not a checkpoint"
        )
    missing = [key for key in needs if key not in payload]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}: it is not a checkpoint of this kind "
            "(a best.pt cannot resume a job: it holds no optimizer or position)"
        )
    return payload


def load_state(target: Any, payload: dict[str, Any], key: str, path: Path) -> None:
    """`target.load_state_dict(payload[key])` (a model's or an optimizer's), or one line
    (CheckpointError) naming the checkpoint when its weights do not fit: a tensor of another
    shape or type, a key missing or unexpected, a value that is not a state dict."""
    try:
        target.load_state_dict(payload[key])
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(
            f"checkpoint {path}: its {key} does not fit this run's {key} "
            f"({type(exc).__name__}: {first_line(exc, 'no detail').rstrip(':')}); it was "
            "changed or belongs to another run"
        ) from None
