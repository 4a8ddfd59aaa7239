"""`launcher=slurm` against a real SLURM cluster (tests/slurm/conftest.py): sweeps submitted as
job arrays, their records read back from the job directories and from SLURM's own accounting
(`sacct`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_TEXT_GRU
from tests.slurm.conftest import array_id, sacct

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


def _sweep(env: dict, data_dir: Path, *args: str, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "lmexp.train", "-m", *ON_CLUSTER, *args],
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
