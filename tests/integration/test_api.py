"""The Python API: compose and fit from a notebook, the tidy curves frame, a user's own model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

import lmexp
from analysis.collect import collect
from tests.conftest import EXAMPLES, REPO, require_data_dir, small_run_args

pytestmark = pytest.mark.slow


@pytest.fixture
def data_env(monkeypatch):
    monkeypatch.setenv("LMEXP_DATA_DIR", str(require_data_dir()))


def test_compose_validates_like_the_command_line(data_env):
    cfg = lmexp.compose(["model=gru", "optim=adam", "trainer.max_steps=5"])
    assert (cfg.model.name, cfg.optim.name, cfg.trainer.max_steps) == ("gru", "adam", 5)
    with pytest.raises(ValueError, match=r"model.dropout=1.5 must be in \[0, 1\)"):
        lmexp.compose(["model.dropout=1.5"])


def test_fit_writes_a_run_the_report_and_load_read(small_corpus, tmp_path, data_env):
    overrides = [*small_run_args(small_corpus), "trainer.max_steps=30"]
    run_dir = tmp_path / "notebook" / "0-gru-adam"
    cfg = lmexp.compose(overrides)
    summary = lmexp.fit(cfg, run_dir, overrides=overrides)
    assert summary["status"] == "completed" and summary["test_ppl"] > 0
    assert "trainer.max_steps=30" in summary["command"]

    # the analysis reads it like a run of the command line, hyper-parameters included
    (job,) = collect([tmp_path / "notebook"]).jobs.to_dict("records")
    assert (job["model"], job["optim"], job["lr"]) == ("gru", "adam", 0.001)
    assert job["status"] == "completed"
    # from lmexp's record: no Hydra here, so no faked .hydra/, and no number read off the
    # directory's name (it is a single run, whatever it is called)
    assert not (run_dir / ".hydra").exists() and (run_dir / ".lmexp" / "config.json").is_file()
    assert math.isnan(job["job_num"]) and "trainer.max_steps=30" in job["overrides"]
    # and lmexp.load scores with it
    assert math.isfinite(lmexp.load(run_dir).log_prob("the company said"))

    # the same directory again is refused, as on the command line; resume=true skips it
    with pytest.raises(Exception, match="already holds a run"):
        lmexp.fit(cfg, run_dir)
    again = lmexp.fit(lmexp.compose([*overrides, "resume=true"]), run_dir)
    assert again["test_ppl"] == summary["test_ppl"]


def test_a_users_own_model_trains_from_the_command_line(small_corpus, tmp_path):
    """docs/models.md's example: docs/examples/bigram.py, built by model=custom."""
    run_dir = tmp_path / "bigram"
    args = [
        *small_run_args(small_corpus),
        "model=custom",
        "model._target_=bigram.BigramLM",
        "model.hidden_size=32",
        "+model.kwargs.init_range=0.05",
        "trainer.max_steps=30",
        f"hydra.run.dir={run_dir}",
    ]
    args = [a for a in args if not a.startswith(("model.emb_size", "model.dropout"))]
    env = {
        **os.environ,
        "LMEXP_DATA_DIR": str(require_data_dir()),
        "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "lmexp.train", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["model_label"] == "Custom"
    assert summary["params"] == 2 * 32 * summary["vocab_size"] + summary["vocab_size"]  # emb, out

    # a class that is not a LanguageModel: one line, before anything is written
    bad = [
        a if not a.startswith("model._target_") else "model._target_=bigram.Tensor" for a in args
    ]
    refused = subprocess.run(
        [sys.executable, "-m", "lmexp.train", *bad[:-1], f"hydra.run.dir={tmp_path / 'bad'}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "is not a lmexp.models.LanguageModel subclass" in refused.stderr
    assert not (tmp_path / "bad").exists()
