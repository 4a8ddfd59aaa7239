"""Decoder-only Transformer LM as in IFT6135 A2's course scaffold (the Annotated Transformer).

It owns positions, the pre-LayerNorm blocks and initialisation; attention itself is in attention.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from lmexp.models.attention import MultiHeadAttention, causal_mask
from lmexp.models.base import LanguageModel, State
from lmexp.models.registry import Architecture, register
from lmexp.models.schema import ArchConfig
from lmexp.validation import require_positive


@dataclass
class TransformerConfig(ArchConfig):
    """The decoder-only Transformer's keys (`model=transformer`); hidden_size is d_model."""

    name: str = "transformer"
    num_heads: int = 4  # hidden_size must be a multiple of it
    ff_size: int = 800  # position-wise feed-forward width
    max_len: int = 512  # longest window the position table (or learned embedding) covers
    attn_impl: str = "scratch"  # scratch (the assignment's masked softmax) | sdpa (fused kernel)
    norm: str = "pre"  # pre: x + f(norm(x)) (IFT6135's scaffold) | post: norm(x + f(x))
    positions: str = "sinusoidal"  # sinusoidal (fixed) | learned (a position embedding)
    # xavier: IFT6135's scaffold (make_model re-initialises every matrix Xavier-uniform, the
    # attention's included); uniform: its attention code alone, every weight and bias of the
    # four attention projections U(-1/sqrt(H), 1/sqrt(H)) (other matrices stay Xavier)
    attn_init: str = "xavier"

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "attn_impl": ("scratch", "sdpa"),
        "norm": ("pre", "post"),
        "positions": ("sinusoidal", "learned"),
        "attn_init": ("xavier", "uniform"),
    }

    def check(self) -> None:
        require_positive(
            "model", num_heads=self.num_heads, ff_size=self.ff_size, max_len=self.max_len
        )
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(
                f"model.hidden_size={self.hidden_size} not divisible by "
                f"model.num_heads={self.num_heads}; pick a width that is a multiple of the heads"
            )

    def check_window(self, seq_len: int) -> None:
        if self.max_len < seq_len:
            raise ValueError(
                f"data.seq_len={seq_len} exceeds model.max_len={self.max_len}; raise model.max_len"
            )

    def forward_macs_per_token(self, vocab_size: int, seq_len: int) -> float:
        """Projections, the full T x T scores and weighted sums, feed-forward, softmax layer."""
        h = self.hidden_size
        per_layer = 4 * h * h + 2 * h * self.ff_size + 2 * seq_len * h
        return self.num_layers * per_layer + h * vocab_size


def sinusoidal_positions(max_len: int, d_model: int) -> Tensor:
    """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(...) (Vaswani et al., 2017): (P, D)."""
    position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)  # (P, 1)
    frequency = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (D/2,)
    table = torch.zeros(max_len, d_model)  # (P, D)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])  # odd D: one cos column fewer
    return table


class FeedForward(nn.Module):
    """Position-wise feed-forward: Linear(H -> ff) -> ReLU -> dropout -> Linear(ff -> H)."""

    def __init__(self, hidden_size: int, ff_size: int, dropout: float) -> None:
        super().__init__()
        self.expand = nn.Linear(hidden_size, ff_size)
        self.contract = nn.Linear(ff_size, hidden_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.contract(self.dropout(torch.relu(self.expand(x))))  # (B, T, H)


class Block(nn.Module):
    """Residual block. Pre-LayerNorm (the course scaffold's): x + dropout(attn(norm(x))), then
    x + dropout(ff(norm(x))). Post-LayerNorm (the original Transformer's, and the character
    LM report's "self-attention, normalized, feed forward, normalized again"):
    norm(x + dropout(attn(x))), then norm(x + dropout(ff(x)))."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.post_norm = cfg.norm == "post"
        self.attention_norm = nn.LayerNorm(cfg.hidden_size)
        self.attention = MultiHeadAttention(
            cfg.hidden_size, cfg.num_heads, cfg.dropout, cfg.attn_impl
        )
        self.ff_norm = nn.LayerNorm(cfg.hidden_size)
        self.ff = FeedForward(cfg.hidden_size, cfg.ff_size, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        if self.post_norm:
            x = self.attention_norm(x + self.dropout(self.attention(x, mask)))  # (B, T, H)
            return self.ff_norm(x + self.dropout(self.ff(x)))  # (B, T, H)
        x = x + self.dropout(self.attention(self.attention_norm(x), mask))  # (B, T, H)
        return x + self.dropout(self.ff(self.ff_norm(x)))  # (B, T, H)


class TransformerLM(LanguageModel):
    """Strictly causal decoder-only Transformer; d_model = cfg.hidden_size (cfg.emb_size is unused).

    It carries no state between windows: each window is attended to on its own with positions
    restarting at 0, so `init_state` returns None and `forward` takes and returns None.
    """

    def __init__(self, cfg: TransformerConfig, vocab_size: int) -> None:
        super().__init__()
        self.d_model = cfg.hidden_size
        self.attn_impl, self.attn_init = cfg.attn_impl, cfg.attn_init
        self.embedding = nn.Embedding(vocab_size, cfg.hidden_size)
        self.learned_positions = cfg.positions == "learned"
        if self.learned_positions:  # one trained vector per position, added to the token's
            self.position_embedding = nn.Embedding(cfg.max_len, cfg.hidden_size)
        # Deterministic, so kept out of the state dict (persistent=False); moves with .to(device).
        self.register_buffer(
            "positions", sinusoidal_positions(cfg.max_len, cfg.hidden_size), persistent=False
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        # pre-LN leaves the residual stream unnormalised: one LayerNorm before the output;
        # post-LN blocks already end in one
        self.final_norm = nn.LayerNorm(cfg.hidden_size) if cfg.norm == "pre" else nn.Identity()
        self.output = nn.Linear(cfg.hidden_size, vocab_size)
        self.reset_parameters()
        if cfg.tie_weights:  # Press & Wolf (2017): one matrix for input and output word vectors
            self.output.weight = self.embedding.weight

    def reset_parameters(self) -> None:
        """Xavier-uniform on every matrix, as the scaffold's make_model (`attn_init=uniform`:
        the attention projections' weights U(±1/√H) instead, as the attention code alone).

        The course code holds W_Q, W_K and W_V as three (H, H) matrices; here they are one
        fused (3H, H) `Linear` for speed, so each third is initialised on its own: Xavier over
        the fused matrix would see fan-out 3H and start them √2 too small (bound √(6/4H)
        instead of √(6/2H): 0.054 instead of 0.077 at width 512). Attention biases keep the
        scaffold's uniform ±1/√d_model; other biases PyTorch's default.
        """
        bound = 1.0 / math.sqrt(self.d_model)
        for block in self.blocks:
            nn.init.uniform_(block.attention.qkv.bias, -bound, bound)
            nn.init.uniform_(block.attention.out.bias, -bound, bound)
        for name, param in self.named_parameters():
            if param.dim() < 2:
                continue
            if self.attn_init == "uniform" and ".attention." in name:
                nn.init.uniform_(param, -bound, bound)  # the attention code's own: U(±1/√H)
            elif name.endswith("attention.qkv.weight"):
                for matrix in param.data.chunk(3, dim=0):  # W_Q, W_K, W_V: (H, H) each
                    nn.init.xavier_uniform_(matrix)
            else:
                nn.init.xavier_uniform_(param)

    def init_state(self, batch_size: int, device: torch.device) -> State:
        """None: attention sees only the current window, there is nothing to carry."""
        return None

    def state_grads(
        self, inputs: Tensor, final_loss: Callable[[Tensor], Tensor], entering: bool = True
    ) -> list[Tensor]:
        """h_t of the Transformer: the residual stream entering the top block at position t,
        (B, D) per t = 0..T-1, captured by a hook. It has read tokens 0..t; there is no state
        carried into a step, so `entering` changes nothing here."""
        captured: list[Tensor] = []
        hook = self.blocks[-1].register_forward_pre_hook(lambda _, args: captured.append(args[0]))
        try:
            logits, _ = self(inputs, None)
        finally:
            hook.remove()
        (grad,) = torch.autograd.grad(final_loss(logits[:, -1]), captured[0])  # (B, T, D)
        return list(grad.unbind(1))

    def features(self, tokens: Tensor, state: State = None) -> tuple[Tensor, State]:
        """Features (B, T, H) for tokens (B, T); `state` is None and is returned unchanged."""
        length = tokens.shape[1]
        if length > self.positions.shape[0]:
            raise ValueError(
                f"window of {length} tokens exceeds model.max_len={self.positions.shape[0]}; "
                "raise model.max_len"
            )
        if self.learned_positions:  # token + position embeddings, summed as they are
            where = torch.arange(length, device=tokens.device)
            x = self.embedding(tokens) + self.position_embedding(where)  # (B, T, H)
        else:  # scaling by √d_model keeps embeddings comparable to the unit-range positions
            x = self.embedding(tokens) * math.sqrt(self.d_model) + self.positions[:length]
        x = self.dropout(x)
        # The scratch path gets its (T, T) mask once per window; sdpa takes is_causal instead.
        mask = causal_mask(length, tokens.device) if self.attn_impl == "scratch" else None
        for block in self.blocks:
            x = block(x, mask)  # (B, T, H)
        return self.final_norm(x), None  # (B, T, H)


register(
    Architecture(
        "transformer",
        "Transformer",
        3,
        TransformerConfig,
        TransformerLM,
        nn.TransformerEncoderLayer,
    )
)
