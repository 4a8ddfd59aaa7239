"""The console scripts: each imports its command only once it can stop quietly.

`lmexp-train` and the commands that open a run import torch and Hydra, which takes seconds; a
Ctrl-C in that time used to print the import machinery's traceback. Here a Ctrl-C during the
import stops the command with one line and the shell's code for SIGINT (130).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

from lmexp.run.signals import stop_while_starting
from lmexp.version import version_line


def _run(module: str) -> None:
    if sys.argv[1:] == ["--version"]:  # answered before torch and Hydra are imported
        print(version_line(os.path.basename(sys.argv[0])))
        sys.exit(0)
    if module == "lmexp.train":
        complete_quickly(sys.argv[1:])
    # the handler exits at once: a KeyboardInterrupt raised inside an import can be swallowed
    # by a library's bare `except:` around an optional import, and the command would go on
    signal.signal(signal.SIGINT, stop_while_starting)
    command = importlib.import_module(module).cli
    signal.signal(signal.SIGINT, signal.default_int_handler)  # started: Ctrl-C as usual again
    command()


def complete_quickly(argv: list[str]) -> None:
    """A TAB (`-sc query=<shell>`, as Hydra's hook sends it): answered from lmexp's cache
    without torch (lmexp/completion.py) where it can be; else Hydra answers, as before."""
    if "-sc" not in argv and "--shell-completion" not in argv:
        return
    from lmexp.completion import answer
    from lmexp.help import respond_to_completion

    respond_to_completion(argv, answer)


def train() -> None:
    """`lmexp-train`: `python -m lmexp.train`."""
    _run("lmexp.train")


def evaluate() -> None:
    """`lmexp-evaluate`: `python -m lmexp.inspect.evaluate`."""
    _run("lmexp.inspect.evaluate")


def generate() -> None:
    """`lmexp-generate`: `python -m lmexp.inspect.generate`."""
    _run("lmexp.inspect.generate")


def internals() -> None:
    """`lmexp-internals`: `python -m lmexp.inspect.internals`."""
    _run("lmexp.inspect.internals")
