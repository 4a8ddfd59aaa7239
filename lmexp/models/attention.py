"""Masked multi-head scaled dot-product attention, IFT6135 A2 eqs. (10)-(16), from tensor ops.

It owns the causal mask, the masked softmax and the attention layer; not the block around it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MASK_PENALTY = (
    1e9  # IFT6135 assignment 2's 10^9 in eq. (15): large enough that exp(x - 1e9) underflows to 0
)


def causal_mask(length: int, device: torch.device | None = None) -> Tensor:
    """(T, T) boolean, True where query t may attend to key j, i.e. j <= t (the past and itself)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()  # (T, T)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis restricted to mask == 1, IFT6135 A2 eqs. (15)-(16).

    x~ = x ⊙ s - 1e9 (1 - s) instead of eq. (13)'s exp(x) ⊙ s: the max-subtracting softmax then
    never sees exp of a large score, and masked entries get weight exp(-1e9) = 0.
    """
    s = mask.to(scores.dtype)  # (..., T, T), broadcast against scores
    return torch.softmax(scores * s - MASK_PENALTY * (1.0 - s), dim=-1)


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention, eqs. (10)-(12): per-head projections, scaled scores, W_O.

    The per-head W_Qi, W_Ki, W_Vi are the column blocks of one (hidden -> 3 hidden) Linear, so the
    three projections for all heads are a single matmul; W_O is a separate Linear.
    `impl="sdpa"` computes the same softmax(QK^T/√d_k + mask) V with
    `F.scaled_dot_product_attention` (flash / memory-efficient kernels on GPU, no (T, T) weights
    kept for backward); `impl="scratch"` is the assignment's masked softmax, written out.
    """

    def __init__(
        self, hidden_size: int, num_heads: int, dropout: float = 0.0, impl: str = "scratch"
    ) -> None:
        super().__init__()
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size={hidden_size} not divisible by num_heads={num_heads}")
        if impl not in ("scratch", "sdpa"):
            raise ValueError(f"attention impl={impl!r}; choose scratch or sdpa")
        self.impl = impl
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads  # d_k
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)  # [W_Q | W_K | W_V] and their biases
        self.out = nn.Linear(hidden_size, hidden_size)  # W_O, b_O
        self.dropout = nn.Dropout(dropout)  # on the attention weights A_i, as the scaffold

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x (B, T, H) attends to itself where mask (T, T) is True (None: causal); -> (B, T, H)."""
        batch, length, hidden = x.shape
        qkv = self.qkv(x).view(
            batch, length, 3, self.num_heads, self.head_size
        )  # (B, T, 3, h, d_k)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, h, T, d_k) each
        if self.impl == "sdpa":
            # is_causal instead of an explicit mask keeps the flash kernel eligible on GPU.
            heads = F.scaled_dot_product_attention(
                query,
                key,
                value,
                attn_mask=mask,
                dropout_p=self.dropout.p if self.training else 0.0,
                is_causal=mask is None,
            )  # (B, h, T, d_k)
        else:
            if mask is None:
                mask = causal_mask(length, x.device)
            scores = query @ key.transpose(-2, -1) / math.sqrt(self.head_size)  # (B, h, T, T)
            weights = self.dropout(masked_softmax(scores, mask))  # A_i: (B, h, T, T)
            heads = weights @ value  # H_i: (B, h, T, d_k)
        concat = heads.transpose(1, 2).reshape(batch, length, hidden)  # (B, T, H)
        return self.out(concat)  # (B, T, H)
