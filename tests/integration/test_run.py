"""One job in-process (config -> run -> files): determinism, the command, data errors."""

from __future__ import annotations

import csv
import json
import socket

import pytest

from lmexp.config import TrainConfig
from lmexp.data import DataError
from lmexp.data.schema import DataConfig
from lmexp.job.runner import run
from lmexp.models import model_config_from_dict
from lmexp.training.optim import OptimConfig
from lmexp.training.schema import TrainerConfig

pytestmark = pytest.mark.slow

PPL_COLUMNS = ("train_loss", "train_ppl", "val_loss", "val_ppl", "best_val_ppl")


def _config(data_root: str, model: str = "lstm") -> TrainConfig:
    return TrainConfig(
        data=DataConfig(root=data_root, batch_size=8, seq_len=12),
        model=model_config_from_dict(  # the keys this architecture has
            {
                "name": model,
                "emb_size": 16,
                "hidden_size": 16,
                "num_layers": 1,
                "dropout": 0.2,
                "num_heads": 2,
                "ff_size": 32,
            }
        ),
        optim=OptimConfig(name="sgd", lr=1.0),
        trainer=TrainerConfig(max_epochs=None, max_steps=12, eval_every=1.0, progress="off"),
        seed=7,
        threads=1,
    )


def _ppl_columns(run_dir) -> list[list[str]]:
    with (run_dir / "metrics.csv").open() as f:
        return [[row[c] for c in PPL_COLUMNS] for row in csv.DictReader(f)]


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_same_seed_gives_identical_perplexity_columns(tmp_path, data_dir, model) -> None:
    cfg = _config(str(data_dir / "ptb"), model)
    best_a = run(cfg, tmp_path / "a", "cmd")
    best_b = run(cfg, tmp_path / "b", "cmd")
    assert best_a == best_b
    assert _ppl_columns(tmp_path / "a") == _ppl_columns(tmp_path / "b")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["best_val_ppl"] == best_a
    assert summary["test_ppl"] > 1.0 and summary["params"] > 0
    timings = summary["timings"]  # where the wall time went, phase by phase
    assert {"data_s", "build_s", "train_s", "eval_s", "checkpoint_s", "test_s"} <= set(timings)
    assert all(v >= 0 for v in timings.values()) and timings["train_s"] > 0
    # end to end: everything wall_time_s (training) leaves out is in total_time_s
    phases = sum(timings.values())
    assert summary["total_time_s"] == pytest.approx(phases, abs=0.5)
    assert summary["total_time_s"] > summary["wall_time_s"] + timings["data_s"]
    assert summary["device_name"] and "cuda_graph" not in summary  # CPU: nothing captured
    assert "peak_gpu_mem_mb" not in summary


def test_a_cuda_graph_insisted_on_without_cuda_fails_before_any_data(tmp_path) -> None:
    cfg = _config("/nonexistent/ptb")  # never read: the check comes first
    cfg.device, cfg.cuda_graph = "cpu", "on"
    with pytest.raises(ValueError, match=r"cuda_graph=on cannot capture: device is cpu"):
        run(cfg, tmp_path / "a", "cmd")


def test_missing_data_offline_fails_with_a_clear_message(tmp_path) -> None:
    with socket.socket() as s:  # a loopback port where nothing listens: "no network"
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _config(str(tmp_path / "empty"))
    cfg.data.mirrors = [f"http://127.0.0.1:{port}/"]
    with pytest.raises(DataError, match="ptb.train.txt") as err:
        run(cfg, tmp_path / "job", "cmd")
    assert str(tmp_path / "empty") in str(err.value)
    summary = json.loads((tmp_path / "job" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error_type"] == "DataError"
    assert not (tmp_path / "job" / "metrics.csv").exists()
