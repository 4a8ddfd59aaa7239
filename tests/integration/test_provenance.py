"""Each job records what it ran on and with; `lmexp-diff` tells two runs apart by it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lmexp
from tests.conftest import REPO, TINY_TEXT_GRU, run_module

pytestmark = pytest.mark.slow

ARGS = [*TINY_TEXT_GRU, "trainer.max_epochs=null", "trainer.max_steps=4"]


def _train(run_dir: Path, corpus: Path, data_dir: Path, *extra: str):
    args = [*ARGS, f"data.root={corpus}", f"hydra.run.dir={run_dir}", *extra]
    done = run_module("lmexp.train", args, data_dir)
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_job_records_versions_code_packages_hardware_and_determinism(
    tmp_path, data_dir, small_corpus
):
    run = tmp_path / "run"
    _train(run, small_corpus, data_dir)
    (session,) = json.loads((run / ".lmexp" / "environment.json").read_text())["sessions"]
    assert session["lmexp"] == lmexp.__version__
    beat = json.loads((run / ".lmexp" / "heartbeat.json").read_text())  # for other hosts
    summary = json.loads((run / "summary.json").read_text())
    assert (beat["pid"], beat["host"]) == (summary["pid"], summary["host"]) and beat["time"] > 0
    assert session["torch"].startswith("2.") and session["python"].count(".") == 2
    git = session["git"]
    if git["commit"] is not None:  # a checkout: the commit, and the diff kept when dirty
        assert len(git["commit"]) == 40 and isinstance(git["dirty"], bool)
        if git["diff_sha256"]:
            assert (run / ".lmexp" / f"code-{git['diff_sha256']}.diff").stat().st_size > 0
    assert session["packages"]["torch"] == session["torch"]  # the installed wheel's version
    assert len(session["packages_sha256"]) == 16 and "numpy" in session["packages"]
    assert session["cpu"]["model"] and session["cpu"]["cores"] >= 1
    assert set(session["gpu"]) == {"cuda", "cudnn", "devices", "driver"}
    assert {"deterministic_algorithms", "cudnn_benchmark"} <= set(session["determinism"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["lmexp_version"] == lmexp.__version__
    assert summary["packages_sha256"] == session["packages_sha256"]
    assert summary["git_commit"] == git["commit"] and summary["git_dirty"] == git["dirty"]
    # a resumed session adds its own entry; the first stays as it was
    _train(run, small_corpus, data_dir, "resume=force", "trainer.max_steps=8")
    sessions = json.loads((run / ".lmexp" / "environment.json").read_text())["sessions"]
    assert len(sessions) == 2 and sessions[0] == session


def test_lmexp_diff_names_what_differs_between_two_real_runs(tmp_path, data_dir, small_corpus):
    a, b = tmp_path / "a", tmp_path / "b"
    _train(a, small_corpus, data_dir)
    _train(b, small_corpus, data_dir, "optim.lr=2.5", "threads=2")
    script = Path(sys.executable).parent / "lmexp-diff"
    done = subprocess.run(
        [script, str(a), str(b)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "config" and "  optim.lr: 5.0 -> 2.5" in lines
    assert "  threads: 1 -> 2" in lines
    same = subprocess.run([script, str(a), str(a)], capture_output=True, text=True, timeout=60)
    assert same.returncode == 0 and same.stdout.strip() == "no differences"
