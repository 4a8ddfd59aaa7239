"""The config schema every architecture extends: the keys all of them have.

An architecture's own dataclass (in its module, registered with it) adds its keys and rules,
so `model.num_heads` on an LSTM is an error at compose time, not a value silently ignored.
Its defaults are those of its `conf/model/<name>.yaml` (tests/unit/test_config.py holds the
two to each other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omegaconf import MISSING

from lmexp.validation import check_choices, require_positive


@dataclass
class ArchConfig:
    """Keys every architecture has."""

    name: str = MISSING
    hidden_size: int = 200  # recurrent: hidden units per layer; transformer: d_model
    num_layers: int = 2
    dropout: float = (
        0.0  # on non-recurrent connections only; IFT6135 assignment 2's dp_keep_prob = 1 - dropout
    )
    tie_weights: bool = False  # share embedding and output matrices (Press & Wolf, 2017)

    # key -> its allowed values: checked here, listed by `lmexp-train --help` and completion
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __post_init__(self) -> None:
        if self.name == MISSING:
            return
        require_positive("model", hidden_size=self.hidden_size, num_layers=self.num_layers)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"model.dropout={self.dropout} must be in [0, 1); "
                "it is a drop probability (IFT6135 A2's dp_keep_prob=0.35 is model.dropout=0.65)"
            )
        check_choices("model", self, self.CHOICES)
        self.check()

    def check(self) -> None:
        """The architecture's own rules; runs when the config is built."""

    def check_window(self, seq_len: int) -> None:
        """Rules that involve the data's window length (`data.seq_len`)."""

    def forward_macs_per_token(self, vocab_size: int, seq_len: int) -> float:
        """Multiply-adds of the matmuls of one forward pass, per token (the benchmark's FLOPs)."""
        raise NotImplementedError(f"{type(self).__name__} does not count its multiply-adds")

    def check_tied(self, emb_size: int) -> None:
        if self.tie_weights and emb_size != self.hidden_size:
            raise ValueError(
                f"model.tie_weights=true needs model.emb_size ({emb_size}) == "
                f"model.hidden_size ({self.hidden_size})"
            )
