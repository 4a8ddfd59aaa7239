"""Config checks before Hydra launches anything: a bad value stops the command in one line.

`lmexp-train` (and `python -m lmexp.train`) composes the config of every job the command
would launch, with Hydra's own compose API, and validates each (`to_train_config`) before
Hydra creates a run directory. A value lmexp refuses (dropout 1.5, heads that do not divide
the width, no finite budget, `device=gpu`) prints one line naming the key, its value and the
fix, and nothing is written. Hydra's own errors (an unknown group or key, a wrong type) are left
to Hydra, which reports them in one line too. An Optuna search's sampled values are only known
at trial time: a trial whose sample is invalid is recorded `failed` by its job, as data.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException

MAX_CHECKED = 256  # grid points composed and checked; a larger grid is checked up to here


class InvalidConfig(ValueError):
    """A job of the command has a value lmexp refuses; the message is the one line to print."""


def override_key(override: Override) -> str:
    """The override's key as written, with its `+`, `++` or `~` (`+model.kwargs.width`)."""
    return override.get_key_element()


def _values(override: Override) -> list[str] | None:
    """`key=value` for each value of a sweep override; None if the sweeper samples it."""
    try:
        values = list(override.sweep_string_iterator())
    except Exception:  # interval(...), tag(...): an Optuna search draws these
        return None
    return [f"{override_key(override)}={value}" for value in values]


def job_overrides(overrides: list[str], multirun: bool) -> Iterator[list[str]]:
    """The override list of each job the command launches (a grid's points, in Hydra's order).

    Sweep overrides on a single run, and overrides that do not parse, are left for Hydra to
    refuse (none is yielded); sampled ones are dropped.
    """
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException:
        return  # Hydra prints its parse error in a few lines itself
    fixed: list[str] = []
    axes: list[list[str]] = []
    for override in parsed:
        if not override.is_sweep_override():
            fixed.append(override.input_line or "")
            continue
        if not multirun:
            return  # Hydra says "use --multirun" itself
        values = _values(override)
        if values is not None:
            axes.append(values)
    for point in itertools.islice(itertools.product(*axes), MAX_CHECKED):
        yield [*fixed, *point]


def check_command(config_dir: str, config_name: str, overrides: list[str], multirun: bool) -> None:
    """Compose and validate every job of the command; raise `InvalidConfig` for the first bad one.

    Composition errors are Hydra's to report: this returns quietly and lets Hydra run into them.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lmexp.api import job_config

    with initialize_config_dir(version_base="1.3", config_dir=config_dir):
        for job in job_overrides(overrides, multirun):
            try:
                cfg = compose(config_name, overrides=job, return_hydra_config=True)
            except (HydraException, OmegaConfBaseException):
                return  # Hydra's own error: its main reports it in one line
            try:
                job_config(cfg)
            except (ValueError, TypeError, OmegaConfBaseException) as exc:
                where = f" (the job {' '.join(_varying(job, overrides))})" if multirun else ""
                raise InvalidConfig(f"{_one_line(exc)}{where}") from None


def _one_line(exc: Exception) -> str:
    """lmexp's own message, or OmegaConf's first line with the key it names."""
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    if isinstance(exc, MissingMandatoryValue):
        key = getattr(exc, "full_key", None) or "a key"
        return f"{key} is not set (it is ???); set {key}=<value>"
    if isinstance(exc, OmegaConfBaseException):
        return str(exc).splitlines()[0]
    return str(exc)


def _varying(job: list[str], overrides: list[str]) -> list[str]:
    """The job's values of the command's sweep axes: which grid point is wrong."""
    return [o for o in job if o not in overrides] or job
