"""RunDir is the one map of a job directory; the analysis reads it without torch."""

from __future__ import annotations

import subprocess
import sys

from lmexp.run.rundir import RunDir
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
    assert [r.root.name for r in RunDir.children(sweep)] == ["0-a"]  # what Hydra made


def test_the_analysis_imports_no_torch() -> None:
    code = "import sys, analysis.report, lmexp.run.rundir; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
