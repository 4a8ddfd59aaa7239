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
fused into its loss after the vmapped features, as the job alone computes it.

Dropout: every `nn.Dropout` of the shared architecture replays masks drawn before the vmapped
call, member by member, from each member's own generator, at the member's own rate, in the
order and shapes the job alone draws them (`torch.nn.functional.dropout` on the CPU is
`bernoulli_(1 - p)` then `/ (1 - p)` on a tensor of the input's shape). So on the CPU a member
with dropout follows the job alone to rounding too. On CUDA the job alone draws inside a fused
kernel with its own use of the generator: there a member's masks are the same distribution,
not the same masks. Attention dropout inside `F.scaled_dot_product_attention` (attn_impl=sdpa)
cannot be replayed: such models pack only without dropout.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from lmexp.models.attention import MultiHeadAttention
from lmexp.models.base import LanguageModel, State
from lmexp.training.losses import linear_cross_entropy

# The one pack-refusing property of a model's config that only shows with dropout on.
SDPA_DROPOUT = (
    "model.attn_impl=sdpa draws attention dropout inside the fused kernel, where a pack cannot "
    "give each job its own masks; use model.attn_impl=scratch, or model.dropout=0"
)


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
    for member in members:
        for module in member.modules():
            sdpa = isinstance(module, MultiHeadAttention) and module.impl == "sdpa"
            if sdpa and module.dropout.p > 0:
                raise NotPackable(SDPA_DROPOUT)


class PackedStep:
    """Forward and backward of K same-shape models on their K batches at once."""

    def __init__(self, members: Sequence[LanguageModel]) -> None:
        check_packable(members)
        self.members = list(members)
        # the architecture without weights: functional_call supplies every tensor each step
        self.base = copy.deepcopy(self.members[0]).to("meta")
        if hasattr(self.base, "stepwise"):
            self.base.stepwise = True  # the recurrence in plain ops, which vmap batches
        # each dropout layer replays the masks drawn for it (each member its own, at its rate)
        self.tape = _Tape()
        self.rates = [_dropout_rates(member) for member in self.members]
        for name in self.rates[0]:
            self.base.set_submodule(name, _Replay(name, self.tape))
        self.features = _Features(self.base)  # its names: the member's, prefixed "model."
        self._shapes: dict[tuple, list[tuple[str, tuple[int, ...]]]] = {}
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
        self,
        active: Sequence[int],
        inputs: Tensor,
        targets: Tensor,
        hidden: State,
        generators: Sequence[torch.Generator | None] | None = None,
    ) -> tuple[Tensor, State]:
        """Mean token NLL of each active member on its batch, and the states to carry.

        `inputs`, `targets`: (A, B, T) for the A members of `active`; `hidden` stacked along a
        leading member axis the same way (a tuple for the LSTM). Returns losses (A,) and the
        stacked outgoing states; `losses.sum().backward()` fills each member's gradients.

        The features (everything before the output layer) run vmapped; each member's loss is
        then its own output layer fused into the cross-entropy, as the job alone computes it
        (losses.py: the (B*T, V) logits are never all held at once). `generators`: each active
        member's dropout stream (None, or a None entry: the process's generator).
        """
        params, buffers = self._stacked(active)
        features, tape = self.features, self.tape
        masks = self._masks(active, inputs, hidden, generators) if features.training else []
        drawn = [m for m in masks if m is not None]  # vmap slices tensors only

        def one(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor, h: Any, d: list):
            slices = iter(d)
            tape.masks = iter([None if m is None else next(slices) for m in masks])
            return functional_call(features, (p, b), (x, h))

        if hidden is None:  # a stateless model (the Transformer): nothing to carry
            feats = vmap(lambda p, b, x, d: one(p, b, x, None, d)[0])(
                params, buffers, inputs, drawn
            )
        else:
            feats, hidden = vmap(one)(params, buffers, inputs, hidden, drawn)
        losses = []
        for i, k in enumerate(active):
            out = self.members[k].output
            rows = feats[i].flatten(0, 1)
            losses.append(linear_cross_entropy(rows, out.weight, out.bias, targets[i].flatten()))
        return torch.stack(losses), hidden

    def _masks(
        self,
        active: Sequence[int],
        inputs: Tensor,
        hidden: State,
        generators: Sequence[torch.Generator | None] | None,
    ) -> list[Tensor | None]:
        """Every dropout call's masks (A, *shape), as each member alone would draw them: in
        call order, each from the member's generator at the member's rate (None: no member
        drops anything there)."""
        gens = list(generators) if generators is not None else [None] * len(active)
        masks: list[Tensor | None] = []
        for name, shape in self._dropout_calls(inputs, hidden):
            rates = [self.rates[k][name] for k in active]
            if not any(rates):
                masks.append(None)
                continue
            drawn = torch.empty((len(active), *shape), device=inputs.device)
            for mask, rate, gen in zip(drawn, rates, gens, strict=True):  # contiguous slices
                if rate > 0:  # F.dropout on the CPU: bernoulli_(1 - p), then / (1 - p)
                    mask.bernoulli_(1 - rate, generator=gen).div_(1 - rate)
                else:
                    mask.fill_(1.0)
            masks.append(drawn)
        return masks

    def _dropout_calls(self, inputs: Tensor, hidden: State) -> list[tuple[str, tuple[int, ...]]]:
        """The dropout layers one member's forward calls, in order, with their input shapes:
        found once per batch shape by running the weightless architecture on the meta device."""
        one = member_state(hidden, 0)
        parts = () if one is None else one if isinstance(one, tuple) else (one,)
        key = (tuple(inputs.shape[1:]), *(tuple(t.shape) for t in parts))
        if key not in self._shapes:
            meta = tuple(t.to("meta") for t in parts)
            state = None if one is None else meta if isinstance(one, tuple) else meta[0]
            self.tape.calls = []
            try:
                with torch.no_grad():
                    self.features(inputs[0].to("meta"), state)
                self._shapes[key] = self.tape.calls
            finally:
                self.tape.calls = None
        return self._shapes[key]


def _dropout_rates(model: nn.Module) -> dict[str, float]:
    """Each dropout layer's rate, by module name (the rate is a packable key: it may differ)."""
    return {name: m.p for name, m in model.named_modules() if isinstance(m, nn.Dropout)}


class _Tape:
    """What the replaying dropout layers share: the masks of the current call, in call order,
    or (while `calls` is a list) a record of the calls and their input shapes."""

    def __init__(self) -> None:
        self.masks: Iterator[Tensor | None] = iter(())
        self.calls: list[tuple[str, tuple[int, ...]]] | None = None

    def apply(self, name: str, x: Tensor) -> Tensor:
        if self.calls is not None:
            self.calls.append((name, tuple(x.shape)))
            return x
        mask = next(self.masks)
        return x if mask is None else x * mask


class _Replay(nn.Module):
    """In place of an `nn.Dropout` of the shared architecture: in training, the input times the
    mask drawn for this call (`_Tape`); in evaluation, the input."""

    def __init__(self, name: str, tape: _Tape) -> None:
        super().__init__()
        self.name, self.tape = name, tape

    def forward(self, x: Tensor) -> Tensor:
        return self.tape.apply(self.name, x) if self.training else x


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
