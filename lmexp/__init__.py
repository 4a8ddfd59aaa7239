"""lmexp: Hydra-configured sweeps of sequential language models.

`lmexp.load(run_dir)` opens a finished run for scoring (lmexp/inspect/scoring.py); it is imported on
first use, so `import lmexp.<module>` stays free of torch where that module is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from lmexp.inspect.scoring import load

        return load
    raise AttributeError(f"module 'lmexp' has no attribute {name!r}")
