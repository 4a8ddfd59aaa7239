"""Inside trained models (IFT6135 A2 §5.1-5.2): loss at each time step, gradient flow through time.

    lmexp-internals outputs/multirun/<sweep>/*-*/

For each run it writes `<run_dir>/internals/timestep_loss.csv` and `grad_flow.csv`; the report
(`lmexp-report`) draws one comparison plot of each, a curve per run, when these CSVs exist.
The defaults are the assignment's definitions; lmexp's earlier ones stay behind options.

- **Per-time-step loss** L_t (§5.1): the mean cross-entropy at position t of the validation
  windows (seq_len tokens each). `state="fresh"` (the assignment's): every window starts from
  the zero state, as the assignment's code re-initialises `hidden` for each, so L_0 is the
  loss without any context and the curve shows the drop the study describes.
  `state="carried"`: the state is carried from window to window, exactly as evaluation reads
  the split, so the token-weighted mean is the run's validation loss. The Transformer sees
  each window alone either way. In sentence mode t counts from each sentence's `<s>`, every
  sentence starts fresh, and padding is left out.
- **Gradient flow** ‖∇_{h_t} L_T‖ (§5.2), for one training minibatch (the first; in sentence
  mode the batch of the longest training sentences), zero initial state.
  `definition="assignment"`: L_T is the minibatch's mean cross-entropy at the window's last
  step; h_t for t = 0..T-1 is the state step t starts from (h_0 the initial state), every
  layer's h (the LSTM's c_t held fixed); the norm is the Euclidean norm of the whole gradient
  (all sequences, layers and units); the curve is rescaled to [0, 1] by min-max.
  `definition="per-sequence"` (lmexp's earlier one): L_T summed over the minibatch, h_t the
  state after reading token t (h_1..h_T), per-sequence norms averaged, the curve divided by
  its maximum (a zero stays a zero). `mode="train"` (the assignment's) keeps dropout on, as
  during training, with a fixed seed; `mode="eval"` turns it off. For the Transformer, which
  carries no state, h_t is the residual stream entering the top block at position t (it has
  read tokens 0..t), under either definition. Recurrent models read the window one token at
  a time so that each h_t is a node of the autograd graph; the Transformer reads it at once.
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
from lmexp.inspect.trust import add_trust_flag
from lmexp.models.base import LanguageModel
from lmexp.run.rundir import RunDir
from lmexp.version import add_version_flag

STATES = ("fresh", "carried")  # L_t: the zero state for every window, or carried across
DEFINITIONS = ("assignment", "per-sequence")  # gradient flow (see the module docstring)
MODES = ("train", "eval")  # dropout on (as in training) or off, for the gradient flow


def timestep_loss(
    model: LanguageModel,
    data: Tensor | Batches,
    seq_len: int | None = None,
    state: str = "fresh",
) -> list[dict]:
    """Mean NLL at each position t of a split's windows (or sentences: t from <s>), padding
    excluded: rows t, loss, tokens, state. `data` as `lmexp.training.evaluation.evaluate`
    takes it; `state` fresh or carried (see the module docstring)."""
    if state not in STATES:
        raise ValueError(f"state={state!r}; choose {' or '.join(STATES)}")
    batches = as_batches(data, seq_len)
    was_training = model.training
    model.eval()
    total: dict[int, float] = {}
    count: dict[int, int] = {}
    with torch.inference_mode():
        hidden = model.init_state(batches.batch_size, batches.device)
        for inputs, targets, mask, _ in batches:
            if state == "fresh" or not batches.carries_state:
                hidden = model.init_state(inputs.size(0), batches.device)
            logits, hidden = model(inputs, hidden)  # (B, T, V)
            nll = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="none")
            real = torch.ones_like(nll, dtype=torch.bool) if mask is None else mask
            sums = (nll * real).sum(0).double().cpu().tolist()  # (T,)
            counts = real.sum(0).cpu().tolist()
            for t, (s, n) in enumerate(zip(sums, counts, strict=True)):
                total[t], count[t] = total.get(t, 0.0) + s, count.get(t, 0) + n
    model.train(was_training)
    return [
        {"t": t, "loss": total[t] / count[t], "tokens": count[t], "state": state}
        for t in sorted(count)
        if count[t] > 0
    ]


def gradient_flow(
    model: LanguageModel,
    inputs: Tensor,
    targets: Tensor,
    definition: str = "assignment",
    mode: str = "train",
    seed: int = 0,
) -> list[dict]:
    """‖∇_{h_t} L_T‖ for t = 0..T-1 of one minibatch (see the module docstring).

    Rows: t, grad_norm, scaled (min-max to [0, 1] for the assignment's definition; divided by
    the maximum for per-sequence), definition, mode. `seed` fixes the dropout masks of
    `mode="train"` without touching the caller's random state.
    """
    if definition not in DEFINITIONS:
        raise ValueError(f"definition={definition!r}; choose {' or '.join(DEFINITIONS)}")
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; choose {' or '.join(MODES)}")
    assignment = definition == "assignment"
    reduction = "mean" if assignment else "sum"

    def final_loss(logits: Tensor) -> Tensor:  # L_T: the last step's cross-entropy, (B, V)
        return F.cross_entropy(logits.float(), targets[:, -1], reduction=reduction)

    was_training = model.training
    model.train(mode == "train")
    try:
        with torch.enable_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            grads = model.state_grads(inputs, final_loss, entering=assignment)
    finally:
        model.train(was_training)
    if assignment:
        norms = [g.norm().item() for g in grads]
        low, span = min(norms), max(norms) - min(norms)
        scaled = [(n - low) / span if span > 0 else 0.0 for n in norms]
    else:
        norms = [g.norm(dim=1).mean().item() for g in grads]
        top = max(norms) or 1.0
        scaled = [n / top for n in norms]
    how = {"definition": definition, "mode": mode}  # the report words its caption by these
    return [
        {"t": t, "grad_norm": n, "scaled": x, **how}
        for t, (n, x) in enumerate(zip(norms, scaled, strict=True))
    ]


def run_internals(
    lm: ScoringLM,
    split: str = "valid",
    state: str = "fresh",
    definition: str = "assignment",
    mode: str = "train",
) -> tuple[list[dict], list[dict]]:
    """Both measurements for one loaded run, on its own corpus and batch sizes."""
    cfg = lm.config
    corpus = load_corpus(cfg.data, tokenizer_file=RunDir(lm.run_dir).tokenizer)
    data = make_batches(getattr(corpus, split), corpus, cfg.data, train=False, device=lm.device)
    losses = timestep_loss(lm.model, data, state=state)
    train = make_batches(corpus.train, corpus, cfg.data, train=False, device=lm.device)
    # streams: the first window; sentences (sorted by length): the last batch, the longest
    # sentences, and of it the rows whose last position is a real target
    first = 0 if train.carries_state else len(train) - 1
    inputs, targets, mask, _ = next(iter(train.iterate(start=first)))
    if mask is not None:
        inputs, targets = inputs[mask[:, -1]], targets[mask[:, -1]]
    return losses, gradient_flow(lm.model, inputs, targets, definition, mode)


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
        "(IFT6135 assignment 2 §5.1-5.2): CSVs in each run dir; lmexp-report draws the "
        "comparison plots from them.",
    )
    parser.add_argument("run_dirs", type=Path, nargs="+", help="job directories of lmexp.train")
    parser.add_argument("--split", choices=("valid", "test"), default="valid")
    parser.add_argument("--checkpoint", default="best", help="best (default), last or a .pt path")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument(
        "--state",
        choices=STATES,
        default="fresh",
        help="L_t: every window from the zero state (fresh, the assignment's) or the state "
        "carried across windows as in evaluation (carried: averages to the validation loss)",
    )
    parser.add_argument(
        "--grad-definition",
        choices=DEFINITIONS,
        default="assignment",
        help="assignment: batch-mean L_T, h_0..h_{T-1}, norm of the whole gradient, min-max "
        "to [0, 1]; per-sequence: lmexp's earlier per-sequence norms, h_1..h_T, / max",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="train",
        help="gradient flow with dropout on as in training (train, the assignment's) or off",
    )
    add_trust_flag(parser)
    add_version_flag(parser)
    args = parser.parse_args(argv)
    for run_dir in args.run_dirs:
        try:
            lm = load(run_dir, args.checkpoint, args.device, args.trust_model_code)
        except (OSError, ValueError) as err:
            print(f"{parser.prog}: error: {err}", file=sys.stderr)
            return 2
        losses, grads = run_internals(lm, args.split, args.state, args.grad_definition, args.mode)
        write_rows(losses, RunDir(run_dir).timestep_loss)
        write_rows(grads, RunDir(run_dir).grad_flow)
        mean = sum(r["loss"] * r["tokens"] for r in losses) / sum(r["tokens"] for r in losses)
        print(
            f"{run_dir}: {args.split} loss {mean:.4f} (ppl {math.exp(mean):.2f}) over "
            f"{len(losses)} positions; grad flow at t=0 {grads[0]['scaled']:.3g} (scaled)"
        )
    return 0


def cli() -> None:
    """The `lmexp-internals` command."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
