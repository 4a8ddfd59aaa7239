"""Config checks before Hydra launches anything: a bad value stops the command in one line.

`lmexp-train` (and `python -m lmexp.train`) composes the config of every job the command
would launch, with Hydra's own compose API, and validates each (`to_train_config`) before
Hydra creates a run directory. A value lmexp refuses (dropout 1.5, heads that do not divide
the width, no finite budget, `device=gpu`) prints one line naming the key, its value and the
fix, and nothing is written. Hydra's own errors (an unknown group or key, a wrong type) are left
to Hydra, which reports them in one line too. An Optuna search's sampled values are only known
at trial time: for an Optuna search it checks that the space parses and that every choice and
each interval's ends make a valid job, one parameter at a time (a combination of values that
is invalid only together is recorded `failed` by its trial's job, as data).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import OverrideParseException
from omegaconf import OmegaConf

from lmexp.search.space import override_key
from lmexp.validation import UsageError, first_line

# grid points composed and checked one by one; a larger grid is checked on a covering set: every
# value of every swept key with every value of every other (the rules that refuse a job relate
# two keys at most: heads and width, embedding and tied weights, window and max_len)
MAX_CHECKED = 256


class InvalidConfig(UsageError, ValueError):
    """A job of the command has a value lmexp refuses; the message is the one line to print."""


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
    points = itertools.product(*axes) if _size(axes) <= MAX_CHECKED else pairwise_cover(axes)
    for point in points:
        yield [*fixed, *point]


def _size(axes: list[list[str]]) -> int:
    return math.prod(len(axis) for axis in axes)


def every_job(overrides: list[str], multirun: bool) -> bool:
    """Whether `job_overrides` yields every job of the grid, in Hydra's order (its k-th is
    Hydra's job k), rather than a covering set."""
    count = sum(1 for _ in itertools.islice(job_overrides(overrides, multirun), MAX_CHECKED + 1))
    return count <= MAX_CHECKED


def pairwise_cover(axes: list[list[str]]) -> Iterator[tuple[str, ...]]:
    """Points of the grid `product(*axes)` in which every value of each axis meets every value
    of each other axis at least once (a greedy covering array): for 10 x 10 x 10 x 4 values
    about 110 points instead of 4,000."""
    if len(axes) == 1:
        yield from ((value,) for value in axes[0])
        return
    n = len(axes)
    todo = {
        (i, a, j, b)
        for i in range(n)
        for j in range(i + 1, n)
        for a in range(len(axes[i]))
        for b in range(len(axes[j]))
    }
    while todo:
        i, a, j, b = min(todo)
        point: list[int | None] = [None] * n
        point[i], point[j] = a, b
        for k in range(n):
            if point[k] is not None:
                continue
            point[k] = max(
                range(len(axes[k])),
                key=lambda v, k=k: sum(
                    (min(k, m), v if k < m else w, max(k, m), w if k < m else v) in todo
                    for m, w in enumerate(point)
                    if w is not None and m != k
                ),
            )
        chosen = [int(v) for v in point if v is not None]
        todo -= {(p, chosen[p], q, chosen[q]) for p in range(n) for q in range(p + 1, n)}
        yield tuple(axes[k][chosen[k]] for k in range(n))


def check_command(config_dir: str, config_name: str, overrides: list[str], multirun: bool) -> None:
    """Compose and validate every job of the command; raise `InvalidConfig` for the first bad one.

    An override that does not parse, an unknown key or option, or a value of the wrong type
    (Hydra's composition errors) is worded in one line too, with the nearest known names.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    from lmexp.api import job_config
    from lmexp.search.naming import fixed_keys_override
    from lmexp.suggest import parse_line

    try:
        OverridesParser.create().parse_overrides(overrides)
    except OverrideParseException as exc:
        raise InvalidConfig(parse_line(overrides, str(exc))) from None
    hosts_checked: set[str] = set()
    with initialize_config_dir(version_base="1.3", config_dir=config_dir):
        overrides, composed = _with_repeats(config_name, overrides, multirun)
        numbered = every_job(overrides, multirun)
        # the grid sweeper's job directory names (lmexp/search/naming.py), to check them
        naming = [fixed_keys_override(overrides)] if multirun else []
        for k, job in enumerate(job_overrides(overrides, multirun)):
            try:
                if composed is not None and composed[0] == [*job, *naming]:
                    cfg = composed[1]  # a single run: composed once already (a quarter second)
                else:
                    cfg = compose(config_name, overrides=[*job, *naming], return_hydra_config=True)
            except (HydraException, OmegaConfBaseException) as exc:
                raise InvalidConfig(_composition_line(config_dir, config_name, job, exc)) from None
            varying = _varying(job, overrides) if multirun else []
            where = f" (the job {' '.join(varying)})" if varying else ""
            try:
                train = job_config(cfg)
            except (ValueError, TypeError, OmegaConfBaseException) as exc:
                raise InvalidConfig(f"{_one_line(exc)}{where}") from None
            if k == 0:
                _check_launcher(cfg, multirun)
                _check_output_dir(cfg, train, multirun)
            if numbered and not _is_search(cfg):  # job k here is Hydra's job k
                _check_job_dir(cfg, train, k, multirun, where)
            if _runs_here(cfg):
                _check_host(train, hosts_checked, where)
            if multirun and _is_search(cfg):
                _check_search(config_name, cfg, overrides)
                return


def _composition_line(config_dir: str, config_name: str, job: list[str], exc: Exception) -> str:
    """Hydra's refusal to compose `job`, in one line with a did-you-mean (lmexp/suggest.py):
    the known keys are those of the job's config composed from its group choices alone."""
    from hydra import compose

    from lmexp.help import config_groups
    from lmexp.suggest import composition_line, flat_keys

    choices = [o for o in job if "=" in o and "." not in o.partition("=")[0]]
    known: list[str] = []
    for attempt in (choices, []):
        try:
            known = flat_keys(compose(config_name, overrides=attempt))
            break
        except Exception:  # a group typo among the choices: the defaults' keys then
            continue
    message = str(exc) if exc.__cause__ is None else f"{exc}\n{exc.__cause__}"
    return composition_line(message, known, config_groups(Path(config_dir)))


def _with_repeats(
    config_name: str, overrides: list[str], multirun: bool
) -> tuple[list[str], tuple[list[str], Any] | None]:
    """The command's overrides with the seed axis `seeds=K` gives a grid (as lmexp's grid
    sweeper adds it), so every repeat is checked and numbered as Hydra will number it; and the
    first job's overrides with its composed config (None if it did not compose), for reuse."""
    import sys

    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lmexp.search.repeats import RepeatsConflict, seed_axis

    first = next(job_overrides(overrides, multirun), None)
    if first is None:
        return overrides, None
    try:
        cfg = compose(config_name, overrides=first, return_hydra_config=True)
        seeds, seed = int(cfg.get("seeds") or 1), int(cfg.seed)
    except (HydraException, OmegaConfBaseException, TypeError, ValueError):
        return overrides, None  # Hydra, or the job's own check, says what is wrong
    composed = (list(first), cfg)
    if seeds > 1 and not multirun:
        if not any(o.lstrip("+~").startswith("seed=") for o in overrides):
            print(
                f"lmexp: seeds={seeds} repeats the cells of a sweep (add -m); this single run "
                f"trains seed={seed} alone",
                file=sys.stderr,
            )
        return overrides, composed
    if seeds <= 1 or _is_search(cfg):
        return overrides, composed  # a search runs a trial's seeds itself (search/sweep.py)
    try:
        return seed_axis(overrides, seed, seeds), None
    except RepeatsConflict as exc:
        raise InvalidConfig(str(exc)) from None


def _check_launcher(cfg: Any, multirun: bool) -> None:
    """Launcher and sweeper settings that cannot work (n_jobs=0, ...)."""
    from lmexp.callbacks import launcher_problems

    if multirun:
        from omegaconf.errors import InterpolationResolutionError

        try:  # a value the launcher preset computes (`${lmexp.slurm_gres:...}`) may refuse
            OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
        except InterpolationResolutionError as exc:
            key = getattr(exc, "full_key", None) or "hydra.launcher"
            cause = first_line(exc.__cause__ or exc).partition("resolving interpolation: ")
            raise InvalidConfig(f"{key}: {cause[2] or cause[0]}") from None
        problems = launcher_problems(cfg.hydra.get("launcher"), cfg.hydra.get("sweeper"))
        if problems:
            raise InvalidConfig("; ".join(problems))


def _check_output_dir(cfg: Any, train: Any, multirun: bool) -> None:
    """The folder Hydra creates first (a single run's, or the sweep's) can be written."""
    from lmexp.hostcheck import check_output_dir

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    check_output_dir(Path(str(OmegaConf.select(cfg, key))), key, train.resume)


def _check_job_dir(cfg: Any, train: Any, num: int, multirun: bool, where: str) -> None:
    """A job directory that already holds a run: refused without resume=true, and under it
    the relaunch must ask for the recorded settings (what the job itself would refuse)."""
    import dataclasses

    from omegaconf import open_dict, read_write

    from lmexp.run.record import ConfigChanged, check_relaunch, read_recorded_config
    from lmexp.run.resume import holds_run
    from lmexp.run.rundir import RunDir
    from lmexp.validation import UsageError, usage_line

    if multirun:
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.job.num = num  # what the subdir names (Hydra's job number in the grid)
        folder = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
    else:
        folder = Path(str(cfg.hydra.run.dir))
    try:
        if holds_run(folder, bool(train.resume)):
            recorded = read_recorded_config(RunDir(folder))
            check_relaunch(recorded, dataclasses.asdict(train), force=train.resume == "force")
    except ConfigChanged as exc:  # its words say "this job directory": name it
        raise ConfigChanged(f"{folder}: {usage_line(exc)}{where}") from None
    except UsageError as exc:
        raise type(exc)(f"{usage_line(exc)}{where}") from None
    except OSError:
        return  # unreadable: the job says what is wrong with it


def _runs_here(cfg: Any) -> bool:
    """Whether the launcher runs the jobs on this host: a cluster's nodes have their own GPUs
    and may see other files, so only they can judge the device and the corpus."""
    target = str((cfg.hydra.get("launcher") or {}).get("_target_", ""))
    return "Slurm" not in target


def _check_host(train: Any, checked: set[str], where: str) -> None:
    """This host can run the job (device, corpus); each distinct setting is checked once."""
    from lmexp.hostcheck import check_job
    from lmexp.validation import UsageError, usage_line

    settings = (train.device, train.precision, train.cuda_graph, train.compile, train.data)
    if repr(settings) in checked:
        return
    checked.add(repr(settings))
    try:
        check_job(train)
    except UsageError as exc:
        raise type(exc)(f"{usage_line(exc)}{where}") from None


def _is_search(cfg: Any) -> bool:
    target = str((cfg.hydra.get("sweeper") or {}).get("_target_", ""))
    return target == "hydra_plugins.lmexp_search.OptunaSearch"


def _check_search(config_name: str, cfg: Any, overrides: list[str]) -> None:
    """An Optuna search: its space parses, and each parameter's extreme values (every choice,
    an interval's ends) make a valid job, one parameter at a time.

    A value is set into the composed config (composing again per value would cost seconds);
    a config group (`optim=choice(adam, sgd)`) is composed.
    """
    from hydra import compose
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from lmexp.api import job_config
    from lmexp.search.space import SearchSpaceError, format_value, search_space

    try:
        space = search_space(cfg.hydra.sweeper.get("params") or {}, overrides)
    except SearchSpaceError as exc:
        raise InvalidConfig(f"search space: {exc}") from None
    for key, dist in space.distributions.items():
        name = key.lstrip("+~")
        for value in _extremes(dist):
            line = f"{key}={format_value(value)}"
            try:
                if "." in name:
                    job = cfg.copy()
                    OmegaConf.update(job, name, value, merge=False, force_add=True)
                else:
                    job = compose(config_name, [*space.fixed, line], return_hydra_config=True)
                job_config(job)
            except (HydraException, OmegaConfBaseException, ValueError, TypeError) as exc:
                raise InvalidConfig(
                    f"{_one_line(exc)} (the search space can propose {line}: narrow its "
                    f"range, or pin {name}=<value>)"
                ) from None


def _extremes(dist: Any) -> list[Any]:
    choices = getattr(dist, "choices", None)
    return list(choices) if choices is not None else [dist.low, dist.high]


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
    """The job's values of the command's sweep axes: which grid point is wrong (none for a
    multirun of one job)."""
    return [o for o in job if o not in overrides]
