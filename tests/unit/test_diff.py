"""`lmexp-diff`: the differences of two runs or two sweeps, from their record files alone."""

from __future__ import annotations

import copy

from lmexp.diff import diff_runs, main
from lmexp.run.record import Launch, save_record
from lmexp.run.rundir import RunDir
from lmexp.run.summary import write_json_atomic
from tests.fixtures_analysis import BASE_CONFIG, job

ENV = {
    "started_at": "2026-12-06T09:00:00+00:00",
    "lmexp": "0.1.0",
    "git": {"commit": "a" * 40, "dirty": False, "diff_sha256": None, "untracked": []},
    "python": "3.11.7",
    "torch": "2.13.0+cpu",
    "cpu": {"model": "Intel Xeon", "cores": 2, "flags": ["avx2", "avx512f"]},
    "gpu": {"cuda": None, "cudnn": None, "devices": [], "driver": None},
    "determinism": {"deterministic_algorithms": False, "cudnn_benchmark": False},
    "packages_sha256": "1" * 16,
    "packages": {"numpy": "2.3.0", "torch": "2.13.0+cpu"},
}


def _run(sweep, num: int, lr: float, env: dict) -> RunDir:
    run = RunDir(job(sweep, num, "gru", "sgd", [300.0]))
    config = copy.deepcopy(BASE_CONFIG)
    config["optim"]["lr"] = lr
    save_record(run, config, Launch("python -m lmexp.train", (), num))
    write_json_atomic({"sessions": [env]}, run.environment)
    return run


def test_two_identical_runs_have_no_differences(tmp_path, capsys):
    a, b = _run(tmp_path / "a", 0, 1.0, ENV), _run(tmp_path / "b", 0, 1.0, ENV)
    assert diff_runs(a.root, b.root) == []
    assert main([str(a.root), str(b.root)]) == 0
    assert capsys.readouterr().out.strip() == "no differences"


def test_config_environment_packages_and_code_are_named(tmp_path):
    other = copy.deepcopy(ENV)
    other["torch"] = "2.13.0+cu128"
    other["cpu"]["model"] = "AMD EPYC"
    other["packages"]["numpy"] = "2.3.1"
    other["git"] = {"commit": "b" * 40, "dirty": True, "diff_sha256": "f" * 16, "untracked": []}
    a, b = _run(tmp_path / "a", 0, 1.0, ENV), _run(tmp_path / "b", 0, 20.0, other)
    lines = diff_runs(a.root, b.root)
    assert lines[:2] == ["config", "  optim.lr: 1.0 -> 20.0"]
    assert "  torch: 2.13.0+cpu -> 2.13.0+cu128" in lines
    assert "  cpu.model: Intel Xeon -> AMD EPYC" in lines
    assert "packages (1 differ)" in lines and "  numpy: 2.3.0 -> 2.3.1" in lines
    assert "  dirty: False -> True" in lines
    assert any(line.endswith(f"code-{'f' * 16}.diff") for line in lines)


def test_two_sweeps_compare_constant_config_and_environment(tmp_path, capsys):
    for name, lr in (("a", 1.0), ("b", 5.0)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "multirun.yaml").write_text(
            f"hydra:\n  overrides:\n    task: [model=gru, optim.lr={lr}]\n"
        )
        _run(tmp_path / name, 0, lr, ENV)
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "only in a: optim.lr=1.0" in out and "  optim.lr: 1.0 -> 5.0" in out


def test_a_run_and_a_sweep_are_refused_in_one_line(tmp_path, capsys):
    run = _run(tmp_path / "s", 0, 1.0, ENV)
    assert main([str(run.root), str(tmp_path / "nothing")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("lmexp-diff: error: ") and "neither" in line
