"""A real sweep on the GPU: each job's record names the device, its own peak memory, the graph."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import TINY_OVERRIDES, run_module

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_jobs_in_one_process_report_their_own_peak_memory(tmp_path, data_dir) -> None:
    # the basic launcher runs both jobs in one process: the second, 16 units wide, must not
    # inherit the peak of the first, 512 wide
    sweep = tmp_path / "sweep"
    result = run_module(
        "lmexp.train",
        [
            "-m",
            *TINY_OVERRIDES,
            "device=cuda",
            "model=gru",
            "model.hidden_size=512,16",
            f"hydra.sweep.dir={sweep}",
        ],
        data_dir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    wide, narrow = (json.loads((sweep / k / "summary.json").read_text()) for k in ("0", "1"))
    for summary in (wide, narrow):
        assert summary["status"] == "completed", summary.get("error")
        assert summary["device"] == "cuda" or summary["device"].startswith("cuda")
        assert summary["device_name"] == torch.cuda.get_device_name(0)
        assert summary["cuda_graph"] == "captured" and summary["cuda_graph_captures"] >= 1
        assert summary["timings"]["train_s"] > 0
    assert 0 < narrow["peak_gpu_mem_mb"] < wide["peak_gpu_mem_mb"]
