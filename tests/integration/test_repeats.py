"""`seeds=K`: every cell of a grid, and every Optuna trial, runs K seeds, recorded as one cell."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_TEXT_GRU, run_module

pytestmark = pytest.mark.slow

TINY = TINY_TEXT_GRU


def _summaries(sweep: Path) -> dict[str, dict]:
    return {
        p.name: json.loads((p / "summary.json").read_text())
        for p in sorted(sweep.iterdir(), key=lambda p: p.name)
        if (p / "summary.json").is_file()
    }


def test_seeds_repeats_each_cell_of_a_grid_with_distinct_recorded_seeds(
    tmp_path, data_dir, small_corpus
) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY, f"data.root={small_corpus}", "optim=sgd,adam", "seed=7", "seeds=3"]
    done = run_module("lmexp.train", [*args, f"hydra.sweep.dir={sweep}"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = _summaries(sweep)
    # the seed axis takes the place of seed=7 and varies fastest: Hydra's numbering
    assert [(name, job["seed"]) for name, job in jobs.items()] == [
        ("0-gru-sgd-seed=7", 7),
        ("1-gru-sgd-seed=8", 8),
        ("2-gru-sgd-seed=9", 9),
        ("3-gru-adam-seed=7", 7),
        ("4-gru-adam-seed=8", 8),
        ("5-gru-adam-seed=9", 9),
    ]  # fmt: skip  (named by what varies: the seed; model and optim lead every name)
    cells = [job["cell_id"] for job in jobs.values()]
    assert len(set(cells[:3])) == 1 and len(set(cells[3:])) == 1 and cells[0] != cells[3]
    # the same cell whether its seeds came from seeds=K or from a seed grid
    grid = tmp_path / "grid"
    plain = ["-m", *TINY, f"data.root={small_corpus}", "optim=sgd", "seed=7,8"]
    done = run_module("lmexp.train", [*plain, f"hydra.sweep.dir={grid}"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {job["cell_id"] for job in _summaries(grid).values()} == {cells[0]}
    # the report pools each cell's three seeds
    from analysis.cells import cells

    table = cells([sweep])
    assert list(table["jobs"]) == [3, 3] and list(table["test_ppl_n"]) == [3, 3]
    assert all(table["test_ppl_low"] < table["test_ppl_mean"]), table
    assert table.attrs["sentence"].startswith("GRU SGD IL=5 has the lowest mean Test PPL")
    # a relaunch is checked job by job in that numbering: refused, naming the first directory
    again = run_module("lmexp.train", [*args, f"hydra.sweep.dir={sweep}"], data_dir)
    first = sweep / "0-gru-sgd-seed=7"
    assert again.returncode == 2 and f"{first} already holds a run" in again.stderr


def test_seeds_and_a_seed_sweep_together_are_refused(tmp_path, data_dir, small_corpus) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY, f"data.root={small_corpus}", "seed=1,2", "seeds=3"]
    done = run_module("lmexp.train", [*args, f"hydra.sweep.dir={sweep}"], data_dir)
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().splitlines() == [
        "lmexp: invalid config: seed=1,2 and seeds=3 both repeat the cells over seeds; give one "
        "of them (seeds=3 with seed=<n> runs the seeds n to n+2)"
    ]
    assert not sweep.exists()


def test_an_optuna_trial_with_seeds_runs_each_seed_and_scores_their_mean(
    tmp_path, data_dir, small_corpus
) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    sweep = tmp_path / "search"
    args = [
        "-m",
        "sweep=optuna",
        *TINY,
        f"data.root={small_corpus}",
        "optim.lr=choice(0.001,0.01)",
        "seeds=2",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=1",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=repeats",
        f"hydra.sweep.dir={sweep}",
    ]
    done = run_module("lmexp.train", args, data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = _summaries(sweep)
    assert [job["seed"] for job in jobs.values()] == [1111, 1112, 1111, 1112]
    study = optuna.load_study(study_name="repeats", storage=storage)
    assert len(study.trials) == 2
    pairs = (list(jobs.values())[:2], list(jobs.values())[2:])
    for trial, pair in zip(study.trials, pairs, strict=True):
        best = [job["best_val_ppl"] for job in pair]
        assert trial.user_attrs["lmexp_seeds"] == [1111, 1112]
        assert trial.user_attrs["lmexp_seed_values"] == pytest.approx(best)
        assert trial.value == pytest.approx(sum(best) / 2)
        assert pair[0]["cell_id"] == pair[1]["cell_id"]  # a trial is one cell


def test_a_grid_runs_from_outside_the_checkout(tmp_path, data_dir, small_corpus) -> None:
    """From another folder Hydra's plugin scan re-executes its basic sweeper's module without
    seeing lmexp's (an editable install hides it): lmexp's grid must still run there."""
    import os
    import subprocess
    import sys

    script = Path(sys.executable).parent / "lmexp-train"
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY, f"data.root={small_corpus}", "seeds=2", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "LMEXP_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert [job["seed"] for job in _summaries(sweep).values()] == [1111, 1112]
