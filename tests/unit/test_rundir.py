"""RunDir and SweepDir are the one map of a job and a sweep directory; no torch needed."""

from __future__ import annotations

import os
import subprocess
import sys

from lmexp.run.rundir import RunDir
from lmexp.run.sweepdir import SweepDir
from tests.conftest import REPO


def test_layout_names_the_files_the_readers_expect(tmp_path) -> None:
    run = RunDir(tmp_path)
    assert run.summary == tmp_path / "summary.json"
    assert run.metrics == tmp_path / "metrics.csv"
    assert (run.best, run.last) == (
        tmp_path / "checkpoints/best.pt",
        tmp_path / "checkpoints/last.pt",
    )
    assert run.evaluation("test", "best") == tmp_path / "evaluation/test_best.json"
    assert run.timestep_loss.parent == run.grad_flow.parent == tmp_path / "internals"


def test_a_job_dir_is_marked_by_any_file_a_job_writes(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    for name, marker in (("0-a", ".hydra/config.yaml"), ("1-b", "summary.json"), ("2-c", "x")):
        (sweep / name / marker).parent.mkdir(parents=True, exist_ok=True)
        (sweep / name / marker).write_text("{}")
    assert [RunDir(sweep / n).is_job() for n in ("0-a", "1-b", "2-c")] == [True, True, False]
    assert not RunDir(sweep).is_job()
    assert [r.root.name for r in SweepDir(sweep).jobs()] == ["0-a"]  # what Hydra made


def test_latest_points_at_the_sweep_started_last_and_never_replaces_a_folder(tmp_path) -> None:
    first, second = SweepDir(tmp_path / "a"), SweepDir(tmp_path / "b")
    for sweep in (first, second):
        sweep.root.mkdir()
    assert first.mark_latest() == tmp_path / "latest"
    assert (tmp_path / "latest").resolve() == first.root.resolve()
    second.mark_latest()
    assert (tmp_path / "latest").resolve() == second.root.resolve()
    assert os.readlink(tmp_path / "latest") == "b"  # relative: the folder can move
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "latest"]  # no staged link
    mine = tmp_path / "own" / "latest"
    mine.mkdir(parents=True)
    assert SweepDir(tmp_path / "own" / "c").mark_latest() is None and mine.is_dir()


def test_a_job_knows_its_sweep_by_the_sweepers_file(tmp_path) -> None:
    sweep = SweepDir(tmp_path / "sweep")
    job = RunDir(sweep.root / "0-a")
    job.root.mkdir(parents=True)
    assert SweepDir.of_job(job) is None  # a single run's directory
    sweep.multirun.write_text("{}")
    assert SweepDir.of_job(job) == sweep


def test_the_analysis_imports_no_torch() -> None:
    code = "import sys, analysis.report, lmexp.run.rundir; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
