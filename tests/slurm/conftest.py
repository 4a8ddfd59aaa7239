"""A real single-node SLURM cluster for the tests of this folder: munge, MariaDB, slurmdbd,
slurmctld and slurmd started by scripts/slurm_test_cluster.sh, one cluster per test process
(each pytest-xdist worker on ports of its own), stopped when the session ends. A cluster that
cannot start fails these tests; they never skip. After each test every job still queued or
running is cancelled and waited for, so no training run outlives its test."""

from __future__ import annotations

import getpass
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "slurm_test_cluster.sh"


def _port() -> int:
    """16817 for the first worker, 16827 for the second, ...; 16917 without xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 10
    return 16817 + 10 * index


@pytest.fixture(scope="session")
def slurm(tmp_path_factory) -> dict[str, str]:
    """The environment of a process that talks to this cluster (SLURM_CONF set)."""
    folder = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(folder), str(_port())],
        capture_output=True,
        text=True,
        timeout=600,  # a first start may install the Debian packages
        check=False,
    )
    if started.returncode != 0:
        pytest.fail(f"the SLURM test cluster did not start:\n{started.stdout}{started.stderr}")
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    try:
        yield env
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(folder)], timeout=120, check=False)


def queued(env: dict[str, str]) -> list[str]:
    """The ids of the cluster's jobs still pending or running."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i"], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.fixture
def cluster(slurm):
    """`slurm`, and nothing left on it when the test ends, whatever happened."""
    yield slurm
    me = getpass.getuser()
    subprocess.run(["scancel", "--user", me], env=slurm, check=False, capture_output=True)
    deadline = time.monotonic() + 60
    while queued(slurm) and time.monotonic() < deadline:
        time.sleep(0.5)


def sacct(env: dict[str, str], job: str, tasks: int = 1) -> dict[str, str]:
    """SLURM's accounting record of a job or array of `tasks`: {job id: state}, steps left out.
    slurmctld sends its records to slurmdbd a moment after a job ends: wait for all of them."""
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run(
            ["sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", job],
            env=env,
            capture_output=True,
            text=True,
            check=False,  # slurmdbd busy: ask again
        )
        states = dict(line.split("|", 1) for line in out.stdout.splitlines() if line)
        settled = len(states) == tasks and not {"PENDING", "RUNNING"} & set(states.values())
        if settled:
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"sacct -j {job}: {states} after 60 s; {out.stderr.strip()}")
        time.sleep(0.5)


def array_id(sweep: Path) -> str:
    """The array a launcher=slurm sweep was submitted as (its .submitit/<array>_<k>/ logs)."""
    logs = (sweep / ".submitit").iterdir()
    (array,) = {p.name.split("_")[0] for p in logs if p.is_dir() and "_" in p.name}
    return array
