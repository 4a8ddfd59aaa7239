"""The used-by command as a real Hydra multirun subprocess, with tiny sizes and budget."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import pytest

from lmexp.training.trainer import COLUMNS
from tests.conftest import TINY_OVERRIDES, run_module

pytestmark = pytest.mark.slow

TINY = TINY_OVERRIDES


def _train(args: list[str], data_dir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_module("lmexp.train", args, data_dir, timeout)


def test_architecture_by_optimizer_sweep_leaves_six_complete_jobs(
    tmp_path, data_dir, small_corpus
) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", "model=rnn,gru,transformer", "optim=sgd,adam", *TINY, f"hydra.sweep.dir={sweep}"]
    args += ["data=text", f"data.root={small_corpus}"]  # the sweep, not PTB: 16x less to evaluate
    proc = _train(args, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [p.name for p in jobs] == [
        "0-rnn-sgd",
        "1-rnn-adam",
        "2-gru-sgd",
        "3-gru-adam",
        "4-transformer-sgd",
        "5-transformer-adam",
    ]
    for job in jobs:
        with (job / "metrics.csv").open() as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        assert tuple(reader.fieldnames) == COLUMNS
        assert len(rows) >= 1
        for row in rows:
            assert math.isfinite(float(row["train_ppl"])) and math.isfinite(float(row["val_ppl"]))
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed", summary
        assert summary["best_val_ppl"] == min(float(r["val_ppl"]) for r in rows)
        model, optim = job.name.split("-")[1:]
        assert f"model={model}" in summary["command"] and f"optim={optim}" in summary["command"]
        assert (job / ".hydra" / "overrides.yaml").exists()
        assert (job / "checkpoints" / "best.pt").exists() and (job / "train.log").exists()
    assert (sweep / "multirun.yaml").exists()


def test_help_lists_the_config_groups(data_dir) -> None:
    proc = _train(["--help"], data_dir, timeout=120)
    assert proc.returncode == 0
    for line in (
        "model: custom, gru, lstm, rnn, rnn_attn, transformer",
        "optim: adam, sgd, sgd_schedule",
        "data: ptb, ptb_char, text, text8",
        "trainer: default",
        "precision: fp32 | bf16",  # a choice key and its values
        "model.impl: scratch | fused",  # the default architecture's (lstm)
    ):
        assert line in proc.stdout, proc.stdout
    assert "schema/model" not in proc.stdout and "_base" not in proc.stdout  # internals hidden


def test_help_shows_the_chosen_architectures_keys_only(data_dir) -> None:
    out = _train(["model=transformer", "--help"], data_dir, timeout=120).stdout
    assert "model.norm: pre | post" in out and "model.impl" not in out
    assert "  num_heads: 4" in out and "emb_size" not in out


def test_bad_override_fails_before_training(tmp_path, data_dir) -> None:
    proc = _train(["model.dropout=1.5", f"hydra.run.dir={tmp_path / 'run'}"], data_dir, 120)
    assert proc.returncode != 0
    assert "model.dropout=1.5 must be in [0, 1)" in proc.stderr
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_a_text_corpus_of_user_files_trains_with_each_tokenizer_and_mode(tmp_path, data_dir):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = (data_dir / "ptb" / "ptb.valid.txt").read_text().splitlines()
    for name, part in (("train", lines[:600]), ("valid", lines[600:700]), ("test", lines[700:800])):
        (corpus / f"{name}.txt").write_text("\n".join(part) + "\n")
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "data=text",
        f"data.root={corpus}",
        "data.tokenizer=word,char,bpe",
        "data.mode=stream,sentences",
        "data.vocab_size=400",
        "data.seq_len=60",
    ]
    proc = _train([*args, *TINY, f"hydra.sweep.dir={sweep}"], data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 6
    seen = []
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text())
        assert summary["status"] == "completed" and math.isfinite(summary["best_val_ppl"])
        info = json.loads((job / "corpus.json").read_text())
        seen.append((info["tokenizer"], info["mode"]))
        assert (job / "tokenizer.json").is_file() == (info["tokenizer"] == "bpe")
        if info["tokenizer"] == "bpe" and info["mode"] == "sentences":
            bpe_sentences = job
    assert sorted(seen) == sorted(
        (t, m) for t in ("word", "char", "bpe") for m in ("stream", "sentences")
    )
    # the BPE run scores and samples with its own saved tokenizer, from <s>
    evaluation = run_module("lmexp.inspect.evaluate", [str(bpe_sentences)], data_dir, 300)
    assert evaluation.returncode in (0, 1), evaluation.stderr[-2000:]
    result = json.loads((bpe_sentences / "evaluation" / "test_best.json").read_text())
    test_ppl = json.loads((bpe_sentences / "summary.json").read_text())["test_ppl"]
    assert result["perplexity"] == pytest.approx(test_ppl, rel=1e-4)
    sample = run_module(
        "lmexp.inspect.generate",
        [str(bpe_sentences), "--prompt", "the company", "--lengths", "5", "--num", "2"],
        data_dir,
        300,
    )
    assert sample.returncode == 0, sample.stderr[-2000:]
    assert "[the company]" in sample.stdout
