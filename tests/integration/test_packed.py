"""`launcher=packed`: real Hydra multiruns whose same-shape jobs train as one batched model.

Each packed job must be a job like any other: the same files, the same summary (plus
`packed_with`), the same curves as the job run alone (within 1e-5, with dropout: on the CPU a
member draws the job alone's masks from its own stream), its own budget end, its own divergence
stop, its own log, and a resume after SIGKILL that ends where the jobs alone end (each
checkpoint holds its member's stream).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_TEXT_GRU, require_data_dir, run_module

pytestmark = pytest.mark.slow

# Four jobs of one shape: two learning rates (one diverges at once) x two step budgets.
SWEEP = [
    *TINY_TEXT_GRU,
    "model.dropout=0.3",  # each member draws its masks from its own stream
    "optim=sgd",
    "optim.lr=1.0,1e9",
    "trainer.max_steps=12,90",
    "trainer.eval_every=0.05",  # about every 5 steps on the small corpus
    "trainer.checkpoint_every=2",
]
TOLERANCE = 1e-5


def _sweep(args: list[str], data_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_module("lmexp.train", ["-m", *args], data_dir, timeout)


def _rows(job: Path) -> list[dict[str, str]]:
    with (job / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _summary(job: Path) -> dict:
    return json.loads((job / "summary.json").read_text())


def _close(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y) or math.isinf(x) or math.isinf(y):
        return (math.isnan(x) and math.isnan(y)) or x == y
    return abs(x - y) <= TOLERANCE * max(abs(x), abs(y), 1e-12)


def _same_curves(packed: Path, alone: Path) -> None:
    rows_p, rows_a = _rows(packed), _rows(alone)
    assert [r["step"] for r in rows_p] == [r["step"] for r in rows_a], packed.name
    for row_p, row_a in zip(rows_p, rows_a, strict=True):
        for column in ("train_loss", "val_loss", "val_ppl", "best_val_ppl", "lr"):
            assert _close(row_p[column], row_a[column]), (packed.name, column, row_p, row_a)


def _files(job: Path) -> set[str]:
    return {str(p.relative_to(job)) for p in job.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def alone_and_packed(tmp_path_factory, small_corpus) -> tuple[Path, Path]:
    """The sweep run job by job (Hydra's basic launcher) and packed (pack=4)."""
    data_dir = require_data_dir()
    root = tmp_path_factory.mktemp("packed")
    common = [*SWEEP, f"data.root={small_corpus}"]
    alone, packed = root / "alone", root / "packed"
    done = _sweep([*common, f"hydra.sweep.dir={alone}"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]  # diverged jobs are results
    done = _sweep([*common, "launcher=packed", "pack=4", f"hydra.sweep.dir={packed}"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pack of 4: #0, #1, #2, #3" in done.stdout + done.stderr
    return alone, packed


def test_packed_jobs_are_jobs_with_the_curves_of_the_jobs_alone(alone_and_packed) -> None:
    alone, packed = alone_and_packed
    names = sorted(p.name for p in alone.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert names == sorted(
        p.name for p in packed.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    assert len(names) == 4
    for name in names:
        job_a, job_p = alone / name, packed / name
        summary_a, summary_p = _summary(job_a), _summary(job_p)
        assert summary_p["status"] == summary_a["status"], name
        assert summary_p["stop_reason"] == summary_a["stop_reason"], name
        # the same record, plus the jobs it trained with
        assert set(summary_p) - set(summary_a) == {"packed_with"}, name
        assert sorted(Path(p).name for p in summary_p["packed_with"]) == sorted(
            n for n in names if n != name
        )
        assert _files(job_p) == _files(job_a), name
        if summary_a["status"] == "completed":
            _same_curves(job_p, job_a)
            assert _close(str(summary_p["test_ppl"]), str(summary_a["test_ppl"])), name
        else:  # a loss of 1e8 after a step of 1e9 is chaos; it stops where the job alone does
            assert [r["step"] for r in _rows(job_p)] == [r["step"] for r in _rows(job_a)]
    statuses = {name: _summary(packed / name)["status"] for name in names}
    # the diverged members left the pack; the others trained on, each to its own budget
    assert sorted(statuses.values()) == ["completed", "completed", "diverged", "diverged"]
    steps = sorted(int(_rows(packed / n)[-1]["step"]) for n in names if statuses[n] == "completed")
    assert steps == [12, 90]


def test_each_packed_job_logs_to_its_own_train_log(alone_and_packed) -> None:
    _, packed = alone_and_packed
    jobs = sorted(p for p in packed.iterdir() if p.is_dir() and not p.name.startswith("."))
    for job in jobs:
        text = (job / "train.log").read_text()
        assert f"output dir {job}" in text
        for other in jobs:
            if other != job:
                assert f"output dir {other}\n" not in text, (job.name, other.name)


def test_packed_checkpoints_load_as_any_job_s(alone_and_packed) -> None:
    import lmexp

    alone, packed = alone_and_packed
    text = "the company said it expects"
    for job in packed.iterdir():
        if job.is_dir() and _summary(job).get("status") == "completed":
            for checkpoint in ("best", "last"):
                packed_lm = lmexp.load(job, checkpoint=checkpoint)
                alone_lm = lmexp.load(alone / job.name, checkpoint=checkpoint)
                assert packed_lm.model.num_params() == _summary(job)["params"]
                score, expected = packed_lm.log_prob(text), alone_lm.log_prob(text)
                assert abs(score - expected) <= 1e-4 * abs(expected), (job.name, checkpoint)


def test_jobs_that_cannot_pack_run_alone_and_the_launcher_says_why(
    tmp_path, small_corpus, data_dir
) -> None:
    sweep = tmp_path / "sweep"
    args = [
        *TINY_TEXT_GRU,
        f"data.root={small_corpus}",
        "model=lstm",
        "trainer.max_steps=3",
        "model.impl=scratch,fused",
        "launcher=packed",
        f"hydra.sweep.dir={sweep}",
    ]
    done = _sweep(args, data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout + done.stderr
    assert "#0 alone: no other job of the batch builds the same model on the same data" in out
    assert "#1 alone: model.impl=fused runs nn.RNN/GRU/LSTM" in out
    for summary in sweep.glob("*/summary.json"):
        record = json.loads(summary.read_text())
        assert record["status"] == "completed" and "packed_with" not in record


def _start(args: list[str], data_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "LMEXP_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-m", "lmexp.train", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _when_the_long_job_has(sweep: Path, rows: int, proc: subprocess.Popen) -> None:
    """Return once the 90-step job has `rows` evaluations (and so a last.pt) on disk."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = list(sweep.glob("*lr=1.0,max_steps=90/metrics.csv"))  # not the diverging one
        if metrics and len(_rows(metrics[0].parent)) >= rows:
            return
        time.sleep(0.02)
    raise AssertionError(f"the pack ended (or stalled) before {rows} evaluations")


def test_a_pack_stopped_by_sigterm_then_killed_resumes_to_the_curves_of_its_jobs_alone(
    tmp_path, small_corpus, data_dir, alone_and_packed
) -> None:
    """SIGTERM: every member still training records `interrupted` and the command exits 143;
    SIGKILL: nothing is recorded; each time `resume=true` continues every member from its own
    last.pt, and the jobs end with the curves of the jobs alone."""
    alone, _ = alone_and_packed
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        *SWEEP,
        f"data.root={small_corpus}",
        "launcher=packed",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = _start(args, data_dir)
    try:
        _when_the_long_job_has(sweep, 2, proc)
        proc.send_signal(signal.SIGTERM)  # the command, as `kill` or `docker stop` would
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, stderr[-3000:]
        statuses = {job.name: _summary(job) for job in sweep.iterdir() if job.is_dir()}
        stopped = [s for s in statuses.values() if s["status"] == "interrupted"]
        assert stopped and all(s["signal"] == "SIGTERM" for s in stopped), statuses
        assert all(s["status"] != "running" for s in statuses.values()), statuses

        proc = _start([*args, "resume=true"], data_dir)
        _when_the_long_job_has(sweep, 4, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    killed = {job.name: _summary(job)["status"] for job in sweep.glob("[0-9]*") if job.is_dir()}
    assert "running" in killed.values(), killed
    done = _sweep([*args[1:], "resume=true"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    for job in alone.iterdir():
        if job.is_dir() and not job.name.startswith("."):
            resumed = sweep / job.name
            assert _summary(resumed)["status"] == _summary(job)["status"], job.name
            if _summary(job)["status"] == "completed":
                _same_curves(resumed, job)
                if job.name.endswith("max_steps=90"):  # stopped twice midway, resumed twice
                    assert _summary(resumed)["resumed"] == 2, job.name


def test_a_preempted_pack_saves_every_member_s_step_and_resumes_from_it(
    tmp_path, small_corpus, data_dir, alone_and_packed
) -> None:
    """SIGUSR2 (what a cluster sends before a time limit or a preemption): every member still
    training saves the step it is at to its own last.pt and records `preempted`; the command
    exits 128 + SIGUSR2; `resume=true` continues each member from that very step, and the jobs
    end with the curves of the jobs alone."""
    alone, _ = alone_and_packed
    sweep = tmp_path / "sweep"
    args = [*SWEEP, f"data.root={small_corpus}", "launcher=packed", f"hydra.sweep.dir={sweep}"]
    proc = _start(["-m", *args], data_dir)
    try:
        _when_the_long_job_has(sweep, 2, proc)
        proc.send_signal(signal.SIGUSR2)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signal.SIGUSR2, stderr[-3000:]
    jobs = [job for job in sweep.glob("[0-9]*") if job.is_dir()]
    statuses = {job.name: _summary(job)["status"] for job in jobs}
    preempted = [job for job in jobs if statuses[job.name] == "preempted"]
    assert preempted and "running" not in statuses.values(), statuses
    saved = {}
    for job in preempted:
        log = (job / "train.log").read_text()
        found = re.search(r"SIGUSR2: saving checkpoints/last.pt at step (\d+) and stopping", log)
        assert found, (job.name, log[-2000:])
        saved[job.name] = found.group(1)
    done = _sweep([*args, "resume=true"], data_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    for job in alone.glob("[0-9]*"):
        resumed = sweep / job.name
        assert _summary(resumed)["status"] == _summary(job)["status"], job.name
        if _summary(job)["status"] == "completed":
            _same_curves(resumed, job)
        if job.name in saved:  # the resume went on from the saved step itself
            assert f", step {saved[job.name]}\n" in (resumed / "train.log").read_text()
