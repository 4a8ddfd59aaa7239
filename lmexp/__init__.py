"""lmexp: Hydra-configured sweeps of sequential language models.

The Python API (lmexp/api.py): `lmexp.compose(overrides)` gives the validated config of one
job, `lmexp.fit(cfg, out_dir)` trains it into a run directory, `lmexp.load(run_dir)` opens a
finished run for scoring (lmexp/inspect/scoring.py), and `lmexp.register()` registers lmexp's
configs with Hydra. They are imported on first use, so `import lmexp.<module>` stays free of
torch where that module is.
"""

from __future__ import annotations

import os
from typing import Any

from lmexp.version import __version__

if "SUBMITIT_FOLDER" in os.environ:  # a job process submitit started, importing its job
    from lmexp.run.signals import hold_while_starting

    hold_while_starting()  # a preemption signal from here on is kept, not fatal

__all__ = ["__version__", "compose", "fit", "load", "register"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from lmexp.inspect.scoring import load

        return load
    if name in ("compose", "fit", "register"):
        from lmexp import api

        return getattr(api, name)
    raise AttributeError(f"module 'lmexp' has no attribute {name!r}")
