"""`launcher=slurm` against a real SLURM cluster (tests/slurm/conftest.py): sweeps submitted as
job arrays, their records read back from the job directories and from SLURM's own accounting
(`sacct`)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_TEXT_GRU, require_data_dir, small_run_args
from tests.slurm.conftest import array_id, queued, sacct

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# launcher=slurm on the test cluster: its default partition, no GPU, one core and 1 GB a job
ON_CLUSTER = [
    "launcher=slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
]


def _command(*args: str) -> list[str]:
    """`lmexp.train -m` on the test cluster; a key given in `args` replaces ON_CLUSTER's."""
    given = {a.split("=", 1)[0] for a in args}
    defaults = [a for a in ON_CLUSTER if a.split("=", 1)[0] not in given]
    return [sys.executable, "-m", "lmexp.train", "-m", *defaults, *args]


def _sweep(env: dict, data_dir: Path, *args: str, timeout: float = 300):
    return subprocess.run(
        _command(*args),
        cwd=REPO,
        env={**env, "LMEXP_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _summaries(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))}


def test_a_sweep_runs_as_one_array_and_sacct_agrees_with_the_records(
    cluster, tmp_path, data_dir, small_corpus
) -> None:
    sweep = tmp_path / "sweep"
    args = [
        *TINY_TEXT_GRU,
        f"data.root={small_corpus}",
        "model=rnn,gru",
        f"hydra.sweep.dir={sweep}",
    ]
    done = _sweep(cluster, data_dir, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    summaries = _summaries(sweep)
    assert sorted(summaries) == ["0-rnn-sgd", "1-gru-sgd"]
    assert {s["status"] for s in summaries.values()} == {"completed"}
    array = array_id(sweep)
    states = sacct(cluster, array, tasks=2)
    assert states == {f"{array}_0": "COMPLETED", f"{array}_1": "COMPLETED"}
    for k, name in enumerate(sorted(summaries)):  # the logs where docs/sweeps.md says they are
        logs = sweep / ".submitit" / f"{array}_{k}"
        log = (logs / f"{array}_{k}_0_log.out").read_text()  # stderr too: it goes to .out
        assert f"output dir {sweep / name}" in log and "completed: best val ppl" in log


def _log_span(job: Path) -> tuple[str, str]:
    """First and last timestamps of a job's train.log (Hydra's format sorts as text)."""
    stamps = [line[1:24] for line in (job / "train.log").read_text().splitlines()
              if line.startswith("[20")]  # fmt: skip
    return stamps[0], stamps[-1]


def test_jobs_per_gpu_asks_slurm_for_shards_of_a_gpu_and_two_jobs_share_it(
    cluster, tmp_path, data_dir, small_corpus
) -> None:
    """The test cluster's node has one (pretend) GPU of 4 shards: two jobs that each asked for
    a whole GPU would run one after the other; two that each asked for a shard run together.
    (MPS cannot be configured beside shards: its request is tested in test_resolvers.py.)"""
    sweep = tmp_path / "sweep"
    args = [*TINY_TEXT_GRU, f"data.root={small_corpus}", "model=rnn,gru", "trainer.max_steps=60"]
    args += ["jobs_per_gpu=2", f"hydra.sweep.dir={sweep}"]
    done = _sweep(cluster, data_dir, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    array = array_id(sweep)
    sbatch = next((sweep / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "#SBATCH --gres=shard:1\n" in sbatch and "--gpus-per-node" not in sbatch, sbatch
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,AllocTRES", "-j", array],
                         env=cluster, capture_output=True, text=True, check=True)  # fmt: skip
    tres = dict(line.split("|", 1) for line in out.stdout.splitlines() if line)
    assert len(tres) == 2 and all("gres/shard=1" in t for t in tres.values()), tres
    jobs = sorted(p.parent for p in sweep.glob("*/summary.json"))
    for job in jobs:  # each job records what SLURM gave it: the one GPU, and its share of it
        sessions = json.loads((job / ".lmexp" / "environment.json").read_text())["sessions"]
        allocation = sessions[-1]["allocation"]
        assert allocation["CUDA_VISIBLE_DEVICES"] == "0", allocation
        assert allocation["SLURM_SHARDS_ON_NODE"] == "1", allocation
    (start_a, end_a), (start_b, end_b) = (_log_span(job) for job in jobs)
    assert start_a < end_b and start_b < end_a  # on the one GPU at the same time


def test_a_failing_job_does_not_sink_the_array(cluster, tmp_path, data_dir, small_corpus) -> None:
    sweep, broken = tmp_path / "sweep", tmp_path / "broken"
    broken.mkdir()
    for name in ("train", "valid"):  # no test.txt: that job fails when it reads its corpus
        (broken / f"{name}.txt").write_text((small_corpus / f"{name}.txt").read_text())
    args = [*TINY_TEXT_GRU, f"data.root={small_corpus},{broken}", f"hydra.sweep.dir={sweep}"]
    done = _sweep(cluster, data_dir, *args)
    assert done.returncode != 0  # the end-of-sweep summary reports the failure
    summaries = _summaries(sweep)
    statuses = {name.split("=")[-1]: s["status"] for name, s in summaries.items()}
    assert statuses == {"small_corpus0": "completed", "broken": "failed"}, statuses
    # SLURM saw two processes that ended normally: the job's status is in its summary.json
    assert set(sacct(cluster, array_id(sweep), tasks=2).values()) == {"COMPLETED"}


# The time-limited job trains for TIME_BUDGET_MIN minutes of its own clock (trainer.max_minutes,
# which a resume carries on): past the signal (at most 90 s after its start), and then only a
# little more, however fast the machine is. Its step budget is never reached.
TIME_BUDGET_MIN = 1.75
LONG_STEPS = 100_000
MEDIUM_STEPS = 600  # long enough to stop after its third evaluation (step 72) and resume


def _long_job(corpus: Path, steps: int = LONG_STEPS) -> list[str]:
    """The fault tests' tiny GRU, trained `steps` steps; checkpointed every 5 steps."""
    return [
        a if not a.startswith("trainer.max_steps=") else f"trainer.max_steps={steps}"
        for a in small_run_args(corpus)
    ]


def _start_reference(corpus: Path, run_dir: Path, steps: int) -> subprocess.Popen:
    """The job of `steps` never stopped, run outside SLURM (beside what a test does on the
    cluster, to save its minutes): the curves each stopped one must equal."""
    command = [sys.executable, "-m", "lmexp.train", *_long_job(corpus, steps)]
    command.append(f"hydra.run.dir={run_dir}")
    env = {**os.environ, "LMEXP_DATA_DIR": str(require_data_dir())}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _reference_rows(proc: subprocess.Popen, run_dir: Path) -> list[dict]:
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-2000:]
    return _rows(run_dir)


@pytest.fixture(scope="session")
def medium_reference(small_corpus, tmp_path_factory) -> list[dict]:
    run_dir = tmp_path_factory.mktemp("medium_reference") / "run"
    return _reference_rows(_start_reference(small_corpus, run_dir, MEDIUM_STEPS), run_dir)


def _rows(run_dir: Path) -> list[dict]:
    """The curves of a run, without the columns that measure time."""
    timed = {"wall_time_s", "epoch_time_s", "tokens_per_s", "train_time_s", "eval_time_s"}
    with (run_dir / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in timed} for row in csv.DictReader(f)]


def _slurm_job(env: dict, sweep: Path, timeout: float = 120) -> str:
    """The id of the one job a sweep submitted, once SLURM runs it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (sweep / ".submitit").is_dir():
            ids = [p.name for p in (sweep / ".submitit").iterdir() if p.is_dir()]
            if ids and queued(env):
                return ids[0].split("_")[0]
        time.sleep(0.5)
    raise AssertionError(f"no job of {sweep} reached SLURM in {timeout} s")


def _rows_done(run_dir: Path) -> int:
    path = run_dir / "metrics.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def _lift_requeue_holds(env: dict) -> None:
    """SLURM holds a requeued job for 2 minutes (BeginTime); an admin's `scontrol update
    StartTime=now` releases it at once, which keeps these tests short."""
    for job in queued(env):
        state = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%T %r"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        if "PENDING" in state and "BeginTime" in state:
            subprocess.run(
                ["scontrol", "update", f"JobId={job}", "StartTime=now"],
                env=env,
                capture_output=True,
                check=False,
            )


def _wait(proc: subprocess.Popen, env: dict, timeout: float) -> tuple[int, str]:
    """Wait for a sweep command, releasing requeue holds meanwhile; (exit code, stderr)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the sweep did not end in {timeout} s")
        _lift_requeue_holds(env)
        time.sleep(1)
    return proc.returncode, proc.stderr.read()


def _start(env: dict, data_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        _command(*args),
        cwd=REPO,
        env={**env, "LMEXP_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _reference_until(proc: subprocess.Popen, run_dir: Path, step: int) -> list[dict]:
    """The reference's curves up to `step`: wait until it has evaluated past it, then stop it."""
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            rows = _rows(run_dir) if (run_dir / "metrics.csv").exists() else []
            if rows and int(rows[-1]["step"]) >= step:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the reference ended or stalled before step {step}")
    finally:
        proc.kill()
        proc.wait()
    return [row for row in _rows(run_dir) if int(row["step"]) < step]


def test_a_job_at_its_time_limit_saves_is_requeued_and_ends_as_if_never_stopped(
    cluster, tmp_path, data_dir, small_corpus
) -> None:
    """A two-minute limit, signalled 30 s before it: SLURM may signal up to 60 s early, so
    the job gets SIGUSR2 30 to 90 s in (never during its start-up, when no handler is
    installed yet and SIGUSR2 would kill it: a one-minute limit did, and lmexp now refuses
    one); lmexp saves the step, submitit requeues the job, it resumes and trains on to its
    wall-clock budget. Its curves are those of the same job never stopped (run beside it,
    outside SLURM), up to its last step."""
    sweep = tmp_path / "sweep"
    limit = [
        "hydra.launcher.timeout_min=2",
        "hydra.launcher.signal_delay_s=30",
        "hydra.launcher.max_num_timeout=20",  # a loaded machine may need more two-minute slots
        "hydra.launcher.partition=short",
        f"trainer.max_minutes={TIME_BUDGET_MIN}",
    ]
    reference_dir = tmp_path / "reference"
    reference = _start_reference(small_corpus, reference_dir, LONG_STEPS)
    proc = _start(cluster, data_dir, *_long_job(small_corpus), *limit, f"hydra.sweep.dir={sweep}")
    try:
        code, stderr = _wait(proc, cluster, timeout=600)
    except BaseException:
        reference.kill()
        raise
    assert code == 0, stderr[-3000:]
    (job,) = sweep.glob("*/summary.json")
    summary = json.loads(job.read_text())
    assert summary["status"] == "completed" and summary["preemptions"] >= 1, summary
    assert summary["stop_reason"] == "max_minutes", summary
    # the same curves as a job never stopped (the last row is the budget's own evaluation)
    rows = _rows(job.parent)
    last = int(rows[-1]["step"])
    assert len(rows) > 3 and rows[:-1] == _reference_until(reference, reference_dir, last)
    log = next((sweep / ".submitit").glob("*/*_log.out")).read_text()
    assert "saving checkpoints/last.pt at step" in log and "SIGUSR2" in log
    saved = int(log.split("saving checkpoints/last.pt at step")[1].split()[0])
    assert saved < int(rows[-2]["step"]), "no evaluation after the resume to compare"


def _medium_job(corpus: Path, sweep: Path) -> tuple[list[str], Path]:
    """The MEDIUM_STEPS job's arguments, swept into `sweep`, and its job directory."""
    return [*_long_job(corpus, MEDIUM_STEPS), f"hydra.sweep.dir={sweep}"], sweep / "0-gru-adam"


def _start_until_third_evaluation(
    env: dict, data_dir: Path, args: list[str], run_dir: Path
) -> tuple[subprocess.Popen, str]:
    """Launch the sweep; return once its one SLURM job has evaluated three times (or 2 min):
    the launching process and the job's id, for the test to stop it midway."""
    proc = _start(env, data_dir, *args)
    job = _slurm_job(env, run_dir.parent)
    deadline = time.monotonic() + 120
    while _rows_done(run_dir) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    return proc, job


def test_a_requeued_job_continues_from_its_checkpoint(
    cluster, tmp_path, data_dir, small_corpus, medium_reference
) -> None:
    """`scontrol requeue` (what preemption with PreemptMode=REQUEUE does): SIGTERM, the job
    records `interrupted` at a safe point, SLURM starts it again, it resumes from last.pt."""
    args, run_dir = _medium_job(small_corpus, tmp_path / "sweep")
    proc, job = _start_until_third_evaluation(cluster, data_dir, args, run_dir)
    subprocess.run(["scontrol", "requeue", job], env=cluster, check=True)
    code, stderr = _wait(proc, cluster, timeout=600)
    assert code == 0, stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed"] >= 1, summary
    assert _rows(run_dir) == medium_reference


def test_scancel_records_interrupted_and_the_same_command_resumes(
    cluster, tmp_path, data_dir, small_corpus, medium_reference
) -> None:
    args, run_dir = _medium_job(small_corpus, tmp_path / "sweep")
    proc, job = _start_until_third_evaluation(cluster, data_dir, args, run_dir)
    subprocess.run(["scancel", job], env=cluster, check=True)
    code, _ = _wait(proc, cluster, timeout=300)
    assert code != 0  # submitit saw the job cancelled
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM", summary
    assert sacct(cluster, job)[job].startswith("CANCELLED")  # "CANCELLED by <uid>"
    again = _sweep(cluster, data_dir, *args)  # launcher=slurm sets resume=true
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed"] == 1, summary
    assert _rows(run_dir) == medium_reference
