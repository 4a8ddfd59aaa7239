"""One training step for K jobs of one shape at once: their models as one batched model.

Packed training (horizontal fusion: Wang et al., "Horizontally Fused Training Array", MLSys
2021) trains jobs that differ only in their seed, learning rate, dropout rate, weight decay or
budget as one model whose weights carry a leading member axis, so each matmul is one batched
matmul for all of them instead of K small ones.

How, with the least code of its own: every member keeps its own `LanguageModel` (its own
parameters, initialised from its own seed exactly as the job alone would be), its own torch
optimizer and its own clipping. Each step stacks the members' parameters (`torch.stack`, so
the gradient flows back into each member's own tensors) and runs the architecture once under
`torch.func.vmap` over the member axis, through `torch.func.functional_call` on a
parameter-less copy of the architecture. Member k's loss depends only on its slice, so one
backward of the summed losses leaves in each member's `.grad` exactly the gradient of its own
loss. Then each member clips and steps with its own optimizer, as alone: per-member learning
rates, schedules, weight decay, clipping and optimizer state, with the optimizer torch ships.

What differs from the job alone: the recurrence runs the cells' step-by-step path (`stepwise`:
the same equations under autograd; the hand-written BPTT nodes of bptt.py do not batch under
vmap), so results agree to rounding, not bit for bit. The output layer is each member's own,
fused into its loss after the vmapped features, as the job alone computes it. Dropout draws
each member's masks independently (`randomness="different"`) from the process's generator,
not from the member's own stream: with dropout a packed member is the same model with
different masks, statistically but not exactly the job alone.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call, vmap

from lmexp.models.base import LanguageModel, State
from lmexp.training.losses import linear_cross_entropy


class NotPackable(ValueError):
    """These models cannot train as one batched model; the reason, in one line."""


def shape_of(model: LanguageModel) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """What must agree for models to pack: the class, each tensor's name, shape and dtype."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return [(type(model).__name__, (), torch.float32)] + [
        (name, tuple(t.shape), t.dtype) for name, t in tensors
    ]


def check_packable(members: Sequence[LanguageModel]) -> None:
    """NotPackable unless the members share their architecture, shapes and dtypes, and the
    architecture runs under vmap (its recurrence in plain tensor ops)."""
    if not members:
        raise NotPackable("no models to pack")
    first = shape_of(members[0])
    for k, member in enumerate(members[1:], start=1):
        if shape_of(member) != first:
            raise NotPackable(
                f"member {k} differs in architecture or shapes from member 0: only jobs whose "
                "configs differ in packable keys (seed, lr, weight decay, dropout, budgets) pack"
            )
    if not members[0].has_features:
        raise NotPackable(f"{type(members[0]).__name__} has no features() to batch")
    if any(isinstance(m, torch.nn.RNNBase) for m in members[0].modules()):
        raise NotPackable(
            "model.impl=fused runs nn.RNN/GRU/LSTM (cuDNN/oneDNN), which cannot batch over jobs; "
            "use model.impl=scratch, or share the device with jobs_per_gpu processes"
        )


class PackedStep:
    """Forward and backward of K same-shape models on their K batches at once."""

    def __init__(self, members: Sequence[LanguageModel]) -> None:
        check_packable(members)
        self.members = list(members)
        # the architecture without weights: functional_call supplies every tensor each step
        self.base = copy.deepcopy(self.members[0]).to("meta")
        if hasattr(self.base, "stepwise"):
            self.base.stepwise = True  # the recurrence in plain ops, which vmap batches
        self.features = _Features(self.base)  # its names: the member's, prefixed "model."
        self.param_names = [name for name, _ in self.members[0].named_parameters()]
        self.buffer_names = [name for name, _ in self.members[0].named_buffers()]

    def _stacked(self, active: Sequence[int]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        params = [dict(self.members[k].named_parameters()) for k in active]
        buffers = [dict(self.members[k].named_buffers()) for k in active]
        return (
            {f"model.{n}": torch.stack([p[n] for p in params]) for n in self.param_names},
            {f"model.{n}": torch.stack([b[n] for b in buffers]) for n in self.buffer_names},
        )

    def train(self, mode: bool = True) -> None:
        """Dropout on (training) or off (evaluation), in the shared architecture."""
        self.features.train(mode)

    def forward(
        self, active: Sequence[int], inputs: Tensor, targets: Tensor, hidden: State
    ) -> tuple[Tensor, State]:
        """Mean token NLL of each active member on its batch, and the states to carry.

        `inputs`, `targets`: (A, B, T) for the A members of `active`; `hidden` stacked along a
        leading member axis the same way (a tuple for the LSTM). Returns losses (A,) and the
        stacked outgoing states; `losses.sum().backward()` fills each member's gradients.

        The features (everything before the output layer) run vmapped; each member's loss is
        then its own output layer fused into the cross-entropy, as the job alone computes it
        (losses.py: the (B*T, V) logits are never all held at once).
        """
        params, buffers = self._stacked(active)
        features = self.features

        def one(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor, h: Any):
            return functional_call(features, (p, b), (x, h))

        if hidden is None:  # a stateless model (the Transformer): nothing to carry
            feats = vmap(lambda p, b, x: one(p, b, x, None)[0], randomness="different")(
                params, buffers, inputs
            )
        else:
            feats, hidden = vmap(one, randomness="different")(params, buffers, inputs, hidden)
        losses = []
        for i, k in enumerate(active):
            out = self.members[k].output
            rows = feats[i].flatten(0, 1)
            losses.append(linear_cross_entropy(rows, out.weight, out.bias, targets[i].flatten()))
        return torch.stack(losses), hidden


class _Features(torch.nn.Module):
    """A model's `features` as a module's forward, which `functional_call` runs."""

    def __init__(self, model: LanguageModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        return self.model.features(tokens, state)


def stack_states(states: Sequence[State]) -> State:
    """K members' states as one, along a new leading member axis (None stays None)."""
    if states[0] is None:
        return None
    if isinstance(states[0], tuple):
        return tuple(torch.stack(parts) for parts in zip(*states, strict=True))
    return torch.stack(list(states))  # type: ignore[arg-type]


def member_state(state: State, index: int) -> State:
    """Member `index`'s slice of a stacked state."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(part[index] for part in state)
    return state[index]
