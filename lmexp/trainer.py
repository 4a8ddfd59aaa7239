"""The training loop: truncated BPTT over contiguous streams, clipping, evaluation and budgets.

It knows nothing about Hydra or files other than through the callbacks it is given, and never
branches on the architecture: every model has `forward(tokens, state)` and `init_state(batch)`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm

from lmexp.config import TrainerConfig
from lmexp.data.batching import bptt_windows, num_windows
from lmexp.device import synchronize
from lmexp.metrics import perplexity
from lmexp.models.base import LanguageModel, State
from lmexp.progress import make_progress

log = logging.getLogger(__name__)


def evaluate(model: LanguageModel, streams: torch.Tensor, seq_len: int) -> tuple[float, int]:
    """Summed NLL and number of predicted tokens over a whole batchified split.

    The hidden state starts at zero and is carried across windows, exactly as in training, so
    every stream is read as one long sequence. Dropout is off; training mode is restored after.
    """
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=streams.device)
    count = 0
    with torch.inference_mode():
        state = model.init_state(streams.size(0), streams.device)
        for inputs, targets in bptt_windows(streams, seq_len):
            logits, state = model(inputs, state)  # (B, T, V)
            nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
            total += nll.double()
            count += targets.numel()
    model.train(was_training)
    return total.item(), count


@dataclass
class Budget:
    """Stop conditions; the first one reached ends the run."""

    max_steps: int | None
    max_tokens: int | None
    max_seconds: float | None

    @classmethod
    def from_config(cls, cfg: TrainerConfig, steps_per_epoch: int) -> Budget:
        caps = [cfg.max_steps] if cfg.max_steps is not None else []
        if cfg.max_epochs is not None:
            caps.append(max(1, math.ceil(cfg.max_epochs * steps_per_epoch)))
        seconds = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
        return cls(min(caps) if caps else None, cfg.max_tokens, seconds)

    def reached(self, step: int, tokens: int, elapsed_s: float) -> str | None:
        """The name of the budget that is used up, or None."""
        if self.max_steps is not None and step >= self.max_steps:
            return "max_steps"
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return "max_tokens"
        if self.max_seconds is not None and elapsed_s >= self.max_seconds:
            return "max_minutes"
        return None


def eval_points(steps_per_epoch: int, every: float) -> set[int]:
    """Steps within an epoch (1-based) after which to evaluate; always includes the epoch end."""
    n_points = max(1, math.floor(1.0 / every + 1e-9))
    points = {max(1, round(k * every * steps_per_epoch)) for k in range(1, n_points + 1)}
    return {min(p, steps_per_epoch) for p in points} | {steps_per_epoch}


@dataclass
class EvalPoint:
    """What the loop reports at each evaluation (one `metrics.csv` row)."""

    row: dict[str, float | int]
    improved: bool
    stop_reason: str | None


@dataclass
class FitState:
    """Counters that describe how far training got (and what a resume needs)."""

    epoch: int = 0  # 0-based index of the current epoch
    step: int = 0  # optimizer steps so far
    tokens: int = 0  # training tokens so far
    best_val_ppl: float = math.inf
    best_epoch: float | None = None
    stop_reason: str | None = None  # the budget that ended the run, or "diverged"
    history: list[dict[str, float | int]] = field(default_factory=list)


class Trainer:
    """Runs epochs of truncated BPTT and calls `on_eval` with a metrics row at each eval point."""

    def __init__(
        self,
        model: LanguageModel,
        optimizer: torch.optim.Optimizer,
        lr_for_epoch: Callable[[int], float],
        train_streams: torch.Tensor,
        valid_streams: torch.Tensor,
        seq_len: int,
        cfg: TrainerConfig,
        on_eval: Callable[[EvalPoint], None],
    ) -> None:
        self.model, self.optimizer, self.lr_for_epoch = model, optimizer, lr_for_epoch
        self.train_streams, self.valid_streams, self.seq_len = train_streams, valid_streams, seq_len
        self.cfg, self.on_eval = cfg, on_eval
        self.device = train_streams.device
        self.steps_per_epoch = num_windows(train_streams, seq_len)
        self.budget = Budget.from_config(cfg, self.steps_per_epoch)
        self.points = eval_points(self.steps_per_epoch, cfg.eval_every)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.state = FitState()

    def fit(self) -> FitState:
        """Train until a budget is used up; the last step is always followed by an evaluation."""
        self.start = time.monotonic()
        self.eval_seconds = 0.0
        bar = make_progress(self._planned_tokens(), self.cfg.progress, desc="train")
        try:
            while not self._run_epoch(bar):
                self.state.epoch += 1
        finally:
            bar.close()
        return self.state

    def _planned_tokens(self) -> int | None:
        """Training tokens the budgets allow, for the progress bar's total and ETA."""
        per_step = self.train_streams.size(0) * self.seq_len
        caps = [self.budget.max_tokens]
        if self.budget.max_steps is not None:
            caps.append(self.budget.max_steps * per_step)
        known = [c for c in caps if c is not None]
        return min(known) if known else None

    def _run_epoch(self, bar: tqdm) -> bool:
        """One pass over the training streams; returns True when the run must stop."""
        lr = self.lr_for_epoch(self.state.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        hidden = self.model.init_state(self.train_streams.size(0), self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        epoch_tokens, epoch_start, eval_in_epoch = 0, time.monotonic(), 0.0
        windows = bptt_windows(self.train_streams, self.seq_len)
        for step_in_epoch, (inputs, targets) in enumerate(windows, start=1):
            hidden = self._train_step(inputs, targets, hidden, loss_sum)
            epoch_tokens += targets.numel()
            self.state.step += 1
            self.state.tokens += targets.numel()
            bar.update(targets.numel())
            reason = self.budget.reached(
                self.state.step, self.state.tokens, time.monotonic() - self.start
            )
            if step_in_epoch in self.points or reason is not None:
                synchronize(self.device)
                elapsed = time.monotonic() - epoch_start
                train = (loss_sum.item(), epoch_tokens, elapsed - eval_in_epoch)
                point = self._evaluate(step_in_epoch, lr, train, epoch_start, reason)
                eval_in_epoch += point.row["eval_time_s"]
                bar.set_postfix(val_ppl=f"{point.row['val_ppl']:.1f}")
                if point.stop_reason is not None:
                    self.state.stop_reason = point.stop_reason
                    return True
        return False

    def _train_step(
        self, inputs: torch.Tensor, targets: torch.Tensor, hidden: State, loss_sum: torch.Tensor
    ) -> State:
        # Truncated BPTT: keep the state's values across windows but cut its graph, so memory
        # and compute stay bounded by one window.
        hidden = self.model.detach_state(hidden)
        logits, hidden = self.model(inputs, hidden)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_norm is not None:
            # Recurrent nets have exploding gradients; the seed clips the global norm at 0.25.
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip_norm)
        self.optimizer.step()
        # Accumulate on the device (no host sync per step): token-weighted sum of the NLL.
        loss_sum += loss.detach().double() * targets.numel()
        return hidden

    def _evaluate(
        self,
        step_in_epoch: int,
        lr: float,
        train: tuple[float, int, float],
        epoch_start: float,
        reason: str | None,
    ) -> EvalPoint:
        train_nll, train_tokens, train_seconds = train
        t0 = time.monotonic()
        val_nll, val_tokens = evaluate(self.model, self.valid_streams, self.seq_len)
        synchronize(self.device)
        eval_seconds = time.monotonic() - t0
        self.eval_seconds += eval_seconds
        val_ppl = perplexity(val_nll, val_tokens)
        train_loss = train_nll / train_tokens
        epoch = round(self.state.epoch + step_in_epoch / self.steps_per_epoch, 4)
        improved = val_ppl < self.state.best_val_ppl
        if improved:
            self.state.best_val_ppl, self.state.best_epoch = val_ppl, epoch
        if reason is None and not (math.isfinite(train_loss) and math.isfinite(val_ppl)):
            reason = "diverged"
        now = time.monotonic()
        row = {
            "epoch": epoch,
            "step": self.state.step,
            "tokens": self.state.tokens,
            "wall_time_s": round(now - self.start, 3),
            "epoch_time_s": round(now - epoch_start, 3),
            "lr": lr,
            "train_loss": train_loss,
            "train_ppl": perplexity(train_nll, train_tokens),
            "val_loss": val_nll / val_tokens,
            "val_ppl": val_ppl,
            "best_val_ppl": self.state.best_val_ppl,
            "tokens_per_s": round(train_tokens / max(train_seconds, 1e-9), 1),
            "train_time_s": round(train_seconds, 3),
            "eval_time_s": round(eval_seconds, 3),
        }
        self.state.history.append(row)
        point = EvalPoint(row=row, improved=improved, stop_reason=reason)
        self.on_eval(point)
        return point
