"""What `lmexp-train --help` lists and shell completion offers, from the schemas' CHOICES.

The choice keys and their values live in the schemas (each one's `CHOICES`, checked there);
this reads them, so help, completion and validation never disagree. The config groups shown
are the user-facing ones: not the schemas Hydra stores (`schema/`), the per-architecture
overlays (`scale/model`, `scale/experiment`, `sweep/space`) or presets' private bases (`_*`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

HIDDEN_GROUPS = ("schema", "scale/model", "scale/experiment", "sweep/space", "hydra")


def config_groups(conf: Path) -> dict[str, list[str]]:
    """Group (folder under conf/, e.g. `experiment/ift6135_a2`) -> its options, sorted."""
    groups: dict[str, list[str]] = {}
    for yaml in sorted(conf.rglob("*.yaml")):
        group = yaml.parent.relative_to(conf).as_posix()
        if group == "." or group.startswith(HIDDEN_GROUPS) or yaml.stem.startswith("_"):
            continue
        groups.setdefault(group, []).append(yaml.stem)
    return groups


def choices(model_name: str | None = None) -> dict[str, tuple[str, ...]]:
    """Every choice key of a job (`model.*` those of architecture `model_name`) -> values."""
    from lmexp.config import DEVICE_CHOICES, RESUME_CHOICES, TrainConfig
    from lmexp.data.schema import DataConfig
    from lmexp.models import ARCHITECTURES
    from lmexp.training.schema import TrainerConfig

    # keys checked by a rule rather than a CHOICES list: what to type
    resume = tuple(str(v).lower() for v in RESUME_CHOICES)
    found: dict[str, tuple[str, ...]] = {"device": DEVICE_CHOICES, "resume": resume}
    for section, schema in (("", TrainConfig), ("data", DataConfig), ("trainer", TrainerConfig)):
        for key, values in schema.CHOICES.items():
            found[f"{section}.{key}" if section else key] = tuple(map(str, values))
    arch = ARCHITECTURES.get(str(model_name)) if model_name else None
    if arch is not None:
        for key, values in arch.schema.CHOICES.items():
            found[f"model.{key}"] = tuple(values)
    return found


def groups_text() -> str:
    """The `== Config groups ==` lines of --help."""
    from lmexp.config import conf_dir

    return "\n".join(f"{g}: {', '.join(o)}" for g, o in config_groups(conf_dir()).items())


def choices_text(model_name: str | None = None) -> str:
    """The `== Choices ==` lines of --help, for the chosen architecture."""
    return "\n".join(f"{k}: {' | '.join(v)}" for k, v in choices(model_name).items())


def complete(line: str) -> list[str] | None:
    """Completions of the last word of `line` when it is `<choice key>=<partial>`; None
    otherwise (Hydra's own completion then answers: groups, keys, values)."""
    words = line.split(" ")
    word = words[-1] if words else ""
    key, sep, partial = word.partition("=")
    if not sep:
        return None
    model = (
        next((w.partition("=")[2] for w in words[1:-1] if w.startswith("model=")), None)
        or _default_model()
    )
    allowed = choices(model).get(key)
    if allowed is None:
        return None
    return [f"{key}={v}" for v in allowed if v.startswith(partial) and "<" not in v]


def _default_model() -> str:
    """The architecture train.yaml's defaults list picks (`model: lstm`)."""
    import yaml

    from lmexp.config import conf_dir

    defaults = yaml.safe_load((conf_dir() / "train.yaml").read_text(encoding="utf-8"))["defaults"]
    return next(d["model"] for d in defaults if isinstance(d, dict) and "model" in d)


def respond_to_completion(argv: list[str], answer: Callable[[str], list[str] | None]) -> None:
    """A TAB, as Hydra's hook asks it (`-sc query=<shell>`, the line in $COMP_LINE): print what
    `answer` gives for the line up to the cursor and exit; return when it is not a completion
    query or `answer` leaves it to Hydra (None)."""
    import os
    import sys

    if "-sc" not in argv and "--shell-completion" not in argv:
        return
    shell = next((a.partition("=")[2] for a in argv if a.startswith("query=")), None)
    line = os.environ.get("COMP_LINE")
    if shell is None or line is None:
        return
    point = os.environ.get("COMP_POINT")
    found = answer(line[: int(point)] if point and point.isdigit() else line)
    if found is not None:
        print(("\n" if shell == "fish" else " ").join(found))
        sys.exit(0)
