"""A sweep's job directories are named by what varies: `3-gru-adam-lr=0.01,seed=2`.

Hydra numbers a sweep's jobs; lmexp's subdir (conf/train.yaml) adds the architecture and the
optimizer, and here the other values that differ from job to job: the swept keys of a grid
(`seeds=K`'s seed axis included) or the sampled keys of a search. Three seeds of one cell are
`0-rnn-adam-seed=1`, `1-rnn-adam-seed=2`, ..., not three `<n>-rnn-adam`.

How: Hydra writes the job's overrides into `hydra.job.override_dirname`, except the keys of
`hydra.job.config.override_dirname.exclude_keys`. The sweeper (and pre-flight, which must name
the same folders) excludes every key the command fixes (`fixed_keys_override`), so what is
left is what varies; the `lmexp.job_dir` resolver makes the name of it, bounded in length
(lmexp/run/jobname.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser


def _keys(overrides: Iterable[str]) -> list[tuple[str, bool]]:
    """(key, whether it is swept) of each override, in order."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [(o.key_or_group, o.is_sweep_override()) for o in parsed]


def fixed_keys(overrides: Iterable[str], varying: Iterable[str] = ()) -> list[str]:
    """The keys the command gives one value (not swept, not among `varying`, e.g. a search's
    sampled keys)."""
    keys = _keys(overrides)
    swept = {k.lstrip("+~") for k in varying}  # a search's keys keep their `+`
    swept |= {k for k, is_sweep in keys if is_sweep}  # `seed=5 seed=1,2`: the last one sweeps
    return sorted({k for k, _ in keys if k not in swept})


def fixed_keys_override(overrides: Iterable[str], varying: Iterable[str] = ()) -> str:
    """The hydra override that leaves the command's fixed keys out of each job's name."""
    keys = ",".join(fixed_keys(overrides, varying))
    return f"hydra.job.config.override_dirname.exclude_keys=[{keys}]"


def name_jobs_by_what_varies(
    config: Any, overrides: Iterable[str], varying: Iterable[str] = ()
) -> None:
    """Make every job the sweep composes from `config` (the multirun's, which its launcher
    composes each job from) leave the command's fixed keys out of its directory name."""
    from omegaconf import read_write

    with read_write(config.hydra.overrides):
        config.hydra.overrides.hydra.append(fixed_keys_override(overrides, varying))
