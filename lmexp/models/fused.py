"""Recurrent language models on PyTorch's fused layers (`nn.RNN`, `nn.GRU`, `nn.LSTM`).

Same embedding, dropout placement, state layout and output layer as `RecurrentLM`; the time loop
and the cell equations run inside one library call (cuDNN on GPU, oneDNN/ATen on CPU). The GRU is
cuDNN's reset-after variant, so it pairs with `model.gru_variant=reset_after`.
`copy_from_scratch` maps a scratch model's weights onto a fused one: both then compute the same
function, which is how the equivalence tests hold the two implementations to each other.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lmexp.models.base import LanguageModel, State
from lmexp.models.cells import GRUResetAfterCell, LSTMCell, RNNCell
from lmexp.models.recurrent import (
    GRUConfig,
    LSTMConfig,
    RecurrentConfig,
    RecurrentLM,
    RecurrentShell,
    RNNConfig,
)
from lmexp.models.registry import Architecture, register

# Scratch LSTM gate blocks are [i, f, o, g] (the sigmoids contiguous); nn.LSTM's are [i, f, g, o].
LSTM_BLOCKS_TO_TORCH = (0, 1, 3, 2)


TORCH_LAYERS: dict[type[RecurrentConfig], type[nn.RNNBase]] = {
    RNNConfig: nn.RNN,
    GRUConfig: nn.GRU,
    LSTMConfig: nn.LSTM,
}


def _layer_class(cfg: RecurrentConfig) -> type[nn.RNNBase]:
    return TORCH_LAYERS[type(cfg)]


class FusedRecurrentLM(RecurrentShell):
    """Embedding -> dropout -> `nn.RNN`/`nn.GRU`/`nn.LSTM` (dropout between layers) -> dropout
    -> logits: the dropout placement of `RecurrentLM`, with the recurrence in one fused call."""

    def __init__(self, cfg: RecurrentConfig, vocab_size: int) -> None:
        super().__init__(cfg, vocab_size)
        extra = {"nonlinearity": cfg.nonlinearity} if isinstance(cfg, RNNConfig) else {}
        self.recurrent = _layer_class(cfg)(
            cfg.emb_size,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            batch_first=True,
            **extra,
        )
        self._attach_output(cfg, vocab_size)
        for name, param in self.recurrent.named_parameters():
            if name.startswith("bias_hh"):
                param.register_hook(self._drop_duplicate_bias_grad)
        self.reset_parameters()

    def _hh_bias_mask(self, like: Tensor) -> Tensor:
        """1 where b_hh is a parameter of its own (the GRU candidate's), 0 where it duplicates
        b_ih (both add to the same pre-activation)."""
        mask = torch.zeros_like(like)
        if self.cell_name == "gru":
            mask[2 * self.hidden_size :] = 1.0
        return mask

    def _drop_duplicate_bias_grad(self, grad: Tensor) -> Tensor:
        """Keep the duplicate half of the biases at zero, so training follows the scratch model.

        Left trainable, b_ih and b_hh would both receive the same gradient and the effective
        bias would move twice as fast under SGD as in the scratch model's single bias.
        """
        return grad * self._hh_bias_mask(grad)

    def num_params(self) -> int:
        """Trainable parameters, the frozen duplicate biases not counted (as in `RecurrentLM`)."""
        frozen = sum(
            int((self._hh_bias_mask(p) == 0).sum())
            for n, p in self.recurrent.named_parameters()
            if n.startswith("bias_hh")
        )
        return super().num_params() - frozen

    def reset_parameters(self) -> None:
        """The scratch model's distributions: one bias per gate, so b_hh starts (and stays) 0.

        nn.RNNBase adds b_ih + b_hh; drawing both would widen the bias distribution. The GRU's
        candidate b_hh sits inside r ⊙ (...), a bias of its own, so it is drawn like the rest.
        """
        bound = self.init_range or 1.0 / math.sqrt(self.hidden_size)
        for name, param in self.recurrent.named_parameters():
            nn.init.uniform_(param, -bound, bound)
            if name.startswith("bias_hh"):
                with torch.no_grad():
                    param.mul_(self._hh_bias_mask(param))
        self._reset_embedding_and_output()

    def features(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        if state is None:
            raise ValueError("recurrent models need a state; start a stream with init_state()")
        x = self.dropout(self.embedding(tokens))  # (B, T, E)
        hx = tuple(state) if isinstance(state, (tuple, list)) else state
        x, final = self.recurrent(x, hx)  # (B, T, H)
        return self.dropout(x), final  # (B, T, H)


def _blocks(weight: Tensor, order: tuple[int, ...], negate: tuple[int, ...] = ()) -> Tensor:
    """Reorder (and sign-flip) the gate blocks along dim 0 of a (G*H, ...) parameter."""
    chunks = list(weight.chunk(len(order), dim=0))
    for k in negate:
        chunks[k] = -chunks[k]
    return torch.cat([chunks[k] for k in order], dim=0)


@torch.no_grad()
def copy_from_scratch(scratch: RecurrentLM, fused: FusedRecurrentLM) -> None:
    """Give `fused` the weights that make it compute exactly what `scratch` computes.

    - RNN, LSTM: W_ih, b_ih and W_hh are the scratch input/recurrent matrices (LSTM blocks
      reordered); b_hh = 0, since scratch has one bias per gate.
    - GRU (reset_after only): nn.GRU writes h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}, IFT6135 assignment 2's
      h_t = (1 - z) ⊙ h_{t-1} + z ⊙ h~; so its z is the assignment's 1 - z = σ(-a): the update
      block's weights and bias are negated.
    """
    if scratch.cell_name != fused.cell_name or scratch.num_layers != fused.num_layers:
        raise ValueError("copy_from_scratch needs the same architecture and depth on both sides")
    fused.embedding.weight.copy_(scratch.embedding.weight)
    fused.output.weight.copy_(scratch.output.weight)
    fused.output.bias.copy_(scratch.output.bias)
    for k, cell in enumerate(scratch.layers):
        target = {
            n: getattr(fused.recurrent, f"{n}_l{k}")
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
        b_ih, b_hh = target["bias_ih"], target["bias_hh"]
        w_in, b_in = cell.input_weights.weight, cell.input_weights.bias
        if isinstance(cell, RNNCell):
            target["weight_ih"].copy_(w_in)
            target["weight_hh"].copy_(cell.recurrent.weight)
            b_ih.copy_(b_in)
            b_hh.zero_()
        elif isinstance(cell, LSTMCell):
            target["weight_ih"].copy_(_blocks(w_in, LSTM_BLOCKS_TO_TORCH))
            target["weight_hh"].copy_(_blocks(cell.recurrent.weight, LSTM_BLOCKS_TO_TORCH))
            b_ih.copy_(_blocks(b_in, LSTM_BLOCKS_TO_TORCH))
            b_hh.zero_()
        elif isinstance(cell, GRUResetAfterCell):
            order, flip = (0, 1, 2), (1,)  # [r, z, n]; negate z
            target["weight_ih"].copy_(_blocks(w_in, order, flip))
            target["weight_hh"].copy_(_blocks(cell.recurrent.weight, order, flip))
            b_ih.copy_(_blocks(b_in, order, flip))
            b_hh.zero_()
            b_hh[2 * cell.hidden_size :].copy_(cell.candidate_bias)
        else:
            raise ValueError(
                f"{type(cell).__name__} has no nn.* counterpart: nn.GRU is the reset-after GRU "
                "(model.gru_variant=reset_after)"
            )


def build_recurrent(cfg: RecurrentConfig, vocab_size: int) -> LanguageModel:
    """`model.impl`: the assignment's equations (scratch) or the library's fused layer."""
    if cfg.impl == "fused":
        return FusedRecurrentLM(cfg, vocab_size)
    return RecurrentLM(cfg, vocab_size)


for _order, (_schema, _label) in enumerate(
    ((RNNConfig, "RNN"), (GRUConfig, "GRU"), (LSTMConfig, "LSTM")), start=0
):
    register(
        Architecture(_schema.name, _label, _order, _schema, build_recurrent, TORCH_LAYERS[_schema])
    )
