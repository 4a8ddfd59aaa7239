"""A user's own model for lmexp: a bigram language model (docs/models.md, "Your own model").

    PYTHONPATH=docs/examples python -m lmexp.train model=custom model._target_=bigram.BigramLM

lmexp builds it as BigramLM(vocab_size=..., hidden_size=..., num_layers=..., dropout=...,
tie_weights=..., **model.kwargs) and trains, checkpoints, resumes and reports it like its own.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmexp.models import LanguageModel, State


class BigramLM(LanguageModel):
    """Each token's embedding predicts the next token: no state, no context beyond one token."""

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        num_layers: int,  # unused: a bigram model has no layers to stack
        dropout: float,
        tie_weights: bool,
        init_range: float = 0.1,  # one of its own keys: +model.kwargs.init_range=0.05
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.drop = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.output.weight = self.embedding.weight
        nn.init.uniform_(self.embedding.weight, -init_range, init_range)

    def features(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        # (B, T) -> (B, T, H); `output` turns these into logits, fused with the loss in training
        return self.drop(self.embedding(tokens)), None

    def init_state(self, batch_size: int, device: torch.device) -> State:
        return None  # stateless: every window is scored on its own
