"""Every value an Optuna search space can propose composes into a valid job config."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from lmexp.api import job_config
from lmexp.config import register_configs
from lmexp.models import names
from lmexp.resolvers import register_resolvers
from tests.conftest import CONF_DIR


def _proposals(expression: str) -> list[str]:
    """Values the sampler can draw: every choice, and an interval's ends and a middle point
    (an int(...) interval draws ints, a plain one floats, 245.97 for a width)."""
    value = OverridesParser.create().parse_override(f"k={expression}").value()
    if hasattr(value, "list"):
        return [str(v) for v in value.list]
    start, end = value.start, value.end
    middle = (start + end) // 2 if isinstance(start, int) else start + (end - start) * 0.377
    return [str(start), str(middle), str(end)]


@pytest.mark.parametrize("model", names())
def test_every_proposal_of_the_search_space_is_a_valid_job(model):
    register_configs()
    register_resolvers()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        base = ["sweep=optuna", f"model={model}"]
        cfg = compose("train", overrides=base, return_hydra_config=True)
        params = dict(cfg.hydra.sweeper.params)
        assert params, "sweep=optuna has a search space for every architecture"
        for key, expression in params.items():
            for value in _proposals(str(expression)):
                job = compose(
                    "train", overrides=[*base, f"{key}={value}"], return_hydra_config=True
                )
                job_config(job)
