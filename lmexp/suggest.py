"""Hydra's composition errors as lmexp's one line, with a did-you-mean from the known names.

Hydra words a typo in several lines and, for an unknown key, suggests `+key=value`, which only
leads into a second error (lmexp's schemas are closed). Pre-flight composes every job first
(lmexp/preflight.py) and, when Hydra refuses one, says here what was wrong in one line: the key
or option, the nearest known ones, and where the full list is. The known names come from the
config itself (its keys, flattened) and from conf/ (groups and their options): nothing is
listed twice.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

HELP = "lmexp-train --help lists them"


def closest(word: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names nearest to `word` (difflib's ratio >= 0.6), best first.

    A dotted key is also matched on its last part among keys of the same section, so
    `model.hiden_size` finds `model.hidden_size` even among many long keys.
    """
    known = sorted(set(known))
    found = difflib.get_close_matches(word, known, n=n, cutoff=0.6)
    section, _, leaf = word.rpartition(".")
    if section:
        siblings = {k.rpartition(".")[2]: k for k in known if k.rpartition(".")[0] == section}
        for name in difflib.get_close_matches(leaf, list(siblings), n=n, cutoff=0.6):
            if siblings[name] not in found:
                found.append(siblings[name])
    return found[:n]


def did_you_mean(word: str, known: Iterable[str], prefix: str = "") -> str:
    """`; did you mean X?` for the nearest known name, or an empty string when none is close."""
    found = closest(word, known, n=1)
    return f"; did you mean {prefix}{found[0]}?" if found else ""


def flat_keys(node: Any, prefix: str = "") -> list[str]:
    """Every dotted key of a composed config (`model.hidden_size`, ...), sections included."""
    from omegaconf import DictConfig

    keys: list[str] = []
    if not isinstance(node, DictConfig):
        return keys
    for key in node:
        name = f"{prefix}{key}"
        if name == "hydra":
            continue
        keys.append(name)
        try:
            child = node._get_node(key)
        except Exception:  # an interpolation that does not resolve: its key still counts
            continue
        if isinstance(child, DictConfig):
            keys += flat_keys(child, f"{name}.")
    return keys


_UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'")
_NO_OPTION = re.compile(r"Could not find '([^']+)/([^'/]+)'")
_BAD_VALUE = re.compile(r"Error merging override (\S+)")


def composition_line(message: str, keys: list[str], groups: dict[str, list[str]]) -> str:
    """One line for Hydra's composition error `message` (with its cause's text after it), given
    the config's known `keys` and conf/'s `groups` (group -> options)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0] if lines else message.strip()
    unknown = _UNKNOWN_KEY.search(message)
    if unknown:
        key = unknown.group(1)
        names = [*keys, *groups] if "." not in key else keys
        hint = did_you_mean(key, names)
        if key in groups or "." not in key and closest(key, groups):
            # a group typo (`modle=gru`): its options are chosen as group=option
            hint = did_you_mean(key, groups) or hint
        return f"unknown key {key}{hint} ({HELP}; a new key is added only to model=custom)"
    missing = _NO_OPTION.search(message)
    if missing:
        group, option = missing.group(1), missing.group(2)
        options = groups.get(group, [])
        hint = did_you_mean(option, options, prefix=f"{group}=")
        known = f" Options: {', '.join(options)}" if options else ""
        return f"{group}={option} is not an option of {group}{hint}{known}"
    bad = _BAD_VALUE.search(message)
    if bad:
        details = ("full_key", "object_type", "reference_type")
        cause = next((line for line in lines[1:] if not line.startswith(details)), "")
        return f"{bad.group(1)}: {cause}" if cause else first
    return first


def parse_line(overrides: list[str], message: str) -> str:
    """One line for an override that does not parse (Hydra's grammar error `message`), naming
    the first of `overrides` that does not parse alone."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    culprit = None
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException:
            culprit = override
            break
    cause = message.strip().splitlines()[0] if message.strip() else "does not parse"
    where = f"{culprit}: " if culprit else ""
    return (
        f"{where}{cause} (quote a value that holds brackets, commas or spaces: 'key=\"a b\"'; "
        "the grammar: https://hydra.cc/docs/advanced/override_grammar/basic/)"
    )
