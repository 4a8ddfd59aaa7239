"""The `trainer` config group's schema: budgets, clipping and the evaluation cadence.

Beside the loop that reads it (`trainer.py`, `budget.py`), as `models/schema.py` is beside the
architectures; `lmexp/config.py` only composes the root.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from lmexp.run import keys
from lmexp.validation import check_choices, require_finite, require_positive

PROGRESS_MODES = ("auto", "on", "off")


@dataclass
class TrainerConfig:
    """Budgets (the first one reached ends the run), clipping and evaluation cadence."""

    max_epochs: float | None = 1.0  # may be fractional: 0.5 = half an epoch
    max_steps: int | None = None  # optimizer steps
    max_tokens: int | None = None  # training tokens (batch_size * seq_len per full window)
    max_sequences: int | None = None  # training windows (batch_size a step): CMU 10-601 HW7
    max_minutes: float | None = None  # wall-clock budget per job, evaluation included
    clip_norm: float | None = 0.25  # global gradient-norm clip; null turns clipping off
    # fraction of an epoch between evaluations (1.0: once per epoch); null: none by epoch, only
    # every eval_every_budget of the step budget (CMU 10-601 HW7: ten in all) and at the end
    eval_every: float | None = 0.25
    eval_every_budget: float | None = None  # also every this fraction of the step budget (0.1)
    checkpoint_every: int | None = 500  # steps between checkpoints/last.pt (also after each eval)
    divergence_ppl: float | None = 1.0e5  # a train/val perplexity above it ends the run: diverged
    progress: str = "auto"  # auto (a bar only on a terminal) | on | off
    # the training loss's average: token (every real target weighs the same) | sequence (each
    # row's mean, then their mean: CMU 10-601 HW7's, for sentence batches of unequal length) |
    # time_sum (each row's sum over its time steps, then the mean over rows: Zaremba et al.
    # 2014's code and TensorFlow's PTB tutorial, whose lr 1 and clip norm 5 are on this scale)
    loss_average: str = "token"
    # the final test pass scored again as the IFT6135 text reads the test set: one sequence
    # (data.eval_batch_size=1), every token after the first, its state carried throughout;
    # summary.json's test_ppl_whole beside test_ppl (eval_batch_size streams, tail dropped)
    test_whole: bool = False
    # the checkpoint the final test pass scores: best (lowest validation perplexity, lmexp's and
    # IFT6135 A2's) | last (the model as training left it: Zaremba et al. 2014's protocol)
    test_checkpoint: str = "best"
    sample_every: float | None = None  # epochs between samples written during training
    # LING 574 HW7 prints them from the best model so far, 10 of them, at a temperature;
    # sample_from=current sample_count=5 is lmexp's earlier behaviour
    sample_from: str = "best"  # best (best.pt so far) | current (the weights as they are)
    sample_count: int = 10  # samples per file
    sample_temperature: float = 1.0  # softmax temperature; lower is more conservative

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "progress": PROGRESS_MODES,
        "sample_from": ("best", "current"),
        "loss_average": ("token", "sequence", "time_sum"),
        "test_checkpoint": ("best", "last"),
    }

    def __post_init__(self) -> None:
        require_positive(
            "trainer",
            sample_every=self.sample_every,
            sample_count=self.sample_count,
            sample_temperature=self.sample_temperature,
            max_epochs=self.max_epochs,
            max_steps=self.max_steps,
            max_tokens=self.max_tokens,
            max_sequences=self.max_sequences,
            max_minutes=self.max_minutes,
            clip_norm=self.clip_norm,
            checkpoint_every=self.checkpoint_every,
            divergence_ppl=self.divergence_ppl,
        )
        require_finite("trainer", clip_norm=self.clip_norm)
        budgets = keys.budgets()  # the trainer's keys of role budget (lmexp/run/keys.py)
        values = [getattr(self, path.removeprefix("trainer.")) for path in budgets]
        if all(v is None or math.isinf(v) for v in values):
            listed = f"{', '.join(budgets[:-1])} or {budgets[-1]}"
            raise ValueError(f"no finite budget: set at least one of {listed}")
        if self.eval_every_budget is not None and not 0.0 < self.eval_every_budget <= 1.0:
            raise ValueError(
                f"trainer.eval_every_budget={self.eval_every_budget} must be in (0, 1]: "
                "a fraction of the step budget (0.1: every 10 %)"
            )
        if self.eval_every is None and self.eval_every_budget is None:
            raise ValueError(
                "trainer.eval_every=null needs trainer.eval_every_budget (e.g. 0.1): with "
                "neither, the run would be evaluated only once, at its end"
            )
        if self.eval_every is not None and not 0.0 < self.eval_every <= 1.0:
            raise ValueError(
                f"trainer.eval_every={self.eval_every} must be in (0, 1]: a fraction of an epoch"
            )
        check_choices("trainer", self, self.CHOICES)
