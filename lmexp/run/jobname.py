"""A sweep job's directory name, `3-gru-adam-lr=0.01,seed=2`: its number, architecture and
optimizer, then the values that vary across the sweep (lmexp/search/naming.py says which).

Read by the `lmexp.job_dir` resolver that conf/train.yaml's `hydra.sweep.subdir` calls, from
Hydra's `hydra.job.override_dirname` (the job's overrides minus the command's fixed keys).
"""

from __future__ import annotations

import hashlib
import re

# the separator Hydra puts between the overrides of override_dirname (conf/train.yaml): a
# character no value holds, where a comma may be inside a list value
ITEM_SEP = "|"
MAX_SUFFIX = 64  # characters of `k=v,...` kept before the rest becomes a digest
SHOWN_KEYS = ("model", "optim")  # in the name already, before the varying part
_UNSAFE = re.compile(r"[^\w.=+,:@%-]")


def _short(value: str) -> str:
    """A number written with many digits (a sampled learning rate, 0.0123456789) to four
    significant ones, a path to its last part (data.root=/data/ptb: ptb); a value as typed
    on the command line (10000.0, 1e-5) stays as it is."""
    if "/" in value.rstrip("/"):
        return value.rstrip("/").rpartition("/")[2]
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 else value


def job_dir_name(num: object, model: object, optim: object, varying: str | None) -> str:
    """`<num>-<model>-<optim>` and, if any, `-<key>=<value>,...` of what varies (`varying`:
    Hydra's override_dirname). A key is its last dotted part unless two share it; a suffix
    longer than MAX_SUFFIX ends in a digest of the whole, so names stay distinct and short."""
    name = f"{num}-{model}-{optim}"
    items = [i for i in (varying or "").split(ITEM_SEP) if i and "=" in i]
    pairs = []
    for item in items:
        key, _, value = item.partition("=")
        key = key.lstrip("+~")
        if key in SHOWN_KEYS:
            continue
        pairs.append((key, _short(value.strip("'\""))))
    if not pairs:
        return name
    leaves = [k.rpartition(".")[2] for k, _ in pairs]
    shown = [
        f"{leaf if leaves.count(leaf) == 1 else key}={value}"
        for (key, value), leaf in zip(pairs, leaves, strict=True)
    ]
    suffix = _UNSAFE.sub("_", ",".join(shown))
    if len(suffix) > MAX_SUFFIX:
        digest = hashlib.sha1(suffix.encode()).hexdigest()[:8]
        suffix = f"{suffix[: MAX_SUFFIX - 9]}~{digest}"
    return f"{name}-{suffix}"
