"""RNN with causal self-attention (CMU 10-601 HW7 §7.5): embedding, RNN, ŷ, attention, LM head.

    h_t = φ(W_i2h i_t + W_h2h h_{t-1})           (φ = tanh or relu; one layer, cells.RNNCell)
    ŷ_t = W_h2o h_t
    q_t, k_n, v_n = W_q ŷ_t, W_k ŷ_n, W_v ŷ_n    (single head, sizes d_k, d_k, d_v)
    o_t = W_o Σ_n softmax_n(k_n · q_t / √d_k) v_n   over ŷ_t and the `max_len` before it
    g_t = W_LM o_t                                (next-token logits)

The stream is read in truncated-BPTT windows like every model here, so the attention reaches
back across a window boundary into a cache of the previous outputs ŷ (at most
`model.max_len` of them, detached with the hidden state at the boundary). The state is
(h, cache); reading a window at once and reading it one token at a time from the same state
give the same outputs, which is how generation steps the model (`tests/unit/test_rnn_attention.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from lmexp.models.base import LanguageModel, State
from lmexp.models.cells import RNNCell
from lmexp.models.recurrent import INIT_RANGE, run_layer
from lmexp.models.registry import Architecture, register
from lmexp.models.schema import ArchConfig
from lmexp.validation import require_positive


@dataclass
class RNNAttentionConfig(ArchConfig):
    """CMU 10-601 HW7's one-layer RNN with self-attention (`model=rnn_attn`)."""

    name: str = "rnn_attn"
    emb_size: int = 128
    hidden_size: int = 128  # RNN units = attention width
    num_layers: int = 1  # one RNN layer (CMU 10-601 HW7's model)
    nonlinearity: str = "tanh"  # tanh | relu

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"nonlinearity": ("tanh", "relu")}
    d_k: int | None = None  # query/key size; None: hidden_size
    d_v: int | None = None  # value size; None: hidden_size
    max_len: int = 64  # attention reaches back over at most this many earlier outputs

    def check(self) -> None:
        require_positive(
            "model", emb_size=self.emb_size, d_k=self.d_k, d_v=self.d_v, max_len=self.max_len
        )
        if self.num_layers != 1:
            raise ValueError(
                f"model.num_layers={self.num_layers}: rnn_attn is CMU 10-601 HW7's one-layer RNN "
                "with "
                "self-attention; set model.num_layers=1"
            )
        self.check_tied(self.emb_size)

    def forward_macs_per_token(self, vocab_size: int, seq_len: int) -> float:
        h, e = self.hidden_size, self.emb_size
        d_k, d_v = self.d_k or h, self.d_v or h
        attention = 2 * h * d_k + h * d_v + d_v * h + self.max_len * (d_k + d_v)
        return h * (e + h) + h * h + attention + h * vocab_size


class CausalSelfAttention(nn.Module):
    """Single-head scaled dot-product attention of new outputs over cached ones and themselves."""

    def __init__(self, width: int, d_k: int, d_v: int) -> None:
        super().__init__()
        self.d_k = d_k
        self.query = nn.Linear(width, d_k, bias=False)  # W_q
        self.key = nn.Linear(width, d_k, bias=False)  # W_k
        self.value = nn.Linear(width, d_v, bias=False)  # W_v
        self.out = nn.Linear(d_v, width, bias=False)  # W_o

    def forward(self, new: Tensor, cache: Tensor, reach: int) -> Tensor:
        """new (B, T, W) attends to [cache (B, C, W); new] -> (B, T, W).

        Output t sees itself and the `reach` outputs before it, never a later one: the same
        keys whether the window is read at once or one token at a time with a cache of `reach`.
        """
        context = torch.cat([cache, new], dim=1)  # (B, C+T, W)
        q = self.query(new)  # (B, T, d_k)
        k, v = self.key(context), self.value(context)  # (B, C+T, d_k), (B, C+T, d_v)
        scores = q @ k.transpose(1, 2) / math.sqrt(self.d_k)  # (B, T, C+T)
        steps, cached = new.size(1), cache.size(1)
        query_pos = torch.arange(steps, device=new.device).unsqueeze(1) + cached  # (T, 1)
        distance = query_pos - torch.arange(cached + steps, device=new.device)  # (T, C+T)
        mask = (distance < 0) | (distance > reach)
        weights = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
        return self.out(weights @ v)  # (B, T, W)


class RNNAttentionLM(LanguageModel):
    """CMU 10-601 HW7's RNN LM with self-attention; state = (h (1, B, H), cache (B, C, H)).

    `stepwise` (off by default) runs the recurrence under autograd step by step (`run_layer`),
    the path packed training batches over jobs.
    """

    stepwise: bool = False

    def __init__(self, cfg: RNNAttentionConfig, vocab_size: int) -> None:
        super().__init__()
        width = cfg.hidden_size
        self.hidden_size, self.context = width, cfg.max_len
        self.embedding = nn.Embedding(vocab_size, cfg.emb_size)
        self.dropout = nn.Dropout(cfg.dropout)
        self.cell = RNNCell(cfg.emb_size, width, cfg.nonlinearity)  # W_i2h (+ bias), W_h2h
        self.h2o = nn.Linear(width, width)  # ŷ_t = W_h2o h_t
        self.attention = CausalSelfAttention(width, cfg.d_k or width, cfg.d_v or width)
        self.output = nn.Linear(width, vocab_size)  # W_LM
        nn.init.uniform_(self.embedding.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.uniform_(self.output.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.zeros_(self.output.bias)
        if cfg.tie_weights:
            self.output.weight = self.embedding.weight

    def init_state(self, batch_size: int, device: torch.device) -> State:
        """h = 0 and an empty cache of outputs."""
        h = torch.zeros(1, batch_size, self.hidden_size, device=device)
        return h, torch.zeros(batch_size, 0, self.hidden_size, device=device)

    def features(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        if not isinstance(state, tuple):
            raise ValueError("rnn_attn needs its (h, cache) state; start with init_state()")
        h0, cache = state
        x = self.dropout(self.embedding(tokens))  # (B, T, E)
        hs, _ = run_layer(self.cell, x, h0[0], self.stepwise)  # (B, T, H)
        h_last = hs[:, -1].unsqueeze(0)  # (1, B, H), the state handed on
        # ŷ_T is computed from the very tensor handed on as the state, so that a gradient
        # taken with respect to the state (lmexp.inspect.internals) sees every path through it.
        y = self.h2o(torch.cat([hs[:, :-1], h_last[0].unsqueeze(1)], dim=1))  # ŷ: (B, T, H)
        o = self.attention(y, cache, self.context)  # (B, T, H)
        new_cache = torch.cat([cache, y], dim=1)[:, -self.context :]
        return self.dropout(o), (h_last, new_cache)


register(Architecture("rnn_attn", "RNN+Attn", 4, RNNAttentionConfig, RNNAttentionLM))
