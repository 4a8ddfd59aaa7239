"""What a saved run may make lmexp run: nothing, unless the user says so.

A run directory is data: downloaded, copied, shared. Its config (the record, or a checkpoint's
copy) may name only lmexp's own architectures. One that names `model=custom`, a class to
import, is refused in one line unless the user opts in (`--trust-model-code` on the commands
that open a run, `trust_code=True` in Python), and even then its module is not looked for in
the working directory (where `python -m` would find a file the run came with), only on the
paths the user set: PYTHONPATH and the installed packages.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lmexp.models import ARCHITECTURES, names
from lmexp.validation import UsageError

TRUST_FLAG = "--trust-model-code"  # the commands' opt-in; `trust_code=True` in Python


class UntrustedModelCode(UsageError, ValueError):
    """A saved run names code of its own (`model=custom`) and the user has not opted in."""


def add_trust_flag(parser: argparse.ArgumentParser) -> None:
    """The opt-in of every command that opens a saved run (evaluate, generate, internals)."""
    parser.add_argument(
        TRUST_FLAG,
        action="store_true",
        help="import the model class a model=custom run names (off: such a run is refused)",
    )


def check_saved_model(saved: Any, source: object, trust_code: bool) -> None:
    """Refuse a saved config whose architecture is not lmexp's own, in one line naming it."""
    model = saved.get("model") if isinstance(saved, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    if name in names():
        return
    if name in ARCHITECTURES and not ARCHITECTURES[name].builtin:
        if trust_code:
            return
        target = model.get("_target_") if isinstance(model, dict) else None
        raise UntrustedModelCode(
            f"{source}: its config names model={name} (model._target_={target!r}), code of "
            f"its own; rerun with {TRUST_FLAG} (Python: trust_code=True) to import it"
        )
    raise ValueError(
        f"{source}: its config names model.name={name!r}, which is not an architecture of "
        f"lmexp ({', '.join(names())})"
    )


@contextmanager
def without_working_directory() -> Iterator[None]:
    """sys.path without the working directory (`""`, or its path, which `python -m` puts
    first), unless the user put it on PYTHONPATH."""
    given = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    here = os.path.abspath(os.getcwd())
    kept = list(sys.path)
    sys.path[:] = [
        p for p in kept if os.path.abspath(p or ".") != here or os.path.abspath(p) in given
    ]
    try:
        yield
    finally:
        sys.path[:] = kept
