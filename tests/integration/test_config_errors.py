"""A value lmexp refuses stops the command in one line, before Hydra writes anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, require_data_dir

pytestmark = pytest.mark.slow

TRAIN = str(Path(sys.executable).parent / "lmexp-train")  # the console script


def _train(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "LMEXP_DATA_DIR": str(require_data_dir())}
    return subprocess.run(
        [TRAIN, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["model.dropout=1.5"], "model.dropout=1.5 must be in [0, 1)"),
        (
            ["model=transformer", "model.hidden_size=30"],
            "model.hidden_size=30 not divisible by model.num_heads=4",
        ),
        (["trainer.max_epochs=null"], "no finite budget: set at least one of trainer.max_epochs"),
        (["device=gpu"], "device='gpu' unknown; choose auto, cpu, cuda, cuda:<index> or mps"),
    ],
)
def test_a_bad_value_is_one_line_and_leaves_no_run_directory(tmp_path, overrides, says):
    run_dir = tmp_path / "run"
    done = _train([*overrides, f"hydra.run.dir={run_dir}"])
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [f"lmexp: invalid config: {done.stderr[23:].strip()}"]
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not run_dir.exists()
    assert done.stdout == ""


def test_a_sweep_with_one_bad_point_is_refused_before_any_job(tmp_path):
    sweep = tmp_path / "sweep"
    done = _train(
        ["-m", "model=gru,transformer", "model.hidden_size=30", f"hydra.sweep.dir={sweep}"]
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.endswith("(the job model=transformer)"), line
    assert not sweep.exists()  # the GRU job did not start either: fix the grid and rerun


def test_a_gpu_split_slurm_cannot_make_is_one_line_before_any_submission(tmp_path):
    sweep = tmp_path / "sweep"
    done = _train(["-m", "launcher=slurm_mps", "jobs_per_gpu=101", f"hydra.sweep.dir={sweep}"])
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "lmexp: invalid config: hydra.launcher.gres: jobs_per_gpu=101 under MPS leaves less "
        "than 1% of a GPU per job; use at most 100"
    ]
    assert not sweep.exists()


def test_a_search_space_that_can_propose_a_bad_value_is_refused_before_any_trial(tmp_path):
    sweep = tmp_path / "sweep"
    done = _train(
        [
            "-m",
            "sweep=optuna",
            "model=gru",
            "model.dropout=interval(0.0, 1.5)",
            f"hydra.sweeper.storage=sqlite:///{tmp_path}/study.db",
            f"hydra.sweep.dir={sweep}",
        ]
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert "model.dropout=1.5 must be in [0, 1)" in line, line
    assert line.endswith(
        "(the search space can propose model.dropout=1.5: narrow its range, "
        "or pin model.dropout=<value>)"
    ), line
    assert not sweep.exists() and not (tmp_path / "study.db").exists()


def test_a_search_space_that_does_not_parse_is_one_line(tmp_path):
    done = _train(
        [
            "-m",
            "sweep=optuna",
            "model=gru",
            "optim.lr=interval(0.1, 0.01)",
            f"hydra.sweep.dir={tmp_path}/s",
        ]
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("lmexp: invalid config: search space: optim.lr"), line
    assert "the interval is empty" in line, line


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["optim.lr=interval(0.1)"], "optim.lr=interval(0.1): "),
        (["optim.lr=[1"], "optim.lr=[1: no viable alternative at input '[1' (quote a value"),
        (["model.hiden_size=4"], "unknown key model.hiden_size; did you mean model.hidden_size?"),
        (["model=gru", "model.gru_varient=x"], "did you mean model.gru_variant?"),
        (
            ["trainer.max_epoch=3"],
            "unknown key trainer.max_epoch; did you mean trainer.max_epochs?",
        ),
        (["modle=gru"], "unknown key modle; did you mean model?"),
        (["model=grux"], "model=grux is not an option of model; did you mean model=gru? Options: "),
        (["optim=adamw"], "did you mean optim=adam?"),
        (["optim.lr=abc"], "optim.lr=abc: Value 'abc' of type 'str' could not be converted"),
    ],
)
def test_what_hydra_refuses_is_one_line_with_the_nearest_known_name(tmp_path, overrides, says):
    """Typos, unknown options, wrong types and overrides that do not parse: exit 2 as for any
    usage error, one line naming the nearest key or option, never Hydra's `+key` hint."""
    done = _train([*overrides, f"hydra.run.dir={tmp_path}/run"])
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("lmexp: invalid config: ") and says in line, line
    assert "+model" not in line and "To append" not in line
    assert not (tmp_path / "run").exists()
