"""One training job from a validated `TrainConfig` to the files of its run directory.

Builds data, model and optimizer, runs the `Trainer`, and owns what lands on disk: `metrics.csv`,
`summary.json`, `vocab.json` and `checkpoints/{best,last}.pt`. Hydra stays in `train.py`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import platform
import subprocess
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

import torch

from lmexp.checkpoint import load_checkpoint, save_checkpoint
from lmexp.config import TrainConfig
from lmexp.data import Corpus, batchify, load_corpus
from lmexp.device import resolve_device, seed_everything
from lmexp.metrics import MetricsWriter, perplexity
from lmexp.models import build_model
from lmexp.models.base import LanguageModel
from lmexp.optim import build_optimizer, lr_at_epoch
from lmexp.summary import Summary
from lmexp.trainer import EvalPoint, FitState, Trainer, evaluate

log = logging.getLogger(__name__)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunFiles:
    """Writes the run directory as the trainer reports evaluation points."""

    def __init__(
        self,
        out_dir: Path,
        model: LanguageModel,
        optimizer: torch.optim.Optimizer,
        summary: Summary,
        config: TrainConfig,
    ) -> None:
        self.out_dir, self.model, self.optimizer = out_dir, model, optimizer
        self.summary, self.config = summary, dataclasses.asdict(config)
        self.ckpt_dir = out_dir / "checkpoints"
        self.metrics = MetricsWriter(out_dir / "metrics.csv")
        self.fit_state: FitState | None = None

    def on_eval(self, point: EvalPoint) -> None:
        row = point.row
        self.metrics.write(row)
        payload = {
            "model": self.model.state_dict(),
            "epoch": row["epoch"],
            "step": row["step"],
            "val_ppl": row["val_ppl"],
            "config": self.config,
        }
        if point.improved:
            save_checkpoint(payload, self.ckpt_dir / "best.pt")
        payload["optimizer"] = self.optimizer.state_dict()
        save_checkpoint(payload, self.ckpt_dir / "last.pt")
        log.info(
            "epoch %.2f step %d | lr %.4g | train ppl %.2f | val ppl %.2f | %.0f tok/s",
            row["epoch"],
            row["step"],
            row["lr"],
            row["train_ppl"],
            row["val_ppl"],
            row["tokens_per_s"],
        )
        self.summary.update(
            best_val_ppl=row["best_val_ppl"],
            final_train_ppl=row["train_ppl"],
            final_val_ppl=row["val_ppl"],
            epochs=row["epoch"],
            steps=row["step"],
            tokens=row["tokens"],
            wall_time_s=row["wall_time_s"],
        )


def _test_of_best(
    model: LanguageModel, corpus: Corpus, cfg: TrainConfig, out_dir: Path, device: torch.device
) -> float | None:
    """Test perplexity of the checkpoint chosen on validation (computed once, at the end)."""
    best = out_dir / "checkpoints" / "best.pt"
    if not best.exists():
        return None
    model.load_state_dict(load_checkpoint(best, map_location=device)["model"])
    streams = batchify(corpus.test, cfg.data.eval_batch_size or cfg.data.batch_size).to(device)
    nll, count = evaluate(model, streams, cfg.data.seq_len)
    return perplexity(nll, count)


def _fit(cfg: TrainConfig, out_dir: Path, summary: Summary) -> tuple[FitState, float | None]:
    device = resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    corpus = load_corpus(cfg.data)
    corpus.vocab.to_json(out_dir / "vocab.json")
    model = build_model(cfg.model, len(corpus.vocab)).to(device)
    optimizer = build_optimizer(model.parameters(), cfg.optim)
    eval_batch = cfg.data.eval_batch_size or cfg.data.batch_size
    train = batchify(corpus.train, cfg.data.batch_size).to(device)
    valid = batchify(corpus.valid, eval_batch).to(device)
    log.info("output dir %s", out_dir)
    log.info(
        "device %s (%d CPU threads), vocab %d, %s parameters",
        device,
        torch.get_num_threads(),
        len(corpus.vocab),
        f"{model.num_params():,}",
    )
    summary.update(
        device=str(device),
        params=model.num_params(),
        vocab_size=len(corpus.vocab),
        data_tokens=corpus.counts(),
    )
    files = RunFiles(out_dir, model, optimizer, summary, cfg)
    trainer = Trainer(
        model,
        optimizer,
        lambda e: lr_at_epoch(cfg.optim, e),
        train,
        valid,
        cfg.data.seq_len,
        cfg.trainer,
        files.on_eval,
    )
    try:
        state = trainer.fit()
    finally:
        files.metrics.close()
    stop = state.history[-1] if state.history else {}
    diverged = not math.isfinite(stop.get("val_ppl", math.inf)) or not math.isfinite(
        stop.get("train_loss", math.inf)
    )
    test_ppl = None if diverged else _test_of_best(model, corpus, cfg, out_dir, device)
    return state, test_ppl


def run(cfg: TrainConfig, out_dir: Path, command: str) -> float:
    """Train one job into `out_dir` and return its best validation perplexity (+inf if none).

    The objective is never NaN: an Optuna sweeper crashes on NaN (hydra#2237).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    summary = Summary(
        out_dir / "summary.json",
        command=command,
        seed=cfg.seed,
        device=cfg.device,
        started_at=_now(),
        torch_version=torch.__version__,
        python=platform.python_version(),
        git_commit=_git_commit(),
        best_val_ppl=None,
        best_epoch=None,
        final_train_ppl=None,
        final_val_ppl=None,
        test_ppl=None,
        params=None,
        wall_time_s=0.0,
    )
    try:
        state, test_ppl = _fit(cfg, out_dir, summary)
    except Exception as exc:
        summary.update(
            status="failed",
            error_type=type(exc).__name__,
            error=str(exc),
            traceback=traceback.format_exc(),
            ended_at=_now(),
            wall_time_s=round(time.monotonic() - started, 3),
        )
        log.exception("job failed: %s", exc)
        raise
    last = state.history[-1]
    status = (
        "completed"
        if math.isfinite(last["val_ppl"]) and math.isfinite(last["train_loss"])
        else "diverged"
    )
    summary.update(
        status=status,
        best_val_ppl=state.best_val_ppl,
        best_epoch=state.best_epoch,
        test_ppl=test_ppl,
        stop_reason=state.stop_reason,
        ended_at=_now(),
        wall_time_s=round(time.monotonic() - started, 3),
    )
    log.info(
        "%s: best val ppl %.2f at epoch %s, test ppl %s",
        status,
        state.best_val_ppl,
        state.best_epoch,
        "n/a" if test_ppl is None else f"{test_ppl:.2f}",
    )
    best = state.best_val_ppl
    return best if math.isfinite(best) else math.inf
