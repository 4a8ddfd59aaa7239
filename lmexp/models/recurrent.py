"""Stacked recurrent language model (rnn, gru, lstm): embedding, layers of one cell, output layer.

It owns the stacking, the time loop, dropout placement and the state layout; the equations live in
cells.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from lmexp.models.base import LanguageModel, State
from lmexp.models.cells import (
    CellState,
    GRUCell,
    GRUResetAfterCell,
    LSTMCell,
    RecurrentCell,
    RNNCell,
)
from lmexp.models.schema import ArchConfig
from lmexp.validation import require_positive

INIT_RANGE = 0.1  # embedding and output weights: uniform in ±0.1, as in the assignment's scaffold


@dataclass
class RecurrentConfig(ArchConfig):
    """Keys of the stacked recurrent family (rnn, gru, lstm)."""

    emb_size: int = 200  # input embedding width
    impl: str = "scratch"  # scratch (the assignment's equations) | fused (nn.RNN/GRU/LSTM)
    # every weight and bias uniform in ±init_range (Zaremba et al. 2014: 0.1, 0.05, 0.04);
    # null: IFT6135 A2's scaffold (embedding/output ±0.1, output bias 0, cells ±1/√hidden_size)
    init_range: float | None = None

    GATES: ClassVar[int] = 1  # weight blocks per layer (an RNN has one, a GRU three, an LSTM four)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"impl": ("scratch", "fused")}

    def check(self) -> None:
        require_positive("model", emb_size=self.emb_size, init_range=self.init_range)
        self.check_tied(self.emb_size)

    def forward_macs_per_token(self, vocab_size: int, seq_len: int) -> float:
        h = self.hidden_size
        inputs = [self.emb_size] + [h] * (self.num_layers - 1)
        return sum(self.GATES * h * (i + h) for i in inputs) + h * vocab_size


@dataclass
class RNNConfig(RecurrentConfig):
    name: str = "rnn"
    nonlinearity: str = "tanh"  # tanh | relu

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **RecurrentConfig.CHOICES,
        "nonlinearity": ("tanh", "relu"),
    }


@dataclass
class GRUConfig(RecurrentConfig):
    name: str = "gru"
    gru_variant: str = "reset_before"  # reset_before (IFT6135 A2 eq. 7) | reset_after (cuDNN's)

    GATES: ClassVar[int] = 3
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **RecurrentConfig.CHOICES,
        "gru_variant": ("reset_before", "reset_after"),
    }

    def check(self) -> None:
        super().check()
        if self.impl == "fused" and self.gru_variant != "reset_after":
            raise ValueError(
                "model.impl=fused runs nn.GRU, which applies the reset gate after the recurrent "
                "matmul (cuDNN's variant), not IFT6135 A2's eq. (7): set model.gru_variant="
                "reset_after, or keep model.impl=scratch for the assignment's GRU"
            )


@dataclass
class LSTMConfig(RecurrentConfig):
    name: str = "lstm"

    GATES: ClassVar[int] = 4


CELLS: dict[str, type[RecurrentCell]] = {"rnn": RNNCell, "gru": GRUCell, "lstm": LSTMCell}


def _make_cell(cfg: RecurrentConfig, input_size: int) -> RecurrentCell:
    if cfg.name == "rnn":  # the only cell with a choice of nonlinearity
        return RNNCell(input_size, cfg.hidden_size, cfg.nonlinearity)
    if isinstance(cfg, GRUConfig) and cfg.gru_variant == "reset_after":
        return GRUResetAfterCell(input_size, cfg.hidden_size)
    return CELLS[cfg.name](input_size, cfg.hidden_size)


def run_layer(
    cell: RecurrentCell, inputs: Tensor, state: CellState, stepwise: bool = False
) -> tuple[Tensor, CellState]:
    """Run one layer over a whole window: inputs (B, T, in) -> outputs (B, T, H) and final state.

    The input half of every gate comes from one matmul over all T steps. By default the
    recurrence is one autograd node with hand-written BPTT (`cell.layer`, bptt.py); `stepwise`
    runs `cell.step` in a Python loop under autograd instead: the same function and gradients,
    slower, but every h_t is a node of the graph, so `torch.autograd.grad` can be taken with
    respect to it (gradient flow through time) and the two paths can be held to each other.
    """
    xproj = cell.input_projection(inputs)  # (B, T, G*H)
    if not stepwise:
        return cell.layer(xproj, state)
    steps = xproj.unbind(1)  # T x (B, G*H)
    outputs = list(steps)  # preallocated: slot t is overwritten with h_t below
    for t, xproj_t in enumerate(steps):
        state = cell.step(xproj_t, state)
        outputs[t] = cell.output(state)  # (B, H)
    return torch.stack(outputs, dim=1), state  # (B, T, H)


class RecurrentShell(LanguageModel):
    """What every stacked recurrent LM shares, whatever runs the recurrence (scratch cells here,
    `nn.RNN`/`nn.GRU`/`nn.LSTM` in fused.py): the embedding, dropout, output layer (optionally
    tied), their initialisation, and the zero state.

    A subclass builds its recurrent layers between `__init__` and `_attach_output`, so that
    parameters are created, and draw from the RNG, in the order input -> layers -> output.
    """

    def __init__(self, cfg: RecurrentConfig, vocab_size: int) -> None:
        super().__init__()
        if cfg.name not in CELLS:
            raise ValueError(f"unknown recurrent cell {cfg.name!r}; choose from {sorted(CELLS)}")
        self.cell_name = cfg.name
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.num_layers
        self.init_range = cfg.init_range
        self.embedding = nn.Embedding(vocab_size, cfg.emb_size)
        self.dropout = nn.Dropout(cfg.dropout)

    def _attach_output(self, cfg: RecurrentConfig, vocab_size: int) -> None:
        self.output = nn.Linear(cfg.hidden_size, vocab_size)
        if cfg.tie_weights:  # Press & Wolf (2017): one matrix for input and output word vectors
            self.output.weight = self.embedding.weight

    def _reset_embedding_and_output(self) -> None:
        """Embedding/output weights in ±0.1, output bias 0, as the assignment's scaffold; with
        `init_range`, all three uniform in ±init_range, as Zaremba et al. (2014)."""
        bound = self.init_range or INIT_RANGE
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        nn.init.uniform_(self.output.weight, -bound, bound)
        if self.init_range:
            nn.init.uniform_(self.output.bias, -bound, bound)
        else:
            nn.init.zeros_(self.output.bias)

    def init_state(self, batch_size: int, device: torch.device) -> State:
        """Zeros of shape (num_layers, B, H); the LSTM's is a tuple (h, c)."""
        zeros = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=device)
        return (zeros, zeros.clone()) if self.cell_name == "lstm" else zeros


class RecurrentLM(RecurrentShell):
    """Embedding -> dropout -> `num_layers` recurrent layers, each followed by dropout -> logits.

    Dropout sits only on non-recurrent connections (between layers, never on h_{t-1} -> h_t), as
    in IFT6135 A2 (Zaremba et al., 2014). State: (num_layers, B, H); for the LSTM a tuple (h, c).
    `stepwise` (off by default) runs the recurrence under autograd step by step (`run_layer`).
    """

    stepwise: bool = False

    def __init__(self, cfg: RecurrentConfig, vocab_size: int) -> None:
        super().__init__(cfg, vocab_size)
        self.layers = nn.ModuleList(
            _make_cell(cfg, cfg.emb_size if i == 0 else cfg.hidden_size)
            for i in range(cfg.num_layers)
        )
        self._attach_output(cfg, vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Embedding/output weights in ±0.1, output bias 0; cells keep their ±1/√H init (or
        everything in ±init_range)."""
        if self.init_range:
            for cell in self.layers:
                for param in cell.parameters():
                    nn.init.uniform_(param, -self.init_range, self.init_range)
        self._reset_embedding_and_output()

    def features(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """Layer by layer over the whole window (not step by step over layers) for speed."""
        x = self.dropout(self.embedding(tokens))  # (B, T, E)
        finals: list[CellState] = []
        for index, cell in enumerate(self.layers):
            x, final = run_layer(cell, x, self._layer_state(state, index), self.stepwise)
            x = self.dropout(x)  # (B, T, H)
            finals.append(final)
        return x, self._stack_state(finals)  # (B, T, H)

    @staticmethod
    def _layer_state(state: State, index: int) -> CellState:
        if isinstance(state, tuple):
            hidden, cell = state
            return hidden[index], cell[index]  # (B, H) each
        if state is None:
            raise ValueError("recurrent models need a state; start a stream with init_state()")
        return state[index]  # (B, H)

    @staticmethod
    def _stack_state(finals: list[CellState]) -> State:
        if isinstance(finals[0], tuple):
            hiddens, cells = zip(*finals, strict=True)
            return torch.stack(hiddens), torch.stack(cells)  # (L, B, H) each
        return torch.stack(finals)  # type: ignore[arg-type]  # (L, B, H)
