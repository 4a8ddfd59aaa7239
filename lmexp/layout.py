"""Where lmexp's own files are, found without importing anything heavy (torch, Hydra)."""

from __future__ import annotations

from pathlib import Path


def conf_dir() -> Path:
    """The YAML tree: inside the package in a wheel (lmexp/conf), else the checkout's conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if (packaged / "train.yaml").is_file() else packaged.parent.parent / "conf"
