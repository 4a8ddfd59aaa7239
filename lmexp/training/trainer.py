"""The training loop: truncated BPTT over contiguous streams (or padded sentence batches with a
loss mask), clipping, evaluation, divergence.

It knows nothing about Hydra or files: rows and checkpoints leave through the callbacks it is
given, and `snapshot`/`restore` expose exactly what a mid-epoch resume needs. It never branches
on the architecture: every model has `forward(tokens, state)` and `init_state(batch)`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from lmexp.data import Batches, as_batches
from lmexp.models.base import LanguageModel, State
from lmexp.runtime.device import synchronize
from lmexp.runtime.precision import autocast
from lmexp.training.budget import Budget, budget_points, eval_points
from lmexp.training.evaluation import IGNORE, evaluate, ignore_padding
from lmexp.training.graph import GraphedStep
from lmexp.training.losses import linear_cross_entropy
from lmexp.training.metrics import perplexity
from lmexp.training.progress import make_progress, pause
from lmexp.training.schema import TrainerConfig

# A training step: (inputs, targets, carried state, padding mask, real targets) -> (state, loss)
StepFn = Callable[
    [torch.Tensor, torch.Tensor, State, torch.Tensor | None, int], tuple[State, torch.Tensor]
]

# A non-finite training loss is looked for this often (one host sync), besides every evaluation.
FINITE_CHECK_EVERY = 50


@dataclass(frozen=True)
class Metric:
    """One column of the row the loop reports at each evaluation (`metrics.csv`, the trackers).

    This table and `_evaluate`'s row are the one place a column is defined: the CSV's header,
    both trackers and the analysis's curves take every column from here.
    """

    name: str
    # the trackers' name for it, grouped by its part before "/" (TensorBoard's tag; MLflow
    # logs it under `name`); None: metrics.csv only (the step, every tracker's own axis, a
    # counter, or one phase's seconds)
    tag: str | None = None


METRICS = (
    Metric("epoch", "progress/epoch"),
    Metric("step"),
    Metric("tokens", "progress/tokens"),
    Metric("sequences"),
    Metric("wall_time_s", "progress/wall_time_s"),
    Metric("epoch_time_s"),
    Metric("lr", "optim/lr"),
    Metric("train_loss", "loss/train"),
    Metric("train_ppl", "ppl/train"),
    Metric("val_loss", "loss/val"),
    Metric("val_ppl", "ppl/val"),
    Metric("best_val_ppl", "ppl/best_val"),
    Metric("tokens_per_s", "speed/tokens_per_s"),
    Metric("train_time_s"),
    Metric("eval_time_s"),
)
COLUMNS = tuple(metric.name for metric in METRICS)  # metrics.csv's header, in this order


@dataclass
class EvalPoint:
    """What the loop reports at each evaluation (one `metrics.csv` row)."""

    row: dict[str, float | int]
    improved: bool
    stop_reason: str | None


@dataclass
class FitState:
    """Counters that describe how far training got."""

    epoch: int = 0  # 0-based index of the current epoch
    step: int = 0  # optimizer steps so far
    tokens: int = 0  # training tokens so far (real tokens: padding is not counted)
    sequences: int = 0  # training sequences so far: rows of every batch (CMU 10-601 HW7's budget)
    elapsed_s: float = 0.0  # wall seconds of earlier sessions of this run (a resumed run)
    best_val_ppl: float = math.inf
    best_epoch: float | None = None
    stop_reason: str | None = None  # the budget that ended the run, or "diverged"
    last_row: dict[str, float | int] | None = None


@dataclass
class EpochProgress:
    """Where training stands inside the current epoch: what a mid-epoch resume restores."""

    step_in_epoch: int = 0
    nll_sum: float = 0.0  # token-weighted training NLL so far this epoch (float64)
    tokens: int = 0
    seconds: float = 0.0  # wall seconds spent in this epoch so far, evaluation included
    eval_seconds: float = 0.0


class Trainer:
    """Runs epochs of truncated BPTT; reports each evaluation to `on_eval` and asks
    `on_checkpoint` to save every `cfg.checkpoint_every` steps and after every evaluation;
    `on_step`, if given, sees the trainer after every step that did not end the run, at a
    point where a checkpoint is exact (a preemption signal saves and stops there)."""

    def __init__(
        self,
        model: LanguageModel,
        optimizer: torch.optim.Optimizer,
        lr_for_epoch: Callable[[int], float],
        train_data: torch.Tensor | Batches,
        valid_data: torch.Tensor | Batches,
        seq_len: int | None,
        cfg: TrainerConfig,
        on_eval: Callable[[EvalPoint], None],
        on_checkpoint: Callable[[Trainer], None] | None = None,
        on_step: Callable[[Trainer], None] | None = None,
        precision: str = "fp32",
        cuda_graph: bool = False,
        judge: Callable[[float], str | None] | None = None,
        step: StepFn | None = None,
    ) -> None:
        """`judge`, if given, sees each evaluation's validation perplexity and may stop the
        run with its reason (a sweep's early stopping: pruning.Judge). `step`, if given, runs
        the training step instead of the trainer's own (the same arguments and result as
        `_step`): a packed job hands its step to its pack (lmexp/pack/lockstep.py)."""
        self.model, self.optimizer, self.lr_for_epoch = model, optimizer, lr_for_epoch
        self.judge = judge
        self.precision = precision
        # fp32 fuses the output layer into the loss; under autocast the two-step path keeps
        # autocast's per-op precision choices (bf16 matmul, fp32 softmax).
        # (a per-sequence average needs each token's loss: the two-step path)
        self.fused_loss = (
            precision == "fp32" and model.has_features and cfg.loss_average != "sequence"
        )
        # stream tensors (B, n) are read in seq_len windows; batches are read as they come
        self.train_data = as_batches(train_data, seq_len)
        self.valid_data = as_batches(valid_data, seq_len)
        self.cfg, self.on_eval, self.on_checkpoint = cfg, on_eval, on_checkpoint
        self.on_step = on_step
        self.device = self.train_data.device
        self.steps_per_epoch = len(self.train_data)
        self.budget = Budget.from_config(cfg, self.steps_per_epoch, self.train_data.batch_size)
        self.points = eval_points(self.steps_per_epoch, cfg.eval_every) if cfg.eval_every else set()
        self.global_points = budget_points(self.budget.max_steps, cfg.eval_every_budget)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.step_fn: StepFn = step or self._step
        self.state, self.progress = FitState(), EpochProgress()
        self.hidden: State = None
        self._loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        # stream windows have one shape: replay the step from a CUDA graph (graph.py)
        self.graphed = (
            GraphedStep(lambda i, t, h: self._step(i, t, h, None, t.numel()), optimizer)
            if cuda_graph and self.train_data.carries_state
            else None
        )
        self._session_start = self._epoch_start = time.monotonic()

    def elapsed(self) -> float:
        """Wall seconds of this run, earlier sessions of a resumed run included."""
        return self.state.elapsed_s + time.monotonic() - self._session_start

    def fit(self) -> FitState:
        """Train until a budget is used up; the last step is always followed by an evaluation."""
        if self.state.stop_reason is not None:  # resumed after its final evaluation: done
            return self.state
        now = time.monotonic()
        self._session_start, self._epoch_start = now, now - self.progress.seconds
        bar = make_progress(
            self._planned_tokens(), self.cfg.progress, "train", initial=self.state.tokens
        )
        self._bar, self._postfix_at, self._val_shown = bar, 0.0, ""
        try:
            while not self._run_epoch(bar):
                self.state.epoch += 1
                self.progress = EpochProgress()
        finally:
            bar.close()
        return self.state

    def snapshot(self) -> dict[str, Any]:
        """Plain data (and the carried hidden state) from which `restore` continues exactly."""
        progress = dataclasses.replace(
            self.progress,
            nll_sum=self._loss_sum.item(),
            seconds=time.monotonic() - self._epoch_start,
        )
        fit = dataclasses.replace(self.state, elapsed_s=self.elapsed())
        hidden = self.model.detach_state(self.hidden)
        if progress.step_in_epoch >= self.steps_per_epoch:  # the epoch is over: start the next
            fit.epoch, progress, hidden = fit.epoch + 1, EpochProgress(), None
        return {
            "fit": dataclasses.asdict(fit),
            "progress": dataclasses.asdict(progress),
            "hidden": hidden,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Continue from `snapshot` (the model and optimizer states are restored by the caller)."""
        fit = dict(snapshot["fit"])
        # checkpoints from before `sequences` was counted: every step was one full batch
        fit.setdefault("sequences", fit["step"] * self.train_data.batch_size)
        self.state = FitState(**fit)
        self.progress = EpochProgress(**snapshot["progress"])
        hidden = snapshot["hidden"]
        if isinstance(hidden, (tuple, list)):
            hidden = tuple(h.to(self.device) for h in hidden)
        elif hidden is not None:
            hidden = hidden.to(self.device)
        self.hidden = hidden

    def _planned_tokens(self) -> int | None:
        """Training tokens the budgets allow, for the progress bar's total and ETA."""
        per_step = self.train_data.count_targets() / max(self.steps_per_epoch, 1)
        caps = [self.budget.max_tokens]
        if self.budget.max_steps is not None:
            caps.append(round(self.budget.max_steps * per_step))
        known = [c for c in caps if c is not None]
        return min(known) if known else None

    def _run_epoch(self, bar: tqdm) -> bool:
        """The rest of the current epoch; returns True when the run must stop."""
        lr = self.lr_for_epoch(self.state.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        progress = self.progress
        data = self.train_data
        if progress.step_in_epoch == 0:
            self.hidden = self.model.init_state(data.batch_size, self.device)
            self._epoch_start = time.monotonic()
        self._loss_sum.fill_(progress.nll_sum)
        batches = data.iterate(start=progress.step_in_epoch, epoch=self.state.epoch)
        for inputs, targets, mask, num_tokens in batches:
            if not data.carries_state:  # sentence batches: each row is a sentence from <s>
                self.hidden = self.model.init_state(inputs.size(0), self.device)
            self.hidden = self.train_step(inputs, targets, self.hidden, mask, num_tokens)
            progress.step_in_epoch += 1
            progress.tokens += num_tokens
            self.state.step += 1
            self.state.tokens += num_tokens
            self.state.sequences += inputs.size(0)
            bar.update(num_tokens)
            if not bar.disable:
                self._show_speed(bar)
            reason = self._stop_reason()
            due = progress.step_in_epoch in self.points or self.state.step in self.global_points
            if due or reason is not None:
                point = self._evaluate(lr, reason)
                self._val_shown = f"val ppl {point.row['val_ppl']:.1f}"
                self.state.stop_reason = point.stop_reason
                self._checkpoint()
                if point.stop_reason is not None:
                    return True
            elif self.cfg.checkpoint_every and self.state.step % self.cfg.checkpoint_every == 0:
                self._checkpoint()
            if self.on_step is not None:
                self.on_step(self)
        return False

    def _stop_reason(self) -> str | None:
        reason = self.budget.reached(self.state.step, self.state.tokens, self.elapsed())
        periodic = self.state.step % FINITE_CHECK_EVERY == 0
        if reason is None and periodic and not torch.isfinite(self._loss_sum).item():
            reason = "diverged"
        return reason

    def _checkpoint(self) -> None:
        if self.on_checkpoint is not None:
            self.on_checkpoint(self)

    def train_step(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        hidden: State,
        mask: torch.Tensor | None = None,
        num_tokens: int | None = None,
    ) -> State:
        """One optimizer step on one batch; returns the state to carry into the next window.

        The loss is the mean NLL over the real targets: where `mask` (B, T) is False (padding)
        a position is in neither the sum nor the count. The whole of what a training step
        costs, so the speed benchmark times exactly this. With a CUDA graph (stream windows
        only) the step is replayed from it; no host sync either way.
        """
        if num_tokens is None:
            num_tokens = targets.numel() if mask is None else int(mask.sum())
        if self.graphed is not None and mask is None:
            hidden, loss = self.graphed(inputs, targets, hidden)
        else:
            hidden, loss = self.step_fn(inputs, targets, hidden, mask, num_tokens)
        # Accumulate on the device (no host sync per step): token-weighted sum of the NLL.
        self._loss_sum += loss.detach().double() * num_tokens
        return hidden

    def _step(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        hidden: State,
        mask: torch.Tensor | None,
        num_tokens: int,
    ) -> tuple[State, torch.Tensor]:
        """The eager step: forward, backward, clip, optimizer step; returns (state, mean loss)."""
        # Truncated BPTT: keep the state's values across windows but cut its graph, so memory
        # and compute stay bounded by one window.
        hidden = self.model.detach_state(hidden)
        if self.fused_loss:
            h, hidden = self.model.features(inputs, hidden)  # (B, T, H)
            rows, wanted = h.flatten(0, 1), targets.flatten()
            if mask is not None:  # only real targets reach the output layer
                # their count is known on the host: no device-to-host sync to find them
                keep = torch.nonzero_static(mask.flatten(), size=num_tokens).squeeze(1)
                rows, wanted = rows.index_select(0, keep), wanted.index_select(0, keep)
            out = self.model.output
            loss = linear_cross_entropy(rows, out.weight, out.bias, wanted)
            objective = loss
        else:
            with autocast(self.device, self.precision):
                logits, hidden = self.model(inputs, hidden)  # (B, T, V)
            if self.cfg.loss_average == "sequence" and mask is not None:
                objective, loss = sequence_averaged(logits, targets, mask, num_tokens)
            else:
                loss = F.cross_entropy(
                    logits.flatten(0, 1).float(),
                    ignore_padding(targets, mask).flatten(),
                    ignore_index=IGNORE,
                )
                objective = loss
        if self.cfg.loss_average == "time_sum":
            # each row's summed loss, averaged over rows: the token mean x tokens per row
            objective = objective * (num_tokens / inputs.shape[0])
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if self.cfg.clip_norm is not None:
            # Recurrent nets have exploding gradients; IFT6135 A2 clips the global norm at 0.25.
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip_norm)
        self.optimizer.step()
        return hidden, loss

    def _diverged(self, train_loss: float, val_ppl: float) -> bool:
        """Non-finite losses, or a perplexity above `trainer.divergence_ppl`."""
        if not (math.isfinite(train_loss) and math.isfinite(val_ppl)):
            return True
        ceiling = self.cfg.divergence_ppl
        return ceiling is not None and max(val_ppl, math.exp(min(train_loss, 700.0))) > ceiling

    def _show_speed(self, bar: tqdm, train_seconds: float | None = None) -> None:
        """The bar's postfix: the tok/s the row will log (training time only), twice a second;
        given the row's own `train_seconds`, at once and redrawn, so the last figure on the bar
        before the row's log line is the one that line logs."""
        now = time.monotonic()
        final = train_seconds is not None
        if not final and now - self._postfix_at < 0.5:
            return
        self._postfix_at = now
        seconds = train_seconds if final else now - self._epoch_start - self.progress.eval_seconds
        speed = self.progress.tokens / max(seconds, 1e-9)
        shown = [f"{speed:,.0f} tok/s", self._val_shown]
        bar.set_postfix_str(", ".join(p for p in shown if p), refresh=final)

    def _evaluate(self, lr: float, reason: str | None) -> EvalPoint:
        synchronize(self.device)
        progress, state = self.progress, self.state
        train_seconds = time.monotonic() - self._epoch_start - progress.eval_seconds
        if self._bar is not None and not self._bar.disable:
            self._show_speed(self._bar, train_seconds)
        train_nll = self._loss_sum.item()
        t0 = time.monotonic()
        with make_progress(
            len(self.valid_data), self.cfg.progress, "validation", unit="batch"
        ) as bar:
            val_nll, val_tokens = evaluate(
                self.model, self.valid_data, precision=self.precision, on_batch=bar.update
            )
        synchronize(self.device)
        eval_seconds = time.monotonic() - t0
        pause(self._bar, eval_seconds)
        progress.eval_seconds += eval_seconds
        val_ppl, train_loss = perplexity(val_nll, val_tokens), train_nll / progress.tokens
        epoch = round(state.epoch + progress.step_in_epoch / self.steps_per_epoch, 4)
        improved = val_ppl < state.best_val_ppl
        if improved:
            state.best_val_ppl, state.best_epoch = val_ppl, epoch
        if self._diverged(train_loss, val_ppl):
            reason = "diverged"
        elif reason is None and self.judge is not None:  # a sweep's early stopping (pruning.py)
            reason = self.judge(val_ppl)
        row = {
            "epoch": epoch,
            "step": state.step,
            "tokens": state.tokens,
            "sequences": state.sequences,
            "wall_time_s": round(self.elapsed(), 3),
            "epoch_time_s": round(time.monotonic() - self._epoch_start, 3),
            "lr": lr,
            "train_loss": train_loss,
            "train_ppl": perplexity(train_nll, progress.tokens),
            "val_loss": val_nll / val_tokens,
            "val_ppl": val_ppl,
            "best_val_ppl": state.best_val_ppl,
            "tokens_per_s": round(progress.tokens / max(train_seconds, 1e-9), 1),
            "train_time_s": round(train_seconds, 3),
            "eval_time_s": round(eval_seconds, 3),
        }
        state.last_row = row
        point = EvalPoint(row=row, improved=improved, stop_reason=reason)
        self.on_eval(point)
        return point


def sequence_averaged(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, num_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(objective, reported loss) of a padded batch: the objective is each row's mean NLL over
    its real targets, averaged over the rows that have any (CMU 10-601 HW7); the reported loss
    stays the mean over real targets, so train perplexity keeps its per-token meaning."""
    nll = F.cross_entropy(
        logits.flatten(0, 1).float(),
        ignore_padding(targets, mask).flatten(),
        ignore_index=IGNORE,
        reduction="none",
    ).view_as(targets)  # (B, T); 0 where padded
    lengths = mask.sum(dim=1)  # (B,)
    rows = lengths > 0
    per_row = nll.sum(dim=1)[rows] / lengths[rows]
    return per_row.mean(), nll.sum() / num_tokens
