"""`python -m benchmarks.peer --dry-run` end to end against a real pytorch/examples checkout.

The checkout is extracted from a local mirror of pytorch/examples (its word_language_model/
code, not its bundled WikiText data); without the mirror the test is skipped.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from benchmarks.peer import source
from tests.conftest import require_data_dir, run_module

pytestmark = pytest.mark.slow

MIRROR = Path(os.environ.get("LMEXP_PEER_MIRROR", "/work/.mirror/pytorch+examples/repo"))


@pytest.fixture(scope="module")
def peer_checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pytorch/examples checkout holding word_language_model/ at the pinned commit."""
    if not MIRROR.is_dir() or shutil.which("git") is None:
        pytest.skip(f"no pytorch/examples mirror at {MIRROR} (set LMEXP_PEER_MIRROR)")
    root = tmp_path_factory.mktemp("examples")
    archive = subprocess.run(
        [
            "git",
            f"--git-dir={MIRROR}",
            "archive",
            source.COMMIT,
            source.FOLDER,
            f":(exclude){source.FOLDER}/data",  # the WikiText files: not needed, maybe absent
        ],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # 3.11.4+
        tar.extractall(root, **safe)
    return root


def test_dry_run_times_both_programs_and_writes_both_medians(peer_checkout, tmp_path) -> None:
    out = tmp_path / "peer.csv"
    args = ["--dry-run", "--archs", "lstm", "--peer-dir", str(peer_checkout), "--threads", "1"]
    args += ["--data-root", str(tmp_path / "data"), "--csv", str(out)]
    proc = run_module("benchmarks.peer", args, require_data_dir(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["arch"] for r in rows] == ["lstm"]
    row = rows[0]
    assert float(row["lmexp_median_s"]) > 0 and float(row["peer_median_s"]) > 0
    assert float(row["x_faster"]) > 0 and row["pairs"] == "1" and row["windows"] == "20"
    assert row["lmexp_vocab"] == row["peer_vocab"]  # the same files, the same vocabulary
    with (tmp_path / "peer_runs.csv").open() as f:
        assert sorted(r["tool"] for r in csv.DictReader(f)) == ["lmexp", "peer"]
    assert "| lstm |" in proc.stdout and "× faster" in proc.stdout
