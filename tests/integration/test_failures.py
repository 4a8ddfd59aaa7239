"""One bad job never loses the others: failures and divergence inside a real multirun."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

from tests.conftest import run_module

pytestmark = pytest.mark.slow

TINY = [
    "model=gru",
    "optim=sgd",
    "model.emb_size=16",
    "model.hidden_size=16",
    "threads=1",
    "trainer.max_epochs=null",
    "trainer.max_steps=20",
    "trainer.eval_every=0.14",  # every ~13 steps of the small corpus's ~94-step epoch
    "data=text",
]


# the grid's jobs 1 and 2, named by what varies (lmexp/run/jobname.py)
J1, J2 = "1-gru-sgd-batch_size=3000,lr=1.0", "2-gru-sgd-batch_size=20,lr=10000.0"


def _sweep(args: list[str], data_dir, corpus) -> subprocess.CompletedProcess:
    """A multirun of TINY on `corpus` (the small corpus: the record, not PTB, is under test)."""
    return run_module("lmexp.train", ["-m", f"data.root={corpus}", *args], data_dir)


def test_a_failing_and_a_diverging_job_leave_the_others_complete(
    tmp_path, data_dir, small_corpus
) -> None:
    sweep = tmp_path / "sweep"
    # lr 1e4 diverges; batch_size 3000 passes the start-up checks (the validation file's 24k
    # bytes could hold 6,000 tokens) but fails inside its job (it holds 4,314, too few for
    # 3,000 streams of two); the rest trains normally.
    grid = ["optim.lr=1.0,10000.0", "data.batch_size=20,3000"]
    proc = _sweep([*TINY, *grid, f"hydra.sweep.dir={sweep}"], data_dir, small_corpus)
    assert proc.returncode == 2  # its jobs failed on input they refused, as a single run exits
    statuses = {
        p.name: json.loads((p / "summary.json").read_text())
        for p in sorted(sweep.iterdir())
        if p.is_dir() and (p / "summary.json").is_file()
    }
    assert [s["status"] for s in statuses.values()] == ["completed", "failed", "diverged", "failed"]
    failed = statuses[J1]
    assert failed["error_type"] == "InputError" and "batch_size=3000" in failed["error"]
    assert failed["usage_error"] is True and "traceback" not in failed  # the cause, in one line
    assert "lower data.batch_size" in failed["error"] and "\n" not in failed["error"]
    log_text = (sweep / J1 / "train.log").read_text()
    assert "batch_size=3000" in log_text and "Traceback" not in log_text
    with (sweep / J2 / "metrics.csv").open() as f:
        diverged_rows = list(csv.DictReader(f))
    assert len(diverged_rows) >= 1  # its metrics are kept
    assert statuses[J2]["stop_reason"] == "diverged"
    # The end-of-sweep summary names every job that did not complete, not only the first.
    output = proc.stdout + proc.stderr
    assert f"{J2}: diverged" in output and f"{J1}: failed (InputError" in output
    assert "3-gru-sgd-batch_size=3000,lr=10000.0: failed (InputError" in output
    assert "Traceback" not in output


def test_fail_on_error_can_be_turned_off_for_studies(tmp_path, data_dir, small_corpus) -> None:
    sweep = tmp_path / "sweep"
    proc = _sweep(
        [
            *TINY,
            "trainer.max_steps=2",
            "data.batch_size=20,3000",  # the second fails inside its job
            f"hydra.sweep.dir={sweep}",
            "hydra.callbacks.sweep_summary.fail_on_error=false",
        ],
        data_dir,
        small_corpus,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1-gru-sgd-batch_size=3000: failed" in proc.stdout + proc.stderr


def test_perplexity_ceiling_ends_the_run_as_diverged(tmp_path, data_dir, small_corpus) -> None:
    sweep = tmp_path / "sweep"
    proc = _sweep(
        [*TINY, "trainer.divergence_ppl=50", f"hydra.sweep.dir={sweep}"], data_dir, small_corpus
    )
    assert proc.returncode == 0
    summary = json.loads((sweep / "0-gru-sgd" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["steps"] < 20
