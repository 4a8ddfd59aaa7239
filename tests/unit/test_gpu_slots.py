"""GPU slots with real processes: concurrent holders differ, a waiter gets a freed slot."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
from pathlib import Path

import pytest

from lmexp.runtime.gpu_slots import claim_gpu, default_lock_dir

SPAWN = mp.get_context("spawn")  # fresh interpreters, as loky workers and submitit jobs are


def _hold(lock_dir: Path, n_gpus: int, name: str, claimed: mp.Queue, release: mp.Event) -> None:
    with claim_gpu(lock_dir, n_gpus, poll_s=0.05) as k:
        claimed.put((name, k))
        release.wait(30)


def _start(lock_dir: Path, n_gpus: int, name: str, claimed: mp.Queue):
    release = SPAWN.Event()
    proc = SPAWN.Process(target=_hold, args=(lock_dir, n_gpus, name, claimed, release))
    proc.start()
    return proc, release


@pytest.fixture
def procs():
    started: list = []
    yield started
    for proc in started:
        proc.kill()
        proc.join(5)


def test_concurrent_processes_hold_distinct_slots_and_a_third_waits(tmp_path, procs) -> None:
    claimed = SPAWN.Queue()
    (a, release_a), (b, release_b) = (_start(tmp_path, 2, n, claimed) for n in "ab")
    procs += [a, b]
    first = dict(claimed.get(timeout=20) for _ in range(2))
    assert sorted(first.values()) == [0, 1]

    c, release_c = _start(tmp_path, 2, "c", claimed)
    procs.append(c)
    with pytest.raises(queue.Empty):  # both GPUs are held: c waits
        claimed.get(timeout=1.5)
    release_a.set()
    a.join(10)
    assert claimed.get(timeout=10) == ("c", first["a"])  # c takes the slot a gave back
    release_b.set()
    release_c.set()


def test_a_killed_holder_frees_its_slot(tmp_path, procs) -> None:
    claimed = SPAWN.Queue()
    a, _ = _start(tmp_path, 1, "a", claimed)
    procs.append(a)
    assert claimed.get(timeout=20) == ("a", 0)
    a.kill()  # as an out-of-memory kill would: no cleanup code runs
    a.join(10)
    with claim_gpu(tmp_path, 1, timeout_s=5) as k:
        assert k == 0


def test_claims_in_one_process_differ_and_are_released_on_exit(tmp_path) -> None:
    with claim_gpu(tmp_path, 2) as first, claim_gpu(tmp_path, 2) as second:
        assert {first, second} == {0, 1}
        with pytest.raises(TimeoutError), claim_gpu(tmp_path, 2, poll_s=0.01, timeout_s=0.1):
            pass
    with claim_gpu(tmp_path, 2) as again:
        assert again == 0


def test_slot_is_released_when_the_job_raises(tmp_path) -> None:
    with pytest.raises(RuntimeError), claim_gpu(tmp_path, 1):
        raise RuntimeError("job failed")
    with claim_gpu(tmp_path, 1, timeout_s=0) as k:
        assert k == 0


def test_no_gpus_means_no_slot(tmp_path) -> None:
    with claim_gpu(tmp_path / "locks", 0) as k:
        assert k is None
    assert not (tmp_path / "locks").exists()


def test_default_lock_dir_is_keyed_by_visible_devices(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    two_three = default_lock_dir()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert two_three != default_lock_dir() and two_three.name == "2_3"


def test_slots_per_gpu_spread_over_the_gpus_before_sharing_one(tmp_path) -> None:
    # two GPUs, two jobs each: the claims go 0, 1, 0, 1, and a fifth finds every slot taken
    with contextlib.ExitStack() as stack:
        got = [stack.enter_context(claim_gpu(tmp_path, 2, per_gpu=2)) for _ in range(4)]
        assert got == [0, 1, 0, 1]
        with pytest.raises(TimeoutError, match="all 4 GPU slots"):
            stack.enter_context(claim_gpu(tmp_path, 2, poll_s=0.01, timeout_s=0.05, per_gpu=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gpu0.1.lock",
        "gpu0.lock",
        "gpu1.1.lock",
        "gpu1.lock",
    ]
    with claim_gpu(tmp_path, 2, per_gpu=2) as again:  # all given back
        assert again == 0


def test_a_one_slot_sweep_and_a_packed_one_share_the_first_slot(tmp_path) -> None:
    third = claim_gpu(tmp_path, 1, poll_s=0.01, timeout_s=0.05, per_gpu=2)
    with claim_gpu(tmp_path, 1) as first, claim_gpu(tmp_path, 1, per_gpu=2) as second:
        assert (first, second) == (0, 0)
        with pytest.raises(TimeoutError):
            third.__enter__()  # both slots of the one GPU are held


def test_claims_in_one_process_get_different_slots(tmp_path) -> None:
    with claim_gpu(tmp_path, 2) as first, claim_gpu(tmp_path, 2) as second:
        assert {first, second} == {0, 1}
        third = claim_gpu(tmp_path, 2, poll_s=0.01, timeout_s=0.05)
        with pytest.raises(TimeoutError, match="all 2 GPU slots"), third:
            pass
    with claim_gpu(tmp_path, 2) as again:  # released: free again
        assert again == 0


def test_slots_need_no_fcntl(tmp_path) -> None:
    """Windows has no fcntl: the slots lock through filelock's portable locks there."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['fcntl'] = None\n"  # as on Windows: `import fcntl` fails
        "from lmexp.runtime.gpu_slots import claim_gpu\n"
        f"with claim_gpu({str(tmp_path)!r}, 2) as a, claim_gpu({str(tmp_path)!r}, 2) as b:\n"
        "    print(a, b)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "1"]
