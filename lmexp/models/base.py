"""The one interface every language model implements, so the training loop never branches on it.

It owns the contract (tokens + state in, logits + state out) and the state helpers; no architecture.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeAlias

import torch
from torch import Tensor, nn

# Recurrent nets: (num_layers, B, H); LSTM: (h, c), each (num_layers, B, H); Transformer: None.
State: TypeAlias = Tensor | tuple[Tensor, ...] | None


class LanguageModel(nn.Module, ABC):
    """Next-token model over windows of a token stream, with state carried between windows.

    Truncated BPTT feeds one window at a time and passes the returned state into the next call, so a
    recurrent model sees the whole stream while gradients stop at the window boundary.
    """

    output: nn.Linear  # the (hidden -> vocabulary) layer, applied by `forward` to `features`

    def features(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Map tokens (B, T) and the incoming state to the features (B, T, H) that `output`
        turns into logits, and the outgoing state.

        Kept apart from the output layer so the training loss can fuse that layer with the
        cross-entropy (`lmexp.training.losses`); a model that only defines `forward` trains
        through it.
        """
        raise NotImplementedError(f"{type(self).__name__} defines forward() only")

    def forward(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Map tokens (B, T) and the incoming state to logits (B, T, V) and the outgoing state.

        Logits, not log-probabilities: `F.cross_entropy` applies the log-softmax itself.
        """
        h, state = self.features(tokens, state)
        return self.output(h), state  # (B, T, V)

    @property
    def has_features(self) -> bool:
        """Whether `features` exists, i.e. the output layer can be fused with the loss."""
        return type(self).features is not LanguageModel.features

    @abstractmethod
    def init_state(self, batch_size: int, device: torch.device) -> State:
        """The state before the first window of a stream (zeros; None for stateless models)."""

    @staticmethod
    def detach_state(state: State) -> State:
        """Cut the autograd graph at the window boundary: values carry on, gradients stop here.

        Without it every backward would run through all previous windows and keep their graphs
        alive.
        """
        if state is None:
            return None
        if isinstance(state, Tensor):
            return state.detach()
        return tuple(s.detach() for s in state)

    def state_grads(
        self, inputs: Tensor, final_loss: Callable[[Tensor], Tensor], entering: bool = True
    ) -> list[Tensor]:
        """∇_{h_t} L_T for t = 0..T-1 of `inputs` (B, T), each flattened to (B, D).

        `final_loss` maps the last position's logits (B, V) to L_T. h_t is every layer's hidden
        state (the LSTM's cell state c_t is held fixed, as a separate variable). With
        `entering` (IFT6135 A2 §5.2) h_t is the state step t starts from: h_0 the initial
        state, h_{T-1} the one the last token is read with. Without it, the state after reading
        token t (lmexp's earlier definition, h_1..h_T). This default reads one token at a time,
        so each h_t is a node of the graph; a model whose state is not that (the Transformer
        carries none) overrides it. L_T must depend on the state tensor held, not on a sibling
        of it: where the logits do not descend from the last state (the stacked RNN/GRU/LSTM
        hand on a state stacked beside their features), they are recomputed from that state's
        top layer (in eval mode the features *are* that h).
        """
        state = self.init_state(inputs.size(0), inputs.device)
        first = state[0] if isinstance(state, tuple) else state
        first.requires_grad_(True)
        hiddens = [first]  # h_0, then the state after each token
        for t in range(inputs.size(1)):
            step_logits, state = self(inputs[:, t : t + 1], state)
            hiddens.append(state[0] if isinstance(state, tuple) else state)  # (L, B, H)
        logits = step_logits[:, -1]  # (B, V)
        wrt = hiddens[:-1] if entering else hiddens[1:]
        if not entering and not _feeds(logits, hiddens[-1]):
            logits = self.output(hiddens[-1][-1])
        grads = torch.autograd.grad(final_loss(logits), wrt, allow_unused=True)
        return [
            torch.zeros_like(h).transpose(0, 1).flatten(1)
            if g is None
            else g.transpose(0, 1).flatten(1)
            for g, h in zip(grads, wrt, strict=True)
        ]

    def num_params(self) -> int:
        """Trainable parameter count; a tied matrix counts once (`parameters()` deduplicates)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _feeds(output: Tensor, tensor: Tensor) -> bool:
    """Whether `tensor` is among the autograd ancestors of `output`."""
    target, seen, stack = tensor.grad_fn, set(), [output.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        if node is target:
            return True
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return False
