"""Every file of a run directory that is not what lmexp wrote is one line, never a traceback.

Each case damages one file of a copy of a trained run, then opens it with lmexp-evaluate (and
lmexp.load): exit 2, one line on stderr naming the file, nothing run, nothing half-written.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lmexp.run.checkpoint import RESUMES_FROM, CheckpointError, load_checkpoint
from tests.conftest import REPO, require_data_dir

pytestmark = [pytest.mark.slow, pytest.mark.faults]


class _Code:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _damage(run: Path, case: str, marker: Path) -> list[str]:
    """Damage `run` as `case` says; returns the extra arguments of the command to try."""
    if case == "text file as checkpoint":
        (run / "notes.txt").write_text("not a checkpoint\n")
        return ["--checkpoint", str(run / "notes.txt")]
    if case == "crafted pickle":
        with (run / "evil.pt").open("wb") as f:
            pickle.dump({"model": _Code(str(marker))}, f)
        return ["--checkpoint", str(run / "evil.pt")]
    if case == "truncated checkpoint":
        best = run / "checkpoints" / "best.pt"
        best.write_bytes(best.read_bytes()[:4000])
        return []
    if case == "deep vocab.json":
        (run / "vocab.json").write_text("[" * 200_000 + "]" * 200_000)
        return []
    if case == "vocab.json not UTF-8":
        (run / "vocab.json").write_bytes(b"\xff\xfe[")
        return []
    if case == "unknown tokenizer in corpus.json":
        info = json.loads((run / "corpus.json").read_text())
        (run / "corpus.json").write_text(json.dumps({**info, "tokenizer": "klingon"}))
        return []
    if case == "out names a directory":
        return ["--out", str(run)]
    raise AssertionError(case)


CASES = (
    "text file as checkpoint",
    "crafted pickle",
    "truncated checkpoint",
    "deep vocab.json",
    "vocab.json not UTF-8",
    "unknown tokenizer in corpus.json",
    "out names a directory",
)


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_file_is_one_line_and_runs_nothing(trained_runs, tmp_path, case) -> None:
    run = Path(shutil.copytree(trained_runs["gru"], tmp_path / "run"))
    marker = tmp_path / "code-ran"
    extra = _damage(run, case, marker)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    env = {**os.environ, "LMEXP_DATA_DIR": str(require_data_dir())}
    done = subprocess.run(
        [sys.executable, "-m", "lmexp.inspect.evaluate", str(run), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("lmexp-evaluate: error: ") and "Traceback" not in done.stderr
    assert not marker.exists()  # nothing in the run directory ran
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_best_checkpoint_cannot_stand_in_for_last(trained_runs, tmp_path) -> None:
    """best.pt copied over last.pt: resume's read says so instead of KeyError: 'trainer'."""
    best = trained_runs["gru"] / "checkpoints" / "best.pt"
    with pytest.raises(CheckpointError, match="lacks optimizer, trainer, rng"):
        load_checkpoint(best, needs=RESUMES_FROM)
