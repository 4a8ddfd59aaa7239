"""What a training job writes into its run directory as it goes: rows, checkpoints, summary.

The metrics file (`RunDir.metrics`) gets a row per evaluation (flushed), the best checkpoint
the lowest validation perplexity, the last checkpoint everything a resume needs (model,
optimizer, loop position, carried hidden state, every RNG state), and the summary the headline
numbers so far.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
from pathlib import Path
from typing import Any

import torch

from lmexp.config import TrainConfig
from lmexp.data import Vocab
from lmexp.loggers import Trackers
from lmexp.models.base import LanguageModel
from lmexp.pack import lockstep
from lmexp.run import signals
from lmexp.run.checkpoint import load_checkpoint, load_state, save_checkpoint
from lmexp.run.rundir import RunDir
from lmexp.run.summary import Summary
from lmexp.run.timings import Phases
from lmexp.runtime.device import rng_state
from lmexp.training.metrics import MetricsWriter
from lmexp.training.trainer import COLUMNS, EvalPoint, Trainer

log = logging.getLogger(__name__)


def vocab_digest(vocab: Vocab) -> str:
    """A short fingerprint of the vocabulary, so a resume can tell it is reading the same data."""
    return hashlib.sha256("\n".join(vocab.itos).encode("utf-8")).hexdigest()[:16]


class RunFiles:
    """Writes the run directory as the trainer reports evaluation points and checkpoints."""

    def __init__(
        self,
        out_dir: Path,
        model: LanguageModel,
        optimizer: torch.optim.Optimizer,
        summary: Summary,
        config: TrainConfig,
        vocab: Vocab,
        phases: Phases | None = None,
        trackers: Trackers | None = None,
    ) -> None:
        self.out_dir, self.model, self.optimizer, self.summary = out_dir, model, optimizer, summary
        self.phases = phases or Phases()
        self.trackers = trackers or Trackers()
        self.train_config, self.vocab = config, vocab
        self.device = next(model.parameters()).device
        self._next_sample = config.trainer.sample_every or 0.0
        self.config = dataclasses.asdict(config)
        self.vocab_sha256 = vocab_digest(vocab)
        self.run = RunDir(out_dir)
        self.metrics = MetricsWriter(self.run.metrics, COLUMNS)

    def _payload(self, **extra: Any) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "config": self.config,
            "vocab_sha256": self.vocab_sha256,
            **extra,
        }

    def on_eval(self, point: EvalPoint) -> None:
        row = point.row
        self.phases.add("eval_s", float(row["eval_time_s"]))
        self.metrics.write(row)
        self.trackers.log_eval(row)
        if point.improved:
            best = self._payload(epoch=row["epoch"], step=row["step"], val_ppl=row["val_ppl"])
            with self.phases.phase("checkpoint_s"):
                save_checkpoint(best, self.run.best)
        self._maybe_sample(float(row["epoch"]))  # after best.pt: "best so far" includes this one
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

    def _maybe_sample(self, epoch: float) -> None:
        """trainer.sample_every=N: text at the first evaluation at or after every N epochs."""
        every = self.train_config.trainer.sample_every
        if not every or epoch + 1e-9 < self._next_sample:
            return
        from lmexp.inspect.generate import sample_during_training  # inspect builds on run

        model, source = self._sampling_model()
        path = sample_during_training(
            model, self.vocab, self.train_config, self.device, self.run.root, epoch, source
        )
        log.info("samples at epoch %g (%s):\n%s", epoch, path, path.read_text(encoding="utf-8"))
        self._next_sample = (math.floor(epoch / every + 1e-9) + 1) * every

    def _sampling_model(self) -> tuple[LanguageModel, str]:
        """The weights to sample from: best.pt's (a copy: training goes on with its own), or
        the current ones (`trainer.sample_from=current`, or no best checkpoint yet)."""
        if self.train_config.trainer.sample_from != "best" or not self.run.best.exists():
            return self.model, "current"
        best = copy.deepcopy(self.model)
        payload = load_checkpoint(self.run.best, map_location=self.device)
        load_state(best, payload, "model", self.run.best)
        return best, f"best (epoch {float(payload.get('epoch', 0)):g})"

    def on_checkpoint(self, trainer: Trainer) -> None:
        """The last checkpoint: the trainer's exact position and every RNG state, atomically."""
        with self.phases.phase("checkpoint_s"):
            self._save_last(trainer)

    def on_step(self, trainer: Trainer) -> None:
        """After a preemption signal (signals.py): save the exact position, then stop the job."""
        name = signals.preemption_requested()
        if name is not None:
            log.warning(
                "%s: saving checkpoints/last.pt at step %d and stopping", name, trainer.state.step
            )
            self.on_checkpoint(trainer)
            raise signals.JobPreempted(name)

    def _save_last(self, trainer: Trainer) -> None:
        snapshot = trainer.snapshot()
        member = lockstep.current()  # a packed job saves its own stream, not the process's
        payload = self._payload(
            optimizer=self.optimizer.state_dict(),
            trainer=snapshot,
            rng=rng_state(member.generator if member is not None else None),
            epoch=snapshot["fit"]["epoch"],
            step=snapshot["fit"]["step"],
            metrics_csv=self.metrics.text,  # what a resume puts back, exactly (run/resume.py)
        )
        save_checkpoint(payload, self.run.last)

    def close(self) -> None:
        self.metrics.close()
