"""Inside trained models (IFT6135 A2 §5.1-5.2): loss at each time step, gradient flow through time.

    lmexp-internals outputs/multirun/<sweep>/*-*/

For each run it writes `<run_dir>/internals/timestep_loss.csv` and `grad_flow.csv`; the report
(`lmexp-report`) draws one comparison plot of each, a curve per run, when these CSVs exist.

- **Per-time-step loss** L_t: the mean cross-entropy at position t of the validation windows,
  read exactly as evaluation reads them (seq_len windows, the recurrent state carried from
  window to window, the Transformer seeing each window alone), so its token-weighted mean is
  the run's validation loss. In sentence mode t counts from each sentence's `<s>` and padding
  is left out.
- **Gradient flow** ‖∇_{h_t} L_T‖: for the first training minibatch (in sentence mode the
  batch of the longest training sentences; zero initial state, dropout off), the gradient of
  the loss at the window's final step T with respect to the state the model holds after
  reading token t: every layer's h_t for recurrent models (the LSTM's cell
  state c_t is held fixed, as a separate variable), the residual stream entering the top block
  for the Transformer. Recurrent models read the window one token at a time so that each h_t is
  a node of the autograd graph; the Transformer reads it at once. The norm is taken per
  sequence and averaged over the minibatch; `scaled` divides each curve by its maximum, so
  curves of different architectures fit on one [0, 1] plot and a zero stays a zero.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lmexp.data import Batches, as_batches, load_corpus, make_batches
from lmexp.inspect.scoring import ScoringLM, load
from lmexp.models.base import LanguageModel
from lmexp.run.rundir import RunDir


def timestep_loss(
    model: LanguageModel, data: Tensor | Batches, seq_len: int | None = None
) -> list[dict]:
    """Mean NLL at each position t of a split's windows (or sentences: t from <s>), padding
    excluded: rows t, loss, tokens. `data` as `lmexp.training.evaluation.evaluate` takes it."""
    batches = as_batches(data, seq_len)
    was_training = model.training
    model.eval()
    total: dict[int, float] = {}
    count: dict[int, int] = {}
    with torch.inference_mode():
        state = model.init_state(batches.batch_size, batches.device)
        for inputs, targets, mask, _ in batches:
            if not batches.carries_state:
                state = model.init_state(inputs.size(0), batches.device)
            logits, state = model(inputs, state)  # (B, T, V)
            nll = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")
            real = torch.ones_like(nll, dtype=torch.bool) if mask is None else mask
            sums = (nll * real).sum(0).double().cpu().tolist()  # (T,)
            counts = real.sum(0).cpu().tolist()
            for t, (s, n) in enumerate(zip(sums, counts, strict=True)):
                total[t], count[t] = total.get(t, 0.0) + s, count.get(t, 0) + n
    model.train(was_training)
    return [
        {"t": t, "loss": total[t] / count[t], "tokens": count[t]}
        for t in sorted(count)
        if count[t] > 0
    ]


def gradient_flow(model: LanguageModel, inputs: Tensor, targets: Tensor) -> list[dict]:
    """‖∇_{h_t} L_T‖ for t = 0..T-1, averaged over the minibatch (see the module docstring).

    Rows: t, grad_norm, scaled (grad_norm / the curve's maximum).
    """
    was_training = model.training
    model.eval()  # dropout off: the gradient of the model itself, not of one dropout mask
    try:
        with torch.enable_grad():
            per_step = model.state_grad_norms(inputs, lambda logits: _final_loss(logits, targets))
    finally:
        model.train(was_training)
    norms = [n.mean().item() for n in per_step]
    top = max(norms) or 1.0
    return [{"t": t, "grad_norm": n, "scaled": n / top} for t, n in enumerate(norms)]


def _final_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """L_T summed over the batch, so sequence b's gradient is that of its own loss: (B, V)."""
    return F.cross_entropy(logits.float(), targets[:, -1], reduction="sum")


def run_internals(lm: ScoringLM, split: str = "valid") -> tuple[list[dict], list[dict]]:
    """Both measurements for one loaded run, on its own corpus and batch sizes."""
    cfg = lm.config
    corpus = load_corpus(cfg.data, tokenizer_file=RunDir(lm.run_dir).tokenizer)
    data = make_batches(getattr(corpus, split), corpus, cfg.data, train=False, device=lm.device)
    losses = timestep_loss(lm.model, data)
    train = make_batches(corpus.train, corpus, cfg.data, train=False, device=lm.device)
    # streams: the first window; sentences (sorted by length): the last batch, the longest
    # sentences, and of it the rows whose last position is a real target
    first = 0 if train.carries_state else len(train) - 1
    inputs, targets, mask, _ = next(iter(train.iterate(start=first)))
    if mask is not None:
        inputs, targets = inputs[mask[:, -1]], targets[mask[:, -1]]
    return losses, gradient_flow(lm.model, inputs, targets)


def write_rows(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lmexp-internals",
        description="Per-time-step loss and gradient flow through time of trained runs "
        "(IFT6135 assignment 2 §5.1-5.2): CSVs in each run dir, comparison plots with --out.",
    )
    parser.add_argument("run_dirs", type=Path, nargs="+", help="job directories of lmexp.train")
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--checkpoint", default="best", help="best (default), last or a .pt path")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        try:
            lm = load(run_dir, args.checkpoint, args.device)
        except (FileNotFoundError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        losses, grads = run_internals(lm, args.split)
        write_rows(losses, RunDir(run_dir).timestep_loss)
        write_rows(grads, RunDir(run_dir).grad_flow)
        mean = sum(r["loss"] * r["tokens"] for r in losses) / sum(r["tokens"] for r in losses)
        print(
            f"{run_dir}: {args.split} loss {mean:.4f} (ppl {math.exp(mean):.2f}) over "
            f"{len(losses)} positions; grad flow at t=0 {grads[0]['scaled']:.3g} of its maximum"
        )
    return 0


def cli() -> None:
    """The `lmexp-internals` command."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
