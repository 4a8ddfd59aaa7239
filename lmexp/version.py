"""lmexp's version, and the line every command's `--version` prints.

The version is the installed distribution's (pyproject.toml's `version`, one home); the line
adds the versions of what shapes a run (Hydra, PyTorch, Python), read from the installed
metadata so that `--version` imports neither torch nor Hydra.
"""

from __future__ import annotations

import argparse
import platform
from importlib import metadata


def _installed(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


__version__ = _installed("lmexp")


def version_line(prog: str) -> str:
    """`lmexp-train 0.1.0 (Hydra 1.3.8, PyTorch 2.13.0+cpu, Python 3.11.7)`."""
    return (
        f"{prog} {__version__} (Hydra {_installed('hydra-core')}, PyTorch {_installed('torch')}, "
        f"Python {platform.python_version()})"
    )


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """`--version` on an argparse command: its line, then exit 0."""
    parser.add_argument("--version", action="version", version=version_line(parser.prog))
