"""Shared test helpers: where the real corpora are, and Hydra composition without launching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


def shared_data_dir() -> Path | None:
    """`$LMEXP_DATA_DIR`, else the `shared/data` folder beside the checkout, else None."""
    env = os.environ.get("LMEXP_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for path in candidates:
        if (path / "ptb" / "ptb.train.txt").exists():
            return path
    return None


@pytest.fixture
def data_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("PTB not found: set LMEXP_DATA_DIR to a folder holding ptb/ptb.*.txt")
    return path


@pytest.fixture
def compose():
    """compose(overrides) -> DictConfig of conf/train.yaml, as Hydra would build it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from lmexp.config import register_configs

    register_configs()

    def _compose(overrides: list[str] | None = None):
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            return hydra_compose(config_name="train", overrides=overrides or [])

    return _compose
