"""Tab completion of `lmexp-train` without importing torch: answers from a cache.

Hydra answers a completion query by composing the config, which makes lmexp register its
schemas, which imports torch: over a second per TAB. This answers the common queries (a group's
options, a choice key's values, a key from its prefix) from `conf/` and from a cache of the
composed keys and choice values of each architecture. The cache is built by the first query
that needs it (the slow way, once) and rebuilt whenever lmexp's code or configs change (its
name holds a digest of their sizes and times). A query it cannot answer (`hydra.*`, `+key`)
goes to Hydra as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lmexp.layout import conf_dir
from lmexp.version import __version__


def _groups(conf: Path) -> dict[str, list[str]]:
    """Group -> options, as `lmexp-train --help` lists them (lmexp.help.config_groups)."""
    from lmexp.help import config_groups

    return config_groups(conf)


def _digest() -> str:
    """Of lmexp's code and configs (sizes and modification times): a change makes a new cache."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256(__version__.encode())
    for root in (package, conf_dir()):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".yaml") and "__pycache__" not in path.parts:
                st = path.stat()
                h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cache_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lmexp" / f"completion-{_digest()}.json"


def build_cache() -> dict[str, Any]:
    """Every architecture's composed keys (sections end in '.') and choice values: the slow way,
    through Hydra and lmexp's schemas (torch imported)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import DictConfig

    from lmexp.api import register
    from lmexp.help import _default_model, choices
    from lmexp.models import names

    register()
    keys: dict[str, list[str]] = {}
    values: dict[str, dict[str, list[str]]] = {}

    def walk(node: Any, prefix: str, out: list[str]) -> None:
        for key in node:
            name = f"{prefix}{key}"
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                out.append(f"{name}.")
                walk(child, f"{name}.", out)
            else:
                out.append(name)

    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir())):
        for model in (*names(), "custom"):
            try:
                cfg = compose("train", overrides=[f"model={model}"])
            except Exception:  # noqa: BLE001  a model that needs more to compose
                continue
            found: list[str] = []
            walk(cfg, "", found)
            keys[model] = found
            values[model] = {k: list(v) for k, v in choices(model).items()}
    return {"default_model": _default_model(), "keys": keys, "choices": values}


def load_cache() -> dict[str, Any]:
    path = cache_path()
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    data = build_cache()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as f:
            json.dump(data, f)
        os.replace(f.name, path)
    except OSError:
        pass  # a read-only home: answer without keeping it
    return data


def answer(line: str) -> list[str] | None:
    """The completions of the last word of `line` (the command line up to the cursor), or
    None to let Hydra answer."""
    words = line.split(" ")
    word = words[-1] if words else ""
    if word.startswith(("hydra", "+", "~", "-")):
        return None
    groups = _groups(conf_dir())
    key, sep, partial = word.partition("=")
    if sep and key in groups:
        return [f"{key}={o}" for o in groups[key] if o.startswith(partial)]
    data = load_cache()
    model = next(
        (w.partition("=")[2] for w in words[1:-1] if w.startswith("model=")),
        data["default_model"],
    )
    if model not in data["keys"]:
        return None
    if sep:
        allowed = data["choices"][model].get(key)
        if allowed is None:
            return None  # a free value: Hydra shows the current one
        return [f"{key}={v}" for v in allowed if v.startswith(partial) and "<" not in v]
    # as Hydra: the groups, then the keys one level below the word's (a section ends in ".")
    found = [f"{g}=" for g in groups if g.startswith(word) and "/" not in g]
    depth = word.count(".")
    for name in data["keys"][model]:
        if name.startswith(word) and name.rstrip(".").count(".") == depth:
            shown = name if name.endswith(".") else f"{name}="
            if shown not in found:
                found.append(shown)
    return sorted(found)
