"""Model registry: one name -> class table and the single `build_model` the trainer calls.

Every entry implements `LanguageModel`, so nothing outside this package branches on the name.
`model.impl=fused` swaps a recurrent entry for its `nn.RNN`/`nn.GRU`/`nn.LSTM` twin.
"""

from __future__ import annotations

import torch

from lmexp.config import ModelConfig
from lmexp.models.base import LanguageModel, State
from lmexp.models.fused import FusedRecurrentLM
from lmexp.models.recurrent import RecurrentLM
from lmexp.models.rnn_attention import RNNAttentionLM
from lmexp.models.transformer import TransformerLM

MODELS: dict[str, type[LanguageModel]] = {
    "rnn": RecurrentLM,
    "gru": RecurrentLM,
    "lstm": RecurrentLM,
    "transformer": TransformerLM,
    "rnn_attn": RNNAttentionLM,
}

__all__ = ["MODELS", "LanguageModel", "State", "build_model", "compile_features"]


def build_model(cfg: ModelConfig, vocab_size: int) -> LanguageModel:
    """Instantiate the architecture `cfg.name` for a vocabulary of `vocab_size` tokens."""
    if cfg.name not in MODELS:
        raise ValueError(f"unknown model {cfg.name!r}; choose from {sorted(MODELS)}")
    if cfg.impl == "fused" and MODELS[cfg.name] is RecurrentLM:
        return FusedRecurrentLM(cfg, vocab_size)
    return MODELS[cfg.name](cfg, vocab_size)


def compile_features(model: LanguageModel) -> LanguageModel:
    """`torch.compile` the model's `features` in place and return the model.

    Compiling the method rather than wrapping the module keeps the state-dict keys (no
    `_orig_mod.` prefix) and the fused loss, which calls `features` and `output` directly.
    """
    model.features = torch.compile(model.features)  # type: ignore[method-assign]
    return model
