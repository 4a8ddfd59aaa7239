"""Fault injection for real: SIGKILL a training subprocess, resume it, compare with a clean run."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmexp.data.vocab import Vocab
from lmexp.job.writer import vocab_digest
from lmexp.run.checkpoint import load_checkpoint, save_checkpoint
from tests.conftest import (
    REPO,
    reference_seconds,
    require_data_dir,
    run_module,
    small_run_args,
)

pytestmark = pytest.mark.slow

PPL_COLUMNS = (
    "epoch",
    "step",
    "tokens",
    "train_loss",
    "train_ppl",
    "val_loss",
    "val_ppl",
    "best_val_ppl",
)
# Tiny GRU on the small corpus (~94 steps an epoch), evaluated every ~7 steps, checkpointed
# every 4 steps: 35 steps, 5 metric rows. Resuming is about the record, not about PTB: the
# small corpus evaluates 16x fewer tokens than PTB's validation split.
TINY = [
    "model=gru",
    "optim=adam",
    "model.emb_size=16",
    "model.hidden_size=16",
    "model.dropout=0.3",
    "trainer.max_epochs=null",
    "trainer.max_steps=35",
    "trainer.eval_every=0.07",
    "trainer.checkpoint_every=4",
    "threads=1",
    "seed=5",
    "data=text",
]


@pytest.fixture(scope="session")
def tiny(small_corpus) -> list[str]:
    return [*TINY, f"data.root={small_corpus}"]


def _cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "lmexp.train", *args]


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "LMEXP_DATA_DIR": str(data_dir)}


def _train(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    return run_module("lmexp.train", args, data_dir)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def _ppl_columns(run_dir: Path) -> list[tuple[str, ...]]:
    return [tuple(r[c] for c in PPL_COLUMNS) for r in _rows(run_dir)]


def _kill_when(run_dir: Path, args: list[str], data_dir: Path, ready) -> None:
    """Start a run and SIGKILL it as soon as `ready(run_dir)` holds."""
    proc = subprocess.Popen(
        _cmd(args),
        cwd=REPO,
        env=_env(data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    try:
        while not ready(run_dir):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "the run never reached the kill point"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def _has_rows(n: int):
    def ready(run_dir: Path) -> bool:
        path = run_dir / "metrics.csv"
        return path.exists() and len(path.read_text().splitlines()) > n

    return ready


@pytest.mark.faults
@pytest.mark.parametrize("kill_after_rows", [0, 2])
def test_sigkill_and_resume_gives_the_same_metrics(
    tmp_path, data_dir, small_corpus, small_reference, kill_after_rows
) -> None:
    killed = tmp_path / "killed"
    small = small_run_args(small_corpus)
    # Kill mid-run: after the first periodic checkpoint (no row yet), or after two rows.
    ready = (
        (lambda d: (d / "checkpoints" / "last.pt").exists())
        if kill_after_rows == 0
        else _has_rows(kill_after_rows)
    )
    _kill_when(killed, [*small, f"hydra.run.dir={killed}"], data_dir, ready)
    assert json.loads((killed / "summary.json").read_text())["status"] == "running"
    done = _train([*small, f"hydra.run.dir={killed}", "resume=true"], data_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    # no duplicated, missing or changed rows
    assert _ppl_columns(killed) == _ppl_columns(small_reference)
    summary = json.loads((killed / "summary.json").read_text())
    want = json.loads((small_reference / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed"] == 1
    assert (summary["best_val_ppl"], summary["test_ppl"]) == (
        want["best_val_ppl"],
        want["test_ppl"],
    )


@pytest.mark.faults
@pytest.mark.parametrize("seed", [1, 3, 5])
def test_sigkill_at_random_points_then_resume_gives_the_same_run(
    tmp_path, data_dir, small_corpus, small_reference, seed
) -> None:
    """Two SIGKILLs at random moments (start-up, training, a checkpoint write, the test pass),
    each followed by a resume, end in the run that was never killed."""
    killed = tmp_path / "killed"
    args = [*small_run_args(small_corpus), f"hydra.run.dir={killed}", "resume=true"]
    rng = random.Random(seed)
    whole = reference_seconds(small_reference)
    kills = []
    for _ in range(2):
        # a moment from start-up to the test pass, whatever this machine's speed today
        delay = rng.uniform(0.15, 0.85) * whole
        proc = subprocess.Popen(_cmd(args), cwd=REPO, env=_env(data_dir), stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            kills.append(round(delay, 2))
    assert kills  # at least one launch was still running when its moment came
    done = _train(args, data_dir)
    assert done.returncode == 0, (kills, done.stderr[-2000:])
    assert _ppl_columns(killed) == _ppl_columns(small_reference), kills
    got, want = (json.loads((d / "summary.json").read_text()) for d in (killed, small_reference))
    assert got["status"] == "completed", kills
    assert (got["best_val_ppl"], got["test_ppl"]) == (want["best_val_ppl"], want["test_ppl"]), kills


def test_existing_run_dir_is_refused_without_resume(tmp_path, data_dir, tiny) -> None:
    run_dir = tmp_path / "run"
    assert (
        _train([*tiny, "trainer.max_steps=4", f"hydra.run.dir={run_dir}"], data_dir).returncode == 0
    )
    before = (run_dir / "metrics.csv").read_text(), (run_dir / "summary.json").read_text()
    again = _train([*tiny, "trainer.max_steps=4", f"hydra.run.dir={run_dir}"], data_dir)
    assert again.returncode != 0
    assert "already holds a run" in again.stderr and "resume=true" in again.stderr
    after = (run_dir / "metrics.csv").read_text(), (run_dir / "summary.json").read_text()
    assert before == after


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, tiny) -> Path:
    """A run SIGKILLed once its first checkpoint exists; tests resume copies of it."""
    run_dir = tmp_path_factory.mktemp("killed") / "run"
    _kill_when(
        run_dir,
        [*tiny, f"hydra.run.dir={run_dir}"],
        require_data_dir(),
        lambda d: (d / "checkpoints" / "last.pt").exists(),
    )
    return run_dir


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp_path / "run"))


def test_resume_refuses_a_checkpoint_of_another_architecture(
    tmp_path, data_dir, killed_run, tiny
) -> None:
    run_dir = _copy(killed_run, tmp_path)
    summary_before = (run_dir / "summary.json").read_bytes()
    other = _train(
        [*tiny, "model.hidden_size=24", f"hydra.run.dir={run_dir}", "resume=true"], data_dir
    )
    assert other.returncode != 0
    assert "model.hidden_size: 16 -> 24" in other.stderr  # refused against the record
    assert (run_dir / "summary.json").read_bytes() == summary_before  # a refusal, not a result
    (run_dir / ".lmexp" / "config.json").unlink()  # a run from before the record: the
    other = _train(  # checkpoint's own config still refuses it
        [*tiny, "model.hidden_size=24", f"hydra.run.dir={run_dir}", "resume=true"], data_dir
    )
    assert "model.hidden_size=16 but the config says model.hidden_size=24" in other.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error_type"] == "CheckpointMismatch"


def test_resume_refuses_a_checkpoint_of_another_vocabulary(
    tmp_path, data_dir, killed_run, tiny
) -> None:
    run_dir = _copy(killed_run, tmp_path)
    last = run_dir / "checkpoints" / "last.pt"
    payload = load_checkpoint(last)  # as if it had been trained on another corpus version
    payload["vocab_sha256"] = vocab_digest(Vocab(["<unk>", "a", "b", "<eos>"]))
    save_checkpoint(payload, last)
    metrics = (run_dir / "metrics.csv").read_text()
    other = _train([*tiny, f"hydra.run.dir={run_dir}", "resume=true"], data_dir)
    assert other.returncode != 0
    assert "was trained on a different vocabulary" in other.stderr
    assert "Point data.root at the original files" in other.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error_type"] == "CheckpointMismatch"
    assert (run_dir / "metrics.csv").read_text() == metrics  # nothing truncated or appended


def test_rerunning_a_sweep_with_resume_skips_finished_jobs_and_keeps_numbering(
    tmp_path, data_dir, tiny
) -> None:
    sweep = tmp_path / "sweep"
    FIRST, SECOND = "0-gru-adam-seed=1", "1-gru-adam-seed=2"  # named by what varies
    args = ["-m", *tiny, "seed=1,2", "trainer.max_steps=12", f"hydra.sweep.dir={sweep}"]
    # Kill the sweep while its second job runs: the first is finished, the second is not.
    _kill_when(sweep, args, data_dir, lambda d: (d / SECOND / "checkpoints" / "last.pt").exists())
    first = (sweep / FIRST / "metrics.csv").read_text()
    launched = (sweep / "multirun.yaml").read_bytes()
    rerun = _train([*args, "resume=true"], data_dir)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == [FIRST, SECOND]
    # the sweep's record is its first launch; the relaunch's is filed beside it
    assert (sweep / "multirun.yaml").read_bytes() == launched
    (relaunch,) = (sweep / ".lmexp" / "relaunches").glob("*.yaml")
    assert "resume=true" in relaunch.read_text()
    assert (sweep / FIRST / "metrics.csv").read_text() == first  # skipped, untouched
    for job in (FIRST, SECOND):
        assert json.loads((sweep / job / "summary.json").read_text())["status"] == "completed"
        steps = [int(r["step"]) for r in _rows(sweep / job)]
        assert steps == sorted(set(steps)) and steps[-1] == 12


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, small_corpus) -> Path:
    """A run that ended at step 20 (its last.pt there); tests go on with resume=force to 35."""
    run_dir = tmp_path_factory.mktemp("stopped") / "run"
    args = [*TINY, f"data.root={small_corpus}", "trainer.max_steps=20", f"hydra.run.dir={run_dir}"]
    done = _train(args, require_data_dir())
    assert done.returncode == 0, done.stderr[-2000:]
    return run_dir


def _go_on(run_dir: Path, small_corpus: Path) -> subprocess.CompletedProcess:
    args = [*TINY, f"data.root={small_corpus}", f"hydra.run.dir={run_dir}", "resume=force"]
    return _train(args, require_data_dir())


def _up_to(rows: list[dict[str, str]], step: int) -> list[dict[str, str]]:
    return [r for r in rows if int(r["step"]) <= step]


def _damage(metrics: Path, damage: str) -> Path:
    """Delete metrics.csv, or garble its second row (long before the checkpoint)."""
    if damage == "deleted file":
        metrics.unlink()
    else:
        lines = metrics.read_text().splitlines(keepends=True)
        lines[2] = "1.5,garbage\r\n"
        metrics.write_text("".join(lines))
    return metrics


@pytest.mark.faults
def test_an_undamaged_metrics_file_resumes_without_a_word(stopped, tmp_path, small_corpus):
    run_dir = Path(shutil.copytree(stopped, tmp_path / "run"))
    before = _rows(run_dir)
    done = _go_on(run_dir, small_corpus)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restored from" not in done.stdout + done.stderr  # nothing differed: no warning
    assert _up_to(_rows(run_dir), 20) == before


@pytest.mark.faults
@pytest.mark.parametrize("damage", ["malformed row", "deleted file"])
def test_resume_restores_the_rows_up_to_its_checkpoint_exactly(
    stopped, tmp_path, small_corpus, damage
) -> None:
    run_dir = Path(shutil.copytree(stopped, tmp_path / "run"))
    before = _rows(run_dir)
    _damage(run_dir / "metrics.csv", damage)
    done = _go_on(run_dir, small_corpus)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "restored from" in done.stdout + done.stderr  # said, naming the file
    after = _rows(run_dir)
    assert _up_to(after, 20) == before and int(after[-1]["step"]) == 35


@pytest.mark.faults
@pytest.mark.parametrize("damage", ["malformed row", "deleted file"])
def test_a_checkpoint_without_the_rows_refuses_rather_than_lose_them(
    stopped, tmp_path, small_corpus, damage
) -> None:
    """A last.pt of an older lmexp carries no copy of metrics.csv: damage is refused."""
    run_dir = Path(shutil.copytree(stopped, tmp_path / "run"))
    last = run_dir / "checkpoints" / "last.pt"
    payload = load_checkpoint(last)
    del payload["metrics_csv"]
    save_checkpoint(payload, last)
    metrics = _damage(run_dir / "metrics.csv", damage)
    kept = metrics.read_bytes() if metrics.exists() else None
    done = _go_on(run_dir, small_corpus)
    assert done.returncode != 0
    assert "metrics.csv" in done.stderr and ("line 3" in done.stderr or "missing" in done.stderr)
    assert (metrics.read_bytes() if metrics.exists() else None) == kept  # nothing dropped


@pytest.mark.faults
def test_fuzzed_run_files_never_resume_into_a_curve_with_rows_lost(
    stopped, tmp_path, small_corpus
) -> None:
    """Seeded mutations of the files resume reads: each relaunch either refuses, or ends with
    every row up to its checkpoint as it was (never a silent loss), and touches no other job."""
    rng = random.Random(2026)
    before = _rows(stopped)
    untouched = {p: p.read_bytes() for p in stopped.rglob("*") if p.is_file()}
    files = ("metrics.csv", "checkpoints/last.pt", ".lmexp/config.json", "summary.json")
    for case in range(8):
        run_dir = Path(shutil.copytree(stopped, tmp_path / f"case{case}"))
        target = run_dir / files[case % len(files)]
        data = bytearray(target.read_bytes())
        if case % 2:
            data = data[: rng.randrange(len(data))]  # truncated
        else:
            for _ in range(4):
                data[rng.randrange(len(data))] = rng.randrange(256)
        target.write_bytes(bytes(data))
        done = _go_on(run_dir, small_corpus)
        if done.returncode == 0:
            assert _up_to(_rows(run_dir), 20) == before, (case, target.name)
    assert {p: p.read_bytes() for p in stopped.rglob("*") if p.is_file()} == untouched
