"""Which device a job gets: explicit choices are honoured, `auto` shares several GPUs out."""

from __future__ import annotations

import pytest
import torch

from lmexp.runtime.device import job_device, resolve_device


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
