"""The Optuna search's parts: Hydra's sweep syntax as distributions, and the study's record."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from lmexp.search.space import SearchSpaceError, distribution, format_value, search_space
from lmexp.search.study import (
    HOST_ATTR,
    INTERRUPTED_ATTR,
    PID_ATTR,
    RETRY_ATTR,
    claim,
    open_study,
    recover_orphans,
    requeue,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _dist(line: str):
    return distribution(OverridesParser.create().parse_override(line))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("k=choice(16, 32, 64)", CategoricalDistribution([16, 32, 64])),
        ("k=choice(adam, sgd)", CategoricalDistribution(["adam", "sgd"])),
        ("k=a,b", CategoricalDistribution(["a", "b"])),
        ("k=interval(0.0, 0.7)", FloatDistribution(0.0, 0.7)),
        ("k=tag(log, interval(1e-5, 1e-2))", FloatDistribution(1e-5, 1e-2, log=True)),
        ("k=int(interval(1, 3))", IntDistribution(1, 3)),
        ("k=tag(log, int(interval(128, 2048)))", IntDistribution(128, 2048, log=True)),
        ("k=range(1, 4)", IntDistribution(1, 3)),  # Hydra's range excludes its end
        ("k=range(10, 40, 10)", IntDistribution(10, 30, step=10)),
        ("k=range(0, 1, 0.25)", FloatDistribution(0.0, 0.75, step=0.25)),
    ],
)
def test_hydra_sweep_syntax_becomes_the_optuna_distribution(line, expected) -> None:
    assert _dist(line) == expected


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("k=tag(grid, interval(0, 1))", "unknown tag"),
        ("k=tag(log, interval(0.0, 1.0))", "low > 0"),
        ("k=interval(2.0, 1.0)", "empty"),
        ("k=tag(log, choice(1, 2))", "not choice()"),
        ("k=tag(log, range(1, 5))", "no log scale with a step"),
        ("k=range(5, 1)", "range is empty"),
        ("k=choice([1, 2], [3])", r"not \[1, 2\]"),
        ("k=glob(*)", "cannot sample"),
    ],
)
def test_a_space_optuna_cannot_sample_is_refused_in_one_line_naming_it(line, says) -> None:
    with pytest.raises(SearchSpaceError, match=says) as info:
        _dist(line)
    assert str(info.value).startswith("k=") and "\n" not in str(info.value)


@pytest.mark.parametrize("value", [0.000123, 1e-05, 35, True, None, "gru", "a b", "it's", "x=1"])
def test_a_sampled_value_reads_back_through_hydras_parser_unchanged(value) -> None:
    parsed = OverridesParser.create().parse_override(f"k={format_value(value)}")
    assert parsed.value() == value


def test_the_command_line_pins_or_replaces_the_configured_space() -> None:
    params = {
        "optim.lr": "tag(log, interval(1e-5, 1e-2))",
        "model.num_layers": "int(interval(1, 3))",
    }
    space = search_space(params, ["model=gru", "model.num_layers=2", "+x.y=interval(0.0, 1.0)"])
    assert space.distributions == {
        "optim.lr": FloatDistribution(1e-5, 1e-2, log=True),
        "+x.y": FloatDistribution(0.0, 1.0),
    }
    assert space.fixed == ["model=gru", "model.num_layers=2"]
    assert space.job_overrides({"optim.lr": 0.001, "+x.y": 0.5}) == [
        "model=gru",
        "model.num_layers=2",
        "optim.lr=0.001",
        "+x.y=0.5",
    ]


def _tpe(seed):
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def _proposals(storage: str, n: int) -> list[float]:
    study = open_study("s", storage, "minimize", _tpe, seed=1111)
    space = {"x": FloatDistribution(0.0, 1.0)}
    values = []
    for _ in range(n):
        trial = study.ask(space)
        values.append(trial.params["x"])
        study.tell(trial, trial.params["x"])
    return values


def test_a_fresh_study_repeats_its_proposals_and_a_resumed_one_draws_new_ones(tmp_path) -> None:
    first = _proposals(f"sqlite:///{tmp_path / 'a.db'}", 3)
    assert _proposals(f"sqlite:///{tmp_path / 'b.db'}", 3) == first  # same seed, same start
    resumed = _proposals(f"sqlite:///{tmp_path / 'a.db'}", 3)  # 3 trials in: seed 1114
    assert set(resumed).isdisjoint(first)
    assert (
        len(optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'a.db'}").trials) == 6
    )


def test_a_study_keeps_its_direction(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    open_study("s", storage, "minimize", _tpe, seed=1)
    with pytest.raises(ValueError, match="created to minimize"):
        open_study("s", storage, "maximize", _tpe, seed=1)


def test_an_interrupted_trial_is_failed_and_its_values_are_tried_first_next_time(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = open_study("s", storage, "minimize", _tpe, seed=1)
    space = {"x": FloatDistribution(0.0, 1.0)}
    trial = study.ask(space)
    requeue(study, trial.number, trial.params, running=trial)
    again = open_study("s", storage, "minimize", _tpe, seed=1).ask(space)
    assert again.params == trial.params and again.user_attrs[RETRY_ATTR] == trial.number
    failed = study.trials[trial.number]
    assert failed.state == optuna.trial.TrialState.FAIL and failed.user_attrs[INTERRUPTED_ATTR]


def test_trials_left_running_by_a_dead_sweeper_are_recovered_a_live_ones_are_not(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = open_study("s", storage, "minimize", _tpe, seed=1)
    space = {"x": FloatDistribution(0.0, 1.0)}
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan, live = study.ask(space), study.ask(space)
    claim(study, orphan)
    orphan.set_user_attr(PID_ATTR, int(dead.stdout))  # its process has exited
    claim(study, live)  # this process: alive
    other_host = study.ask(space)
    other_host.set_user_attr(HOST_ATTR, "another-machine")
    other_host.set_user_attr(PID_ATTR, int(dead.stdout))

    assert recover_orphans(study) == [orphan.number]
    states = {t.number: t.state for t in study.trials}
    assert states[orphan.number] == optuna.trial.TrialState.FAIL
    assert states[live.number] == states[other_host.number] == optuna.trial.TrialState.RUNNING
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [orphan.params]
    assert recover_orphans(study) == []  # once


@pytest.mark.faults
@pytest.mark.parametrize(
    "content", [b"garbage, not sqlite\n", b"SQLite format 3\x00" + b"\x00" * 50]
)
def test_a_corrupt_or_truncated_study_database_is_one_line_naming_it(tmp_path, content) -> None:
    from lmexp.search.study import StudyStorageError, open_study

    path = tmp_path / "study.db"
    path.write_bytes(content)
    storage = f"sqlite:///{path}"
    with pytest.raises(StudyStorageError, match="cannot be opened as an Optuna study") as caught:
        open_study("s", storage, "minimize", lambda seed: None, None)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_launchers_that_run_jobs_in_their_own_processes_get_slots():
    """Hydra's real launcher classes: submitit's are named LocalLauncher and SlurmLauncher."""
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
        LocalLauncher,
        SlurmLauncher,
    )

    from lmexp.search.slots import out_of_process, slots_of

    for kind in (JoblibLauncher, LocalLauncher, SlurmLauncher):
        launcher = kind.__new__(kind)  # no config needed to ask what kind it is
        assert out_of_process(launcher), kind
        assert slots_of(launcher, 2) == 2
    basic = BasicLauncher()
    assert not out_of_process(basic) and slots_of(basic, 4) == 1
