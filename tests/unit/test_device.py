"""Which device a job gets: explicit choices are honoured, `auto` shares several GPUs out."""

from __future__ import annotations

import contextlib

import pytest
import torch

from lmexp.runtime.device import device_name, job_device, needs_slot, resolve_device


def test_auto_without_several_gpus_takes_no_slot(tmp_path) -> None:
    with job_device("auto", tmp_path) as (device, slot):
        expected = "cuda" if torch.cuda.is_available() else "cpu"
        assert device.type == expected
        assert slot is None
    assert torch.cuda.device_count() > 1 or not any(tmp_path.iterdir())  # no lock file made


def test_explicit_cpu_is_honoured(tmp_path) -> None:
    with job_device("cpu", tmp_path) as (device, slot):
        assert (device, slot) == (torch.device("cpu"), None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_request_without_cuda_fails_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"device='cuda:1' but CUDA is not available.*device=auto"):
        resolve_device("cuda:1")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_two_auto_jobs_get_different_gpus(tmp_path) -> None:
    with job_device("auto", tmp_path) as (first, a), job_device("auto", tmp_path) as (second, b):
        assert a != b and first != second
        assert torch.cuda.current_device() == b  # the latest claim set the current device
    with job_device("cuda:1", tmp_path) as (pinned, slot):  # explicit: no lock, no wait
        assert (pinned, slot) == (torch.device("cuda", 1), None)


@pytest.mark.parametrize(
    ("name", "gpus", "per_gpu", "claims"),
    [
        ("auto", 0, 4, False),  # no GPU: nothing to share
        ("auto", 1, 1, False),  # one GPU, one job each: every job takes cuda:0 anyway
        ("auto", 1, 9, True),  # one GPU, nine jobs at most: a tenth waits
        ("auto", 2, 1, True),  # several GPUs: spread the jobs
        ("cuda:0", 2, 4, False),  # an explicit device is the caller's choice
        ("cpu", 2, 1, False),
    ],
)
def test_when_a_job_holds_a_gpu_slot(name, gpus, per_gpu, claims) -> None:
    assert needs_slot(name, gpus, per_gpu) is claims


def test_packed_jobs_on_faked_gpus_get_slots_and_set_the_device(tmp_path, monkeypatch) -> None:
    # Two GPUs, two jobs per GPU, as the CUDA runtime would report them; set_device recorded.
    current: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(job_device("auto", tmp_path, jobs_per_gpu=2)) for _ in range(4)]
        assert [gpu for _, gpu in held] == [0, 1, 0, 1] == current
        assert [str(device) for device, _ in held] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert len(list(tmp_path.iterdir())) == 4  # one lock file per slot, all released


def test_device_name_names_the_cpu() -> None:
    assert device_name(torch.device("cpu"))


@pytest.mark.skipif(
    getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    reason="checks the no-MPS message",
)
def test_mps_request_without_mps_fails_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"device='mps' but this torch has no usable MPS.*cpu"):
        resolve_device("mps")


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch) -> None:
    import lmexp.runtime.device as device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(device, "mps_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_mps_is_a_device_choice() -> None:
    from lmexp.config import TrainConfig

    assert TrainConfig(model=None, device="mps").device == "mps"
