"""What this host must offer a job, checked before Hydra starts it: device, corpus, run directory.

`preflight.py` asks whether a job's settings make sense anywhere; this asks whether they can
run here, while a refusal still costs nothing: the GPU the job names exists, its corpus files
are in place (or will be downloaded), and its run directory can be written. Each refusal is a
`UsageError` whose message is the one line `lmexp-train` prints. A job that reaches its host
meets the same checks again where they happen (resolving the device, reading the files), so a
`lmexp.fit` call or a cluster job says the same thing.
"""

from __future__ import annotations

from pathlib import Path

from lmexp.config import TrainConfig
from lmexp.data.registry import corpus_spec
from lmexp.run.resume import FINISHED, read_summary
from lmexp.runtime.device import resolve_device
from lmexp.runtime.precision import check_precision
from lmexp.training.graph import graph_wanted
from lmexp.validation import check_writable_dir


def check_job(cfg: TrainConfig) -> None:
    """The device (with its precision and CUDA-graph settings) and the corpus files."""
    device = resolve_device(cfg.device)
    check_precision(cfg.precision, device)
    graph_wanted(cfg.cuda_graph, device, cfg.data.mode, cfg.compile)
    check = corpus_spec(cfg.data.name).check
    if check is not None:
        check(cfg.data)


def check_output_dir(path: Path, key: str, resume: object = False) -> None:
    """`path` (the value of `key`, hydra.run.dir or hydra.sweep.dir) can be created and written.

    A finished job under `resume=true` needs nothing written: its directory may be read-only.
    """
    finished = _finished(Path(path))
    if resume is True and finished:
        return  # skipped, not written: read-only is fine
    hint = " (it holds a finished run: resume=true skips it)" if finished else ""
    check_writable_dir(Path(path), key, hint)


def _finished(path: Path) -> bool:
    """Whether `path` holds a finished job (False where it cannot be read, too long a name)."""
    try:
        summary = read_summary(path) if path.is_dir() else None
    except OSError:
        return False
    return summary is not None and summary.get("status") in FINISHED
